import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import {
  checkpointFromJson,
  checkpointToJson,
  StateError,
  type Checkpoint,
  type CommitFigures,
  type StateStore,
  type StoredIdentity,
} from '../../../src/engine/checkpoint/checkpoint.ts';
import { CheckpointCoordinator, HOOK_REFRESH_MS, type CheckpointOptions } from '../../../src/engine/checkpoint/coordinator.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { JsonValue, OutboundMessage, Sink, Step, StepState } from '../../../src/engine/component.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import type { RawMessage } from '../../../src/engine/record.ts';

/**
 * A StateStore in memory. It keeps what was committed as JSON text (as the real stores do), so a
 * test cannot pass because a committed object was later mutated in place. `gate()` makes the next
 * commits wait for `open()` of the gate; `failNext` makes the next commit reject.
 */
class MemoryStore implements StateStore {
  readonly description = 'memory';
  stored: string | undefined;
  commits = 0;
  opened = 0;
  failNext: Error | undefined;
  private gates: { open: () => void; promise: Promise<void> }[] = [];

  constructor(initial?: Checkpoint) {
    if (initial) this.stored = JSON.stringify(checkpointToJson(initial));
  }

  async open(): Promise<void> {
    this.opened++;
  }

  async load(): Promise<Checkpoint | undefined> {
    return this.stored === undefined ? undefined : checkpointFromJson(JSON.parse(this.stored), this.description);
  }

  /** The next commit waits until the returned function is called. */
  gate(): () => void {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gates.push({ open, promise });
    return open;
  }

  async commit(checkpoint: Checkpoint): Promise<CommitFigures> {
    const gate = this.gates.shift();
    if (gate) await gate.promise;
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    this.stored = JSON.stringify(checkpointToJson(checkpoint));
    this.commits++;
    return { written: 0, deleted: 0, bytes: this.stored.length };
  }

  async reset(): Promise<void> {
    this.stored = undefined;
  }

  async close(): Promise<void> {}

  last(): Checkpoint {
    if (this.stored === undefined) throw new Error('nothing committed');
    return checkpointFromJson(JSON.parse(this.stored), this.description);
  }
}

/** A stateful step whose state is a counter; records what it was restored with. */
class CounterStep implements Step {
  count = 0;
  restoredWith: StepState | undefined;
  process(): void {}
  snapshot(): StepState {
    return { header: { count: this.count }, entries: new Map([['total', this.count]]) };
  }
  restore(state: StepState): void {
    this.restoredWith = state;
    this.count = (state.header as { count: number }).count;
  }
}

/** A sink that writes nothing but counts what a flush made durable, and keeps that in checkpoints. */
class CountingSink implements Sink {
  written = 0;
  queued = 0;
  restored: JsonValue | undefined;
  async open(): Promise<void> {}
  prepare(): OutboundMessage[] {
    return [];
  }
  async write(): Promise<void> {}
  async close(): Promise<void> {}
  flush(): Promise<void> {
    this.written += this.queued;
    this.queued = 0;
    return Promise.resolve();
  }
  checkpoint(): JsonValue {
    return { written: this.written };
  }
  restore(state: JsonValue): void {
    this.restored = state;
  }
}

const identity = (fingerprint: string, parts: JsonValue = { size: '1h' }): StoredIdentity => ({ kind: 'window', fingerprint, parts });

function coordinator(store: StateStore, options: Partial<CheckpointOptions> = {}): CheckpointCoordinator {
  return new CheckpointCoordinator(
    { store, intervalMs: 1000, applicationId: 'app', identities: { hourly: identity('f1') }, ...options },
    new ManualClock(5_000),
    silentLogger,
  );
}

function stored(overrides: Partial<Checkpoint> = {}): Checkpoint {
  return {
    applicationId: 'app',
    epoch: 4,
    positions: {},
    states: new Map([['hourly', { header: { count: 41 }, entries: new Map<string, JsonValue>([['total', 41]]) }]]),
    identities: { hourly: identity('f1') },
    sinks: {},
    takenAt: 1_000,
    ...overrides,
  };
}

