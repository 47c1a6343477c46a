/**
 * Micro-benchmark of the employee pipeline's expressions: nanoseconds per evaluation with the
 * reference JSONata interpreter and with the compiled closures (expression-compiler.ts), both
 * through evaluateRecords over batches of records, as steps and sinks call them.
 *
 *   npx tsx runner/bench/expression.bench.ts [records=100000] [batch=500]
 */
import jsonata from 'jsonata';
import { Ack } from '../src/engine/ack.ts';
import { TIME_FUNCTIONS, compileExpression, evaluateRecords, type Expression } from '../src/engine/expression.ts';
import type { StreamRecord } from '../src/engine/record.ts';

const total = Number(process.argv[2] ?? 100_000);
const batchSize = Number(process.argv[3] ?? 500);

/** Where each expression is in pipelines/employee-activity.yaml. */
const EXPRESSIONS: [string, string][] = [
  ['steps.inserts.filter', '$meta.op = "c"'],
  ['steps.enriched.set.activity_hour', '$hour(activity_timestamp)'],
  ['steps.enriched.set.activity_date', '$date(activity_timestamp)'],
  [
    'steps.enriched.set.session_duration_category',
    '$type(duration_seconds) != "number" ? null\n  : duration_seconds < 30 ? "short" : duration_seconds < 300 ? "medium" : "long"',
  ],
  ['steps.enriched.set.is_business_hours', 'activity_hour >= 9 and activity_hour <= 17'],
  ['sinks.*.kafka.key', '$string(employee_id)'],
  ['steps.hourly.window.time', 'activity_timestamp'],
];

const TYPES = ['page_view', 'click', 'download', 'login', 'logout'];
const ack = new Ack(() => {});

function record(i: number): StreamRecord {
  const ts = Date.UTC(2024, 0, 15, 6, 0, 0) + i * 1_000;
  return {
    key: { id: i },
    value: {
      id: i,
      employee_id: 1 + (i % 50),
      activity_type: TYPES[i % TYPES.length],
      activity_timestamp: new Date(ts).toISOString(),
      duration_seconds: i % 17 === 0 ? null : (i * 37) % 600,
      ip_address: `10.0.${i % 256}.${(i * 7) % 256}`,
      page_url: `/app/page/${i % 100}`,
      activity_hour: new Date(ts).getUTCHours(),
    },
    headers: {},
    meta: { op: i % 10 === 0 ? 'u' : 'c', ts_ms: ts, source: { table: 'employee_activities' } },
    time: ts,
    position: { source: 'activities', partition: 'activities/0', offset: String(i) },
    ack,
  };
}

/** The interpreter alone, as compileExpression returned it before it compiled anything. */
function interpreted(source: string): Expression {
  const e = jsonata(source);
  for (const [name, { fn, signature }] of Object.entries(TIME_FUNCTIONS)) e.registerFunction(name, fn, signature);
  return { source, isPath: false, evaluate: (input, bindings) => e.evaluate(input, bindings) };
}

const batches: StreamRecord[][] = [];
for (let i = 0; i < total; i += batchSize) {
  batches.push(Array.from({ length: Math.min(batchSize, total - i) }, (_, k) => record(i + k)));
}

async function nsPerEvaluation(expr: Expression): Promise<number> {
  const run = async () => {
    for (const batch of batches) {
      const r = evaluateRecords(expr, batch);
      if (r instanceof Promise) await r;
    }
  };
  await run(); // warm-up
  const t0 = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - t0) / total;
}

const rows: string[] = [];
for (const [where, source] of EXPRESSIONS) {
  const compiled = compileExpression(source);
  if (!compiled.isCompiled) throw new Error(`${where} did not compile: ${source}`);
  const ref = await nsPerEvaluation(interpreted(source));
  const fast = await nsPerEvaluation(compiled);
  rows.push(`${ref.toFixed(0).padStart(9)} ${fast.toFixed(0).padStart(9)} ${(ref / fast).toFixed(1).padStart(7)}x  ${where}: ${source.replace(/\s+/g, ' ')}`);
}
process.stdout.write(
  [
    `employee pipeline expressions, ${total.toLocaleString('en')} records in batches of ${batchSize}, ns per evaluation (evaluateRecords):`,
    `reference  compiled  speedup`,
    ...rows,
  ].join('\n') + '\n',
);
