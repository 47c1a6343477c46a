import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { stepStateFromJson, stepStateToJson } from '../../../src/engine/checkpoint/checkpoint.ts';
import { RecordError } from '../../../src/engine/errors.ts';
import type { Logger } from '../../../src/engine/logger.ts';
import { compileExpression } from '../../../src/engine/expression.ts';
import { HELD_SECONDS_METRIC, HOLD_WARNING_MS, HOLDS_METRIC, LATE_METRIC, ROW_LIMIT_METRIC, WindowAggregate } from '../../../src/engine/window/window-aggregate.ts';
import { feed, HOUR, iso, makeWindow, MIN, RecordingOutput, SourceBatch, T0, type Setup } from './harness.ts';

const hourly = { kind: 'tumbling', size: HOUR } as const;

describe('tumbling windows, emit final', () => {
  it('emits each group once when the watermark passes the window end, in first-arrival order', async () => {
    const { op } = makeWindow({ shape: hourly, aggregate: { n: '$count()', total: '$sum(d)' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      { g: 'b', t: T0 + 10 * MIN, d: 5 },
      { g: 'a', t: T0 + 20 * MIN, d: 1 },
      { g: 'b', t: T0 + 30 * MIN, d: 7 },
    ]);
    expect(out.records()).toEqual([]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + HOUR - 1, d: 1 }]);
    expect(out.records()).toEqual([]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + HOUR, d: 100 }]);
    expect(out.values()).toEqual([
      { g: 'b', window_start: iso(T0), window_end: iso(T0 + HOUR), n: 2, total: 12 },
      { g: 'a', window_start: iso(T0), window_end: iso(T0 + HOUR), n: 2, total: 2 },
    ]);
  });

  it('orders the output fields: group keys, window_start, window_end, aggregates in spec order', async () => {
    const { op } = makeWindow({ shape: hourly, groupBy: { y: 'y', x: 'x' }, aggregate: { z: '$count()', a: '$max(t)' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ x: 1, y: 2, t: T0 }]);
    await op.onEnd(out);
    expect(Object.keys(out.values()[0]!)).toEqual(['y', 'x', 'window_start', 'window_end', 'z', 'a']);
  });

  it('builds the output record: key of group and window start, time end - 1ms, meta with the bounds', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 5 }]);
    await op.onEnd(out);
    const [r] = out.records();
    expect(r!.key).toEqual({ g: 'a', window_start: iso(T0) });
    expect(r!.time).toBe(T0 + HOUR - 1);
    expect(r!.headers).toEqual({});
    expect(r!.meta).toEqual({ window_start: iso(T0), window_end: iso(T0 + HOUR) });
  });

  it('waits for the allowed lateness', async () => {
    const { op } = makeWindow({ shape: hourly, lateness: 10 * MIN });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 }]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + HOUR + 9 * MIN }]);
    expect(out.records()).toEqual([]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 50 * MIN }]); // out of order, within lateness
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + HOUR + 10 * MIN }]);
    expect(out.values()).toEqual([{ g: 'a', window_start: iso(T0), window_end: iso(T0 + HOUR), n: 2 }]);
  });

  it('emits windows in start order, a gap hour producing nothing', async () => {
    const { op } = makeWindow({ shape: hourly, lateness: 3 * HOUR });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      { g: 'a', t: T0 + 2 * HOUR + 1 },
      { g: 'a', t: T0 + 1 },
    ]);
    await op.onEnd(out);
    expect(out.values().map((v) => v.window_start)).toEqual([iso(T0), iso(T0 + 2 * HOUR)]);
  });

  it('handles event times before 1970', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: -1 }]);
    await op.onEnd(out);
    expect(out.values()[0]).toMatchObject({ window_start: iso(-HOUR), window_end: iso(0) });
  });

  it('without group_by aggregates all records of a window together', async () => {
    const { op } = makeWindow({ shape: hourly, groupBy: {} });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ t: T0 }, { t: T0 + 1 }]);
    await op.onEnd(out);
    expect(out.values()).toEqual([{ window_start: iso(T0), window_end: iso(T0 + HOUR), n: 2 }]);
  });
});

describe('late records', () => {
  it('are counted and sent to the late port', async () => {
    const { op, metrics } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 2 * HOUR }]);
    const late = await feed(op, out, 'p0', [
      { g: 'a', t: T0 + 30 * MIN },
      { g: 'a', t: T0 + 2 * HOUR + 1 },
    ]);
    expect(out.values('late')).toEqual([{ g: 'a', t: T0 + 30 * MIN }]);
    expect(out.records('late')[0]!.ack).toBe(late.ack);
    expect(metrics.counter(LATE_METRIC, { node: 'w' })).toBe(1);
    expect(op.stats().late).toBe(1);
  });

  it('treats epoch 0 (a Debezium default for NULL) as a valid, late 1970 timestamp', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 }]);
    await feed(op, out, 'p0', [{ g: 'a', t: 0 }]);
    expect(out.values('late')).toEqual([{ g: 'a', t: 0 }]);
    expect(out.failed).toEqual([]);
  });

  it('judges each record against the watermark the records before it set, however they are batched', async () => {
    const input = [
      { g: 'a', t: T0 + 3 * HOUR },
      { g: 'a', t: T0 },
      { g: 'a', t: T0 + 3 * HOUR + 1 },
    ];
    const oneBatch = makeWindow({ shape: hourly });
    const oneOut = new RecordingOutput();
    await feed(oneBatch.op, oneOut, 'p0', input);
    await oneBatch.op.onEnd(oneOut);
    const perRecord = makeWindow({ shape: hourly });
    const perOut = new RecordingOutput();
    for (const r of input) await feed(perRecord.op, perOut, 'p0', [r]);
    await perRecord.op.onEnd(perOut);

    expect(oneOut.values('late')).toEqual([{ g: 'a', t: T0 }]);
    expect(perOut.values('late')).toEqual(oneOut.values('late'));
    expect(perOut.values()).toEqual(oneOut.values());
  });

  it('a record late for some hopping windows joins only the open ones', async () => {
    const { op } = makeWindow({ shape: { kind: 'hopping', size: HOUR, advance: 30 * MIN } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + HOUR }]); // watermark T0+1h: closes [T0-30m, T0+30m)
    out.clear();
    const sb = await feed(op, out, 'p0', [{ g: 'a', t: T0 + 45 * MIN }]); // windows [T0, T0+1h) closed, [T0+30m, T0+90m) open
    expect(out.records('late')).toEqual([]);
    await op.onEnd(out);
    expect(out.values().map((v) => [v.window_start, v.n])).toEqual([
      [iso(T0 + 30 * MIN), 2],
      [iso(T0 + HOUR), 1],
    ]);
    out.acknowledgeAll();
    expect(sb.completed).toBe(true);
  });

  it('a record late for every hopping window goes to the late port', async () => {
    const { op } = makeWindow({ shape: { kind: 'hopping', size: HOUR, advance: 30 * MIN } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 2 * HOUR }]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 59 * MIN }]);
    expect(out.values('late')).toEqual([{ g: 'a', t: T0 + 59 * MIN }]);
  });
});

