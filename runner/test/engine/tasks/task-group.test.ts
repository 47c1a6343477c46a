import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import type { Checkpoint, CommitFigures, StateStore } from '../../../src/engine/checkpoint/checkpoint.ts';
import { CheckpointCoordinator } from '../../../src/engine/checkpoint/coordinator.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { RawBatch, Source, SourceOutput } from '../../../src/engine/component.ts';
import { FencedError } from '../../../src/engine/errors.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { Runtime } from '../../../src/engine/runtime.ts';
import { mergeStats, ScaledRun } from '../../../src/engine/tasks/scaled-run.ts';
import { TaskGroup, TaskLostError, type Task } from '../../../src/engine/tasks/task-group.ts';
import { TaskInput } from '../../../src/engine/tasks/task-input.ts';
import { RecordingSink, ScriptedStep, graphOf, settle } from '../fake-components.ts';

/** A stage input driven by hand: assign, revoke and emit as a consumer group would. */
class HandSource implements Source {
  readonly bounded = false;
  out: SourceOutput | undefined;
  stopped = false;
  closed = false;
  private finish: (() => void) | undefined;
  private offsets = new Map<string, number>();
  readonly completed: string[] = [];
  /** Batches handed over by deliver() whose emit has not resolved yet. */
  private readonly inFlight = new Set<Promise<void>>();

  run(out: SourceOutput): Promise<void> {
    this.out = out;
    return new Promise((resolve) => (this.finish = resolve));
  }
  async stop(): Promise<void> {
    this.stopped = true;
    this.finish?.();
  }
  /** As kafkajs' consumer.disconnect(): closing waits for the batch handlers still running. */
  async close(): Promise<void> {
    await Promise.all([...this.inFlight]);
    this.closed = true;
  }
  /** Emits as a consumer's batch handler does: close() waits for it. */
  deliver(batch: RawBatch): Promise<void> {
    const emitting = this.out!.emit(batch);
    this.inFlight.add(emitting);
    void emitting.finally(() => this.inFlight.delete(emitting));
    return emitting;
  }
  batch(partition: string, values: unknown[]): RawBatch {
    const first = this.offsets.get(partition) ?? 0;
    this.offsets.set(partition, first + values.length);
    const id = `${partition}@${first}`;
    return {
      partition,
      messages: values.map((v, i) => ({ key: null, value: JSON.stringify(v), headers: {}, timestamp: 0, position: { source: 'in', partition, offset: String(first + i) } })),
      ack: new Ack(() => this.completed.push(id)),
    };
  }
}

/** An input whose run does not end when stopped, as the kafka source's did when kafkajs refused to pause its restarting consumer. */
class UnstoppableSource extends HandSource {
  override async stop(): Promise<void> {
    this.stopped = true;
  }
}

interface Made {
  task: Task;
  sink: RecordingSink;
  step: ScriptedStep;
}

/** A sink that cannot open (its brokers are out of reach). */
class UnopenableSink extends RecordingSink {
  override async open(): Promise<void> {
    throw new Error('sink cannot open: brokers out of reach');
  }
}

/** A state store in memory that counts its commits. */
class CountingStore implements StateStore {
  readonly description = 'memory';
  commits = 0;
  async open(): Promise<void> {}
  async load(): Promise<Checkpoint | undefined> {
    return undefined;
  }
  async commit(): Promise<CommitFigures> {
    this.commits++;
    return { written: 0, deleted: 0, bytes: 0 };
  }
  async reset(): Promise<void> {}
  async close(): Promise<void> {}
}

interface Hooks {
  /** The task's first write fails as fenced. */
  failOn?: string;
  /** The task's first write fails as an outage (a plain error). */
  breakOn?: string;
  throwOn?: string;
  /** The task's sink cannot open: its run fails before it reads anything. */
  unopenable?: string;
  /** Each task takes checkpoints into its own store (kept here by partition); none fall due by themselves. */
  stores?: Map<string, CountingStore>;
}

