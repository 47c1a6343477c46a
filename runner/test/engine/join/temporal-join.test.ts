/**
 * The temporal join operator (engine/join/temporal-join.ts), made by the `join` step's factory with
 * a ctx and driven by hand: batches whose `from` is the table step (`employees`) or the stream's
 * step (`inserts`), partition events with the inputs they come `via`, ticks of a ManualClock.
 *
 * Last in the file: a property test comparing the join, over seeded random histories, with a
 * brute-force answer this file computes on its own.
 */
import { describe, expect, it } from 'vitest';
import { joinStep, type JoinSettings } from '../../../src/components/steps/join.ts';
import { Ack } from '../../../src/engine/ack.ts';
import { stepStateFromJson, stepStateToJson } from '../../../src/engine/checkpoint/checkpoint.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { SharedResources, type ComponentContext, type JsonValue, type PartitionEvent, type StepOutput, type StepState } from '../../../src/engine/component.ts';
import { RecordError } from '../../../src/engine/errors.ts';
import { JOIN_LATE_PORT, type TemporalJoin } from '../../../src/engine/join/temporal-join.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { Batch, StreamRecord } from '../../../src/engine/record.ts';
import { RECORDS_LATE } from '../../../src/engine/runtime-metrics.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

const MIN = 60_000;
/** Event time of the examples: 09:00 on a Monday. */
const T = Date.parse('2025-01-06T09:00:00Z');
/** Processing time at the start of every harness. */
const NOW = 1_000_000;
const IDLE = 10_000;

const TABLE = 'employees';
const STREAM = 'inserts';
const TABLE_PART = 'employee-changes/0';
const STREAM_PART = 'activities/0';

/** A StepOutput that keeps everything, and releases like the runtime does for drops and failures. */
class RecordingOutput implements StepOutput {
  readonly emitted: { port: string; records: StreamRecord[] }[] = [];
  readonly failed: { record: StreamRecord; error: Error }[] = [];
  readonly dropped: { record: StreamRecord; reason: string }[] = [];

  emit(records: StreamRecord[], port = 'out'): void {
    this.emitted.push({ port, records });
  }
  drop(record: StreamRecord, reason: string): void {
    this.dropped.push({ record, reason });
    record.ack.release();
  }
  fail(record: StreamRecord, error: Error): void {
    this.failed.push({ record, error });
    record.ack.release();
  }
  records(port = 'out'): StreamRecord[] {
    return this.emitted.filter((e) => e.port === port).flatMap((e) => e.records);
  }
  values(port = 'out'): Record<string, unknown>[] {
    return this.records(port).map((r) => r.value as Record<string, unknown>);
  }
  /** Activity id -> the joined employee's department (null: no row), in output order. */
  joined(port = 'out'): [unknown, unknown][] {
    return this.values(port).map((v) => [v.id, (v.employee as { department?: unknown } | null)?.department ?? null]);
  }
  ids(port = 'out'): unknown[] {
    return this.values(port).map((v) => v.id);
  }
  codes(): string[] {
    return this.failed.map((f) => (f.error as RecordError).code);
  }
  /** What a sink does once written: releases every output's reference. */
  acknowledgeAll(): void {
    for (const e of this.emitted) for (const r of e.records) r.ack.release();
  }
}

/** One batch as the runtime hands it to the join, with an Ack holding one reference per record. */
class SourceBatch {
  completed = false;
  readonly ack = new Ack(() => (this.completed = true));
  readonly batch: Batch;
  constructor(from: string, partition: string, records: { key: unknown; value: unknown; time: number }[], firstOffset: number) {
    this.ack.retain(records.length);
    this.ack.seal();
    this.batch = {
      partition: from,
      from,
      records: records.map((r, i) => ({
        key: r.key,
        value: r.value,
        time: r.time,
        headers: {},
        meta: {},
        position: { source: partition.split('/')[0]!, partition, offset: String(firstOffset + i) },
        ack: this.ack,
      })),
    };
  }
}

/** [employee id, row or null (delete), time] */
type Change = [number, Record<string, unknown> | null, number];
/** [activity id, employee id, time] */
type Activity = [string, unknown, number];

const emp = (id: number, department: string): Record<string, unknown> => ({ id, name: `e${id}`, department });

class Harness {
  readonly clock = new ManualClock(NOW);
  readonly metrics = new Metrics();
  readonly out = new RecordingOutput();
  readonly batches: SourceBatch[] = [];
  readonly join: TemporalJoin;
  private readonly offsets = new Map<string, number>();

  constructor(settings: Partial<JoinSettings> = {}, opts: { checkpointed?: boolean } = {}) {
    const ctx: ComponentContext = {
      name: 'with-employee',
      logger: silentLogger,
      clock: this.clock,
      metrics: this.metrics,
      mode: 'test',
      ...(opts.checkpointed ? { checkpoints: { delivery: 'exactly-once' as const, applicationId: 'app', shared: new SharedResources() } } : {}),
    };
    const config = { join: { table: TABLE, on: 'employee_id', as: 'employee', type: 'left' as const, idle: `${IDLE / 1000}s`, ...settings } };
    this.join = joinStep.create(config, ctx) as TemporalJoin;
  }

  private nextOffset(partition: string, n: number): number {
    const first = this.offsets.get(partition) ?? 0;
    this.offsets.set(partition, first + n);
    return first;
  }

  async table(changes: Change[], partition = TABLE_PART): Promise<SourceBatch> {
    const sb = new SourceBatch(TABLE, partition, changes.map(([key, value, time]) => ({ key, value, time })), this.nextOffset(partition, changes.length));
    this.batches.push(sb);
    await this.join.process(sb.batch, this.out);
    return sb;
  }

  async stream(activities: Activity[], partition = STREAM_PART): Promise<SourceBatch> {
    const recs = activities.map(([id, employee_id, time]) => ({ key: id, value: employee_id === undefined ? { id } : { id, employee_id }, time }));
    return this.streamRaw(recs, partition);
  }

  async streamRaw(recs: { key: unknown; value: unknown; time: number }[], partition = STREAM_PART): Promise<SourceBatch> {
    const sb = new SourceBatch(STREAM, partition, recs, this.nextOffset(partition, recs.length));
    this.batches.push(sb);
    await this.join.process(sb.batch, this.out);
    return sb;
  }

