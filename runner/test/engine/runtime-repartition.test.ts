/**
 * The runtime reading a repartition topic: records of several upstream tasks (origins) interleave
 * in arrival order, not event-time order, and watermark markers travel among them. A fake format
 * stands for the `repartition` one: markers never become records, they reach the steps downstream
 * of the source as `progress` events in offset order, and a window closes exactly what every
 * origin has passed.
 */
import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/engine/clock.ts';
import type { Decoded, Format, ProgressMarker } from '../../src/engine/component.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import type { RawMessage, StreamRecord } from '../../src/engine/record.ts';
import { RecordError } from '../../src/engine/errors.ts';
import { Runtime, type RuntimeOptions } from '../../src/engine/runtime.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';
import { windowStep } from '../../src/components/steps/window.ts';
import { RecordingSink, ScriptedSource, ScriptedStep, graphOf, type BatchSpec } from './fake-components.ts';

const MIN = 60_000;
const SIZE = 10 * MIN;
const T0 = Date.parse('2025-06-01T00:00:00Z');
const ORIGINS = ['0_0', '0_1'];

function options(): RuntimeOptions {
  return { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0 };
}

interface Data {
  origin: string;
  g: string;
  t: number;
  v: number;
}

const data = (d: Data) => JSON.stringify(d);
const marker = (origin: string, time: number | undefined, idle = false) => JSON.stringify({ marker: { origin, time: time ?? null, idle } });

/** The `repartition` format in miniature: JSON data carrying its origin, and JSON markers. */
class FakeRepartitionFormat implements Format {
  controlCalls = 0;
  /** Messages `decode` got that were markers: must stay 0. */
  decodedMarkers = 0;

  control(message: RawMessage): ProgressMarker | undefined {
    this.controlCalls++;
    const m = (JSON.parse(String(message.value)) as { marker?: { origin: string; time: number | null; idle: boolean } }).marker;
    return m === undefined ? undefined : { origin: m.origin, time: m.time ?? undefined, idle: m.idle };
  }

  decode(message: RawMessage): Decoded {
    const v = JSON.parse(String(message.value)) as Data & { marker?: unknown };
    if (v.marker !== undefined) this.decodedMarkers++;
    return { key: v.g, value: { g: v.g, t: v.t, v: v.v }, meta: {}, time: v.t, origin: v.origin };
  }

  origins(partition: string): string[] | undefined {
    return partition.startsWith('rp/') ? ORIGINS : undefined;
  }
}

/** A step that keeps what reaches it, and passes it on. */
function spyStep(): { step: ScriptedStep; records: StreamRecord[] } {
  const records: StreamRecord[] = [];
  const step = new ScriptedStep({
    process: (rs, out) => {
      records.push(...rs);
      out.emit(rs);
    },
  });
  return { step, records };
}

/**
 * Two upstream tasks writing into one repartition partition: `0_0` runs far ahead in event time,
 * `0_1` behind, each in its own event-time order; arrivals interleave at random. At every upstream
 * "checkpoint" each task writes a marker with the highest event time it has written so far. At the
 * end `0_1` marks itself idle.
 */
function scenario(seed: number): { batches: BatchSpec[]; records: Data[]; markers: number } {
  const random = mulberry32(seed);
  const step = { '0_0': 3 * MIN, '0_1': MIN };
  const next = { '0_0': T0, '0_1': T0 };
  const highest: Record<string, number | undefined> = { '0_0': undefined, '0_1': undefined };
  const left = { '0_0': 300, '0_1': 300 };
  const values: string[] = [];
  const records: Data[] = [];
  let markers = 0;
  while (left['0_0'] + left['0_1'] > 0) {
    const origin = left['0_0'] === 0 ? '0_1' : left['0_1'] === 0 ? '0_0' : random() < 0.5 ? '0_0' : '0_1';
    left[origin]--;
    next[origin] += Math.floor(random() * step[origin]);
    const d: Data = { origin, g: random() < 0.5 ? 'a' : 'b', t: next[origin], v: 1 + Math.floor(random() * 100) };
    highest[origin] = d.t;
    records.push(d);
    values.push(data(d));
    if (random() < 0.08) {
      for (const o of ORIGINS) values.push(marker(o, highest[o]));
      markers += ORIGINS.length;
    }
  }
  // 0_1 is done and says so; 0_0's last records came after its last marker: they alone move it.
  values.push(marker('0_1', highest['0_1'], true));
  markers += 1;
  // Batches of 1 to 12 messages, markers wherever they fall.
  const batches: BatchSpec[] = [];
  for (let i = 0; i < values.length; ) {
    const n = 1 + Math.floor(random() * 12);
    batches.push({ partition: 'rp/0', values: values.slice(i, i + n) });
    i += n;
  }
  return { batches, records, markers };
}

