/**
 * Builds change events exactly as Debezium 2.7's PostgreSQL connector writes them through Kafka
 * Connect's JsonConverter (schemas enabled, `replace.null.with.default=true`, the default):
 *
 *   key   {"schema":{...Key},"payload":{"id":15}}
 *   value {"schema":{...Envelope, version 2},"payload":{before, after, source, transaction, op, ts_ms, ts_us, ts_ns}}
 *
 * with the connector's default encodings (time.precision.mode=adaptive, decimal.handling.mode=precise):
 * TIMESTAMP -> int64 MicroTimestamp (epoch µs of the wall clock read as UTC), DATE -> int32 days,
 * NUMERIC(p,s) -> base64 Decimal, JSON/JSONB -> string io.debezium.data.Json, and so on.
 *
 * Schema objects are built with their keys in the JsonConverter's order (type, fields/items,
 * optional, name, version, doc, parameters, default, field), so `stringifyJson` of an event is
 * byte-for-byte what Debezium puts on the topic. The generator and the postgres-cdc source use this.
 */
import { LOGICAL, type ConnectSchema, type ConnectType } from './connect-schema.ts';
import type { DebeziumOp, DebeziumSource, DebeziumTransaction, Row } from './envelope.ts';
import {
  dateToEpochDays,
  encodeDecimal,
  encodeVariableScaleDecimal,
  timestampToEpochMicros,
  timestampToEpochMillis,
  timestamptzToZoned,
  timeToMicrosOfDay,
} from './logical-types.ts';

export const DEBEZIUM_VERSION = '2.7.4.Final';

/**
 * Values the PostgreSQL connector's `source.snapshot` enum allows in 2.7, as its schema says (real
 * 2.7.4 output; other connectors of 2.7 list more, e.g. first, first_in_data_collection).
 */
export const SNAPSHOT_VALUES = 'true,last,false,incremental';

interface SchemaParts {
  fields?: ConnectSchema[];
  items?: ConnectSchema;
  optional: boolean;
  name?: string;
  version?: number;
  doc?: string;
  parameters?: Record<string, string>;
  default?: unknown;
  field?: string;
}

/** A Connect schema object with its keys in JsonConverter order. */
export function connectSchema(type: ConnectType, parts: SchemaParts): ConnectSchema {
  const s: Record<string, unknown> = { type };
  if (parts.fields !== undefined) s.fields = parts.fields;
  if (parts.items !== undefined) s.items = parts.items;
  s.optional = parts.optional;
  if (parts.name !== undefined) s.name = parts.name;
  if (parts.version !== undefined) s.version = parts.version;
  if (parts.doc !== undefined) s.doc = parts.doc;
  if (parts.parameters !== undefined) s.parameters = parts.parameters;
  if (parts.default !== undefined) s.default = parts.default;
  if (parts.field !== undefined) s.field = parts.field;
  return s as unknown as ConnectSchema;
}

/** The same schema as a struct field named `field` (the `field` key goes last, as the converter writes it). */
export function asField(schema: ConnectSchema, field: string): ConnectSchema {
  const { type, field: _old, ...rest } = schema;
  return connectSchema(type, { ...rest, field });
}

/* ------------------------------------------------------------------ column schemas */

/** A PostgreSQL column as the connector sees it. */
export interface PgColumn {
  name: string;
  /** PostgreSQL type name as in pg_type: int4, varchar, timestamp, numeric, jsonb, _text (arrays) ... */
  type: string;
  /** False for NOT NULL columns. */
  optional: boolean;
  /** Type modifiers: precision for numeric/timestamp/time (timestamp(3) -> 3) and the length of bit(n); scale for numeric and money. */
  precision?: number;
  scale?: number;
  /** The default in its Connect encoding (Debezium parses literal defaults: `0`, `'PENDING'`; CURRENT_TIMESTAMP becomes 0). */
  default?: unknown;
}

function logical(type: ConnectType, name: string, optional: boolean, extra: Partial<SchemaParts> = {}): ConnectSchema {
  return connectSchema(type, { optional, name, version: 1, ...extra });
}