function messages(partition: string, offsets: string[]): RawMessage[] {
  return offsets.map((offset) => ({ key: null, value: offset, headers: {}, timestamp: 0, position: { source: 's', partition, offset } }));
}

const offsetsOf = (ms: RawMessage[]) => ms.map((m) => m.position.offset);

/** A batch's Ack as the runtime prepares it: one reference per record, then tracked, then sealed. */
function trackedBatch(c: CheckpointCoordinator, partition: string, last: string, records = 2): { ack: Ack; completed: () => boolean; recordsWritten: () => void } {
  let done = false;
  const ack = new Ack(() => (done = true));
  ack.retain(records);
  c.track(partition, last, ack);
  ack.seal();
  return { ack, completed: () => done, recordsWritten: () => ack.release(records) };
}

describe('CheckpointCoordinator.admit', () => {
  it('drops messages at or below the restored position per partition, passes later ones, and counts the skipped', async () => {
    const store = new MemoryStore(stored({ positions: { 'p/0': '10', 'p/1': '5', 'cdc/slot': '100/40' } }));
    const c = coordinator(store);
    await c.restore([], []);

    // A batch that straddles the restored position: only what comes after it passes.
    expect(offsetsOf(c.admit('p/0', messages('p/0', ['8', '9', '10', '11', '12'])))).toEqual(['11', '12']);
    // Entirely at or below: dropped whole.
    expect(c.admit('p/1', messages('p/1', ['3', '4', '5']))).toEqual([]);
    expect(offsetsOf(c.admit('p/1', messages('p/1', ['6', '7'])))).toEqual(['6', '7']);
    // LSN tuples compare component-wise: 100/5 < 100/40 < 100/41 < 101/0.
    expect(offsetsOf(c.admit('cdc/slot', messages('cdc/slot', ['99/900', '100/5', '100/40', '100/41', '101/0'])))).toEqual(['100/41', '101/0']);
    // A partition the checkpoint does not know passes whole.
    expect(offsetsOf(c.admit('p/9', messages('p/9', ['0', '1'])))).toEqual(['0', '1']);
    expect(c.stats().skipped).toBe(3 + 3 + 3);

    // Later positions pass: positions only grow.
    expect(offsetsOf(c.admit('p/0', messages('p/0', ['13'])))).toEqual(['13']);
    expect(c.stats().skipped).toBe(9);
  });

  it('drops what a source delivers again in the same run (a restarted consumer re-reads from its committed offset): its effect is already in the open epoch', async () => {
    const c = coordinator(new MemoryStore());
    await c.restore([], []);
    expect(offsetsOf(c.admit('p/0', messages('p/0', ['0', '1', '2'])))).toEqual(['0', '1', '2']);
    trackedBatch(c, 'p/0', '2');
    expect(offsetsOf(c.admit('p/0', messages('p/0', ['3', '4'])))).toEqual(['3', '4']);
    trackedBatch(c, 'p/0', '4');
    // The consumer restarts from the last committed offset, 1: 1 to 4 were processed already.
    expect(offsetsOf(c.admit('p/0', messages('p/0', ['1', '2', '3', '4', '5'])))).toEqual(['5']);
    expect(c.stats().skipped).toBe(4);
  });

  it('drops nothing without a restored checkpoint', async () => {
    const c = coordinator(new MemoryStore());
    expect(await c.restore([], [])).toBeUndefined();
    expect(offsetsOf(c.admit('p/0', messages('p/0', ['0', '1'])))).toEqual(['0', '1']);
    expect(c.stats().skipped).toBe(0);
  });
});