/** The windows that must have closed, computed here from the records alone. */
function expectedWindows(records: Data[]): { closed: Record<string, unknown>[]; watermark: number; lateUnderMax: number } {
  const highest = new Map<string, number>();
  for (const r of records) highest.set(r.origin, Math.max(highest.get(r.origin) ?? -Infinity, r.t));
  // 0_1 ends idle: only 0_0 counts, as far as its records went.
  const watermark = highest.get('0_0')!;
  const sums = new Map<string, { g: string; start: number; total: number; n: number }>();
  for (const r of records) {
    const start = Math.floor(r.t / SIZE) * SIZE;
    const key = `${start}|${r.g}`;
    const s = sums.get(key) ?? { g: r.g, start, total: 0, n: 0 };
    s.total += r.v;
    s.n++;
    sums.set(key, s);
  }
  const closed = [...sums.values()]
    .filter((s) => s.start + SIZE <= watermark)
    .map((s) => ({ g: s.g, window_start: new Date(s.start).toISOString(), window_end: new Date(s.start + SIZE).toISOString(), total: s.total, n: s.n }));
  // What a stream time following the fastest origin (the maximum) would have dropped as late.
  let max = -Infinity;
  let lateUnderMax = 0;
  for (const r of records) {
    if (Math.floor(r.t / SIZE) * SIZE + SIZE <= max) lateUnderMax++;
    max = Math.max(max, r.t);
  }
  return { closed, watermark, lateUnderMax };
}

const byWindowThenGroup = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  String(a.window_start).localeCompare(String(b.window_start)) || String(a.g).localeCompare(String(b.g));

