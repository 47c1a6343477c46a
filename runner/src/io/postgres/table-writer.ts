/**
 * Statements the `postgres` sink runs: multi-row INSERT, optionally ON CONFLICT DO UPDATE, with
 * quoted identifiers and parameterised values. Pure functions, so the SQL is testable without a
 * server.
 */
import { qualifiedIdent, quoteIdent } from './connection.ts';
import type { TableRef } from './catalog.ts';

export type SqlRow = Record<string, unknown>;

export interface Statement {
  text: string;
  values: unknown[];
}

/** PostgreSQL accepts at most 65535 parameters per statement. */
export const MAX_PARAMETERS = 65_535;

/** Columns of a batch: the given list, or every field of the rows in order of first appearance. */
export function columnsOf(rows: readonly SqlRow[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const k of Object.keys(row)) seen.add(k);
  return [...seen];
}

/**
 * Keeps the last row per key, in the order of those last rows. An upsert statement may not touch
 * the same row twice ("ON CONFLICT DO UPDATE command cannot affect row a second time"); the last
 * version is the one that must win.
 */
export function lastPerKey(rows: readonly SqlRow[], key: readonly string[]): SqlRow[] {
  const byKey = new Map<string, number>();
  rows.forEach((row, i) => byKey.set(JSON.stringify(key.map((k) => row[k] ?? null), jsonReplacer), i));
  return [...byKey.values()].sort((a, b) => a - b).map((i) => rows[i]!);
}

function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** A value as a query parameter: JSON for objects and arrays (json/jsonb columns), text for bigints. */
export function parameter(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'bigint') return v.toString();
  if (v !== null && typeof v === 'object' && !(v instanceof Date) && !Buffer.isBuffer(v)) return JSON.stringify(v, jsonReplacer);
  return v;
}

/**
 * INSERT statements for the rows, each within the parameter limit. With `upsertKey`, conflicting
 * rows are updated (every non-key column set from EXCLUDED; DO NOTHING when all columns are key).
 */
export function insertStatements(table: TableRef, columns: readonly string[], rows: readonly SqlRow[], upsertKey?: readonly string[]): Statement[] {
  if (rows.length === 0 || columns.length === 0) return [];
  const perStatement = Math.max(1, Math.floor(MAX_PARAMETERS / columns.length));
  const head = `INSERT INTO ${qualifiedIdent(table)} (${columns.map(quoteIdent).join(', ')}) VALUES `;
  let tail = '';
  if (upsertKey && upsertKey.length > 0) {
    const updates = columns.filter((c) => !upsertKey.includes(c));
    tail =
      ` ON CONFLICT (${upsertKey.map(quoteIdent).join(', ')}) DO ` +
      (updates.length === 0 ? 'NOTHING' : `UPDATE SET ${updates.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ')}`);
  }
  const statements: Statement[] = [];
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const values: unknown[] = [];
    const tuples = chunk.map((row) => {
      const params = columns.map((c) => {
        values.push(parameter(row[c]));
        return `$${values.length}`;
      });
      return `(${params.join(', ')})`;
    });
    statements.push({ text: head + tuples.join(', ') + tail, values });
  }
  return statements;
}

/** The SQL type `create_table` gives a column, from the first non-null value seen for it. */
export function inferredType(v: unknown): string {
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'bigint') return 'bigint';
  if (typeof v === 'number') return Number.isInteger(v) ? 'bigint' : 'double precision';
  if (typeof v === 'string') return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(v) ? 'timestamptz' : 'text';
  if (v !== null && typeof v === 'object') return 'jsonb';
  return 'text';
}

export function createTableStatement(table: TableRef, columns: readonly string[], rows: readonly SqlRow[], key?: readonly string[]): string {
  const defs = columns.map((c) => {
    const sample = rows.find((r) => r[c] !== null && r[c] !== undefined)?.[c];
    return `${quoteIdent(c)} ${inferredType(sample)}${key?.includes(c) ? ' NOT NULL' : ''}`;
  });
  if (key && key.length > 0) defs.push(`PRIMARY KEY (${key.map(quoteIdent).join(', ')})`);
  return `CREATE TABLE IF NOT EXISTS ${qualifiedIdent(table)} (${defs.join(', ')})`;
}