  partitions(event: PartitionEvent, via?: readonly string[]): void {
    this.join.onPartitions!(event, this.out, via);
  }
  assignTable(...partitions: string[]): void {
    this.partitions({ type: 'assign', partitions: partitions.length ? partitions : [TABLE_PART] }, [TABLE]);
  }
  revokeTable(...partitions: string[]): void {
    this.partitions({ type: 'revoke', partitions: partitions.length ? partitions : [TABLE_PART] }, [TABLE]);
  }
  assignStream(...partitions: string[]): void {
    this.partitions({ type: 'assign', partitions: partitions.length ? partitions : [STREAM_PART] }, [STREAM]);
  }
  /** Processing time passes by `ms`, then the runtime's tick. */
  tick(ms: number): void {
    this.clock.advance(ms);
    this.join.onTick!(this.clock.now(), this.out);
  }
  async end(): Promise<void> {
    await this.join.onEnd!(this.out);
  }
  get waiting(): number {
    return this.join.stats().waiting as number;
  }
  counter(name: string): number {
    return this.metrics.counter(name, { node: 'with-employee' });
  }
}

/** A table that has ended (its one partition revoked): every record is answered at once. */
async function endedTable(h: Harness, changes: Change[]): Promise<void> {
  h.assignTable();
  await h.table(changes);
  h.revokeTable();
}

describe('TemporalJoin: versioned answers', () => {
  it('answers each record with the row its key had at the record\'s event time', async () => {
    const h = new Harness();
    h.assignTable();
    await h.table([
      [1, emp(1, 'Sales'), T],
      [2, emp(2, 'Finance'), T],
      [2, null, T + 60 * MIN],
      [1, emp(1, 'Marketing'), T + 90 * MIN],
      [2, emp(2, 'Legal'), T + 120 * MIN],
      [3, emp(3, 'Ops'), T + 180 * MIN],
    ]);
    await h.stream([
      ['a1', 1, T + 30 * MIN],
      ['a2', 1, T + 90 * MIN - 1],
      ['a3', 1, T + 90 * MIN],
      ['a4', 2, T + 30 * MIN],
      ['a5', 2, T + 60 * MIN],
      ['a6', 2, T + 120 * MIN - 1],
      ['a7', 2, T + 120 * MIN],
      ['a8', 9, T + 10 * MIN],
      ['a9', 1, T - 1],
    ]);
    expect(h.out.joined()).toEqual([
      ['a1', 'Sales'],
      ['a2', 'Sales'],
      ['a3', 'Marketing'],
      ['a4', 'Finance'],
      ['a5', null],
      ['a6', null],
      ['a7', 'Legal'],
      ['a8', null],
      ['a9', null],
    ]);
    // The whole row goes under `as`, and the record's own fields stay.
    expect(h.out.values()[0]).toEqual({ id: 'a1', employee_id: 1, employee: emp(1, 'Sales') });
    expect(h.waiting).toBe(0);
    expect(h.join.stats()).toMatchObject({ unmatched: 4, late: 0, late_table_changes: 0 });
  });

  it('holds a record while an assigned table partition is behind its time, and releases in event-time order as the partition advances', async () => {
    const h = new Harness();
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T]]);
    await h.stream([
      ['late-morning', 1, T + 40 * MIN],
      ['early', 1, T + 20 * MIN],
      ['mid', 1, T + 30 * MIN],
    ]);
    expect(h.out.emitted).toEqual([]);
    expect(h.waiting).toBe(3);
    expect(h.join.stats().table_watermark).toBe(new Date(T).toISOString());

    await h.table([[1, emp(1, 'Marketing'), T + 25 * MIN]]);
    expect(h.out.joined()).toEqual([['early', 'Sales']]);

    await h.table([[2, emp(2, 'Ops'), T + 60 * MIN]]);
    expect(h.out.joined()).toEqual([
      ['early', 'Sales'],
      ['mid', 'Marketing'],
      ['late-morning', 'Marketing'],
    ]);
    expect(h.waiting).toBe(0);
  });

  it('holds a record at exactly the time its table partition has reached: more changes at that time may follow', async () => {
    const h = new Harness();
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T]]);
    await h.stream([['a', 2, T + 10 * MIN]]);
    // Employee 1's change at 09:10 brings the partition to the record's time...
    await h.table([[1, emp(1, 'Marketing'), T + 10 * MIN]]);
    expect(h.waiting).toBe(1);
    // ...and employee 2, committed at the same instant, comes in the next batch.
    await h.table([[2, emp(2, 'Ops'), T + 10 * MIN]]);
    expect(h.waiting).toBe(1);
    await h.table([[3, emp(3, 'Legal'), T + 10 * MIN + 1]]);
    expect(h.out.joined()).toEqual([['a', 'Ops']]);
  });

  it('waits for the slowest of several table partitions', async () => {
    const h = new Harness();
    h.assignTable('employee-changes/0', 'employee-changes/1');
    await h.table([[1, emp(1, 'Sales'), T + 60 * MIN]], 'employee-changes/0');
    await h.stream([['a', 1, T + 30 * MIN]]);
    // employee-changes/1 has sent nothing: it holds the record back.
    expect(h.waiting).toBe(1);
    await h.table([[2, emp(2, 'Ops'), T + 10 * MIN]], 'employee-changes/1');
    expect(h.waiting).toBe(1);
    await h.table([[1, emp(1, 'Marketing'), T + 20 * MIN]], 'employee-changes/1');
    expect(h.waiting).toBe(1);
    await h.table([[2, emp(2, 'Ops'), T + 45 * MIN]], 'employee-changes/1');
    expect(h.out.joined()).toEqual([['a', 'Marketing']]);
  });

  it('releases a waiting record once its table partition has been quiet for `idle`', async () => {
    const h = new Harness();
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T]]);
    await h.stream([
      ['b', 1, T + 20 * MIN],
      ['a', 1, T + 10 * MIN],
    ]);
    h.tick(IDLE - 1);
    expect(h.waiting).toBe(2);
    h.tick(1);
    expect(h.out.joined()).toEqual([
      ['a', 'Sales'],
      ['b', 'Sales'],
    ]);
    expect(h.join.stats().table_watermark).toBe('caught up');
    // Every table partition idle: records pass at once.
    await h.stream([['c', 1, T + 50 * MIN]]);
    expect(h.out.ids()).toEqual(['a', 'b', 'c']);
    // A change makes the partition active again: a record after it waits again.
    await h.table([[1, emp(1, 'Marketing'), T + 55 * MIN]]);
    await h.stream([['d', 1, T + 70 * MIN]]);
    expect(h.waiting).toBe(1);
  });

  it('releases waiting records before a newer one that finds the table idle, keeping event-time order', async () => {
    // No tick came between the partition going idle and the next record (ticks are once a second,
    // records may come at any time): the older waiting record still leaves first.
    const h = new Harness();
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T]]);
    await h.stream([['older', 1, T + 30 * MIN]]);
    h.clock.advance(IDLE);
    await h.stream([['newer', 1, T + 40 * MIN]]);
    expect(h.out.ids()).toEqual(['older', 'newer']);
  });

  it('releases waiting records when the table\'s partitions are all revoked (a bounded table source ended)', async () => {
    const h = new Harness();
    h.assignTable('employee-changes/0', 'employee-changes/1');
    await h.table([[1, emp(1, 'Sales'), T]]);
    await h.stream([
      ['b', 1, T + 20 * MIN],
      ['a', 1, T + 10 * MIN],
    ]);
    h.revokeTable('employee-changes/0');
    expect(h.waiting).toBe(2);
    h.revokeTable('employee-changes/1');
    expect(h.out.joined()).toEqual([
      ['a', 'Sales'],
      ['b', 'Sales'],
    ]);
    // Later records pass at once.
    await h.stream([['c', 1, T + 90 * MIN]]);
    expect(h.out.ids()).toEqual(['a', 'b', 'c']);
  });

  it('releases everything still waiting at the end of input, in event-time order', async () => {
    const h = new Harness();
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T]]);
    await h.stream([
      ['c', 1, T + 30 * MIN],
      ['a', 1, T + 10 * MIN],
    ]);
    await h.stream([['b', 1, T + 20 * MIN]], 'activities/1');
    expect(h.waiting).toBe(3);
    await h.end();
    expect(h.out.ids()).toEqual(['a', 'b', 'c']);
    expect(h.waiting).toBe(0);
  });

  it('with no table partition ever known, waits `idle` from its first call, then lets records pass', async () => {
    const h = new Harness();
    h.assignStream();
    h.tick(IDLE / 2);
    await h.stream([['a', 1, T]]);
    expect(h.waiting).toBe(1);
    h.tick(IDLE / 2 - 1);
    expect(h.waiting).toBe(1);
    h.tick(1);
    expect(h.out.joined()).toEqual([['a', null]]);
    await h.stream([['b', 1, T + MIN]]);
    expect(h.out.ids()).toEqual(['a', 'b']);
  });
});

