/**
 * Exactly-once into PostgreSQL, end to end, as a user runs it: `sluice run` processes (no Kafka)
 * read the generator's Debezium events, write every insert as a raw row (plain INSERT, no key:
 * a duplicate would be a second row) and hourly summaries (INSERT too), with
 * `delivery: exactly-once`, so the postgres store keeps the state in the same database.
 *
 * One run is killed with SIGKILL twice, each time after a checkpoint committed and while the
 * stream is still going, and restarted. Its tables must equal, row for row, those of an
 * uninterrupted run, and an independent computation from the generator's events.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { poll, runSluice, type SluiceProcess } from './sluice-process.ts';
import { EMPLOYEE_ACTIVITY_DEFAULTS, EmployeeActivitySimulator } from '../../src/components/sources/generator/employee-activity.ts';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const run = `${process.pid}_${Date.now() % 100000}`;
const SEED = 11;
const COUNT = 12_000;
const RATE = 2_000; // events/s: a run lasts about 6 s, so kills land mid-stream
const START = '2025-01-06T08:00:00Z';
const HOUR = 3_600_000;

let admin: pg.Client;
let dir: string;

function specText(name: string): string {
  const pgConn = `host: ${conn.host}, port: ${conn.port}, database: ${conn.database}, user: ${conn.user}`;
  return `version: 1
name: pg-exactly-once
delivery: exactly-once
checkpoint:
  interval: 200ms
  application_id: eo-${name}-${run}
sources:
  activities:
    generator: { scenario: employee-activity, seed: ${SEED}, rate: ${RATE}, count: ${COUNT}, start_time: "${START}" }
    format: debezium
steps:
  inserts:
    from: activities
    filter: $meta.op = "c"
  hourly:
    from: inserts
    window: { tumbling: 1h, time: activity_timestamp, lateness: 10m }
    group_by: [employee_id, activity_type]
    aggregate: { activity_count: $count(), total_duration: $sum(duration_seconds) }
sinks:
  raw:
    from: inserts
    postgres:
      { ${pgConn}, table: eo_raw_${name}_${run},
        columns: { id: id, employee_id: employee_id, activity_type: activity_type, duration_seconds: duration_seconds, activity_timestamp: activity_timestamp } }
  summaries:
    from: hourly
    postgres:
      { ${pgConn}, table: eo_summaries_${name}_${run},
        columns: { employee_id: employee_id, activity_type: activity_type, window_start: window_start, activity_count: activity_count, total_duration: total_duration } }
`;
}

function start(name: string): SluiceProcess {
  const spec = join(dir, `${name}.yaml`);
  writeFileSync(spec, specText(name));
  const run = runSluice(spec, { cwd: dir });
  return run;
}

/** The committed checkpoint epoch of an application, or undefined before the first. */
async function committedEpoch(name: string): Promise<number | undefined> {
  const res = await admin.query<{ epoch: string | null }>('SELECT epoch FROM sluice_checkpoints WHERE application_id = $1', [`eo-${name}-${run}`]);
  const epoch = res.rows[0]?.epoch;
  return epoch === null || epoch === undefined ? undefined : Number(epoch);
}

async function kill(r: SluiceProcess): Promise<void> {
  process.kill(-r.child.pid!, 'SIGKILL');
  expect((await r.exit).signal).toBe('SIGKILL');
}

async function rawRows(name: string): Promise<unknown[]> {
  return (await admin.query(`SELECT id::text, employee_id, activity_type, duration_seconds, activity_timestamp FROM eo_raw_${name}_${run} ORDER BY id::bigint`)).rows;
}

async function summaryRows(name: string): Promise<unknown[]> {
  const res = await admin.query(
    `SELECT employee_id, activity_type, window_start, activity_count::text, total_duration::text FROM eo_summaries_${name}_${run} ORDER BY employee_id, activity_type, window_start`,
  );
  return res.rows;
}

