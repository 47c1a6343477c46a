/**
 * The source of one task's Runtime: the batches of one input partition, handed over by the
 * stage's shared reader (TaskGroup). The task's runtime restores its state before it runs its
 * sources, so batches that arrive earlier are kept here, a few of them, and handed over in order
 * once the task is ready. Kept rather than waited for: the shared reader's batch handler must
 * return for its consumer to rejoin a rebalance, and a restore takes seconds.
 */
import type { RawBatch, Source, SourceOutput } from '../component.ts';

/** Batches kept while the task restores before `push` waits (a fetch is at most ~1 MiB per partition). */
const KEPT_BEFORE_READY = 4;

export class TaskInput implements Source {
  readonly bounded = false;
  private out: SourceOutput | undefined;
  private stopped = false;
  private finish: (() => void) | undefined;
  private markReady!: () => void;
  /** Resolves once the runtime runs this source (state restored, sinks open), or once stopped. */
  private readonly ready = new Promise<void>((resolve) => (this.markReady = resolve));
  /** Batches pushed before ready, handed over in order by the first push after it. */
  private kept: RawBatch[] = [];
  /** The hand-over in progress: pushes chain on it, so batches keep their order. */
  private handing: Promise<void> = Promise.resolve();

  constructor(readonly partition: string) {}

  run(out: SourceOutput): Promise<void> {
    const done = new Promise<void>((resolve) => (this.finish = resolve));
    if (this.stopped) {
      this.kept = [];
      this.finish!();
    } else {
      this.out = out;
      out.assign([this.partition]);
    }
    this.markReady();
    return done;
  }

  /**
   * Hands a batch to the task; resolves when it can take more. Before the task is ready, a few
   * batches are kept and it resolves at once. After stop, batches are ignored (never acknowledged).
   */
  push(batch: RawBatch): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const early = !this.out && this.kept.length < KEPT_BEFORE_READY;
    this.kept.push(batch);
    // A failed emit is the run's failure, which the runtime reports; the chain goes on regardless.
    this.handing = this.handing.then(() => this.handOver()).catch(() => {});
    return early ? Promise.resolve() : this.handing;
  }

  /** Hands over every kept batch, oldest first, once ready. */
  private async handOver(): Promise<void> {
    await this.ready;
    while (this.kept.length > 0) {
      const batch = this.kept.shift()!;
      if (!this.out) continue;
      await this.out.emit(batch);
    }
  }

  /**
   * A task that runs gets what was pushed before the stop, then its run ends (it drains them and
   * takes its last checkpoint). One stopped before it ran never gets them: unacknowledged, they
   * are read again by whoever owns the partition next.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (!this.out) this.kept = [];
    this.markReady();
    const finish = this.finish;
    void this.handing.then(() => finish?.());
  }

  async close(): Promise<void> {}
}
