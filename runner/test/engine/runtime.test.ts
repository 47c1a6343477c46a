import { afterEach, describe, expect, it, vi } from 'vitest';
import { Ack } from '../../src/engine/ack.ts';
import { ManualClock } from '../../src/engine/clock.ts';
import type { StateStore } from '../../src/engine/checkpoint/checkpoint.ts';
import { CheckpointCoordinator } from '../../src/engine/checkpoint/coordinator.ts';
import type { Source, SourceOutput, Step, StepOutput, StepState } from '../../src/engine/component.ts';
import { ConfigError, FencedError, SluiceError } from '../../src/engine/errors.ts';
import { silentLogger, type Logger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import type { StreamRecord } from '../../src/engine/record.ts';
import { Runtime, type RuntimeOptions } from '../../src/engine/runtime.ts';
import { filterStep } from '../../src/components/steps/filter.ts';
import { setStep } from '../../src/components/steps/set.ts';
import { windowStep } from '../../src/components/steps/window.ts';
import { RecordingSink, ScriptedSource, ScriptedStep, graphOf, settle } from './fake-components.ts';

const json = (...values: unknown[]) => values.map((v) => JSON.stringify(v));

function options(extra: Partial<RuntimeOptions> = {}): RuntimeOptions {
  return { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0, ...extra };
}

/** A Logger keeping its warnings, to check what is logged and how often. */
function warningLogger(): { logger: Logger; warnings: { obj: object | string; msg: string | undefined }[] } {
  const warnings: { obj: object | string; msg: string | undefined }[] = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (obj, msg) => warnings.push({ obj, msg }),
    error: () => {},
    child: () => logger,
  };
  return { logger, warnings };
}

const ctx = (name: string) => ({ name, logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' as const });

describe('Runtime: flow and acknowledgement', () => {
  it('decodes, runs the steps in order and writes, completing each batch only after its sink wrote', async () => {
    const source = new ScriptedSource('in', [
      { partition: 'in/0', values: json({ n: 1 }, { n: 2 }) },
      { partition: 'in/0', values: json({ n: 3 }) },
    ]);
    const sink = new RecordingSink();
    sink.hold();
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 'big', impl: filterStep.create({ filter: 'n >= 2' }, ctx('big')), from: ['in'] },
      { step: 'tagged', impl: setStep.create({ set: { double: 'n * 2' } }, ctx('tagged')), from: ['big'] },
      { sink: 'out', impl: sink, from: ['tagged'] },
    ]);
    const runtime = new Runtime(graph, options());
    const running = runtime.run();
    for (let i = 0; i < 5; i++) await settle();
    expect(sink.heldWrites).toBe(1);
    expect(source.completed).toEqual([]);

    sink.releaseHeld();
    const outcome = await running;
    expect(sink.values).toEqual([
      { n: 2, double: 4 },
      { n: 3, double: 6 },
    ]);
    expect(source.completed.sort()).toEqual([0, 1]);
    expect(sink.opened && sink.closed && source.closed).toBe(true);
    expect(outcome).toMatchObject({
      ended: 'end-of-input',
      recordsIn: 3,
      recordsOut: { out: 2 },
      discarded: 1,
      failed: 0,
      dropped: 0,
    });
    expect(outcome.stats.nodes.big).toMatchObject({ role: 'step', recordsIn: 3, recordsOut: 2, discarded: 1 });
    expect(outcome.stats.nodes.tagged!.nanos).toBeGreaterThan(0);
    expect(outcome.stats.nodes.in).toMatchObject({ role: 'source', recordsIn: 3, recordsOut: 3 });
  });

  it('does not open sinks when told not to (test mode), but still closes them', async () => {
    const sink = new RecordingSink();
    const graph = graphOf([
      { source: 'in', impl: new ScriptedSource('in', [{ partition: 'p', values: json({}) }]) },
      { sink: 'out', impl: sink, from: ['in'] },
    ]);
    await new Runtime(graph, options({ openSinks: false })).run();
    expect(sink.opened).toBe(false);
    expect(sink.closed).toBe(true);
    expect(sink.values).toEqual([{}]);
  });

  it('completes a batch whose records were all filtered out, writing nothing', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json({ n: 1 }, { n: 2 }) }]);
    const sink = new RecordingSink();
    const metrics = new Metrics();
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 'none', impl: filterStep.create({ filter: 'n > 5' }, ctx('none')), from: ['in'] },
      { sink: 'out', impl: sink, from: ['none'] },
    ]);
    const outcome = await new Runtime(graph, options({ metrics })).run();
    expect(source.completed).toEqual([0]);
    expect(sink.writes).toEqual([]);
    expect(outcome.discarded).toBe(2);
    expect(metrics.counter('sluice_records_filtered_total', { node: 'none' })).toBe(2);
  });

  it('on fan-out completes a batch only after every branch acknowledged it', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json({ n: 1 }) }]);
    const fast = new RecordingSink();
    const slow = new RecordingSink();
    slow.hold();
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 'a', impl: new ScriptedStep(), from: ['in'] },
      { sink: 'fast', impl: fast, from: ['a'] },
      { sink: 'slow', impl: slow, from: ['a'] },
      { sink: 'raw', impl: new RecordingSink(), from: ['in'] },
    ]);
    const running = new Runtime(graph, options()).run();
    for (let i = 0; i < 5; i++) await settle();
    expect(fast.values).toEqual([{ n: 1 }]);
    expect(source.completed).toEqual([]);
    slow.releaseHeld();
    const outcome = await running;
    expect(source.completed).toEqual([0]);
    expect(outcome.recordsOut).toEqual({ fast: 1, slow: 1, raw: 1 });
  });

  it('fails the run when a sink gives up, never acknowledging what it could not write', async () => {
    const source = new ScriptedSource(
      'in',
      Array.from({ length: 5 }, (_, i) => ({ partition: 'p', values: json({ i }) })),
      false,
    );
    const sink = new RecordingSink();
    sink.failNext = new Error('broker unreachable');
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'out', impl: sink, from: ['in'] },
    ]);
    const runtime = new Runtime(graph, options({ sinkBatchRecords: 1 }));
    const error = await runtime.run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: 'E_SINK_WRITE', where: 'sinks.out' });
    expect((error as Error).message).toMatch(/broker unreachable/);
    // The first record failed: its batch, and every later one, stays unacknowledged.
    expect(source.completed).not.toContain(0);
    expect(source.stopCalls).toBe(1);
    expect(source.closed && sink.closed).toBe(true);
    expect(runtime.stats().state).toBe('failed');
  });

  it('fails naming the sink that could not open, closing the ones that did, reading nothing', async () => {
    const good = new RecordingSink();
    const bad = new RecordingSink();
    bad.open = async () => {
      throw new Error('connection refused');
    };
    const source = new ScriptedSource('in', [{ partition: 'p', values: json(1) }]);
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'good', impl: good, from: ['in'] },
      { sink: 'bad', impl: bad, from: ['in'] },
    ]);
    await expect(new Runtime(graph, options()).run()).rejects.toMatchObject({ code: 'E_SINK_OPEN', where: 'sinks.bad' });
    expect(good.closed).toBe(true);
    expect(source.emitted).toBe(0);
  });

  it('fails the run when a source fails', async () => {
    const failing: Source = {
      bounded: true,
      run: async () => {
        throw new Error('no such file');
      },
      stop: async () => {},
      close: async () => {},
    };
    const graph = graphOf([
      { source: 'in', impl: failing },
      { sink: 'out', impl: new RecordingSink(), from: ['in'] },
    ]);
    await expect(new Runtime(graph, options()).run()).rejects.toMatchObject({ code: 'E_SOURCE', where: 'sources.in' });
  });

  it('fails the run when a step throws instead of failing a record', async () => {
    const graph = graphOf([
      { source: 'in', impl: new ScriptedSource('in', [{ partition: 'p', values: json({}) }]) },
      {
        step: 'buggy',
        impl: new ScriptedStep({
          process: () => {
            throw new TypeError('x is undefined');
          },
        }),
        from: ['in'],
      },
      { sink: 'out', impl: new RecordingSink(), from: ['buggy'] },
    ]);
    await expect(new Runtime(graph, options()).run()).rejects.toMatchObject({ code: 'E_STEP', where: 'steps.buggy' });
  });
});

