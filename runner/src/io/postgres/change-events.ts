/**
 * Debezium 2.7 change events for PostgreSQL tables: key and value objects exactly as the connector
 * writes them through JsonConverter with schemas enabled ({schema, payload}). Pure functions; the
 * per-table schemas are built once per Relation and reused for every row.
 */
import { LOGICAL, type ConnectSchema } from '../debezium/connect-schema.ts';
import type { TupleValue } from '../pgoutput/protocol.ts';
import type { ColumnCodec, ConnectField } from './debezium-types.ts';
import { columnCodec } from './debezium-types.ts';
import type { TableInfo } from './catalog.ts';
import { constantJson, stringifyJson } from '../../engine/json.ts';

/** The connector version the events claim to come from: the one whose output they reproduce. */
export const DEBEZIUM_VERSION = '2.7.4.Final';

export type Row = Record<string, unknown>;

/** A captured table: its codecs in the column order changes arrive in, and its Connect schemas. */
export interface CapturedTable {
  oid: number;
  schema: string;
  table: string;
  /** `<topic_prefix>.<schema>.<table>`: Debezium's topic, and the stem of its schema names. */
  topic: string;
  codecs: ColumnCodec[];
  /** Indexes into `codecs` of the primary key columns, in key order; empty without a primary key. */
  keyIndexes: number[];
  keySchema: ConnectSchema | null;
  envelopeSchema: ConnectSchema;
}

/** Source block of the PostgreSQL connector, as 2.7.4 declares it. */
function sourceSchema(): ConnectSchema {
  const f = (type: ConnectSchema['type'], optional: boolean, field: string): ConnectSchema => ({ type, optional, field });
  return {
    type: 'struct',
    fields: [
      f('string', false, 'version'),
      f('string', false, 'connector'),
      f('string', false, 'name'),
      f('int64', false, 'ts_ms'),
      {
        type: 'string',
        optional: true,
        name: LOGICAL.Enum,
        version: 1,
        parameters: { allowed: 'true,last,false,incremental' },
        default: 'false',
        field: 'snapshot',
      },
      f('string', false, 'db'),
      f('string', true, 'sequence'),
      f('int64', true, 'ts_us'),
      f('int64', true, 'ts_ns'),
      f('string', false, 'schema'),
      f('string', false, 'table'),
      f('int64', true, 'txId'),
      f('int64', true, 'lsn'),
      f('int64', true, 'xmin'),
    ],
    optional: false,
    name: 'io.debezium.connector.postgresql.Source',
    field: 'source',
  };
}

function transactionSchema(): ConnectSchema {
  return {
    type: 'struct',
    fields: [
      { type: 'string', optional: false, field: 'id' },
      { type: 'int64', optional: false, field: 'total_order' },
      { type: 'int64', optional: false, field: 'data_collection_order' },
    ],
    optional: true,
    name: 'event.block',
    version: 1,
    field: 'transaction',
  };
}

/**
 * Schemas and codecs of a table whose changes arrive with `columnNames` (the Relation message's
 * columns). Throws UnsupportedColumnTypeError for a column it cannot encode.
 */
export function captureTable(info: TableInfo, columnNames: readonly string[], topicPrefix: string): CapturedTable {
  const qualified = `${info.schema}.${info.table}`;
  const topic = `${topicPrefix}.${info.schema}.${info.table}`;
  const codecs = columnNames.map((name) => {
    const col = info.columns.find((c) => c.name === name);
    if (!col) throw new Error(`column "${name}" of ${qualified} is not in the catalog (was the table altered?)`);
    return columnCodec(qualified, col);
  });
  const keyIndexes = info.primaryKey.map((k) => codecs.findIndex((c) => c.column === k)).filter((i) => i >= 0);
  const fields: ConnectField[] = codecs.map((c) => c.schema);
  const row = (field: string): ConnectSchema => ({ type: 'struct', fields, optional: true, name: `${topic}.Value`, field });
  // Both go out with every row of the table: their JSON text is rendered once (constantJson).
  const keySchema: ConnectSchema | null =
    keyIndexes.length > 0 ? constantJson<ConnectSchema>({ type: 'struct', fields: keyIndexes.map((i) => codecs[i]!.schema), optional: false, name: `${topic}.Key` }) : null;
  const envelopeSchema: ConnectSchema = constantJson({
    type: 'struct',
    fields: [
      row('before'),
      row('after'),
      sourceSchema(),
      transactionSchema(),
      { type: 'string', optional: false, field: 'op' },
      { type: 'int64', optional: true, field: 'ts_ms' },
      { type: 'int64', optional: true, field: 'ts_us' },
      { type: 'int64', optional: true, field: 'ts_ns' },
    ],
    optional: false,
    name: `${topic}.Envelope`,
    version: 2,
  });
  return { oid: info.oid, schema: info.schema, table: info.table, topic, codecs, keyIndexes, keySchema, envelopeSchema };
}

