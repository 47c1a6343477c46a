/**
 * CheckpointCoordinator: the runtime's side of checkpoints. The runtime calls it at three places:
 * - at start, `restore` loads the last checkpoint, checks it against the running spec and hands
 *   each stateful step its state;
 * - per source batch, `admit` drops messages already processed: those the restored checkpoint
 *   reflects (a source may re-deliver from an older position than the checkpoint's: its own offset
 *   commit can lag) and those a source delivers again in this run (a Kafka consumer that restarts
 *   or gets its partitions back re-reads from its committed offsets, while their effect is already
 *   in the state and outputs of the open epoch); `track` notes the batch's last position and
 *   holds its Ack;
 * - between two jobs, `cut` snapshots the steps and takes the positions; `complete` then waits for
 *   the sinks to write everything handed to them before the cut, commits the checkpoint to the
 *   store and only then releases the held Acks, so a source commits its positions after the state
 *   that covers them is durable. The runtime lets processing go on while `complete` runs, as
 *   Flink's asynchronous snapshots do, unless a sink forbids it (see Runtime.takeCheckpoint);
 *   `take` does both and waits.
 *
 * A batch is therefore acknowledged to its source only when (a) every sink wrote what it produced
 * and (b) a checkpoint that includes its effect on state is durable. A crash before that re-reads
 * it; state restored from the previous checkpoint has not seen it; nothing is counted twice.
 */
import type { Ack } from '../ack.ts';
import type { Clock } from '../clock.ts';
import type { JsonValue, Sink, Step, StepState } from '../component.ts';
import type { Logger } from '../logger.ts';
import type { RawMessage } from '../record.ts';
import { comparePositions, identityMismatches, StateError, type Checkpoint, type CommitFigures, type StateStore, type StoredIdentity } from './checkpoint.ts';

export interface CheckpointOptions {
  store: StateStore;
  /** How often the runtime takes one, in ms of real time. */
  intervalMs: number;
  applicationId: string;
  /** The identity of each stateful step's definition, by step name. */
  identities: Record<string, StoredIdentity>;
  /** Says what changed in a step's definition, for the refusal message. */
  explainChange?: (step: string, stored: StoredIdentity, current: StoredIdentity) => string;
}

/** What the run summary and the progress line show. */
export interface CheckpointStats {
  /** The last committed epoch, 0 before the first. */
  epoch: number;
  /** Wall-clock time of the last commit, epoch ms. */
  lastCommittedAt?: number;
  /** How long the last checkpoint took, from the cut to durable, ms. */
  lastDurationMs?: number;
  /** State entries (panes) and stored bytes at the last checkpoint. */
  entries: number;
  bytes: number;
  checkpoints: number;
  /** Messages dropped at intake because the restored checkpoint already reflected them. */
  skipped: number;
  restored?: RestoreReport;
}

export interface RestoreReport {
  epoch: number;
  entries: number;
  partitions: number;
  /** Age of the checkpoint when it was restored, ms. */
  ageMs: number;
  durationMs: number;
}

/** With sinks that write at checkpoints, a checkpoint at least this often, changed or not. */
export const HOOK_REFRESH_MS = 5_000;

/** A checkpoint cut and not yet durable (CheckpointCoordinator.cut, then complete). */
export interface PendingCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The Acks of the batches it covers: released once it is durable. */
  readonly holds: Ack[];
  readonly entries: number;
  /** performance.now() at the cut. */
  readonly started: number;
}

interface StatefulStep {
  name: string;
  step: Step;
}

/** A sink that takes part in checkpoints: it keeps state in them (`checkpoint`) or writes before the commit (`beforeCommit`). */
interface CheckpointedSink {
  name: string;
  sink: Sink;
}

export class CheckpointCoordinator {
  readonly intervalMs: number;
  private epoch = 0;
  /** Last position processed, per partition: the next cut's positions; starts as the restored ones. */
  private readonly positions = new Map<string, string>();
  private holds: Ack[] = [];
  private changed = false;
  /** A checkpoint was cut and has not completed. */
  private inFlight = false;
  /** Clock time of the last checkpoint taken (or of the start). */
  private lastTakenAt = 0;
  private readonly figures: CheckpointStats = { epoch: 0, entries: 0, bytes: 0, checkpoints: 0, skipped: 0 };