describe('Runtime: bookkeeping bugs surface as failures', () => {
  it('fails the run (not an unhandled rejection) when a step emits a record twice without retaining it', async () => {
    const graph = graphOf([
      { source: 'in', impl: new ScriptedSource('in', [{ partition: 'p', values: json(1) }]) },
      {
        step: 'dup',
        impl: new ScriptedStep({
          process: (records, out) => {
            out.emit(records);
            out.emit(records);
          },
        }),
        from: ['in'],
      },
      { sink: 'out', impl: new RecordingSink(), from: ['dup'] },
    ]);
    await expect(new Runtime(graph, options()).run()).rejects.toMatchObject({ code: 'E_SINK_ACK', where: 'sinks.out' });
  });
});

describe('Runtime: backpressure', () => {
  it('a slow sink bounds the batches in flight and blocks the source', async () => {
    const batches = Array.from({ length: 50 }, (_, i) => ({ partition: 'p', values: json(...Array.from({ length: 10 }, () => ({ i }))) }));
    const source = new ScriptedSource('in', batches);
    const sink = new RecordingSink();
    sink.hold();
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'out', impl: sink, from: ['in'] },
    ]);
    const maxQueuedBatches = 2;
    const sinkQueueRecords = 20;
    const sinkBatchRecords = 10;
    const running = new Runtime(graph, options({ maxQueuedBatches, sinkQueueRecords, sinkBatchRecords })).run();
    for (let i = 0; i < 20; i++) await settle();
    // In flight at most: one batch being written, the sink queue's capacity, the queued batches,
    // and the one the source awaits.
    const bound = 1 + sinkQueueRecords / 10 + maxQueuedBatches + 1;
    expect(source.emitted).toBeLessThanOrEqual(bound);
    expect(source.emitted).toBeLessThan(50);
    sink.releaseHeld();
    await running;
    expect(source.emitted).toBe(50);
    expect(source.completed).toHaveLength(50);
    expect(source.maxInFlight).toBeLessThanOrEqual(bound);
    expect(sink.writes.every((w) => w.length <= sinkBatchRecords)).toBe(true);
  });
});

