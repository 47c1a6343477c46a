/**
 * A temporal join: each record of a stream is enriched with the row of a table that has its key,
 * as that row was at the record's event time (`versioned`, Flink's event-time temporal join), or
 * as it is when the record is processed (`latest`, Kafka Streams' stream-table join).
 *
 * The table arrives as a changelog on one input (the `table` step makes one): key = the row's
 * primary key, value = the row, or null for a delete, time = when the version starts to hold. The
 * stream arrives on the others.
 *
 * Versioned: a record at time t can only be answered once no table change at or before t can
 * still arrive, so it waits until the table's watermark passes t: the lowest highest-event-time
 * over the table's partitions that are active. A partition quiet for `idle` (processing time)
 * stops counting; when none counts, nothing from the table is outstanding and records pass at
 * once. So a replayed backlog gets the departments a live run got, and a table that changes
 * rarely costs at most `idle` of delay after each change. A change that arrives for a time the
 * join has already answered (its partition was idle) cannot change those answers: it is counted in
 * `sluice_join_late_table_changes_total` and logged.
 *
 * Bounded state: versions that no lookup can reach any more are dropped once the stream's
 * watermark (highest event time per stream partition, minus `lateness`) and every waiting record
 * are past them. A stream record older than what was dropped is late: it goes to the port `late`.
 *
 * Acks. Without checkpoints a waiting record keeps its own reference and moves on with it, and a
 * table version keeps its change record's reference until the version is dropped, so offsets are
 * committed only below what the state still needs (a restart reads it again). With checkpoints
 * (engine/checkpoint) both are released at once and the snapshot holds them instead.
 */
import { Ack } from '../ack.ts';
import { TimedQueue } from '../timed-queue.ts';
import type { Clock } from '../clock.ts';
import type { JsonValue, PartitionEvent, SnapshotOptions, StepOutput, StepState } from '../component.ts';
import { RecordError } from '../errors.ts';
import { EvalFailure, evaluateRecords, type Expression } from '../expression.ts';
import type { Logger } from '../logger.ts';
import type { MetricDefinition, Metrics } from '../metrics.ts';
import type { Batch, StreamRecord } from '../record.ts';
import { LATE_METRIC } from '../window/window-aggregate.ts';
import { toEpochMillis, toIsoUtc } from '../time.ts';
import { groupKeyString } from '../window/group-key.ts';
import { decodeValue, encodeValue } from '../window/state-codec.ts';
import { PartitionWatermarks, type WatermarkSnapshot } from '../window/watermark.ts';
import { VersionedTable, type RowVersion } from './versioned-table.ts';

export const JOIN_LATE_PORT = 'late';
/** How often, at most, the join sweeps its table for versions no lookup can reach (processing time). */
const PRUNE_EVERY_MS = 1_000;
const UNMATCHED_METRIC = 'sluice_join_unmatched_total';
const LATE_CHANGES_METRIC = 'sluice_join_late_table_changes_total';
/** Gauge, set from the step's stats with the other per-step gauges (runtime-metrics.ts). */
export const JOIN_WAITING_METRIC = 'sluice_join_waiting_records';

export const JOIN_METRICS: readonly MetricDefinition[] = [
  { name: UNMATCHED_METRIC, type: 'counter', help: 'Stream records a join found no table row for (dropped by an inner join, joined with null by a left join, or sent to errors).', labels: ['node'] },
  {
    name: LATE_CHANGES_METRIC,
    type: 'counter',
    help: 'Table changes a versioned join received for an event time it had already answered (the table partition was idle): answers given before are not revised.',
    labels: ['node'],
  },
  { name: JOIN_WAITING_METRIC, type: 'gauge', help: 'Records a versioned join holds until the table has caught up with their event time.', labels: ['node'] },
];