describe('TemporalJoin: unmatched, latest, failures', () => {
  const changes: Change[] = [[1, emp(1, 'Sales'), T]];
  const activities: Activity[] = [
    ['known', 1, T + MIN],
    ['stranger', 9, T + MIN],
    ['before-hire', 1, T - MIN],
    ['no-key', undefined, T + MIN],
  ];

  it('inner drops a record without a row, and counts it', async () => {
    const h = new Harness({ type: 'inner' });
    await endedTable(h, changes);
    await h.stream(activities);
    expect(h.out.joined()).toEqual([['known', 'Sales']]);
    expect(h.out.dropped.map((d) => [(d.record.value as { id: string }).id, d.reason])).toEqual([
      ['stranger', 'unmatched'],
      ['before-hire', 'unmatched'],
      ['no-key', 'unmatched'],
    ]);
    expect(h.join.stats().unmatched).toBe(3);
    expect(h.counter('sluice_join_unmatched_total')).toBe(3);
    expect(h.out.failed).toEqual([]);
  });

  it('left passes a record without a row on with null', async () => {
    const h = new Harness({ type: 'left' });
    await endedTable(h, changes);
    await h.stream(activities);
    expect(h.out.joined()).toEqual([
      ['known', 'Sales'],
      ['stranger', null],
      ['before-hire', null],
      ['no-key', null],
    ]);
    expect(h.out.values()[1]).toEqual({ id: 'stranger', employee_id: 9, employee: null });
    expect(h.counter('sluice_join_unmatched_total')).toBe(3);
  });

  for (const type of ['inner', 'left'] as const) {
    it(`unmatched: errors sends a ${type} join's record without a row to errors, naming key and time`, async () => {
      const h = new Harness({ type, unmatched: 'errors' });
      await endedTable(h, changes);
      await h.stream(activities);
      expect(h.out.ids()).toEqual(['known']);
      expect(h.out.codes()).toEqual(['E_JOIN_UNMATCHED', 'E_JOIN_UNMATCHED', 'E_JOIN_UNMATCHED']);
      expect(h.out.failed[0]!.error.message).toContain(new Date(T + MIN).toISOString());
      expect(h.out.failed[2]!.error.message).toContain('no key');
      expect(h.out.dropped).toEqual([]);
      expect(h.counter('sluice_join_unmatched_total')).toBe(3);
    });
  }

  it('mode latest answers at once with the row it has, whatever the times', async () => {
    const h = new Harness({ mode: 'latest' });
    // A table partition assigned and far behind: latest does not wait for it.
    h.assignTable();
    await h.stream([['before', 1, T]]);
    await h.table([[1, emp(1, 'Sales'), T + 100 * MIN]]);
    await h.stream([['a', 1, T]]);
    await h.table([[1, emp(1, 'Marketing'), T + 50 * MIN]]);
    await h.stream([['b', 1, T]]);
    await h.table([[1, null, T + 60 * MIN]]);
    await h.stream([['c', 1, T + 200 * MIN]]);
    expect(h.out.joined()).toEqual([
      ['before', null],
      ['a', 'Sales'],
      ['b', 'Marketing'],
      ['c', null],
    ]);
    expect(h.waiting).toBe(0);
    // Latest keeps one version per key, and none for a deleted one.
    expect(h.join.stats().table_keys).toBe(0);
  });

  it('fails a record whose value is not an object, or whose `on` or `time` fails', async () => {
    const h = new Harness();
    await endedTable(h, changes);
    await h.streamRaw([
      { key: 'k', value: 'plain text', time: T },
      { key: 'k', value: [1, 2], time: T },
    ]);
    expect(h.out.codes()).toEqual(['E_JOIN_VALUE', 'E_JOIN_VALUE']);

    const throwing = new Harness({ on: '$error("no employee here")' });
    await endedTable(throwing, changes);
    await throwing.stream([['a', 1, T]]);
    expect(throwing.out.codes()).toEqual(['E_EXPR_EVAL']);
    expect(throwing.out.failed[0]!.error.message).toContain('no employee here');

    const timed = new Harness({ time: 'at' });
    await endedTable(timed, changes);
    await timed.streamRaw([
      { key: 'k', value: { id: 'bad', employee_id: 1, at: 'yesterday' }, time: T },
      { key: 'k', value: { id: 'none', employee_id: 1 }, time: T },
      { key: 'k', value: { id: 'ok', employee_id: 1, at: new Date(T + MIN).toISOString() }, time: 0 },
    ]);
    expect(timed.out.codes()).toEqual(['E_JOIN_TIME', 'E_JOIN_TIME']);
    expect(timed.out.joined()).toEqual([['ok', 'Sales']]);
    // Every failed record's reference was handed to `fail`.
    timed.out.acknowledgeAll();
    for (const sb of [...h.batches, ...throwing.batches, ...timed.batches]) if (sb.batch.from === STREAM) expect(sb.completed).toBe(true);
  });

  it('looks up by the `time` expression rather than the record time', async () => {
    const h = new Harness({ time: 'at' });
    h.assignTable();
    await h.table([
      [1, emp(1, 'Sales'), T],
      [1, emp(1, 'Marketing'), T + 60 * MIN],
    ]);
    await h.streamRaw([{ key: 'k', value: { id: 'a', employee_id: 1, at: T + 30 * MIN }, time: T + 90 * MIN }]);
    expect(h.out.joined()).toEqual([['a', 'Sales']]);
  });

  it('refuses a table change without a key', async () => {
    const h = new Harness();
    h.assignTable();
    await h.table([[null as unknown as number, emp(1, 'Sales'), T]]);
    expect(h.out.codes()).toEqual(['E_JOIN_TABLE_KEY']);
    expect(h.join.stats().table_keys).toBe(0);
  });
});