  constructor(
    private readonly options: CheckpointOptions,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.intervalMs = options.intervalMs;
  }

  get store(): StateStore {
    return this.options.store;
  }

  stats(): CheckpointStats {
    return { ...this.figures };
  }

  /**
   * Opens the store, loads the last checkpoint and restores every stateful step from it. Refuses
   * (StateError) state built by a different definition of a step, or of another application.
   */
  async restore(steps: readonly StatefulStep[], sinks: readonly CheckpointedSink[]): Promise<RestoreReport | undefined> {
    const started = performance.now();
    await this.options.store.open();
    const cp = await this.options.store.load();
    if (!cp) return undefined;
    if (cp.applicationId !== this.options.applicationId) {
      throw new StateError(
        'E_STATE_FOREIGN',
        `stored state belongs to application \`${cp.applicationId}\`, not \`${this.options.applicationId}\` (${this.options.store.description}); point --state-dir elsewhere or run with --reset-state`,
        this.options.store.description,
      );
    }
    const mismatches = identityMismatches(cp.identities, this.options.identities);
    if (mismatches.length > 0) {
      const lines = mismatches.map((step) => {
        const what = this.options.explainChange?.(step, cp.identities[step]!, this.options.identities[step]!);
        return `steps.${step}: its definition changed since its state was stored${what ? ` (${what})` : ''}`;
      });
      throw new StateError(
        'E_STATE_INCOMPATIBLE',
        `stored state cannot be used by this spec:\n  ${lines.join('\n  ')}\nRun with --reset-state to drop it (windows then start empty), or restore the previous definition. \`sluice diff\` tells before a deploy.`,
        `steps.${mismatches[0]!}`,
      );
    }
    let entries = 0;
    for (const { name, step } of steps) {
      const state = cp.states.get(name);
      // A step added since the checkpoint starts empty; state of a removed step is left alone.
      if (!state || !step.restore) continue;
      step.restore(state);
      entries += state.entries.size;
    }
    for (const { name, sink } of sinks) {
      const state = cp.sinks[name];
      if (state !== undefined) sink.restore?.(state);
    }
    for (const [partition, position] of Object.entries(cp.positions)) this.positions.set(partition, position);
    this.epoch = cp.epoch;
    const report: RestoreReport = {
      epoch: cp.epoch,
      entries,
      partitions: this.positions.size,
      ageMs: Math.max(0, Date.now() - cp.takenAt),
      durationMs: Math.round(performance.now() - started),
    };
    this.figures.epoch = cp.epoch;
    this.figures.entries = entries;
    this.figures.restored = report;
    return report;
  }

  /**
   * The messages of a batch that were not processed yet: positions in a partition only grow, so a
   * message at or below the last processed position is a re-delivery. One comparison per batch
   * when nothing is re-delivered.
   */
  admit(partition: string, messages: RawMessage[]): RawMessage[] {
    const after = this.positions.get(partition);
    if (after === undefined || messages.length === 0) return messages;
    if (comparePositions(messages[0]!.position.offset, after) > 0) return messages;
    const fresh = messages.filter((m) => comparePositions(m.position.offset, after) > 0);
    this.figures.skipped += messages.length - fresh.length;
    return fresh;
  }

  /** A batch entered the graph: its last position joins the next cut, and its Ack is held until that cut is durable. */
  track(partition: string, lastPosition: string, ack: Ack): void {
    this.positions.set(partition, lastPosition);
    ack.retain();
    this.holds.push(ack);
    this.changed = true;
  }

  /** Something other than a batch may have changed state (a tick closing windows, a rebalance). */
  noteChange(): void {
    this.changed = true;
  }

  /**
   * Takes a checkpoint at the current cut and waits until it is durable: `cut`, then `complete`.
   * Resolves false when nothing changed since the last one (and none is due anyway).
   */
  async take(steps: readonly StatefulStep[], sinks: readonly CheckpointedSink[], flushSinks: () => Promise<void>, force = false): Promise<boolean> {
    const pending = this.cut(steps, sinks, force);
    if (!pending) return false;
    await this.complete(pending, sinks, flushSinks);
    return true;
  }