export interface TemporalJoinOptions {
  node: string;
  /** The input node that carries the table's changelog. */
  table: string;
  /** Key of a stream record, compared with the table's keys. */
  on: Expression;
  /** Event time of a stream record for the lookup; undefined: the record's own time. */
  time: Expression | undefined;
  /** Field of the output value that takes the row. */
  as: string;
  type: 'inner' | 'left';
  /** `errors`: a record without a row goes to the errors port instead (either type). */
  unmatched: 'default' | 'errors';
  mode: 'versioned' | 'latest';
  /** How far behind its highest event time a stream partition's watermark stays (pruning). */
  lateness: number;
  /** Processing time after which a quiet table partition stops holding records back. */
  idle: number;
  /**
   * How long after a stream record reached the join a table change committed before it may still
   * be on its way into the table's topic: a report that a table partition was read to its end
   * covers only records that arrived at least this long before it.
   */
  tableLag: number;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** The run takes checkpoints: references are released at once, and snapshots hold the state. */
  checkpointed: boolean;
}

/** A stream record waiting for the table, with its lookup key and time. */
interface Waiting {
  seq: number;
  key: string | undefined;
  at: number;
  /** Processing time it reached the join: a table caught up after it has everything before it. */
  arrival: number;
  record: StreamRecord;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A lookup key's identity; undefined for a missing or null key, which no row has. */
export function joinKey(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : groupKeyString([value]);
}

export class TemporalJoin {
  readonly ports = [JOIN_LATE_PORT];
  readonly sideInputs: readonly string[];
  private readonly rows: VersionedTable;
  /** Released in event-time order, then arrival. */
  private readonly waiting = new TimedQueue<Waiting>();
  /** Table partitions: their watermark says up to when the table is complete. */
  private readonly tableMarks: PartitionWatermarks;
  /** Stream partitions: their watermark says what no record will ask for again. */
  private readonly streamMarks: PartitionWatermarks;
  /** Versions before this time are dropped: a record asking for an earlier time is late. */
  private prunedTo = Number.NEGATIVE_INFINITY;
  /** Processing time of the last sweep. */
  private prunedAt = Number.NEGATIVE_INFINITY;
  /** Highest lookup time answered so far (a table change at or before it comes too late). */
  private answeredTo = Number.NEGATIVE_INFINITY;
  private seq = 0;
  /** Processing time of the first call: with no table partition known, records wait `idle` from here. */
  private startedAt: number | undefined;
  /**
   * Table partitions whose source says when it last had nothing unread (Kafka: read to the end
   * offset): for them that, not silence, says the table is complete for a record.
   */
  private readonly caughtUpAt = new Map<string, number>();
  /** A table partition was assigned or sent changes: with none left now, the table has ended. */
  private tableKnown = false;
  private ended = false;
  /** Checkpointed: waiting records added and removed since the previous snapshot, by seq. */
  private waitingAdded = new Set<number>();
  private waitingRemoved = new Set<number>();
  private lateCount = 0;
  private unmatchedCount = 0;
  private lateChangesCount = 0;

  constructor(private readonly opts: TemporalJoinOptions) {
    this.sideInputs = [opts.table];
    this.rows = new VersionedTable(opts.checkpointed);
    this.tableMarks = new PartitionWatermarks(0, opts.idle);
    this.streamMarks = new PartitionWatermarks(opts.lateness, opts.idle);
  }

  process(batch: Batch, out: StepOutput): void | Promise<void> {
    const now = this.opts.clock.now();
    this.startedAt ??= now;
    if (batch.from === this.opts.table) {
      this.absorbChanges(batch.records, now, out);
      this.release(now, out);
      return;
    }
    const keys = evaluateRecords(this.opts.on, batch.records);
    const times = this.opts.time ? evaluateRecords(this.opts.time, batch.records) : undefined;
    if (keys instanceof Promise || times instanceof Promise) {
      return Promise.all([keys, times]).then(([k, t]) => this.lookUp(batch.records, k, t, now, out));
    }
    this.lookUp(batch.records, keys, times, now, out);
  }

