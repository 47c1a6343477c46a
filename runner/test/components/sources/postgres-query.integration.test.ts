/**
 * The postgres-query source against the local PostgreSQL: a few thousand rows of mixed types read
 * in small pages and compared with an independent read of the same table, parameters bound (never
 * spliced in), backpressure and stop, and PostgreSQL's message for a query that cannot run.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresQueryConfig } from '../../../src/components/sources/postgres-query.ts';
import { postgresQuerySource } from '../../../src/components/sources/postgres-query.ts';
import { ConfigError, ConnectionError } from '../../../src/engine/errors.ts';
import { RefusedValue } from '../../../src/engine/record.ts';
import { RecordingOutput, sourceContext } from './source-harness.ts';
import { waitFor } from '../../io/kafka/test-broker.ts';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const run = `${process.pid}_${Date.now() % 100000}`;
const table = `pgq_items_${run}`;
const ROWS = 2500;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

let admin: pg.Client;

function source(name: string, overrides: Partial<PostgresQueryConfig>, now = 1_700_000_000_000) {
  const cfg: PostgresQueryConfig = { ...conn, query: `SELECT * FROM ${table} ORDER BY id`, ...overrides };
  return postgresQuerySource.create(cfg, sourceContext(name, 'run', now));
}

const until = (what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => waitFor(what, cond, ms);

/** Connections a source named `name` holds open now (they are named `sluice-<name>`). */
async function connectionsOf(name: string): Promise<number> {
  const res = await admin.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [`sluice-${name}`]);
  return Number(res.rows[0]?.n);
}

beforeAll(async () => {
  admin = new pg.Client(conn);
  await admin.connect();
  await admin.query(`
    CREATE TABLE ${table} (
      id int4 PRIMARY KEY,
      big int8,
      amount numeric(12,2),
      ratio numeric,
      name text,
      active bool,
      seen timestamp,
      seen_tz timestamptz,
      tags text[]
    )`);
  // Every type has NULLs; int8 crosses 2^53; unconstrained numeric has rows beyond 15 significant
  // digits; timestamps carry microseconds, and some fall before 1970.
  await admin.query(
    `INSERT INTO ${table}
     SELECT g,
            CASE WHEN g % 11 = 0 THEN NULL WHEN g % 3 = 0 THEN 9007199254740991 + g ELSE g::int8 * 1000003 - 500000000 END,
            CASE WHEN g % 13 = 0 THEN NULL ELSE round((g * 7.31 - 9000)::numeric, 2) END,
            CASE WHEN g % 17 = 0 THEN NULL WHEN g % 2 = 0 THEN g / 7.0 ELSE g::numeric * 1000000007 / 1000 END,
            CASE WHEN g % 19 = 0 THEN NULL ELSE 'name ' || g || CASE WHEN g % 5 = 0 THEN ' "quoted", ü' ELSE '' END END,
            CASE WHEN g % 23 = 0 THEN NULL ELSE g % 2 = 0 END,
            CASE WHEN g % 29 = 0 THEN NULL ELSE timestamp '1969-12-30 00:00:00' + g * interval '1 hour 0.000123 seconds' END,
            CASE WHEN g % 31 = 0 THEN NULL ELSE timestamptz '2025-01-06 09:00:00+02' + g * interval '17 minutes 0.5 seconds' END,
            CASE WHEN g % 37 = 0 THEN NULL ELSE ARRAY['t' || g, NULL, 'a b'] END
     FROM generate_series(1, $1::int) g`,
    [ROWS],
  );
});

afterAll(async () => {
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.end();
});

/**
 * The rows as the documented mapping says they should come out, built from a plain read with pg's
 * default parsers and PostgreSQL's own formatting (to_char in UTC), not from the source's readers.
 */
async function expectedRows(where = 'true', values: unknown[] = []): Promise<Record<string, unknown>[]> {
  const res = await admin.query<Record<string, unknown>>(
    `SELECT id, big::text AS big, amount::text AS amount, ratio::text AS ratio, name, active,
            to_char(seen, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS seen,
            to_char(seen_tz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS seen_tz,
            tags
     FROM ${table} WHERE ${where} ORDER BY id`,
    values,
  );
  const int8 = (t: unknown) => (t === null ? null : BigInt(t as string) <= MAX_SAFE && BigInt(t as string) >= -MAX_SAFE ? Number(t) : BigInt(t as string));
  const numeric = (t: unknown) => {
    if (t === null) return null;
    const s = t as string;
    const significant = s.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    if (/\.0*$/.test(s) || !s.includes('.')) return int8(s.replace(/\.0*$/, ''));
    return significant.length <= 15 ? Number(s) : s;
  };
  return res.rows.map((r) => ({ ...r, big: int8(r.big), amount: numeric(r.amount), ratio: numeric(r.ratio) }));
}

