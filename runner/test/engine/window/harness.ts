/**
 * Test harness for the window operator: a StepOutput that records what it gets per port, source
 * batches with observable Acks, and a builder for WindowAggregate options.
 */
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { StepOutput } from '../../../src/engine/component.ts';
import { compileExpression } from '../../../src/engine/expression.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { Batch, StreamRecord } from '../../../src/engine/record.ts';
import { planAggregate } from '../../../src/engine/window/aggregates.ts';
import type { WindowShape } from '../../../src/engine/window/assign.ts';
import { WindowAggregate, type WindowAggregateOptions } from '../../../src/engine/window/window-aggregate.ts';

export const MIN = 60_000;
export const HOUR = 3_600_000;
export const T0 = Date.parse('2025-06-01T00:00:00Z');

/** A StepOutput that keeps everything, and acknowledges like a sink when asked. */
export class RecordingOutput implements StepOutput {
  readonly emitted: { port: string; records: StreamRecord[] }[] = [];
  readonly failed: { record: StreamRecord; error: Error }[] = [];
  readonly dropped: StreamRecord[] = [];

  emit(records: StreamRecord[], port = 'out'): void {
    this.emitted.push({ port, records });
  }
  drop(record: StreamRecord): void {
    this.dropped.push(record);
    record.ack.release();
  }
  fail(record: StreamRecord, error: Error): void {
    this.failed.push({ record, error });
    record.ack.release();
  }

  records(port = 'out'): StreamRecord[] {
    return this.emitted.filter((e) => e.port === port).flatMap((e) => e.records);
  }
  values(port = 'out'): Record<string, unknown>[] {
    return this.records(port).map((r) => r.value as Record<string, unknown>);
  }
  /** What a sink does once written: releases every output's reference. */
  acknowledgeAll(port = 'out'): void {
    for (const r of this.records(port)) r.ack.release();
  }
  clear(): void {
    this.emitted.length = 0;
    this.failed.length = 0;
    this.dropped.length = 0;
  }
}

/** One source batch: an Ack with one reference per record, sealed, as the engine prepares it. */
export class SourceBatch {
  completed = false;
  readonly ack = new Ack(() => {
    this.completed = true;
  });
  readonly batch: Batch;

  constructor(partition: string, values: unknown[], offset = 0) {
    this.ack.retain(values.length);
    this.ack.seal();
    this.batch = {
      partition,
      records: values.map((value, i) => ({
        key: null,
        value,
        time: 0,
        headers: {},
        meta: {},
        position: { source: 'src', partition, offset: String(offset + i) },
        ack: this.ack,
      })),
    };
  }
}

export interface Setup {
  shape: WindowShape;
  time?: string;
  lateness?: number;
  idle?: number;
  emit?: 'final' | 'update';
  groupBy?: Record<string, string>;
  aggregate?: Record<string, string>;
  maxRows?: number;
}

export function makeWindow(setup: Setup): { op: WindowAggregate; clock: ManualClock; metrics: Metrics; options: WindowAggregateOptions } {
  const clock = new ManualClock(1_000_000);
  const metrics = new Metrics();
  const options: WindowAggregateOptions = {
    node: 'w',
    shape: setup.shape,
    time: compileExpression(setup.time ?? 't'),
    lateness: setup.lateness ?? 0,
    idle: setup.idle,
    emit: setup.emit ?? 'final',
    groupBy: Object.entries(setup.groupBy ?? { g: 'g' }).map(([name, src]) => ({ name, expression: compileExpression(src) })),
    aggregates: Object.entries(setup.aggregate ?? { n: '$count()' }).map(([name, src]) => planAggregate(name, src)),
    ...(setup.maxRows !== undefined ? { maxRows: setup.maxRows } : {}),
    clock,
    metrics,
  };
  return { op: new WindowAggregate(options), clock, metrics, options };
}

/** Feeds a batch (awaiting the operator if it is async) and returns the source batch. */
export async function feed(op: WindowAggregate, out: StepOutput, partition: string, values: unknown[], offset = 0): Promise<SourceBatch> {
  const sb = new SourceBatch(partition, values, offset);
  await op.process(sb.batch, out);
  return sb;
}

export const iso = (ms: number) => new Date(ms).toISOString();
