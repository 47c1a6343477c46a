/**
 * The postgres state store against the local PostgreSQL: a commit/load round trip with deltas,
 * atomicity of sink rows with the checkpoint, fencing of an older instance, the idle timeout that
 * ends a stuck transaction, and the end-of-input reset.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../../src/engine/checkpoint/checkpoint.ts';
import type { JsonValue } from '../../../src/engine/component.ts';
import { silentLogger, type Logger } from '../../../src/engine/logger.ts';
import { PostgresStateStore, type PostgresStateStoreOptions } from '../../../src/io/postgres/state-store.ts';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const schema = `sluice_store_test_${process.pid}`;
const rowsTable = `"${schema}".sink_rows`;
let admin: pg.Client;
const opened: PostgresStateStore[] = [];

function store(applicationId: string, options: Partial<PostgresStateStoreOptions> = {}, logger: Logger = silentLogger): PostgresStateStore {
  const s = new PostgresStateStore({ connection: conn, applicationId, steps: ['hourly'], schema, idleTimeoutMs: 60_000, ...options }, logger);
  opened.push(s);
  return s;
}

function checkpoint(applicationId: string, epoch: number, entries: Record<string, JsonValue>, header: JsonValue = { seq: epoch }): Checkpoint {
  return {
    applicationId,
    epoch,
    positions: { 'events/t/0': String(epoch * 100) },
    states: new Map([['hourly', { header, entries: new Map(Object.entries(entries)) }]]),
    identities: { hourly: { kind: 'window', fingerprint: 'f', parts: {} } },
    sinks: {},
    takenAt: 1_700_000_000_000 + epoch,
  };
}

const insertRow = (id: number) => ({ text: `INSERT INTO ${rowsTable} (id) VALUES ($1)`, values: [id] });

async function sinkRows(): Promise<number[]> {
  return (await admin.query<{ id: number }>(`SELECT id FROM ${rowsTable} ORDER BY id`)).rows.map((r) => r.id);
}

async function storedRow(app: string): Promise<{ epoch: string | null; owner_epoch: string } | undefined> {
  return (await admin.query<{ epoch: string | null; owner_epoch: string }>(`SELECT epoch, owner_epoch FROM "${schema}".sluice_checkpoints WHERE application_id = $1`, [app])).rows[0];
}

async function stateRows(app: string): Promise<Record<string, unknown>> {
  const res = await admin.query<{ key: string; value: unknown }>(`SELECT key, value FROM "${schema}".sluice_state WHERE application_id = $1 ORDER BY key`, [app]);
  return Object.fromEntries(res.rows.map((r) => [r.key, r.value]));
}

beforeAll(async () => {
  admin = new pg.Client(conn);
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.query(`CREATE TABLE ${rowsTable} (id int)`);
});

afterAll(async () => {
  for (const s of opened) await s.close();
  await admin.query(`DROP PUBLICATION IF EXISTS "${schema}_pub"`);
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

describe('postgres state store', () => {
  it('creates its tables, loads nothing at first, and gives back each committed checkpoint with its state deltas applied', async () => {
    const a = store('round-trip');
    await a.open();
    expect(await a.load()).toBeUndefined();
    const first = checkpoint('round-trip', 1, { p1: { n: 1 }, p2: { n: 2 }, p3: { rows: [{ z: 1, a: 'x' }] } });
    expect(await a.commit(first)).toMatchObject({ written: 3, deleted: 0 });
    // p1 unchanged, p2 changed, p3 closed, p4 opened: only the difference is written.
    const second = checkpoint('round-trip', 2, { p1: { n: 1 }, p2: { n: 5 }, p4: { n: 4 } });
    expect(await a.commit(second)).toMatchObject({ written: 2, deleted: 1 });
    // The table itself, read independently, holds exactly the last state.
    expect(await stateRows('round-trip')).toEqual({ p1: { n: 1 }, p2: { n: 5 }, p4: { n: 4 } });
    expect(await storedRow('round-trip')).toMatchObject({ epoch: '2' });
    await a.close();

    const b = store('round-trip');
    await b.open();
    expect(await b.load()).toEqual(second);
  });

  it('commits sink rows only with the checkpoint: a failing commit leaves neither the rows nor the checkpoint', async () => {
    const a = store('atomic');
    await a.open();
    await a.load();
    await a.execute([insertRow(1), insertRow(2)]);
    await a.commit(checkpoint('atomic', 1, { p: 1 }));
    expect(await sinkRows()).toEqual([1, 2]);

    await a.execute([insertRow(3)]);
    // Uncommitted: another session sees nothing of the open transaction.
    expect(await sinkRows()).toEqual([1, 2]);
    // jsonb refuses \u0000, so this checkpoint's row cannot be written: the whole commit fails.
    await expect(a.commit(checkpoint('atomic', 2, { p: 2 }, { bad: '\u0000' }))).rejects.toMatchObject({ code: 'E_STATE_TRANSACTION', message: expect.stringContaining('checkpoint 2 did not commit') });
    expect(await sinkRows()).toEqual([1, 2]);
    expect(await storedRow('atomic')).toMatchObject({ epoch: '1' });
    expect(await stateRows('atomic')).toEqual({ p: 1 });
    // And this instance commits nothing more: its rows since the last checkpoint are gone.
    await expect(a.execute([insertRow(4)])).rejects.toMatchObject({ code: 'E_STATE_TRANSACTION', message: expect.stringContaining('the checkpoint transaction is lost') });
    await expect(a.commit(checkpoint('atomic', 2, { p: 2 }))).rejects.toMatchObject({ code: 'E_STATE_TRANSACTION' });
    expect(await sinkRows()).toEqual([1, 2]);
  });

  it('loses nothing committed and keeps nothing uncommitted when its session dies mid-transaction (kill -9)', async () => {
    await admin.query(`DELETE FROM ${rowsTable}`);
    const a = store('crash');
    await a.open();
    await a.load();
    await a.execute([insertRow(10)]);
    await a.commit(checkpoint('crash', 1, { p: 1 }));
    await a.execute([insertRow(11)]);
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = 'sluice-crash-state'`);
    expect(killed.rows).toEqual([{ done: true }]);
    const b = store('crash');
    await b.open();
    expect(await b.load()).toEqual(checkpoint('crash', 1, { p: 1 }));
    expect(await sinkRows()).toEqual([10]);
  });

  it('fences an older instance: after a newer one loads, the older one\'s commit fails and its rows are rolled back', async () => {
    await admin.query(`DELETE FROM ${rowsTable}`);
    const older = store('fenced');
    await older.open();
    await older.load();
    await older.commit(checkpoint('fenced', 1, { p: 1 }));
    await older.execute([insertRow(20)]);

    const newer = store('fenced');
    await newer.open();
    expect(await newer.load()).toEqual(checkpoint('fenced', 1, { p: 1 }));
    await expect(older.commit(checkpoint('fenced', 2, { p: 'zombie' }))).rejects.toMatchObject({
      code: 'E_STATE_FENCED',
      message: expect.stringContaining('another instance of application `fenced` took over (owner epoch 2, this instance\'s is 1)'),
    });
    expect(await sinkRows()).toEqual([]);
    await newer.execute([insertRow(21)]);
    await newer.commit(checkpoint('fenced', 2, { p: 2 }));
    expect(await sinkRows()).toEqual([21]);
    expect(await stateRows('fenced')).toEqual({ p: 2 });
  });

  it('lets the server end a transaction left idle longer than the idle timeout (a stuck zombie), rolling its rows back', async () => {
    await admin.query(`DELETE FROM ${rowsTable}`);
    const stuck = store('idle', { idleTimeoutMs: 300 });
    await stuck.open();
    await stuck.load();
    await stuck.execute([insertRow(30)]);
    await new Promise((r) => setTimeout(r, 1200));
    await expect(stuck.commit(checkpoint('idle', 1, { p: 1 }))).rejects.toMatchObject({ code: 'E_STATE_TRANSACTION' });
    expect(await sinkRows()).toEqual([]);
    expect(await storedRow('idle')).toMatchObject({ epoch: null });
  });

  it('at the end of input, commits the last rows together with removing the state', async () => {
    await admin.query(`DELETE FROM ${rowsTable}`);
    const a = store('finished');
    await a.open();
    await a.load();
    await a.commit(checkpoint('finished', 1, { p: 1 }));
    await a.execute([insertRow(40)]);
    await a.reset();
    expect(await sinkRows()).toEqual([40]);
    expect(await storedRow('finished')).toMatchObject({ epoch: null });
    expect(await stateRows('finished')).toEqual({});
    await a.close();
    const b = store('finished');
    await b.open();
    expect(await b.load()).toBeUndefined();
  });

  it('deletes the rows of a step the spec no longer has with its first commit', async () => {
    const a = store('orphans', { steps: ['hourly', 'daily'] });
    await a.open();
    await a.load();
    const both = checkpoint('orphans', 1, { p: 1 });
    both.states.set('daily', { header: null, entries: new Map([['d', 1]]) });
    await a.commit(both);
    await a.close();
    const b = store('orphans', { steps: ['hourly'] });
    await b.open();
    const loaded = await b.load();
    expect([...loaded!.states.keys()].sort()).toEqual(['daily', 'hourly']);
    await b.commit(checkpoint('orphans', 2, { p: 2 }));
    const steps = await admin.query(`SELECT DISTINCT step FROM "${schema}".sluice_state WHERE application_id = 'orphans'`);
    expect(steps.rows).toEqual([{ step: 'hourly' }]);
  });

  it('warns when a publication captures its tables', async () => {
    await admin.query(`CREATE PUBLICATION "${schema}_pub" FOR TABLE "${schema}".sluice_state`);
    const warnings: string[] = [];
    const ignore = () => {};
    const logger: Logger = { debug: ignore, info: ignore, error: ignore, warn: (_o, msg) => warnings.push(msg ?? ''), child: () => logger };
    const a = store('published', {}, logger);
    await a.open();
    expect(warnings).toEqual([expect.stringContaining('a publication captures the sluice state tables')]);
  });
});