describe('Runtime reading a repartition topic', () => {
  it('closes exactly the windows every origin has passed, with no late record, though origins interleave out of event-time order', async () => {
    const { batches, records, markers } = scenario(7);
    const expected = expectedWindows(records);
    // The scenario is one where following the fastest origin goes wrong, and where windows close before the end.
    expect(expected.lateUnderMax).toBeGreaterThan(50);
    expect(expected.closed.length).toBeGreaterThan(20);

    const format = new FakeRepartitionFormat();
    const source = new ScriptedSource('rp', batches, false);
    source.assignFirst = ['rp/0'];
    const spy = spyStep();
    const window = windowStep.create(
      { window: { tumbling: '10m', time: 't' }, group_by: ['g'], aggregate: { total: '$sum(v)', n: '$count()' } },
      { name: 'w', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'run' },
    );
    const sums = new RecordingSink();
    const late = new RecordingSink();
    const runtime = new Runtime(
      graphOf([
        { source: 'rp', impl: source, format },
        { step: 'spy', impl: spy.step, from: ['rp'] },
        { step: 'w', impl: window, from: ['spy'] },
        { sink: 'sums', impl: sums, from: ['w'] },
        { sink: 'late', impl: late, from: ['w.late'] },
      ]),
      options(),
    );
    const done = runtime.run();
    await vi.waitFor(() => expect(spy.records.length).toBe(records.length));
    await vi.waitFor(() => expect(sums.values.length).toBe(expected.closed.length));
    await runtime.stop();
    const outcome = await done;

    expect((sums.values as Record<string, unknown>[]).slice().sort(byWindowThenGroup)).toEqual(expected.closed.slice().sort(byWindowThenGroup));
    expect(late.values).toEqual([]);
    expect(outcome.stats.nodes.w!.step).toMatchObject({ late: 0, watermark: new Date(expected.watermark).toISOString() });

    // Markers: never decoded, never a record; each reached the steps as a progress event.
    expect(format.decodedMarkers).toBe(0);
    expect(format.controlCalls).toBe(records.length + markers);
    expect(spy.records.map((r) => r.value)).toEqual(records.map(({ g, t, v }) => ({ g, t, v })));
    expect(spy.records.map((r) => r.origin)).toEqual(records.map((r) => r.origin));
    expect(spy.step.calls.filter((c) => c.startsWith('progress:'))).toHaveLength(markers);
    // The steps were told the partition's origins, not the partition.
    expect(spy.step.calls[0]).toBe('assign:0_0,0_1');
    expect(outcome.stats.nodes.rp).toMatchObject({ recordsIn: records.length + markers, recordsOut: records.length, failed: 0 });
  });

  it('delivers the records before a marker, then the marker, then the records after it; a batch of markers only completes', async () => {
    const format = new FakeRepartitionFormat();
    const d = (t: number, origin = '0_0') => data({ origin, g: 'a', t, v: 1 });
    const source = new ScriptedSource('rp', [
      { partition: 'rp/0', values: [d(1), d(2), marker('0_1', 5), d(3, '0_1'), marker('0_0', undefined, true), marker('0_1', 9)] },
      { partition: 'rp/0', values: [marker('0_0', 4), marker('0_1', 10, true)] },
      { partition: 'other/0', values: [JSON.stringify({ g: 'b', t: 7, v: 2 })] },
    ]);
    source.assignFirst = ['rp/0', 'other/0'];
    const first = spyStep();
    const second = spyStep();
    const sink = new RecordingSink();
    const runtime = new Runtime(
      graphOf([
        { source: 'rp', impl: source, format },
        { step: 'first', impl: first.step, from: ['rp'] },
        { step: 'second', impl: second.step, from: ['first'] },
        { sink: 'out', impl: sink, from: ['second'] },
      ]),
      options(),
    );
    await runtime.run();
    const expectedCalls = [
      'assign:0_0,0_1,other/0', // a partition the format names no origins for stays itself
      'process:rp/0:2',
      'progress:0_1:5',
      'process:rp/0:1',
      'progress:0_0:-:idle',
      'progress:0_1:9',
      'progress:0_0:4',
      'progress:0_1:10:idle',
      'process:other/0:1',
      'end',
    ];
    expect(first.step.calls).toEqual(expectedCalls);
    expect(second.step.calls).toEqual(expectedCalls.map((c) => c.replace(/^process:[^:]+/, 'process:first')));
    expect(sink.values).toEqual([
      { g: 'a', t: 1, v: 1 },
      { g: 'a', t: 2, v: 1 },
      { g: 'a', t: 3, v: 1 },
      { g: 'b', t: 7, v: 2 },
    ]);
    // Records get an origin only when the format gives one.
    expect(first.records.map((r) => r.origin)).toEqual(['0_0', '0_0', '0_1', undefined]);
    expect('origin' in first.records[3]!).toBe(false);
    expect(format.decodedMarkers).toBe(0);
    // Every batch completed: markers hold no reference, the marker-only batch included.
    expect(source.completed.slice().sort()).toEqual([0, 1, 2]);
  });

  it('tells only the steps downstream of the source about its markers', async () => {
    const format = new FakeRepartitionFormat();
    const rp = new ScriptedSource('rp', [{ partition: 'rp/0', values: [marker('0_0', 4)] }]);
    const other = new ScriptedSource('other', [{ partition: 'o/0', values: [JSON.stringify({ n: 1 })] }]);
    const reader = new ScriptedStep();
    const bystander = new ScriptedStep();
    await new Runtime(
      graphOf([
        { source: 'rp', impl: rp, format },
        { source: 'other', impl: other },
        { step: 'reader', impl: reader, from: ['rp'] },
        { step: 'bystander', impl: bystander, from: ['other'] },
        { sink: 'out', impl: new RecordingSink(), from: ['reader', 'bystander'] },
      ]),
      options(),
    ).run();
    expect(reader.calls).toContain('progress:0_0:4');
    expect(bystander.calls.filter((c) => c.startsWith('progress'))).toEqual([]);
  });
});

