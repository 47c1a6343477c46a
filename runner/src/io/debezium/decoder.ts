/**
 * Decodes Debezium change events into plain rows: column values in Debezium's encodings become
 * ISO timestamps, dates, times, exact decimals and parsed JSON (see logical-types.ts), guided by the
 * Connect schema when one is sent, or by column hints when not.
 *
 * Hot path: a schema is compiled once into per-column converters. Messages that carry the same
 * schema text as a recent one are recognised by a prefix compare (`{"schema":<same text>,"payload":`)
 * and only their payload is parsed; already structured values (generator, postgres-cdc) are
 * recognised by schema object identity. When nothing reads the envelope's own 64-bit integers
 * (`exactMeta: false`), the payload is parsed natively, exact only in the row images' int64 columns.
 */
import { describeValueKind } from '../../engine/errors.ts';
import { parseJson, parseJsonExactIn, stringifyJson, type IntegerSlots } from '../../engine/json.ts';
import { fieldOf, LOGICAL, parseConnectSchema, type ConnectSchema } from './connect-schema.ts';
import { NotAnEnvelopeError, parsePayload, unwrapPayload, type DebeziumPayload, type Row } from './envelope.ts';
import {
  decodeDecimal,
  epochDaysToDate,
  epochMicrosToIso,
  epochMillisToIso,
  epochNanosToIso,
  microsOfDayToTime,
  millisOfDayToTime,
  nanosOfDayToTime,
} from './logical-types.ts';

/** Debezium's stand-in for an unchanged TOASTed value (`unavailable.value.placeholder`). */
export const UNAVAILABLE_PLACEHOLDER = '__debezium_unavailable_value';

type Converter = (value: unknown, column: string) => unknown;

// Error messages name a bad value's kind, never the value: it is personal data of any size, goes
// to headers and logs, and the record on the errors port carries it anyway.

function expectInteger(value: unknown, column: string, what: string): number | bigint {
  if (typeof value === 'number' || typeof value === 'bigint') return value;
  throw new Error(`column \`${column}\`: expected ${what} as an integer, got ${describeValueKind(value)}`);
}

function expectString(value: unknown, column: string, what: string): string {
  if (typeof value === 'string') return value;
  throw new Error(`column \`${column}\`: expected ${what} as a string, got ${describeValueKind(value)}`);
}

/** Converters by logical type name; a missing entry means the value is used as sent. */
function logicalConverter(schema: ConnectSchema): Converter | undefined {
  switch (schema.name) {
    case LOGICAL.Timestamp:
    case LOGICAL.ConnectTimestamp:
      return (v, c) => epochMillisToIso(expectInteger(v, c, 'epoch milliseconds'));
    case LOGICAL.MicroTimestamp:
      return (v, c) => epochMicrosToIso(expectInteger(v, c, 'epoch microseconds'));
    case LOGICAL.NanoTimestamp:
      return (v, c) => epochNanosToIso(expectInteger(v, c, 'epoch nanoseconds'));
    case LOGICAL.Date:
    case LOGICAL.ConnectDate:
      return (v, c) => epochDaysToDate(Number(expectInteger(v, c, 'days since epoch')));
    case LOGICAL.Time:
    case LOGICAL.ConnectTime:
      return (v, c) => millisOfDayToTime(expectInteger(v, c, 'milliseconds since midnight'));
    case LOGICAL.MicroTime:
      return (v, c) => microsOfDayToTime(expectInteger(v, c, 'microseconds since midnight'));
    case LOGICAL.NanoTime:
      return (v, c) => nanosOfDayToTime(expectInteger(v, c, 'nanoseconds since midnight'));
    case LOGICAL.Decimal: {
      const scale = Number(schema.parameters?.scale ?? '0');
      return (v, c) => decodeDecimal(expectString(v, c, 'a base64 decimal'), scale);
    }
    case LOGICAL.VariableScaleDecimal:
      return (v, c) => {
        if (typeof v !== 'object' || v === null) throw new Error(`column \`${c}\`: expected {scale, value}, got ${describeValueKind(v)}`);
        const { scale, value } = v as { scale?: unknown; value?: unknown };
        if (typeof scale !== 'number') throw new Error(`column \`${c}\`: VariableScaleDecimal without a numeric scale`);
        return decodeDecimal(expectString(value, c, 'a base64 decimal'), scale);
      };
    case LOGICAL.Json:
      return (v, c) => parseJson(expectString(v, c, 'JSON text'));
    default:
      break;
  }
  if (schema.type === 'struct' && schema.fields && schema.name === undefined) {
    const nested = compileRowDecoder(schema);
    return (v) => (typeof v === 'object' && v !== null ? nested(v as Row, []) : v);
  }
  if (schema.type === 'array' && schema.items) {
    const item = converterFor(schema.items);
    if (item) return (v, c) => (Array.isArray(v) ? v.map((x) => (x === null ? x : item(x, c))) : v);
  }
  return undefined;
}

