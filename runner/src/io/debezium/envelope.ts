/**
 * The Debezium change-event envelope, as Debezium 2.x writes it through Kafka Connect's JsonConverter:
 * either `{schema, payload}` (schemas enabled) or the bare payload (schemas disabled).
 *
 *   payload = { before, after, source, transaction, op, ts_ms, ts_us, ts_ns }
 *
 * A Kafka record with a null value after a delete is a tombstone (for log compaction), not an envelope.
 */

/** c = insert, u = update, d = delete, r = snapshot read, t = truncate. */
export type DebeziumOp = 'c' | 'u' | 'd' | 'r' | 't';

export const DEBEZIUM_OPS: ReadonlySet<string> = new Set(['c', 'u', 'd', 'r', 't']);

export type Row = Record<string, unknown>;

/** The `source` block. PostgreSQL fields listed; other connectors add their own, kept as they are. */
export interface DebeziumSource {
  version?: string;
  connector?: string;
  name?: string;
  ts_ms?: number;
  /** A string in Debezium 2.x: "true", "first", "first_in_data_collection", "last_in_data_collection", "last", "false", "incremental". */
  snapshot?: string | boolean;
  db?: string;
  /** JSON text of `[lastCommitLsn, lsn]` as strings (PostgreSQL). */
  sequence?: string | null;
  ts_us?: number | bigint;
  ts_ns?: number | bigint;
  schema?: string;
  table?: string;
  txId?: number | bigint | null;
  lsn?: number | bigint | null;
  xmin?: number | bigint | null;
  [field: string]: unknown;
}

export interface DebeziumTransaction {
  id: string;
  total_order: number;
  data_collection_order: number;
}

export interface DebeziumPayload {
  before: Row | null;
  after: Row | null;
  source: DebeziumSource | null;
  transaction: DebeziumTransaction | null;
  op: DebeziumOp;
  ts_ms?: number;
  ts_us?: number | bigint;
  ts_ns?: number | bigint;
}

/** Thrown when a value is not a Debezium envelope; the message says what is missing. */
export class NotAnEnvelopeError extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rowOrNull(v: unknown, name: string): Row | null {
  if (v === null || v === undefined) return null;
  if (!isRecord(v)) throw new NotAnEnvelopeError(`not a Debezium envelope: \`${name}\` is neither an object nor null`);
  return v;
}

/** The `{schema, payload}` wrapper's payload, or the value itself when it is a bare envelope. */
export function unwrapPayload(value: Record<string, unknown>): { schema: unknown; payload: unknown } {
  if ('payload' in value && ('schema' in value || !('op' in value))) return { schema: value.schema ?? null, payload: value.payload };
  return { schema: null, payload: value };
}

/**
 * Checks a parsed payload's shape (op, before/after, source) without touching column values.
 * Column decoding is separate (see decoder.ts), driven by the schema.
 */
export function parsePayload(payload: unknown): DebeziumPayload {
  if (!isRecord(payload)) throw new NotAnEnvelopeError('not a Debezium envelope: `payload` is not an object');
  const { op } = payload;
  if (op === undefined || op === null) throw new NotAnEnvelopeError('not a Debezium envelope: `op` is missing');
  if (typeof op !== 'string' || !DEBEZIUM_OPS.has(op)) {
    throw new NotAnEnvelopeError(`unknown Debezium op ${JSON.stringify(op)} (expected c, u, d, r or t)`);
  }
  const before = rowOrNull(payload.before, 'before');
  const after = rowOrNull(payload.after, 'after');
  if ((op === 'c' || op === 'r' || op === 'u') && after === null) {
    throw new NotAnEnvelopeError(`Debezium op "${op}" without an \`after\` image`);
  }
  const source = payload.source === undefined || payload.source === null ? null : payload.source;
  if (source !== null && !isRecord(source)) throw new NotAnEnvelopeError('not a Debezium envelope: `source` is not an object');
  const transaction = isRecord(payload.transaction) ? (payload.transaction as unknown as DebeziumTransaction) : null;
  const out: DebeziumPayload = { before, after, source: source as DebeziumSource | null, transaction, op: op as DebeziumOp };
  if (typeof payload.ts_ms === 'number') out.ts_ms = payload.ts_ms;
  if (typeof payload.ts_us === 'number' || typeof payload.ts_us === 'bigint') out.ts_us = payload.ts_us;
  if (typeof payload.ts_ns === 'number' || typeof payload.ts_ns === 'bigint') out.ts_ns = payload.ts_ns;
  return out;
}
