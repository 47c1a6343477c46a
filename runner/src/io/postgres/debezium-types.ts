/**
 * PostgreSQL column values, as text (pgoutput and snapshot queries both use the type's output
 * function), turned into exactly what the Debezium 2.7 PostgreSQL connector emits through Kafka
 * Connect's JsonConverter with its default settings (decimal.handling.mode=precise,
 * time.precision.mode=adaptive, binary.handling.mode=bytes, interval.handling.mode=numeric), with
 * the Connect schema of each field. Checked against real Debezium 2.7.4 output (see the tests).
 *
 * A type without a faithful encoding here is refused with an error naming the table, column and
 * type: a change stream that silently turns values into null is worse than one that stops.
 */
import { ConfigError, describeValueKind } from '../../engine/errors.ts';
import { LOGICAL, type ConnectSchema, type ConnectType } from '../debezium/connect-schema.ts';
import { UNAVAILABLE_PLACEHOLDER } from '../debezium/decoder.ts';

/** A Kafka Connect field schema (with `field`), as JsonConverter writes it. */
export type ConnectField = ConnectSchema & { field: string };

/** What the catalog says about a column. */
export interface ColumnInfo {
  name: string;
  typeOid: number;
  typeMod: number;
  /** `format_type(atttypid, atttypmod)`, for error messages. */
  typeName: string;
  notNull: boolean;
  /** `pg_get_expr(adbin, adrelid)`, e.g. `nextval('x_id_seq'::regclass)`, `5`, `'a'::character varying`. */
  defaultExpr: string | null;
}

export interface ColumnCodec {
  readonly column: string;
  readonly schema: ConnectField;
  /** Text form -> Debezium value. Throws on text it cannot read. */
  decode(text: string): unknown;
  /** The value for SQL NULL or a column missing from a key-only tuple (Debezium's fallback). */
  readonly absent: unknown;
  /** The value for an unchanged TOASTed column (Debezium's `unavailable.value.placeholder`). */
  readonly unavailable: unknown;
}

export class UnsupportedColumnTypeError extends ConfigError {
  constructor(table: string, column: ColumnInfo) {
    super(
      'E_CDC_UNSUPPORTED_TYPE',
      `table ${table} column "${column.name}" has type ${column.typeName} (oid ${column.typeOid}), which postgres-cdc cannot decode: ` +
        `remove the table from \`tables\`, change the column's type, or capture this table with Debezium`,
      table,
    );
  }
}

/* ------------------------------------------------------------------ calendar arithmetic */

/** Days since 1970-01-01 of a proleptic Gregorian date (any year, no Date object quirks). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

const DATE_RE = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/;
const TIME_RE = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;
const TIMESTAMP_RE = /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?([+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?( BC)?$/;
const OFFSET_RE = /^([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/;

const MICROS_PER_DAY = 86_400_000_000n;

/** Names the value's size, not the value: a column value is personal data, and this message is logged. */
function bad(kind: string, text: string): Error {
  return new Error(`cannot read ${describeValueKind(text)} as ${kind}`);
}

function fractionMicros(frac: string | undefined): bigint {
  return frac ? BigInt(frac.padEnd(6, '0')) : 0n;
}

function offsetSeconds(text: string): number {
  const m = OFFSET_RE.exec(text);
  if (!m) throw bad('a UTC offset', text);
  const secs = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  return m[1] === '-' ? -secs : secs;
}

/** DATE text -> days since the epoch. */
export function parseDateDays(text: string): number {
  const m = DATE_RE.exec(text);
  if (!m) throw bad('a date', text);
  const year = m[4] ? 1 - Number(m[1]) : Number(m[1]);
  return daysFromCivil(year, Number(m[2]), Number(m[3]));
}

