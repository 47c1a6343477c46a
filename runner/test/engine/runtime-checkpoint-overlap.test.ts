/**
 * A checkpoint completes while processing goes on: after its cut, the loop processes the next
 * batches and their sinks write them, while the sinks flush what came before the cut and the store
 * commits. Sinks whose writes join the commit (`writesInCheckpoint`) hold their later records until
 * then, and a run where such a sink reads another sink's errors pauses for the whole checkpoint.
 * The store's commit is gated here, so the test decides when it completes.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Ack } from '../../src/engine/ack.ts';
import type { Checkpoint, CommitFigures, StateStore } from '../../src/engine/checkpoint/checkpoint.ts';
import { CheckpointCoordinator } from '../../src/engine/checkpoint/coordinator.ts';
import { ManualClock } from '../../src/engine/clock.ts';
import type { Source, SourceOutput } from '../../src/engine/component.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { RecordingSink, graphOf, settle } from './fake-components.ts';

/** Keeps the last committed checkpoint; a commit waits while the gate is shut. */
class GatedStore implements StateStore {
  readonly description = 'gated memory';
  committed: Checkpoint[] = [];
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  shut(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  open(): Promise<void> {
    const open = this.openGate;
    this.gate = undefined;
    this.openGate = undefined;
    open?.();
    return Promise.resolve();
  }

  async load(): Promise<Checkpoint | undefined> {
    return undefined;
  }

  async commit(checkpoint: Checkpoint): Promise<CommitFigures> {
    if (this.gate) await this.gate;
    this.committed.push(checkpoint);
    return { written: 0, deleted: 0, bytes: 0 };
  }

  async reset(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Hands over the batches the test pushes, on one partition; unbounded until stopped. */
class PushSource implements Source {
  readonly bounded = false;
  /** Indexes of the batches whose Ack completed. */
  readonly completed: number[] = [];
  private out: SourceOutput | undefined;
  private started!: () => void;
  readonly ready = new Promise<void>((resolve) => (this.started = resolve));
  private wakeStop: (() => void) | undefined;
  private batches = 0;
  private offset = 0;

  async run(out: SourceOutput): Promise<void> {
    this.out = out;
    this.started();
    await new Promise<void>((resolve) => (this.wakeStop = resolve));
  }

  async push(values: number[]): Promise<void> {
    const index = this.batches++;
    const first = this.offset;
    this.offset += values.length;
    await this.out!.emit({
      partition: 'in/0',
      messages: values.map((v, i) => ({ key: null, value: JSON.stringify(v), headers: {}, timestamp: 0, position: { source: 'in', partition: 'in/0', offset: String(first + i) } })),
      ack: new Ack(() => this.completed.push(index)),
    });
  }

  async stop(): Promise<void> {
    this.wakeStop?.();
  }

  async close(): Promise<void> {}
}

/** A sink whose writes, it says, join the checkpoint's commit (a Kafka sink under exactly-once). */
class TransactionalSink extends RecordingSink {
  readonly writesInCheckpoint = true;
}

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (done()) return;
    await settle();
  }
  throw new Error(`timed out waiting for ${what}`);
}

function setup(txReads: string, checkpointPhase?: number) {
  const store = new GatedStore();
  const clock = new ManualClock(0);
  const coordinator = new CheckpointCoordinator({ store, intervalMs: 1000, applicationId: 'overlap', identities: {} }, clock, silentLogger);
  const source = new PushSource();
  const out = new RecordingSink();
  out.refusing = (m) => m.value === 99;
  const tx = new TransactionalSink();
  const graph = graphOf([
    { source: 'in', impl: source },
    { sink: 'out', impl: out, from: ['in'] },
    { sink: 'tx', impl: tx, from: [txReads] },
  ]);
  const runtime = new Runtime(graph, { logger: silentLogger, metrics: new Metrics(), clock, tickMs: 0, checkpoints: coordinator, ...(checkpointPhase !== undefined ? { checkpointPhase } : {}) });
  return { store, source, out, tx, runtime, clock };
}

/** A run that has processed its first batch, and whose sinks wrote `outs` and `txs` records of it. */
async function runningAfter(txReads: string, first: number[], outs: number, txs: number) {
  const parts = setup(txReads);
  const running = parts.runtime.run();
  await parts.source.ready;
  await parts.source.push(first);
  await until('the first batch written', () => parts.out.values.length === outs && parts.tx.values.length === txs);
  return { ...parts, running };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('a checkpoint that completes while processing goes on', () => {
  it('processes and writes the next batch before the commit, holds the transactional sink\'s part until it, and acknowledges only what the checkpoint covers', async () => {
    const { store, source, out, tx, runtime, running } = await runningAfter('in', [1, 2], 2, 2);

    store.shut();
    vi.advanceTimersByTime(1000); // the checkpoint job queues
    await runtime.snapshot(); // queued behind it: resolves once it was cut
    await source.push([3]);
    await until('the batch after the cut written by `out`', () => out.values.length === 3);
    for (let i = 0; i < 20; i++) await settle();
    expect(out.values).toEqual([1, 2, 3]);
    expect(tx.values).toEqual([1, 2]); // held until the commit
    expect(store.committed).toHaveLength(0);
    expect(source.completed).toEqual([]); // the cut's batch waits for its commit

    await store.open();
    await until('the commit', () => store.committed.length === 1 && tx.values.length === 3);
    expect(store.committed[0]!.positions).toEqual({ 'in/0': '1' }); // the cut, not the batch after it
    await until('the first batch acknowledged', () => source.completed.length === 1);
    expect(source.completed).toEqual([0]);

    await runtime.stop('test');
    await running;
    expect(store.committed.map((c) => c.positions['in/0'])).toEqual(['1', '2']);
    expect(source.completed).toEqual([0, 1]);
  });

  it('pauses processing for the whole checkpoint when a transactional sink reads another sink\'s errors', async () => {
    const { store, source, out, tx, runtime, running } = await runningAfter('out.errors', [1, 99], 1, 1); // 99 refused by `out` into tx

    store.shut();
    vi.advanceTimersByTime(1000);
    let cut = false;
    const snapshot = runtime.snapshot().then(() => (cut = true));
    await source.push([3]);
    for (let i = 0; i < 50; i++) await settle();
    expect(cut).toBe(false); // the loop waits for the commit
    expect(out.values).toEqual([1]);

    await store.open();
    await snapshot;
    await until('the batch after the checkpoint written', () => out.values.length === 2);
    expect(store.committed[0]!.positions).toEqual({ 'in/0': '1' });
    await runtime.stop('test');
    await running;
    expect(tx.values).toEqual([99]);
  });
});

describe('checkpoint phase', () => {
  it.each([
    [undefined, 1000],
    [0.5, 1500],
  ])('with phase %s, the first checkpoint is due %i ms after the start, the next an interval later', async (phase, due) => {
    const { store, source, runtime, clock } = setup('in', phase);
    const running = runtime.run();
    await source.ready;
    const batchAt = async (ms: number) => {
      clock.set(ms);
      await source.push([ms]);
      await runtime.snapshot();
      for (let i = 0; i < 10; i++) await settle();
    };
    await batchAt(due - 1);
    expect(store.committed).toHaveLength(0);
    await batchAt(due);
    await until('the first checkpoint', () => store.committed.length === 1);
    await batchAt(due + 999);
    expect(store.committed).toHaveLength(1);
    await batchAt(due + 1000);
    await until('the second checkpoint', () => store.committed.length === 2);
    await runtime.stop('test');
    await running;
  });
});