/** The Connect schema Debezium 2.7 gives a PostgreSQL column (without the field name). */
export function pgColumnSchema(col: Omit<PgColumn, 'name'>): ConnectSchema {
  const optional = col.optional;
  const withDefault = (s: ConnectSchema): ConnectSchema => (col.default === undefined ? s : connectSchema(s.type, { ...s, default: col.default }));
  const t = col.type.toLowerCase();
  if (t.startsWith('_')) {
    const items = pgColumnSchema({ type: t.slice(1), optional: true });
    return withDefault(connectSchema('array', { items, optional }));
  }
  switch (t) {
    case 'bool':
    case 'boolean':
      return withDefault(connectSchema('boolean', { optional }));
    case 'int2':
    case 'smallint':
    case 'smallserial':
      return withDefault(connectSchema('int16', { optional }));
    case 'int4':
    case 'integer':
    case 'serial':
      return withDefault(connectSchema('int32', { optional }));
    case 'int8':
    case 'bigint':
    case 'bigserial':
    case 'oid':
      return withDefault(connectSchema('int64', { optional }));
    case 'float4':
    case 'real':
      return withDefault(connectSchema('float', { optional }));
    case 'float8':
    case 'double precision':
      return withDefault(connectSchema('double', { optional }));
    case 'numeric':
    case 'decimal':
      if (col.precision === undefined) {
        const fields = [connectSchema('int32', { optional: false, field: 'scale' }), connectSchema('bytes', { optional: false, field: 'value' })];
        return withDefault(connectSchema('struct', { fields, optional, name: LOGICAL.VariableScaleDecimal, version: 1, doc: 'Variable scaled decimal' }));
      }
      return withDefault(
        logical('bytes', LOGICAL.Decimal, optional, {
          parameters: { scale: String(col.scale ?? 0), 'connect.decimal.precision': String(col.precision) },
        }),
      );
    case 'uuid':
      return withDefault(logical('string', LOGICAL.Uuid, optional));
    case 'json':
    case 'jsonb':
      return withDefault(logical('string', LOGICAL.Json, optional));
    case 'xml':
      return withDefault(logical('string', LOGICAL.Xml, optional));
    case 'date':
      return withDefault(logical('int32', LOGICAL.Date, optional));
    case 'time':
      return withDefault((col.precision ?? 6) <= 3 ? logical('int32', LOGICAL.Time, optional) : logical('int64', LOGICAL.MicroTime, optional));
    case 'timetz':
      return withDefault(logical('string', LOGICAL.ZonedTime, optional));
    case 'timestamp':
      return withDefault(
        (col.precision ?? 6) <= 3 ? logical('int64', LOGICAL.Timestamp, optional) : logical('int64', LOGICAL.MicroTimestamp, optional),
      );
    case 'timestamptz':
      return withDefault(logical('string', LOGICAL.ZonedTimestamp, optional));
    case 'interval':
      return withDefault(logical('int64', LOGICAL.MicroDuration, optional));
    case 'money':
      return withDefault(logical('bytes', LOGICAL.Decimal, optional, { parameters: { scale: String(col.scale ?? 2) } }));
    case 'bit':
    case 'varbit':
    case 'bit varying':
      return withDefault(logical('bytes', LOGICAL.Bits, optional, { parameters: { length: String(col.precision ?? 1) } }));
    case 'bytea':
      return withDefault(connectSchema('bytes', { optional }));
    default:
      // text, varchar, bpchar, name, inet, cidr, macaddr, citext, enums ...: strings.
      return withDefault(connectSchema('string', { optional }));
  }
}

/**
 * A PostgreSQL text-format value (as pgoutput sends it) in the Connect encoding of its column.
 * `null` stays null (the envelope applies defaults).
 */
export function pgTextToConnect(col: Omit<PgColumn, 'name'>, text: string | null): unknown {
  if (text === null) return null;
  const t = col.type.toLowerCase();
  switch (t) {
    case 'bool':
    case 'boolean':
      return text === 't' || text === 'true';
    case 'int2':
    case 'smallint':
    case 'int4':
    case 'integer':
    case 'serial':
    case 'smallserial':
      return Number(text);
    case 'int8':
    case 'bigint':
    case 'bigserial':
    case 'oid': {
      const big = BigInt(text);
      return big > BigInt(Number.MAX_SAFE_INTEGER) || big < -BigInt(Number.MAX_SAFE_INTEGER) ? big : Number(big);
    }
    case 'float4':
    case 'real':
    case 'float8':
    case 'double precision':
      return text === 'NaN' ? 'NaN' : Number(text);
    case 'numeric':
    case 'decimal':
      return col.precision === undefined ? encodeVariableScaleDecimal(text) : encodeDecimal(text, col.scale ?? 0);
    case 'date':
      return dateToEpochDays(text);
    case 'time':
      return (col.precision ?? 6) <= 3 ? Math.floor(timeToMicrosOfDay(text) / 1000) : timeToMicrosOfDay(text);
    case 'timestamp':
      return (col.precision ?? 6) <= 3 ? timestampToEpochMillis(text) : timestampToEpochMicros(text);
    case 'timestamptz':
      return timestamptzToZoned(text);
    case 'bytea':
      return Buffer.from(text.startsWith('\\x') ? text.slice(2) : text, 'hex').toString('base64');
    default:
      return text;
  }
}