  onPartitions(event: PartitionEvent, out: StepOutput, via?: readonly string[]): void {
    const now = this.opts.clock.now();
    this.startedAt ??= now;
    const toTable = via?.includes(this.opts.table) ?? false;
    const toStream = via === undefined || via.some((v) => v !== this.opts.table);
    if (event.type === 'caught-up') {
      if (toTable) for (const p of event.partitions) this.caughtUpAt.set(p, Math.max(this.caughtUpAt.get(p) ?? Number.NEGATIVE_INFINITY, event.at));
      this.release(now, out);
      return;
    }
    for (const [marks, applies] of [
      [this.tableMarks, toTable],
      [this.streamMarks, toStream],
    ] as const) {
      if (!applies) continue;
      if (marks === this.tableMarks) {
        this.tableKnown = true;
        if (event.type === 'revoke') for (const p of event.partitions) this.caughtUpAt.delete(p);
      }
      if (event.type === 'assign') marks.assign(event.partitions, now);
      else if (event.type === 'revoke') marks.revoke(event.partitions);
      else marks.progress(event.origin, event.time, event.idle, now);
    }
    this.release(now, out);
  }

  onTick(now: number, out: StepOutput): void {
    this.release(now, out);
  }

  onEnd(out: StepOutput): void {
    this.ended = true;
    this.release(this.opts.clock.now(), out);
    if (!this.opts.checkpointed) for (const v of this.rows.allVersions()) v.ack?.release();
  }

  stats(): Record<string, number | string | undefined> {
    const wm = this.tableMark(this.opts.clock.now());
    return {
      table_watermark: wm === Number.POSITIVE_INFINITY ? 'caught up' : Number.isFinite(wm) ? toIsoUtc(wm) : undefined,
      waiting: this.waiting.size,
      table_keys: this.rows.size,
      late: this.lateCount,
      unmatched: this.unmatchedCount,
      late_table_changes: this.lateChangesCount,
    };
  }

  /* ------------------------------------------------------------ table side */

  private absorbChanges(records: readonly StreamRecord[], now: number, out: StepOutput): void {
    const { logger, node } = this.opts;
    this.tableKnown = true;
    let late = 0;
    for (const rec of records) {
      const key = joinKey(rec.key);
      if (key === undefined) {
        // The table step keys every change; a keyless one cannot be placed.
        out.fail(rec, new RecordError('E_JOIN_TABLE_KEY', `join \`${node}\`: a change of table \`${this.opts.table}\` has no key`, `steps.${node}`));
        continue;
      }
      const version: RowVersion = { from: this.opts.mode === 'latest' ? 0 : rec.time, row: rec.value ?? null };
      if (this.opts.checkpointed) rec.ack.release();
      else version.ack = rec.ack;
      if (this.opts.mode === 'versioned') {
        this.tableMarks.observe(rec.position.partition, rec.time, now);
        if (rec.time <= this.answeredTo) late++;
      }
      this.rows.put(key, version)?.ack?.release();
      // Latest: a delete leaves nothing to keep.
      if (this.opts.mode === 'latest' && version.row === null) this.rows.prune(Number.POSITIVE_INFINITY, [key], dropVersion);
    }
    if (late > 0) {
      this.lateChangesCount += late;
      this.opts.metrics.inc(LATE_CHANGES_METRIC, { node }, late);
      logger.warn(
        { node, table: this.opts.table, changes: late, answered_to: toIsoUtc(this.answeredTo) },
        'table changes arrived for a time the join has already answered: earlier answers stand. Raise `idle` (a table source that cannot say how far it has read) or `table_lag` (a kafka table topic written later than the stream\'s) to wait longer',
      );
    }
  }

  /* ------------------------------------------------------------ stream side */

