/** Runs one step's `process` on plain values and records what it emitted, dropped and failed. */
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { ComponentContext, Step, StepOutput } from '../../../src/engine/component.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';

export function context(name: string): ComponentContext {
  return { name, logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' };
}

export function recordsOf(values: unknown[], meta: Record<string, unknown>[] = []): StreamRecord[] {
  const ack = new Ack(() => {});
  ack.retain(values.length);
  return values.map((value, i) => ({
    key: `k${i}`,
    value,
    time: 0,
    headers: {},
    meta: meta[i] ?? {},
    position: { source: 's', partition: 's/0', offset: String(i) },
    ack,
  }));
}

export interface StepResult {
  emitted: StreamRecord[];
  ports: string[];
  dropped: StreamRecord[];
  failed: { record: StreamRecord; error: Error }[];
  /** The arrays handed to `emit`, to check whether the input array was passed through as is. */
  emittedArrays: StreamRecord[][];
}

export async function runStep(step: Step, records: StreamRecord[]): Promise<StepResult> {
  const result: StepResult = { emitted: [], ports: [], dropped: [], failed: [], emittedArrays: [] };
  const out: StepOutput = {
    emit(recs, port = 'out') {
      result.emitted.push(...recs);
      result.ports.push(port);
      result.emittedArrays.push(recs);
    },
    drop(record) {
      record.ack.release();
      result.dropped.push(record);
    },
    fail(record, error) {
      result.failed.push({ record, error });
    },
  };
  await step.process({ partition: 's/0', records }, out);
  return result;
}
