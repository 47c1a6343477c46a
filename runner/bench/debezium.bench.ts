/**
 * Debezium decoding cost: N generator events (Debezium 2.7 schema envelopes, ~3.6 KB each, with a
 * ts_ns beyond 2^53) decoded by the `debezium` format, from UTF-8 bytes as the file and Kafka
 * sources hand them over, and from structured objects as the generator does. Native JSON.parse of
 * the same bytes is printed as the yardstick (it rounds ts_ns and decodes nothing).
 *
 *   npx tsx runner/bench/debezium.bench.ts [events=100000] [rounds=3]
 */
import { debeziumFormat } from '../src/components/formats/debezium.ts';
import { EMPLOYEE_ACTIVITY_DEFAULTS, EmployeeActivitySimulator } from '../src/components/sources/generator/employee-activity.ts';
import { ManualClock } from '../src/engine/clock.ts';
import { stringifyJson } from '../src/engine/json.ts';
import { silentLogger } from '../src/engine/logger.ts';
import { Metrics } from '../src/engine/metrics.ts';
import type { RawMessage } from '../src/engine/record.ts';

const EVENTS = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const position = { source: 'bench', partition: 'bench/0', offset: '0' };

const simulator = new EmployeeActivitySimulator({ ...EMPLOYEE_ACTIVITY_DEFAULTS, seed: 1, startMs: Date.UTC(2025, 0, 6, 8) });
const asBytes: RawMessage[] = [];
const asObjects: RawMessage[] = [];
let bytes = 0;
for (let i = 0; i < EVENTS; i++) {
  const e = simulator.next();
  const value = e.value === null ? null : Buffer.from(stringifyJson(e.value));
  bytes += value?.length ?? 0;
  asBytes.push({ key: Buffer.from(stringifyJson(e.key)), value, headers: {}, timestamp: e.timestampMs, position });
  asObjects.push({ key: e.key, value: e.value, headers: {}, timestamp: e.timestampMs, position });
}

const ctx = { name: 'bench', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' as const };

function measure(label: string, run: () => void): number {
  const t0 = process.hrtime.bigint();
  run();
  const ns = Number(process.hrtime.bigint() - t0) / EVENTS;
  console.log(`${label.padEnd(44)} ${ns.toFixed(0).padStart(7)} ns/event  ${(1e9 / ns).toFixed(0).padStart(9)} events/s`);
  return ns;
}

console.log(`${EVENTS} events, ${(bytes / EVENTS).toFixed(0)} bytes per value on average`);
const best: Record<string, number> = {};
for (let round = 1; round <= ROUNDS; round++) {
  console.log(`round ${round}`);
  const note = (label: string, ns: number) => (best[label] = Math.min(best[label] ?? Infinity, ns));
  const fromBytes = debeziumFormat.create({}, ctx);
  note('debezium format, key + value from bytes', measure('debezium format, key + value from bytes', () => {
    for (const m of asBytes) fromBytes.decode(m);
  }));
  const fromObjects = debeziumFormat.create({}, ctx);
  note('debezium format, structured (generator)', measure('debezium format, structured (generator)', () => {
    for (const m of asObjects) fromObjects.decode(m);
  }));
  note('JSON.parse of the value bytes (lossy, yardstick)', measure('JSON.parse of the value bytes (lossy, yardstick)', () => {
    for (const m of asBytes) if (m.value) JSON.parse((m.value as Buffer).toString('utf8'));
  }));
}
console.log('best of rounds:');
for (const [label, ns] of Object.entries(best)) console.log(`  ${label.padEnd(44)} ${ns.toFixed(0).padStart(7)} ns/event`);
