/** The postgres sink against the local PostgreSQL: idempotent upserts, plain inserts, clear failures. */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/engine/clock.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { Ack } from '../../src/engine/ack.ts';
import type { StreamRecord } from '../../src/engine/record.ts';
import type { PostgresSinkConfig } from '../../src/components/sinks/postgres.ts';
import { postgresSink } from '../../src/components/sinks/postgres.ts';
import { requireMessages, type WriteResult } from '../../src/engine/component.ts';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const run = `${process.pid}_${Date.now() % 100000}`;
const summaries = `sink_summaries_${run}`;
const created = `sink_created_${run}`;
const ctx = { name: 'db', logger: silentLogger, clock: systemClock, metrics: new Metrics(), mode: 'run' as const };
let admin: pg.Client;

function rec(value: Record<string, unknown>): StreamRecord {
  return { key: null, value, time: 0, headers: {}, meta: {}, position: { source: 's', partition: 's/0', offset: '0' }, ack: Ack.none() };
}

async function writeAll(cfg: PostgresSinkConfig, values: Record<string, unknown>[]): Promise<WriteResult | void> {
  const sink = postgresSink.create(cfg, ctx);
  await sink.open();
  try {
    return await sink.write(requireMessages(await sink.prepare(values.map(rec))));
  } finally {
    await sink.close();
  }
}

beforeAll(async () => {
  admin = new pg.Client(conn);
  await admin.connect();
  // The shape of init-scripts' employee_activity_summaries, in a table of this run's own.
  await admin.query(`CREATE TABLE ${summaries} (LIKE employee_activity_summaries INCLUDING ALL)`);
});

afterAll(async () => {
  await admin.query(`DROP TABLE IF EXISTS ${summaries}`);
  await admin.query(`DROP TABLE IF EXISTS ${created}`);
  await admin.end();
});

const summary = (employee: number, type: string, count: number) => ({
  employee_id: employee,
  activity_type: type,
  window_start: '2025-01-02T10:00:00.000Z',
  window_end: '2025-01-02T11:00:00.000Z',
  activity_count: count,
  total_duration: count * 10,
  avg_duration: 10,
});

describe('postgres sink', () => {
  it('upserts hourly summaries idempotently: re-delivery leaves one row per key, with the last values', async () => {
    const cfg: PostgresSinkConfig = { ...conn, table: `public.${summaries}`, mode: 'upsert', key: ['employee_id', 'activity_type', 'window_start'] };
    await writeAll(cfg, [summary(1, 'login', 1), summary(2, 'click', 5)]);
    // The same window results again (a crash before the source committed), one with a newer count,
    // and the same key twice in one batch.
    await writeAll(cfg, [summary(1, 'login', 1), summary(2, 'click', 6), summary(2, 'click', 7)]);
    const rows = await admin.query(`SELECT employee_id, activity_type, window_start, activity_count, total_duration FROM ${summaries} ORDER BY employee_id`);
    expect(rows.rows).toEqual([
      { employee_id: 1, activity_type: 'login', window_start: new Date('2025-01-02T10:00:00Z'), activity_count: '1', total_duration: '10' },
      { employee_id: 2, activity_type: 'click', window_start: new Date('2025-01-02T10:00:00Z'), activity_count: '7', total_duration: '70' },
    ]);
  });

  it('refuses the rows the database refuses and writes the rest of the batch: a NULL in a NOT NULL column, a value its type refuses, a field with no column', async () => {
    const cfg: PostgresSinkConfig = { ...conn, table: `public.${summaries}`, mode: 'insert' };
    const result = await writeAll(cfg, [
      summary(8, 'ok', 1),
      { ...summary(9, 'x', 1), activity_count: null },
      { ...summary(10, 'x', 1), employee_id: 'Jane Doe' },
      { ...summary(11, 'x', 1), colour: 'red' },
      summary(12, 'ok', 2),
    ]);
    expect(result?.refused.map((r) => [r.index, (r.error as { code?: string }).code, r.error.message])).toEqual([
      [1, 'E_PG_SINK_REFUSED', expect.stringMatching(/^public\.sink_summaries_\S+ refused the row: null value in column "activity_count" .* violates not-null constraint \(SQLSTATE 23502\)$/)],
      [2, 'E_PG_SINK_REFUSED', expect.stringMatching(/refused the row: invalid input syntax for type integer: "…" \(SQLSTATE 22P02\)$/)],
      [3, 'E_PG_SINK_COLUMN', expect.stringMatching(/^public\.sink_summaries_\S+ has no column `colour`/)],
    ]);
    expect(JSON.stringify(result?.refused.map((r) => r.error.message))).not.toContain('Jane Doe');
    const rows = await admin.query(`SELECT employee_id FROM ${summaries} WHERE employee_id BETWEEN 8 AND 12 ORDER BY employee_id`);
    expect(rows.rows).toEqual([{ employee_id: 8 }, { employee_id: 12 }]);
  });

  it('refuses every row when a mapped column does not exist, instead of failing the run on every restart', async () => {
    const cfg: PostgresSinkConfig = { ...conn, table: `public.${summaries}`, mode: 'insert', columns: { employee_id: 'employee_id', nickname: 'activity_type' } };
    const result = await writeAll(cfg, [summary(13, 'a', 1), summary(14, 'b', 1)]);
    expect(result?.refused.map((r) => [r.index, r.error.message])).toEqual([
      [0, expect.stringMatching(/has no column `nickname`/)],
      [1, expect.stringMatching(/has no column `nickname`/)],
    ]);
  });

  it('says what to do when the table is missing, and creates it only when told', async () => {
    const cfg: PostgresSinkConfig = { ...conn, table: created, mode: 'upsert', key: ['id'] };
    await expect(writeAll(cfg, [{ id: 1, v: 'a' }])).rejects.toMatchObject({ code: 'E_PG_SINK_TABLE' });
    await writeAll({ ...cfg, create_table: true }, [{ id: 1, v: 'a', at: '2025-01-02T10:00:00.000Z', n: 1.5 }]);
    await writeAll({ ...cfg, create_table: true }, [{ id: 1, v: 'b', at: '2025-01-02T11:00:00.000Z', n: 2.5 }]);
    const rows = await admin.query(`SELECT id, v, at, n FROM ${created}`);
    expect(rows.rows).toEqual([{ id: '1', v: 'b', at: new Date('2025-01-02T11:00:00Z'), n: 2.5 }]);
  });

  it('says so when upsert has no matching constraint', async () => {
    const cfg: PostgresSinkConfig = { ...conn, table: `public.${summaries}`, mode: 'upsert', key: ['activity_type'] };
    await expect(writeAll(cfg, [summary(3, 'y', 1)])).rejects.toMatchObject({ code: 'E_PG_SINK_KEY' });
  });
});
