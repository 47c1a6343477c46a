/**
 * WindowAggregate: the event-time window operator behind the `window` step.
 *
 * Per batch: a few `evaluateRecords` calls (event time, each group key, each distinct aggregate
 * argument), then one synchronous loop that assigns each record to its windows and folds it into
 * the accumulators of its (window, group) pane. Then the watermark advances (per partition, see
 * PartitionWatermarks) and every pane whose window end it reached is emitted (`emit: final`) or
 * released (`emit: update`, which emits each changed pane once per batch instead).
 *
 * Acks: a pane takes over the Ack reference of every record it absorbs, counted per source Ack in
 * `parents`, and owns a derived Ack over them that holds one "open" reference while the pane is
 * open. Outputs carry the derived Ack, so source positions complete only after the pane has closed
 * and its outputs were acknowledged downstream.
 *
 * Output order is deterministic: window start, then the order in which groups first arrived in it.
 */
import { Ack } from '../ack.ts';
import type { Clock } from '../clock.ts';
import type { JsonValue, PartitionEvent, SnapshotOptions, Step, StepOutput, StepState } from '../component.ts';
import { RecordError } from '../errors.ts';
import { EvalFailure, evaluateRecords, type Expression } from '../expression.ts';
import type { Logger } from '../logger.ts';
import type { MetricDefinition, Metrics } from '../metrics.ts';
import type { Batch, StreamRecord } from '../record.ts';
import { toEpochMillis, toIsoUtc } from '../time.ts';
import {
  checkArgument,
  composedBindings,
  createAccumulator,
  createComposedAccumulator,
  foldComposedRows,
  loadAccumulator,
  loadComposedAccumulator,
  mergeBySeq,
  StateFormatError,
  type Accumulator,
  type AggregatePlan,
  type BuiltinCall,
} from './aggregates.ts';
import { CalendarAssigner, hoppingStarts, tumblingStart, type WindowShape } from './assign.ts';
import { groupKeyString } from './group-key.ts';
import { insertionIndex, mergedBounds, overlappingSessions } from './session.ts';
import { decodeValue, encodeValue } from './state-codec.ts';
import { PartitionWatermarks, type WatermarkHold, type WatermarkSnapshot } from './watermark.ts';

export const LATE_PORT = 'late';
export const LATE_METRIC = 'sluice_records_late_total';
/** Gauge: seconds the step's watermark has stood while a partition was ahead of it (0 when not held). */
export const HELD_SECONDS_METRIC = 'sluice_watermark_held_seconds';
/** Counter: holds that lasted longer than the warning threshold (one per hold, with a warning logged). */
export const HOLDS_METRIC = 'sluice_watermark_holds_total';
/**
 * How long one partition may hold the watermark back, while another is ahead, before a warning. A
 * minute: in a live stream the watermark moves within seconds, and the default `idle` releases a
 * quiet partition at the same age, so what still warns is a partition that is not quiet (its
 * records are all behind its own highest event time) or one under a longer `idle`.
 */
export const HOLD_WARNING_MS = 60_000;
/** Counter: groups that reached `max_rows` kept records in a window (their row-based aggregates fail). */
export const ROW_LIMIT_METRIC = 'sluice_window_row_limit_total';
/**
 * Kept records per group and window when an aggregate needs them all. A hundred thousand record
 * values are some tens of MB in memory, and as much again in every checkpoint that holds them.
 */
export const DEFAULT_MAX_ROWS = 100_000;

/** The series a window step publishes besides the runtime's (which counts late records). */
export const WINDOW_METRICS: readonly MetricDefinition[] = [
  {
    name: HELD_SECONDS_METRIC,
    type: 'gauge',
    help: "Seconds a window's watermark has stood while one of its input partitions was ahead of it (0 when it is not held back).",
    labels: ['node'],
  },
  {
    name: HOLDS_METRIC,
    type: 'counter',
    help: "Times one input partition held a window's watermark back for over a minute while another was ahead (each logged as a warning).",
    labels: ['node'],
  },
  {
    name: ROW_LIMIT_METRIC,
    type: 'counter',
    help: 'Groups that reached window.max_rows kept records in a window: their aggregates over the records fail, and their result goes to the errors port.',
    labels: ['node'],
  },
];

export interface GroupKeySpec {
  /** Output field name. */
  name: string;
  expression: Expression;
}

export interface WindowAggregateOptions {
  /** The step's node name: metrics label, error origin and output position. */
  node: string;
  shape: WindowShape;
  /** Event time expression; undefined uses the record's own `time`. */
  time: Expression | undefined;
  lateness: number;
  idle: number | undefined;
  emit: 'final' | 'update';
  groupBy: GroupKeySpec[];
  aggregates: AggregatePlan[];
  /** Records kept per pane for expression aggregates; beyond it they fail (default DEFAULT_MAX_ROWS). */
  maxRows?: number;
  clock: Clock;
  metrics: Metrics;
  /** Where a watermark held back too long is reported; silent when omitted. */
  logger?: Logger;
  /** Processing time a partition may hold the watermark back before a warning; default HOLD_WARNING_MS. */
  holdWarningMs?: number;
  /**
   * The run takes checkpoints: a record's source reference is released as soon as the record is
   * folded into its panes, because the checkpoint that captures the panes holds the batch until it
   * is durable. Without checkpoints a pane keeps its records' references until it has closed.
   */
  checkpointed?: boolean;
  /**
   * Early results: when the schedule fires (on a processing-time tick), every open pane that took
   * records since its last early result is emitted before its final one, marked `early: true`.
   * Outputs of such a window all carry `early` (false for the final ones).
   */
  early?: EarlySchedule;
}

/** When early results are due: the first fire time after a processing time (ms). */
export interface EarlySchedule {
  nextAfter(ms: number): number;
}