describe('Runtime: errors and ports', () => {
  it('routes a poison message to <source>.errors and keeps the partition flowing', async () => {
    const source = new ScriptedSource('in', [
      { partition: 'p', values: ['{"n":1}', 'not json', '{"n":3}'] },
      { partition: 'p', values: ['{"n":4}'] },
    ]);
    const good = new RecordingSink();
    const dead = new RecordingSink();
    const dlq: StreamRecord[] = [];
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'good', impl: good, from: ['in'] },
      {
        step: 'why',
        impl: new ScriptedStep({
          process: (records, out) => {
            dlq.push(...records);
            out.emit(records);
          },
        }),
        from: ['in.errors'],
      },
      { sink: 'dead', impl: dead, from: ['why'] },
    ]);
    const outcome = await new Runtime(graph, options()).run();
    expect(good.values).toEqual([{ n: 1 }, { n: 3 }, { n: 4 }]);
    expect(dead.values).toEqual(['not json']);
    expect(dlq[0]!.meta.error).toMatchObject({ node: 'in', code: 'E_DECODE' });
    expect(dlq[0]!.headers['sluice-error-node']).toBe('in');
    expect(dlq[0]!.position).toMatchObject({ partition: 'p', offset: '1' });
    expect(source.completed.sort()).toEqual([0, 1]);
    expect(outcome.failed).toBe(1);
  });

  it('counts and releases a poison message when nothing reads the errors port', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: ['nope', '{"n":2}'] }]);
    const sink = new RecordingSink();
    const metrics = new Metrics();
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'out', impl: sink, from: ['in'] },
    ]);
    const outcome = await new Runtime(graph, options({ metrics })).run();
    expect(sink.values).toEqual([{ n: 2 }]);
    expect(source.completed).toEqual([0]);
    expect(metrics.counter('sluice_records_failed_total', { node: 'in' })).toBe(1);
    expect(metrics.counter('sluice_records_dropped_total', { node: 'in', port: 'errors' })).toBe(1);
    expect(outcome).toMatchObject({ failed: 1, dropped: 1 });
  });

  it('drops a record its sink cannot prepare when nothing reads <sink>.errors, counting it as failed there and logging at a limited rate; the rest is written and the batch completes', async () => {
    const source = new ScriptedSource('in', [
      { partition: 'p', values: json({ n: 1 }, { n: 2, bad: true }, { n: 3 }) },
      { partition: 'p', values: json({ n: 4, bad: true }, { n: 5 }) },
    ]);
    const sink = new RecordingSink();
    sink.unpreparable = (r) => (r.value as { bad?: boolean }).bad === true;
    const metrics = new Metrics();
    const { logger, warnings } = warningLogger();
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'out', impl: sink, from: ['in'] },
    ]);
    const outcome = await new Runtime(graph, options({ metrics, logger, warnIntervalMs: 60_000 })).run();
    expect(sink.values).toEqual([{ n: 1 }, { n: 3 }, { n: 5 }]);
    expect(source.completed.sort()).toEqual([0, 1]);
    expect(metrics.counter('sluice_records_failed_total', { node: 'out' })).toBe(2);
    expect(metrics.counter('sluice_records_written_total', { node: 'out' })).toBe(3);
    expect(outcome).toMatchObject({ ended: 'end-of-input', failed: 2, dropped: 2, recordsOut: { out: 3 } });
    expect(outcome.stats.nodes.out).toMatchObject({ role: 'sink', recordsIn: 5, recordsOut: 3, failed: 2, dropped: 2 });
    expect(metrics.counter('sluice_records_dropped_total', { node: 'out', port: 'errors' })).toBe(2);
    // The manual clock stands still: the second failure falls inside the interval and is suppressed.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/out: record failed and nothing reads out.errors; dropped/);
    expect(warnings[0]!.obj).toMatchObject({ node: 'out', partition: 'p', offset: '1', error: 'cannot prepare {"n":2,"bad":true}' });
  });

  it('completes a batch whose records its sink could prepare none of, without writing', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json({ n: 1 }, { n: 2 }) }]);
    const sink = new RecordingSink();
    sink.unpreparable = () => true;
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'out', impl: sink, from: ['in'] },
    ]);
    const outcome = await new Runtime(graph, options()).run();
    expect(sink.writes).toEqual([]);
    expect(source.completed).toEqual([0]);
    expect(outcome).toMatchObject({ failed: 2, recordsOut: { out: 0 } });
  });

  it('routes records a step fails to <step>.errors, with the reason', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json({ n: 1 }, 'a string', null) }]);
    const ok = new RecordingSink();
    const errors: StreamRecord[] = [];
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 'enrich', impl: setStep.create({ set: { m: 'n + 1' } }, ctx('enrich')), from: ['in'] },
      { sink: 'ok', impl: ok, from: ['enrich'] },
      {
        step: 'seen',
        impl: new ScriptedStep({
          process: (records, out) => {
            errors.push(...records);
            out.emit(records);
          },
        }),
        from: ['enrich.errors'],
      },
      { sink: 'bad', impl: new RecordingSink(), from: ['seen'] },
    ]);
    await new Runtime(graph, options()).run();
    expect(ok.values).toEqual([{ n: 1, m: 2 }]);
    expect(errors.map((r) => r.value)).toEqual(['a string', null]);
    expect(errors[0]!.meta.error).toMatchObject({ node: 'enrich', code: 'E_SET_NOT_OBJECT' });
    expect(source.completed).toEqual([0]);
  });

  it('drops and counts records emitted on a port nobody reads, releasing them', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json({ late: true }, { late: false }) }]);
    const sink = new RecordingSink();
    const metrics = new Metrics();
    const graph = graphOf([
      { source: 'in', impl: source },
      {
        step: 'w',
        impl: new ScriptedStep({
          ports: ['late'],
          process: (records, out) => {
            for (const r of records) out.emit([r], (r.value as { late: boolean }).late ? 'late' : 'out');
          },
        }),
        from: ['in'],
      },
      { sink: 'out', impl: sink, from: ['w'] },
    ]);
    const outcome = await new Runtime(graph, options({ metrics })).run();
    expect(sink.values).toEqual([{ late: false }]);
    expect(source.completed).toEqual([0]);
    expect(outcome.dropped).toBe(1);
    expect(metrics.counter('sluice_records_dropped_total', { node: 'w', port: 'late' })).toBe(1);
  });

  it('merges several emits on one port without touching the arrays it was given', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json(1, 2, 3) }]);
    const sink = new RecordingSink();
    let input: StreamRecord[] = [];
    const graph = graphOf([
      { source: 'in', impl: source },
      {
        step: 'twice',
        impl: new ScriptedStep({
          process: (records, out) => {
            input = records;
            out.emit(records);
            // Emitting a record a second time takes one more reference on its Ack.
            const again = records.slice(0, 2);
            for (const r of again) r.ack.retain();
            out.emit(again.slice(0, 1));
            out.emit(again.slice(1, 2));
          },
        }),
        from: ['in'],
      },
      { sink: 'raw', impl: new RecordingSink(), from: ['in'] },
      { sink: 'out', impl: sink, from: ['twice'] },
    ]);
    const outcome = await new Runtime(graph, options()).run();
    expect(input).toHaveLength(3);
    expect(sink.values).toEqual([1, 2, 3, 1, 2]);
    expect(outcome.recordsOut).toEqual({ raw: 3, out: 5 });
  });
});