  private lookUp(records: readonly StreamRecord[], keys: unknown[], times: unknown[] | undefined, now: number, out: StepOutput): void {
    const versioned = this.opts.mode === 'versioned';
    // The table may have moved on since the last release without a call (a partition went idle
    // between ticks): what waits for it leaves before the records answered now, in event-time order.
    if (versioned && this.waiting.size > 0) this.release(now, out);
    // The table's state does not change while a batch of the stream is looked up.
    const covered = versioned ? this.coveredBelow(now, now) : Number.POSITIVE_INFINITY;
    let late: StreamRecord[] | undefined;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      const k = keys[i];
      if (k instanceof EvalFailure) {
        out.fail(rec, new RecordError('E_EXPR_EVAL', `join \`${this.opts.node}\`: \`on\` failed: ${k.error.message}`, `steps.${this.opts.node}`, { cause: k.error }));
        continue;
      }
      let at = rec.time;
      if (times) {
        const t = times[i];
        const ms = t instanceof EvalFailure ? undefined : toEpochMillis(t);
        if (ms === undefined) {
          const why = t instanceof EvalFailure ? t.error.message : 'it gave no timestamp';
          out.fail(rec, new RecordError('E_JOIN_TIME', `join \`${this.opts.node}\`: \`time\` failed: ${why}`, `steps.${this.opts.node}`));
          continue;
        }
        at = ms;
      }
      const key = joinKey(k);
      if (!versioned) {
        this.answer(rec, key, at, out);
        continue;
      }
      this.streamMarks.observe(rec.origin ?? rec.position.partition, at, now);
      if (at < this.prunedTo) {
        (late ??= []).push(rec);
        continue;
      }
      // Answered at once when nothing waiting comes before it in event time.
      const first = this.waiting.peek();
      if ((first === undefined || at < first.at) && at < covered) {
        this.answer(rec, key, at, out);
        continue;
      }
      const w: Waiting = { seq: this.seq++, key, at, arrival: now, record: rec };
      if (this.opts.checkpointed) {
        rec.ack.release();
        this.waitingAdded.add(w.seq);
      }
      this.waiting.push(w);
    }
    if (late) {
      this.lateCount += late.length;
      this.opts.metrics.inc(LATE_METRIC, { node: this.opts.node }, late.length);
      out.emit(late, JOIN_LATE_PORT);
    }
    if (versioned) this.release(now, out);
  }

  /** Joins one record with the row its key had at `at`, and routes it. */
  private answer(rec: StreamRecord, key: string | undefined, at: number, out: StepOutput): void {
    const { node, as } = this.opts;
    if (at > this.answeredTo) this.answeredTo = at;
    if (!isPlainObject(rec.value)) {
      out.fail(rec, new RecordError('E_JOIN_VALUE', `join \`${node}\`: the record value is not an object, so it cannot take \`${as}\``, `steps.${node}`));
      return;
    }
    const row = key === undefined ? undefined : this.opts.mode === 'latest' ? this.rows.latest(key) : this.rows.at(key, at);
    if (row === undefined) {
      this.unmatchedCount++;
      this.opts.metrics.inc(UNMATCHED_METRIC, { node });
      if (this.opts.unmatched === 'errors') {
        const keyText = key === undefined ? 'no key' : `key ${key}`;
        out.fail(rec, new RecordError('E_JOIN_UNMATCHED', `join \`${node}\`: table \`${this.opts.table}\` has no row for ${keyText} at ${toIsoUtc(at)}`, `steps.${node}`));
        return;
      }
      if (this.opts.type === 'inner') {
        out.drop(rec, 'unmatched');
        return;
      }
    }
    out.emit([{ ...rec, value: { ...rec.value, [as]: row ?? null } }]);
  }

  /* ------------------------------------------------------------ watermarks */