describe('TemporalJoin: late records and late table changes', () => {
  it('sends a stream record asking for a time before what was pruned to the port `late`', async () => {
    const h = new Harness({ lateness: '0s' });
    await endedTable(h, [[1, emp(1, 'Sales'), T]]);
    await h.stream([['now', 1, T + 60 * MIN]]);
    await h.stream([['exactly', 1, T + 60 * MIN]]);
    await h.stream([['too-late', 1, T + 60 * MIN - 1]]);
    expect(h.out.ids()).toEqual(['now', 'exactly']);
    expect(h.out.ids(JOIN_LATE_PORT)).toEqual(['too-late']);
    expect(h.join.stats().late).toBe(1);
    expect(h.counter(RECORDS_LATE)).toBe(1);
  });

  it('keeps `lateness` of versions behind each stream partition', async () => {
    const h = new Harness({ lateness: '30m' });
    await endedTable(h, [
      [1, emp(1, 'Sales'), T],
      [1, emp(1, 'Marketing'), T + 45 * MIN],
    ]);
    await h.stream([['ahead', 1, T + 60 * MIN]]);
    await h.stream([
      ['in-time', 1, T + 30 * MIN],
      ['late', 1, T + 30 * MIN - 1],
    ]);
    expect(h.out.joined()).toEqual([
      ['ahead', 'Marketing'],
      ['in-time', 'Sales'],
    ]);
    expect(h.out.ids(JOIN_LATE_PORT)).toEqual(['late']);
  });

  it('a waiting record holds the versions it needs, however far the stream watermark has moved', async () => {
    const h = new Harness({ lateness: '0s' });
    h.assignTable('employee-changes/0', 'employee-changes/1');
    h.assignStream('activities/0', 'activities/1');
    await h.table(
      [
        [1, emp(1, 'Sales'), T],
        [1, emp(1, 'Marketing'), T + 30 * MIN],
        [1, emp(1, 'Legal'), T + 100 * MIN],
      ],
      'employee-changes/0',
    );
    // employee-changes/1 at 20 min holds every record after it back.
    await h.table([[2, emp(2, 'Ops'), T + 20 * MIN]], 'employee-changes/1');
    await h.stream([['waits', 1, T + 35 * MIN]], 'activities/1');
    await h.stream([['a', 1, T + 120 * MIN]], 'activities/0');
    await h.stream([['b', 1, T + 130 * MIN]], 'activities/1');
    expect(h.waiting).toBe(3);
    // The stream is at 120 min, but `waits` still needs the version of 30 min.
    await h.table([[2, emp(2, 'Ops'), T + 200 * MIN]], 'employee-changes/1');
    expect(h.out.joined()).toEqual([['waits', 'Marketing']]);
    await h.end();
    expect(h.out.joined()).toEqual([
      ['waits', 'Marketing'],
      ['a', 'Legal'],
      ['b', 'Legal'],
    ]);
  });

  it('counts a table change for a time already answered (its partition had gone idle), and keeps the answers given', async () => {
    const h = new Harness();
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T]]);
    h.tick(IDLE);
    await h.stream([['a', 1, T + 30 * MIN]]);
    expect(h.out.joined()).toEqual([['a', 'Sales']]);
    await h.table([
      [1, emp(1, 'Marketing'), T + 20 * MIN],
      [1, emp(1, 'Legal'), T + 30 * MIN],
      [2, emp(2, 'Ops'), T + 31 * MIN],
    ]);
    expect(h.join.stats().late_table_changes).toBe(2);
    expect(h.counter('sluice_join_late_table_changes_total')).toBe(2);
    expect(h.out.joined()).toEqual([['a', 'Sales']]);
  });
});

