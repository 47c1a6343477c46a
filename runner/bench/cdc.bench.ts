/**
 * Change capture throughput, rows/s from INSERT to the output topic: the native postgres-cdc source
 * (through the sluice runtime and the kafka sink, no Kafka Connect) against real Debezium 2.7.4 on
 * Kafka Connect 3.9.1, on the same rows in the same run.
 *
 *   npx tsx runner/bench/cdc.bench.ts                         # 50,000 rows, both capturing at once
 *   BENCH_ROWS=200000 npx tsx runner/bench/cdc.bench.ts
 *   BENCH_MODE=backlog npx tsx runner/bench/cdc.bench.ts      # rows first, then each drains alone
 *   BENCH_MODE=snapshot BENCH_ROWS=1000000 npx tsx runner/bench/cdc.bench.ts   # the native initial snapshot
 *   BENCH_MAX_IN_FLIGHT=4 BENCH_MODE=backlog npx tsx runner/bench/cdc.bench.ts  # the kafka sink's max_in_flight
 *   BENCH_SOURCE_BATCH=250 BENCH_SINK_BATCH=500 BENCH_MODE=backlog npx tsx runner/bench/cdc.bench.ts  # the source's and the sink's batch_size
 *   BENCH_SKIP_DEBEZIUM=1 BENCH_MODE=backlog npx tsx runner/bench/cdc.bench.ts   # the native source alone
 *
 * In backlog mode the native line also gives the CPU this process spent per row while the native
 * source drained (the pipeline and the reader that watches the output topic): steadier than the
 * rate on a shared machine.
 *
 * concurrent (default): both are caught up and streaming; the rows are inserted as fast as
 * PostgreSQL takes them; each figure is rows / (last message on its topic - first INSERT). Both
 * share the machine's cores with PostgreSQL, Kafka and each other.
 * backlog: the rows are inserted while nothing reads; then the native source, and after it
 * Debezium, each read the whole backlog alone: rows / (last message - reader start).
 * snapshot: the rows are in the table before any slot exists; the native source with
 * `snapshot: initial` creates its slot and emits every row (op `r`): seconds and rows/s until the
 * last row is on the topic. (Debezium's snapshot is not measured here.)
 *
 * Needs wal_level=logical (scripts/postgres-setup.sh). Uses KAFKA_BROKERS, or starts Kafka with
 * scripts/kafka.sh; starts Kafka Connect with scripts/connect.sh. Stops what it started and drops
 * the slots, publications and schema it made.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { postgresCdcSource } from '../src/components/sources/postgres-cdc.ts';
import { kafkaSink } from '../src/components/sinks/kafka.ts';
import { systemClock } from '../src/engine/clock.ts';
import type { ComponentContext, Format } from '../src/engine/component.ts';
import type { Graph } from '../src/engine/graph.ts';
import { createLogger, silentLogger } from '../src/engine/logger.ts';
import { Metrics } from '../src/engine/metrics.ts';
import { Runtime } from '../src/engine/runtime.ts';
import { createAdmin, type KafkaAdmin } from '../src/io/kafka/client.ts';
import { parseBrokers } from '../src/io/kafka/connection.ts';
import { generateActivity } from '../../scripts/activity-generator.ts';
import {
  createEmployeeSchema,
  deleteConnector,
  dropCapture,
  localConnector,
  registerConnector,
  repo,
  startConnect,
  stopConnect,
  type ConnectWorker,
} from '../test/integration/debezium-connect.ts';

const benchLogger = process.env.BENCH_LOG ? createLogger(process.env.BENCH_LOG) : silentLogger;
const rows = Number(process.env.BENCH_ROWS ?? 50_000);
/** A positive integer from the environment, or undefined (the component's default); anything else stops the bench. */
function envNumber(name: string): number | undefined {
  const text = process.env[name];
  if (!text) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(text)}`);
  return n;
}
/** Optional component settings: the kafka sink's max_in_flight and batch_size, the source's batch_size. */
const sinkOptions = { max_in_flight: envNumber('BENCH_MAX_IN_FLIGHT'), batch_size: envNumber('BENCH_SINK_BATCH') };
const sourceBatch = envNumber('BENCH_SOURCE_BATCH');
/** BENCH_SKIP_DEBEZIUM=1 (backlog mode): the native source only, for quick comparisons of sluice's own code. */
const skipDebezium = process.env.BENCH_SKIP_DEBEZIUM === '1';
const mode = process.env.BENCH_MODE === 'backlog' || process.env.BENCH_MODE === 'snapshot' ? process.env.BENCH_MODE : 'concurrent';
const run = promisify(execFile);
const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const id = `${process.pid}`;
const schema = `bench_${id}`;
const prefix = `bench-${id}`;
const table = `${schema}.employee_activities`;
const names = {
  connector: `sluice-bench-${id}`,
  native: { slot: `bench_native_slot_${id}`, publication: `bench_native_pub_${id}`, topic: `bench-native-${id}` },
  debezium: { slot: `bench_dbz_slot_${id}`, publication: `bench_dbz_pub_${id}`, topic: `${prefix}.${schema}.employee_activities` },
};

/** Keeps the envelope as the source made it, so the kafka sink writes it as Debezium's JSON. */
const envelopeAsIs: Format = { decode: (m) => ({ key: m.key, value: m.value, meta: {} }) };

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function startKafka(): Promise<{ brokers: string; startedHere: boolean }> {
  if (process.env.KAFKA_BROKERS) return { brokers: process.env.KAFKA_BROKERS, startedHere: false };
  const { stdout } = await run('bash', [`${repo}/scripts/kafka.sh`, 'start'], { cwd: repo, timeout: 600_000 });
  const [state, brokers] = stdout.trim().split(/\s+/);
  return { brokers: brokers!, startedHere: state === 'started' };
}

async function messagesOn(admin: KafkaAdmin, topic: string): Promise<number> {
  try {
    let n = 0;
    for (const offset of (await admin.endOffsets(topic)).values()) n += Number(offset);
    return n;
  } catch {
    return 0; // not created yet
  }
}

/** Set when a reader failed: waiting for its topic is pointless then. */
let failure: Error | undefined;

/** Polls a topic until it holds `count` messages; returns when the first and the last arrived (ms). */
async function arrival(admin: KafkaAdmin, topic: string, count: number, timeoutMs = 300_000): Promise<{ first: number; last: number }> {
  const deadline = Date.now() + timeoutMs;
  let first: number | undefined;
  for (;;) {
    if (failure) throw failure;
    const n = await messagesOn(admin, topic);
    if (n > 0) first ??= Date.now();
    if (n >= count) return { first: first!, last: Date.now() };
    if (Date.now() > deadline) throw new Error(`${topic} reached only ${n} of ${count} messages`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function nativePipeline(brokers: string, snapshot: 'initial' | 'never' = 'never'): { runtime: Runtime; done: Promise<unknown> } {
  const metrics = new Metrics();
  const ctx = (name: string): ComponentContext => ({ name, logger: benchLogger, clock: systemClock, metrics, mode: "run" });
  const graph: Graph = {
    name: 'cdc-bench-native',
    nodes: [
      {
        role: 'source',
        name: 'activities',
        source: postgresCdcSource.create(
          { ...conn, slot: names.native.slot, publication: names.native.publication, tables: [table], topic_prefix: prefix, snapshot, ...(sourceBatch ? { batch_size: sourceBatch } : {}) },
          ctx('activities'),
        ),
        format: envelopeAsIs,
      },
      {
        role: 'sink',
        name: 'topic',
        // Connect's producer does not compress by default either. (Uncompressed envelopes of about
        // 5 kB with their schema: the producer cuts its chunks under the brokers' 1 MB batch limit.)
        sink: kafkaSink.create({ brokers, topic: names.native.topic, compression: 'none', ...sinkOptions }, ctx('topic')),
        inputs: [{ node: 'activities', port: 'out' }],
      },
    ],
  };
  const runtime = new Runtime(graph, { logger: benchLogger, metrics, clock: systemClock });
  const done = runtime.run();
  done.catch((err: unknown) => {
    failure ??= err instanceof Error ? err : new Error(String(err));
  });
  return { runtime, done };
}

async function slotActive(db: pg.Client, slot: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active AND confirmed_flush_lsn IS NOT NULL', [slot])).rowCount === 1;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function insertRows(db: pg.Client): Promise<{ started: number; ended: number }> {
  const started = Date.now();
  await generateActivity(db, { rate: 0, count: rows, seed: 1, schema, batch: 1000 });
  return { started, ended: Date.now() };
}

function rate(n: number, ms: number): string {
  return `${Math.round(n / (ms / 1000)).toLocaleString('en-US').padStart(8)} rows/s`;
}

async function main(): Promise<void> {
  // Ctrl-C still cleans up (stops Connect, drops slots): it only makes the waits fail.
  process.once('SIGINT', () => {
    failure ??= new Error('interrupted');
  });
  process.once('SIGTERM', () => {
    failure ??= new Error('terminated');
  });
  const kafka = await startKafka();
  const admin = createAdmin({ brokers: parseBrokers(kafka.brokers), clientId: 'sluice-cdc-bench' }, silentLogger);
  await admin.connect();
  const db = new pg.Client(conn);
  // A lost connection surfaces in the next query (and the cleanup below still runs), not as a crash.
  db.on('error', (err: Error) => log(`cdc bench: database connection lost: ${err.message}`));
  await db.connect();
  let worker: ConnectWorker | undefined;
  let native: { runtime: Runtime; done: Promise<unknown> } | undefined;
  const connector = {
    ...localConnector({ name: names.connector, prefix, slot: names.debezium.slot, publication: names.debezium.publication, tables: [table] }),
  };
  connector.config['snapshot.mode'] = 'no_data';
  try {
    await createEmployeeSchema(db, schema);
    const results: [string, string][] = [];
    if (mode === 'snapshot') {
      log(`cdc bench: ${rows.toLocaleString('en-US')} rows, mode ${mode}, Kafka ${kafka.brokers}`);
      const insert = await insertRows(db);
      results.push(['INSERT (generator, 1000-row statements)', `${rate(rows, insert.ended - insert.started)}  (${((insert.ended - insert.started) / 1000).toFixed(1)} s)`]);
      const started = Date.now();
      native = nativePipeline(kafka.brokers, 'initial');
      const n = await arrival(admin, names.native.topic, rows, 1_800_000);
      results.push(['native postgres-cdc initial snapshot -> kafka', `${rate(rows, n.last - started)}  (${((n.last - started) / 1000).toFixed(1)} s from start to the last row; first after ${n.first - started} ms)`]);
    } else {
      worker = await startConnect(kafka.brokers);
      log(`cdc bench: ${rows.toLocaleString('en-US')} rows, mode ${mode}, Kafka ${kafka.brokers}, Connect ${worker.url}`);
      if (mode === 'concurrent') {
        native = nativePipeline(kafka.brokers);
        await registerConnector(worker, connector);
        await waitUntil('both slots streaming', async () => (await slotActive(db, names.native.slot)) && (await slotActive(db, names.debezium.slot)));
        const nativeArrival = arrival(admin, names.native.topic, rows);
        const debeziumArrival = arrival(admin, names.debezium.topic, rows);
        const insert = await insertRows(db);
        results.push(['INSERT (generator, 1000-row statements)', `${rate(rows, insert.ended - insert.started)}  (${((insert.ended - insert.started) / 1000).toFixed(1)} s)`]);
        const [n, d] = await Promise.all([nativeArrival, debeziumArrival]);
        results.push(['native postgres-cdc -> kafka sink', `${rate(rows, n.last - insert.started)}  (last row ${((n.last - insert.ended) / 1000).toFixed(1)} s after the last INSERT)`]);
        results.push(['Debezium 2.7.4 on Connect 3.9.1', `${rate(rows, d.last - insert.started)}  (last row ${((d.last - insert.ended) / 1000).toFixed(1)} s after the last INSERT)`]);
      } else {
        // Slots and publications first, so both see every row; then the rows; then each reader alone.
        for (const p of [names.native, names.debezium]) {
          await db.query(`CREATE PUBLICATION "${p.publication}" FOR TABLE "${schema}".employee_activities`);
          await db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [p.slot]);
        }
        const insert = await insertRows(db);
        results.push(['INSERT (generator, 1000-row statements)', `${rate(rows, insert.ended - insert.started)}  (${((insert.ended - insert.started) / 1000).toFixed(1)} s)`]);
        let started = Date.now();
        const cpu0 = process.cpuUsage();
        native = nativePipeline(kafka.brokers);
        const n = await arrival(admin, names.native.topic, rows);
        const cpu1 = process.cpuUsage(cpu0);
        results.push(['native postgres-cdc -> kafka sink (backlog)', `${rate(rows, n.last - started)}  (first row after ${n.first - started} ms); this process's CPU ${((cpu1.user + cpu1.system) / rows).toFixed(1)} µs per row`]);
        await native.runtime.stop('bench');
        await native.done.catch(() => {});
        native = undefined;
        if (!skipDebezium) {
          started = Date.now();
          await registerConnector(worker, connector);
          const d = await arrival(admin, names.debezium.topic, rows);
          results.push(['Debezium 2.7.4 on Connect 3.9.1 (backlog)', `${rate(rows, d.last - started)}  (first row after ${d.first - started} ms, incl. task start)`]);
        }
      }
    }
    process.stdout.write(`\nCDC throughput, ${rows.toLocaleString('en-US')} rows of employee_activities, INSERT -> output topic (${mode})\n`);
    for (const [label, figure] of results) process.stdout.write(`  ${label.padEnd(44)} ${figure}\n`);
    process.stdout.write(`  (${(await import('node:os')).cpus().length} cores shared by PostgreSQL, Kafka, Connect and sluice)\n`);
  } finally {
    if (native) {
      await native.runtime.stop('bench');
      await native.done.catch(() => {});
    }
    if (worker) {
      await deleteConnector(worker, names.connector).catch(() => {});
      await stopConnect(worker);
    }
    await dropCapture(db, {
      slots: [names.native.slot, names.debezium.slot],
      publications: [names.native.publication, names.debezium.publication],
      schema,
    });
    await db.end();
    await admin.deleteTopics([names.native.topic, names.debezium.topic]).catch(() => {});
    await admin.close();
    if (kafka.startedHere) await run('bash', [`${repo}/scripts/kafka.sh`, 'stop'], { cwd: repo, timeout: 60_000 });
  }
}

await main().catch((err: unknown) => {
  log(`cdc bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