/** TIME text -> microseconds since midnight (24:00:00 is allowed, as PostgreSQL allows it). */
export function parseTimeMicros(text: string): bigint {
  const m = TIME_RE.exec(text);
  if (!m) throw bad('a time', text);
  return (BigInt(Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1_000_000n) + fractionMicros(m[4]);
}

/**
 * TIMESTAMP / TIMESTAMPTZ text -> microseconds since the epoch. Without an offset the wall clock is
 * read as UTC, as Debezium does. (The session runs with TimeZone=UTC, so TIMESTAMPTZ comes as +00.)
 */
export function parseTimestampMicros(text: string): bigint {
  if (text === 'infinity') return 9223372036854775807n;
  if (text === '-infinity') return -9223372036854775808n;
  const m = TIMESTAMP_RE.exec(text);
  if (!m) throw bad('a timestamp', text);
  const year = m[9] ? 1 - Number(m[1]) : Number(m[1]);
  const days = BigInt(daysFromCivil(year, Number(m[2]), Number(m[3])));
  const secs = BigInt(Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]) - (m[8] ? offsetSeconds(m[8]) : 0));
  return days * MICROS_PER_DAY + secs * 1_000_000n + fractionMicros(m[7]);
}

const pad2 = (n: number | bigint) => String(n).padStart(2, '0');

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** `HH:MM:SS` plus a fraction of exactly `digits` digits, or of as few as needed when digits is undefined. */
function clockText(microsOfDay: bigint, digits: number | undefined): string {
  const secs = microsOfDay / 1_000_000n;
  const frac = microsOfDay % 1_000_000n;
  const base = `${pad2(secs / 3600n)}:${pad2((secs / 60n) % 60n)}:${pad2(secs % 60n)}`;
  const six = String(frac).padStart(6, '0');
  if (digits === undefined) {
    const trimmed = six.replace(/0+$/, '');
    return trimmed ? `${base}.${trimmed}` : base;
  }
  return digits > 0 ? `${base}.${six.slice(0, digits)}` : base;
}

/** io.debezium.time.ZonedTimestamp: ISO 8601 in UTC with as many fraction digits as the column's precision. */
export function zonedTimestampText(micros: bigint, precision: number): string {
  const days = floorDiv(micros, MICROS_PER_DAY);
  const { year, month, day } = civilFromDays(Number(days));
  const yearText = year >= 0 && year <= 9999 ? String(year).padStart(4, '0') : (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(4, '0');
  return `${yearText}-${pad2(month)}-${pad2(day)}T${clockText(micros - days * MICROS_PER_DAY, precision)}Z`;
}

/**
 * PostgreSQL's text output of a TIMESTAMP (DateStyle ISO), as pgoutput sends it:
 * `2025-01-06 09:05:12.345678`, the fraction without trailing zeros, ` BC` before year 1.
 * The inverse of parseTimestampMicros, for rows made without a database (the generator).
 */
export function timestampText(micros: bigint): string {
  const days = floorDiv(micros, MICROS_PER_DAY);
  const { year, month, day } = civilFromDays(Number(days));
  const bc = year <= 0;
  const date = `${String(bc ? 1 - year : year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}`;
  return `${date} ${clockText(micros - days * MICROS_PER_DAY, undefined)}${bc ? ' BC' : ''}`;
}

/** io.debezium.time.ZonedTime: the time moved to UTC, fraction digits as needed. */
export function zonedTimeText(text: string): string {
  const m = /^(\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)([+-].+)$/.exec(text);
  if (!m) throw bad('a time with time zone', text);
  const local = parseTimeMicros(m[1]!);
  const utc = (((local - BigInt(offsetSeconds(m[2]!)) * 1_000_000n) % MICROS_PER_DAY) + MICROS_PER_DAY) % MICROS_PER_DAY;
  return `${clockText(utc, undefined)}Z`;
}

/* ------------------------------------------------------------------ numbers */

/** Two's complement big-endian bytes of minimal length (Java's BigInteger.toByteArray), base64. */
export function unscaledBase64(unscaled: bigint): string {
  let hex = (unscaled < 0n ? -unscaled : unscaled).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (unscaled >= 0n) {
    if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes]);
    return bytes.toString('base64');
  }
  // Negative: invert and add one over a width that leaves room for the sign bit.
  let width = bytes.length;
  const max = 1n << BigInt(width * 8 - 1);
  if (-unscaled > max) width++;
  const twos = (1n << BigInt(width * 8)) + unscaled;
  return Buffer.from(twos.toString(16).padStart(width * 2, '0'), 'hex').toString('base64');
}

const NUMERIC_RE = /^([+-])?(\d*)(?:\.(\d*))?$/;