  /**
   * The synchronous half of a checkpoint, run between two jobs: snapshots the steps and takes the
   * positions and held Acks of everything processed so far. Undefined when nothing changed since
   * the last checkpoint (and no sink needs one now). Processing may go on before `complete`: what
   * it changes belongs to the next checkpoint. One checkpoint at a time: the previous one must
   * have completed.
   */
  cut(steps: readonly StatefulStep[], sinks: readonly CheckpointedSink[], force = false): PendingCheckpoint | undefined {
    if (this.inFlight) throw new Error('a checkpoint was cut before the previous one completed');
    const now = this.clock.now();
    // Sinks that write at checkpoints (a repartition's watermark markers) need one now and then
    // even when no input came: an upstream that went quiet must still say it is idle.
    const refresh = now - this.lastTakenAt >= HOOK_REFRESH_MS && sinks.some((s) => s.sink.beforeCommit);
    if (!this.changed && !force && !refresh) return undefined;
    this.lastTakenAt = now;
    const started = performance.now();
    const states = new Map<string, StepState>();
    let entries = 0;
    const changesOnly = this.options.store.incremental === true;
    for (const { name, step } of steps) {
      if (!step.snapshot) continue;
      const state = step.snapshot({ changesOnly });
      states.set(name, state);
      entries += state.size ?? state.entries.size;
    }
    const checkpoint: Checkpoint = {
      applicationId: this.options.applicationId,
      epoch: this.epoch + 1,
      positions: Object.fromEntries(this.positions),
      states,
      identities: this.options.identities,
      sinks: {},
      takenAt: now,
    };
    const holds = this.holds;
    this.holds = [];
    this.changed = false;
    this.inFlight = true;
    return { checkpoint, holds, entries, started };
  }

  /**
   * The asynchronous half: `flushSinks` resolves once the sinks wrote everything derived from
   * records before the cut, and each sink's `beforeCommit` then runs, one after another; then the
   * store commits, and only then are the cut's Acks released. A failing step fails the checkpoint:
   * throws, and the Acks stay held (the run must fail).
   */
  async complete(pending: PendingCheckpoint, sinks: readonly CheckpointedSink[], flushSinks: () => Promise<void>): Promise<void> {
    const { checkpoint, holds, entries, started } = pending;
    let figures: CommitFigures;
    try {
      await flushSinks();
      // After the data, before the commit: under exactly-once what they write joins this checkpoint's transaction.
      for (const { sink } of sinks) await sink.beforeCommit?.();
      // Read after the flush: everything derived from records before the cut is written, nothing
      // after it is (the runtime holds such sinks' later records back until the commit).
      for (const { name, sink } of sinks) {
        const state: JsonValue | undefined = sink.checkpoint?.();
        if (state !== undefined) checkpoint.sinks[name] = state;
      }
      figures = await this.options.store.commit(checkpoint);
    } catch (err) {
      // Nothing of this cut is durable: its batches stay held, and the next checkpoint takes them.
      this.holds = holds.concat(this.holds);
      this.changed = true;
      throw err;
    } finally {
      this.inFlight = false;
    }
    this.epoch = checkpoint.epoch;
    for (const ack of holds) ack.release();
    Object.assign(this.figures, {
      epoch: this.epoch,
      lastCommittedAt: Date.now(),
      lastDurationMs: Math.round(performance.now() - started),
      entries,
      bytes: figures.bytes,
      checkpoints: this.figures.checkpoints + 1,
    });
    this.logger.debug({ epoch: this.epoch, entries, written: figures.written, deleted: figures.deleted, ms: this.figures.lastDurationMs }, 'checkpoint committed');
  }

  /**
   * The run read all its input and every window flushed: the job is done, its outputs written, and
   * a later run starts afresh (as a finished Flink job keeps no checkpoint to resume from).
   */
  async finishedInput(steps: readonly StatefulStep[], sinks: readonly CheckpointedSink[], flushSinks: () => Promise<void>): Promise<void> {
    // Committed first: under exactly-once the last outputs ride in this checkpoint's transaction.
    await this.take(steps, sinks, flushSinks, true);
    await this.options.store.reset();
    this.logger.info({ store: this.options.store.description }, 'input ended: stored state removed, a new run starts from the beginning');
  }

  /** Held Acks of a run that failed are dropped, never released: their positions must not be committed. */
  abandon(): void {
    this.holds = [];
  }
}