describe('hopping windows', () => {
  it('counts a record in every window that holds it', async () => {
    const { op } = makeWindow({ shape: { kind: 'hopping', size: HOUR, advance: 20 * MIN } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 50 * MIN }]);
    await op.onEnd(out);
    expect(out.values().map((v) => v.window_start)).toEqual([iso(T0 - 0 * MIN), iso(T0 + 20 * MIN), iso(T0 + 40 * MIN)]);
  });
});

describe('watermark across partitions', () => {
  it('is held back by the slowest partition', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 10 * MIN }]);
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + 20 * MIN }]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 3 * HOUR }]);
    expect(out.records()).toEqual([]);
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + HOUR }]);
    expect(out.values()).toEqual([{ g: 'a', window_start: iso(T0), window_end: iso(T0 + HOUR), n: 2 }]);
  });

  it('releases windows held by an idle partition on a tick', async () => {
    const { op, clock } = makeWindow({ shape: hourly, idle: MIN });
    const out = new RecordingOutput();
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + 10 * MIN }]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 20 * MIN }]);
    clock.advance(30_000);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 2 * HOUR }]);
    expect(out.records()).toEqual([]);
    clock.advance(30_000); // p1 quiet for 60s, p0 for 30s
    await op.onTick(clock.now(), out);
    expect(out.values().map((v) => v.n)).toEqual([2]);
    expect(op.stats().watermark).toBe(iso(T0 + 2 * HOUR));
  });

  it('flushes on a tick once every partition is idle, up to the furthest one', async () => {
    const { op, clock } = makeWindow({ shape: hourly, idle: MIN });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 10 * MIN }]);
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + HOUR + 10 * MIN }]);
    expect(out.records()).toEqual([]);
    clock.advance(MIN);
    await op.onTick(clock.now(), out);
    expect(out.values().map((v) => v.window_start)).toEqual([iso(T0)]);
  });

  it('is held by an assigned partition that has sent nothing, until revoked', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await op.onPartitions({ type: 'assign', partitions: ['p0', 'p1'] }, out);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 }, { g: 'a', t: T0 + 5 * HOUR }]);
    expect(out.records()).toEqual([]);
    expect(op.stats().watermark).toBeUndefined();
    await op.onPartitions({ type: 'revoke', partitions: ['p1'] }, out);
    expect(out.values().map((v) => v.window_start)).toEqual([iso(T0)]);
  });

  it('is held by an assigned silent partition only until it goes idle', async () => {
    const { op, clock } = makeWindow({ shape: hourly, idle: 10_000 });
    const out = new RecordingOutput();
    await op.onPartitions({ type: 'assign', partitions: ['p0', 'p1'] }, out);
    clock.advance(5_000);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 }, { g: 'a', t: T0 + 5 * HOUR }]);
    clock.advance(4_999);
    await op.onTick(clock.now(), out);
    expect(out.records()).toEqual([]);
    clock.advance(1);
    await op.onTick(clock.now(), out);
    expect(out.values().map((v) => v.window_start)).toEqual([iso(T0)]);
  });

  it('never moves back when a slower partition appears', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 2 * HOUR }]);
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + 30 * MIN }]);
    expect(op.stats().watermark).toBe(iso(T0 + 2 * HOUR));
    expect(out.values('late')).toHaveLength(1);
  });

  it('flushes everything at the end of input', async () => {
    const { op } = makeWindow({ shape: hourly, lateness: HOUR });
    const out = new RecordingOutput();
    await op.onPartitions({ type: 'assign', partitions: ['p0', 'p1'] }, out);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 }, { g: 'b', t: T0 + 3 * HOUR }]);
    await op.onEnd(out);
    expect(out.values().map((v) => [v.g, v.window_start])).toEqual([
      ['a', iso(T0)],
      ['b', iso(T0 + 3 * HOUR)],
    ]);
    expect(op.stats()).toEqual({ watermark: 'end', open_windows: 0, late: 0 });
  });
});

/** A logger that keeps what was logged at warn and info. */
function recordingLogger(): { logger: Logger; warnings: { fields: Record<string, unknown>; message: string }[]; infos: string[] } {
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  const infos: string[] = [];
  const logger: Logger = {
    debug: () => {},
    info: (_o, msg) => infos.push(msg ?? ''),
    warn: (o, msg) => warnings.push({ fields: typeof o === 'object' ? (o as Record<string, unknown>) : {}, message: msg ?? String(o) }),
    error: () => {},
    child: () => logger,
  };
  return { logger, warnings, infos };
}

/** A window whose warnings are recorded. */
function watchedWindow(setup: Setup) {
  const made = makeWindow(setup);
  const log = recordingLogger();
  const op = new WindowAggregate({ ...made.options, logger: log.logger });
  return { ...made, op, ...log };
}