/** Decimal text -> unscaled integer at `scale` (rounding half up past it, as PostgreSQL would not need to). */
export function unscaledAt(text: string, scale: number): bigint {
  const m = NUMERIC_RE.exec(text);
  if (!m || (!m[2] && !m[3])) throw bad('a number', text);
  const frac = (m[3] ?? '').padEnd(scale, '0');
  let unscaled = BigInt(`${m[2] || '0'}${frac.slice(0, scale)}`);
  if (frac.length > scale && Number(frac[scale]) >= 5) unscaled += 1n;
  return m[1] === '-' ? -unscaled : unscaled;
}

/** io.debezium.data.VariableScaleDecimal: the scale is the text's fraction length without trailing zeros. */
export function variableScaleDecimal(text: string): { scale: number; value: string } {
  const m = NUMERIC_RE.exec(text);
  if (!m || (!m[2] && !m[3])) throw bad('a number', text);
  const scale = (m[3] ?? '').replace(/0+$/, '').length;
  return { scale, value: unscaledBase64(unscaledAt(text, scale)) };
}

/** money text (`$1,234.50`, `-$1.00`, `($1.00)`) -> unscaled cents. */
function moneyUnscaled(text: string, scale: number): bigint {
  const negative = /^-|^\(.*\)$/.test(text.trim());
  const digits = text.replace(/[^0-9.]/g, '');
  const v = unscaledAt(digits, scale);
  return negative ? -v : v;
}

/** int8 and friends: a number when exact, else a bigint (as engine/json.ts parses large integers). */
function int64(text: string): number | bigint {
  if (!/^-?\d+$/.test(text)) throw bad('an integer', text);
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

function int32(text: string): number {
  if (!/^-?\d+$/.test(text)) throw bad('an integer', text);
  return Number(text);
}

function float(text: string): number {
  const v = Number(text === 'Infinity' || text === '-Infinity' || text === 'NaN' ? text : text);
  if (Number.isNaN(v) && text !== 'NaN') throw bad('a floating point number', text);
  return v;
}

/** MicroDuration: months count 365.25/12 days, as Debezium's MicroDuration.DAYS_PER_MONTH_AVG. */
export function intervalMicros(text: string): number {
  const DAYS_PER_MONTH = 365.25 / 12;
  let months = 0;
  let days = 0;
  let micros = 0n;
  const unitRe = /(-?\d+) (years?|mons?|days?)/g;
  for (const m of text.matchAll(unitRe)) {
    const n = Number(m[1]);
    if (m[2]!.startsWith('year')) months += n * 12;
    else if (m[2]!.startsWith('mon')) months += n;
    else days += n;
  }
  const clock = /([+-])?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?/.exec(text);
  if (clock) {
    micros = (BigInt(Number(clock[2]) * 3600 + Number(clock[3]) * 60 + Number(clock[4])) * 1_000_000n) + fractionMicros(clock[5]);
    if (clock[1] === '-') micros = -micros;
  }
  const rest = text.replace(unitRe, '').replace(/([+-])?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?/, '').trim();
  if (rest !== '' || (text.trim() === '')) throw bad('an interval (IntervalStyle postgres)', text);
  return Math.round((months * DAYS_PER_MONTH + days) * 86_400_000_000) + Number(micros);
}

/** bit(n)/varbit: the bit string read as a binary number, little-endian bytes (Java's BitSet.toByteArray). */
export function bitsBase64(text: string): string {
  if (!/^[01]*$/.test(text)) throw bad('a bit string', text);
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[text.length - 1 - i] === '1') {
      const idx = i >> 3;
      while (bytes.length <= idx) bytes.push(0);
      bytes[idx]! |= 1 << (i & 7);
    }
  }
  return Buffer.from(bytes).toString('base64');
}

function byteaBase64(text: string): string {
  if (!text.startsWith('\\x')) throw bad('bytea in hex output (bytea_output=hex)', text);
  return Buffer.from(text.slice(2), 'hex').toString('base64');
}

/* ------------------------------------------------------------------ codecs per type */

interface TypeEncoding {
  schema: Omit<ConnectSchema, 'field' | 'optional' | 'default'> & { type: ConnectType };
  decode(text: string): unknown;
  zero: unknown;
  /** Whether an unchanged TOAST value can occur and how it is shown. */
  unavailable?: unknown;
}

/** typmod -> fractional seconds precision (typmod -1 means the default, 6). */
function timePrecision(typeMod: number): number {
  return typeMod < 0 ? 6 : typeMod;
}

