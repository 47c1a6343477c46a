import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import { PrepareFailure, requireMessages, SharedResources, type ComponentContext } from '../../../src/engine/component.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { RecordError } from '../../../src/engine/errors.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import type { PostgresSinkConfig } from '../../../src/components/sinks/postgres.ts';
import { isRowRefusal, isTransient, PostgresSink, postgresSink, refusalMessage } from '../../../src/components/sinks/postgres.ts';
import { POSTGRES_TRANSACTION, type PostgresCheckpointTransaction } from '../../../src/io/postgres/state-store.ts';
import type { Statement } from '../../../src/io/postgres/table-writer.ts';

const ctx = { name: 'summaries-db', logger: silentLogger, clock: new ManualClock(), metrics: new Metrics(), mode: 'test' as const };
const base: PostgresSinkConfig = { host: '127.0.0.1', database: 'streaming_db', user: 'postgres', table: 'public.employee_activity_summaries' };

function record(value: unknown, meta: Record<string, unknown> = {}): StreamRecord {
  return { key: null, value, time: 0, headers: {}, meta, position: { source: 's', partition: 's/0', offset: '7' }, ack: Ack.none() };
}

describe('postgres sink prepare', () => {
  it('makes the value the row and the key columns the key', async () => {
    const sink = postgresSink.create({ ...base, mode: 'upsert', key: ['employee_id', 'window_start'] }, ctx);
    const out = await sink.prepare([record({ employee_id: 1, window_start: '2025-01-02T10:00:00.000Z', activity_count: 3 })]);
    expect(out).toEqual([
      {
        key: { employee_id: 1, window_start: '2025-01-02T10:00:00.000Z' },
        value: { employee_id: 1, window_start: '2025-01-02T10:00:00.000Z', activity_count: 3 },
      },
    ]);
  });

  it('maps columns with expressions that see $meta', async () => {
    const sink = postgresSink.create({ ...base, columns: { who: 'employee_id', start: '$meta.window_start', n: 'activity_count * 2' } }, ctx);
    const out = await sink.prepare([record({ employee_id: 4, activity_count: 2 }, { window_start: 'W' })]);
    expect(out).toEqual([{ key: null, value: { who: 4, start: 'W', n: 4 } }]);
  });

  it('fails only a record whose value is not an object when no columns are given', async () => {
    const sink = postgresSink.create(base, ctx);
    const out = await sink.prepare([record({ id: 1 }), record('text')]);
    expect(out[0]).toEqual({ key: null, value: { id: 1 } });
    const failure = out[1];
    expect(failure).toBeInstanceOf(PrepareFailure);
    expect((failure as PrepareFailure).error).toBeInstanceOf(RecordError);
    expect((failure as PrepareFailure).error).toMatchObject({ code: 'E_PG_SINK_ROW', where: 'sinks.summaries-db' });
    expect((failure as PrepareFailure).error.message).toMatch(/at s\/0@7 is not an object: give `columns`/);
  });

  it('fails only a record whose column expression throws; the others become rows', async () => {
    const sink = postgresSink.create({ ...base, columns: { id: 'id', n: '$number(n)' } }, ctx);
    const out = await sink.prepare([record({ id: 1, n: '2' }), record({ id: 2, n: 'x' }), record({ id: 3, n: '4' })]);
    expect(out[0]).toEqual({ key: null, value: { id: 1, n: 2 } });
    expect(out[2]).toEqual({ key: null, value: { id: 3, n: 4 } });
    expect(out[1]).toBeInstanceOf(PrepareFailure);
    expect((out[1] as PrepareFailure).error).toMatchObject({ code: 'E_SINK_EXPR' });
    expect((out[1] as PrepareFailure).error.message).toMatch(/column `n` failed for the record at s\/0@7/);
  });

  it('refuses upsert without key, and a key outside the mapped columns', () => {
    expect(() => postgresSink.create({ ...base, mode: 'upsert' }, ctx)).toThrow(/needs `key`/);
    expect(() => postgresSink.create({ ...base, mode: 'upsert', key: ['id'], columns: { v: 'v' } }, ctx)).toThrow(/key column\(s\) id are not in `columns`/);
  });

  it('describes itself without secrets', () => {
    expect(postgresSink.describe({ ...base, password: 'hunter2', mode: 'upsert', key: ['a'] })).toBe(
      'upsert into public.employee_activity_summaries at postgres@127.0.0.1:5432/streaming_db key (a)',
    );
  });
});

describe('isTransient', () => {
  it('retries lost connections, serialization failures and deadlocks, not missing tables', () => {
    const pgError = (code: string) => Object.assign(new Error(code), { code, severity: 'ERROR' });
    expect(isTransient(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransient(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }))).toBe(true);
    expect(isTransient(pgError('40001'))).toBe(true);
    expect(isTransient(pgError('40P01'))).toBe(true);
    expect(isTransient(pgError('57P01'))).toBe(true);
    expect(isTransient(pgError('42P01'))).toBe(false);
    expect(isTransient(pgError('23505'))).toBe(false);
  });
});

describe('row refusals', () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'ERROR' });

  it('are the errors about what one row holds: its values, its constraints, its fields; not the table, the connection or a lock', () => {
    for (const code of ['22P02', '22001', '22003', '23502', '23505', '23514', '42703', '42804']) expect(isRowRefusal(pgError(code, code)), code).toBe(true);
    for (const code of ['42P01', '42P10', '42501', '40001', '08006', '57P01']) expect(isRowRefusal(pgError(code, code)), code).toBe(false);
    expect(isRowRefusal(new Error('Connection terminated unexpectedly'))).toBe(false);
  });

  it('carry the reason without the refused value, which a data exception quotes', () => {
    expect(refusalMessage(pgError('22P02', 'invalid input syntax for type integer: "Jane Doe, 12 Main St"'))).toBe('invalid input syntax for type integer: "…" (SQLSTATE 22P02)');
    expect(refusalMessage(pgError('22003', 'value "99999999999" is out of range for type integer'))).toBe('value "…" is out of range for type integer (SQLSTATE 22003)');
    // Constraint and column errors quote identifiers, which say where to look.
    expect(refusalMessage(pgError('23502', 'null value in column "activity_count" of relation "t" violates not-null constraint'))).toBe(
      'null value in column "activity_count" of relation "t" violates not-null constraint (SQLSTATE 23502)',
    );
  });
});