describe("Runtime: a sink's errors port", () => {
  const bad = (r: { value: unknown }) => (r.value as { bad?: boolean }).bad === true;

  it('sends records the sink refused or could not prepare to the sinks reading <sink>.errors, with the reason; their batch completes only once those wrote them', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json({ n: 1 }, { n: 2, bad: true }, { n: 3, unpreparable: true }) }]);
    const db = new RecordingSink();
    db.refusing = bad;
    db.unpreparable = (r) => (r.value as { unpreparable?: boolean }).unpreparable === true;
    const dlq = new RecordingSink();
    dlq.hold();
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'db', impl: db, from: ['in'] },
      { sink: 'dlq', impl: dlq, from: ['db.errors'] },
    ]);
    const runtime = new Runtime(graph, options());
    const running = runtime.run();
    await vi.waitUntil(() => dlq.heldWrites > 0);
    expect(db.values).toEqual([{ n: 1 }]);
    expect(source.completed).toEqual([]); // two of its records wait for the dead-letter sink
    dlq.releaseHeld();
    const outcome = await running;
    expect(source.completed).toEqual([0]);
    expect(dlq.writes.flat().map((m) => m.value)).toEqual([{ n: 2, bad: true }, { n: 3, unpreparable: true }]);
    const reasons = dlq.writes.flat().map((m) => m.headers);
    expect(reasons).toEqual([
      { 'sluice-error-node': 'db', 'sluice-error-message': 'refused {"n":2,"bad":true}' },
      { 'sluice-error-node': 'db', 'sluice-error-message': 'cannot prepare {"n":3,"unpreparable":true}' },
    ]);
    expect(outcome).toMatchObject({ failed: 2, dropped: 0, recordsOut: { db: 1, dlq: 2 } });
  });

  it('never acknowledges a refused record whose dead-letter sink could not write it: the run fails', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json({ n: 1 }, { n: 2, bad: true }) }]);
    const db = new RecordingSink();
    db.refusing = bad;
    const dlq = new RecordingSink();
    dlq.failNext = new Error('dead-letter topic unreachable');
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'db', impl: db, from: ['in'] },
      { sink: 'dlq', impl: dlq, from: ['db.errors'] },
    ]);
    await expect(new Runtime(graph, options()).run()).rejects.toMatchObject({ code: 'E_SINK_WRITE', where: 'sinks.dlq' });
    expect(db.values).toEqual([{ n: 1 }]);
    expect(source.completed).toEqual([]);
  });

  it('at the end, drains sinks in graph order so the last refusals are still written', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json({ n: 1, bad: true }) }]);
    const db = new RecordingSink();
    db.refusing = bad;
    db.hold(); // the refusal arrives only while the run is already draining
    const dlq = new RecordingSink();
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'db', impl: db, from: ['in'] },
      { sink: 'dlq', impl: dlq, from: ['db.errors'] },
    ]);
    const running = new Runtime(graph, options()).run();
    await vi.waitUntil(() => db.heldWrites > 0);
    db.releaseHeld();
    const outcome = await running;
    expect(dlq.values).toEqual([{ n: 1, bad: true }]);
    expect(source.completed).toEqual([0]);
    expect(outcome.recordsOut).toEqual({ db: 0, dlq: 1 });
  });

  it('refuses a step reading a sink: only sinks read <sink>.errors', () => {
    expect(
      () =>
        new Runtime(
          graphOf([
            { source: 'in', impl: new ScriptedSource('in', []) },
            { sink: 'db', impl: new RecordingSink(), from: ['in'] },
            { step: 'after', impl: new ScriptedStep(), from: ['db.errors'] },
          ]),
          options(),
        ),
    ).toThrow(/`after` reads `db.errors`: only a sink can read a sink's port/);
  });
});

