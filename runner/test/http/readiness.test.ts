/**
 * Readiness from the state of a real Runtime: ready while running with fresh state; not ready
 * once a checkpoint commit hangs (a stuck store) for longer than ten intervals, whatever the
 * sources do; not ready while starting, restarting or after the end; a source that reports
 * itself disconnected is named. Processing time is a ManualClock: no sleeping for the age.
 */
import { describe, expect, it } from 'vitest';
import type { Checkpoint, CommitFigures, StateStore } from '../../src/engine/checkpoint/checkpoint.ts';
import { CheckpointCoordinator } from '../../src/engine/checkpoint/coordinator.ts';
import { ManualClock } from '../../src/engine/clock.ts';
import type { SourceHealth } from '../../src/engine/component.ts';
import { ConnectionError } from '../../src/engine/errors.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { checkpointStaleAfterMs, readiness } from '../../src/http/readiness.ts';
import { RunStatus } from '../../src/http/run-status.ts';
import type { Plan } from '../../src/plan/types.ts';
import { graphOf, RecordingSink, ScriptedSource, settle } from '../engine/fake-components.ts';

/** Commits nothing until told: what a store does while its broker or database does not answer. */
class StuckStore implements StateStore {
  readonly description = 'a store that does not answer';
  stuck = false;
  commits = 0;
  private release: (() => void) | undefined;
  async open(): Promise<void> {}
  async load(): Promise<Checkpoint | undefined> {
    return undefined;
  }
  async commit(_checkpoint: Checkpoint): Promise<CommitFigures> {
    if (this.stuck) await new Promise<void>((resolve) => (this.release = resolve));
    this.commits++;
    return { bytes: 10, written: 1, deleted: 0 };
  }
  unstick(): void {
    this.stuck = false;
    this.release?.();
  }
  async reset(): Promise<void> {}
  async close(): Promise<void> {}
}

class WatchedSource extends ScriptedSource {
  reported: SourceHealth = { connected: true };
  health(): SourceHealth {
    return this.reported;
  }
}

const plan: Plan = { name: 'ready', file: 'ready.yaml', nodes: [] };
const INTERVAL = 1_000;

function setup() {
  const clock = new ManualClock(1_000_000);
  const store = new StuckStore();
  const coordinator = new CheckpointCoordinator({ store, intervalMs: INTERVAL, applicationId: 'ready', identities: {} }, clock, silentLogger);
  const source = new WatchedSource('in', [{ partition: 'p', values: ['{"a":1}'] }], false);
  const metrics = new Metrics();
  const runtime = new Runtime(graphOf([{ source: 'in', impl: source }, { sink: 'out', impl: new RecordingSink(), from: ['in'] }]), {
    logger: silentLogger,
    metrics,
    clock,
    tickMs: 0,
    checkpoints: coordinator,
  });
  const status = new RunStatus(plan, metrics);
  status.started(runtime);
  return { clock, store, source, runtime, status };
}

describe('readiness', () => {
  it('allows ten checkpoint intervals, at least 30 s', () => {
    expect(checkpointStaleAfterMs(1_000)).toBe(30_000);
    expect(checkpointStaleAfterMs(10_000)).toBe(100_000);
  });

  it('is ready while running, not once a checkpoint hangs past the limit, and ready again when it commits', async () => {
    const { clock, store, runtime, status } = setup();
    expect(readiness(status)).toEqual({ ready: false, reasons: ['the pipeline is starting'] });
    const done = runtime.run();
    await settle();
    await settle();
    expect(readiness(status)).toEqual({ ready: true, reasons: [] });

    store.stuck = true;
    clock.advance(INTERVAL);
    await runtime.tick(); // the checkpoint due now is taken after this job, and hangs
    await settle();
    clock.advance(checkpointStaleAfterMs(INTERVAL) - INTERVAL);
    expect(readiness(status).ready).toBe(true);
    clock.advance(INTERVAL + 1);
    // Covered last at the start: 31 s ago; the commit of the cut taken 30 s ago still hangs.
    expect(readiness(status)).toEqual({ ready: false, reasons: ['the last checkpoint is 31 s old (more than 30 s)'] });

    store.unstick();
    await settle();
    await settle();
    expect(store.commits).toBe(1);
    // What it committed covers the cut of 30 s ago; the next checkpoint, due at once, covers now.
    expect(readiness(status).ready).toBe(false);
    await runtime.tick();
    await settle();
    expect(readiness(status)).toEqual({ ready: true, reasons: [] });
    await runtime.stop();
    await done;
    status.finished('stopped');
    expect(readiness(status)).toEqual({ ready: false, reasons: ['the pipeline is stopped'] });
  });

  it('names a source that is not connected, and says restarting after a failure, with why', async () => {
    const { source, runtime, status } = setup();
    const done = runtime.run();
    await settle();
    await settle();
    source.reported = { connected: false, detail: 'no answer from k:9092 for 12 s' };
    expect(readiness(status)).toEqual({ ready: false, reasons: ['source in is not connected: no answer from k:9092 for 12 s'] });
    await runtime.stop();
    await done;
    status.failed(new ConnectionError('E_KAFKA_CONNECT', 'cannot reach Kafka at k:9092', 'sources.in'), true);
    expect(readiness(status)).toEqual({ ready: false, reasons: ['the pipeline is restarting after: cannot reach Kafka at k:9092'] });
    expect(status.restarts()).toBe(1);
  });
});
