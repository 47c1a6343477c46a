/**
 * What the source asks PostgreSQL's catalog, on a normal (non-replication) connection: slots,
 * publications, and the column facts that Relation messages do not carry (NOT NULL, defaults,
 * primary key) but Debezium's schemas need.
 */
import type pg from 'pg';
import type { Lsn } from '../pgoutput/lsn.ts';
import { parseLsn } from '../pgoutput/lsn.ts';
import type { ColumnInfo } from './debezium-types.ts';

/** Runs queries; a `pg.Client` or `pg.PoolClient`. */
export type Queryable = Pick<pg.Client, 'query'>;

export interface SlotInfo {
  plugin: string | null;
  slotType: string;
  database: string | null;
  active: boolean;
  activePid: number | null;
  confirmedFlush: Lsn | null;
}

export interface TableRef {
  schema: string;
  table: string;
}

export interface TableInfo extends TableRef {
  oid: number;
  columns: ColumnInfo[];
  /** Primary key column names in key order; empty when the table has none. */
  primaryKey: string[];
  /** d = default, n = nothing, f = full, i = index. */
  replicaIdentity: string;
}

/** Booleans arrive as true or, on a connection that keeps every value as text, as 't'. */
function bool(v: unknown): boolean {
  return v === true || v === 't';
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Error(`catalog query returned no ${what}`);
  return v;
}

export async function walLevel(db: Queryable): Promise<string> {
  const res = await db.query('SHOW wal_level');
  return str(res.rows[0]?.wal_level, 'wal_level');
}

/**
 * Bytes of WAL between the server's current position and what the slot confirmed: what a slow or
 * stopped reader keeps on the server's disk. Undefined when the slot does not exist (or confirmed nothing yet).
 */
export async function slotLagBytes(db: Queryable, slot: string): Promise<number | undefined> {
  const res = await db.query(
    'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS lag FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const lag: unknown = res.rows[0]?.lag;
  return typeof lag === 'number' ? Math.max(0, lag) : undefined;
}

export async function slotInfo(db: Queryable, slot: string): Promise<SlotInfo | undefined> {
  const res = await db.query(
    `SELECT plugin, slot_type, database, active, active_pid, confirmed_flush_lsn::text AS confirmed_flush
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row: Record<string, unknown> | undefined = res.rows[0];
  if (!row) return undefined;
  return {
    plugin: typeof row.plugin === 'string' ? row.plugin : null,
    slotType: str(row.slot_type, 'slot_type'),
    database: typeof row.database === 'string' ? row.database : null,
    active: bool(row.active),
    activePid: row.active_pid === null || row.active_pid === undefined ? null : Number(row.active_pid),
    confirmedFlush: typeof row.confirmed_flush === 'string' ? parseLsn(row.confirmed_flush) : null,
  };
}

/** Tables in the publication, or undefined when there is no such publication. */
export async function publicationTables(db: Queryable, publication: string): Promise<TableRef[] | undefined> {
  const exists = await db.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  if (exists.rowCount === 0) return undefined;
  const res = await db.query('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [publication]);
  return res.rows.map((r: Record<string, unknown>) => ({ schema: str(r.schemaname, 'schemaname'), table: str(r.tablename, 'tablename') }));
}

/** Parses `schema.table` or `table` (schema public), as Debezium's table.include.list names tables. */
export function parseTableName(name: string): TableRef {
  const dot = name.indexOf('.');
  return dot < 0 ? { schema: 'public', table: name } : { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}

export function qualifiedName(t: TableRef): string {
  return `${t.schema}.${t.table}`;
}

const COLUMNS_SQL = `
  SELECT c.oid, n.nspname, c.relname, c.relreplident,
         a.attname, a.atttypid::int AS typoid, a.atttypmod, format_type(a.atttypid, a.atttypmod) AS typname,
         a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS defexpr,
         array_position(pk.conkey, a.attnum) AS pkpos
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
   WHERE %WHERE%
   ORDER BY a.attnum`;

function toTableInfo(rows: Record<string, unknown>[]): TableInfo | undefined {
  const first = rows[0];
  if (!first) return undefined;
  const columns: ColumnInfo[] = [];
  const keyed: { name: string; pos: number }[] = [];
  for (const r of rows) {
    const name = str(r.attname, 'attname');
    columns.push({
      name,
      typeOid: Number(r.typoid),
      typeMod: Number(r.atttypmod),
      typeName: str(r.typname, 'typname'),
      notNull: bool(r.attnotnull),
      defaultExpr: typeof r.defexpr === 'string' ? r.defexpr : null,
    });
    if (r.pkpos !== null && r.pkpos !== undefined) keyed.push({ name, pos: Number(r.pkpos) });
  }
  return {
    oid: Number(first.oid),
    schema: str(first.nspname, 'nspname'),
    table: str(first.relname, 'relname'),
    replicaIdentity: str(first.relreplident, 'relreplident'),
    columns,
    primaryKey: keyed.sort((a, b) => a.pos - b.pos).map((k) => k.name),
  };
}

export async function tableInfoByOid(db: Queryable, oid: number): Promise<TableInfo | undefined> {
  const res = await db.query(COLUMNS_SQL.replace('%WHERE%', 'c.oid = $1'), [oid]);
  return toTableInfo(res.rows);
}

export async function tableInfoByName(db: Queryable, t: TableRef): Promise<TableInfo | undefined> {
  const res = await db.query(COLUMNS_SQL.replace('%WHERE%', 'n.nspname = $1 AND c.relname = $2'), [t.schema, t.table]);
  return toTableInfo(res.rows);
}