describe('a partition holding the watermark back', () => {
  it('warns once, counts the hold and names the partition in stats when it lasts longer than the threshold', async () => {
    const { op, clock, metrics, warnings, infos } = watchedWindow({ shape: hourly });
    const out = new RecordingOutput();
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + 10 * MIN }]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 3 * HOUR }]);
    clock.advance(HOLD_WARNING_MS - 1);
    await op.onTick(clock.now(), out);
    expect(warnings).toEqual([]);
    expect(metrics.gauge(HELD_SECONDS_METRIC, { node: 'w' })).toBeCloseTo((HOLD_WARNING_MS - 1) / 1000);
    expect(op.stats().watermark_held_by).toBeUndefined();

    clock.advance(1);
    await op.onTick(clock.now(), out);
    clock.advance(MIN);
    await op.onTick(clock.now(), out); // the same hold: no second warning
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields).toMatchObject({ node: 'w', partition: 'p1', ahead_partition: 'p0', watermark: iso(T0 + 10 * MIN), ahead: iso(T0 + 3 * HOUR) });
    expect(warnings[0]!.message).toContain('partition p1 has held the watermark at 2025-06-01T00:10:00.000Z for 1m while partition p0 is at 2025-06-01T03:00:00.000Z');
    expect(warnings[0]!.message).toContain('sent nothing for 1m and never counts as idle');
    expect(metrics.counter(HOLDS_METRIC, { node: 'w' })).toBe(1);
    expect(op.stats()).toMatchObject({ watermark_held_by: 'p1', watermark_held_s: 120 });

    await feed(op, out, 'p1', [{ g: 'a', t: T0 + 4 * HOUR }]); // p1 catches up: the watermark moves
    expect(out.values().map((v) => v.window_start)).toEqual([iso(T0)]);
    expect(metrics.gauge(HELD_SECONDS_METRIC, { node: 'w' })).toBe(0);
    expect(op.stats().watermark_held_by).toBeUndefined();
    expect(infos).toContain('window `w`: the watermark moves again');
  });

  it('says when the holder is not quiet, so idle cannot release it', async () => {
    const { op, clock, metrics, warnings } = watchedWindow({ shape: hourly, idle: MIN });
    const out = new RecordingOutput();
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + 30 * MIN }]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 3 * HOUR }]);
    for (let i = 0; i < 4; i++) {
      clock.advance(30_000);
      await feed(op, out, 'p0', [{ g: 'a', t: T0 + 3 * HOUR + i }]);
      await feed(op, out, 'p1', [{ g: 'a', t: T0 + 20 * MIN }]); // behind its own highest event time
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain('it is not quiet');
    expect(metrics.counter(HOLDS_METRIC, { node: 'w' })).toBe(1);
  });

  it('says when the holder is an upstream task sending markers, which its silence never releases', async () => {
    const { op, clock, warnings } = watchedWindow({ shape: hourly, idle: MIN });
    const out = new RecordingOutput();
    await op.onPartitions({ type: 'progress', origin: '0_1', time: T0 + 10 * MIN, idle: false }, out);
    await op.onPartitions({ type: 'progress', origin: '0_0', time: T0 + 3 * HOUR, idle: false }, out);
    for (let i = 0; i < 3; i++) {
      clock.advance(30_000);
      await op.onTick(clock.now(), out);
    }
    expect(out.records()).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields.partition).toBe('0_1');
    expect(warnings[0]!.message).toContain('sends watermark markers');
  });

  it('does not warn about a quiet partition that idle releases first', async () => {
    const { op, clock, metrics, warnings } = watchedWindow({ shape: hourly, idle: MIN });
    const out = new RecordingOutput();
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + 10 * MIN }]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 3 * HOUR }]);
    for (let i = 0; i < 3; i++) {
      clock.advance(30_000);
      await op.onTick(clock.now(), out);
    }
    expect(out.values().map((v) => v.window_start)).toEqual([iso(T0)]);
    expect(warnings).toEqual([]);
    expect(metrics.counter(HOLDS_METRIC, { node: 'w' })).toBe(0);
  });
});

describe('emit update', () => {
  it('emits each changed group once per batch, keyed by group and window, and nothing at close', async () => {
    const { op } = makeWindow({ shape: hourly, emit: 'update' });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      { g: 'a', t: T0 },
      { g: 'b', t: T0 + 1 },
      { g: 'a', t: T0 + 2 },
    ]);
    expect(out.values().map((v) => [v.g, v.n])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    out.clear();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 3 }]);
    expect(out.values().map((v) => [v.g, v.n])).toEqual([['a', 3]]);
    expect(out.records()[0]!.key).toEqual({ g: 'a', window_start: iso(T0) });
    out.clear();
    await feed(op, out, 'p0', [{ g: 'c', t: T0 + 2 * HOUR }]); // closes the first window
    expect(out.values().map((v) => [v.g, v.window_start])).toEqual([['c', iso(T0 + 2 * HOUR)]]);
    out.clear();
    await op.onEnd(out);
    expect(out.records()).toEqual([]);
  });

  it('still emits a change made in the batch that closes its window', async () => {
    const { op } = makeWindow({ shape: hourly, emit: 'update' });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 }, { g: 'a', t: T0 + 2 * HOUR }]);
    expect(out.values().map((v) => [v.window_start, v.n])).toEqual([
      [iso(T0), 1],
      [iso(T0 + 2 * HOUR), 1],
    ]);
  });
});