const STRING = (zero = ''): TypeEncoding => ({ schema: { type: 'string' }, decode: (t) => t, zero, unavailable: UNAVAILABLE_PLACEHOLDER });
const NAMED_STRING = (name: string): TypeEncoding => ({ schema: { type: 'string', name, version: 1 }, decode: (t) => t, zero: '', unavailable: UNAVAILABLE_PLACEHOLDER });

function encodingFor(col: ColumnInfo): TypeEncoding | undefined {
  switch (col.typeOid) {
    case 16: // bool
      return { schema: { type: 'boolean' }, decode: (t) => t === 't', zero: false };
    case 21: // int2
      return { schema: { type: 'int16' }, decode: int32, zero: 0 };
    case 23: // int4
      return { schema: { type: 'int32' }, decode: int32, zero: 0 };
    case 20: // int8
    case 26: // oid
      return { schema: { type: 'int64' }, decode: int64, zero: 0 };
    case 700: // float4
      return { schema: { type: 'float' }, decode: float, zero: 0 };
    case 701: // float8
      return { schema: { type: 'double' }, decode: float, zero: 0 };
    case 1700: {
      // numeric(p,s): typmod = ((p << 16) | s) + 4; without one the scale varies per value.
      if (col.typeMod < 0) {
        return {
          schema: {
            type: 'struct',
            fields: [
              { type: 'int32', optional: false, field: 'scale' },
              { type: 'bytes', optional: false, field: 'value' },
            ],
            name: LOGICAL.VariableScaleDecimal,
            version: 1,
            doc: 'Variable scaled decimal',
          },
          decode: variableScaleDecimal,
          zero: { scale: 0, value: unscaledBase64(0n) },
        };
      }
      const precision = ((col.typeMod - 4) >> 16) & 0xffff;
      const scale = (col.typeMod - 4) & 0xffff;
      return {
        schema: {
          type: 'bytes',
          name: LOGICAL.Decimal,
          version: 1,
          parameters: { scale: String(scale), 'connect.decimal.precision': String(precision) },
        },
        decode: (t) => {
          if (t === 'NaN') throw bad('a decimal (NaN has no Decimal encoding)', t);
          return unscaledBase64(unscaledAt(t, scale));
        },
        zero: unscaledBase64(0n),
      };
    }
    case 790: // money
      return {
        schema: { type: 'bytes', name: LOGICAL.Decimal, version: 1, parameters: { scale: '2' } },
        decode: (t) => unscaledBase64(moneyUnscaled(t, 2)),
        zero: unscaledBase64(0n),
      };
    case 25: // text
    case 1043: // varchar
    case 1042: // bpchar
    case 19: // name
    case 18: // "char"
    case 869: // inet
    case 650: // cidr
    case 829: // macaddr
    case 774: // macaddr8
      return STRING();
    case 114: // json
    case 3802: // jsonb
      return NAMED_STRING(LOGICAL.Json);
    case 2950:
      return NAMED_STRING(LOGICAL.Uuid);
    case 142:
      return NAMED_STRING(LOGICAL.Xml);
    case 17: // bytea
      return { schema: { type: 'bytes' }, decode: byteaBase64, zero: '', unavailable: Buffer.from(UNAVAILABLE_PLACEHOLDER).toString('base64') };
    case 1082: // date
      return { schema: { type: 'int32', name: LOGICAL.Date, version: 1 }, decode: parseDateDays, zero: 0 };
    case 1083: {
      // time: adaptive precision, milliseconds up to 3 digits, else microseconds.
      if (timePrecision(col.typeMod) <= 3) {
        return { schema: { type: 'int32', name: LOGICAL.Time, version: 1 }, decode: (t) => Number(parseTimeMicros(t) / 1000n), zero: 0 };
      }
      return { schema: { type: 'int64', name: LOGICAL.MicroTime, version: 1 }, decode: (t) => Number(parseTimeMicros(t)), zero: 0 };
    }
    case 1266: // timetz
      return { schema: { type: 'string', name: LOGICAL.ZonedTime, version: 1 }, decode: zonedTimeText, zero: '00:00:00Z' };
    case 1114: {
      // timestamp: the wall clock read as UTC.
      if (timePrecision(col.typeMod) <= 3) {
        return { schema: { type: 'int64', name: LOGICAL.Timestamp, version: 1 }, decode: (t) => Number(floorDiv(parseTimestampMicros(t), 1000n)), zero: 0 };
      }
      return { schema: { type: 'int64', name: LOGICAL.MicroTimestamp, version: 1 }, decode: (t) => Number(parseTimestampMicros(t)), zero: 0 };
    }
    case 1184: {
      const precision = timePrecision(col.typeMod);
      return {
        schema: { type: 'string', name: LOGICAL.ZonedTimestamp, version: 1 },
        decode: (t) => zonedTimestampText(parseTimestampMicros(t), precision),
        zero: zonedTimestampText(0n, precision),
      };
    }
    case 1186: // interval
      return { schema: { type: 'int64', name: LOGICAL.MicroDuration, version: 1 }, decode: intervalMicros, zero: 0 };
    case 1560: // bit(n): bit(1) is a boolean for Debezium
      if (col.typeMod === 1) return { schema: { type: 'boolean' }, decode: (t) => t === '1', zero: false };
      return { schema: { type: 'bytes', name: LOGICAL.Bits, version: 1, parameters: { length: String(col.typeMod) } }, decode: bitsBase64, zero: '' };
    case 1562: // varbit(n)
      return {
        schema: { type: 'bytes', name: LOGICAL.Bits, version: 1, parameters: { length: String(col.typeMod < 0 ? 2147483647 : col.typeMod) } },
        decode: bitsBase64,
        zero: '',
      };
    default:
      return undefined;
  }
}