function factory(made: Map<string, Made[]>, hooks: Hooks = {}) {
  return async (partition: string): Promise<Task> => {
    if (hooks.throwOn === partition) throw new Error(`cannot create ${partition}`);
    const input = new TaskInput(partition);
    const sink = hooks.unopenable === partition ? new UnopenableSink() : new RecordingSink();
    const step = new ScriptedStep();
    if (hooks.failOn === partition) {
      sink.failNext = new FencedError('E_FENCED', 'fenced by a newer owner', 'state');
    }
    if (hooks.breakOn === partition) sink.failNext = new Error(`broker out of reach for ${partition}`);
    const clock = new ManualClock(0);
    let checkpoints: CheckpointCoordinator | undefined;
    if (hooks.stores) {
      const store = new CountingStore();
      hooks.stores.set(partition, store);
      checkpoints = new CheckpointCoordinator({ store, intervalMs: 3_600_000, applicationId: 'app', identities: {} }, clock, silentLogger);
    }
    const runtime = new Runtime(graphOf([{ source: 'in', impl: input }, { step: 's', impl: step, from: ['in'] }, { sink: 'out', impl: sink, from: ['s'] }]), {
      logger: silentLogger,
      metrics: new Metrics(),
      clock,
      tickMs: 0,
      ...(checkpoints ? { checkpoints } : {}),
    });
    const task = { partition, input, runtime };
    made.set(partition, [...(made.get(partition) ?? []), { task, sink, step }]);
    return task;
  };
}

/** The promise's outcome, or a failure naming `what` when it does not settle within `ms` of real time. */
async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(what: string, probe: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (probe()) return;
    await settle();
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('TaskGroup: a stage input shared by one task per partition', () => {
  it('routes each partition to its own task, which is told only its own partition', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made), silentLogger);
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0', 'in/t/1']);
    await source.out!.emit(source.batch('in/t/0', [1, 2]));
    await source.out!.emit(source.batch('in/t/1', [3]));
    await until('both written', () => made.get('in/t/0')?.[0]?.sink.values.length === 2 && made.get('in/t/1')?.[0]?.sink.values.length === 1);
    expect(made.get('in/t/0')![0]!.sink.values).toEqual([1, 2]);
    expect(made.get('in/t/1')![0]!.sink.values).toEqual([3]);
    expect(made.get('in/t/0')![0]!.step.calls[0]).toBe('assign:in/t/0');
    expect(made.get('in/t/1')![0]!.step.calls[0]).toBe('assign:in/t/1');
    expect(group.tasks().map((t) => t.partition).sort()).toEqual(['in/t/0', 'in/t/1']);
    await group.stop();
    await running;
    expect(source.closed).toBe(true);
    expect(source.completed.sort()).toEqual(['in/t/0@0', 'in/t/1@0']);
  });

  it('a revoked task drains what it had and stops; batches for it afterwards are ignored, never acknowledged', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made), silentLogger);
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0', 'in/t/1']);
    await source.out!.emit(source.batch('in/t/0', [1]));
    source.out!.revoke(['in/t/0']);
    await until('task 0 stopped', () => made.get('in/t/0')![0]!.sink.closed);
    expect(made.get('in/t/0')![0]!.sink.values).toEqual([1]);
    await source.out!.emit(source.batch('in/t/0', [2]));
    await settle();
    expect(made.get('in/t/0')![0]!.sink.values).toEqual([1]);
    expect(source.completed).toEqual(['in/t/0@0']);
    // Assigned again (a later rebalance): a fresh task.
    source.out!.assign(['in/t/0']);
    await source.out!.emit(source.batch('in/t/0', [3]));
    await until('the new task wrote', () => made.get('in/t/0')!.length === 2 && made.get('in/t/0')![1]!.sink.values.length === 1);
    expect(made.get('in/t/1')!.length).toBe(1);
    await group.stop();
    await running;
  });

  it('a task fenced while its partition stays owned past the grace fails the group with a TaskLostError', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { failOn: 'in/t/1' }), silentLogger, { lostGraceMs: 20 });
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0', 'in/t/1']);
    await source.out!.emit(source.batch('in/t/1', [1]));
    const err = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TaskLostError);
    expect(source.stopped).toBe(true);
    expect(source.closed).toBe(true);
  });

  it('a task fenced before its revoke arrives waits for it: revoked within the grace, the group goes on', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { failOn: 'in/t/1' }), silentLogger, { lostGraceMs: 200 });
    const running = group.run();
    let settled = false;
    void running.finally(() => (settled = true));
    await settle();
    source.out!.assign(['in/t/0', 'in/t/1']);
    await source.out!.emit(source.batch('in/t/1', [1]));
    await until('task 1 ended', () => made.get('in/t/1')?.[0]?.sink.closed === true);
    // The rebalance's revoke comes after the new owner's fence.
    source.out!.revoke(['in/t/1']);
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    await source.out!.emit(source.batch('in/t/0', [2]));
    await until('task 0 wrote', () => made.get('in/t/0')![0]!.sink.values.length === 1);
    await group.stop();
    await expect(running).resolves.toBeUndefined();
  });

  it('a fenced task whose partition was revoked is a normal handover, not a failure', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { failOn: 'in/t/1' }), silentLogger);
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/1']);
    const sink = () => made.get('in/t/1')![0]!.sink;
    await until('task created', () => made.has('in/t/1'));
    sink().hold();
    await source.out!.emit(source.batch('in/t/1', [1]));
    source.out!.revoke(['in/t/1']);
    sink().releaseHeld();
    await until('task stopped', () => sink().closed);
    await group.stop();
    await expect(running).resolves.toBeUndefined();
  });

  it('a task that cannot be created fails the group', async () => {
    const source = new HandSource();
    const group = new TaskGroup('0', { name: 'in', source }, factory(new Map(), { throwOn: 'in/t/0' }), silentLogger);
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0']);
    await expect(running).rejects.toThrow(/cannot create in\/t\/0/);
  });
});