/** A row image from values in text form (null = SQL NULL or not sent). */
export type TextRow = readonly (string | null | undefined)[];

/**
 * A tuple from pgoutput as text values: 'n' -> null, 'u' (unchanged TOAST) -> undefined, 't' -> text.
 */
export function tupleText(tuple: readonly TupleValue[]): TextRow {
  return tuple.map((v) => (v.kind === 'text' ? v.text : v.kind === 'null' ? null : undefined));
}

/**
 * Encodes a row. `undefined` marks an unchanged TOASTed value (Debezium's placeholder); null, SQL
 * NULL or a column the key-only tuple did not carry, becomes the default or Debezium's fallback.
 * Throws with the column named when a value cannot be read.
 */
export function encodeRow(table: CapturedTable, values: TextRow): Row {
  const out: Row = {};
  const { codecs } = table;
  for (let i = 0; i < codecs.length; i++) {
    const codec = codecs[i]!;
    const v = values[i];
    if (v === null) out[codec.column] = codec.absent;
    else if (v === undefined) out[codec.column] = i < values.length ? codec.unavailable : codec.absent;
    else {
      try {
        out[codec.column] = codec.decode(v);
      } catch (err) {
        throw new Error(`${table.schema}.${table.table} column "${codec.column}": ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return out;
}

/** A key or value as JsonConverter writes it with schemas enabled. */
export interface SchemaAndPayload {
  schema: ConnectSchema;
  payload: Row;
}

/** The key of a row: its primary key columns, or null for a table without a primary key. */
export function encodeKey(table: CapturedTable, row: Row): SchemaAndPayload | null {
  if (!table.keySchema) return null;
  const payload: Row = {};
  for (const i of table.keyIndexes) {
    const column = table.codecs[i]!.column;
    payload[column] = row[column];
  }
  return { schema: table.keySchema, payload };
}

/** Whether two rows have the same primary key (an update that changes it is a delete plus a create). */
export function sameKey(table: CapturedTable, a: Row, b: Row): boolean {
  return table.keyIndexes.every((i) => {
    const column = table.codecs[i]!.column;
    // stringifyJson: int8 keys beyond 2^53 are bigints, which JSON.stringify throws on.
    return stringifyJson(a[column]) === stringifyJson(b[column]);
  });
}

export interface ChangeFacts {
  op: 'c' | 'u' | 'd' | 'r';
  /** "false" while streaming; "first" | "true" | "last" during the initial snapshot. */
  snapshot: string;
  db: string;
  topicPrefix: string;
  txId: number | null;
  lsn: bigint;
  /** End LSN of the last transaction committed before this one (first half of `sequence`). */
  lastCommitLsn: bigint | null;
  /** Commit time (snapshot: snapshot time), epoch microseconds. */
  commitMicros: bigint;
  /**
   * When the event was made, epoch nanoseconds: the envelope's ts_ms, ts_us and ts_ns (Debezium
   * fills all three from one instant, finer than a millisecond).
   */
  processedNanos: bigint;
}

/** A 64-bit integer as JSON parsing gives it back: a number when exact, else a bigint. */
function int64Value(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function encodeValue(table: CapturedTable, facts: ChangeFacts, before: Row | null, after: Row | null): SchemaAndPayload {
  const { processedNanos } = facts;
  return {
    schema: table.envelopeSchema,
    payload: {
      before,
      after,
      source: {
        version: DEBEZIUM_VERSION,
        connector: 'postgresql',
        name: facts.topicPrefix,
        ts_ms: Number(facts.commitMicros / 1000n),
        snapshot: facts.snapshot,
        db: facts.db,
        sequence: JSON.stringify([facts.lastCommitLsn === null ? null : String(facts.lastCommitLsn), String(facts.lsn)]),
        ts_us: int64Value(facts.commitMicros),
        ts_ns: int64Value(facts.commitMicros * 1000n),
        schema: table.schema,
        table: table.table,
        txId: facts.txId,
        lsn: int64Value(facts.lsn),
        xmin: null,
      },
      transaction: null,
      op: facts.op,
      ts_ms: Number(processedNanos / 1_000_000n),
      ts_us: int64Value(processedNanos / 1000n),
      ts_ns: int64Value(processedNanos),
    },
  };
}