describe('session windows', () => {
  const session = { kind: 'session', gap: 30 * MIN } as const;

  it('groups records closer than the gap and closes at last event + gap', async () => {
    const { op } = makeWindow({ shape: session });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      { g: 'a', t: T0 },
      { g: 'a', t: T0 + 20 * MIN },
      { g: 'a', t: T0 + 50 * MIN }, // exactly the gap after the previous: a new session
    ]);
    await feed(op, out, 'p0', [{ g: 'b', t: T0 + 50 * MIN }]);
    expect(out.values()).toEqual([{ g: 'a', window_start: iso(T0), window_end: iso(T0 + 50 * MIN), n: 2 }]);
    await op.onEnd(out);
    expect(out.values().slice(1)).toEqual([
      { g: 'a', window_start: iso(T0 + 50 * MIN), window_end: iso(T0 + 80 * MIN), n: 1 },
      { g: 'b', window_start: iso(T0 + 50 * MIN), window_end: iso(T0 + 80 * MIN), n: 1 },
    ]);
  });

  it('merges two sessions that a record bridges, with their accumulators and acks', async () => {
    const { op } = makeWindow({ shape: session, lateness: 2 * HOUR, aggregate: { n: '$count()', first: '$first(v)', all: '$collect(v)' } });
    const out = new RecordingOutput();
    const b1 = await feed(op, out, 'p0', [{ g: 'a', t: T0, v: 'x' }, { g: 'a', t: T0 + 50 * MIN, v: 'z' }]);
    expect(op.stats().open_windows).toBe(2);
    const b2 = await feed(op, out, 'p0', [{ g: 'a', t: T0 + 25 * MIN, v: 'y' }]);
    expect(op.stats().open_windows).toBe(1);
    await op.onEnd(out);
    expect(out.values()).toEqual([{ g: 'a', window_start: iso(T0), window_end: iso(T0 + 80 * MIN), n: 3, first: 'x', all: ['x', 'z', 'y'] }]);
    expect(b1.completed || b2.completed).toBe(false);
    out.acknowledgeAll();
    expect(b1.completed && b2.completed).toBe(true);
  });

  it('a record far before every open session that is past the watermark is late', async () => {
    const { op } = makeWindow({ shape: session });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 2 * HOUR }]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 }, { g: 'a', t: T0 + 2 * HOUR - 10 * MIN }]);
    expect(out.values('late').map((v) => v.t)).toEqual([T0]);
    await op.onEnd(out);
    expect(out.values().map((v) => [v.window_start, v.n])).toEqual([[iso(T0 + 2 * HOUR - 10 * MIN), 2]]);
  });

  it('emits an update for the merged session in update mode', async () => {
    const { op } = makeWindow({ shape: session, emit: 'update', lateness: 2 * HOUR });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 }, { g: 'a', t: T0 + 50 * MIN }]);
    out.clear();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 25 * MIN }]);
    // The session that was merged away is retracted with a tombstone on its old key first.
    expect(out.records().map((r) => [r.key, r.value])).toEqual([
      [{ g: 'a', window_start: iso(T0 + 50 * MIN) }, null],
      [{ g: 'a', window_start: iso(T0) }, { g: 'a', window_start: iso(T0), window_end: iso(T0 + 80 * MIN), n: 3 }],
    ]);
    out.acknowledgeAll();
  });

  it('retracts the old key when an early record moves an emitted session start (update mode)', async () => {
    const { op } = makeWindow({ shape: session, emit: 'update', lateness: 2 * HOUR });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 40 * MIN }]);
    out.clear();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 20 * MIN }]);
    expect(out.records().map((r) => [r.key, r.value === null ? null : (r.value as { n: number }).n])).toEqual([
      [{ g: 'a', window_start: iso(T0 + 40 * MIN) }, null],
      [{ g: 'a', window_start: iso(T0 + 20 * MIN) }, 2],
    ]);
    // Final mode never retracts: nothing was emitted before the session closed.
    const final = makeWindow({ shape: session, emit: 'final', lateness: 2 * HOUR });
    const finalOut = new RecordingOutput();
    await feed(final.op, finalOut, 'p0', [{ g: 'a', t: T0 + 40 * MIN }]);
    await feed(final.op, finalOut, 'p0', [{ g: 'a', t: T0 + 20 * MIN }]);
    await final.op.onEnd(finalOut);
    expect(finalOut.records().map((r) => r.value === null)).toEqual([false]);
  });
});

describe('calendar windows', () => {
  it('cuts Europe/Berlin days of 23 and 25 hours around both daylight-saving changes', async () => {
    const { op } = makeWindow({ shape: { kind: 'calendar', days: 1, timeZone: 'Europe/Berlin' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      { g: 'a', t: '2025-03-29T22:59:59Z' }, // Sat 23:59:59 local
      { g: 'a', t: '2025-03-29T23:00:00Z' }, // Sun 00:00 local (CET)
      { g: 'a', t: '2025-03-30T21:59:59Z' }, // Sun 23:59:59 local (CEST)
      { g: 'a', t: '2025-03-30T22:00:00Z' }, // Mon 00:00 local
      { g: 'a', t: '2025-10-26T00:30:00Z' }, // Sun 02:30 CEST
      { g: 'a', t: '2025-10-26T01:30:00Z' }, // Sun 02:30 CET
      { g: 'a', t: '2025-10-26T22:59:59Z' }, // Sun 23:59:59 CET
    ]);
    await op.onEnd(out);
    expect(out.values().map((v) => [v.window_start, v.window_end, v.n])).toEqual([
      ['2025-03-28T23:00:00.000Z', '2025-03-29T23:00:00.000Z', 1],
      ['2025-03-29T23:00:00.000Z', '2025-03-30T22:00:00.000Z', 2],
      ['2025-03-30T22:00:00.000Z', '2025-03-31T22:00:00.000Z', 1],
      ['2025-10-25T22:00:00.000Z', '2025-10-26T23:00:00.000Z', 3],
    ]);
  });

  it('cuts UTC days at UTC midnight', async () => {
    const { op } = makeWindow({ shape: { kind: 'calendar', days: 1, timeZone: 'UTC' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: '2025-03-30T23:59:59.999Z' }, { g: 'a', t: '2025-03-31T00:00:00Z' }]);
    await op.onEnd(out);
    expect(out.values().map((v) => v.window_start)).toEqual(['2025-03-30T00:00:00.000Z', '2025-03-31T00:00:00.000Z']);
  });
});

describe('record errors', () => {
  it('fails a record whose time is missing or not a timestamp, naming the expression', async () => {
    const { op } = makeWindow({ shape: hourly, time: 'ts' });
    const out = new RecordingOutput();
    const sb = await feed(op, out, 'p0', [{ g: 'a' }, { g: 'a', ts: 'yesterday' }, { g: 'a', ts: T0 }]);
    expect(out.failed.map((f) => f.error.message)).toEqual([
      'time expression `ts` gave nothing, not a timestamp (an ISO 8601 string or epoch milliseconds)',
      'time expression `ts` gave "yesterday", not a timestamp (an ISO 8601 string or epoch milliseconds)',
    ]);
    expect(out.failed[0]!.error).toBeInstanceOf(RecordError);
    expect((out.failed[0]!.error as RecordError).where).toBe('w');
    await op.onEnd(out);
    expect(out.values().map((v) => v.n)).toEqual([1]);
    out.acknowledgeAll();
    expect(sb.completed).toBe(true);
  });

  it('fails a record whose aggregate argument has the wrong type, without absorbing it anywhere', async () => {
    const { op } = makeWindow({ shape: hourly, aggregate: { n: '$count()', total: '$sum(d)' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0, d: 'lots' }, { g: 'a', t: T0, d: 2 }]);
    expect(out.failed.map((f) => f.error.message)).toEqual(['aggregate `total` (`$sum(d)`): expected a number, got "lots"']);
    await op.onEnd(out);
    expect(out.values().map((v) => [v.n, v.total])).toEqual([[1, 2]]);
  });

  it('fails a record whose group key expression throws', async () => {
    const { op } = makeWindow({ shape: hourly, groupBy: { k: '$number(code)' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ code: 'x1', t: T0 }, { code: '7', t: T0 }]);
    expect(out.failed).toHaveLength(1);
    expect(out.failed[0]!.error.message).toMatch(/^group_by `k` \(`\$number\(code\)`\) failed: /);
    await op.onEnd(out);
    expect(out.values().map((v) => v.k)).toEqual([7]);
  });
});

describe('aggregates in the operator', () => {
  it('computes every built-in, with SQL null handling', async () => {
    const { op } = makeWindow({
      shape: hourly,
      aggregate: {
        records: '$count()',
        values: '$count(d)',
        total: '$sum(d)',
        avg: '$avg(d)',
        lo: '$min(d)',
        hi: '$max(d)',
        kinds: '$countDistinct(k)',
        first: '$first(k)',
        last: '$last(k)',
        all: '$collect(d)',
        none: '$sum(missing)',
      },
    });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      { g: 'a', t: T0 + 3, d: 4, k: 'x' },
      { g: 'a', t: T0 + 1, d: null, k: 'y' },
      { g: 'a', t: T0 + 2, k: 'x' },
      { g: 'a', t: T0 + 9, d: 2, k: 'z' },
    ]);
    await op.onEnd(out);
    expect(out.values()[0]).toEqual({
      g: 'a',
      window_start: iso(T0),
      window_end: iso(T0 + HOUR),
      records: 4,
      values: 2,
      total: 6,
      avg: 3,
      lo: 2,
      hi: 4,
      kinds: 3,
      first: 'y',
      last: 'z',
      all: [4, 2],
      none: null,
    });
  });

  it('keeps big integer sums exact', async () => {
    const { op } = makeWindow({ shape: hourly, aggregate: { total: '$sum(d)' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0, d: 2n ** 62n }, { g: 'a', t: T0, d: 2n ** 62n }, { g: 'a', t: T0, d: 1 }]);
    await op.onEnd(out);
    expect(out.values()[0]!.total).toBe(2n ** 63n + 1n);
  });

  it('evaluates any other expression over the group\'s values when the window emits', async () => {
    const { op } = makeWindow({
      shape: hourly,
      aggregate: { n: '$count()', avg1: '$round($average(d), 1)', ratio: '$sum(d) / $count($)', ids: '$join(id, ",")' },
    });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      { g: 'a', t: T0, d: 1, id: 'p' },
      { g: 'a', t: T0, d: 2, id: 'q' },
      { g: 'a', t: T0, d: 2, id: 'r' },
      { g: 'b', t: T0, d: 5, id: 's' },
    ]);
    await op.onEnd(out);
    expect(out.values().map((v) => [v.g, v.n, v.avg1, v.ratio, v.ids])).toEqual([
      ['a', 3, 1.7, 5 / 3, 'p,q,r'],
      ['b', 1, 5, 5, 's'],
    ]);
  });

  it('sends an output whose expression aggregate fails to the errors path', async () => {
    const { op } = makeWindow({ shape: hourly, aggregate: { n: '$count()', bad: '$number(name)' } });
    const out = new RecordingOutput();
    const sb = await feed(op, out, 'p0', [{ g: 'a', t: T0, name: 'x' }, { g: 'b', t: T0, name: '3' }]);
    await op.onEnd(out);
    expect(out.values().map((v) => [v.g, v.bad])).toEqual([['b', 3]]);
    expect(out.failed.map((f) => f.error.message)).toEqual([expect.stringMatching(/^aggregate `bad` \(`\$number\(name\)`\) failed: /)]);
    out.acknowledgeAll();
    expect(sb.completed).toBe(true);
  });

  it('evaluates event time and keys given by non-path expressions', async () => {
    const { op } = makeWindow({ shape: hourly, time: '$meta.ts ? $meta.ts : t', groupBy: { hour: '$hour(t)' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ t: T0 + 3 * HOUR + 5 }]);
    await op.onEnd(out);
    expect(out.values()).toEqual([{ hour: 3, window_start: iso(T0 + 3 * HOUR), window_end: iso(T0 + 4 * HOUR), n: 1 }]);
  });
});