describe('TemporalJoin: which input partition events come through (`via`)', () => {
  it('puts partitions that come via the table input into the table\'s watermarks, others into the stream\'s', async () => {
    // Via the table: an assigned partition that has sent nothing holds every record back.
    const viaTable = new Harness({ lateness: '0s' });
    await viaTable.table([[1, emp(1, 'Sales'), T + 180 * MIN]]);
    viaTable.partitions({ type: 'assign', partitions: ['x/0'] }, [TABLE]);
    await viaTable.stream([['a', 1, T + 60 * MIN]]);
    expect(viaTable.waiting).toBe(1);
    expect(viaTable.join.stats().table_watermark).toBeUndefined();

    // Via the stream input (or via nothing, as a hand-built event): the table is not held, but the
    // stream's watermark is, so nothing is pruned and an older record is not late.
    for (const via of [[STREAM], undefined]) {
      const viaStream = new Harness({ lateness: '0s' });
      await viaStream.table([[1, emp(1, 'Sales'), T + 180 * MIN]]);
      viaStream.partitions({ type: 'assign', partitions: ['x/0'] }, via);
      await viaStream.stream([['a', 1, T + 60 * MIN]]);
      await viaStream.stream([['b', 1, T + 30 * MIN]]);
      expect(viaStream.waiting).toBe(0);
      expect(viaStream.out.ids()).toEqual(['a', 'b']);
      expect(viaStream.out.ids(JOIN_LATE_PORT)).toEqual([]);
    }

    // The control: without x/0 in the stream's watermarks, b is late.
    const control = new Harness({ lateness: '0s' });
    await control.table([[1, emp(1, 'Sales'), T + 180 * MIN]]);
    await control.stream([['a', 1, T + 60 * MIN]]);
    await control.stream([['b', 1, T + 30 * MIN]]);
    expect(control.out.ids(JOIN_LATE_PORT)).toEqual(['b']);
  });

  it('a source that reaches the join through both inputs counts for both', async () => {
    const h = new Harness({ lateness: '0s' });
    await h.table([[1, emp(1, 'Sales'), T + 180 * MIN]]);
    h.partitions({ type: 'assign', partitions: ['both/0'] }, [STREAM, TABLE]);
    await h.stream([['a', 1, T + 60 * MIN]]);
    expect(h.waiting).toBe(1);
    h.partitions({ type: 'revoke', partitions: ['both/0'] }, [STREAM, TABLE]);
    expect(h.out.ids()).toEqual(['a']);
  });

  it('progress markers via the table raise the table partition\'s time', async () => {
    const h = new Harness();
    h.partitions({ type: 'progress', origin: 'up_0', time: T, idle: false }, [TABLE]);
    await h.table([[1, emp(1, 'Sales'), T]]);
    await h.stream([['a', 1, T + 10 * MIN]]);
    expect(h.waiting).toBe(1);
    h.partitions({ type: 'progress', origin: 'up_0', time: T + 20 * MIN, idle: false }, [TABLE]);
    // The partition the change came through still holds it: quiet, not yet idle.
    expect(h.waiting).toBe(1);
    h.tick(IDLE);
    expect(h.out.ids()).toEqual(['a']);
  });
});

describe('TemporalJoin: acknowledgements', () => {
  it('without checkpoints, a waiting record keeps its own reference until it is emitted with it', async () => {
    const h = new Harness();
    h.assignTable();
    const changes = await h.table([[1, emp(1, 'Sales'), T]]);
    const acts = await h.stream([['a', 1, T + 10 * MIN]]);
    expect(acts.completed).toBe(false);
    expect(acts.ack.outstanding).toBe(1);
    await h.table([[1, emp(1, 'Sales'), T + 20 * MIN]]);
    const [emitted] = h.out.records();
    expect(emitted!.ack).toBe(acts.ack);
    expect(acts.completed).toBe(false);
    h.out.acknowledgeAll();
    expect(acts.completed).toBe(true);
    expect(changes.completed).toBe(false);
  });

  it('without checkpoints, a table version keeps its change\'s reference until it is pruned, replaced, or the input ends', async () => {
    const h = new Harness({ lateness: '0s' });
    h.assignTable();
    const first = await h.table([[1, emp(1, 'Sales'), T]]);
    const second = await h.table([[1, emp(1, 'Marketing'), T + 30 * MIN]]);
    const replaced = await h.table([[2, emp(2, 'Ops'), T + 40 * MIN]]);
    const replacing = await h.table([[2, emp(2, 'Legal'), T + 40 * MIN]]);
    expect([first, second, replaced, replacing].map((b) => b.completed)).toEqual([false, false, true, false]);

    // The stream passes 30 min: the 09:00 version can no longer be asked for.
    await h.stream([['a', 1, T + 30 * MIN]]);
    h.out.acknowledgeAll();
    expect(first.completed).toBe(true);
    expect(second.completed).toBe(false);
    await h.end();
    expect([second, replacing].map((b) => b.completed)).toEqual([true, true]);
  });

  it('with checkpoints, references are released at once and released records carry a fresh one', async () => {
    const h = new Harness({}, { checkpointed: true });
    h.assignTable();
    const changes = await h.table([[1, emp(1, 'Sales'), T]]);
    expect(changes.completed).toBe(true);
    const acts = await h.stream([
      ['waits', 1, T + 10 * MIN],
      ['at-once', 1, T - MIN],
    ]);
    // `at-once` went out with its reference; `waits` gave its up.
    expect(acts.ack.outstanding).toBe(1);
    expect(h.out.records()[0]!.ack).toBe(acts.ack);
    h.out.acknowledgeAll();
    expect(acts.completed).toBe(true);

    await h.table([[1, emp(1, 'Sales'), T + 20 * MIN]]);
    const released = h.out.records()[1]!;
    expect((released.value as { id: string }).id).toBe('waits');
    expect(released.ack).not.toBe(acts.ack);
    expect(released.ack.outstanding).toBe(1);
    expect(released.ack.isComplete).toBe(false);
    released.ack.release();
    expect(released.ack.isComplete).toBe(true);
  });
});