describe('TaskGroup: ending after a failure', () => {
  it('a batch waiting for a task that failed before it read anything is let go, so the shared input can close', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    // A long grace: the group must end because the batch was let go, not because it gave up.
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { unopenable: 'in/t/0' }), silentLogger, { abandonAfterMs: 60_000 });
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0']);
    // More batches than a task keeps while it restores: the last ones wait for it to be ready, which it never will be.
    const delivered = Promise.all([1, 2, 3, 4, 5, 6].map((v) => source.deliver(source.batch('in/t/0', [v]))));
    const ended = await within('the group', 2_000, running);
    expect(String(ended.error)).toMatch(/sink cannot open/);
    await within('the waiting batches', 100, delivered);
    expect(source.closed).toBe(true);
    expect(source.completed).toEqual([]);
  });

  it('after a task failed, the other tasks end without a last checkpoint and their batches stay unacknowledged', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const stores = new Map<string, CountingStore>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { breakOn: 'in/t/1', stores }), silentLogger);
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0', 'in/t/1']);
    await source.deliver(source.batch('in/t/0', [1]));
    await until('task 0 wrote', () => made.get('in/t/0')?.[0]?.sink.values.length === 1);
    await source.deliver(source.batch('in/t/1', [2]));
    const ended = await within('the group', 2_000, running);
    expect(String(ended.error)).toMatch(/broker out of reach for in\/t\/1/);
    // A graceful stop would have committed task 0's batch in a last checkpoint and acknowledged it.
    expect(stores.get('in/t/0')!.commits).toBe(0);
    expect(stores.get('in/t/1')!.commits).toBe(0);
    expect(source.completed).toEqual([]);
    expect(source.closed).toBe(true);
  });

  it('a revoked task still drains and takes its last checkpoint, which acknowledges its batches', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const stores = new Map<string, CountingStore>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { stores }), silentLogger);
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0']);
    await source.deliver(source.batch('in/t/0', [1]));
    source.out!.revoke(['in/t/0']);
    await until('task 0 stopped', () => made.get('in/t/0')![0]!.sink.closed);
    expect(stores.get('in/t/0')!.commits).toBe(1);
    expect(source.completed).toEqual(['in/t/0@0']);
    await group.stop();
    await expect(running).resolves.toBeUndefined();
  });

  it('after a failure, a task that does not end (a write that never returns) is given up on after abandonAfterMs', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { breakOn: 'in/t/1' }), silentLogger, { abandonAfterMs: 100 });
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0', 'in/t/1']);
    await until('tasks created', () => made.has('in/t/0') && made.has('in/t/1'));
    const stuck = made.get('in/t/0')![0]!.sink;
    stuck.hold();
    await source.deliver(source.batch('in/t/0', [1]));
    await until('task 0 writing', () => stuck.heldWrites === 1);
    await source.deliver(source.batch('in/t/1', [2]));
    const t0 = performance.now();
    const ended = await within('the group', 2_000, running);
    expect(String(ended.error)).toMatch(/broker out of reach for in\/t\/1/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    // Task 0 is still stuck in its write: nothing of it was acknowledged.
    expect(stuck.closed).toBe(false);
    expect(source.completed).toEqual([]);
    expect(source.closed).toBe(true);
    stuck.releaseHeld();
  });

  it('a failure while revoked tasks still stop gracefully cuts their stop short too', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const stores = new Map<string, CountingStore>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { stores }), silentLogger, { abandonAfterMs: 100 });
    const running = group.run();
    await settle();
    source.out!.assign(['in/t/0']);
    await until('task created', () => made.has('in/t/0'));
    const stuck = made.get('in/t/0')![0]!.sink;
    stuck.hold();
    await source.deliver(source.batch('in/t/0', [1]));
    await until('task 0 writing', () => stuck.heldWrites === 1);
    // Revoked: it drains (forever, its write hangs) before its last checkpoint.
    source.out!.revoke(['in/t/0']);
    await settle();
    await group.abort('another stage failed');
    const ended = await within('the group', 2_000, running);
    expect(ended.error).toBeUndefined();
    stuck.releaseHeld();
    await until('task 0 ended', () => made.get('in/t/0')![0]!.task.runtime.stats().state === 'failed');
    // Its write completed after the abort: the last checkpoint was skipped all the same.
    expect(stores.get('in/t/0')!.commits).toBe(0);
    expect(source.completed).toEqual([]);
  });
});