describe('postgres-query source', () => {
  it('emits every row of a mixed-type table in pages of batch_size, exactly as an independent read gives them', async () => {
    const out = new RecordingOutput();
    const src = source('items', { batch_size: 97 });
    await src.check?.();
    await src.run(out);
    await src.close();

    const expected = await expectedRows();
    expect(expected).toHaveLength(ROWS);
    expect(out.messages.map((m) => m.value)).toEqual(expected);

    // The partition is assigned before the first page; then one batch per page, none larger than batch_size.
    expect(out.events[0]).toBe('assign items/query');
    expect(out.batches).toHaveLength(Math.ceil(ROWS / 97));
    expect(out.batches.every((b) => b.partition === 'items/query' && b.messages.length <= 97)).toBe(true);
    // Positions number the rows from 1; every row has the query's start time; no key.
    expect(out.messages.map((m) => m.position.offset)).toEqual(expected.map((_, i) => String(i + 1)));
    expect(out.messages.every((m) => m.timestamp === 1_700_000_000_000 && m.key === null && m.position.partition === 'items/query')).toBe(true);
    expect(out.messages[41]?.meta).toEqual({ op: 'r', run: 1, row: 42, started_at: expect.any(String) });
    // Nothing to commit: every batch's Ack completes with nothing held.
    for (const b of out.batches) {
      b.ack.seal();
      expect(b.ack.isComplete).toBe(true);
    }
    // The mix really is mixed: bigints beyond 2^53, numeric as text beyond 15 digits, NULLs.
    const values = out.messages.map((m) => m.value as Record<string, unknown>);
    expect(values.some((v) => typeof v.big === 'bigint')).toBe(true);
    expect(values.some((v) => typeof v.ratio === 'string')).toBe(true);
    expect(values.some((v) => typeof v.ratio === 'number')).toBe(true);
    expect(values.some((v) => v.seen === null && v.name !== null)).toBe(true);
    expect(await connectionsOf('items')).toBe(0);
  });

  it('binds params as $1..$n, never into the text', async () => {
    const out = new RecordingOutput();
    const src = source('bound', {
      query: `SELECT id, name, active FROM ${table} WHERE active = $1 AND id <= $2 AND (name IS NULL OR name <> $3) ORDER BY id`,
      params: [true, 400, 'name 2'],
      key: ['id'],
    });
    await src.run(out);
    const expected = (await expectedRows('active = $1 AND id <= $2 AND (name IS NULL OR name <> $3)', [true, 400, 'name 2'])).map(({ id, name, active }) => ({ id, name, active }));
    expect(expected.length).toBeGreaterThan(100);
    expect(out.messages.map((m) => m.value)).toEqual(expected);
    expect(out.messages.map((m) => m.key)).toEqual(expected.map((r) => ({ id: r.id })));

    // Text that would break out of a spliced-in literal is just a value that matches nothing.
    const hostile = new RecordingOutput();
    await source('hostile', { query: `SELECT id FROM ${table} WHERE name = $1`, params: [`x'; DROP TABLE ${table}; --`] }).run(hostile);
    expect(hostile.messages).toHaveLength(0);
    expect((await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(ROWS);

    // null binds as SQL NULL.
    const nulls = new RecordingOutput();
    await source('nulls', { query: 'SELECT $1::text IS NULL AS is_null, $2::int8 + 1 AS next', params: [null, 9007199254740991] }).run(nulls);
    expect(nulls.messages.map((m) => m.value)).toEqual([{ is_null: true, next: 9007199254740992n }]);
  });

  it('fails a query PostgreSQL refuses with its message and SQLSTATE, at check before any sink opens and at run', async () => {
    const src = source('typo', { query: `SELECT id, nmae FROM ${table} WHERE id < $1`, params: [10] });
    const checked = src.check!();
    await expect(checked).rejects.toBeInstanceOf(ConfigError);
    await expect(checked).rejects.toMatchObject({
      code: 'E_PG_QUERY',
      where: 'sources.typo.postgres-query.query',
      message: expect.stringMatching(/^query failed: column "nmae" does not exist \(SQLSTATE 42703\) at character 12/),
    });
    const out = new RecordingOutput();
    await expect(src.run(out)).rejects.toThrow(/column "nmae" does not exist \(SQLSTATE 42703\)/);
    expect(out.batches).toHaveLength(0);

    await expect(source('missing', { query: 'SELECT * FROM no_such_table_pgq' }).check!()).rejects.toThrow(
      'query failed: relation "no_such_table_pgq" does not exist (SQLSTATE 42P01) at character 15',
    );
    await expect(source('count', { query: `SELECT id FROM ${table} WHERE id BETWEEN $1 AND $2`, params: [1] }).check!()).rejects.toThrow(
      'query failed: the query uses 2 parameters ($1..$2) but `params` gives 1 (SQLSTATE 08P01)',
    );
    await expect(source('write', { query: `DELETE FROM ${table}` }).check!()).rejects.toThrow(/the query must be a SELECT/);
    await expect(source('dup', { query: `SELECT id, id FROM ${table}` }).check!()).rejects.toThrow(/more than one column named "id"/);
    await expect(source('key', { query: `SELECT id FROM ${table}`, key: ['uuid'] }).check!()).rejects.toMatchObject({ where: 'sources.key.postgres-query.key' });
    // An error on some row, past the first pages: the run fails with it, after the rows before it.
    const late = new RecordingOutput();
    await expect(source('late', { query: `SELECT id, 1 / (id - 300) AS x FROM ${table} ORDER BY id`, batch_size: 50 }).run(late)).rejects.toThrow(
      'query failed: division by zero (SQLSTATE 22012)',
    );
    expect(late.messages.length).toBeLessThan(300);
    expect(await connectionsOf('late')).toBe(0);
  });

  it('sends a row with a value that has no JSON form to the errors port, and goes on', async () => {
    const out = new RecordingOutput();
    const deep = `${'['.repeat(600)}${']'.repeat(600)}`;
    await source('deep', { query: `SELECT g AS id, CASE WHEN g = 2 THEN $1::jsonb ELSE '{"ok":true}'::jsonb END AS doc FROM generate_series(1, 3) g`, params: [deep] }).run(out);
    const values = out.messages.map((m) => m.value);
    expect(values[0]).toEqual({ id: 1, doc: { ok: true } });
    expect(values[2]).toEqual({ id: 3, doc: { ok: true } });
    expect(values[1]).toBeInstanceOf(RefusedValue);
    expect((values[1] as RefusedValue).error.message).toMatch(/^row 2: column "doc": nesting deeper than 512 levels/);
  });

  it('reads in a READ ONLY transaction', async () => {
    await admin.query(`CREATE OR REPLACE FUNCTION pgq_write_${run}() RETURNS int LANGUAGE sql AS $$ INSERT INTO ${table} (id) VALUES (-1) RETURNING id $$`);
    try {
      await expect(source('ro', { query: `SELECT pgq_write_${run}() AS id` }).run(new RecordingOutput())).rejects.toThrow(/read-only transaction \(SQLSTATE 25006\)/);
    } finally {
      await admin.query(`DROP FUNCTION pgq_write_${run}()`);
    }
  });

  it('names the server when it cannot connect', async () => {
    const src = source('away', { port: 1 });
    const failure = src.check!();
    await expect(failure).rejects.toBeInstanceOf(ConnectionError);
    await expect(failure).rejects.toThrow(/^cannot connect to postgres@127\.0\.0\.1:1\/streaming_db: .*ECONNREFUSED/);
    await expect(source('nodb', { database: `no_db_${run}` }).run(new RecordingOutput())).rejects.toThrow(`cannot connect to postgres@${conn.host}:${conn.port}/no_db_${run}: database "no_db_${run}" does not exist`);
  });

  it('fetches no further than the pipeline takes, and stops when asked, closing its connection', async () => {
    const out = new RecordingOutput();
    let open!: () => void;
    out.gate = new Promise<void>((resolve) => (open = resolve));
    const src = source('slow', { batch_size: 10 });
    const done = src.run(out);
    await until('the first page', () => out.batches.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    // Waiting on the first emit: nothing more was fetched or handed over.
    expect(out.batches).toHaveLength(1);
    expect(await connectionsOf('slow')).toBe(1);
    await src.stop();
    open();
    await done;
    expect(out.batches).toHaveLength(1);
    await src.close();
    await until('the connection to close', async () => (await connectionsOf('slow')) === 0);
  });
});
