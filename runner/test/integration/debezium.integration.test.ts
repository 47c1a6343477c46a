/**
 * Real Debezium 2.7.4 (Kafka Connect, scripts/connect.sh) against the local PostgreSQL and the test
 * broker, next to the native postgres-cdc source on the same tables:
 *   1. the same rows through both give the same envelopes, field by field (only the source
 *      metadata that must differ may differ);
 *   2. pipelines/employee-activity.yaml, unchanged but for topic names, turns Debezium's topic into
 *      the expected enriched activity and hourly summaries;
 *   3. the same pipeline with one override (sources.activities -> postgres-cdc, summaries -> the
 *      postgres sink) produces the same kind of results with no Kafka Connect at all.
 * Needs wal_level=logical (scripts/postgres-setup.sh) and KAFKA_BROKERS (the integration setup).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/engine/clock.ts';
import type { RawBatch, Source, SourceOutput } from '../../src/engine/component.ts';
import { parseJson } from '../../src/engine/json.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import type { RawMessage } from '../../src/engine/record.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { postgresCdcSource } from '../../src/components/sources/postgres-cdc.ts';
import type { FetchedMessage } from '../../src/io/kafka/client.ts';
import { instantiate } from '../../src/plan/instantiate.ts';
import { loadPipeline } from '../../src/plan/load-pipeline.ts';
import type { SetOverride } from '../../src/spec/load.ts';
import { testBrokers, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import { readTopic } from './kafka-harness.ts';
import type { ConnectWorker } from './debezium-connect.ts';
import { createEmployeeSchema, deleteConnector, dropCapture, localConnector, registerConnector, repo, startConnect, stopConnect } from './debezium-connect.ts';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const id = uniqueName('r').slice(2);
const schema = `dbz_${id}`;
const prefix = `dbz-${id}`;
const names = {
  connector: `sluice-test-${id}`,
  debeziumSlot: `dbz_slot_${id}`,
  debeziumPublication: `dbz_pub_${id}`,
  nativeSlot: `native_slot_${id}`,
  nativePublication: `native_pub_${id}`,
  pipelineSlot: `pipe_slot_${id}`,
  pipelinePublication: `pipe_pub_${id}`,
};
const tables = [`${schema}.employees`, `${schema}.employee_activities`, `${schema}.documents`];
const topic = (table: string) => `${prefix}.${schema}.${table}`;

let admin: pg.Client;
let worker: ConnectWorker | undefined;
let native: Source | undefined;
let nativeDone: Promise<void> | undefined;
const nativeMessages: RawMessage[] = [];

/** The activity rows the suite inserts: the last one, an hour later, moves the watermark past 10:00-11:00. */
const activities = [
  { employee_id: 1, activity_type: 'login', page_url: '/dashboard', duration_seconds: 0, ip_address: '192.168.1.100', user_agent: 'Mozilla/5.0', activity_timestamp: '2025-01-02 10:05:00' },
  { employee_id: 1, activity_type: 'page_view', page_url: '/dashboard', duration_seconds: 45, ip_address: '192.168.1.100', user_agent: 'Mozilla/5.0', activity_timestamp: '2025-01-02 10:20:00.25' },
  { employee_id: 2, activity_type: 'page_view', page_url: '/reports', duration_seconds: 400, ip_address: '10.0.0.7', user_agent: null, activity_timestamp: '2025-01-02 10:40:00' },
  { employee_id: 1, activity_type: 'page_view', page_url: '/wiki', duration_seconds: 20, ip_address: '192.168.1.100', user_agent: 'Mozilla/5.0', activity_timestamp: '2025-01-02 10:55:59.999999' },
  { employee_id: 3, activity_type: 'download', page_url: '/files/x.pdf', duration_seconds: null, ip_address: null, user_agent: null, activity_timestamp: '2025-01-02 10:30:00' },
];
const pusher = { employee_id: 4, activity_type: 'logout', page_url: '/', duration_seconds: 5, ip_address: '10.0.0.9', user_agent: 'curl/8', activity_timestamp: '2025-01-02 11:30:00' };
type Activity = typeof pusher | (typeof activities)[number];

async function insertActivities(rows: readonly Activity[]): Promise<void> {
  const cols = Object.keys(rows[0]!);
  const values: unknown[] = [];
  const tuples = rows.map((r) => `(${cols.map((c) => `$${values.push((r as Record<string, unknown>)[c])}`).join(', ')})`);
  await admin.query(`INSERT INTO "${schema}".employee_activities (${cols.join(', ')}) VALUES ${tuples.join(', ')}`, values);
}

function wireJson(b: Buffer | null): unknown {
  return b === null ? null : parseJson(b.toString('utf8'));
}