/** The state of one group in one window instance. */
interface Pane {
  start: number;
  /** Exclusive end; for sessions `last + gap`. */
  end: number;
  /** Sessions: event time of the last record. */
  last: number;
  groupKey: string;
  keyValues: unknown[];
  /** One per aggregate; undefined for expression aggregates. */
  accs: (Accumulator | undefined)[];
  /** Record values and arrival numbers, kept only when an expression aggregate needs them. */
  rows: unknown[] | undefined;
  rowSeqs: number[] | undefined;
  /** More than `maxRows` records arrived: rows were dropped, and the expression aggregates fail. */
  overLimit: boolean;
  /** Creation number: the deterministic emit order of panes with equal starts. */
  order: number;
  parents: Map<Ack, number>;
  ack: Ack;
  dirty: boolean;
  closed: boolean;
  /** Early results: it took records since its last early result (not kept in checkpoints). */
  sinceEarly?: boolean;
  /** The key of this pane's entry in the last snapshot: a session's moves as it grows. */
  storedKey?: string;
  /**
   * Update mode: the window_start this pane's last update was keyed by. When a session merge
   * moves or removes that start, a tombstone retracts the old key, so a downstream upsert (a
   * compacted topic, a table) does not keep a session that no longer exists.
   */
  emittedStart?: number;
}

interface FixedWindow {
  start: number;
  end: number;
  panes: Map<string, Pane>;
}

/** A pane about to be emitted: its values are read now, its aggregates rendered (maybe async) next. */
interface PendingOutput {
  pane: Pane;
  results: unknown[];
  rows: unknown[] | undefined;
  overLimit: boolean;
  /** An early result of a still open window. */
  early?: boolean;
}

const STATE_VERSION = 1;

export class WindowAggregate implements Step {
  readonly ports = [LATE_PORT] as const;

  private readonly watermarks: PartitionWatermarks;
  private readonly fixed = new Map<number, FixedWindow>();
  /** The window the previous record went to: consecutive records mostly share it. */
  private lastFixed: FixedWindow | undefined;
  private readonly sessions = new Map<string, Pane[]>();
  /** Lowest session end, maybe stale-low: lets most batches skip scanning every group. */
  private minSessionEnd = Number.POSITIVE_INFINITY;
  private readonly calendar: CalendarAssigner | undefined;
  private readonly dirty: Pane[] = [];
  /** Panes changed (absorbed, merged, moved or closed) since the last snapshot. */
  private readonly touched = new Set<Pane>();
  /** Update mode: keys of session updates that a merge made stale, retracted at the next emission. */
  private readonly retractions: { keyValues: unknown[]; start: number; end: number }[] = [];
  /** Distinct aggregate argument expressions, evaluated once per batch each. */
  private readonly argExprs: Expression[] = [];
  /** For each aggregate, per built-in call (one, or a composed one's), its argument's index in argExprs, or -1. */
  private readonly argIndex: number[][] = [];
  /** For each aggregate, its built-in calls: itself, a composed one's leaves, or none. */
  private readonly calls: (readonly BuiltinCall[])[] = [];
  /** Composed aggregates: the per-record argument values handed to the accumulator, reused. */
  private readonly leafArgs: (unknown[] | undefined)[] = [];
  private readonly keepsRows: boolean;
  /** Some aggregate is evaluated by JSONata at emission (expression or composed). */
  private readonly rendersAtEmit: boolean;
  private readonly maxRows: number;
  /** Processing time of the last warning about the row limit; they are logged at most once a minute. */
  private rowLimitWarnedAt = Number.NEGATIVE_INFINITY;
  private seq = 0;
  /** Early results: processing time when the next ones are due (set at the first tick). */
  private nextEarlyAt: number | undefined;
  private earlyCount = 0;
  private paneOrder = 0;
  private openPanes = 0;
  private lateCount = 0;
  private closedUpTo = Number.NEGATIVE_INFINITY;
  /** The hold of the watermark that was warned about (its `since`), so each hold warns once. */
  private warnedHoldSince: number | undefined;
  /** The hold past the warning threshold, for stats(); undefined when none. */
  private longHold: WatermarkHold | undefined;
  /** Emission still rendering (expression aggregates are async); later calls queue behind it. */
  private pending: Promise<void> | undefined;

  constructor(private readonly opts: WindowAggregateOptions) {
    this.watermarks = new PartitionWatermarks(opts.lateness, opts.idle);
    this.calendar = opts.shape.kind === 'calendar' ? new CalendarAssigner(opts.shape.days, opts.shape.timeZone) : undefined;
    const bySource = new Map<string, number>();
    const indexOf = (call: BuiltinCall): number => {
      if (!call.argument) return -1;
      let i = bySource.get(call.argument.source);
      if (i === undefined) {
        i = this.argExprs.push(call.argument) - 1;
        bySource.set(call.argument.source, i);
      }
      return i;
    };
    for (const agg of opts.aggregates) {
      const calls = agg.kind === 'builtin' ? [agg] : agg.kind === 'composed' ? agg.leaves : [];
      this.calls.push(calls);
      this.argIndex.push(calls.map(indexOf));
      this.leafArgs.push(agg.kind === 'composed' ? new Array<unknown>(agg.leaves.length) : undefined);
    }
    this.keepsRows = opts.aggregates.some((a) => a.kind === 'expression');
    this.rendersAtEmit = opts.aggregates.some((a) => a.kind !== 'builtin');
    this.maxRows = opts.maxRows ?? DEFAULT_MAX_ROWS;
  }

  /* ------------------------------------------------------------ Step */

  process(batch: Batch, out: StepOutput): void | Promise<void> {
    return this.serialize(() => this.processNow(batch, out));
  }

  /**
   * Assignments, revocations and progress markers of origins (after a repartition) move the
   * watermark; windows it passed close. Returns a promise when an emission is still rendering; the
   * runtime awaits it.
   */
  onPartitions(event: PartitionEvent, out: StepOutput): void | Promise<void> {
    return this.serialize(() => {
      const now = this.opts.clock.now();
      if (event.type === 'assign') this.watermarks.assign(event.partitions, now);
      else if (event.type === 'revoke') this.watermarks.revoke(event.partitions);
      else if (event.type === 'progress') this.watermarks.progress(event.origin, event.time, event.idle, now);
      // caught-up: a window learns event time from records, not from what a source has left to read.
      return this.advance(now, out);
    });
  }