/** The format with packs: a message whose value is a JSON array is a pack of those records, each with its own headers. */
class FakePackingFormat extends FakeRepartitionFormat {
  unpack(message: RawMessage): Decoded[] | undefined {
    const v = JSON.parse(String(message.value)) as unknown;
    if (!Array.isArray(v)) return undefined;
    if (v.some((d) => typeof (d as Data).t !== 'number')) throw new RecordError('E_DECODE', 'not a pack', 'sources.rp');
    return (v as (Data & { h?: string })[]).map((d) => ({ key: d.g, value: { g: d.g, t: d.t, v: d.v }, meta: { n: d.v }, time: d.t, origin: d.origin, headers: { h: d.h ?? '' } }));
  }
}

describe('Runtime reading packs (several records in one message)', () => {
  it('makes each record of a pack a record at the message position, with its own headers, and completes the batch once every one is released', async () => {
    const format = new FakePackingFormat();
    const d = (v: number, h?: string, origin = '0_0') => ({ origin, g: 'a', t: v, v, ...(h !== undefined ? { h } : {}) });
    const source = new ScriptedSource('rp', [
      { partition: 'rp/0', values: [JSON.stringify([d(1, 'x'), d(2, 'y'), d(3)]), data(d(4)), JSON.stringify([]), JSON.stringify([d(5, 'z', '0_1')])] },
      { partition: 'rp/0', values: [JSON.stringify([{ bad: true }]), JSON.stringify([d(6)])] },
    ]);
    source.assignFirst = ['rp/0'];
    const held: StreamRecord[] = [];
    const holder = new ScriptedStep({ process: (rs) => void held.push(...rs) });
    const errors = new RecordingSink();
    const runtime = new Runtime(
      graphOf([
        { source: 'rp', impl: source, format },
        { step: 'hold', impl: holder, from: ['rp'] },
        { sink: 'out', impl: new RecordingSink(), from: ['hold'] },
        { sink: 'errors', impl: errors, from: ['rp.errors'] },
      ]),
      options(),
    );
    const done = runtime.run();
    await vi.waitFor(() => expect(held).toHaveLength(6));
    expect(held.map((r) => [r.value, r.position.offset, r.headers, r.origin, r.meta.n])).toEqual([
      [{ g: 'a', t: 1, v: 1 }, '0', { h: 'x' }, '0_0', 1],
      [{ g: 'a', t: 2, v: 2 }, '0', { h: 'y' }, '0_0', 2],
      [{ g: 'a', t: 3, v: 3 }, '0', { h: '' }, '0_0', 3],
      // A message that is no pack is decoded, its headers the message's.
      [{ g: 'a', t: 4, v: 4 }, '1', {}, '0_0', undefined],
      [{ g: 'a', t: 5, v: 5 }, '3', { h: 'z' }, '0_1', 5],
      [{ g: 'a', t: 6, v: 6 }, '5', { h: '' }, '0_0', 6],
    ]);
    // A malformed pack goes to the errors port whole, as the message it was.
    await vi.waitFor(() => expect(errors.values).toHaveLength(1));
    // Each held record is one reference on its batch's Ack: the first completes with its fifth record, not before.
    for (const r of held.slice(0, 4)) r.ack.release();
    await Promise.resolve();
    expect(source.completed).toEqual([]);
    held[4]!.ack.release();
    await vi.waitFor(() => expect(source.completed).toEqual([0]));
    held[5]!.ack.release();
    await vi.waitFor(() => expect(source.completed).toEqual([0, 1]));
    await runtime.stop();
    const outcome = await done;
    expect(outcome.stats.nodes.rp).toMatchObject({ recordsIn: 7, failed: 1 });
  });
});
