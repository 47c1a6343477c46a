/**
 * Window step throughput: 1,000,000 records, 1h tumbling windows, 50 groups, the employee
 * pipeline's aggregates (count, sum, average), batches of 500 from 4 partitions, records already
 * decoded. Prints records per second of the step alone (no parsing, no sinks).
 *
 *   npx tsx runner/bench/window.bench.ts [records] [batch]
 */
import { windowStep } from '../src/components/steps/window.ts';
import { Ack } from '../src/engine/ack.ts';
import { ManualClock } from '../src/engine/clock.ts';
import type { StepOutput } from '../src/engine/component.ts';
import { silentLogger } from '../src/engine/logger.ts';
import { Metrics } from '../src/engine/metrics.ts';
import type { StreamRecord } from '../src/engine/record.ts';

const TOTAL = Number(process.argv[2] ?? 1_000_000);
const BATCH = Number(process.argv[3] ?? 500);
const GROUPS = 50;
const PARTITIONS = 4;
const START = Date.parse('2025-06-01T00:00:00Z');
/** Events 360 ms apart: 1M records span 100 hours, so about 100 windows open and close. */
const STEP_MS = 360;

/** Batch `i / BATCH`, built just before use so the heap holds one batch, as a real run does. */
function makeBatch(i: number): { partition: string; records: StreamRecord[] } {
  const partition = `bench/${(i / BATCH) % PARTITIONS}`;
  const ack = new Ack(() => {});
  const n = Math.min(BATCH, TOTAL - i);
  ack.retain(n);
  ack.seal();
  const records: StreamRecord[] = [];
  for (let j = 0; j < n; j++) {
    const k = i + j;
    records.push({
      key: null,
      value: {
        employee_id: k % GROUPS,
        activity_type: 'page_view',
        activity_timestamp: START + k * STEP_MS,
        duration_seconds: k % 7 === 0 ? null : (k * 13) % 600,
      },
      time: 0,
      headers: {},
      meta: {},
      position: { source: 'bench', partition, offset: String(k) },
      ack,
    });
  }
  return { partition, records };
}

const output = { windows: 0, late: 0, failed: 0 };
const out: StepOutput = {
  emit(records, port) {
    if (port === 'late') output.late += records.length;
    else output.windows += records.length;
    for (const r of records) r.ack.release(); // the sink acknowledges at once
  },
  drop(r) {
    r.ack.release();
  },
  fail(r) {
    output.failed++;
    r.ack.release();
  },
};

const step = windowStep.create(
  {
    window: { tumbling: '1h', time: 'activity_timestamp', lateness: '10m' },
    group_by: ['employee_id', 'activity_type'],
    aggregate: { activity_count: '$count()', total_duration: '$sum(duration_seconds)', avg_duration: '$average(duration_seconds)' },
  },
  { name: 'hourly', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' },
);

// Only the step's own time counts, not building the input.
let nanos = 0n;
for (let i = 0; i < TOTAL; i += BATCH) {
  const b = makeBatch(i);
  const t0 = process.hrtime.bigint();
  const r = step.process(b, out);
  if (r) await r;
  nanos += process.hrtime.bigint() - t0;
}
const tEnd = process.hrtime.bigint();
await step.onEnd?.(out);
nanos += process.hrtime.bigint() - tEnd;
const seconds = Number(nanos) / 1e9;
console.log(
  `window step: ${TOTAL.toLocaleString('en-US')} records in ${seconds.toFixed(2)} s = ${Math.round(TOTAL / seconds).toLocaleString('en-US')} records/s ` +
    `(${((seconds * 1e9) / TOTAL).toFixed(0)} ns/record; ${output.windows} window results, ${output.late} late, ${output.failed} failed)`,
);