  onTick(now: number, out: StepOutput): void | Promise<void> {
    return this.serialize(() => this.advance(now, out));
  }

  onEnd(out: StepOutput): void | Promise<void> {
    return this.serialize(() => {
      this.watermarks.end();
      return this.emitAndClose(out);
    });
  }

  stats(): Record<string, number | string | undefined> {
    const wm = this.watermarks.value;
    return {
      watermark: wm === Number.POSITIVE_INFINITY ? 'end' : Number.isFinite(wm) ? toIsoUtc(wm) : undefined,
      open_windows: this.openPanes,
      late: this.lateCount,
      ...(this.opts.early ? { early_results: this.earlyCount } : {}),
      ...(this.longHold
        ? { watermark_held_by: this.longHold.partition, watermark_held_s: Math.round((this.opts.clock.now() - this.longHold.since) / 1000) }
        : {}),
    };
  }

  /* ------------------------------------------------------------ sequencing */

  /**
   * Runs `f` now, or after the emission in flight (expression aggregates render asynchronously),
   * so outputs keep their order even if a caller does not await.
   */
  private serialize(f: () => void | Promise<void>): void | Promise<void> {
    if (this.pending) return this.track(this.pending.then(f));
    const r = f();
    return r instanceof Promise ? this.track(r) : undefined;
  }

  private track(p: Promise<void>): Promise<void> {
    const tracked: Promise<void> = p.finally(() => {
      if (this.pending === tracked) this.pending = undefined;
    });
    this.pending = tracked;
    return tracked;
  }

  /* ------------------------------------------------------------ per batch */

  private processNow(batch: Batch, out: StepOutput): void | Promise<void> {
    const records = batch.records;
    if (records.length === 0) return;
    const columns: (unknown[] | Promise<unknown[]>)[] = [];
    if (this.opts.time) columns.push(evaluateRecords(this.opts.time, records));
    for (const g of this.opts.groupBy) columns.push(evaluateRecords(g.expression, records));
    for (const a of this.argExprs) columns.push(evaluateRecords(a, records));
    if (columns.some((c) => c instanceof Promise)) {
      return Promise.all(columns).then((cols) => this.absorbBatch(records, cols, out));
    }
    return this.absorbBatch(records, columns as unknown[][], out);
  }

  private absorbBatch(records: StreamRecord[], cols: unknown[][], out: StepOutput): void | Promise<void> {
    const { groupBy, aggregates, node } = this.opts;
    const now = this.opts.clock.now();
    const timeCol = this.opts.time ? cols[0] : undefined;
    const keyBase = this.opts.time ? 1 : 0;
    const argBase = keyBase + groupBy.length;
    const late: StreamRecord[] = [];
    const args: unknown[] = new Array(aggregates.length);
    const keyValues: unknown[] = new Array(groupBy.length);

    records: for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      let t: number | undefined;
      if (timeCol) {
        const raw = timeCol[i];
        if (raw instanceof EvalFailure) {
          out.fail(rec, this.recordError('E_WINDOW_TIME', `time expression \`${this.opts.time!.source}\` failed: ${raw.error.message}`));
          continue;
        }
        t = toEpochMillis(raw);
        if (t === undefined) {
          out.fail(rec, this.recordError('E_WINDOW_TIME', `time expression \`${this.opts.time!.source}\` gave ${describe(raw)}, not a timestamp (an ISO 8601 string or epoch milliseconds)`));
          continue;
        }
      } else t = rec.time;

      for (let g = 0; g < groupBy.length; g++) {
        const v = cols[keyBase + g]![i];
        if (v instanceof EvalFailure) {
          out.fail(rec, this.recordError('E_WINDOW_GROUP', `group_by \`${groupBy[g]!.name}\` (\`${groupBy[g]!.expression.source}\`) failed: ${v.error.message}`));
          continue records;
        }
        keyValues[g] = v === undefined ? null : v;
      }
      for (let a = 0; a < aggregates.length; a++) {
        const agg = aggregates[a]!;
        if (agg.kind === 'expression') continue;
        const calls = this.calls[a]!;
        const indexes = this.argIndex[a]!;
        const tuple = this.leafArgs[a];
        for (let l = 0; l < calls.length; l++) {
          const ai = indexes[l]!;
          const v = ai < 0 ? undefined : cols[argBase + ai]![i];
          if (v instanceof EvalFailure) {
            out.fail(rec, this.recordError('E_WINDOW_AGGREGATE', `aggregate \`${agg.name}\` (\`${agg.source}\`) failed: ${v.error.message}`));
            continue records;
          }
          const problem = ai < 0 ? undefined : checkArgument(calls[l]!.builtin, v);
          if (problem) {
            out.fail(rec, this.recordError('E_WINDOW_AGGREGATE', `aggregate \`${agg.name}\` (\`${agg.source}\`): ${problem}`));
            continue records;
          }
          if (tuple) tuple[l] = v;
          else args[a] = v;
        }
        if (tuple) args[a] = tuple;
      }

      // Lateness is judged record by record, against the watermark that the records before this
      // one set (as Kafka Streams and Flink do), so the outcome does not depend on batch sizes.
      const seq = this.seq++;
      if (!this.assign(rec, t, seq, keyValues, args, this.watermarks.value)) late.push(rec);
      // After a repartition a record advances the event time of the upstream task that wrote it.
      if (this.watermarks.observe(rec.origin ?? rec.position.partition, t, now)) this.watermarks.advance(now);
    }

