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
 * - Retained across a rebalance: the task keeps running with its state in memory (Kafka Streams'
 *   sticky tasks); the partition's re-delivered messages are dropped at intake by its checkpoint
 *   coordinator. Had another process owned it in between, that process fenced this task's
 *   producer, and the task's next checkpoint fails: then the whole group fails with a TaskLostError,
 *   which `sluice run` answers by starting again, restoring every task from its checkpoint.
 */
import type { RawBatch, Source, SourceOutput } from '../component.ts';
import { FencedError, SluiceError, errorMessage } from '../errors.ts';
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
  /** Settles when the task's run is over. */
  finished?: Promise<void>;
  revoked: boolean;
}

function isFenced(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (e instanceof FencedError) return true;
  }
  return false;
}

export class TaskGroup implements SourceOutput {
  private readonly entries = new Map<string, Entry>();
  /** Tasks stopping after a revoke: awaited before the group ends. */
  private readonly retiring = new Set<Promise<void>>();
  private failure: Error | undefined;
  private stopping = false;
  /** Stats of tasks that ended, so counters stay cumulative across rebalances. */
  private readonly ended: Runtime[] = [];

  constructor(
    /** The stage's id: `0`, `1` ... */
    readonly stage: string,
    /** The stage's input, shared by its tasks. */
    readonly input: { name: string; source: Source },
    private readonly createTask: TaskFactory,
    private readonly logger: Logger,
  ) {}

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
   * Reads the stage's input until stop() or a failure; resolves once every task stopped and the
   * input closed. Rejects with the first failure (of the input, or of a task it still owned).
   */
  async run(): Promise<void> {
    try {
      await this.input.source.run(this);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
    this.stopping = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => this.retire(e, 'the stage stopped')));
    await Promise.all([...this.retiring]);
    try {
      await this.input.source.close();
    } catch (err) {
      this.logger.warn({ error: errorMessage(err) }, 'stage input close failed');
    }
    if (this.failure) throw this.failure;
  }

  /** Stops reading; each task drains and takes a last checkpoint. Resolves when the input stopped reading. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.input.source.stop();
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
          if (entry.revoked || this.stopping) void task.runtime.stop('partition revoked before it started');
          return task.runtime.run().then(
            () => undefined,
            (err: unknown) => this.taskFailed(entry, err),
          );
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
      const retiring = this.retire(entry, 'partition revoked');
      this.retiring.add(retiring);
      void retiring.finally(() => this.retiring.delete(retiring));
    }
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

  private async retire(entry: Entry, reason: string): Promise<void> {
    entry.revoked = true;
    try {
      const task = await entry.starting;
      await task.runtime.stop(reason);
    } catch {
      // Reported by taskFailed.
    }
    await entry.finished;
    if (entry.task) this.ended.push(entry.task.runtime);
  }

  private taskFailed(entry: Entry, err: unknown): void {
    if (entry.revoked || this.stopping) {
      // Its partition is another process's now: a fenced last checkpoint is the normal handover.
      if (isFenced(err)) this.logger.info({ partition: entry.partition }, 'task handed over: its new owner fenced it');
      else this.logger.warn({ partition: entry.partition, error: errorMessage(err) }, 'task failed while stopping');
      return;
    }
    this.fail(isFenced(err) ? new TaskLostError(`${this.stage}:${entry.partition}`, err) : err instanceof Error ? err : new Error(String(err)));
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.stopping = true;
    void this.input.source.stop().catch(() => {});
  }
}
