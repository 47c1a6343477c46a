/**
 * TaskGroup: the tasks of one stage in this process. The stage's input source (one Kafka consumer
 * in the stage's group) is shared; each partition the group assigns to this process becomes a
 * task: a Runtime of its own over the stage's steps and sinks, with its own state and checkpoints
 * (its own transactional id), fed the partition's batches through a TaskInput.
 *
 * - Assigned: the task is created and run; its runtime restores the partition's state first,
 *   batches wait meanwhile.
 * - Revoked: the task stops like a stopped run (drains, a last checkpoint) and is dropped. When the
 *   partition's new owner fenced it first, that last checkpoint fails as fenced: expected, the new
 *   owner resumes from the checkpoint before, so nothing is lost or counted twice.
 * - Failed (its input failed, or a task failed while this process owned its partition, or another
 *   stage failed: abort()): the tasks end WITHOUT a last checkpoint (Runtime.abort) and the group
 *   waits for each at most `abandonAfterMs`, then for its input to close as long, and gives up on
 *   what did not end by then. A last checkpoint is only an optimisation: the restart restores from
 *   the last committed one, and whatever a task left uncommitted is aborted when the restarted
 *   task fences its transactional id. With the brokers out of reach, waiting for it could last
 *   forever.
 * - Retained across a rebalance: the task keeps running with its state in memory (Kafka Streams'
 *   sticky tasks); the partition's re-delivered messages are dropped at intake by its checkpoint
 *   coordinator. Had another process owned it in between, that process fenced this task's
 *   producer, and the task's next checkpoint fails: then the whole group fails with a TaskLostError,
 *   which `sluice run` answers by starting again, restoring every task from its checkpoint.
 */
import type { RawBatch, Source, SourceOutput } from '../component.ts';
import { causedBy, FencedError, SluiceError, errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Runtime } from '../runtime.ts';
import type { TaskInput } from './task-input.ts';

export interface Task {
  readonly partition: string;
  readonly input: TaskInput;
  readonly runtime: Runtime;
}

/** Creates a task for a partition (connects to nothing: its runtime's run() restores and opens). */
export type TaskFactory = (partition: string) => Promise<Task>;

export interface TaskGroupOptions {
  /**
   * Once the group failed (or was aborted), how long it waits for its tasks to end, and then for
   * its input to close, before it gives up on them. Default 10 s.
   */
  abandonAfterMs?: number;
  /** How long a task fenced while its partition is still ours waits for the revoke before the group fails (TaskLostError). Default 15 s. */
  lostGraceMs?: number;
}

/**
 * A task's checkpoint was fenced while this process still owned its partition: another process
 * took it over (this one missed a rebalance, or was paused past the session timeout). Not a
 * failure of the pipeline: the process restores every task from its checkpoint and goes on.
 */
export class TaskLostError extends SluiceError {
  constructor(task: string, cause: unknown) {
    super('E_TASK_LOST', `task ${task} was taken over by another process (its checkpoint was fenced): ${errorMessage(cause)}`, `task ${task}`, { cause });
  }
}

interface Entry {
  readonly partition: string;
  /** Resolves with the task once created; rejects when it cannot be. */
  readonly starting: Promise<Task>;
  task?: Task;
  /** Settles when the task's run is over (or it could not be created). */
  finished?: Promise<void>;
  revoked: boolean;
}

/** The rejection of a run the group aborted itself (Runtime.abort). */
function isAborted(err: unknown): boolean {
  return err instanceof SluiceError && err.code === 'E_ABORTED';
}

export class TaskGroup implements SourceOutput {
  private readonly entries = new Map<string, Entry>();
  /** Tasks being stopped (revoked, or the stage ending), each with its retirement: awaited before the group ends. */
  private readonly retiring = new Map<Entry, Promise<void>>();
  private failure: Error | undefined;
  private stopping = false;
  /** Set once the group gives up on its tasks' last checkpoints: after a failure, or abort(). */
  private abortReason: string | undefined;
  private readonly abandonAfterMs: number;
  private readonly lostGraceMs: number;
  /** Resolves when the group starts aborting. */
  private readonly aborted: Promise<void>;
  private markAborted!: () => void;
  /** Resolves (false) `abandonAfterMs` after the group started aborting. */
  private abandoned: Promise<false> | undefined;
  private abandonTimer: ReturnType<typeof setTimeout> | undefined;
  /** run() has ended. */
  private over = false;
  /** Stats of tasks that ended, so counters stay cumulative across rebalances. */
  private readonly ended: Runtime[] = [];
  /** Resolves with the group's failure as soon as it fails (run() rejects with it only once the tasks ended). */
  readonly failed: Promise<Error>;
  private markFailed!: (error: Error) => void;