    if (late.length > 0) {
      this.lateCount += late.length;
      this.opts.metrics.inc(LATE_METRIC, { node }, late.length);
      out.emit(late, LATE_PORT);
    }
    return this.advance(now, out);
  }

  /** Folds one record into its windows; false when every window it belongs to has closed (late). */
  private assign(rec: StreamRecord, t: number, seq: number, keyValues: unknown[], args: unknown[], watermark: number): boolean {
    const shape = this.opts.shape;
    const key = groupKeyString(keyValues);
    switch (shape.kind) {
      case 'tumbling': {
        const start = tumblingStart(t, shape.size);
        const end = start + shape.size;
        if (end <= watermark) return false;
        this.absorb(this.fixedPane(start, end, key, keyValues), rec, t, seq, args);
        return true;
      }
      case 'calendar': {
        const [start, end] = this.calendar!.window(t);
        if (end <= watermark) return false;
        this.absorb(this.fixedPane(start, end, key, keyValues), rec, t, seq, args);
        return true;
      }
      case 'hopping': {
        const open = hoppingStarts(t, shape.size, shape.advance).filter((s) => s + shape.size > watermark);
        if (open.length === 0) return false;
        // The record holds one reference; each further window it joins takes one more.
        if (open.length > 1) rec.ack.retain(open.length - 1);
        for (const start of open) this.absorb(this.fixedPane(start, start + shape.size, key, keyValues), rec, t, seq, args);
        return true;
      }
      case 'session':
        return this.assignSession(rec, t, seq, key, keyValues, args, watermark, shape.gap);
    }
  }

  private fixedPane(start: number, end: number, key: string, keyValues: unknown[]): Pane {
    let w = this.lastFixed !== undefined && this.lastFixed.start === start ? this.lastFixed : this.fixed.get(start);
    if (w) this.lastFixed = w;
    else {
      w = { start, end, panes: new Map() };
      this.fixed.set(start, w);
      this.lastFixed = w;
    }
    let pane = w.panes.get(key);
    if (!pane) {
      pane = this.newPane(start, end, start, key, keyValues.slice());
      w.panes.set(key, pane);
    }
    return pane;
  }

  private assignSession(
    rec: StreamRecord,
    t: number,
    seq: number,
    key: string,
    keyValues: unknown[],
    args: unknown[],
    watermark: number,
    gap: number,
  ): boolean {
    let list = this.sessions.get(key);
    const hits = list ? overlappingSessions(list, t, gap) : [];
    if (!list || hits.length === 0) {
      // Open sessions all end after the watermark, so only a brand-new session can be late.
      if (t + gap <= watermark) return false;
      const pane = this.newPane(t, t + gap, t, key, keyValues.slice());
      if (!list) {
        list = [];
        this.sessions.set(key, list);
      }
      list.splice(insertionIndex(list, t), 0, pane);
      if (pane.end < this.minSessionEnd) this.minSessionEnd = pane.end;
      this.absorb(pane, rec, t, seq, args);
      return true;
    }
    const joined = hits.map((i) => list![i]!);
    const target = joined[0]!;
    const bounds = mergedBounds(joined, t);
    for (const other of joined.slice(1)) this.mergeInto(target, other);
    list.splice(hits[0]! + 1, hits.length - 1);
    if (target.emittedStart !== undefined && target.emittedStart !== bounds.start) this.retract(target);
    target.start = bounds.start;
    target.last = bounds.last;
    target.end = bounds.last + gap;
    this.absorb(target, rec, t, seq, args);
    return true;
  }

  /**
   * Notes a pane that closed (or merged away) for the next snapshot of changes. One that no
   * snapshot stored needs no tombstone, so it leaves the set instead: without checkpoints no
   * snapshot is ever taken, and the set must not keep every pane the run ever had (it did, and a
   * file-to-file run of 1,000,000 events held 136,000 closed panes at 9 s).
   */
  private touchClosed(pane: Pane): void {
    if (pane.storedKey === undefined) this.touched.delete(pane);
    else this.touched.add(pane);
  }

  /** Session merge: `other`'s state and source references move to `target`; `other` disappears. */
  private mergeInto(target: Pane, other: Pane): void {
    if (other.emittedStart !== undefined) this.retract(other);
    for (let a = 0; a < target.accs.length; a++) target.accs[a]?.merge(other.accs[a]!);
    if (other.overLimit) this.dropRows(target);
    else if (target.rows && other.rows) {
      const merged = mergeBySeq(target.rows, target.rowSeqs!, other.rows, other.rowSeqs!);
      target.rows = merged.values;
      target.rowSeqs = merged.seqs;
      if (target.rows.length > this.maxRows) this.dropRows(target);
    }
    for (const [ack, n] of other.parents) target.parents.set(ack, (target.parents.get(ack) ?? 0) + n);
    other.parents.clear(); // its derived Ack now releases nothing on completion
    if (other.order < target.order) target.order = other.order;
    other.closed = true;
    this.touchClosed(other);
    this.openPanes--;
    other.ack.release();
  }

  /**
   * A pane past `maxRows` keeps no rows: memory stays bounded, its incremental aggregates go on,
   * and its output goes to the errors port (see renderAggregates). Failing the run instead would
   * fail again on every restart, since the same input fills the same pane again.
   */
  private dropRows(pane: Pane): void {
    if (pane.overLimit) return;
    pane.overLimit = true;
    pane.rows = undefined;
    pane.rowSeqs = undefined;
    const { node, metrics, logger, clock } = this.opts;
    metrics.inc(ROW_LIMIT_METRIC, { node });
    const now = clock.now();
    if (now - this.rowLimitWarnedAt < 60_000) return;
    this.rowLimitWarnedAt = now;
    logger?.warn(
      { node, window_start: toIsoUtc(pane.start), group: pane.keyValues, max_rows: this.maxRows },
      `window \`${node}\`: a group reached max_rows (${this.maxRows}) kept records in the window from ${toIsoUtc(pane.start)}; ${this.rowAggregateNames()} cannot be computed for it and its result will go to \`${node}.errors\` (counted in ${ROW_LIMIT_METRIC}; this warning at most once a minute)`,
    );
  }

  private rowAggregateNames(): string {
    return this.opts.aggregates
      .filter((a) => a.kind === 'expression')
      .map((a) => `\`${a.name}\``)
      .join(', ');
  }

  /**
   * An aggregate's accumulator from a pane's state entry. A composed aggregate that an earlier
   * sluice evaluated over kept records has no saved accumulator but the records: it is folded
   * from them (see foldComposedRows).
   */
  private loadPaneAccumulator(agg: AggregatePlan, saved: JsonValue | undefined, rows: unknown[] | undefined, rowSeqs: number[] | undefined): Accumulator | undefined {
    switch (agg.kind) {
      case 'builtin':
        return loadAccumulator(agg.builtin, saved);
      case 'expression':
        return undefined;
      case 'composed':
        if (saved !== null && saved !== undefined) return loadComposedAccumulator(agg.leaves, saved);
        if (!rows) throw new StateFormatError(`window state: aggregate \`${agg.name}\` has neither a saved accumulator nor records to rebuild one from`, this.opts.node);
        return foldComposedRows(agg, rows, rowSeqs ?? rows.map(() => 0), this.opts.node);
    }
  }

  private retract(pane: Pane): void {
    this.retractions.push({ keyValues: pane.keyValues, start: pane.emittedStart!, end: pane.end });
    pane.emittedStart = undefined;
  }

  private newPane(start: number, end: number, last: number, groupKey: string, keyValues: unknown[]): Pane {
    const parents = new Map<Ack, number>();
    const ack = Ack.derived(parents);
    ack.retain(); // the "open" reference, released when the pane closes
    ack.seal();
    this.openPanes++;
    return {
      start,
      end,
      last,
      groupKey,
      keyValues,
      accs: this.opts.aggregates.map(newAccumulator),
      rows: this.keepsRows ? [] : undefined,
      rowSeqs: this.keepsRows ? [] : undefined,
      overLimit: false,
      order: this.paneOrder++,
      parents,
      ack,
      dirty: false,
      closed: false,
    };
  }

  private absorb(pane: Pane, rec: StreamRecord, t: number, seq: number, args: unknown[]): void {
    this.touched.add(pane);
    pane.sinceEarly = true;
    if (this.opts.checkpointed) rec.ack.release();
    else pane.parents.set(rec.ack, (pane.parents.get(rec.ack) ?? 0) + 1);
    const accs = pane.accs;
    for (let a = 0; a < accs.length; a++) accs[a]?.add(args[a], t, seq);
    if (pane.rows) {
      if (pane.rows.length < this.maxRows) {
        pane.rows.push(rec.value);
        pane.rowSeqs!.push(seq);
      } else this.dropRows(pane);
    }
    if (this.opts.emit === 'update' && !pane.dirty) {
      pane.dirty = true;
      this.dirty.push(pane);
    }
  }

  /* ------------------------------------------------------------ watermark and emission */

  private advance(now: number, out: StepOutput): void | Promise<void> {
    this.watermarks.advance(now);
    this.watchHold(now);
    return this.emitAndClose(out, now);
  }

  /**
   * Reports a partition that holds the watermark back while another is ahead: the gauge always,
   * and, once the hold lasts HOLD_WARNING_MS, one warning and one count per hold. Windows behind
   * such a partition do not close, their source positions are not committed and state grows.
   */
  private watchHold(now: number): void {
    const { node, metrics, logger } = this.opts;
    const hold = this.watermarks.holdAt(now);
    const heldMs = hold ? now - hold.since : 0;
    metrics.set(HELD_SECONDS_METRIC, { node }, heldMs / 1000);
    const threshold = this.opts.holdWarningMs ?? HOLD_WARNING_MS;
    if (hold && heldMs >= threshold) {
      this.longHold = hold;
      if (this.warnedHoldSince === hold.since) return;
      this.warnedHoldSince = hold.since;
      metrics.inc(HOLDS_METRIC, { node });
      const idle = this.opts.idle;
      logger?.warn(
        { node, partition: hold.partition, held_s: Math.round(heldMs / 1000), watermark: isoOrNone(hold.watermark), ahead_partition: hold.aheadPartition, ahead: isoOrNone(hold.ahead), quiet_s: Math.round(hold.quietFor / 1000) },
        `window \`${node}\`: partition ${hold.partition} has held the watermark at ${isoOrNone(hold.watermark)} for ${formatSeconds(heldMs)} while partition ${hold.aheadPartition} is at ${isoOrNone(hold.ahead)}; ` +
          (hold.markerDriven
            ? `it is an upstream task that sends watermark markers, so only its markers (or its records) move it on, never its silence`
            : hold.quietFor >= heldMs
            ? `it has sent nothing for ${formatSeconds(hold.quietFor)}${idle === undefined ? ' and never counts as idle' : `, and stops holding once quiet for \`idle\` (${formatSeconds(idle)})`}`
            : `it is not quiet: its records are all behind its own highest event time, so \`idle\` does not release it`) +
          '. Windows after the watermark stay open and their input is not acknowledged until it moves.',
      );
    } else {
      if (this.longHold && this.warnedHoldSince !== undefined) {
        logger?.info({ node, watermark: isoOrNone(this.watermarks.value) }, `window \`${node}\`: the watermark moves again`);
      }
      this.longHold = undefined;
      this.warnedHoldSince = undefined;
    }
  }

  /**
   * Emits changed panes (update mode), then closes every pane the watermark has passed, then, when
   * early results are due at processing time `now`, emits those of the panes still open.
   */
  private emitAndClose(out: StepOutput, now?: number): void | Promise<void> {
    const outputs: PendingOutput[] = [];
    if (this.retractions.length > 0) out.emit(this.retractions.splice(0).map((r) => this.tombstone(r)));
    if (this.dirty.length > 0) {
      const changed = this.dirty.filter((p) => !p.closed && p.dirty).sort(byStartThenOrder);
      this.dirty.length = 0;
      for (const pane of changed) {
        pane.dirty = false;
        pane.emittedStart = pane.start;
        pane.ack.retain(); // the update's own reference; the sink releases it
        outputs.push(this.readPane(pane));
      }
    }
    const wm = this.watermarks.value;
    if (wm > this.closedUpTo) {
      this.closedUpTo = wm;
      for (const pane of this.closeUpTo(wm)) {
        if (this.opts.emit === 'final') {
          pane.ack.retain(); // the output's reference, taken before the open one goes
          outputs.push(this.readPane(pane));
        }
        pane.ack.release();
      }
    }
    if (now !== undefined && this.opts.early) this.earlyResults(now, outputs);
    if (outputs.length === 0) return;
    if (!this.rendersAtEmit) {
      out.emit(outputs.map((o) => this.toRecord(o)));
      return;
    }
    return this.renderAggregates(outputs, out);
  }

  /**
   * Early results due at `now`: each open pane with records since its last early result, in emit
   * order. The first call only sets when the first is due, so a restart does not fire at once.
   */
  private earlyResults(now: number, outputs: PendingOutput[]): void {
    const schedule = this.opts.early!;
    if (this.nextEarlyAt === undefined) this.nextEarlyAt = schedule.nextAfter(now);
    if (now < this.nextEarlyAt) return;
    this.nextEarlyAt = schedule.nextAfter(now);
    const open: Pane[] = [];
    for (const w of this.fixed.values()) for (const pane of w.panes.values()) if (pane.sinceEarly) open.push(pane);
    for (const list of this.sessions.values()) for (const pane of list) if (pane.sinceEarly) open.push(pane);
    open.sort(byStartThenOrder);
    for (const pane of open) {
      pane.sinceEarly = false;
      pane.ack.retain(); // the early result's own reference; the sink releases it
      outputs.push({ ...this.readPane(pane), early: true });
    }
    this.earlyCount += open.length;
  }

  /** Removes and returns, in emit order, every pane whose window ends at or before `wm`. */
  private closeUpTo(wm: number): Pane[] {
    const closed: Pane[] = [];
    if (this.opts.shape.kind === 'session') {
      if (wm < this.minSessionEnd) return closed;
      let minEnd = Number.POSITIVE_INFINITY;
      for (const [key, list] of this.sessions) {
        const keep = list.filter((p) => {
          if (p.end <= wm) {
            closed.push(p);
            return false;
          }
          if (p.end < minEnd) minEnd = p.end;
          return true;
        });
        if (keep.length === 0) this.sessions.delete(key);
        else if (keep.length !== list.length) this.sessions.set(key, keep);
      }
      this.minSessionEnd = minEnd;
      closed.sort(byStartThenOrder);
    } else {
      const windows = [...this.fixed.values()].filter((w) => w.end <= wm).sort((a, b) => a.start - b.start);
      for (const w of windows) {
        this.fixed.delete(w.start);
        if (this.lastFixed === w) this.lastFixed = undefined;
        for (const pane of w.panes.values()) closed.push(pane);
      }
    }
    for (const pane of closed) {
      pane.closed = true;
      this.touchClosed(pane);
    }
    this.openPanes -= closed.length;
    return closed;
  }

  private readPane(pane: Pane): PendingOutput {
    return {
      pane,
      results: pane.accs.map((acc) => (acc ? acc.result() : undefined)),
      rows: pane.rows ? pane.rows.slice() : undefined,
      overLimit: pane.overLimit,
    };
  }

  /**
   * Evaluates what is left at emission: a composed aggregate's rest over its built-ins' results
   * (compiled, so mostly synchronous) and expression aggregates over the group's values. Outputs
   * whose evaluation failed, or whose group outgrew `maxRows`, go to the errors port. Returns a
   * promise only when some evaluation is asynchronous; all panes are then evaluated concurrently.
   */
  private renderAggregates(outputs: PendingOutput[], out: StepOutput): void | Promise<void> {
    const failures: (Error | undefined)[] = new Array(outputs.length);
    const pending: Promise<void>[] = [];
    const aggregates = this.opts.aggregates;
    outputs.forEach((o, i) => {
      for (let a = 0; a < aggregates.length; a++) {
        const agg = aggregates[a]!;
        if (agg.kind === 'builtin') continue;
        const failed = (err: unknown) => {
          failures[i] ??= this.recordError('E_WINDOW_AGGREGATE', `aggregate \`${agg.name}\` (\`${agg.source}\`) failed: ${messageOf(err)}`);
        };
        if (agg.kind === 'expression' && o.overLimit) {
          failures[i] ??= this.rowLimitError(agg.name, agg.source, o.pane);
          o.results[a] = undefined;
          continue;
        }
        let result: unknown;
        try {
          result = agg.kind === 'composed' ? agg.combine.evaluate(undefined, composedBindings(agg.variables, leafResults(o.results[a]))) : agg.expression.evaluate(o.rows ?? []);
        } catch (err) {
          failed(err);
          o.results[a] = undefined;
          continue;
        }
        if (result instanceof Promise) {
          o.results[a] = undefined;
          pending.push(
            result.then((v: unknown) => {
              o.results[a] = v;
            }, failed),
          );
        } else o.results[a] = result;
      }
    });
    if (pending.length === 0) return this.emitRendered(outputs, failures, out);
    return Promise.all(pending).then(() => this.emitRendered(outputs, failures, out));
  }

  private emitRendered(outputs: PendingOutput[], failures: (Error | undefined)[], out: StepOutput): void {
    const ok: StreamRecord[] = [];
    outputs.forEach((o, i) => {
      const rec = this.toRecord(o);
      const failure = failures[i];
      if (failure) {
        if (ok.length) out.emit(ok.splice(0));
        out.fail(rec, failure);
      } else ok.push(rec);
    });
    if (ok.length) out.emit(ok);
  }

  private rowLimitError(name: string, source: string, pane: Pane): RecordError {
    return this.recordError(
      'E_WINDOW_ROWS',
      `aggregate \`${name}\` (\`${source}\`) is evaluated over every record of its group, and the group had more than max_rows (${this.maxRows}) in the window from ${toIsoUtc(pane.start)}: it is left null. Compose it from built-ins ($count, $sum, $average, $min, $max ...), which need no kept records, or raise \`window.max_rows\``,
    );
  }

  private toRecord(o: PendingOutput): StreamRecord {
    const { pane, results } = o;
    const windowStart = toIsoUtc(pane.start);
    const windowEnd = toIsoUtc(pane.end);
    const value: Record<string, unknown> = {};
    const groupBy = this.opts.groupBy;
    for (let g = 0; g < groupBy.length; g++) value[groupBy[g]!.name] = pane.keyValues[g];
    value.window_start = windowStart;
    value.window_end = windowEnd;
    const aggregates = this.opts.aggregates;
    for (let a = 0; a < aggregates.length; a++) {
      const r = results[a];
      value[aggregates[a]!.name] = r === undefined ? null : r;
    }
    if (this.opts.early) value.early = o.early === true;
    return {
      key: this.outputKey(pane.keyValues, windowStart),
      value,
      time: pane.end - 1,
      headers: {},
      meta: { window_start: windowStart, window_end: windowEnd, ...(this.opts.early ? { early: o.early === true } : {}) },
      position: this.outputPosition(pane.start),
      ack: pane.ack,
    };
  }

  /** The key of an output and of its retraction: the group fields, then window_start. */
  private outputKey(keyValues: readonly unknown[], windowStart: string): Record<string, unknown> {
    const key: Record<string, unknown> = {};
    const groupBy = this.opts.groupBy;
    for (let g = 0; g < groupBy.length; g++) key[groupBy[g]!.name] = keyValues[g];
    key.window_start = windowStart;
    return key;
  }

  private outputPosition(start: number): StreamRecord['position'] {
    return { source: this.opts.node, partition: this.opts.node, offset: String(start) };
  }

  /**
   * A retraction: the key of a session update that no longer stands, with a null value (a Kafka
   * tombstone). It derives from no source record still held, so it carries an Ack of its own.
   */
  private tombstone(r: { keyValues: unknown[]; start: number; end: number }): StreamRecord {
    const windowStart = toIsoUtc(r.start);
    const ack = Ack.none();
    ack.retain();
    ack.seal();
    return {
      key: this.outputKey(r.keyValues, windowStart),
      value: null,
      time: r.end - 1,
      headers: {},
      meta: { window_start: windowStart, window_end: toIsoUtc(r.end), retracted: true },
      position: this.outputPosition(r.start),
      ack,
    };
  }

  private recordError(code: string, message: string): RecordError {
    return new RecordError(code, message, this.opts.node);
  }

  /* ------------------------------------------------------------ checkpoints */

  /**
   * Every open pane as one entry keyed by window and group (so a changelog rewrites only panes
   * that changed, and a closed pane becomes a tombstone), and a header with the per-partition
   * watermarks and counters. Ack references are not part of it: a checkpoint commits the source
   * positions it covers, so restored panes hold no source references.
   */
  snapshot(options: SnapshotOptions = {}): StepState {
    const header = this.header();
    const entries = new Map<string, JsonValue>();
    if (options.changesOnly) {
      // Only panes touched since the last snapshot: a closed or merged-away pane is removed, a
      // session that grew is stored under its new key and removed under its old one.
      const removed: string[] = [];
      for (const p of [...this.touched].sort(byStartThenOrder)) {
        const key = paneKey(p.start, p.end, p.groupKey);
        if (p.storedKey !== undefined && (p.closed || p.storedKey !== key)) removed.push(p.storedKey);
        if (p.closed) p.storedKey = undefined;
        else {
          entries.set(key, this.paneEntry(p));
          p.storedKey = key;
        }
      }
      this.touched.clear();
      return { header, entries, removed, size: this.openPanes };
    }
    for (const p of this.openPaneList()) {
      const key = paneKey(p.start, p.end, p.groupKey);
      entries.set(key, this.paneEntry(p));
      p.storedKey = key;
    }
    this.touched.clear();
    return { header, entries };
  }

  private openPaneList(): Pane[] {
    const panes: Pane[] = [];
    for (const w of this.fixed.values()) for (const p of w.panes.values()) panes.push(p);
    for (const list of this.sessions.values()) panes.push(...list);
    return panes.sort(byStartThenOrder);
  }

  private paneEntry(p: Pane): JsonValue {
    const entry: PaneState = {
      start: p.start,
      end: p.end,
      last: p.last,
      order: p.order,
      keyValues: p.keyValues.map(encodeValue),
      accs: p.accs.map((acc) => (acc ? acc.save() : null)),
      rows: p.rows ? p.rows.map(encodeValue) : null,
      // Copied: a checkpoint completes while processing goes on, which appends to the pane's.
      rowSeqs: p.rowSeqs ? [...p.rowSeqs] : null,
      ...(p.overLimit ? { overLimit: true } : {}),
    };
    return entry as unknown as JsonValue;
  }

  private header(): JsonValue {
    const header: WindowHeader = {
      version: STATE_VERSION,
      seq: this.seq,
      paneOrder: this.paneOrder,
      lateCount: this.lateCount,
      closedUpTo: Number.isFinite(this.closedUpTo) ? this.closedUpTo : null,
      watermarks: this.watermarks.snapshot(),
    };
    return header as unknown as JsonValue;
  }

  /** Replaces all state with a snapshot; call on a fresh operator, before any record. */
  restore(state: StepState): void {
    const h = parseWindowHeader(state, this.opts.node);
    this.fixed.clear();
    this.lastFixed = undefined;
    this.sessions.clear();
    this.dirty.length = 0;
    this.touched.clear();
    this.openPanes = 0;
    this.minSessionEnd = Number.POSITIVE_INFINITY;
    this.seq = h.seq;
    this.lateCount = h.lateCount;
    this.closedUpTo = h.closedUpTo ?? Number.NEGATIVE_INFINITY;
    this.watermarks.restore(h.watermarks, this.opts.clock.now());
    const panes = [...state.entries].map(([storedKey, e]) => ({ storedKey, ...parsePaneState(e, this.opts.node) }));
    panes.sort((a, b) => a.start - b.start || a.order - b.order);
    for (const p of panes) {
      const keyValues = p.keyValues.map(decodeValue);
      const key = groupKeyString(keyValues);
      const pane = this.newPane(p.start, p.end, p.last, key, keyValues);
      pane.order = p.order;
      pane.storedKey = p.storedKey;
      const rows = p.rows ? p.rows.map(decodeValue) : undefined;
      const rowSeqs = p.rowSeqs ?? rows?.map(() => 0);
      pane.accs = this.opts.aggregates.map((a, i) => this.loadPaneAccumulator(a, p.accs[i], rows, rowSeqs));
      if (p.overLimit === true) {
        pane.overLimit = true;
        pane.rows = undefined;
        pane.rowSeqs = undefined;
      } else if (this.keepsRows) {
        pane.rows = rows ?? [];
        pane.rowSeqs = rowSeqs ?? [];
      }
      if (this.opts.shape.kind === 'session') {
        const list = this.sessions.get(key) ?? [];
        list.splice(insertionIndex(list, pane.start), 0, pane);
        this.sessions.set(key, list);
        if (pane.end < this.minSessionEnd) this.minSessionEnd = pane.end;
      } else {
        let w = this.fixed.get(p.start);
        if (!w) {
          w = { start: p.start, end: p.end, panes: new Map() };
          this.fixed.set(p.start, w);
        }
        w.panes.set(key, pane);
      }
    }
    // Panes created after the restore sort after every restored one, as they would have.
    this.paneOrder = Math.max(h.paneOrder ?? 0, ...panes.map((p) => p.order + 1));
  }
}

