/**
 * Micro-benchmark of the engine runtime alone: N prebuilt employee-activity records from an
 * in-memory source -> filter -> set (the employee pipeline's four fields) -> a sink that only
 * counts. No parsing, no I/O: what is left is the runtime's own cost plus reference JSONata.
 *
 *   npx tsx runner/bench/runtime.bench.ts [records=200000] [batch=500] [steps=jsonata|passthrough]
 *
 * `passthrough` swaps filter and set for steps that only forward their input (the filter still
 * drops the updates), which measures the runtime's own ceiling without JSONata.
 */
import { Ack } from '../src/engine/ack.ts';
import { systemClock } from '../src/engine/clock.ts';
import type { Format, OutboundMessage, Sink, Source, SourceOutput, Step } from '../src/engine/component.ts';
import type { Graph } from '../src/engine/graph.ts';
import { silentLogger } from '../src/engine/logger.ts';
import { Metrics } from '../src/engine/metrics.ts';
import type { RawMessage, StreamRecord } from '../src/engine/record.ts';
import { Runtime } from '../src/engine/runtime.ts';
import { filterStep } from '../src/components/steps/filter.ts';
import { setStep } from '../src/components/steps/set.ts';

const total = Number(process.argv[2] ?? 200_000);
const batchSize = Number(process.argv[3] ?? 500);
const mode = process.argv[4] ?? 'jsonata';
if (mode !== 'jsonata' && mode !== 'passthrough') throw new Error(`steps must be jsonata or passthrough, got ${mode}`);

const TYPES = ['page_view', 'click', 'download', 'login', 'logout'];

function message(i: number): RawMessage {
  const ts = Date.UTC(2024, 0, 15, 6, 0, 0) + i * 1_000;
  return {
    key: null,
    value: {
      activity_id: i,
      employee_id: 1 + (i % 50),
      activity_type: TYPES[i % TYPES.length],
      activity_timestamp: new Date(ts).toISOString(),
      duration_seconds: (i * 37) % 600,
      ip_address: `10.0.${i % 256}.${(i * 7) % 256}`,
      page_url: `/app/page/${i % 100}`,
    },
    headers: {},
    timestamp: ts,
    // One in ten is an update, which the filter drops, as in the employee pipeline.
    position: { source: 'activities', partition: 'activities/0', offset: String(i) },
  };
}

/** The value is already structured (as the generator and postgres-cdc hand it over). */
const passThrough: Format = {
  decode: (m) => ({ key: m.key, value: m.value, meta: { op: Number(m.position.offset) % 10 === 0 ? 'u' : 'c' }, time: m.timestamp }),
};

class PrebuiltSource implements Source {
  readonly bounded = true;
  completed = 0;
  constructor(private readonly batches: RawMessage[][]) {}
  async run(out: SourceOutput): Promise<void> {
    for (const messages of this.batches) {
      await out.emit({ partition: 'activities/0', messages, ack: new Ack(() => this.completed++) });
    }
  }
  async stop(): Promise<void> {}
  async close(): Promise<void> {}
}

class CountingSink implements Sink {
  count = 0;
  async open(): Promise<void> {}
  prepare(records: readonly StreamRecord[]): OutboundMessage[] {
    return records.map((r) => ({ key: (r.value as { employee_id: number }).employee_id, value: r.value }));
  }
  async write(messages: OutboundMessage[]): Promise<void> {
    this.count += messages.length;
  }
  async close(): Promise<void> {}
}

const batches: RawMessage[][] = [];
for (let i = 0; i < total; i += batchSize) {
  batches.push(Array.from({ length: Math.min(batchSize, total - i) }, (_, j) => message(i + j)));
}

/** Drops updates like the filter, without JSONata. */
const passInserts: Step = {
  process(batch, out) {
    const kept = batch.records.filter((r) => r.meta.op === 'c');
    for (const r of batch.records) if (r.meta.op !== 'c') out.drop(r, 'filtered');
    out.emit(kept);
  },
};
const passThrough1to1: Step = {
  process(batch, out) {
    out.emit(batch.records);
  },
};

const ctx = (name: string) => ({ name, logger: silentLogger, clock: systemClock, metrics: new Metrics(), mode: 'run' as const });
const source = new PrebuiltSource(batches);
const sink = new CountingSink();
const employeeFields = {
  activity_hour: '$hour(activity_timestamp)',
  activity_date: '$date(activity_timestamp)',
  session_duration_category: 'duration_seconds < 30 ? "short" : duration_seconds < 300 ? "medium" : "long"',
  is_business_hours: 'activity_hour >= 9 and activity_hour <= 17',
};
const insertsStep = mode === 'passthrough' ? passInserts : filterStep.create({ filter: '$meta.op = "c"' }, ctx('inserts'));
const enrichedStep = mode === 'passthrough' ? passThrough1to1 : setStep.create({ set: employeeFields }, ctx('enriched'));
const graph: Graph = {
  name: 'runtime-bench',
  nodes: [
    { role: 'source', name: 'activities', source, format: passThrough },
    { role: 'step', name: 'inserts', step: insertsStep, inputs: [{ node: 'activities', port: 'out' }] },
    { role: 'step', name: 'enriched', step: enrichedStep, inputs: [{ node: 'inserts', port: 'out' }] },
    { role: 'sink', name: 'processed', sink, inputs: [{ node: 'enriched', port: 'out' }] },
  ],
};

const runtime = new Runtime(graph, { logger: silentLogger, metrics: new Metrics(), clock: systemClock, tickMs: 0 });
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const outcome = await runtime.run();
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
// CPU seconds of this process (user + system, GC included): other load on a shared machine skews wall time.
const cpuSeconds = (cpu.user + cpu.system) / 1e6;

if (sink.count !== Math.round(total * 0.9) || source.completed !== batches.length) {
  throw new Error(`wrong result: ${sink.count} written, ${source.completed}/${batches.length} batches acknowledged`);
}
const perRecord = (nanos: number) => (nanos / total).toFixed(0).padStart(6);
const rate = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `runtime bench (${mode}): ${total} records in batches of ${batchSize}: ${seconds.toFixed(2)} s wall, ${rate(total / seconds)} records/s; ` +
    `${cpuSeconds.toFixed(2)} s CPU, ${rate(total / cpuSeconds)} records per CPU-second`,
);
for (const [name, node] of Object.entries(outcome.stats.nodes)) {
  console.log(`  ${name.padEnd(12)} ${perRecord(node.nanos)} ns/input record  (${node.role}, in ${node.recordsIn}, out ${node.recordsOut})`);
}
