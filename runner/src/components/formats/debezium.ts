/**
 * `debezium`: Debezium change events (PostgreSQL, MySQL, ... through Kafka Connect's JsonConverter),
 * with or without schemas. The record value becomes the row image with Debezium's encodings
 * decoded; the envelope's op, before image, source block and timestamps go to `$meta`.
 */
import type { Decoded, FormatDef } from '../../engine/component.ts';
import { RecordError, errorMessage } from '../../engine/errors.ts';
import type { EventTimeFormat } from '../../engine/event-time.ts';
import { throwIfRefused, type RawMessage } from '../../engine/record.ts';
import { object } from '../../engine/schema.ts';
import { DebeziumDecoder, LOGICAL, UNAVAILABLE_PLACEHOLDER, type ColumnHint, type DecodedChange } from '../../io/debezium/index.ts';

export interface DebeziumFormatConfig {
  columns?: Record<string, ColumnHint>;
  max_bytes?: number;
  unavailable_placeholder?: string;
}

const DEFAULT_MAX_BYTES = 1_048_576;

function sizeOf(value: unknown): number {
  return typeof value === 'string' || Buffer.isBuffer(value) ? value.length : 0;
}

/** `$meta` of a change: what the envelope says besides the row. */
export function changeMeta(change: DecodedChange): Record<string, unknown> {
  const { payload } = change;
  const source = payload.source;
  const meta: Record<string, unknown> = {
    op: payload.op,
    before: change.before,
    source,
    ts_ms: payload.ts_ms,
    ts_us: payload.ts_us,
    ts_ns: payload.ts_ns,
    transaction: payload.transaction,
    db: source?.db,
    schema: source?.schema,
    table: source?.table,
    lsn: source?.lsn,
    txId: source?.txId,
    snapshot: source?.snapshot,
  };
  if (change.unavailable.length > 0) meta.unavailable = change.unavailable;
  return meta;
}

/** The row a change stands for: `after` for c/u/r, `before` for d, nothing for a truncate. */
function rowImage(change: DecodedChange): unknown {
  switch (change.payload.op) {
    case 'd':
      return change.before;
    case 't':
      return null;
    default:
      return change.after;
  }
}

const hintNames = Object.keys(LOGICAL);

/** The members of `$meta` holding the envelope's own 64-bit integers, inexact unless read. */
const INEXACT_META = ['source', 'ts_ms', 'ts_us', 'ts_ns', 'transaction', 'txId', 'lsn'];

export const debeziumFormat: FormatDef<DebeziumFormatConfig> & EventTimeFormat = {
  family: 'format',
  name: 'debezium',
  decodesEventTime: true,
  summary: 'Debezium change events: the value is the row image, op/before/source/timestamps are in $meta.',
  description:
    'Reads `{schema, payload}` envelopes (JsonConverter with schemas) and bare envelopes. Column values in ' +
    "Debezium's encodings are decoded using the schema: MicroTimestamp/NanoTimestamp/Timestamp (epoch values of " +
    'the wall clock, read as UTC) become ISO 8601 strings keeping their precision (`2025-01-02T10:30:00.123456Z`), ' +
    'Date becomes `YYYY-MM-DD`, MicroTime/Time `HH:MM:SS.ffffff`, Decimal and VariableScaleDecimal a number when a ' +
    'double holds it exactly and otherwise the exact decimal string, Json columns parsed JSON; integers beyond 2^53 ' +
    'stay exact in the row images, and in `$meta` (`ts_ns`, in `source` and at the top) when a node of the pipeline ' +
    'reads the member holding them (`$meta.ts_ns`, `$meta.source`, or `$meta` whole): what nothing reads is left ' +
    'the double JSON.parse makes of it, which nearly halves the cost of parsing an event. Without a schema, `columns` says ' +
    'which columns to decode how.\n\n' +
    'The value is `after` for c/u/r, `before` for d, and null for tombstones and truncates. `$meta` holds `op`, ' +
    '`before`, `source`, `ts_ms`, `ts_us`, `ts_ns`, `transaction`, `db`, `schema`, `table`, `lsn`, `txId`, ' +
    '`snapshot`, and `tombstone: true` for a tombstone. Columns carrying Debezium\'s unchanged-TOAST placeholder ' +
    'are left out of the row and listed in `$meta.unavailable`: they are never taken for data. The key is the ' +
    "Debezium key's payload (`{id: 15}`); the event time is `source.ts_ms` (commit time), else `ts_ms`. A message " +
    'that is not JSON, not an envelope, nests deeper than 512 levels or has a column of the wrong type goes to ' +
    '`<source>.errors`; the reason names the column and the kind of value, never the value.',
  schema: object('Options of the debezium format.', {
    columns: {
      type: 'object',
      description:
        'For envelopes without a schema: how to decode columns, by name. A logical type name (short, e.g. ' +
        '`MicroTimestamp`, or full, e.g. `io.debezium.time.MicroTimestamp`), or `{type: Decimal, scale: 2}`. ' +
        'Ignored when the message carries its schema.',
      additionalProperties: {
        oneOf: [
          { type: 'string', enum: [...hintNames, ...Object.values(LOGICAL)] },
          {
            type: 'object',
            properties: {
              type: { type: 'string', enum: [...hintNames, ...Object.values(LOGICAL)] },
              scale: { type: 'integer' },
            },
            required: ['type'],
            additionalProperties: false,
          },
        ],
      },
      examples: [{ activity_timestamp: 'MicroTimestamp', price: { type: 'Decimal', scale: 2 } }],
    },
    max_bytes: {
      type: 'integer',
      minimum: 1,
      default: DEFAULT_MAX_BYTES,
      description: 'Values longer than this (bytes) are refused as record errors instead of parsed.',
      examples: [1048576],
    },
    unavailable_placeholder: {
      type: 'string',
      minLength: 1,
      default: UNAVAILABLE_PLACEHOLDER,
      description: "The connector's `unavailable.value.placeholder`, if it was changed.",
      examples: [UNAVAILABLE_PLACEHOLDER],
    },
  }),
  describe: (config) => {
    const hinted = Object.keys(config.columns ?? {});
    return hinted.length ? `Debezium change events (schema-less columns: ${hinted.join(', ')})` : 'Debezium change events';
  },
  create(config, ctx) {
    // The decoder compiles the column hints now, so an unknown hint fails at creation, not per record.
    // Exact envelope integers (ts_ns) cost 1.4 µs an event; only a node reading them needs them.
    const reads = ctx.readsMeta;
    const exactMeta = reads === undefined || INEXACT_META.some(reads);
    const decoder = new DebeziumDecoder({ columns: config.columns, placeholder: config.unavailable_placeholder, exactMeta });
    const maxBytes = config.max_bytes ?? DEFAULT_MAX_BYTES;
    const where = `sources.${ctx.name}`;
    return {
      decode(message: RawMessage): Decoded {
        throwIfRefused(message);
        const size = sizeOf(message.value);
        if (size > maxBytes) throw new RecordError('E_DECODE', `value too large: ${size} bytes, max_bytes is ${maxBytes}`, where);
        let key: unknown;
        let change: DecodedChange | null;
        try {
          key = decoder.decodeKey(message.key);
          change = decoder.decodeValue(message.value);
        } catch (err) {
          throw new RecordError('E_DECODE', errorMessage(err), where, { cause: err });
        }
        if (change === null) return { key, value: null, meta: { tombstone: true } };
        const { source, ts_ms } = change.payload;
        const time = typeof source?.ts_ms === 'number' ? source.ts_ms : ts_ms;
        return { key, value: rowImage(change), meta: changeMeta(change), time };
      },
    };
  },
};