describe('CheckpointCoordinator.take', () => {
  it('releases the held Acks only after the store\'s commit resolved', async () => {
    const store = new MemoryStore();
    const c = coordinator(store);
    await c.restore([], []);
    const batch = trackedBatch(c, 'p/0', '1');
    batch.recordsWritten(); // every record reached the sinks: only the checkpoint's hold remains
    expect(batch.completed()).toBe(false);
    expect(batch.ack.outstanding).toBe(1);

    const openCommit = store.gate();
    const step = new CounterStep();
    const taking = c.take([{ name: 'hourly', step }], [], () => Promise.resolve());
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(store.commits).toBe(0);
    expect(batch.completed()).toBe(false);

    openCommit();
    expect(await taking).toBe(true);
    expect(store.commits).toBe(1);
    expect(batch.completed()).toBe(true);
    expect(store.last().positions).toEqual({ 'p/0': '1' });
    expect(c.stats()).toMatchObject({ epoch: 1, checkpoints: 1 });
  });

  it('a batch tracked while a commit is in flight waits for the next checkpoint', async () => {
    const store = new MemoryStore();
    const c = coordinator(store);
    await c.restore([], []);
    const first = trackedBatch(c, 'p/0', '1', 0);
    const openCommit = store.gate();
    const taking = c.take([], [], () => Promise.resolve());
    const second = trackedBatch(c, 'p/0', '2', 0);
    openCommit();
    await taking;
    expect(first.completed()).toBe(true);
    expect(second.completed()).toBe(false);
    expect(store.last().positions).toEqual({ 'p/0': '1' });
    await c.take([], [], () => Promise.resolve());
    expect(second.completed()).toBe(true);
    expect(store.last()).toMatchObject({ epoch: 2, positions: { 'p/0': '2' } });
  });

  it('cut, then complete: state changed between them belongs to the next checkpoint, and no second cut comes before the first completed', async () => {
    const store = new MemoryStore();
    const c = coordinator(store);
    await c.restore([], []);
    const step = new CounterStep();
    step.count = 3;
    trackedBatch(c, 'p/0', '1', 0);
    const pending = c.cut([{ name: 'hourly', step }], []);
    expect(pending).toBeDefined();
    step.count = 5; // processing goes on while the commit is in flight
    expect(() => c.cut([{ name: 'hourly', step }], [], true)).toThrow(/before the previous one completed/);
    await c.complete(pending!, [], () => Promise.resolve());
    expect(store.last().states.get('hourly')!.header).toEqual({ count: 3 });
    expect(await c.take([{ name: 'hourly', step }], [], () => Promise.resolve(), true)).toBe(true);
    expect(store.last()).toMatchObject({ epoch: 2 });
    expect(store.last().states.get('hourly')!.header).toEqual({ count: 5 });
  });

  it('reads sink checkpoints after flushing the sinks, and snapshots steps at the cut', async () => {
    const store = new MemoryStore();
    const c = coordinator(store);
    await c.restore([], []);
    const sink = new CountingSink();
    const step = new CounterStep();
    step.count = 3;
    sink.queued = 7;
    trackedBatch(c, 'p/0', '1', 0);
    const taking = c.take([{ name: 'hourly', step }], [{ name: 'out', sink }], () => sink.flush());
    step.count = 99; // a change after the cut (the runtime never does this mid-take, but the snapshot must not see it)
    await taking;
    const cp = store.last();
    expect(cp.sinks).toEqual({ out: { written: 7 } });
    expect(cp.states.get('hourly')).toEqual({ header: { count: 3 }, entries: new Map([['total', 3]]) });
    expect(cp.identities).toEqual({ hourly: identity('f1') });
    expect(cp.takenAt).toBe(5_000);
  });

  it('a failing commit keeps the Acks held and rethrows; the next good commit releases them with the same epoch', async () => {
    const store = new MemoryStore();
    const c = coordinator(store);
    await c.restore([], []);
    const batch = trackedBatch(c, 'p/0', '1');
    batch.recordsWritten();
    store.failNext = new Error('disk full');
    await expect(c.take([], [], () => Promise.resolve())).rejects.toThrow('disk full');
    expect(batch.completed()).toBe(false);
    expect(store.stored).toBeUndefined();
    expect(c.stats()).toMatchObject({ epoch: 0, checkpoints: 0 });

    // Had the run gone on (the runtime fails it instead), the holds would still be there.
    expect(await c.take([], [], () => Promise.resolve(), true)).toBe(true);
    expect(batch.completed()).toBe(true);
    expect(store.last().epoch).toBe(1);
  });

  it('abandon drops the holds without releasing them: a failed run commits nothing', async () => {
    const store = new MemoryStore();
    const c = coordinator(store);
    await c.restore([], []);
    const batch = trackedBatch(c, 'p/0', '1');
    batch.recordsWritten();
    c.abandon();
    await c.take([], [], () => Promise.resolve(), true);
    expect(batch.completed()).toBe(false);
  });

  it('takes nothing when nothing changed, unless forced', async () => {
    const store = new MemoryStore();
    const c = coordinator(store);
    await c.restore([], []);
    expect(await c.take([], [], () => Promise.resolve())).toBe(false);
    expect(store.commits).toBe(0);
    c.noteChange();
    expect(await c.take([], [], () => Promise.resolve())).toBe(true);
    expect(await c.take([], [], () => Promise.resolve(), true)).toBe(true);
    expect(store.commits).toBe(2);
  });

  it('carries positions of partitions not seen since the restore into the next checkpoint, and continues the epoch', async () => {
    const store = new MemoryStore(stored({ epoch: 4, positions: { 'p/0': '10', 'p/1': '20', 'p/2': '30' } }));
    const c = coordinator(store);
    await c.restore([], []);
    trackedBatch(c, 'p/0', '15', 0);
    trackedBatch(c, 'p/3', '2', 0);
    await c.take([], [], () => Promise.resolve());
    expect(store.last()).toMatchObject({ epoch: 5, positions: { 'p/0': '15', 'p/1': '20', 'p/2': '30', 'p/3': '2' } });
  });
});

