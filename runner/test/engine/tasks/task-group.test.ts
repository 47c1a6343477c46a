import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
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

  run(out: SourceOutput): Promise<void> {
    this.out = out;
    return new Promise((resolve) => (this.finish = resolve));
  }
  async stop(): Promise<void> {
    this.stopped = true;
    this.finish?.();
  }
  async close(): Promise<void> {
    this.closed = true;
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

interface Made {
  task: Task;
  sink: RecordingSink;
  step: ScriptedStep;
}

function factory(made: Map<string, Made[]>, hooks: { failOn?: string; throwOn?: string } = {}) {
  return async (partition: string): Promise<Task> => {
    if (hooks.throwOn === partition) throw new Error(`cannot create ${partition}`);
    const input = new TaskInput(partition);
    const sink = new RecordingSink();
    const step = new ScriptedStep();
    if (hooks.failOn === partition) {
      sink.failNext = new FencedError('E_FENCED', 'fenced by a newer owner', 'state');
    }
    const runtime = new Runtime(graphOf([{ source: 'in', impl: input }, { step: 's', impl: step, from: ['in'] }, { sink: 'out', impl: sink, from: ['s'] }]), {
      logger: silentLogger,
      metrics: new Metrics(),
      clock: new ManualClock(0),
      tickMs: 0,
    });
    const task = { partition, input, runtime };
    made.set(partition, [...(made.get(partition) ?? []), { task, sink, step }]);
    return task;
  };
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

  it('a task fenced while its partition is still owned fails the group with a TaskLostError', async () => {
    const source = new HandSource();
    const made = new Map<string, Made[]>();
    const group = new TaskGroup('0', { name: 'in', source }, factory(made, { failOn: 'in/t/1' }), silentLogger);
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
});
