/**
 * Writes generator events as JSON Lines: one Kafka record value per line, exactly as Debezium 2.7
 * puts it on the topic (tombstones as `null`). For the benchmark and the Kafka tests.
 *
 *   tsx scripts/generate-debezium-events.ts --count 1000000 --out bench-data/events.jsonl --seed 1
 *
 * Options: --count N (default 100000), --out PATH (required), --seed S (default 1),
 * --start-time ISO (default 2025-01-06T08:00:00Z), --employees N (default 50),
 * --with-key (write {"key":...,"value":...} per line instead of the value alone).
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EMPLOYEE_ACTIVITY_DEFAULTS, EmployeeActivitySimulator } from '../runner/src/components/sources/generator/employee-activity.ts';
import { stringifyJson } from '../runner/src/engine/json.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    out: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'start-time': { type: 'string', default: '2025-01-06T08:00:00Z' },
    employees: { type: 'string', default: String(EMPLOYEE_ACTIVITY_DEFAULTS.employees) },
    'with-key': { type: 'boolean', default: false },
  },
});

function positiveInteger(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${text}`);
  return n;
}

async function main(): Promise<void> {
  if (!values.out) throw new Error('--out PATH is required');
  const count = positiveInteger('count', values.count);
  const startMs = Date.parse(values['start-time'] ?? '');
  if (Number.isNaN(startMs)) throw new Error(`--start-time must be an ISO 8601 timestamp, got ${values['start-time']}`);
  const simulator = new EmployeeActivitySimulator({
    ...EMPLOYEE_ACTIVITY_DEFAULTS,
    seed: positiveInteger('seed', values.seed),
    startMs,
    employees: positiveInteger('employees', values.employees),
  });
  await mkdir(path.dirname(values.out), { recursive: true });
  const out = createWriteStream(values.out);
  const started = Date.now();
  // Schemas repeat: serialise each once, then only the payloads (same text as stringifyJson of the whole).
  const schemaTexts = new WeakMap<object, string>();
  const envelopeText = (envelope: { schema: object; payload: unknown } | null): string => {
    if (envelope === null) return 'null';
    let schema = schemaTexts.get(envelope.schema);
    if (schema === undefined) schemaTexts.set(envelope.schema, (schema = stringifyJson(envelope.schema)));
    return `{"schema":${schema},"payload":${stringifyJson(envelope.payload)}}`;
  };
  let chunk = '';
  for (let i = 0; i < count; i++) {
    const event = simulator.next();
    const value = envelopeText(event.value);
    chunk += `${values['with-key'] ? `{"key":${envelopeText(event.key)},"value":${value}}` : value}\n`;
    if (chunk.length > 1 << 20 || i === count - 1) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
      chunk = '';
    }
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  process.stderr.write(`wrote ${count} events to ${values.out} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`generate-debezium-events: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
