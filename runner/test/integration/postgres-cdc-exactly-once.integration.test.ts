/**
 * postgres-cdc -> postgres with `delivery: exactly-once`, end to end: rows are inserted into a
 * captured table while `sluice run` copies every insert into another table (plain INSERT, no key)
 * and keeps per-group counts (a window, upserted). The process is killed with SIGKILL twice while
 * rows keep coming, and restarted. The slot is confirmed only after the checkpoint that covers its
 * changes committed, and the store resumes after that checkpoint's positions, so the copy must hold
 * every captured row exactly once and the counts must equal a GROUP BY over the captured table.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { poll, runSluice, type SluiceProcess } from './sluice-process.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const run = `${process.pid}_${Date.now() % 100000}`;
const source = `eo_cdc_src_${run}`;
const copy = `eo_cdc_copy_${run}`;
const counts = `eo_cdc_counts_${run}`;
const slot = `eo_cdc_slot_${run}`;
const publication = `eo_cdc_pub_${run}`;
const app = `eo-cdc-${run}`;

let admin: pg.Client;
let dir: string;

function specText(): string {
  const pgConn = `host: ${conn.host}, port: ${conn.port}, database: ${conn.database}, user: ${conn.user}`;
  return `version: 1
name: cdc-exactly-once
delivery: exactly-once
checkpoint: { interval: 200ms, application_id: ${app} }
sources:
  items:
    postgres-cdc: { ${pgConn}, slot: ${slot}, publication: ${publication}, tables: [public.${source}], snapshot: never, heartbeat: 200ms }
    format: debezium
steps:
  inserts:
    from: items
    filter: $meta.op = "c"
  per-group:
    from: inserts
    window: { tumbling: 1h, emit: update }
    group_by: [grp]
    aggregate: { n: $count() }
sinks:
  copy:
    from: inserts
    postgres: { ${pgConn}, table: ${copy}, columns: { id: id, grp: grp } }
  counts:
    from: per-group
    postgres: { ${pgConn}, table: ${counts}, mode: upsert, key: [grp, window_start], columns: { grp: grp, window_start: window_start, n: n } }
`;
}

function start(): SluiceProcess {
  const spec = join(dir, 'cdc.yaml');
  writeFileSync(spec, specText());
  const run = runSluice(spec, { cwd: dir });
  return run;
}

async function committedEpoch(): Promise<number | undefined> {
  const res = await admin.query<{ epoch: string | null }>('SELECT epoch FROM sluice_checkpoints WHERE application_id = $1', [app]);
  const epoch = res.rows[0]?.epoch;
  return epoch === null || epoch === undefined ? undefined : Number(epoch);
}

async function count(table: string): Promise<number> {
  return (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
}

/** Inserts `total` rows in small transactions while the pipeline runs, on a connection of its own. */
async function writeRows(total: number): Promise<void> {
  const writer = new pg.Client(conn);
  await writer.connect();
  try {
    for (let done = 0; done < total; done += 20) {
      await writer.query(`INSERT INTO ${source} (grp) SELECT (random() * 4)::int FROM generate_series(1, 20)`);
      // About 9 s of inserts: both kills, each after a restart and a checkpoint, must land while rows still come.
      await new Promise((r) => setTimeout(r, 60));
    }
  } finally {
    await writer.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cdc-eo-'));
  admin = new pg.Client(conn);
  await admin.connect();
  await admin.query(`CREATE TABLE ${source} (id serial PRIMARY KEY, grp int NOT NULL)`);
  await admin.query(`CREATE TABLE ${copy} (id int, grp int)`);
  await admin.query(`CREATE TABLE ${counts} (grp int, window_start timestamptz, n bigint, PRIMARY KEY (grp, window_start))`);
});

afterAll(async () => {
  await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
  await new Promise((r) => setTimeout(r, 200));
  await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => {});
  await admin.query(`DROP PUBLICATION IF EXISTS ${publication}`);
  for (const t of [source, copy, counts]) await admin.query(`DROP TABLE IF EXISTS ${t}`);
  await admin.query('DELETE FROM sluice_state WHERE application_id = $1', [app]);
  await admin.query('DELETE FROM sluice_checkpoints WHERE application_id = $1', [app]);
  await admin.end();
});

describe('postgres-cdc -> postgres, exactly-once, through `sluice run`', () => {
  it('killed with SIGKILL twice while rows are inserted, the copy holds every row once and the counts equal a GROUP BY', async () => {
    let r = start();
    // Created, not only listed: rows written while a slot is still being created are not in its stream.
    await poll('the slot', async () => ((await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL', [slot])).rowCount ? true : undefined));
    const writing = writeRows(3_000);

    let restoredFrom = 0;
    const copiedAtKill: number[] = [];
    for (let k = 0; k < 2; k++) {
      await poll('a checkpoint', async () => {
        const e = await committedEpoch();
        return e !== undefined && e > restoredFrom && (await count(copy)) > 0 ? e : undefined;
      });
      await new Promise((res) => setTimeout(res, 200 + Math.floor(Math.random() * 400)));
      process.kill(-r.child.pid!, 'SIGKILL');
      expect((await r.exit).signal).toBe('SIGKILL');
      copiedAtKill.push(await count(copy));
      restoredFrom = (await committedEpoch())!;
      r = start();
    }
    await writing;
    const total = await count(source);
    expect(total).toBe(3_000);
    // Both kills landed while rows were still coming.
    for (const n of copiedAtKill) expect(n).toBeLessThan(total);

    await poll('every row copied', async () => ((await count(copy)) >= total ? true : undefined), 90_000);
    // A moment for anything that should not come (a change delivered twice) to show, then a clean stop.
    await new Promise((res) => setTimeout(res, 1_000));
    process.kill(-r.child.pid!, 'SIGINT');
    expect(await r.exit, r.stderr()).toEqual({ code: 0, signal: null });
    expect(r.stderr()).toContain('state restored from the last checkpoint');

    const copied = await admin.query(`SELECT id, grp FROM ${copy} ORDER BY id`);
    const captured = await admin.query(`SELECT id, grp FROM ${source} ORDER BY id`);
    expect(copied.rows.length).toBe(total);
    expect(copied.rows).toEqual(captured.rows);

    const perGroup = await admin.query(`SELECT grp, sum(n)::int AS n FROM ${counts} GROUP BY grp ORDER BY grp`);
    const independent = await admin.query(`SELECT grp, count(*)::int AS n FROM ${source} GROUP BY grp ORDER BY grp`);
    expect(perGroup.rows).toEqual(independent.rows);

    // The sluice tables are not captured: the source's publication lists only its own table.
    const published = await admin.query('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [publication]);
    expect(published.rows).toEqual([{ schemaname: 'public', tablename: source }]);
  }, 180_000);
});