  constructor(
    /** The stage's id: `0`, `1` ... */
    readonly stage: string,
    /** The stage's input, shared by its tasks. */
    readonly input: { name: string; source: Source },
    private readonly createTask: TaskFactory,
    private readonly logger: Logger,
    options: TaskGroupOptions = {},
  ) {
    this.abandonAfterMs = options.abandonAfterMs ?? 10_000;
    this.lostGraceMs = options.lostGraceMs ?? 15_000;
    this.aborted = new Promise((resolve) => (this.markAborted = resolve));
    this.failed = new Promise((resolve) => (this.markFailed = resolve));
  }

  /** The running tasks, by partition. */
  tasks(): Task[] {
    const out: Task[] = [];
    for (const e of this.entries.values()) if (e.task) out.push(e.task);
    return out;
  }

  /** Runtimes of tasks that ended in this process (handed over or stopped): their counters still count. */
  endedRuntimes(): readonly Runtime[] {
    return this.ended;
  }

  /**
   * Reads the stage's input until stop(), abort() or a failure; resolves once every task ended (or,
   * after a failure, was given up on) and the input closed. Rejects with the first failure (of the
   * input, or of a task it still owned).
   */
  async run(): Promise<void> {
    try {
      await this.readInput();
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
    this.stopping = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    try {
      await Promise.all(all.map((e) => this.retire(e, 'the stage stopped')));
      await Promise.all([...this.retiring.values()]);
      await this.closeInput();
    } finally {
      this.over = true;
      if (this.abandonTimer) clearTimeout(this.abandonTimer);
    }
    if (this.failure) throw this.failure;
  }

  /** Stops reading; each task drains and takes a last checkpoint. Resolves when the input stopped reading. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.input.source.stop();
  }

  /**
   * Stops reading and ends the tasks without their last checkpoints: the run failed elsewhere (another
   * stage) and restarts from the last committed ones. run() then settles within about twice
   * `abandonAfterMs`, resolving unless the group failed itself. Resolves when the input stopped reading.
   */
  async abort(reason: string): Promise<void> {
    this.startAbort(reason);
    await this.input.source.stop().catch(() => {});
  }

  /* ------------------------------------------------------------ SourceOutput of the shared input */

  assign(partitions: string[]): void {
    if (this.stopping) return;
    for (const partition of partitions) {
      if (this.entries.has(partition)) continue;
      const starting = this.createTask(partition);
      const entry: Entry = { partition, starting, revoked: false };
      this.entries.set(partition, entry);
      entry.finished = starting.then(
        (task) => {
          entry.task = task;
          if (this.abortReason !== undefined) void task.runtime.abort(this.abortReason);
          else if (entry.revoked || this.stopping) void task.runtime.stop('partition revoked before it started');
          return task.runtime
            .run()
            .then(
              () => undefined,
              (err: unknown) => this.taskFailed(entry, err),
            )
            .finally(() => {
              // A batch still waiting for the task (it ended before it ever read) is let go, never
              // acknowledged: the shared input's consumer cannot leave its group while one waits.
              void task.input.stop();
            });
        },
        (err: unknown) => this.taskFailed(entry, err),
      );
    }
    this.logger.info({ tasks: [...this.entries.keys()].sort() }, 'tasks assigned');
  }

  revoke(partitions: string[]): void {
    for (const partition of partitions) {
      const entry = this.entries.get(partition);
      if (!entry) continue;
      this.entries.delete(partition);
      void this.retire(entry, 'partition revoked');
    }
    // The tasks left, as `tasks assigned` lists them: the last such line says what this process runs.
    this.logger.info({ tasks: [...this.entries.keys()].sort(), revoked: partitions }, 'tasks revoked');
  }

  async emit(batch: RawBatch): Promise<void> {
    const entry = this.entries.get(batch.partition);
    // Revoked meanwhile (or its task failed): the batch is never acknowledged, its new owner reads it.
    if (!entry) return;
    let task: Task;
    try {
      task = await entry.starting;
    } catch {
      return;
    }
    await task.input.push(batch);
  }

  /* ------------------------------------------------------------ internals */

  /**
   * Stops a task and waits for its run to end: gracefully (it drains and takes a last checkpoint),
   * or once the group aborts, without that last checkpoint and for at most `abandonAfterMs`.
   */
  private retire(entry: Entry, reason: string): Promise<void> {
    const already = this.retiring.get(entry);
    if (already) return already;
    entry.revoked = true;
    entry.starting.then(
      (task) => (this.abortReason !== undefined ? task.runtime.abort(this.abortReason) : task.runtime.stop(reason)),
      () => {
        // Reported by taskFailed.
      },
    );
    const retiring = this.endOf(entry).then((ended) => {
      this.retiring.delete(entry);
      if (!ended) {
        this.logger.warn(
          { partition: entry.partition, grace_ms: this.abandonAfterMs },
          'task did not end in time after the failure: given up on (a restarted task fences whatever it left uncommitted)',
        );
      }
      if (entry.task) this.ended.push(entry.task.runtime);
    });
    this.retiring.set(entry, retiring);
    return retiring;
  }

  /** True once the task's run ended; false when the group aborted and gave up waiting for it. */
  private async endOf(entry: Entry): Promise<boolean> {
    const ended = (entry.finished ?? Promise.resolve()).then(() => true as const);
    if (this.abortReason === undefined && (await Promise.race([ended, this.aborted.then(() => false as const)]))) return true;
    return Promise.race([ended, this.abandoned!]);
  }

  /**
   * The input's run, which ends when the input is stopped. After a failure it is given up on once
   * `abandonAfterMs` passed: an input that never ends (kafkajs refused to pause a consumer it was
   * restarting, and the source's run waited for good) must not hold the run's restart back.
   */
  private async readInput(): Promise<void> {
    const reading = this.input.source.run(this).then(() => true);
    const givenUp = this.aborted.then(() => this.abandoned!);
    if (await Promise.race([reading, givenUp])) return;
    reading.catch(() => {});
    this.logger.warn({ grace_ms: this.abandonAfterMs }, 'stage input did not stop in time after the failure: given up on');
  }

  /** Closes the shared input; after a failure, waits for that at most `abandonAfterMs`. */
  private async closeInput(): Promise<void> {
    const closing = this.input.source.close().then(
      () => true,
      (err: unknown) => {
        this.logger.warn({ error: errorMessage(err) }, 'stage input close failed');
        return true;
      },
    );
    if (this.abortReason === undefined) {
      await closing;
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([closing, new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.abandonAfterMs)))]);
    clearTimeout(timer);
    if (!closed) this.logger.warn({ grace_ms: this.abandonAfterMs }, 'stage input did not close in time after the failure: given up on');
  }

  /** From now on tasks end without a last checkpoint, and the group stops waiting for them after `abandonAfterMs`. */
  private startAbort(reason: string): void {
    if (this.abortReason !== undefined || this.over) return;
    this.abortReason = reason;
    this.stopping = true;
    this.abandoned = new Promise((resolve) => (this.abandonTimer = setTimeout(() => resolve(false), this.abandonAfterMs)));
    this.markAborted();
    void this.input.source.stop().catch(() => {});
    // Tasks still running, and those already stopping gracefully (revoked): no last checkpoint now.
    for (const entry of [...this.entries.values(), ...this.retiring.keys()]) {
      entry.starting.then(
        (task) => task.runtime.abort(reason),
        () => {},
      );
    }
  }

  private taskFailed(entry: Entry, err: unknown): void {
    if (entry.revoked || this.stopping) {
      // Its partition is another process's now: a fenced last checkpoint is the normal handover.
      if (isAborted(err)) this.logger.debug({ partition: entry.partition }, 'task aborted');
      else if (causedBy(err, FencedError)) this.logger.info({ partition: entry.partition }, 'task handed over: its new owner fenced it');
      else this.logger.warn({ partition: entry.partition, error: errorMessage(err) }, 'task failed while stopping');
      return;
    }
    if (causedBy(err, FencedError)) {
      // Fenced while this process still owns the partition. Kafka rebalances eagerly: the new owner
      // often fences the task before the revoke reaches this process. Wait for that revoke (its
      // batches meanwhile go nowhere: the stopped input ignores them, unacknowledged); only if none
      // comes did another process take the task behind the group's back, and this one restarts,
      // restoring every task from its checkpoint.
      this.logger.info({ partition: entry.partition }, 'task fenced before its revoke arrived: waiting for the rebalance');
      const timer = setTimeout(() => {
        if (!entry.revoked && !this.stopping && this.entries.get(entry.partition) === entry) this.fail(new TaskLostError(`${this.stage}:${entry.partition}`, err));
      }, this.lostGraceMs);
      timer.unref?.();
      return;
    }
    this.fail(err instanceof Error ? err : new Error(String(err)));
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.startAbort(`stage ${this.stage} failed: ${errorMessage(error)}`);
    this.markFailed(error);
  }
}
