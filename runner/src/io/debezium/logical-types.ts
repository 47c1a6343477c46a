/**
 * Debezium's default value encodings, decoded, as small pure functions. (Encoding PostgreSQL values
 * into them is io/postgres/debezium-types.ts.)
 *
 * Temporal values of columns without a zone (TIMESTAMP, DATE, TIME) are epoch or midnight offsets of
 * the wall clock read as UTC; we turn them into ISO 8601 text that keeps the encoding's precision
 * (3, 6 or 9 fraction digits), so `$hour()` and windows read the wall clock the database stored.
 *
 * Decimals: Connect's Decimal is the base64 two's-complement big-endian unscaled integer with the
 * scale in the schema. Decoded, it is a JSON number when a double holds the decimal exactly
 * (shortest round trip equals the digits), otherwise the decimal as a string: never a silently
 * rounded number.
 */

import { toIsoUtc } from '../../engine/time.ts';

const MS_PER_DAY = 86_400_000;

function pad(n: number | bigint, width: number): string {
  return String(n).padStart(width, '0');
}

/** io.debezium.time.Timestamp / org.apache.kafka.connect.data.Timestamp: epoch ms -> `...T10:30:00.123Z`. */
export function epochMillisToIso(ms: number | bigint): string {
  return toIsoUtc(Number(ms));
}

/** io.debezium.time.MicroTimestamp: epoch µs -> `2025-01-02T10:30:00.123456Z`. */
export function epochMicrosToIso(micros: number | bigint): string {
  if (typeof micros === 'bigint') {
    const ms = floorDiv(micros, 1000n);
    return toIsoUtc(Number(ms), pad(micros - ms * 1000n, 3));
  }
  const ms = Math.floor(micros / 1000);
  return toIsoUtc(ms, pad(micros - ms * 1000, 3));
}

/** io.debezium.time.NanoTimestamp: epoch ns -> `2025-01-02T10:30:00.123456789Z`. */
export function epochNanosToIso(nanos: number | bigint): string {
  const n = BigInt(nanos);
  const ms = floorDiv(n, 1_000_000n);
  return toIsoUtc(Number(ms), pad(n - ms * 1_000_000n, 6));
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** io.debezium.time.Date / org.apache.kafka.connect.data.Date: days since epoch -> `YYYY-MM-DD`. */
export function epochDaysToDate(days: number): string {
  return new Date(days * MS_PER_DAY).toISOString().slice(0, 10);
}

/** A time of day from an offset since midnight in `unitsPerSecond` units (1e3, 1e6, 1e9). */
function timeOfDay(value: number | bigint, unitsPerSecond: bigint, digits: number): string {
  const v = BigInt(value);
  const seconds = v / unitsPerSecond;
  const fraction = v % unitsPerSecond;
  const h = seconds / 3600n;
  const m = (seconds % 3600n) / 60n;
  const s = seconds % 60n;
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}.${pad(fraction, digits)}`;
}

/** io.debezium.time.Time / connect Time: ms since midnight -> `HH:MM:SS.mmm`. */
export function millisOfDayToTime(ms: number | bigint): string {
  return timeOfDay(ms, 1000n, 3);
}

/** io.debezium.time.MicroTime: µs since midnight -> `HH:MM:SS.ffffff`. */
export function microsOfDayToTime(micros: number | bigint): string {
  return timeOfDay(micros, 1_000_000n, 6);
}

/** io.debezium.time.NanoTime: ns since midnight -> `HH:MM:SS.fffffffff`. */
export function nanosOfDayToTime(nanos: number | bigint): string {
  return timeOfDay(nanos, 1_000_000_000n, 9);
}

/* ------------------------------------------------------------------ decimals */

/** The signed integer held in big-endian two's-complement bytes. */
export function twosComplementToBigInt(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  const first = bytes[0] ?? 0;
  return first & 0x80 ? v - (1n << BigInt(bytes.length * 8)) : v;
}

/** `unscaled × 10^-scale` as exact decimal text: (12345, 2) -> `123.45`, (-5, 3) -> `-0.005`. */
export function decimalText(unscaled: bigint, scale: number): string {
  if (scale <= 0) return (unscaled * 10n ** BigInt(-scale)).toString();
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

/** A decimal as a number when a double holds it exactly, else as its exact text. */
export function exactDecimal(text: string): number | string {
  const n = Number(text);
  if (!Number.isFinite(n)) return text;
  return String(n) === canonicalDecimal(text) ? n : text;
}

/** Decimal text without trailing fraction zeros or a leading plus: `12.50` -> `12.5`, `-0.0` -> `0`. */
function canonicalDecimal(text: string): string {
  let t = text.startsWith('+') ? text.slice(1) : text;
  if (t.includes('.')) t = t.replace(/0+$/, '').replace(/\.$/, '');
  t = t.replace(/^(-?)0+(?=\d)/, '$1');
  return t === '-0' ? '0' : t;
}

/** org.apache.kafka.connect.data.Decimal: base64 unscaled bytes + schema scale -> number or exact string. */
export function decodeDecimal(base64: string, scale: number): number | string {
  return exactDecimal(decimalText(twosComplementToBigInt(Buffer.from(base64, 'base64')), scale));
}

/** io.debezium.data.VariableScaleDecimal `{scale, value}` -> number or exact string. */
export function decodeVariableScaleDecimal(value: { scale: number; value: string }): number | string {
  return decodeDecimal(value.value, value.scale);
}
