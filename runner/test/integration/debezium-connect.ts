/**
 * Real Debezium for the integration suites: Kafka Connect started with scripts/connect.sh against
 * the test broker, the connector registered from connectors/employee-connector.json (local
 * variant), and a schema of its own per run built from init-scripts/02-employee-activity.sql.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type pg from 'pg';

const run = promisify(execFile);
export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const connectScript = resolve(repo, 'scripts/connect.sh');

export interface ConnectWorker {
  url: string;
  /** True when this process started the worker (and so must stop it). */
  startedHere: boolean;
}

/** Starts (or finds) the Connect worker; it writes to the broker in KAFKA_BROKERS. */
export async function startConnect(brokers: string): Promise<ConnectWorker> {
  const { stdout } = await run('bash', [connectScript, 'start'], { cwd: repo, timeout: 600_000, env: { ...process.env, KAFKA_BROKERS: brokers } });
  const [state, url] = stdout.trim().split(/\s+/);
  if (!url) throw new Error(`unexpected output from scripts/connect.sh start: ${stdout}`);
  return { url, startedHere: state === 'started' };
}

export async function stopConnect(worker: ConnectWorker): Promise<void> {
  if (worker.startedHere) await run('bash', [connectScript, 'stop'], { cwd: repo, timeout: 60_000 });
}

/** connectors/employee-connector.json for the local PostgreSQL, with this run's names. */
export function localConnector(names: { name: string; prefix: string; slot: string; publication: string; tables: string[] }): { name: string; config: Record<string, string> } {
  const file = JSON.parse(readFileSync(resolve(repo, 'connectors/employee-connector.json'), 'utf8')) as { name: string; config: Record<string, string> };
  return {
    name: names.name,
    config: {
      ...file.config,
      'database.hostname': process.env.PGHOST ?? '127.0.0.1',
      'database.port': process.env.PGPORT ?? '5432',
      'topic.prefix': names.prefix,
      'slot.name': names.slot,
      'publication.name': names.publication,
      'table.include.list': names.tables.join(','),
    },
  };
}

async function rest(url: string, method: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
}

export async function registerConnector(worker: ConnectWorker, connector: { name: string; config: Record<string, string> }): Promise<void> {
  const res = await rest(`${worker.url}/connectors`, 'POST', connector);
  if (res.status !== 201) throw new Error(`registering ${connector.name} failed (${res.status}): ${JSON.stringify(res.json)}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = await rest(`${worker.url}/connectors/${connector.name}/status`, 'GET');
    const s = status.json as { connector?: { state?: string }; tasks?: { state?: string; trace?: string }[] } | null;
    const task = s?.tasks?.[0];
    if (task?.state === 'RUNNING') return;
    if (task?.state === 'FAILED') throw new Error(`connector ${connector.name} failed: ${task.trace ?? ''}`);
    if (Date.now() > deadline) throw new Error(`connector ${connector.name} did not start: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function deleteConnector(worker: ConnectWorker, name: string): Promise<void> {
  await rest(`${worker.url}/connectors/${name}`, 'DELETE');
}

/**
 * A schema of this run's own with the employee tables, seed employees and the summaries table,
 * made by running init-scripts/02-employee-activity.sql in it (without its \connect line).
 */
export async function createEmployeeSchema(admin: pg.Client, schema: string): Promise<void> {
  const sql = readFileSync(resolve(repo, 'init-scripts/02-employee-activity.sql'), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('\\'))
    .join('\n');
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.query(`SET search_path TO "${schema}"`);
  try {
    await admin.query(sql);
  } finally {
    await admin.query('SET search_path TO DEFAULT');
  }
}

/** Drops slots (after ending whoever holds them), publications and the schema a suite made. */
export async function dropCapture(admin: pg.Client, what: { slots: string[]; publications: string[]; schema?: string }): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const res = await admin.query('SELECT slot_name, active_pid FROM pg_replication_slots WHERE slot_name = ANY($1)', [what.slots]);
    if (res.rowCount === 0) break;
    for (const row of res.rows as { slot_name: string; active_pid: number | null }[]) {
      if (row.active_pid !== null) await admin.query('SELECT pg_terminate_backend($1)', [row.active_pid]);
      else await admin.query('SELECT pg_drop_replication_slot($1)', [row.slot_name]).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const p of what.publications) await admin.query(`DROP PUBLICATION IF EXISTS "${p}"`);
  if (what.schema) await admin.query(`DROP SCHEMA IF EXISTS "${what.schema}" CASCADE`);
}