describe('Runtime: ending', () => {
  it('at the end of bounded input calls onEnd in topological order, writes its output, then closes', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json(1, 2) }]);
    const order: string[] = [];
    const held: StreamRecord[] = [];
    const window = new ScriptedStep({
      process: (records) => {
        held.push(...records);
      },
      onEnd: (out) => {
        order.push('window.end');
        out.emit(held.splice(0));
      },
    });
    const after = new ScriptedStep({
      onEnd: () => {
        order.push('after.end');
      },
    });
    const sink = new RecordingSink();
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 'window', impl: window, from: ['in'] },
      { step: 'after', impl: after, from: ['window'] },
      { sink: 'out', impl: sink, from: ['after'] },
    ]);
    const outcome = await new Runtime(graph, options()).run();
    expect(order).toEqual(['window.end', 'after.end']);
    // The window's output reached `after` before `after` itself ended.
    expect(after.calls).toEqual(['process:window:2', 'end']);
    expect(sink.values).toEqual([1, 2]);
    expect(source.completed).toEqual([0]);
    expect(outcome.ended).toBe('end-of-input');
  });

  it('on stop() drains what is in flight without calling onEnd, leaving held records unacknowledged', async () => {
    const source = new ScriptedSource(
      'in',
      [
        { partition: 'p', values: json({ hold: false }) },
        { partition: 'p', values: json({ hold: true }) },
        { partition: 'p', values: json({ hold: false }) },
      ],
      false,
    );
    const held: StreamRecord[] = [];
    const window = new ScriptedStep({
      process: (records, out) => {
        for (const r of records) {
          if ((r.value as { hold: boolean }).hold) held.push(r);
          else out.emit([r]);
        }
      },
    });
    const sink = new RecordingSink();
    sink.hold();
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 'window', impl: window, from: ['in'] },
      { sink: 'out', impl: sink, from: ['window'] },
    ]);
    const runtime = new Runtime(graph, options());
    const running = runtime.run();
    for (let i = 0; i < 5; i++) await settle();
    const stopped = runtime.stop('SIGTERM');
    for (let i = 0; i < 5; i++) await settle();
    expect(sink.closed).toBe(false); // still draining: the write is held
    sink.releaseHeld();
    await stopped;
    const outcome = await running;
    expect(outcome).toMatchObject({ ended: 'stopped', stopReason: 'SIGTERM' });
    expect(window.calls).not.toContain('end');
    expect(sink.values).toEqual([{ hold: false }, { hold: false }]);
    // Batch 1's record is held by the "window": its offset must not be committed.
    expect(source.completed.sort()).toEqual([0, 2]);
    expect(sink.closed && source.closed).toBe(true);
  });

  it('does not call onEnd when an unbounded source ends by itself', async () => {
    const step = new ScriptedStep();
    const graph = graphOf([
      { source: 'in', impl: new ScriptedSource('in', [{ partition: 'p', values: json(1) }], true) },
      { source: 'live', impl: unboundedEmpty() },
      { step: 's', impl: step, from: ['in', 'live'] },
      { sink: 'out', impl: new RecordingSink(), from: ['s'] },
    ]);
    const outcome = await new Runtime(graph, options()).run();
    expect(outcome.ended).toBe('stopped');
    expect(step.calls).not.toContain('end');
  });
});

function unboundedEmpty(): Source {
  return { bounded: false, run: async () => {}, stop: async () => {}, close: async () => {} };
}