/** Straight from the generator's events, without sluice: every insert, and the hourly figures per employee and type. */
function independent(): { ids: string[]; summaries: unknown[] } {
  const sim = new EmployeeActivitySimulator({ ...EMPLOYEE_ACTIVITY_DEFAULTS, seed: SEED, startMs: Date.parse(START) });
  const ids: string[] = [];
  const groups = new Map<string, { employee_id: number; activity_type: string; window_start: Date; count: number; total: number | null }>();
  for (let i = 0; i < COUNT; i++) {
    const payload = (sim.next().value as { payload?: { op?: unknown; after?: Record<string, unknown> } } | null)?.payload;
    if (payload?.op !== 'c' || !payload.after) continue;
    const a = payload.after;
    ids.push(String(a.id));
    const start = Math.floor(Number(a.activity_timestamp) / 1000 / HOUR) * HOUR; // epoch microseconds -> hour
    const key = `${String(a.employee_id)}|${String(a.activity_type)}|${start}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { employee_id: Number(a.employee_id), activity_type: String(a.activity_type), window_start: new Date(start), count: 0, total: null }));
    g.count++;
    if (typeof a.duration_seconds === 'number') g.total = (g.total ?? 0) + a.duration_seconds;
  }
  const summaries = [...groups.values()]
    .sort((x, y) => x.employee_id - y.employee_id || (x.activity_type < y.activity_type ? -1 : x.activity_type > y.activity_type ? 1 : 0) || x.window_start.getTime() - y.window_start.getTime())
    .map((g) => ({ employee_id: g.employee_id, activity_type: g.activity_type, window_start: g.window_start, activity_count: String(g.count), total_duration: g.total === null ? null : String(g.total) }));
  return { ids: ids.sort((x, y) => Number(x) - Number(y)), summaries };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-pg-eo-'));
  admin = new pg.Client(conn);
  await admin.connect();
  for (const name of ['whole', 'killed']) {
    // No keys: a row written twice would be two rows.
    await admin.query(`CREATE TABLE eo_raw_${name}_${run} (id bigint, employee_id int, activity_type text, duration_seconds int, activity_timestamp timestamptz)`);
    await admin.query(`CREATE TABLE eo_summaries_${name}_${run} (employee_id int, activity_type text, window_start timestamptz, activity_count bigint, total_duration bigint)`);
  }
});

afterAll(async () => {
  for (const name of ['whole', 'killed']) {
    await admin.query(`DROP TABLE IF EXISTS eo_raw_${name}_${run}`);
    await admin.query(`DROP TABLE IF EXISTS eo_summaries_${name}_${run}`);
    await admin.query('DELETE FROM sluice_checkpoints WHERE application_id = $1', [`eo-${name}-${run}`]);
  }
  await admin.end();
});

describe('exactly-once into PostgreSQL through `sluice run`', () => {
  it('killed with SIGKILL twice mid-stream and restarted, its tables equal an uninterrupted run\'s and an independent computation, row for row', async () => {
    const whole = start('whole');
    expect(await whole.exit, whole.stderr()).toEqual({ code: 0, signal: null });

    const kills: { epoch: number; rawRows: number }[] = [];
    let restoredFrom = 0;
    for (let k = 0; k < 2; k++) {
      const r = start('killed');
      // Wait for a checkpoint of this process (past the one it restored), then kill a moment later.
      const epoch = await poll('a checkpoint', async () => {
        const e = await committedEpoch('killed');
        return e !== undefined && e > restoredFrom ? e : undefined;
      });
      await new Promise((res) => setTimeout(res, 300 + Math.floor(Math.random() * 500)));
      await kill(r);
      restoredFrom = (await committedEpoch('killed'))!;
      kills.push({ epoch, rawRows: (await rawRows('killed')).length });
    }
    const last = start('killed');
    expect(await last.exit, last.stderr()).toEqual({ code: 0, signal: null });
    // The restarted run resumed from the stored checkpoint instead of starting over.
    expect(last.stderr()).toContain('state restored from the last checkpoint');

    const expected = independent();
    // Both kills landed after a checkpoint and before the end of the stream.
    for (const k of kills) {
      expect(k.epoch).toBeGreaterThan(0);
      expect(k.rawRows).toBeGreaterThan(0);
      expect(k.rawRows).toBeLessThan(expected.ids.length);
    }

    const killedRaw = await rawRows('killed');
    const wholeRaw = await rawRows('whole');
    expect(killedRaw.length).toBe(expected.ids.length);
    expect(killedRaw).toEqual(wholeRaw);
    expect(killedRaw.map((r) => (r as { id: string }).id)).toEqual(expected.ids);

    const killedSummaries = await summaryRows('killed');
    expect(killedSummaries).toEqual(await summaryRows('whole'));
    expect(killedSummaries).toEqual(expected.summaries);

    // The input ended: the finished run removed its checkpoint and state, in its last commit.
    expect(await committedEpoch('killed')).toBeUndefined();
    const state = await admin.query('SELECT count(*)::int AS n FROM sluice_state WHERE application_id = $1', [`eo-killed-${run}`]);
    expect(state.rows).toEqual([{ n: 0 }]);
  }, 180_000);
});