  /**
   * The event time below which no change of the table can still arrive, for a record that reached
   * the join at `arrival`: a record at `at` is covered when `at` is below it. Each table partition
   * bounds it by its highest event time (strictly: a partition at `at` may still send more changes
   * at `at`, one commit, several rows), unless it has been read to its end at least `tableLag`
   * after the record arrived (its source said so), or, when its source cannot say, has been quiet
   * for `idle`. The table is also complete when its partitions were all revoked (a bounded table
   * source, such as postgres-query, ended), at the end of input, or when none was ever known and
   * `idle` has passed since the start (a table source that never assigns must not hold the stream
   * forever). Computed once per batch on the stream side, not per record.
   */
  private coveredBelow(arrival: number, now: number): number {
    if (this.ended) return Number.POSITIVE_INFINITY;
    const parts = this.tableMarks.partitionWatermarks(now);
    if (parts.length === 0) {
      const complete = this.tableKnown || now - (this.startedAt ?? now) >= this.opts.idle;
      return complete ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    }
    let mark = Number.POSITIVE_INFINITY;
    for (const p of parts) {
      const caught = this.caughtUpAt.get(p.partition);
      if (caught !== undefined ? caught >= arrival + this.opts.tableLag : p.idle) continue;
      if (p.watermark < mark) mark = p.watermark;
    }
    return mark;
  }

  /** For the figures: the lowest event time over the table's partitions that are not quiet (+Inf: none). */
  private tableMark(now: number): number {
    if (this.ended) return Number.POSITIVE_INFINITY;
    let min = Number.POSITIVE_INFINITY;
    for (const p of this.tableMarks.partitionWatermarks(now)) if (!p.idle) min = Math.min(min, p.watermark);
    return min;
  }

  /** Answers the waiting records the table now covers, in event-time order, then drops unreachable versions. */
  private release(now: number, out: StepOutput): void {
    if (this.opts.mode !== 'versioned') return;
    // Records waiting mostly share arrival times (a batch): the bound is computed once per arrival.
    let arrival = Number.NaN;
    let covered = Number.NEGATIVE_INFINITY;
    for (let w = this.waiting.peek(); w !== undefined; w = this.waiting.peek()) {
      if (w.arrival !== arrival) {
        arrival = w.arrival;
        covered = this.coveredBelow(arrival, now);
      }
      if (!(w.at < covered)) break;
      this.waiting.pop();
      let rec = w.record;
      if (this.opts.checkpointed) {
        if (!this.waitingAdded.delete(w.seq)) this.waitingRemoved.add(w.seq);
        // Its source reference went with the snapshot: it travels on with one of its own.
        const ack = Ack.none();
        ack.retain();
        ack.seal();
        rec = { ...rec, ack };
      }
      this.answer(rec, w.key, w.at, out);
    }
    this.prune(now);
  }