describe('Runtime: partition events and ticks', () => {
  it('forwards partition events to every step in order, before the batches that follow them', async () => {
    const source = new ScriptedSource('in', [{ partition: 'in/0', values: json(1) }]);
    source.assignFirst = ['in/0', 'in/1'];
    const a = new ScriptedStep();
    const b = new ScriptedStep();
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 'a', impl: a, from: ['in'] },
      { step: 'b', impl: b, from: ['a'] },
      { sink: 'out', impl: new RecordingSink(), from: ['b'] },
    ]);
    await new Runtime(graph, options()).run();
    expect(a.calls.slice(0, 2)).toEqual(['assign:in/0,in/1', 'process:in/0:1']);
    expect(b.calls.slice(0, 2)).toEqual(['assign:in/0,in/1', 'process:a:1']);
  });

  it('a bounded source that ends while another runs revokes its partitions, so they stop holding the watermark', async () => {
    const step = new ScriptedStep();
    const file = new ScriptedSource('file', [{ partition: 'file/0', values: json(1, 2) }], true);
    const live = new ScriptedSource('live', [{ partition: 'live/0', values: json(3) }], false);
    live.assignFirst = ['live/0'];
    const graph = graphOf([
      { source: 'file', impl: file },
      { source: 'live', impl: live },
      { step: 's', impl: step, from: ['file', 'live'] },
      { sink: 'out', impl: new RecordingSink(), from: ['s'] },
    ]);
    const runtime = new Runtime(graph, options());
    const done = runtime.run();
    for (let i = 0; i < 20 && !step.calls.includes('revoke:file/0'); i++) await settle();
    expect(step.calls.indexOf('revoke:file/0')).toBeGreaterThan(step.calls.indexOf('process:file/0:2'));
    expect(step.calls).not.toContain('revoke:live/0');
    await runtime.stop('test');
    expect((await done).ended).toBe('stopped');
    expect(step.calls).not.toContain('end');
  });

  it('revoke events reach the steps too', async () => {
    const step = new ScriptedStep();
    const source: Source = {
      bounded: true,
      run: async (out: SourceOutput) => {
        out.assign(['x/0']);
        const ack = new Ack(() => {});
        const position = { source: 'x', partition: 'x/0', offset: '0' };
        await out.emit({ partition: 'x/0', messages: [{ key: null, value: '1', headers: {}, timestamp: 0, position }], ack });
        out.revoke(['x/0']);
      },
      stop: async () => {},
      close: async () => {},
    };
    const graph = graphOf([
      { source: 'x', impl: source },
      { step: 's', impl: step, from: ['x'] },
      { sink: 'out', impl: new RecordingSink(), from: ['s'] },
    ]);
    await new Runtime(graph, options()).run();
    expect(step.calls).toEqual(['assign:x/0', 'process:x/0:1', 'revoke:x/0', 'end']);
  });

  it('tick() calls onTick with the clock time and writes what the steps emit', async () => {
    const clock = new ManualClock(5_000);
    const source = new ScriptedSource('in', [{ partition: 'p', values: json(1) }], false);
    const held: StreamRecord[] = [];
    const step = new ScriptedStep({
      process: (records) => {
        held.push(...records);
      },
      onTick: (now: number, out: StepOutput) => {
        if (now >= 6_000) out.emit(held.splice(0));
      },
    });
    const sink = new RecordingSink();
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 's', impl: step, from: ['in'] },
      { sink: 'out', impl: sink, from: ['s'] },
    ]);
    const runtime = new Runtime(graph, options({ clock }));
    const running = runtime.run();
    await settle();
    await runtime.tick();
    expect(step.calls).toContain('tick:5000');
    expect(sink.values).toEqual([]);
    clock.advance(1_000);
    await runtime.tick();
    await runtime.stop();
    await running;
    expect(step.calls).toContain('tick:6000');
    expect(sink.values).toEqual([1]);
    expect(source.completed).toEqual([0]);
  });

  it('ticks on a timer every tickMs', async () => {
    const clock = new ManualClock(42);
    const step = new ScriptedStep();
    const source = new ScriptedSource('in', [], false);
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 's', impl: step, from: ['in'] },
      { sink: 'out', impl: new RecordingSink(), from: ['s'] },
    ]);
    const runtime = new Runtime(graph, options({ clock, tickMs: 5 }));
    const running = runtime.run();
    await new Promise((resolve) => setTimeout(resolve, 40));
    await runtime.stop();
    await running;
    expect(step.calls.filter((c) => c === 'tick:42').length).toBeGreaterThanOrEqual(2);
  });
});

describe('Runtime: graph checks and stats', () => {
  const sink = () => new RecordingSink();
  const src = () => new ScriptedSource('in', []);

  it('rejects inputs naming unknown nodes, later nodes or unknown ports', () => {
    expect(() => new Runtime(graphOf([{ source: 'in', impl: src() }, { sink: 'o', impl: sink(), from: ['nope'] }]), options())).toThrow(
      ConfigError,
    );
    expect(
      () =>
        new Runtime(
          graphOf([
            { source: 'in', impl: src() },
            { step: 'a', impl: new ScriptedStep(), from: ['b'] },
            { step: 'b', impl: new ScriptedStep(), from: ['in'] },
            { sink: 'o', impl: sink(), from: ['a'] },
          ]),
          options(),
        ),
    ).toThrow(/comes after it/);
    expect(() => new Runtime(graphOf([{ source: 'in', impl: src() }, { sink: 'o', impl: sink(), from: ['in.late'] }]), options())).toThrow(
      /has only the ports out, errors/,
    );
  });

  it('reports per-node figures and step stats while running', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: json(1, 2) }], false);
    const out = new RecordingSink();
    out.hold();
    const graph = graphOf([
      { source: 'in', impl: source },
      { step: 's', impl: new ScriptedStep(), from: ['in'] },
      { sink: 'out', impl: out, from: ['s'] },
    ]);
    const runtime = new Runtime(graph, options());
    const running = runtime.run();
    for (let i = 0; i < 5; i++) await settle();
    const stats = runtime.stats();
    expect(stats.state).toBe('running');
    expect(stats.recordsIn).toBe(2);
    expect(stats.nodes.s).toMatchObject({ role: 'step', recordsIn: 2, recordsOut: 2, step: { calls: 1 } });
    expect(stats.nodes.out).toMatchObject({ role: 'sink', recordsIn: 2, writing: 2, queued: 0, recordsOut: 0 });
    out.releaseHeld();
    await runtime.stop();
    await running;
    expect(runtime.stats().nodes.out).toMatchObject({ recordsOut: 2, batches: 1 });
  });
});

