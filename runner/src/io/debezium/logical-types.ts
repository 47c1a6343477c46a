/**
 * Debezium's default value encodings, both ways, as small pure functions.
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

const MS_PER_DAY = 86_400_000;

function pad(n: number | bigint, width: number): string {
  return String(n).padStart(width, '0');
}

/** ISO text of an epoch in milliseconds with a fraction of `digits` (3, 6 or 9) from `subMilli` (the part below 1 ms). */
function isoWithFraction(ms: number, subMilli: string): string {
  const iso = new Date(ms).toISOString(); // ...HH:MM:SS.mmmZ
  return subMilli ? `${iso.slice(0, -1)}${subMilli}Z` : iso;
}

/** io.debezium.time.Timestamp / org.apache.kafka.connect.data.Timestamp: epoch ms -> `...T10:30:00.123Z`. */
export function epochMillisToIso(ms: number | bigint): string {
  return new Date(Number(ms)).toISOString();
}

/** io.debezium.time.MicroTimestamp: epoch µs -> `2025-01-02T10:30:00.123456Z`. */
export function epochMicrosToIso(micros: number | bigint): string {
  if (typeof micros === 'bigint') {
    const ms = floorDiv(micros, 1000n);
    return isoWithFraction(Number(ms), pad(micros - ms * 1000n, 3));
  }
  const ms = Math.floor(micros / 1000);
  return isoWithFraction(ms, pad(micros - ms * 1000, 3));
}

/** io.debezium.time.NanoTimestamp: epoch ns -> `2025-01-02T10:30:00.123456789Z`. */
export function epochNanosToIso(nanos: number | bigint): string {
  const n = BigInt(nanos);
  const ms = floorDiv(n, 1_000_000n);
  return isoWithFraction(Number(ms), pad(n - ms * 1_000_000n, 6));
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

/** Minimal big-endian two's-complement bytes of a signed integer (what Java's BigInteger.toByteArray writes). */
export function bigIntToTwosComplement(value: bigint): Uint8Array {
  let byteLength = 1;
  while (value < -(1n << BigInt(byteLength * 8 - 1)) || value >= 1n << BigInt(byteLength * 8 - 1)) byteLength++;
  const out = new Uint8Array(byteLength);
  let v = value < 0n ? (1n << BigInt(byteLength * 8)) + value : value;
  for (let i = byteLength - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
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

/** Decimal text -> base64 unscaled bytes at `scale` (rounding half-up beyond it, as PostgreSQL's numeric does). */
export function encodeDecimal(text: string, scale: number): string {
  return Buffer.from(bigIntToTwosComplement(unscaledAt(text, scale))).toString('base64');
}

/** The unscaled integer of decimal text at a scale: (`123.456`, 2) -> 12346n. */
export function unscaledAt(text: string, scale: number): bigint {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new Error(`\`${text}\` is not a decimal number`);
  const [, sign, whole = '', frac = '', exp = '0'] = m;
  const shift = scale + Number(exp); // digits of `frac` to move left of the point
  const all = whole + frac;
  const pointAt = whole.length + shift;
  let unscaled: bigint;
  if (pointAt >= all.length) unscaled = BigInt((all || '0') + '0'.repeat(pointAt - all.length));
  else if (pointAt <= 0) unscaled = roundHalfUp(0n, all.padStart(-pointAt + all.length, '0'));
  else unscaled = roundHalfUp(BigInt(all.slice(0, pointAt) || '0'), all.slice(pointAt));
  return sign === '-' ? -unscaled : unscaled;
}

function roundHalfUp(kept: bigint, dropped: string): bigint {
  return dropped.length > 0 && (dropped.charCodeAt(0) - 48) >= 5 ? kept + 1n : kept;
}

/** io.debezium.data.VariableScaleDecimal `{scale, value}` -> number or exact string. */
export function decodeVariableScaleDecimal(value: { scale: number; value: string }): number | string {
  return decodeDecimal(value.value, value.scale);
}

/** Decimal text -> VariableScaleDecimal `{scale, value}` keeping every written fraction digit. */
export function encodeVariableScaleDecimal(text: string): { scale: number; value: string } {
  const m = /^[+-]?\d*\.?(\d*)$/.exec(text.trim());
  const scale = m?.[1]?.length ?? 0;
  return { scale, value: encodeDecimal(text, scale) };
}

/* ------------------------------------------------------------------ temporal encoders */

const PG_TIMESTAMP_RE = /^(\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$/i;

interface TimestampParts {
  /** Epoch seconds of the wall clock, shifted by the zone offset when one is written. */
  seconds: number;
  /** Fraction digits as written, padded to 9 (nanoseconds). */
  nanos: number;
}

function timestampParts(text: string): TimestampParts {
  const m = PG_TIMESTAMP_RE.exec(text.trim());
  if (!m) throw new Error(`\`${text}\` is not a timestamp like 2025-01-02 10:30:00.123456`);
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  let seconds = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(/:/g, '');
    const offset = Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || '0') * 60 + Number(digits.slice(4, 6) || '0');
    seconds -= sign * offset;
  }
  return { seconds, nanos: Number(frac.padEnd(9, '0')) };
}

/** PostgreSQL timestamp text (wall clock, read as UTC) -> epoch µs, as MicroTimestamp carries it. */
export function timestampToEpochMicros(text: string): number {
  const { seconds, nanos } = timestampParts(text);
  return seconds * 1_000_000 + Math.floor(nanos / 1000);
}

/** PostgreSQL timestamp text -> epoch ms (io.debezium.time.Timestamp, for TIMESTAMP(0..3)). */
export function timestampToEpochMillis(text: string): number {
  const { seconds, nanos } = timestampParts(text);
  return seconds * 1000 + Math.floor(nanos / 1_000_000);
}

/** PostgreSQL timestamp text -> epoch ns as bigint (NanoTimestamp). */
export function timestampToEpochNanos(text: string): bigint {
  const { seconds, nanos } = timestampParts(text);
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}

/**
 * PostgreSQL timestamptz text -> ZonedTimestamp text in UTC, `2025-01-02T10:30:00.123456Z`, with the
 * fraction's trailing zeros dropped (java.time's ISO_OFFSET_DATE_TIME).
 */
export function timestamptzToZoned(text: string): string {
  const { seconds, nanos } = timestampParts(text);
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  const frac = nanos ? `.${pad(nanos, 9).replace(/0+$/, '')}` : '';
  return `${base}${frac}Z`;
}

/** `YYYY-MM-DD` -> days since epoch (io.debezium.time.Date). */
export function dateToEpochDays(text: string): number {
  const m = /^(\d{4,})-(\d{2})-(\d{2})$/.exec(text.trim());
  if (!m) throw new Error(`\`${text}\` is not a date like 2025-01-02`);
  return Math.floor(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / MS_PER_DAY);
}

/** `HH:MM:SS[.ffffff]` -> µs since midnight (io.debezium.time.MicroTime). */
export function timeToMicrosOfDay(text: string): number {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/.exec(text.trim());
  if (!m) throw new Error(`\`${text}\` is not a time like 10:30:00.123456`);
  const [, h, mi, s, frac = ''] = m;
  return (Number(h) * 3600 + Number(mi) * 60 + Number(s)) * 1_000_000 + Math.floor(Number(frac.padEnd(9, '0')) / 1000);
}