describe('acknowledgement', () => {
  it('completes a source batch only after the window output it fed was acknowledged', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    const b1 = await feed(op, out, 'p0', [{ g: 'a', t: T0 }, { g: 'b', t: T0 + 1 }]);
    const b2 = await feed(op, out, 'p0', [{ g: 'a', t: T0 + 5 }]);
    expect(b1.completed || b2.completed).toBe(false);
    await feed(op, out, 'p0', [{ g: 'c', t: T0 + HOUR }]); // closes the first window
    expect(out.records()).toHaveLength(2);
    expect(b1.completed || b2.completed).toBe(false);
    const [a, b] = out.records();
    a!.ack.release(); // the sink wrote group a: b1 still waits for group b's output
    expect(b2.completed).toBe(true);
    expect(b1.completed).toBe(false);
    b!.ack.release();
    expect(b1.completed).toBe(true);
  });

  it('in update mode waits for every update and for the close', async () => {
    const { op } = makeWindow({ shape: hourly, emit: 'update' });
    const out = new RecordingOutput();
    const b1 = await feed(op, out, 'p0', [{ g: 'a', t: T0 }]);
    out.acknowledgeAll();
    out.clear();
    expect(b1.completed).toBe(false); // the window is still open
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 1 }]);
    const closing = await feed(op, out, 'p0', [{ g: 'z', t: T0 + HOUR }]);
    expect(b1.completed).toBe(false); // the second update is not acknowledged yet
    const [second] = out.records();
    second!.ack.release();
    expect(b1.completed).toBe(true);
    expect(closing.completed).toBe(false);
  });

  it('completes a late record\'s batch only when the late port\'s reader releases it', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 2 * HOUR }]);
    const late = await feed(op, out, 'p0', [{ g: 'a', t: T0 }]);
    expect(late.completed).toBe(false);
    out.acknowledgeAll('late');
    expect(late.completed).toBe(true);
  });
});