describe('CheckpointCoordinator.restore', () => {
  async function refusal(c: CheckpointCoordinator, steps: { name: string; step: Step }[]): Promise<StateError> {
    try {
      await c.restore(steps, []);
    } catch (err) {
      expect(err).toBeInstanceOf(StateError);
      return err as StateError;
    }
    throw new Error('restore accepted it');
  }

  it('hands each stateful step and sink its stored state and reports what it restored', async () => {
    const store = new MemoryStore(stored({ positions: { 'p/0': '3' }, sinks: { out: { written: 12 } } }));
    const c = coordinator(store);
    const step = new CounterStep();
    const sink = new CountingSink();
    const report = await c.restore([{ name: 'hourly', step }], [{ name: 'out', sink }]);
    expect(store.opened).toBe(1);
    expect(step.count).toBe(41);
    expect(sink.restored).toEqual({ written: 12 });
    expect(report).toMatchObject({ epoch: 4, entries: 1, partitions: 1 });
    expect(c.stats()).toMatchObject({ epoch: 4, entries: 1 });
  });

  it('refuses state whose step definition changed: E_STATE_INCOMPATIBLE naming the step and what changed', async () => {
    const store = new MemoryStore(stored({ identities: { hourly: identity('old', { size: '1h' }) } }));
    const explained: [string, StoredIdentity, StoredIdentity][] = [];
    const c = coordinator(store, {
      identities: { hourly: identity('new', { size: '30m' }) },
      explainChange: (step, was, now) => {
        explained.push([step, was, now]);
        return 'window size 1h -> 30m';
      },
    });
    const step = new CounterStep();
    const err = await refusal(c, [{ name: 'hourly', step }]);
    expect(err.code).toBe('E_STATE_INCOMPATIBLE');
    expect(err.where).toBe('steps.hourly');
    expect(err.message).toContain('steps.hourly: its definition changed since its state was stored (window size 1h -> 30m)');
    expect(err.message).toContain('--reset-state');
    expect(explained).toEqual([['hourly', identity('old', { size: '1h' }), identity('new', { size: '30m' })]]);
    expect(step.restoredWith).toBeUndefined();
  });

  it('refuses a changed kind as well, even with an equal fingerprint', async () => {
    const store = new MemoryStore(stored({ identities: { hourly: { kind: 'session', fingerprint: 'f1', parts: null } } }));
    const err = await refusal(coordinator(store), [{ name: 'hourly', step: new CounterStep() }]);
    expect(err.code).toBe('E_STATE_INCOMPATIBLE');
    expect(err.message).toContain('steps.hourly');
  });

  it('refuses the state of another application id: E_STATE_FOREIGN naming both', async () => {
    const store = new MemoryStore(stored({ applicationId: 'someone-else' }));
    const step = new CounterStep();
    const err = await refusal(coordinator(store), [{ name: 'hourly', step }]);
    expect(err.code).toBe('E_STATE_FOREIGN');
    expect(err.message).toContain('`someone-else`');
    expect(err.message).toContain('`app`');
    expect(err.message).toContain('memory');
    expect(step.restoredWith).toBeUndefined();
  });

  it('a step that is new in the spec starts empty; state of a removed step is ignored', async () => {
    const store = new MemoryStore(
      stored({
        states: new Map([
          ['hourly', { header: { count: 41 }, entries: new Map<string, JsonValue>([['total', 41]]) }],
          ['removed', { header: { count: 5 }, entries: new Map<string, JsonValue>() }],
        ]),
        identities: { hourly: identity('f1'), removed: identity('r') },
      }),
    );
    const c = coordinator(store, { identities: { hourly: identity('f1'), daily: identity('d') } });
    const hourly = new CounterStep();
    const daily = new CounterStep();
    await c.restore(
      [
        { name: 'hourly', step: hourly },
        { name: 'daily', step: daily },
      ],
      [],
    );
    expect(hourly.count).toBe(41);
    expect(daily.restoredWith).toBeUndefined();
    expect(daily.count).toBe(0);
    // The next checkpoint holds both steps, under the current identities.
    c.noteChange();
    await c.take(
      [
        { name: 'hourly', step: hourly },
        { name: 'daily', step: daily },
      ],
      [],
      () => Promise.resolve(),
    );
    expect([...store.last().states.keys()]).toEqual(['hourly', 'daily']);
    expect(store.last().identities).toEqual({ hourly: identity('f1'), daily: identity('d') });
  });
});