describe('Runtime: snapshot and restore', () => {
  /** Counts the records it has seen; its state is that count. */
  class CountingStep extends ScriptedStep {
    count = 0;
    constructor() {
      super({
        process: (records, out) => {
          this.count += records.length;
          out.emit(records);
        },
      });
    }
    snapshot(): StepState {
      return { header: { count: this.count }, entries: new Map() };
    }
    restore(state: StepState): void {
      this.count = (state.header as { count: number }).count;
    }
  }

  it('takes step states between batches and restores them into a new runtime', async () => {
    const counter = new CountingStep();
    const graph = graphOf([
      { source: 'in', impl: new ScriptedSource('in', [{ partition: 'p', values: json(1, 2) }, { partition: 'p', values: json(3) }], false) },
      { step: 'counter', impl: counter, from: ['in'] },
      { step: 'plain', impl: new ScriptedStep(), from: ['counter'] },
      { sink: 'out', impl: new RecordingSink(), from: ['plain'] },
    ]);
    const runtime = new Runtime(graph, options());
    const running = runtime.run();
    for (let i = 0; i < 5; i++) await settle();
    const states = await runtime.snapshot();
    expect(states).toEqual({ counter: { header: { count: 3 }, entries: new Map() } });
    await runtime.stop();
    await running;
    await expect(runtime.snapshot()).rejects.toThrow(/ended/);

    const again = new CountingStep();
    const next = new Runtime(
      graphOf([
        { source: 'in', impl: new ScriptedSource('in', [{ partition: 'p', values: json(4) }]) },
        { step: 'counter', impl: again, from: ['in'] },
        { sink: 'out', impl: new RecordingSink(), from: ['counter'] },
      ]),
      options(),
    );
    next.restore(states);
    await next.run();
    expect(again.count).toBe(4);
    expect(() => next.restore(states)).toThrow(/before run/);
  });

  it('refuses to restore a step that does not exist or keeps no state', () => {
    const runtime = new Runtime(
      graphOf([
        { source: 'in', impl: new ScriptedSource('in', []) },
        { step: 'plain', impl: new ScriptedStep(), from: ['in'] },
        { sink: 'out', impl: new RecordingSink(), from: ['plain'] },
      ]),
      options(),
    );
    const empty: StepState = { header: null, entries: new Map() };
    expect(() => runtime.restore({ plain: empty })).toThrow(ConfigError);
    expect(() => runtime.restore({ ghost: empty })).toThrow(/ghost/);
  });
});

describe('checkpoints while the job loop is busy', () => {
  afterEach(() => vi.useRealTimers());

  it('takes a checkpoint between jobs whenever one is due, without waiting for its timer', async () => {
    // The timer never fires here (fake setInterval, never advanced), as happens for real while a
    // backlog drains: a loop that always has work runs on microtasks, and timers wait. A step
    // moves the clock 400 ms per batch, so over 10 batches (4 s) a 1 s interval comes due 3 times.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = new ManualClock(0);
    const commits: number[] = [];
    const store: StateStore = {
      description: 'memory',
      open: async () => {},
      load: async () => undefined,
      commit: async (cp) => {
        commits.push(clock.now());
        return { written: cp.states.size, deleted: 0, bytes: 0 };
      },
      reset: async () => {},
      close: async () => {},
    };
    const coordinator = new CheckpointCoordinator({ store, intervalMs: 1000, applicationId: 'busy', identities: {} }, clock, silentLogger);
    const advancing: Step = {
      process(batch, out) {
        clock.advance(400);
        out.emit(batch.records);
      },
    };
    const batches = Array.from({ length: 10 }, (_, i) => ({ partition: 'p', values: json(i) }));
    const runtime = new Runtime(
      graphOf([
        { source: 'in', impl: new ScriptedSource('in', batches, false) },
        { step: 'advance', impl: advancing, from: ['in'] },
        { sink: 'out', impl: new RecordingSink(), from: ['advance'] },
      ]),
      { ...options(), clock, tickMs: 0, checkpoints: coordinator },
    );
    const done = runtime.run();
    await vi.waitFor(() => expect(runtime.stats().recordsIn).toBe(10));
    await runtime.stop();
    await done;
    // Due 1 s after the start, then 1 s after each one taken (taken at the first job end past
    // that), and the stop's last one.
    expect(commits.slice(0, 3)).toEqual([1200, 2400, 3600]);
    expect(commits.length).toBe(4);
  });
});