describe('ScaledRun', () => {
  it('adds up its tasks: counters sum per node, the lowest watermark string wins, checkpoints combine', () => {
    const base = { state: 'running' as const, elapsedMs: 0, queuedBatches: 1 };
    const merged = mergeStats([
      { ...base, recordsIn: 3, recordsOut: 2, nodes: { w: { role: 'step', recordsIn: 3, recordsOut: 2, failed: 0, discarded: 0, dropped: 0, nanos: 5, step: { watermark: '2025-01-01T10:00:00Z', open_windows: 2 } } }, checkpoint: { epoch: 4, entries: 2, bytes: 10, checkpoints: 4, skipped: 0 } },
      { ...base, recordsIn: 5, recordsOut: 1, nodes: { w: { role: 'step', recordsIn: 5, recordsOut: 1, failed: 1, discarded: 0, dropped: 0, nanos: 7, step: { watermark: '2025-01-01T09:00:00Z', open_windows: 3 } } }, checkpoint: { epoch: 7, entries: 1, bytes: 5, checkpoints: 7, skipped: 2 } },
    ]);
    expect(merged.recordsIn).toBe(8);
    expect(merged.queuedBatches).toBe(2);
    expect(merged.nodes.w).toMatchObject({ recordsIn: 8, recordsOut: 3, failed: 1, nanos: 12, step: { watermark: '2025-01-01T09:00:00Z', open_windows: 5 } });
    expect(merged.checkpoint).toMatchObject({ epoch: 7, entries: 3, bytes: 15, checkpoints: 11, skipped: 2 });
  });

  it('one stage failing stops the others and the run rejects with its error', async () => {
    const a = new HandSource();
    const b = new HandSource();
    const run = new ScaledRun('p', [
      new TaskGroup('0', { name: 'a', source: a }, factory(new Map(), { throwOn: 'a/t/0' }), silentLogger),
      new TaskGroup('1', { name: 'b', source: b }, factory(new Map()), silentLogger),
    ]);
    const running = run.run();
    await settle();
    a.out!.assign(['a/t/0']);
    await expect(running).rejects.toThrow(/cannot create a\/t\/0/);
    expect(b.stopped).toBe(true);
    expect(run.health().state).toBe('failed');
  });

  it('the other stages are told as soon as a stage fails, not once its tasks ended', async () => {
    const a = new HandSource();
    const b = new HandSource();
    const madeA = new Map<string, Made[]>();
    const run = new ScaledRun('p', [
      new TaskGroup('0', { name: 'a', source: a }, factory(madeA, { breakOn: 'a/t/1' }), silentLogger, { abandonAfterMs: 60_000 }),
      new TaskGroup('1', { name: 'b', source: b }, factory(new Map()), silentLogger),
    ]);
    const running = run.run();
    await settle();
    a.out!.assign(['a/t/0', 'a/t/1']);
    b.out!.assign(['b/t/0']);
    await until('tasks created', () => madeA.has('a/t/0') && madeA.has('a/t/1'));
    const stuck = madeA.get('a/t/0')![0]!.sink;
    stuck.hold();
    await a.deliver(a.batch('a/t/0', [1]));
    await until('a/t/0 writing', () => stuck.heldWrites === 1);
    await a.deliver(a.batch('a/t/1', [2]));
    // Stage 0 still waits for a/t/0 (for up to a minute): stage 1 stops meanwhile all the same.
    await until('stage 1 stopped', () => b.stopped);
    stuck.releaseHeld();
    const ended = await within('the run', 2_000, running);
    expect(String(ended.error)).toMatch(/broker out of reach for a\/t\/1/);
    expect(b.closed).toBe(true);
  });

  it('one stage failing ends the others without last checkpoints, in bounded time even when a task there hangs', async () => {
    const a = new HandSource();
    const b = new HandSource();
    const made = new Map<string, Made[]>();
    const stores = new Map<string, CountingStore>();
    const run = new ScaledRun('p', [
      new TaskGroup('0', { name: 'a', source: a }, factory(new Map(), { throwOn: 'a/t/0' }), silentLogger, { abandonAfterMs: 100 }),
      new TaskGroup('1', { name: 'b', source: b }, factory(made, { stores }), silentLogger, { abandonAfterMs: 100 }),
    ]);
    const running = run.run();
    await settle();
    b.out!.assign(['b/t/0', 'b/t/1']);
    await until('tasks created', () => made.has('b/t/0') && made.has('b/t/1'));
    const stuck = made.get('b/t/0')![0]!.sink;
    stuck.hold();
    await b.deliver(b.batch('b/t/0', [1]));
    await b.deliver(b.batch('b/t/1', [2]));
    await until('b/t/1 wrote', () => made.get('b/t/1')![0]!.sink.values.length === 1);
    a.out!.assign(['a/t/0']);
    const ended = await within('the run', 2_000, running);
    expect(String(ended.error)).toMatch(/cannot create a\/t\/0/);
    expect(b.stopped).toBe(true);
    expect(b.closed).toBe(true);
    // b/t/1 was idle and could have taken a last checkpoint: a failed run skips it.
    expect(stores.get('b/t/1')!.commits).toBe(0);
    expect(b.completed).toEqual([]);
    stuck.releaseHeld();
  });

  it('one stage failing ends the others in bounded time even when an input does not end when stopped', async () => {
    const a = new HandSource();
    const b = new UnstoppableSource();
    const made = new Map<string, Made[]>();
    const run = new ScaledRun('p', [
      new TaskGroup('0', { name: 'a', source: a }, factory(new Map(), { throwOn: 'a/t/0' }), silentLogger, { abandonAfterMs: 100 }),
      new TaskGroup('1', { name: 'b', source: b }, factory(made), silentLogger, { abandonAfterMs: 100 }),
    ]);
    const running = run.run();
    await settle();
    b.out!.assign(['b/t/0']);
    await until('task created', () => made.has('b/t/0'));
    a.out!.assign(['a/t/0']);
    const ended = await within('the run', 2_000, running);
    expect(String(ended.error)).toMatch(/cannot create a\/t\/0/);
    expect(b.stopped).toBe(true);
    // Its tasks ended and the input was closed all the same, so a restart starts afresh.
    expect(b.closed).toBe(true);
  });
});