  /**
   * Moves the horizon (what is late is decided by it, the same whenever the sweep runs), and drops
   * the versions before it. The sweep visits every key, so it runs at most once per PRUNE_EVERY_MS
   * of processing time: what it frees is memory; no answer depends on it.
   */
  private prune(now: number): void {
    let horizon = this.streamMarks.advance(now);
    const first = this.waiting.peek();
    if (first !== undefined && first.at < horizon) horizon = first.at;
    if (!Number.isFinite(horizon) || horizon <= this.prunedTo) return;
    this.prunedTo = horizon;
    if (now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    this.rows.prune(horizon, undefined, dropVersion);
  }

  /* ------------------------------------------------------------ checkpoints */

  snapshot(options: SnapshotOptions = {}): StepState {
    const entries = new Map<string, JsonValue>();
    const removed: string[] = [];
    const changedKeys = this.rows.takeChanges();
    const rowKeys = options.changesOnly ? changedKeys : [...this.rows.keys()];
    for (const key of rowKeys) {
      const versions = this.rows.versionsOf(key);
      if (versions) entries.set(`t:${key}`, versions.map((v) => [v.from, encodeValue(v.row)]));
      else removed.push(`t:${key}`);
    }
    const added = this.waitingAdded;
    for (const w of this.waiting.values()) {
      if (!options.changesOnly || added.has(w.seq)) entries.set(`w:${w.seq}`, encodeWaiting(w));
    }
    if (options.changesOnly) for (const seq of this.waitingRemoved) removed.push(`w:${seq}`);
    this.waitingAdded = new Set();
    this.waitingRemoved = new Set();
    const header: JsonValue = {
      table: this.tableMarks.snapshot() as unknown as JsonValue,
      stream: this.streamMarks.snapshot() as unknown as JsonValue,
      pruned_to: Number.isFinite(this.prunedTo) ? this.prunedTo : null,
      answered_to: Number.isFinite(this.answeredTo) ? this.answeredTo : null,
      seq: this.seq,
      // With no table partition left, a known table has ended: records pass; an unknown one is waited for.
      table_known: this.tableKnown,
    };
    const state: StepState = { header, entries };
    if (options.changesOnly) {
      state.removed = removed;
      state.size = this.rows.size + this.waiting.size;
    }
    return state;
  }

  restore(state: StepState): void {
    const now = this.opts.clock.now();
    const h = isPlainObject(state.header) ? state.header : {};
    if (isPlainObject(h.table)) this.tableMarks.restore(h.table as unknown as WatermarkSnapshot, now);
    if (isPlainObject(h.stream)) this.streamMarks.restore(h.stream as unknown as WatermarkSnapshot, now);
    this.prunedTo = typeof h.pruned_to === 'number' ? h.pruned_to : Number.NEGATIVE_INFINITY;
    this.answeredTo = typeof h.answered_to === 'number' ? h.answered_to : Number.NEGATIVE_INFINITY;
    this.seq = typeof h.seq === 'number' ? h.seq : 0;
    // Older snapshots lack the flag: restored table partitions say as much.
    this.tableKnown = h.table_known === true || this.tableMarks.partitionWatermarks(now).length > 0;
    for (const [name, value] of state.entries) {
      if (name.startsWith('t:') && Array.isArray(value)) {
        const versions: RowVersion[] = [];
        for (const v of value) if (Array.isArray(v) && typeof v[0] === 'number') versions.push({ from: v[0], row: decodeValue(v[1] ?? null) });
        this.rows.load(name.slice(2), versions);
      } else if (name.startsWith('w:')) {
        const w = decodeWaiting(Number(name.slice(2)), value, this.opts.node);
        if (w) this.waiting.push(w);
      }
    }
    this.rows.takeChanges();
  }
}

function dropVersion(v: RowVersion): void {
  v.ack?.release();
}

function encodeWaiting(w: Waiting): JsonValue {
  const r = w.record;
  return {
    key: w.key ?? null,
    at: w.at,
    arrival: w.arrival,
    record: {
      key: encodeValue(r.key),
      value: encodeValue(r.value),
      time: r.time,
      headers: r.headers,
      meta: encodeValue(r.meta),
      position: { ...r.position },
      ...(r.origin !== undefined ? { origin: r.origin } : {}),
    },
  };
}

function decodeWaiting(seq: number, value: JsonValue, node: string): Waiting | undefined {
  if (!isPlainObject(value) || !isPlainObject(value.record) || typeof value.at !== 'number') return undefined;
  const r = value.record;
  const position = isPlainObject(r.position) ? r.position : {};
  const headers: Record<string, string> = {};
  if (isPlainObject(r.headers)) for (const [k, v] of Object.entries(r.headers)) if (typeof v === 'string') headers[k] = v;
  const meta = decodeValue(r.meta);
  const record: StreamRecord = {
    key: decodeValue(r.key),
    value: decodeValue(r.value),
    time: typeof r.time === 'number' ? r.time : value.at,
    headers,
    meta: isPlainObject(meta) ? meta : {},
    position: {
      source: typeof position.source === 'string' ? position.source : node,
      partition: typeof position.partition === 'string' ? position.partition : node,
      offset: typeof position.offset === 'string' ? position.offset : '0',
    },
    // Replaced by a fresh reference when it is answered (checkpointed runs only restore).
    ack: Ack.none(),
  };
  if (typeof r.origin === 'string') record.origin = r.origin;
  // Older snapshots lack `arrival`: any later report that the table was read to its end covers it.
  const arrival = typeof value.arrival === 'number' ? value.arrival : Number.NEGATIVE_INFINITY;
  return { seq, key: typeof value.key === 'string' ? value.key : undefined, at: value.at, arrival, record };
}