/** A fresh accumulator for an aggregate; expression aggregates have none (their rows are kept). */
function newAccumulator(agg: AggregatePlan): Accumulator | undefined {
  switch (agg.kind) {
    case 'builtin':
      return createAccumulator(agg.builtin);
    case 'composed':
      return createComposedAccumulator(agg.leaves);
    case 'expression':
      return undefined;
  }
}

/** What readPane read from a composed aggregate's accumulator: its built-ins' results. */
function leafResults(read: unknown): readonly unknown[] {
  if (!Array.isArray(read)) throw new TypeError('a composed aggregate reads as the list of its built-ins\' results');
  return read;
}

/** The key of a pane's state entry: window bounds and group. Canonical, so compaction collapses versions. */
function paneKey(start: number, end: number, groupKey: string): string {
  return `${start}|${end}|${groupKey}`;
}

/** The header of a window's state. */
interface WindowHeader {
  version: number;
  seq: number;
  paneOrder?: number;
  lateCount: number;
  closedUpTo: number | null;
  watermarks: WatermarkSnapshot;
}

/** One pane's state entry. */
interface PaneState {
  start: number;
  end: number;
  last: number;
  order: number;
  keyValues: JsonValue[];
  accs: JsonValue[];
  rows: JsonValue[] | null;
  rowSeqs: number[] | null;
  /** Present (true) once the pane outgrew maxRows and dropped its rows. */
  overLimit?: boolean;
}