describe('CheckpointCoordinator.finishedInput', () => {
  it('commits a last checkpoint (under exactly-once it carries the last outputs), then removes the stored state, then the holds are released', async () => {
    const store = new MemoryStore(stored());
    const c = coordinator(store);
    await c.restore([], []);
    const batch = trackedBatch(c, 'p/0', '1');
    batch.recordsWritten();
    let flushed = false;
    const commitsBefore = store.commits;
    await c.finishedInput([], [], async () => {
      flushed = true;
      expect(store.stored).toBeDefined();
    });
    expect(flushed).toBe(true);
    expect(store.commits).toBe(commitsBefore + 1);
    expect(store.stored).toBeUndefined();
    expect(batch.completed()).toBe(true);
  });
});

describe('CheckpointCoordinator.take with sinks that write at checkpoints', () => {
  it('takes one every HOOK_REFRESH_MS even with no new input, so a quiet upstream still sends its idle marker', async () => {
    const store = new MemoryStore();
    const clock = new ManualClock(5_000);
    const c = new CheckpointCoordinator({ store, intervalMs: 1000, applicationId: 'app', identities: {} }, clock, silentLogger);
    let hooks = 0;
    const marking: Sink = { ...new CountingSink(), open: async () => {}, prepare: () => [], write: async () => {}, close: async () => {}, beforeCommit: async () => void hooks++ };
    const plain = new CountingSink();
    const flush = () => Promise.resolve();
    expect(await c.take([], [{ name: 'm', sink: marking }], flush)).toBe(true);
    expect(hooks).toBe(1);
    clock.advance(HOOK_REFRESH_MS - 1);
    expect(await c.take([], [{ name: 'm', sink: marking }], flush)).toBe(false);
    clock.advance(1);
    expect(await c.take([], [{ name: 'm', sink: marking }], flush)).toBe(true);
    expect(hooks).toBe(2);
    // Without such a sink, nothing changed means no checkpoint, however long.
    clock.advance(10 * HOOK_REFRESH_MS);
    expect(await c.take([], [{ name: 'p', sink: plain }], flush)).toBe(false);
  });
});