/** Paths (a.b.c) where two JSON-like values differ. */
function differences(a: unknown, b: unknown, path = ''): string[] {
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  const same = typeof a === 'bigint' || typeof b === 'bigint' ? String(a) === String(b) : Object.is(a, b);
  return same ? [] : [path];
}

/** What may differ between Debezium's event and the native one for the same change. */
function allowedDifference(path: string, snapshot: boolean): boolean {
  // When each made the event (envelope ts_*), and the first half of `sequence` (the last commit
  // before the event, which depends on where each reader started).
  if (['payload.ts_ms', 'payload.ts_us', 'payload.ts_ns', 'payload.source.sequence'].includes(path)) return true;
  // Snapshot rows come from two different snapshot transactions, taken at different times.
  return snapshot && ['payload.source.ts_ms', 'payload.source.ts_us', 'payload.source.ts_ns', 'payload.source.txId', 'payload.source.lsn'].includes(path);
}

function sequenceLsn(value: unknown): string | undefined {
  const seq = (value as { payload?: { source?: { sequence?: unknown } } } | null)?.payload?.source?.sequence;
  return typeof seq === 'string' ? (JSON.parse(seq) as (string | null)[])[1] ?? undefined : undefined;
}

beforeAll(async () => {
  admin = new pg.Client(conn);
  await admin.connect();
  const level = await admin.query('SHOW wal_level');
  if (level.rows[0].wal_level !== 'logical') throw new Error('wal_level must be logical: run scripts/postgres-setup.sh first');
  await createEmployeeSchema(admin, schema);
  // A large value stored out of line (TOAST): an update that leaves it alone does not send it.
  await admin.query(`CREATE TABLE "${schema}".documents (id int PRIMARY KEY, title text NOT NULL, body text)`);
  await admin.query(`ALTER TABLE "${schema}".documents ALTER COLUMN body SET STORAGE EXTERNAL`);

  // The native source first: it snapshots the seed employees, then streams.
  const out: SourceOutput = {
    async emit(batch: RawBatch) {
      batch.ack.retain(batch.messages.length);
      batch.ack.seal();
      nativeMessages.push(...batch.messages);
      batch.ack.release(batch.messages.length);
    },
    assign() {},
    revoke() {},
  };
  native = postgresCdcSource.create(
    { ...conn, slot: names.nativeSlot, publication: names.nativePublication, tables, topic_prefix: prefix, heartbeat: '1s' },
    { name: 'native', logger: silentLogger, clock: systemClock, metrics: new Metrics(), mode: 'run' },
  );
  nativeDone = native.run(out);
  nativeDone.catch(() => {});

  worker = await startConnect(testBrokers().join(','));
  await registerConnector(
    worker,
    localConnector({ name: names.connector, prefix, slot: names.debeziumSlot, publication: names.debeziumPublication, tables }),
  );
  await waitFor('native snapshot', () => nativeMessages.length === 10, 60_000);
  // The first run on a machine fetches Connect and the Debezium plugin from Maven Central.
}, 600_000);

afterAll(async () => {
  await native?.stop();
  await nativeDone?.catch(() => {});
  await native?.close();
  if (worker) {
    await deleteConnector(worker, names.connector);
    await stopConnect(worker);
  }
  if (admin) {
    await dropCapture(admin, {
      slots: [names.debeziumSlot, names.nativeSlot, names.pipelineSlot],
      publications: [names.debeziumPublication, names.nativePublication, names.pipelinePublication],
      schema,
    });
    await admin.end();
  }
});