/* ------------------------------------------------------------------ defaults */

const NOW_FUNCTIONS = /^(CURRENT_TIMESTAMP|CURRENT_DATE|CURRENT_TIME|LOCALTIMESTAMP|LOCALTIME|now\(\)|statement_timestamp\(\)|transaction_timestamp\(\)|clock_timestamp\(\))/i;

/**
 * The schema default Debezium derives from a column default: constants are converted like values;
 * sequences and clock functions become the type's zero (epoch); anything else gets no default.
 */
export function defaultValue(expr: string | null, encoding: Pick<TypeEncoding, 'decode' | 'zero'>): { value: unknown } | undefined {
  if (expr === null) return undefined;
  const e = expr.trim();
  if (/^nextval\(/i.test(e) || NOW_FUNCTIONS.test(e)) return { value: encoding.zero };
  const quoted = /^\(?'((?:[^']|'')*)'(?:::[a-z_ "0-9().,[\]]+)?\)?$/i.exec(e);
  const bare = /^\(?(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|true|false)\)?(?:::[a-z_ "0-9().,[\]]+)?$/i.exec(e);
  const text = quoted ? quoted[1]!.replace(/''/g, "'") : bare ? bare[1]! : undefined;
  if (text === undefined) return undefined;
  const literal = text === 'true' ? 't' : text === 'false' ? 'f' : text;
  try {
    return { value: encoding.decode(literal) };
  } catch {
    return undefined;
  }
}

/** The codec of one column, or UnsupportedColumnTypeError naming the table, column and type. */
export function columnCodec(table: string, col: ColumnInfo): ColumnCodec {
  const encoding = encodingFor(col);
  if (!encoding) throw new UnsupportedColumnTypeError(table, col);
  const def = defaultValue(col.defaultExpr, encoding);
  const schema: ConnectField = { ...encoding.schema, optional: !col.notNull, field: col.name };
  if (def) schema.default = def.value;
  // JsonConverter replaces null with the schema default; a NOT NULL column missing from a key-only
  // tuple gets the default too, or the type's zero.
  const absent = def ? def.value : col.notNull ? encoding.zero : null;
  return {
    column: col.name,
    schema: orderFields(schema),
    decode: encoding.decode,
    absent,
    unavailable: encoding.unavailable ?? absent,
  };
}

/** Key order as JsonConverter writes a field schema, so printed envelopes read the same. */
function orderFields(f: ConnectField): ConnectField {
  const out: Partial<ConnectField> = { type: f.type };
  if (f.fields) out.fields = f.fields;
  if (f.items) out.items = f.items;
  out.optional = f.optional;
  if (f.name !== undefined) out.name = f.name;
  if (f.version !== undefined) out.version = f.version;
  if (f.doc !== undefined) out.doc = f.doc;
  if (f.parameters !== undefined) out.parameters = f.parameters;
  if ('default' in f) out.default = f.default;
  out.field = f.field;
  return out as ConnectField;
}
