/**
 * The source of one task's Runtime: the batches of one input partition, handed over by the
 * stage's shared reader (TaskGroup). The task's runtime restores its state before it runs its
 * sources, so a batch that arrives earlier waits here (and the shared reader with it, which keeps
 * its group membership alive meanwhile) until the task is ready.
 */
import type { RawBatch, Source, SourceOutput } from '../component.ts';

export class TaskInput implements Source {
  readonly bounded = false;
  private out: SourceOutput | undefined;
  private stopped = false;
  private finish: (() => void) | undefined;
  private markReady!: () => void;
  /** Resolves once the runtime runs this source (state restored, sinks open), or once stopped. */
  private readonly ready = new Promise<void>((resolve) => (this.markReady = resolve));

  constructor(readonly partition: string) {}

  run(out: SourceOutput): Promise<void> {
    this.out = out;
    const done = new Promise<void>((resolve) => (this.finish = resolve));
    if (this.stopped) this.finish!();
    else out.assign([this.partition]);
    this.markReady();
    return done;
  }

  /** Hands a batch to the task; resolves when it can take more. After stop, batches are ignored (never acknowledged). */
  async push(batch: RawBatch): Promise<void> {
    await this.ready;
    if (this.stopped || !this.out) return;
    await this.out.emit(batch);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.markReady();
    this.finish?.();
  }

  async close(): Promise<void> {}
}