/* ------------------------------------------------------------------ envelope schemas */

/** The `source` block schema of the PostgreSQL connector in 2.7. */
export function postgresSourceSchema(): ConnectSchema {
  const f = (type: ConnectType, optional: boolean, field: string) => connectSchema(type, { optional, field });
  return connectSchema('struct', {
    fields: [
      f('string', false, 'version'),
      f('string', false, 'connector'),
      f('string', false, 'name'),
      f('int64', false, 'ts_ms'),
      connectSchema('string', {
        optional: true,
        name: LOGICAL.Enum,
        version: 1,
        parameters: { allowed: SNAPSHOT_VALUES },
        default: 'false',
        field: 'snapshot',
      }),
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
  });
}

export function transactionBlockSchema(): ConnectSchema {
  return connectSchema('struct', {
    fields: [
      connectSchema('string', { optional: false, field: 'id' }),
      connectSchema('int64', { optional: false, field: 'total_order' }),
      connectSchema('int64', { optional: false, field: 'data_collection_order' }),
    ],
    optional: true,
    name: 'event.block',
    version: 1,
    field: 'transaction',
  });
}

/** A table as the connector sees it: the topic prefix (`topic.prefix`), schema, name, columns, key columns. */
export interface PgTable {
  topicPrefix: string;
  schema: string;
  table: string;
  columns: PgColumn[];
  /** Primary-key column names (the Kafka key). */
  key: string[];
}

export interface TableSchemas {
  /** `<prefix>.<schema>.<table>`: the topic and the schema names' stem. */
  topic: string;
  key: ConnectSchema;
  /** The row struct (`...Value`), optional, without a field name. */
  row: ConnectSchema;
  envelope: ConnectSchema;
  /** Column schemas by name, for encoding rows. */
  columns: Map<string, ConnectSchema>;
}

/** Key, row and envelope schemas of a table, built once per table (and per schema change). */
export function tableSchemas(table: PgTable): TableSchemas {
  const topic = `${table.topicPrefix}.${table.schema}.${table.table}`;
  const columns = new Map<string, ConnectSchema>();
  const fields = table.columns.map((c) => {
    const s = asField(pgColumnSchema(c), c.name);
    columns.set(c.name, s);
    return s;
  });
  const keyFields = table.key.map((name) => {
    const s = columns.get(name);
    if (!s) throw new Error(`key column \`${name}\` is not a column of ${topic}`);
    return s;
  });
  const key = connectSchema('struct', { fields: keyFields, optional: false, name: `${topic}.Key` });
  const row = connectSchema('struct', { fields, optional: true, name: `${topic}.Value` });
  const envelope = connectSchema('struct', {
    fields: [
      asField(row, 'before'),
      asField(row, 'after'),
      postgresSourceSchema(),
      transactionBlockSchema(),
      connectSchema('string', { optional: false, field: 'op' }),
      connectSchema('int64', { optional: true, field: 'ts_ms' }),
      connectSchema('int64', { optional: true, field: 'ts_us' }),
      connectSchema('int64', { optional: true, field: 'ts_ns' }),
    ],
    optional: false,
    name: `${topic}.Envelope`,
    version: 2,
  });
  return { topic, key, row, envelope, columns };
}

/** The JsonConverter's stand-in when a value is null: the schema default if there is one. */
function jsonValue(schema: ConnectSchema, value: unknown): unknown {
  return value === null || value === undefined ? (schema.default ?? null) : value;
}

/** What Debezium puts in a NOT NULL column it has no value for (delete under REPLICA IDENTITY DEFAULT). */
function requiredFallback(schema: ConnectSchema): unknown {
  if (schema.default !== undefined) return schema.default;
  switch (schema.type) {
    case 'string':
      return '';
    case 'boolean':
      return false;
    case 'bytes':
      return '';
    case 'struct':
    case 'array':
    case 'map':
      return null;
    default:
      return 0;
  }
}

/**
 * A row (column values already in their Connect encoding) laid out in the table's column order.
 * Columns missing from `row` are null, or Debezium's fallback when the column is NOT NULL;
 * nulls become the column default, as the JsonConverter writes them.
 */
export function encodeRow(schemas: TableSchemas, row: Row): Row {
  const out: Row = {};
  for (const [name, schema] of schemas.columns) {
    const v = row[name];
    out[name] = v === null || v === undefined ? (schema.optional ? jsonValue(schema, null) : requiredFallback(schema)) : v;
  }
  return out;
}

/** The key payload of a row. */
export function encodeKeyPayload(schemas: TableSchemas, row: Row): Row {
  const out: Row = {};
  for (const f of schemas.key.fields ?? []) out[f.field!] = jsonValue(f, row[f.field!]);
  return out;
}

/** One change as the connector knows it, row values in Connect encoding. */
export interface PgChange {
  op: DebeziumOp;
  /** Full before image (REPLICA IDENTITY FULL), key columns only (DEFAULT, deletes), or null (DEFAULT, updates). */
  before: Row | null;
  after: Row | null;
  /** Commit time in epoch µs (PostgreSQL's precision): source.ts_ms/ts_us/ts_ns derive from it. */
  commitMicros: number;
  /** When the connector processed the event, epoch ns: the envelope's ts_ms/ts_us/ts_ns. */
  processedNanos: bigint;
  db: string;
  /** Debezium's `snapshot`: "false" while streaming. */
  snapshot?: string;
  txId: number | null;
  lsn: number | bigint;
  /** LSN of the last committed transaction before this event (first half of `sequence`). */
  lastCommitLsn: number | bigint | null;
  transaction?: DebeziumTransaction | null;
}

/** The `source` block of a change, fields in the connector's order. */
export function postgresSource(schemas: TableSchemas, table: PgTable, change: PgChange): DebeziumSource {
  const commitMs = Math.floor(change.commitMicros / 1000);
  return {
    version: DEBEZIUM_VERSION,
    connector: 'postgresql',
    name: table.topicPrefix,
    ts_ms: commitMs,
    snapshot: change.snapshot ?? 'false',
    db: change.db,
    sequence: JSON.stringify([change.lastCommitLsn === null ? null : String(change.lastCommitLsn), String(change.lsn)]),
    ts_us: change.commitMicros,
    ts_ns: BigInt(change.commitMicros) * 1000n,
    schema: table.schema,
    table: table.table,
    txId: change.txId,
    lsn: change.lsn,
    xmin: null,
  };
}

export interface EncodedEvent {
  key: { schema: ConnectSchema; payload: Row };
  /** Null for a tombstone. */
  value: { schema: ConnectSchema; payload: Record<string, unknown> } | null;
}

/** Key and value of one change event, as objects; `stringifyJson` of each is the Kafka record's text. */
export function encodeChange(schemas: TableSchemas, table: PgTable, change: PgChange): EncodedEvent {
  const keyRow = change.after ?? change.before ?? {};
  const processedMs = change.processedNanos / 1_000_000n;
  const payload = {
    before: change.before === null ? null : encodeRow(schemas, change.before),
    after: change.after === null ? null : encodeRow(schemas, change.after),
    source: postgresSource(schemas, table, change),
    transaction: change.transaction ?? null,
    op: change.op,
    ts_ms: Number(processedMs),
    ts_us: Number(change.processedNanos / 1000n),
    ts_ns: change.processedNanos,
  };
  return {
    key: { schema: schemas.key, payload: encodeKeyPayload(schemas, keyRow) },
    value: { schema: schemas.envelope, payload },
  };
}

/** The tombstone Debezium sends after a delete (tombstones.on.delete=true): same key, null value. */
export function encodeTombstone(schemas: TableSchemas, deleted: Row): EncodedEvent {
  return { key: { schema: schemas.key, payload: encodeKeyPayload(schemas, deleted) }, value: null };
}