describe('TemporalJoin: a table source that says when it has read everything (caught-up)', () => {
  const caughtUp = (h: Harness, at: number) => h.partitions({ type: 'caught-up', partitions: [TABLE_PART], at }, [TABLE]);

  it('counts a report only `table_lag` after a record arrived: a table change may reach its topic later than the record', async () => {
    const h = new Harness({ table_lag: '1s' });
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T]]);
    caughtUp(h, h.clock.now());
    h.tick(5 * IDLE);
    await h.stream([['new-hire', 7, T + 30 * MIN]]);
    const arrived = h.clock.now();
    caughtUp(h, arrived + 999);
    expect(h.waiting).toBe(1);
    // The employee's insert lands in its topic after the activity was read, within the lag.
    await h.table([[7, emp(7, 'Research'), T + 29 * MIN]]);
    caughtUp(h, arrived + 1000);
    expect(h.out.joined()).toEqual([['new-hire', 'Research']]);
  });

  it('waits for a report made after a record arrived, however long the table has been quiet, and then uses a change that came meanwhile', async () => {
    const h = new Harness({ table_lag: '0s' });
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T]]);
    caughtUp(h, h.clock.now());
    // The table has been quiet far longer than `idle`: without the reports the record would pass.
    h.tick(5 * IDLE);
    // A new employee's first activity, read before the employee's insert (two topics, two consumers).
    await h.stream([['new-hire', 7, T + 30 * MIN]]);
    expect(h.waiting).toBe(1);
    // A report from before the record arrived says nothing about it.
    caughtUp(h, h.clock.now() - 1);
    expect(h.waiting).toBe(1);
    await h.table([[7, emp(7, 'Research'), T + 29 * MIN]]);
    h.tick(100);
    caughtUp(h, h.clock.now());
    expect(h.waiting).toBe(0);
    expect(h.out.joined()).toEqual([['new-hire', 'Research']]);
  });

  it('answers at once what a table change after the record\'s time already covers', async () => {
    const h = new Harness({ table_lag: '0s' });
    h.assignTable();
    await h.table([[1, emp(1, 'Sales'), T + 60 * MIN]]);
    caughtUp(h, h.clock.now());
    await h.stream([['early', 1, T + 10 * MIN]]);
    expect(h.out.joined()).toEqual([['early', null]]);
  });

  it('keeps `idle` for partitions whose source never reports, and forgets a revoked partition\'s reports', async () => {
    const h = new Harness({ table_lag: '0s' });
    h.assignTable(TABLE_PART, 'other/0');
    await h.table([[1, emp(1, 'Sales'), T]]);
    caughtUp(h, h.clock.now());
    h.tick(IDLE);
    await h.stream([['a', 1, T + MIN]]);
    // TABLE_PART reported before the record arrived; other/0 is idle (it never reports): still waits on TABLE_PART.
    expect(h.waiting).toBe(1);
    caughtUp(h, h.clock.now());
    expect(h.out.joined()).toEqual([['a', 'Sales']]);
    h.revokeTable(TABLE_PART);
    h.assignTable(TABLE_PART);
    await h.stream([['b', 1, T + 2 * MIN]]);
    // Assigned anew, it has no report: it holds the record until it is idle.
    expect(h.waiting).toBe(1);
    h.tick(IDLE);
    expect(h.out.joined()).toEqual([['a', 'Sales'], ['b', 'Sales']]);
  });
});

/* -------------------------------------------------------------------------------------------- */
/* Snapshot and restore                                                                          */
/* -------------------------------------------------------------------------------------------- */

type Op =
  | { kind: 'table'; changes: Change[]; partition?: string }
  | { kind: 'stream'; activities: Activity[]; partition?: string }
  | { kind: 'partitions'; event: PartitionEvent; via: string[] };

/** A run with every kind of state: versions (deleted, re-inserted, pruned), waiting records over two stream partitions, a late record, a revoked table. */
const OPS: Op[] = [
  { kind: 'partitions', event: { type: 'assign', partitions: [TABLE_PART, 'employee-changes/1'] }, via: [TABLE] },
  { kind: 'partitions', event: { type: 'assign', partitions: ['activities/0', 'activities/1'] }, via: [STREAM] },
  { kind: 'table', changes: [[1, emp(1, 'Sales'), T], [2, emp(2, 'Finance'), T], [3, emp(3, 'Ops'), T]] },
  { kind: 'table', changes: [[4, emp(4, 'Legal'), T + 5 * MIN]], partition: 'employee-changes/1' },
  { kind: 'stream', activities: [['s1', 1, T + 10 * MIN], ['s2', 2, T + 2 * MIN]], partition: 'activities/0' },
  { kind: 'stream', activities: [['s3', 4, T + 12 * MIN], ['s4', 3, T + MIN]], partition: 'activities/1' },
  { kind: 'table', changes: [[2, null, T + 20 * MIN], [1, emp(1, 'Marketing'), T + 25 * MIN]] },
  { kind: 'stream', activities: [['s5', 2, T + 22 * MIN], ['s6', 1, T + 24 * MIN], ['s7', 1, T + 26 * MIN]], partition: 'activities/0' },
  { kind: 'table', changes: [[4, emp(4, 'Legal'), T + 15 * MIN], [4, emp(4, 'Sales'), T + 30 * MIN]], partition: 'employee-changes/1' },
  { kind: 'stream', activities: [['s8', 4, T + 28 * MIN], ['s9', 9, T + 29 * MIN]], partition: 'activities/1' },
  { kind: 'table', changes: [[2, emp(2, 'Engineering'), T + 40 * MIN], [3, null, T + 41 * MIN]] },
  { kind: 'stream', activities: [['s10', 2, T + 45 * MIN], ['s11', 3, T + 42 * MIN]], partition: 'activities/0' },
  { kind: 'table', changes: [[5, emp(5, 'Ops'), T + 50 * MIN]], partition: 'employee-changes/1' },
  { kind: 'stream', activities: [['s12', 2, T + 46 * MIN], ['s13', 4, T + 47 * MIN]], partition: 'activities/1' },
  // Far ahead on activities/1: with lateness 10m, activities/0 (at 45) now holds the horizon.
  { kind: 'table', changes: [[1, emp(1, 'Sales'), T + 70 * MIN]] },
  { kind: 'table', changes: [[5, emp(5, 'Ops'), T + 90 * MIN]], partition: 'employee-changes/1' },
  { kind: 'stream', activities: [['s14', 1, T + 80 * MIN]], partition: 'activities/1' },
  { kind: 'stream', activities: [['s15', 1, T + 60 * MIN], ['s16', 5, T + 51 * MIN]], partition: 'activities/0' },
  // Late: activities/0 was at 60 min, minus 10m lateness.
  { kind: 'stream', activities: [['late', 2, T + 40 * MIN]], partition: 'activities/0' },
  { kind: 'stream', activities: [['s17', 1, T + 100 * MIN], ['s18', 2, T + 95 * MIN]], partition: 'activities/0' },
  // The table ends: what waits passes, and later records pass at once.
  { kind: 'partitions', event: { type: 'revoke', partitions: [TABLE_PART, 'employee-changes/1'] }, via: [TABLE] },
  { kind: 'stream', activities: [['s19', 5, T + 130 * MIN], ['s20', 1, T + 110 * MIN]], partition: 'activities/1' },
  { kind: 'stream', activities: [['s21', 5, T + 120 * MIN]], partition: 'activities/0' },
];