/** Checks a state header's shape before trusting it. */
function parseWindowHeader(state: StepState, node: string): WindowHeader {
  const fail = (what: string): never => {
    throw new StateFormatError(`window state: ${what}`, node);
  };
  if (!isObject(state) || !(state.entries instanceof Map)) return fail('not a step state');
  const h = state.header;
  if (!isObject(h)) return fail('header is not an object');
  if (h.version !== STATE_VERSION) fail(`version ${String(h.version)} is not ${STATE_VERSION}`);
  if (typeof h.seq !== 'number' || typeof h.lateCount !== 'number') fail('seq and lateCount must be numbers');
  if (h.paneOrder !== undefined && typeof h.paneOrder !== 'number') fail('paneOrder must be a number');
  if (h.closedUpTo !== null && typeof h.closedUpTo !== 'number') fail('closedUpTo must be a number or null');
  const wm = h.watermarks;
  if (!isObject(wm) || !Array.isArray(wm.partitions)) return fail('watermarks missing');
  if (wm.watermark !== null && typeof wm.watermark !== 'number') fail('watermark must be a number or null');
  for (const p of wm.partitions) {
    if (!isObject(p) || typeof p.partition !== 'string' || (p.maxEventTime !== null && typeof p.maxEventTime !== 'number')) return fail('bad partition entry');
    // Absent in snapshots of older versions and for partitions that never sent a marker.
    if ((p.markerDriven !== undefined && typeof p.markerDriven !== 'boolean') || (p.idle !== undefined && typeof p.idle !== 'boolean')) fail('bad partition flags');
  }
  return h as unknown as WindowHeader;
}