describe('real Debezium and the native source', () => {
  let debeziumActivities: FetchedMessage[] = [];

  it('emit the same envelopes for the same rows, field by field', async () => {
    await insertActivities(activities);
    await admin.query(`UPDATE "${schema}".employee_activities SET duration_seconds = 50 WHERE id = 2`);
    await admin.query(`DELETE FROM "${schema}".employee_activities WHERE id = 5`);
    await admin.query(`UPDATE "${schema}".employees SET department = 'Platform' WHERE id = 2`);
    // A changed primary key: Debezium emits a delete, a tombstone and a create, with key headers.
    await admin.query(`UPDATE "${schema}".employees SET id = 100 WHERE id = 10`);
    await insertActivities([pusher]);
    await admin.query(`INSERT INTO "${schema}".documents VALUES (1, 'draft', repeat('lorem ipsum ', 1000))`);
    await admin.query(`UPDATE "${schema}".documents SET title = 'final' WHERE id = 1`);

    // Activities: 5 creates (one transaction), an update, a delete and its tombstone, a create.
    // Employees: 10 snapshot reads, an update, then delete + tombstone + create for the new key.
    debeziumActivities = await readTopic(topic('employee_activities'), (m) => m.length >= 9, 90_000);
    const debeziumEmployees = await readTopic(topic('employees'), (m) => m.length >= 14, 90_000);
    // Documents: a create, then an update whose unchanged TOASTed body Debezium shows as its placeholder.
    const debeziumDocuments = await readTopic(topic('documents'), (m) => m.length >= 2, 90_000);
    await waitFor('native changes', () => nativeMessages.length === 10 + 9 + 4 + 2, 30_000);

    const nativeOf = (table: string) => nativeMessages.filter((m) => m.meta?.topic === topic(table));
    const pairs: [string, FetchedMessage[], RawMessage[]][] = [
      ['employees', debeziumEmployees, nativeOf('employees')],
      ['employee_activities', debeziumActivities, nativeOf('employee_activities')],
      ['documents', debeziumDocuments, nativeOf('documents')],
    ];
    let compared = 0;
    for (const [table, fromDebezium, fromNative] of pairs) {
      expect(fromNative.length, `${table}: events from the native source`).toBe(fromDebezium.length);
      fromDebezium.forEach((d, i) => {
        const n = fromNative[i]!;
        const dKey = wireJson(d.key);
        const dValue = wireJson(d.value);
        expect(n.key, `${table}[${i}] key`).toEqual(dKey);
        expect(n.headers, `${table}[${i}] headers`).toEqual(d.headers);
        if (dValue === null) {
          expect(n.value, `${table}[${i}] tombstone`).toBeNull();
          return;
        }
        const snapshot = (dValue as { payload: { op: string } }).payload.op === 'r';
        const unexpected = differences(dValue, n.value).filter((p) => !allowedDifference(p, snapshot));
        expect(unexpected, `${table}[${i}] fields that differ`).toEqual([]);
        if (!snapshot) expect(sequenceLsn(n.value), `${table}[${i}] sequence lsn`).toBe(sequenceLsn(dValue));
        compared++;
      });
    }
    expect(compared).toBe(10 + 1 + 2 + 8 + 2);
    const updated = wireJson(debeziumDocuments[1]!.value) as { payload: { after: { body: string } } };
    expect(updated.payload.after.body).toBe('__debezium_unavailable_value');
  });

  it('run pipelines/employee-activity.yaml on Debezium\'s topic into enriched activity and hourly summaries', async () => {
    const out = { processed: uniqueName('processed'), summaries: uniqueName('summaries'), late: uniqueName('late'), dead: uniqueName('dead') };
    const sets: SetOverride[] = [
      { path: 'sources.activities.kafka.topic', value: topic('employee_activities') },
      { path: 'sources.activities.kafka.group', value: uniqueName('pipeline') },
      { path: 'sinks.processed.kafka.topic', value: out.processed },
      { path: 'sinks.summaries.kafka.topic', value: out.summaries },
      { path: 'sinks.late-activities.kafka.topic', value: out.late },
      { path: 'sinks.dead-letters.kafka.topic', value: out.dead },
    ];
    const runtime = await startPipeline(sets);
    try {
      const processed = await readTopic(out.processed, (m) => m.length >= 6, 60_000);
      const summaries = await readTopic(out.summaries, (m) => m.length >= 4, 60_000);
      checkProcessed(processed.map((m) => wireJson(m.value) as Record<string, unknown>), [...activities, pusher]);
      checkSummaries(summaries.map((m) => wireJson(m.value) as Record<string, unknown>), activities);
      expect(summaries.map((m) => m.key?.toString()).sort()).toEqual(['1', '1', '2', '3']);
    } finally {
      await runtime.stop('test done');
    }
  });

  it('run the same pipeline on the native source with one override, summaries into PostgreSQL', async () => {
    const out = { processed: uniqueName('processed'), late: uniqueName('late'), dead: uniqueName('dead') };
    const sets: SetOverride[] = [
      {
        path: 'sources.activities',
        value: {
          'postgres-cdc': {
            ...conn,
            slot: names.pipelineSlot,
            publication: names.pipelinePublication,
            tables: [`${schema}.employee_activities`],
            topic_prefix: prefix,
            snapshot: 'never',
          },
          format: 'debezium',
        },
      },
      { path: 'sinks.processed.kafka.topic', value: out.processed },
      {
        path: 'sinks.summaries',
        value: { from: 'hourly', postgres: { ...conn, table: `${schema}.employee_activity_summaries`, mode: 'upsert', key: ['employee_id', 'activity_type', 'window_start'] } },
      },
      { path: 'sinks.late-activities.kafka.topic', value: out.late },
      { path: 'sinks.dead-letters.kafka.topic', value: out.dead },
    ];
    const runtime = await startPipeline(sets);
    try {
      await waitFor('the pipeline\'s slot', async () => (await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [names.pipelineSlot])).rowCount === 1, 30_000);
      const later = activities.map((a) => ({ ...a, activity_timestamp: a.activity_timestamp.replace(' 10:', ' 12:') }));
      await insertActivities(later);
      await insertActivities([{ ...pusher, activity_timestamp: '2025-01-02 13:30:00' }]);
      const processed = await readTopic(out.processed, (m) => m.length >= 6, 60_000);
      checkProcessed(processed.map((m) => wireJson(m.value) as Record<string, unknown>), [...later, { ...pusher, activity_timestamp: '2025-01-02 13:30:00' }]);
      let rows: Record<string, unknown>[] = [];
      await waitFor('summaries in PostgreSQL', async () => {
        const res = await admin.query(
          `SELECT employee_id, activity_type, to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS window_start,
                  to_char(window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS window_end,
                  activity_count::int AS activity_count, total_duration::int AS total_duration, avg_duration
             FROM "${schema}".employee_activity_summaries ORDER BY employee_id, activity_type`,
        );
        rows = res.rows;
        return rows.length >= 4;
      }, 60_000);
      checkSummaries(rows, later);
    } finally {
      await runtime.stop('test done');
    }
  });
});