async function apply(h: Harness, op: Op): Promise<void> {
  if (op.kind === 'table') await h.table(op.changes, op.partition);
  else if (op.kind === 'stream') await h.stream(op.activities, op.partition);
  else h.partitions(op.event, op.via);
}

/** Through the stored JSON form, as a checkpoint keeps it. */
function stored(state: StepState): StepState {
  return stepStateFromJson(JSON.parse(JSON.stringify(stepStateToJson(state))), 'test');
}

/** Outputs per port in order: values only (references are not part of what is compared). */
function outputs(...outs: RecordingOutput[]): { port: string; value: unknown; key: unknown; time: number }[] {
  return outs.flatMap((o) => o.emitted.flatMap((e) => e.records.map((r) => ({ port: e.port, value: r.value, key: r.key, time: r.time }))));
}

describe('TemporalJoin: snapshot and restore', () => {
  const settings: Partial<JoinSettings> = { lateness: '10m' };

  async function uninterrupted(): Promise<{ outs: ReturnType<typeof outputs>; stats: Record<string, unknown> }> {
    const h = new Harness(settings, { checkpointed: true });
    for (const op of OPS) await apply(h, op);
    await h.end();
    return { outs: outputs(h.out), stats: h.join.stats() };
  }

  it('the uninterrupted run has something to compare: waits, releases, deletes, a late record', async () => {
    const { outs, stats } = await uninterrupted();
    expect(outs.filter((o) => o.port === JOIN_LATE_PORT).map((o) => (o.value as { id: string }).id)).toEqual(['late']);
    expect(outs.filter((o) => o.port === 'out')).toHaveLength(21);
    expect(stats).toMatchObject({ late: 1, late_table_changes: 0 });
  });

  for (let split = 1; split < OPS.length; split++) {
    it(`a join restored from a full snapshot after step ${split} continues as the uninterrupted one`, async () => {
      const whole = await uninterrupted();
      const first = new Harness(settings, { checkpointed: true });
      for (const op of OPS.slice(0, split)) await apply(first, op);
      const state = stored(first.join.snapshot!());

      const second = new Harness(settings, { checkpointed: true });
      second.clock.set(first.clock.now());
      second.join.restore!(state);
      const { waiting, table_keys, table_watermark } = first.join.stats();
      expect(second.join.stats()).toMatchObject({ waiting, table_keys, table_watermark });
      for (const op of OPS.slice(split)) await apply(second, op);
      await second.end();
      expect(outputs(first.out, second.out)).toEqual(whole.outs);
    });

    it(`a join restored from changes-only snapshots applied one after another (split after step ${split}) continues as the uninterrupted one`, async () => {
      const whole = await uninterrupted();
      const first = new Harness(settings, { checkpointed: true });
      // What a changelog store holds: the latest header, and entries put and deleted by each delta.
      const store = new Map<string, JsonValue>();
      let header: JsonValue = null;
      let size: number | undefined;
      for (const op of OPS.slice(0, split)) {
        await apply(first, op);
        const delta = first.join.snapshot!({ changesOnly: true });
        for (const key of delta.removed ?? []) {
          expect(store.has(key), `removed ${key} was stored`).toBe(true);
          store.delete(key);
        }
        for (const [key, value] of stored(delta).entries) store.set(key, value);
        header = delta.header;
        size = delta.size;
      }
      expect(size).toBe(store.size);
      // The applied deltas equal a full snapshot of the same state.
      const full = first.join.snapshot!();
      expect(new Map([...store].sort())).toEqual(new Map([...stored(full).entries].sort()));

      const second = new Harness(settings, { checkpointed: true });
      second.clock.set(first.clock.now());
      second.join.restore!(stored({ header, entries: store }));
      for (const op of OPS.slice(split)) await apply(second, op);
      await second.end();
      expect(outputs(first.out, second.out)).toEqual(whole.outs);
    });
  }

  it('a join restored from a snapshot without `table_known` (an older one) that had table partitions knows its table has ended once they are revoked', async () => {
    const first = new Harness(settings, { checkpointed: true });
    first.assignTable();
    await first.table([[1, emp(1, 'Sales'), T]]);
    const state = stored(first.join.snapshot!());
    delete (state.header as Record<string, JsonValue>).table_known;
    const second = new Harness(settings, { checkpointed: true });
    second.join.restore!(state);
    await second.stream([['a', 1, T + 10 * MIN]]);
    expect(second.waiting).toBe(1);
    second.revokeTable();
    expect(second.out.ids()).toEqual(['a']);
  });

  it('a snapshot of changes right after a restore is empty: the restored state is the base', async () => {
    const first = new Harness(settings, { checkpointed: true });
    for (const op of OPS.slice(0, 10)) await apply(first, op);
    const second = new Harness(settings, { checkpointed: true });
    second.join.restore!(stored(first.join.snapshot!()));
    const changes = second.join.snapshot!({ changesOnly: true });
    expect(changes.entries.size).toBe(0);
    expect(changes.removed).toEqual([]);
    expect(changes.size).toBe(first.join.snapshot!().entries.size);
  });
});

/* -------------------------------------------------------------------------------------------- */
/* Property test against an independent brute force                                              */
/* -------------------------------------------------------------------------------------------- */

interface HistoryChange {
  employee: number;
  /** null: deleted. */
  department: string | null;
  time: number;
  /** Order in the table's partition (the database's commit order). */
  seq: number;
}

interface GeneratedActivity {
  id: string;
  employee: number;
  time: number;
  partition: string;
}