const FLOAT_WORDS = new Set(['NaN', 'Infinity', '-Infinity']);

/**
 * A check that a value has its column's declared Connect type, returning it unchanged: a message
 * whose `int32` column holds `"twelve"` is not Debezium's, and must go to the errors port rather
 * than into the data. Cheap: one typeof per column.
 */
function primitiveCheck(schema: ConnectSchema): Converter | undefined {
  const fail = (v: unknown, c: string): never => {
    throw new Error(`column \`${c}\`: expected ${/^[aeiou]/.test(schema.type) ? 'an' : 'a'} ${schema.type}, got ${describeValueKind(v)}`);
  };
  switch (schema.type) {
    case 'int8':
    case 'int16':
    case 'int32':
      // Safe, not only whole: parseJsonExactIn leaves digits beyond 2^53 rounded outside int64 members.
      return (v, c) => (typeof v === 'number' && Number.isSafeInteger(v) ? v : fail(v, c));
    case 'int64':
      return (v, c) => ((typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint' ? v : fail(v, c));
    case 'float':
    case 'double':
      // Jackson writes non-finite doubles as these words.
      return (v, c) => (typeof v === 'number' || (typeof v === 'string' && FLOAT_WORDS.has(v)) ? v : fail(v, c));
    case 'boolean':
      return (v, c) => (typeof v === 'boolean' ? v : fail(v, c));
    case 'string':
    case 'bytes':
      return (v, c) => (typeof v === 'string' ? v : fail(v, c));
    default:
      return undefined;
  }
}

function converterFor(schema: ConnectSchema): Converter | undefined {
  return logicalConverter(schema) ?? primitiveCheck(schema);
}

/** How a column's unchanged-TOAST placeholder looks in JSON, by the column's Connect type. */
function placeholderTest(schema: ConnectSchema, placeholder: string): ((v: unknown) => boolean) | undefined {
  if (schema.type === 'string') return (v) => v === placeholder;
  if (schema.type === 'bytes') {
    const b64 = Buffer.from(placeholder, 'utf8').toString('base64');
    return (v) => v === b64;
  }
  if (schema.type === 'array') return (v) => Array.isArray(v) && v.length === 1 && v[0] === placeholder;
  return undefined;
}

/**
 * Turns one row image into plain values. Columns holding the TOAST placeholder are left out and
 * their names pushed to `unavailable`: they are not data.
 */
export type RowDecoder = (row: Row, unavailable: string[]) => Row;

interface CompiledColumn {
  name: string;
  convert: Converter | undefined;
  isPlaceholder: ((v: unknown) => boolean) | undefined;
}

export function compileRowDecoder(schema: ConnectSchema, placeholder = UNAVAILABLE_PLACEHOLDER): RowDecoder {
  const columns: CompiledColumn[] = (schema.fields ?? []).map((f) => ({
    name: f.field ?? '',
    convert: converterFor(f),
    isPlaceholder: placeholderTest(f, placeholder),
  }));
  return (row, unavailable) => {
    const out: Row = {};
    for (let i = 0; i < columns.length; i++) {
      const col = columns[i]!;
      const v = row[col.name];
      if (v === undefined) continue;
      if (v === null) {
        out[col.name] = null;
        continue;
      }
      if (col.isPlaceholder !== undefined && col.isPlaceholder(v)) {
        unavailable.push(col.name);
        continue;
      }
      out[col.name] = col.convert === undefined ? v : col.convert(v, col.name);
    }
    return out;
  };
}

/* ------------------------------------------------------------------ schema-less column hints */

/** A hint for schema-less envelopes: a logical type's short name (`MicroTimestamp`) or full name, or a Decimal with its scale. */
export type ColumnHint = string | { type: string; scale?: number };

const SHORT_NAMES: Record<string, string> = Object.fromEntries(Object.entries(LOGICAL).map(([short, full]) => [short, full]));

/** The Connect schema a hint stands for; throws on an unknown type name. */
export function hintSchema(column: string, hint: ColumnHint): ConnectSchema {
  const type = typeof hint === 'string' ? hint : hint.type;
  const name = SHORT_NAMES[type] ?? (Object.values(LOGICAL).includes(type as never) ? type : undefined);
  if (name === undefined) {
    throw new Error(`column \`${column}\`: unknown Debezium type \`${type}\` (one of ${Object.keys(LOGICAL).join(', ')})`);
  }
  const schema: ConnectSchema = { type: 'string', optional: true, name, field: column };
  if (typeof hint !== 'string' && hint.scale !== undefined) schema.parameters = { scale: String(hint.scale) };
  return schema;
}

/** A row decoder for rows without a schema: hinted columns are converted, every string is checked for the placeholder. */
export function compileHintedRowDecoder(hints: Record<string, ColumnHint>, placeholder = UNAVAILABLE_PLACEHOLDER): RowDecoder {
  const converters = new Map<string, Converter>();
  for (const [column, hint] of Object.entries(hints)) {
    const convert = converterFor(hintSchema(column, hint));
    if (convert) converters.set(column, convert);
  }
  return (row, unavailable) => {
    const out: Row = {};
    for (const name in row) {
      const v = row[name];
      if (v === placeholder || (Array.isArray(v) && v.length === 1 && v[0] === placeholder)) {
        unavailable.push(name);
        continue;
      }
      const convert = converters.get(name);
      out[name] = convert === undefined || v === null || v === undefined ? v : convert(v, name);
    }
    return out;
  };
}

/* ------------------------------------------------------------------ envelope decoding */

/** A change event with its images decoded. */
export interface DecodedChange {
  payload: DebeziumPayload;
  /** `after` decoded (null for deletes and truncates). */
  after: Row | null;
  /** `before` decoded (null when Debezium sent none, e.g. updates under REPLICA IDENTITY DEFAULT). */
  before: Row | null;
  /** Columns whose value was the unchanged-TOAST placeholder, left out of the images. */
  unavailable: string[];
}

interface CompiledEnvelope {
  before: RowDecoder;
  after: RowDecoder;
  /**
   * The payload's members that must be exact (parseJsonExactIn): the rows' 64-bit integers when
   * nothing reads the metadata's (`ts_ns`); null to parse all of it exactly.
   */
  slots: IntegerSlots | null;
}

interface CompiledKey {
  decode: RowDecoder;
}

export interface DebeziumDecoderOptions {
  /** Column hints used when an envelope has no schema. */
  columns?: Record<string, ColumnHint>;
  /** Debezium's `unavailable.value.placeholder`, if the connector changed it. */
  placeholder?: string;
  /**
   * Whether the envelope's own integers beyond 2^53 (`ts_ns`, in `source` and at the top) must be
   * exact; default true. False when nothing reads them: the payload is then parsed natively, 1.8
   * instead of 3.2 µs, exact only in the row images. The rows' are always exact.
   */
  exactMeta?: boolean;
}

const SCHEMA_PREFIX = '{"schema":';
const PAYLOAD_JOIN = ',"payload":';
const RECENT_SCHEMAS = 8;

/**
 * Recently seen schema texts, recognised by comparing the message's first bytes (a memcmp for
 * Buffers, a flat string compare for strings: `startsWith` is far slower on V8), each with what
 * it compiled to.
 */
class SchemaTextCache<T> {
  private readonly recent: { prefix: string; bytes: Buffer; compiled: T }[] = [];

  /** The compiled schema and the payload text, when the message starts with a known schema. */
  match(message: string | Buffer): { compiled: T; payloadText: string } | undefined {
    for (let i = 0; i < this.recent.length; i++) {
      const entry = this.recent[i]!;
      let payloadText: string | undefined;
      if (typeof message === 'string') {
        const n = entry.prefix.length;
        if (message.length > n && message.slice(0, n) === entry.prefix) {
          const end = message.lastIndexOf('}');
          if (end > n) payloadText = message.slice(n, end);
        }
      } else {
        const n = entry.bytes.length;
        if (message.length > n && message.compare(entry.bytes, 0, n, 0, n) === 0) {
          const end = message.lastIndexOf(0x7d); // }
          if (end > n) payloadText = message.toString('utf8', n, end);
        }
      }
      if (payloadText === undefined) continue;
      if (i > 0) {
        this.recent.splice(i, 1);
        this.recent.unshift(entry);
      }
      return { compiled: entry.compiled, payloadText };
    }
    return undefined;
  }

  /**
   * Remembers a schema when the message is laid out as the JsonConverter writes it (schema first,
   * no spaces): then the re-serialised schema (`schemaText`) is exactly the message's prefix.
   */
  learn(text: string, schemaText: string, compiled: T): void {
    const prefix = `${SCHEMA_PREFIX}${schemaText}${PAYLOAD_JOIN}`;
    if (text.slice(0, prefix.length) !== prefix) return;
    this.recent.unshift({ prefix, bytes: Buffer.from(prefix, 'utf8'), compiled });
    if (this.recent.length > RECENT_SCHEMAS) this.recent.pop();
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const COMPILED_BY_TEXT_LIMIT = 256;

/**
 * Compiled schemas by their serialised text, for messages not laid out as the JsonConverter
 * writes them (pretty-printed, payload first): they are parsed whole, but never compiled twice.
 */
class CompiledByText<T> {
  private readonly entries = new Map<string, T>();

  get(text: string, compile: () => T): T {
    let compiled = this.entries.get(text);
    if (compiled === undefined) {
      compiled = compile();
      if (this.entries.size >= COMPILED_BY_TEXT_LIMIT) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(text, compiled);
    }
    return compiled;
  }
}

/**
 * Where a struct's int64 members are (see parseJsonExactIn), or null when one sits in an array or
 * a map, whose members have no name to be named by.
 */
function integerSlotsOf(schema: ConnectSchema): IntegerSlots | null {
  const slots: { name: string; nested: IntegerSlots | null }[] = [];
  for (const field of schema.fields ?? []) {
    if (field.type === 'int64') slots.push({ name: field.field!, nested: null });
    else if (field.type === 'struct') {
      const nested = integerSlotsOf(field);
      if (nested === null) return null;
      if (nested.length > 0) slots.push({ name: field.field!, nested });
    } else if (hasInt64(field)) return null;
  }
  return slots;
}

/** The 64-bit integers of the before and after images, or null when one cannot be named. */
function rowSlots(before: ConnectSchema | undefined, after: ConnectSchema | undefined): IntegerSlots | null {
  const slots: { name: string; nested: IntegerSlots }[] = [];
  for (const [name, schema] of [['before', before], ['after', after]] as const) {
    if (schema === undefined) continue;
    const nested = integerSlotsOf(schema);
    if (nested === null) return null;
    if (nested.length > 0) slots.push({ name, nested });
  }
  return slots;
}

function hasInt64(schema: ConnectSchema | undefined): boolean {
  if (schema === undefined) return false;
  return schema.type === 'int64' || hasInt64(schema.items) || hasInt64(schema.keys) || hasInt64(schema.values) || (schema.fields ?? []).some(hasInt64);
}

/**
 * Decodes Debezium keys and values. One instance per source: its caches hold the schemas seen.
 * Throws NotAnEnvelopeError (shape), JsonSyntaxError (text) or Error (a column value of the wrong type).
 */
export class DebeziumDecoder {
  private readonly valueTexts = new SchemaTextCache<CompiledEnvelope>();
  private readonly keyTexts = new SchemaTextCache<CompiledKey>();
  private readonly valueObjects = new WeakMap<object, CompiledEnvelope>();
  private readonly keyObjects = new WeakMap<object, CompiledKey | null>();
  private readonly valuesByText = new CompiledByText<CompiledEnvelope>();
  private readonly keysByText = new CompiledByText<CompiledKey | null>();
  private readonly schemaless: CompiledEnvelope;
  private readonly placeholder: string;
  private readonly exactMeta: boolean;

  constructor(options: DebeziumDecoderOptions = {}) {
    this.placeholder = options.placeholder ?? UNAVAILABLE_PLACEHOLDER;
    this.exactMeta = options.exactMeta ?? true;
    const hinted = compileHintedRowDecoder(options.columns ?? {}, this.placeholder);
    this.schemaless = { before: hinted, after: hinted, slots: null };
  }

  /** Decodes a value given as JSON text (string or UTF-8 bytes) or an already parsed object. Returns null for a tombstone. */
  decodeValue(value: unknown): DecodedChange | null {
    if (value === null || value === undefined) return null;
    if (typeof value === 'string' || Buffer.isBuffer(value)) return this.decodeValueText(value);
    if (!isRecord(value)) throw new NotAnEnvelopeError('not a Debezium envelope: the value is not a JSON object');
    const { schema, payload } = unwrapPayload(value);
    if (payload === null) return null;
    return this.finish(parsePayload(payload), this.compiledEnvelopeFor(schema));
  }

  private decodeValueText(message: string | Buffer): DecodedChange | null {
    const hit = this.valueTexts.match(message);
    if (hit) {
      const { slots } = hit.compiled;
      const payload = slots === null ? parseJson(hit.payloadText) : parseJsonExactIn(hit.payloadText, slots);
      if (payload === null) return null;
      return this.finish(parsePayload(payload), hit.compiled);
    }
    const text = typeof message === 'string' ? message : message.toString('utf8');
    const doc = parseJson(text);
    if (doc === null) return null;
    if (!isRecord(doc)) throw new NotAnEnvelopeError('not a Debezium envelope: the value is not a JSON object');
    const { schema, payload } = unwrapPayload(doc);
    let compiled: CompiledEnvelope;
    if (isRecord(schema)) {
      const schemaText = stringifyJson(schema);
      compiled = this.valuesByText.get(schemaText, () => this.compileEnvelope(schema));
      this.valueTexts.learn(text, schemaText, compiled);
    } else compiled = this.schemaless;
    if (payload === null) return null;
    return this.finish(parsePayload(payload), compiled);
  }

  /** For already structured values: the same schema object (generator, postgres-cdc) is compiled once. */
  private compiledEnvelopeFor(schema: unknown): CompiledEnvelope {
    if (!isRecord(schema)) return this.schemaless;
    let compiled = this.valueObjects.get(schema);
    if (!compiled) {
      compiled = this.valuesByText.get(stringifyJson(schema), () => this.compileEnvelope(schema));
      this.valueObjects.set(schema, compiled);
    }
    return compiled;
  }

  private compileEnvelope(schema: Record<string, unknown>): CompiledEnvelope {
    let parsed: ConnectSchema;
    try {
      parsed = parseConnectSchema(schema);
    } catch (err) {
      throw new NotAnEnvelopeError(`not a Debezium envelope: ${(err as Error).message}`);
    }
    const beforeSchema = fieldOf(parsed, 'before');
    const afterSchema = fieldOf(parsed, 'after');
    if (!fieldOf(parsed, 'op')) throw new NotAnEnvelopeError('not a Debezium envelope: its schema has no `op` field');
    return {
      before: beforeSchema?.fields ? compileRowDecoder(beforeSchema, this.placeholder) : this.schemaless.before,
      after: afterSchema?.fields ? compileRowDecoder(afterSchema, this.placeholder) : this.schemaless.after,
      slots: this.exactMeta ? null : rowSlots(beforeSchema, afterSchema),
    };
  }

  private finish(payload: DebeziumPayload, compiled: CompiledEnvelope): DecodedChange {
    const unavailable: string[] = [];
    const after = payload.after === null ? null : compiled.after(payload.after, unavailable);
    // The before image's placeholders are not data either, but only the after image's are reported.
    const before = payload.before === null ? null : compiled.before(payload.before, payload.after === null ? unavailable : []);
    return { payload, after, before, unavailable };
  }

  /**
   * A Debezium key: `{schema, payload}` -> the decoded payload (`{id: 15}`); a bare object as is.
   * Text that is not JSON is returned as the string it is.
   */
  decodeKey(raw: unknown): unknown {
    if (raw === null || raw === undefined) return null;
    if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
      const hit = this.keyTexts.match(raw);
      if (hit) {
        const payload = parseJson(hit.payloadText);
        return isRecord(payload) ? hit.compiled.decode(payload, []) : payload;
      }
      const key = typeof raw === 'string' ? raw : raw.toString('utf8');
      let doc: unknown;
      try {
        doc = parseJson(key);
      } catch {
        return key;
      }
      if (isRecord(doc) && 'payload' in doc && isRecord(doc.schema)) {
        const schemaText = stringifyJson(doc.schema);
        const keySchema = doc.schema;
        const compiled = this.keysByText.get(schemaText, () => this.compileKey(keySchema));
        if (compiled) this.keyTexts.learn(key, schemaText, compiled);
        return isRecord(doc.payload) && compiled ? compiled.decode(doc.payload, []) : doc.payload;
      }
      return doc;
    }
    const key = raw;
    if (isRecord(key) && 'payload' in key && 'schema' in key) {
      const compiled = isRecord(key.schema) ? this.compiledKeyFor(key.schema) : undefined;
      return isRecord(key.payload) && compiled ? compiled.decode(key.payload, []) : key.payload;
    }
    return key;
  }

  private compiledKeyFor(schema: Record<string, unknown>): CompiledKey | null {
    let compiled = this.keyObjects.get(schema);
    if (compiled === undefined) {
      compiled = this.keysByText.get(stringifyJson(schema), () => this.compileKey(schema));
      this.keyObjects.set(schema, compiled);
    }
    return compiled;
  }

  /** A key schema's decoder; null when it is not a struct (the payload is then used as sent). */
  private compileKey(schema: Record<string, unknown>): CompiledKey | null {
    let parsed: ConnectSchema;
    try {
      parsed = parseConnectSchema(schema, 'key schema');
    } catch {
      return null;
    }
    return parsed.fields ? { decode: compileRowDecoder(parsed, this.placeholder) } : null;
  }
}

export { NotAnEnvelopeError };
