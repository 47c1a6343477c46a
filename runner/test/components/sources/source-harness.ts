import { ManualClock } from '../../../src/engine/clock.ts';
import type { ComponentContext, RawBatch, SourceOutput } from '../../../src/engine/component.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';

export function sourceContext(name: string, mode: 'run' | 'test' = 'test', now = 1_000): ComponentContext {
  return { name, logger: silentLogger, clock: new ManualClock(now), metrics: new Metrics(), mode };
}

/** A SourceOutput that records what a source hands over, in order, and can hold emits (backpressure). */
export class RecordingOutput implements SourceOutput {
  readonly batches: RawBatch[] = [];
  readonly events: string[] = [];
  /** When set, each emit waits for it: a pipeline that is not taking more. */
  gate: Promise<void> | undefined;

  async emit(batch: RawBatch): Promise<void> {
    this.batches.push(batch);
    this.events.push(`emit ${batch.partition} ${batch.messages.length}`);
    if (this.gate) await this.gate;
  }

  assign(partitions: string[]): void {
    this.events.push(`assign ${partitions.join(',')}`);
  }

  revoke(partitions: string[]): void {
    this.events.push(`revoke ${partitions.join(',')}`);
  }

  get messages() {
    return this.batches.flatMap((b) => b.messages);
  }
}