describe('a sink that gives up while a checkpoint waits for it', () => {
  it('fails the run, and the checkpoint does not commit: it would cover positions whose outputs were never written', async () => {
    const clock = new ManualClock(0);
    let commits = 0;
    const store: StateStore = {
      description: 'memory',
      open: async () => {},
      load: async () => undefined,
      commit: async () => {
        commits++;
        return { written: 0, deleted: 0, bytes: 0 };
      },
      reset: async () => {},
      close: async () => {},
    };
    const coordinator = new CheckpointCoordinator({ store, intervalMs: 1000, applicationId: 'gives-up', identities: {} }, clock, silentLogger);
    // The step moves the clock past the interval: a checkpoint is due right after the batch.
    const advancing: Step = {
      process(batch, out) {
        clock.advance(2000);
        out.emit(batch.records);
      },
    };
    const sink = new RecordingSink();
    sink.hold();
    const source = new ScriptedSource('in', [{ partition: 'p', values: json(1, 2) }], false);
    const runtime = new Runtime(
      graphOf([
        { source: 'in', impl: source },
        { step: 'advance', impl: advancing, from: ['in'] },
        { sink: 'out', impl: sink, from: ['advance'] },
      ]),
      { ...options(), clock, tickMs: 0, checkpoints: coordinator },
    );
    const done = runtime.run();
    // The checkpoint now waits for the held write; the write then fails (a broker gone for good).
    await vi.waitFor(() => expect(sink.heldWrites).toBe(1));
    sink.failNext = new SluiceError('E_TEST_WRITE', 'the broker is gone');
    sink.releaseHeld();
    await expect(done).rejects.toThrow(/the broker is gone/);
    expect(commits).toBe(0);
    expect(source.completed).toEqual([]);
  });
});

describe('partition events', () => {
  it('reach only the steps that read the source: a quiet partition of another source does not hold a window back', async () => {
    // `activity` sends two hours of events; `quiet` assigns a partition and never sends. The
    // window reads only `activity`: its first hour must close. Before, `quiet`'s assign reached
    // every step, and the window's watermark waited for that partition forever.
    const at = (h: number, m: number) => JSON.stringify({ t: `2025-01-06T${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:00Z` });
    const activity = new ScriptedSource('activity', [{ partition: 'activity/0', values: [at(8, 5), at(8, 40), at(9, 30), at(10, 30)] }], false);
    const quiet = new ScriptedSource('quiet', [], false);
    quiet.assignFirst = ['quiet/0'];
    const window = windowStep.create({ window: { tumbling: '1h', time: 't' }, aggregate: { n: '$count()' } }, { name: 'hourly', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'run' });
    const hourly = new RecordingSink();
    const others = new RecordingSink();
    const runtime = new Runtime(
      graphOf([
        // Sources start in this order: the quiet one's assignment reaches the job queue first.
        { source: 'quiet', impl: quiet },
        { source: 'activity', impl: activity },
        { step: 'hourly', impl: window, from: ['activity'] },
        { sink: 'summaries', impl: hourly, from: ['hourly'] },
        { sink: 'others', impl: others, from: ['quiet'] },
      ]),
      options(),
    );
    const done = runtime.run();
    await vi.waitFor(() => expect(hourly.writes.flat().map((m) => m.value)).toEqual([
      { window_start: '2025-01-06T08:00:00.000Z', window_end: '2025-01-06T09:00:00.000Z', n: 2 },
      { window_start: '2025-01-06T09:00:00.000Z', window_end: '2025-01-06T10:00:00.000Z', n: 1 },
    ]));
    await runtime.stop();
    await done;
  });
});

describe('a fenced stop', () => {
  /** A Logger keeping every line with its level. */
  function levelLogger(): { logger: Logger; lines: { level: string; msg: string | undefined }[] } {
    const lines: { level: string; msg: string | undefined }[] = [];
    const logger: Logger = {
      debug: (_o, msg) => lines.push({ level: 'debug', msg }),
      info: (_o, msg) => lines.push({ level: 'info', msg }),
      warn: (_o, msg) => lines.push({ level: 'warn', msg }),
      error: (_o, msg) => lines.push({ level: 'error', msg }),
      child: () => logger,
    };
    return { logger, lines };
  }

  it('is no error while stopping (a task handed over), and is one otherwise; the run fails either way', async () => {
    for (const stopping of [true, false]) {
      const { logger, lines } = levelLogger();
      const source = new ScriptedSource('in', [{ partition: 'p0', values: json({ n: 1 }) }], false);
      const sink = new RecordingSink();
      sink.hold();
      const rt = new Runtime(graphOf([{ source: 'in', impl: source }, { sink: 'out', impl: sink, from: ['in'] }]), options({ logger }));
      const run = rt.run();
      await vi.waitFor(() => expect(sink.heldWrites).toBe(1));
      sink.failNext = new FencedError('E_KAFKA_FENCED', 'another sluice instance took over', 'tx');
      const stopped = stopping ? rt.stop('partition revoked') : undefined;
      sink.releaseHeld();
      await expect(run).rejects.toThrow(/another sluice instance took over/);
      await stopped;
      const fenced = lines.filter((l) => l.msg === 'run failed' || l.msg?.startsWith('stopped: a newer owner'));
      expect(fenced.map((l) => l.level), `stopping: ${stopping}`).toEqual([stopping ? 'info' : 'error']);
    }
  });
});