describe('snapshot and restore', () => {
  const setups = [
    { name: 'tumbling', shape: hourly, unit: MIN },
    { name: 'hopping', shape: { kind: 'hopping', size: HOUR, advance: 15 * MIN } as const, unit: MIN },
    { name: 'session', shape: { kind: 'session', gap: 20 * MIN } as const, unit: MIN },
    { name: 'calendar', shape: { kind: 'calendar', days: 1, timeZone: 'Europe/Berlin' } as const, unit: 20 * MIN, lateness: 6 * 24 * HOUR },
  ];
  const aggregate = {
    n: '$count()',
    total: '$sum(d)',
    avg: '$average(d)',
    hi: '$max(d)',
    ks: '$countDistinct(k)',
    f: '$first(k)',
    l: '$last(k)',
    all: '$collect(k)',
    composed: '$round($average(d), 1) + $count()',
    kept: '$join(k, "")',
  };
  const inputFor = (unit: number) => Array.from({ length: 60 }, (_, i) => ({
    g: i % 3 === 0 ? 'a' : 'b',
    t: T0 + ((i * 37) % 50) * 7 * unit,
    d: i % 5 === 0 ? null : i % 7 === 0 ? 2n ** 60n : i,
    k: `k${i % 4}`,
  }));

  for (const setup of setups) {
    const { name, shape, unit } = setup;
    // Calendar days need a lateness of days for this scrambled input to leave windows to compare.
    const lateness = 'lateness' in setup ? setup.lateness : 90 * MIN;
    it(`a restored ${name} operator emits what an uninterrupted one does`, async () => {
      const input = inputFor(unit);
      const whole = makeWindow({ shape, lateness, aggregate });
      const wholeOut = new RecordingOutput();
      for (let i = 0; i < input.length; i += 10) await feed(whole.op, wholeOut, i % 20 ? 'p0' : 'p1', input.slice(i, i + 10));
      await whole.op.onEnd(wholeOut);

      const first = makeWindow({ shape, lateness, aggregate });
      const firstOut = new RecordingOutput();
      for (let i = 0; i < 30; i += 10) await feed(first.op, firstOut, i % 20 ? 'p0' : 'p1', input.slice(i, i + 10));
      // Through the stored JSON form, as a checkpoint keeps it.
      const stored = JSON.parse(JSON.stringify(stepStateToJson(first.op.snapshot()), (_k, v: unknown) => (typeof v === 'bigint' ? 'BIGINT?' : v)));
      const state = stepStateFromJson(stored, 'test');
      const second = makeWindow({ shape, lateness, aggregate });
      second.op.restore(state);
      expect(second.op.stats()).toEqual(first.op.stats());
      const secondOut = new RecordingOutput();
      for (let i = 30; i < input.length; i += 10) await feed(second.op, secondOut, i % 20 ? 'p0' : 'p1', input.slice(i, i + 10));
      await second.op.onEnd(secondOut);

      expect([...firstOut.values(), ...secondOut.values()]).toEqual(wholeOut.values());
      expect([...firstOut.values('late'), ...secondOut.values('late')]).toEqual(wholeOut.values('late'));
      // Something to compare: at least two windows emitted.
      expect(wholeOut.values().length).toBeGreaterThanOrEqual(2);
    });
  }

  for (const { name, shape, unit } of setups) {
    it(`${name}: snapshots of only the changes, applied one after another, rebuild the whole state`, async () => {
      // Two operators fed the same batches: one snapshots changes after every batch (as the Kafka
      // changelog store asks), the other a whole snapshot; the applied changes must equal it.
      const input = inputFor(unit);
      const incremental = makeWindow({ shape, lateness: 90 * MIN, aggregate });
      const whole = makeWindow({ shape, lateness: 90 * MIN, aggregate });
      const applied = new Map<string, unknown>();
      let removals = 0;
      const compare = () => {
        const changes = incremental.op.snapshot({ changesOnly: true });
        for (const key of changes.removed!) {
          expect(applied.has(key), `removed ${key} was stored`).toBe(true);
          applied.delete(key);
          removals++;
        }
        for (const [key, value] of changes.entries) applied.set(key, value);
        const full = whole.op.snapshot();
        expect(changes.size).toBe(full.entries.size);
        expect(changes.header).toEqual(full.header);
        expect(new Map([...applied].sort())).toEqual(new Map([...full.entries].sort()));
      };
      for (let i = 0; i < input.length; i += 6) {
        await feed(incremental.op, new RecordingOutput(), 'p0', input.slice(i, i + 6));
        await feed(whole.op, new RecordingOutput(), 'p0', input.slice(i, i + 6));
        compare();
      }
      await incremental.op.onEnd(new RecordingOutput());
      await whole.op.onEnd(new RecordingOutput());
      compare();
      expect(applied.size).toBe(0);
      // Windows closed (or sessions merged and moved) on the way: removals were exercised.
      expect(removals).toBeGreaterThan(0);
    });
  }

  it('a snapshot of changes right after a restore is empty: the restored state is the base', async () => {
    const { op } = makeWindow({ shape: hourly, aggregate });
    await feed(op, new RecordingOutput(), 'p0', inputFor(MIN).slice(0, 20));
    const restored = makeWindow({ shape: hourly, aggregate }).op;
    restored.restore(op.snapshot());
    const changes = restored.snapshot({ changesOnly: true });
    expect(changes.entries.size).toBe(0);
    expect(changes.removed).toEqual([]);
    expect(changes.size).toBe(op.snapshot().entries.size);
  });

  it('refuses a snapshot it cannot read', () => {
    const { op } = makeWindow({ shape: hourly });
    expect(() => op.restore({ header: { version: 99 }, entries: new Map() })).toThrow(/window state: version 99/);
    expect(() => op.restore({ header: 'nope', entries: new Map() })).toThrow(/header is not an object/);
    const good = op.snapshot();
    expect(() => op.restore({ header: good.header, entries: new Map([['k', { start: 'x' }]]) })).toThrow(/pane bounds/);
  });
});

/** The stored form of every pane, as a checkpoint keeps it. */
function storedPanes(op: WindowAggregate): { rows: unknown[] | null; accs: unknown[]; overLimit?: boolean }[] {
  const stored = JSON.parse(JSON.stringify(stepStateToJson(op.snapshot()))) as unknown;
  return [...stepStateFromJson(stored, 'test').entries.values()] as { rows: unknown[] | null; accs: unknown[]; overLimit?: boolean }[];
}

describe('snapshots', () => {
  it('hold copies: records processed after a snapshot (while its checkpoint commits) do not change it', async () => {
    // $collect keeps per-record sequence numbers; a composition over rows keeps the rows and theirs.
    const { op } = makeWindow({ shape: hourly, aggregate: { all: '$collect(d)', mean: '$sum(d) / $count()', path: '$join(k, ",")' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0, d: 1, k: 'x' }]);
    const snapshot = op.snapshot();
    const before = JSON.stringify(stepStateToJson(snapshot));
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + MIN, d: 2, k: 'y' }], 1);
    expect(JSON.stringify(stepStateToJson(snapshot))).toBe(before);
  });
});