describe('postgres sink under exactly-once', () => {
  /** A checkpoint transaction that records what is executed in it. */
  function transaction(target: string, fail?: Error): PostgresCheckpointTransaction & { executed: Statement[][] } {
    const executed: Statement[][] = [];
    return {
      target,
      executed,
      execute: async (statements) => {
        if (fail) throw fail;
        executed.push([...statements]);
      },
    };
  }

  function exactlyOnce(tx?: PostgresCheckpointTransaction): ComponentContext {
    const shared = new SharedResources();
    if (tx) shared.set(POSTGRES_TRANSACTION, tx);
    return { ...ctx, mode: 'run', checkpoints: { delivery: 'exactly-once', applicationId: 'app', shared } };
  }

  it('writes its batches into the checkpoint transaction, not through a connection of its own', async () => {
    const tx = transaction('postgres@127.0.0.1:5432/streaming_db');
    const sink = postgresSink.create({ ...base, mode: 'upsert', key: ['id'], create_table: true }, exactlyOnce(tx));
    await sink.open();
    await sink.write(requireMessages(await sink.prepare([record({ id: 1, v: 'a' }), record({ id: 1, v: 'b' })])));
    await sink.write(requireMessages(await sink.prepare([record({ id: 2, v: 'c' })])));
    await sink.close();
    // The table is created once, inside the first batch's statements; the last row per key wins.
    expect(tx.executed.map((batch) => batch.map((s) => s.text.split(' (')[0]))).toEqual([
      ['CREATE TABLE IF NOT EXISTS "public"."employee_activity_summaries"', 'INSERT INTO "public"."employee_activity_summaries"'],
      ['INSERT INTO "public"."employee_activity_summaries"'],
    ]);
    expect(tx.executed[0]![1]!.values).toEqual([1, 'b']);
  });

  it('refuses at open a database other than the one that keeps the state: one transaction cannot span two', async () => {
    const sink = postgresSink.create({ ...base, host: 'other.example' }, exactlyOnce(transaction('postgres@127.0.0.1:5432/streaming_db')));
    await expect(sink.open()).rejects.toMatchObject({
      name: 'ConfigError',
      code: 'E_DELIVERY',
      where: 'sinks.summaries-db',
      message: 'delivery: exactly-once needs this sink on the database that keeps the state (postgres@127.0.0.1:5432/streaming_db), not postgres@other.example:5432/streaming_db: one transaction cannot span two databases',
    });
  });

  it('refuses at open when no checkpoint transaction is set up', async () => {
    await expect(postgresSink.create(base, exactlyOnce()).open()).rejects.toMatchObject({ code: 'E_DELIVERY', message: expect.stringContaining('checkpoint.store must be postgres') });
  });

  it('refuses, before writing, rows with a field the table has no column for: a failed statement would lose the whole transaction', async () => {
    const tx = transaction('postgres@127.0.0.1:5432/streaming_db');
    const clock = new ManualClock(0);
    let reads = 0;
    let columns = new Set(['id', 'v']);
    const sink = new PostgresSink(base, { ...exactlyOnce(tx), clock }, async () => {
      reads++;
      return columns;
    });
    await sink.open();
    const result = await sink.write(requireMessages(await sink.prepare([record({ id: 1, v: 'a' }), record({ id: 2, v: 'b', colour: 'red' }), record({ id: 3 })])));
    expect(result?.refused.map((r) => [r.index, r.error.message])).toEqual([[1, 'public.employee_activity_summaries has no column `colour` (add it, or map fields with `columns`)']]);
    expect(result?.refused[0]!.error).toMatchObject({ code: 'E_PG_SINK_COLUMN', where: 'sinks.summaries-db' });
    expect(tx.executed).toHaveLength(1);
    expect(tx.executed[0]![0]!.values).toEqual([1, 'a', 3, null]);
    // The columns are read once, and again only when a row needs one the list lacks and it is 10 s old.
    await sink.write(requireMessages(await sink.prepare([record({ id: 4, colour: 'blue' })])));
    expect(reads).toBe(1);
    columns = new Set(['id', 'v', 'colour']); // ALTER TABLE ... ADD COLUMN colour
    clock.advance(10_000);
    expect(await sink.write(requireMessages(await sink.prepare([record({ id: 5, colour: 'green' })])))).toBeUndefined();
    expect(reads).toBe(2);
    expect(tx.executed.at(-1)![0]!.values).toEqual([5, 'green']);
  });

  it('does not retry inside the transaction: a lost connection fails the write at once, saying a restart resumes from the last checkpoint', async () => {
    const lost = new Error('Connection terminated unexpectedly');
    const sink = new PostgresSink(base, exactlyOnce(transaction('postgres@127.0.0.1:5432/streaming_db', lost)), async () => new Set(['id']));
    await sink.open();
    await expect(sink.write(requireMessages(await sink.prepare([record({ id: 1 })])))).rejects.toMatchObject({
      code: 'E_PG_SINK',
      message: expect.stringMatching(/in the checkpoint transaction failed: Connection terminated unexpectedly; nothing since the last checkpoint is committed/),
    });
  });
});
