import { describe, expect, it } from 'vitest';
import { columnsOf, createTableStatement, inferredType, insertStatements, lastPerKey, MAX_PARAMETERS, parameter } from '../../../src/io/postgres/table-writer.ts';

const t = { schema: 'public', table: 'employee_activity_summaries' };

describe('insertStatements', () => {
  it('quotes identifiers and numbers parameters across rows', () => {
    const [s] = insertStatements({ schema: 'odd"schema', table: 'T' }, ['a', 'b"c'], [{ a: 1, 'b"c': 'x' }, { a: 2 }]);
    expect(s!.text).toBe('INSERT INTO "odd""schema"."T" ("a", "b""c") VALUES ($1, $2), ($3, $4)');
    expect(s!.values).toEqual([1, 'x', 2, null]);
  });

  it('upserts every non-key column from EXCLUDED, or does nothing when all columns are key', () => {
    const [s] = insertStatements(t, ['employee_id', 'window_start', 'n'], [{ employee_id: 1, window_start: 'w', n: 3 }], ['employee_id', 'window_start']);
    expect(s!.text).toMatch(/ ON CONFLICT \("employee_id", "window_start"\) DO UPDATE SET "n" = EXCLUDED\."n"$/);
    const [k] = insertStatements(t, ['id'], [{ id: 1 }], ['id']);
    expect(k!.text).toMatch(/ON CONFLICT \("id"\) DO NOTHING$/);
  });

  it('splits rows so that no statement exceeds the parameter limit', () => {
    const columns = ['a', 'b', 'c'];
    const rows = Array.from({ length: 30_000 }, (_, i) => ({ a: i, b: i, c: i }));
    const statements = insertStatements(t, columns, rows);
    expect(statements.length).toBe(2);
    for (const s of statements) expect(s.values.length).toBeLessThanOrEqual(MAX_PARAMETERS);
    expect(statements.reduce((n, s) => n + s.values.length, 0)).toBe(90_000);
  });

  it('writes nothing for no rows', () => {
    expect(insertStatements(t, ['a'], [])).toEqual([]);
  });
});

describe('lastPerKey', () => {
  it('keeps the last row per key, so one upsert statement never touches a row twice', () => {
    const rows = [
      { k: 1, v: 'old' },
      { k: 2, v: 'only' },
      { k: 1, v: 'new' },
    ];
    expect(lastPerKey(rows, ['k'])).toEqual([
      { k: 2, v: 'only' },
      { k: 1, v: 'new' },
    ]);
  });

  it('tells bigint keys apart', () => {
    expect(lastPerKey([{ k: 2n ** 60n }, { k: 2n ** 60n + 1n }], ['k'])).toHaveLength(2);
  });
});

describe('values and columns', () => {
  it('sends objects and arrays as JSON and bigints as text', () => {
    expect(parameter({ a: [1, 2n] })).toBe('{"a":[1,"2"]}');
    expect(parameter([1, 2])).toBe('[1,2]');
    expect(parameter(12345678901234567890n)).toBe('12345678901234567890');
    expect(parameter(undefined)).toBeNull();
    expect(parameter('x')).toBe('x');
  });

  it('takes every field of the rows in order of first appearance', () => {
    expect(columnsOf([{ a: 1 }, { b: 2, a: 3 }])).toEqual(['a', 'b']);
  });

  it('guesses column types for create_table', () => {
    expect(inferredType(1)).toBe('bigint');
    expect(inferredType(1.5)).toBe('double precision');
    expect(inferredType('2025-01-02T10:00:00.000Z')).toBe('timestamptz');
    expect(inferredType('login')).toBe('text');
    expect(inferredType({})).toBe('jsonb');
    expect(createTableStatement(t, ['id', 'v'], [{ id: 1, v: null }], ['id'])).toBe(
      'CREATE TABLE IF NOT EXISTS "public"."employee_activity_summaries" ("id" bigint NOT NULL, "v" text, PRIMARY KEY ("id"))',
    );
  });
});