describe('memory per group', () => {
  const compositions = { avg: '$round($average(d), 1)', spread: '$max(d) - $min(d)', mean: '$sum(d) / $count()' };

  it('computes compositions of built-ins without keeping the records', async () => {
    const { op } = makeWindow({ shape: hourly, aggregate: compositions });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', Array.from({ length: 1000 }, (_, i) => ({ g: 'a', t: T0 + i, d: i % 10 })));
    const [pane] = storedPanes(op);
    expect(pane!.rows).toBeNull();
    expect(pane!.accs.every((acc) => acc !== null)).toBe(true);
    await op.onEnd(out);
    expect(out.values()).toEqual([{ g: 'a', window_start: iso(T0), window_end: iso(T0 + HOUR), avg: 4.5, spread: 9, mean: 4.5 }]);
  });

  it('restores a composition from the records an earlier sluice kept for it', async () => {
    const input = Array.from({ length: 40 }, (_, i) => ({ g: i % 2 ? 'a' : 'b', t: T0 + i * MIN, d: i % 7 === 0 ? null : i / 4 }));
    // The state an earlier sluice wrote: the same aggregates, evaluated over kept records.
    const earlier = makeWindow({ shape: hourly, lateness: HOUR, aggregate: compositions });
    const asExpressions = new WindowAggregate({
      ...earlier.options,
      aggregates: Object.entries(compositions).map(([name, source]) => ({ name, source, kind: 'expression', expression: compileExpression(source) })),
    });
    await feed(asExpressions, new RecordingOutput(), 'p0', input.slice(0, 25));
    const stored = JSON.parse(JSON.stringify(stepStateToJson(asExpressions.snapshot()))) as unknown;
    expect(storedPanes(asExpressions)[0]!.rows).not.toBeNull();

    const restored = makeWindow({ shape: hourly, lateness: HOUR, aggregate: compositions });
    restored.op.restore(stepStateFromJson(stored, 'test'));
    const restoredOut = new RecordingOutput();
    await feed(restored.op, restoredOut, 'p0', input.slice(25));
    await restored.op.onEnd(restoredOut);

    const whole = makeWindow({ shape: hourly, lateness: HOUR, aggregate: compositions });
    const wholeOut = new RecordingOutput();
    await feed(whole.op, wholeOut, 'p0', input);
    await whole.op.onEnd(wholeOut);
    expect(restoredOut.values()).toEqual(wholeOut.values());
    expect(wholeOut.values()).toHaveLength(2);
  });

  it('sends a group past max_rows to the errors port, its incremental aggregates filled in, and keeps no more of its records', async () => {
    const { op, metrics } = makeWindow({ shape: hourly, maxRows: 3, aggregate: { n: '$count()', mean: '$sum(d) / $count()', path: '$join(k, ",")' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      ...Array.from({ length: 5 }, (_, i) => ({ g: 'a', t: T0 + i, d: i, k: `a${i}` })),
      { g: 'b', t: T0, d: 1, k: 'b0' },
      { g: 'b', t: T0 + 1, d: 3, k: 'b1' },
    ]);
    expect(metrics.counter(ROW_LIMIT_METRIC, { node: 'w' })).toBe(1);
    expect(storedPanes(op).map((p) => [p.rows?.length ?? null, p.overLimit ?? false])).toEqual([
      [null, true],
      [2, false],
    ]);
    // Restored, the group still knows it lost its records.
    const restored = makeWindow({ shape: hourly, maxRows: 3, aggregate: { n: '$count()', mean: '$sum(d) / $count()', path: '$join(k, ",")' } });
    restored.op.restore(stepStateFromJson(JSON.parse(JSON.stringify(stepStateToJson(op.snapshot()))) as unknown, 'test'));
    for (const operator of [op, restored.op]) {
      const o = new RecordingOutput();
      await operator.onEnd(o);
      expect(o.values()).toEqual([{ g: 'b', window_start: iso(T0), window_end: iso(T0 + HOUR), n: 2, mean: 2, path: 'b0,b1' }]);
      expect(o.failed).toHaveLength(1);
      expect(o.failed[0]!.record.value).toEqual({ g: 'a', window_start: iso(T0), window_end: iso(T0 + HOUR), n: 5, mean: 2, path: null });
      const error = o.failed[0]!.error;
      expect(error).toBeInstanceOf(RecordError);
      expect((error as RecordError).code).toBe('E_WINDOW_ROWS');
      expect(error.message).toContain('aggregate `path` (`$join(k, ",")`) is evaluated over every record of its group, and the group had more than max_rows (3)');
    }
  });

  for (const [name, shape] of [
    ['tumbling', hourly],
    ['session', { kind: 'session', gap: 10 * MIN }],
  ] as const) {
    it(`${name}: without snapshots, a closed window keeps nothing of its records alive`, async () => {
      // A run without checkpoints never takes a snapshot. A closed pane (which holds its records'
      // source references) must then be garbage, or memory grows with every window the run saw.
      const gc = collectGarbage();
      const { op } = makeWindow({ shape });
      const out = new RecordingOutput();
      const sources: WeakRef<object>[] = [];
      const feedWindow = async (w: number) => {
        // Two records a session apart, then the next window's first record closes this one.
        const sb = await feed(op, out, 'p0', [
          { g: 'a', t: T0 + w * HOUR },
          { g: 'a', t: T0 + w * HOUR + 5 * MIN },
        ]);
        sources.push(new WeakRef(sb.ack));
      };
      for (let w = 0; w < 20; w++) await feedWindow(w);
      out.acknowledgeAll();
      expect(out.values()).toHaveLength(19);
      out.clear();
      await new Promise((resolve) => setTimeout(resolve, 0)); // WeakRefs hold their targets to the end of the job
      gc();
      const alive = sources.map((ref) => ref.deref() !== undefined);
      // The last window is still open and holds its batch; every closed one let go of its own.
      expect(alive).toEqual([...Array.from({ length: 19 }, () => false), true]);
    });
  }

  it('drops the records of sessions whose merge passes max_rows', async () => {
    const { op } = makeWindow({ shape: { kind: 'session', gap: 10 * MIN }, lateness: HOUR, maxRows: 3, aggregate: { n: '$count()', path: '$join(k, ",")' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [
      { g: 'a', t: T0, k: '1' },
      { g: 'a', t: T0 + MIN, k: '2' },
      { g: 'a', t: T0 + 15 * MIN, k: '3' },
    ]);
    expect(storedPanes(op).map((p) => p.rows?.length)).toEqual([2, 1]);
    await feed(op, out, 'p0', [{ g: 'a', t: T0 + 8 * MIN, k: '4' }]); // bridges the two: 4 records
    expect(storedPanes(op).map((p) => [p.rows, p.overLimit])).toEqual([[null, true]]);
    await op.onEnd(out);
    expect(out.failed.map((f) => (f.record.value as { n: number }).n)).toEqual([4]);
  });
});

describe('asynchronous emission (expression aggregates)', () => {
  it('a tick that closes windows with expression aggregates returns a promise the caller awaits, and later batches queue behind it', async () => {
    const { op, clock } = makeWindow({ shape: hourly, idle: MIN, aggregate: { ids: '$join(id, ",")' } });
    const out = new RecordingOutput();
    await feed(op, out, 'p0', [{ g: 'a', t: T0, id: 'x' }]);
    await feed(op, out, 'p1', [{ g: 'a', t: T0 + 2 * HOUR, id: 'y' }]);
    clock.advance(MIN);
    const tick = op.onTick(clock.now(), out);
    expect(tick).toBeInstanceOf(Promise);
    // A batch arriving before the tick's emission settled must not overtake it.
    const sb = new SourceBatch('p0', [{ g: 'b', t: T0 + 3 * HOUR, id: 'z' }]);
    const next = op.process(sb.batch, out);
    await tick;
    await next;
    await op.onEnd(out);
    expect(out.values().map((v) => [v.window_start, v.ids])).toEqual([
      [iso(T0), 'x'],
      [iso(T0 + 2 * HOUR), 'y'],
      [iso(T0 + 3 * HOUR), 'z'],
    ]);
  });
});

describe('after a repartition: watermarks per origin, moved by progress markers', () => {
  /** One batch from repartition partition `rp/0`, each record written by the upstream task named with it. */
  async function feedOrigins(op: WindowAggregate, out: RecordingOutput, rows: [origin: string, value: Record<string, unknown>][]): Promise<SourceBatch> {
    const sb = new SourceBatch('rp/0', rows.map(([, v]) => v));
    sb.batch.records.forEach((r, i) => (r.origin = rows[i]![0]));
    await op.process(sb.batch, out);
    return sb;
  }

  it('tracks records under their origin, not the partition they were read from: a fast origin does not close a window the slow one still feeds', async () => {
    const { op } = makeWindow({ shape: hourly, idle: MIN });
    const out = new RecordingOutput();
    await op.onPartitions({ type: 'assign', partitions: ['0_0', '0_1'] }, out);
    await feedOrigins(op, out, [
      ['0_0', { g: 'a', t: T0 + 10 * MIN }],
      ['0_0', { g: 'a', t: T0 + 3 * HOUR }],
      ['0_1', { g: 'a', t: T0 + 20 * MIN }],
    ]);
    await feedOrigins(op, out, [['0_1', { g: 'a', t: T0 + 50 * MIN }]]); // behind 0_0 by hours, not late
    expect(out.records()).toEqual([]);
    expect(out.records('late')).toEqual([]);
    expect(op.stats().watermark).toBe(iso(T0 + 50 * MIN));
    await feedOrigins(op, out, [['0_1', { g: 'a', t: T0 + HOUR + MIN }]]);
    expect(out.values()).toEqual([{ g: 'a', window_start: iso(T0), window_end: iso(T0 + HOUR), n: 3 }]);
  });

  it('closes windows on a progress marker, and leaves an idle origin out', async () => {
    const { op } = makeWindow({ shape: hourly });
    const out = new RecordingOutput();
    await op.onPartitions({ type: 'assign', partitions: ['0_0', '0_1'] }, out);
    await feedOrigins(op, out, [
      ['0_0', { g: 'a', t: T0 + 10 * MIN }],
      ['0_0', { g: 'a', t: T0 + 2 * HOUR + 10 * MIN }],
    ]);
    expect(op.stats().watermark).toBeUndefined(); // 0_1 not heard from
    await op.onPartitions({ type: 'progress', origin: '0_1', time: T0 + HOUR + 5 * MIN, idle: false }, out);
    expect(out.values().map((v) => v.window_start)).toEqual([iso(T0)]);
    await op.onPartitions({ type: 'progress', origin: '0_1', time: undefined, idle: true }, out);
    expect(op.stats().watermark).toBe(iso(T0 + 2 * HOUR + 10 * MIN));
  });

  it('keeps an origin that sent markers holding the watermark however long it is silent', async () => {
    const { op, clock } = makeWindow({ shape: hourly, idle: MIN });
    const out = new RecordingOutput();
    await op.onPartitions({ type: 'progress', origin: '0_1', time: T0 + 5 * MIN, idle: false }, out);
    await feedOrigins(op, out, [['0_0', { g: 'a', t: T0 + 10 * MIN }], ['0_0', { g: 'a', t: T0 + 3 * HOUR }]]);
    clock.advance(HOUR);
    await op.onTick(clock.now(), out);
    expect(out.records()).toEqual([]);
    expect(op.stats().watermark).toBe(iso(T0 + 5 * MIN));
  });

  it('restores marker-driven and idle origins from a checkpoint, and reads headers without the flags', async () => {
    const { op } = makeWindow({ shape: hourly, idle: MIN });
    const out = new RecordingOutput();
    await op.onPartitions({ type: 'progress', origin: '0_0', time: T0 + 5 * MIN, idle: false }, out);
    await op.onPartitions({ type: 'progress', origin: '0_1', time: T0 + HOUR, idle: true }, out);
    await feedOrigins(op, out, [['0_0', { g: 'a', t: T0 + 6 * MIN }]]);
    const stored = JSON.parse(JSON.stringify(stepStateToJson(op.snapshot()))) as unknown;
    const restored = makeWindow({ shape: hourly, idle: MIN });
    restored.op.restore(stepStateFromJson(stored, 'test'));
    restored.clock.advance(HOUR); // long silence: 0_0 is marker-driven, so it still holds
    const after = new RecordingOutput();
    await restored.op.onTick(restored.clock.now(), after);
    expect(after.records()).toEqual([]);
    expect(restored.op.stats().watermark).toBe(iso(T0 + 6 * MIN));
    await restored.op.onPartitions({ type: 'progress', origin: '0_0', time: T0 + HOUR, idle: false }, after);
    expect(after.values()).toEqual([{ g: 'a', window_start: iso(T0), window_end: iso(T0 + HOUR), n: 1 }]);

    const bad = JSON.parse(JSON.stringify(stepStateToJson(op.snapshot()))) as { header: { watermarks: { partitions: Record<string, unknown>[] } } };
    bad.header.watermarks.partitions[0]!.idle = 'yes';
    expect(() => makeWindow({ shape: hourly }).op.restore(stepStateFromJson(bad, 'test'))).toThrow(/bad partition flags/);
  });
});

/** A full garbage collection, callable without starting node with --expose-gc. */
function collectGarbage(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