async function startPipeline(sets: SetOverride[]): Promise<Runtime> {
  const loaded = await loadPipeline(`${repo}/pipelines/employee-activity.yaml`, { env: { ...process.env, KAFKA_BROKERS: testBrokers().join(',') }, sets });
  if (!loaded.ok) throw new Error(`the spec did not load: ${JSON.stringify(loaded).slice(0, 2000)}`);
  const metrics = new Metrics();
  const graph = instantiate(loaded.plan, { mode: 'run', metrics });
  const runtime = new Runtime(graph, { logger: silentLogger, metrics, clock: systemClock });
  const done = runtime.run();
  done.catch(() => {});
  return runtime;
}

/** UTC wall clock of a `YYYY-MM-DD HH:MM:SS[.f]` timestamp as the pipeline sees it (epoch ms). */
function millis(ts: string): number {
  return Date.parse(`${ts.replace(' ', 'T')}Z`);
}

function checkProcessed(values: Record<string, unknown>[], inserted: readonly Activity[]): void {
  expect(values).toHaveLength(inserted.length);
  const byUrlAndTime = new Map(values.map((v) => [`${v.page_url}@${Date.parse(String(v.activity_timestamp))}`, v]));
  for (const a of inserted) {
    const v = byUrlAndTime.get(`${a.page_url}@${millis(a.activity_timestamp)}`);
    expect(v, `enriched ${a.page_url} at ${a.activity_timestamp}`).toBeDefined();
    const hour = new Date(millis(a.activity_timestamp)).getUTCHours();
    const d = a.duration_seconds;
    expect(v).toMatchObject({
      employee_id: a.employee_id,
      activity_type: a.activity_type,
      duration_seconds: d,
      ip_address: a.ip_address,
      activity_hour: hour,
      activity_date: a.activity_timestamp.slice(0, 10),
      session_duration_category: d === null ? null : d < 30 ? 'short' : d < 300 ? 'medium' : 'long',
      is_business_hours: hour >= 9 && hour <= 17,
    });
  }
}

/** Summaries of the first hour, computed here from the inserted rows. */
function checkSummaries(values: Record<string, unknown>[], inserted: readonly Activity[]): void {
  const groups = new Map<string, Activity[]>();
  for (const a of inserted) {
    const k = `${a.employee_id}|${a.activity_type}`;
    groups.set(k, [...(groups.get(k) ?? []), a]);
  }
  expect(values).toHaveLength(groups.size);
  const start = new Date(Math.floor(millis(inserted[0]!.activity_timestamp) / 3_600_000) * 3_600_000).toISOString();
  for (const [k, rows] of groups) {
    const [employee, type] = k.split('|');
    const v = values.find((x) => String(x.employee_id) === employee && x.activity_type === type);
    expect(v, `summary ${k}`).toBeDefined();
    expect(v).toMatchObject({ window_start: start, activity_count: rows.length });
    const durations = rows.map((r) => r.duration_seconds).filter((d): d is number => d !== null);
    if (durations.length === rows.length) {
      const total = durations.reduce((s, d) => s + d, 0);
      expect(Number(v!.total_duration)).toBe(total);
      expect(Number(v!.avg_duration)).toBeCloseTo(total / rows.length, 6);
    }
  }
}