/** Checks one pane entry's shape before trusting it. */
function parsePaneState(entry: JsonValue, node: string): PaneState {
  const fail = (what: string): never => {
    throw new StateFormatError(`window state: ${what}`, node);
  };
  if (!isObject(entry)) return fail('a pane is not an object');
  if (typeof entry.start !== 'number' || typeof entry.end !== 'number' || typeof entry.last !== 'number') fail('pane bounds must be numbers');
  if (typeof entry.order !== 'number') fail('pane order must be a number');
  if (!Array.isArray(entry.keyValues) || !Array.isArray(entry.accs)) fail('pane keyValues and accs must be arrays');
  if (entry.rows !== null && !Array.isArray(entry.rows)) fail('pane rows must be an array or null');
  if (entry.rowSeqs !== null && !Array.isArray(entry.rowSeqs)) fail('pane rowSeqs must be an array or null');
  if (entry.overLimit !== undefined && typeof entry.overLimit !== 'boolean') fail('pane overLimit must be a boolean');
  return entry as unknown as PaneState;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function byStartThenOrder(a: Pane, b: Pane): number {
  return a.start - b.start || a.order - b.order;
}

function isoOrNone(ms: number): string {
  return Number.isFinite(ms) ? toIsoUtc(ms) : ms > 0 ? 'the end' : 'the beginning (nothing received)';
}

/** `90s` as `1m30s`: durations as specs write them. */
function formatSeconds(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${rest || (!h && !m) ? `${rest}s` : ''}`;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'bigint') return `${v}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as { message?: unknown; code?: unknown };
  if (e && typeof e.message === 'string') return `${typeof e.code === 'string' ? e.code + ': ' : ''}${e.message}`;
  return String(err);
}
