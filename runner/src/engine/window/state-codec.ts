/**
 * Window state must snapshot as plain JSON. Record values may hold bigints (int64 columns beyond
 * 2^53, decoded losslessly), which JSON cannot carry: they are written as `{"$bigint": "<digits>"}`.
 */
import type { JsonValue } from '../component.ts';

export type { JsonValue };

const BIGINT_TAG = '$bigint';

/** A value as JSON: bigints tagged, undefined as null, non-finite numbers as null. */
export function encodeValue(value: unknown): JsonValue {
  switch (typeof value) {
    case 'bigint':
      return { [BIGINT_TAG]: value.toString() };
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'string':
    case 'boolean':
      return value;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map(encodeValue);
      const out: { [key: string]: JsonValue } = {};
      for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = encodeValue(v);
      return out;
    }
    default:
      return null;
  }
}

/** The inverse of encodeValue. */
export function decodeValue(json: unknown): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(decodeValue);
  const obj = json as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1 && keys[0] === BIGINT_TAG && typeof obj[BIGINT_TAG] === 'string') return BigInt(obj[BIGINT_TAG]);
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = decodeValue(obj[k]);
  return out;
}