const DEPARTMENTS = ['Sales', 'Marketing', 'Finance', 'Engineering', 'Legal'];
const TABLE_PARTITIONS = ['employee-changes/0', 'employee-changes/1'];
const STREAM_PARTITIONS = ['activities/0', 'activities/1', 'activities/2'];
const EMPLOYEES = 8;
/** Activities may arrive this far out of order within their partition (within the join's lateness). */
const DISORDER = 5 * MIN;

function generate(seed: number): { changes: HistoryChange[]; activities: GeneratedActivity[] } {
  const rnd = mulberry32(seed);
  const pick = <X>(xs: readonly X[]): X => xs[Math.floor(rnd() * xs.length)]!;
  // Times on a coarse grid (whole minutes over two hours), so that many coincide.
  const time = () => T + Math.floor(rnd() * 120) * MIN;
  const changes: HistoryChange[] = [];
  for (let e = 1; e <= EMPLOYEES; e++) {
    const times = Array.from({ length: 1 + Math.floor(rnd() * 6) }, time).sort((a, b) => a - b);
    // Some changes at the very same time as the one before.
    for (let i = 1; i < times.length; i++) if (rnd() < 0.25) times[i] = times[i - 1]!;
    let exists = false;
    for (const t of times) {
      // Inserts, department updates, deletes, re-inserts.
      const department: string | null = exists && rnd() < 0.3 ? null : pick(DEPARTMENTS);
      exists = department !== null;
      changes.push({ employee: e, department, time: t, seq: 0 });
    }
  }
  // Commit order: by time (a stable sort: equal times of one employee stay in the order made).
  changes.sort((a, b) => a.time - b.time);
  changes.forEach((c, i) => (c.seq = i));

  const activities: GeneratedActivity[] = [];
  for (let i = 0; i < 150; i++) {
    const employee = rnd() < 0.1 ? 99 : 1 + Math.floor(rnd() * EMPLOYEES);
    // Half the activities fall at exactly a change's time.
    const t = rnd() < 0.5 ? pick(changes).time : T - 10 * MIN + Math.floor(rnd() * 140) * MIN;
    activities.push({ id: `act-${i}`, employee, time: t, partition: pick(STREAM_PARTITIONS) });
  }
  return { changes, activities };
}

/** The department of `employee` at `time`: its last change at or before then; none or a delete -> null. Written without the join. */
function bruteForce(changes: readonly HistoryChange[], employee: number, time: number): string | null {
  let last: HistoryChange | undefined;
  for (const c of changes) if (c.employee === employee && c.time <= time && (!last || c.seq > last.seq)) last = c;
  return last?.department ?? null;
}

/** Each partition's records in arrival order: tables in commit order, activities by time with bounded disorder. */
function partitionFeeds(seed: number, changes: HistoryChange[], activities: GeneratedActivity[]): Map<string, Op[]> {
  const rnd = mulberry32(seed ^ 0x5eed);
  const feeds = new Map<string, Op[]>();
  const chunked = <X>(items: X[], make: (chunk: X[]) => Op): Op[] => {
    const ops: Op[] = [];
    for (let i = 0; i < items.length; ) {
      const n = 1 + Math.floor(rnd() * 4);
      ops.push(make(items.slice(i, i + n)));
      i += n;
    }
    return ops;
  };
  for (const [p, partition] of TABLE_PARTITIONS.entries()) {
    const mine = changes.filter((c) => c.employee % TABLE_PARTITIONS.length === p).sort((a, b) => a.seq - b.seq);
    feeds.set(
      partition,
      chunked(mine, (chunk) => ({
        kind: 'table',
        partition,
        changes: chunk.map((c) => [c.employee, c.department === null ? null : emp(c.employee, c.department), c.time] as Change),
      })),
    );
  }
  for (const partition of STREAM_PARTITIONS) {
    // Sorted by a jittered time: each record arrives at most DISORDER after a later one.
    const mine = activities
      .filter((a) => a.partition === partition)
      .map((a) => ({ a, arrival: a.time + Math.floor(rnd() * DISORDER) }))
      .sort((x, y) => x.arrival - y.arrival)
      .map((x) => x.a);
    feeds.set(
      partition,
      chunked(mine, (chunk) => ({ kind: 'stream', partition, activities: chunk.map((a) => [a.id, a.employee, a.time] as Activity) })),
    );
  }
  return feeds;
}

describe('TemporalJoin against an independent brute force (property test)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    it(`seed ${seed}: every activity gets the department its employee's last change at or before its time gave (brute force, not the join's code)`, async () => {
      const { changes, activities } = generate(seed);
      const feeds = partitionFeeds(seed, changes, activities);
      const h = new Harness({ type: 'left', lateness: '10m' });
      // The table's partitions are assigned and stay active (the clock never moves): records wait
      // for them until the end.
      h.assignTable(...TABLE_PARTITIONS);
      h.assignStream(...STREAM_PARTITIONS);
      const rnd = mulberry32(seed * 7919);
      const cursors = new Map([...feeds.keys()].map((p) => [p, 0]));
      for (;;) {
        const open = [...feeds.keys()].filter((p) => cursors.get(p)! < feeds.get(p)!.length);
        if (open.length === 0) break;
        const p = open[Math.floor(rnd() * open.length)]!;
        await apply(h, feeds.get(p)![cursors.get(p)!]!);
        cursors.set(p, cursors.get(p)! + 1);
      }
      await h.end();

      expect(h.out.failed).toEqual([]);
      expect(h.out.ids(JOIN_LATE_PORT)).toEqual([]);
      const got = new Map(h.out.joined());
      expect(got.size).toBe(activities.length);
      const wrong = activities
        .map((a) => ({ id: a.id, employee: a.employee, at: new Date(a.time).toISOString(), joined: got.get(a.id), expected: bruteForce(changes, a.employee, a.time) }))
        .filter((r) => r.joined !== r.expected)
        // The employee's history, to see why.
        .map((r) => ({ ...r, history: changes.filter((c) => c.employee === r.employee).map((c) => `${new Date(c.time).toISOString()} ${c.department ?? 'deleted'}`) }));
      expect(wrong).toEqual([]);
      // Everything acknowledged once the outputs are: no reference kept or released twice.
      h.out.acknowledgeAll();
      expect(h.batches.every((b) => b.completed)).toBe(true);
    });
  }
});
