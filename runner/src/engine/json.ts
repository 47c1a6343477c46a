/**
 * Lossless JSON. `JSON.parse` rounds integers beyond 2^53 (Debezium's `ts_ns`, BIGINT ids, LSNs),
 * silently. `parseJson` keeps such integers as `bigint` and `stringifyJson` writes bigints back as
 * plain digits, so a value read and written by sluice keeps every digit.
 *
 * Fast path: an integer literal beyond 2^53 has at least 16 digits (9007199254740992), so one
 * native regex scan for value positions holding 16+ digits finds every candidate; with none,
 * native `JSON.parse` is exact. Otherwise the unsafe literals are swapped for marker strings,
 * parsed natively and swapped back for bigints. Our own small parser runs only on invalid text,
 * to say exactly where it breaks.
 *
 * Depth: native JSON.parse accepts any nesting, but much that handles a value afterwards recurses
 * (JSON.stringify, JSONata, deep equality), and a record 200,000 levels deep overflowed the stack
 * in a sink and crashed the run. So every parse refuses nesting beyond MAX_JSON_DEPTH, and
 * `stringifyJson` falls back to an iterative writer rather than overflow.
 */
import { ByteSlabs } from './byte-slabs.ts';
import { SluiceError } from './errors.ts';

/** A JSON value as sluice holds it: like JSON.parse's result, with `bigint` for unsafe integers. */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };

/** Text that is not JSON. `position` is the 0-based character offset; `line` and `column` are 1-based. */
export class JsonSyntaxError extends SluiceError {
  constructor(
    message: string,
    readonly position: number,
    readonly line: number,
    readonly column: number,
  ) {
    super('E_JSON', `${message} at line ${line} column ${column}`);
  }
}

/**
 * The deepest nesting of arrays and objects any parse accepts. Jackson (which writes what Kafka
 * Connect and Debezium send) defaults to 1000 and its maintainers consider 500 safer; no real record
 * comes near either. 512 leaves code that recurses per level (JSONata, deep equality, our parser)
 * far from Node's stack limit.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * Parses JSON text exactly: integers beyond 2^53 become `bigint`. Throws JsonSyntaxError with the
 * position, also for nesting deeper than MAX_JSON_DEPTH.
 */
export function parseJson(text: string): JsonValue {
  // Our parser enforces the depth: it throws there, or earlier at a syntax error.
  if (nestingExceeds(text, MAX_JSON_DEPTH)) return new LosslessParser(text).parseDocument();
  try {
    const candidates = unsafeIntegerCandidates(text);
    if (candidates.length === 0) return JSON.parse(text) as JsonValue;
    const restored = parseRestoringRounded(text, candidates);
    if (restored !== undefined) return restored;
    try {
      return parseWithBigInts(text, candidates);
    } catch {
      // A candidate sat inside a string (the marker made the text invalid): find the real literals.
      return parseWithBigInts(text, unsafeIntegerLiterals(text));
    }
  } catch {
    // Not JSON: our own parser says where it stops being JSON (and throws JsonSyntaxError).
    return new LosslessParser(text).parseDocument();
  }
}

/**
 * Whether arrays and objects outside strings nest deeper than `max` anywhere in the text (valid
 * JSON or not). Cheap for almost every message: text with at most `max` opening brackets in all
 * cannot nest deeper, and counting them is a few native `indexOf` calls. Only larger documents
 * (big arrays of records) are scanned, at about half the cost of parsing them.
 */
export function nestingExceeds(text: string, max: number): boolean {
  if (text.length <= max || countUpTo(text, '{', max + 1) + countUpTo(text, '[', max + 1) <= max) return false;
  const n = text.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === Ch.Quote) {
      // Jump to the closing quote (native indexOf): one after an even run of backslashes.
      let end = text.indexOf('"', i + 1);
      for (;;) {
        if (end === -1) return false;
        let b = end - 1;
        while (text.charCodeAt(b) === Ch.Backslash) b--;
        if (((end - 1 - b) & 1) === 0) break;
        end = text.indexOf('"', end + 1);
      }
      i = end;
    } else if (c === Ch.OpenBrace || c === Ch.OpenBracket) {
      if (++depth > max) return true;
    } else if (c === Ch.CloseBrace || c === Ch.CloseBracket) depth--;
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= Ch.Zero && c <= Ch.Nine;
}

/** How often `char` occurs in `text`, counting no further than `limit`. */
function countUpTo(text: string, char: string, limit: number): number {
  let count = 0;
  for (let i = text.indexOf(char); i !== -1 && count < limit; i = text.indexOf(char, i + 1)) count++;
  return count;
}

/**
 * Fewest digits of an unsafe integer literal: 2^53 is 9007199254740992, 16 digits. Every Debezium
 * event has several such runs (16-digit MicroTimestamps, 19-digit ts_ns).
 */
const MIN_UNSAFE_DIGITS = 16;
const TOP_LEVEL_NUMBER = /^\s*(-?\d{16,})\s*$/;

/**
 * Whether the digits in [start, end) make an integer a double cannot hold, without building a
 * string: accumulated in a double, the value is exact up to 2^53, and once past it stays past it.
 */
function digitsBeyondSafe(text: string, start: number, end: number): boolean {
  let v = 0;
  for (let i = start; i < end; i++) {
    v = v * 10 + (text.charCodeAt(i) - Ch.Zero);
    if (v > Number.MAX_SAFE_INTEGER) return true;
  }
  return false;
}

/**
 * Digit runs that look like unsafe integer literals: 16+ digits in a value position (after `:`,
 * `,` or `[`, blanks, and a minus sign if any), no fraction or exponent after them, beyond 2^53.
 *
 * Without reading every character: 16 consecutive positions include one whose index is 15 modulo
 * 16, so only those are probed, and a digit found there is widened to its whole run. A native
 * regex scan of every character (`/[:,[]\s*-?\d{16,}/g`) took 0.94 of the 3.5 µs a Debezium
 * payload's lossless parse cost; this takes 0.48.
 *
 * Strings are not tracked, so a run inside one may be among them: replacing it with a marker
 * (`"\u0002..."`) then always makes the text invalid (a backslash outside a string), so
 * `parseJson` notices and scans exactly.
 */
export function unsafeIntegerCandidates(text: string): [number, number][] {
  const spans: [number, number][] = [];
  const n = text.length;
  for (let probe = MIN_UNSAFE_DIGITS - 1; probe < n; probe += MIN_UNSAFE_DIGITS) {
    if (!isDigit(text.charCodeAt(probe))) continue;
    let start = probe;
    while (isDigit(text.charCodeAt(start - 1))) start--;
    let end = probe + 1;
    while (isDigit(text.charCodeAt(end))) end++;
    // The next probe falls after this run.
    probe += Math.floor((end - 1 - probe) / MIN_UNSAFE_DIGITS) * MIN_UNSAFE_DIGITS;
    if (end - start < MIN_UNSAFE_DIGITS) continue;
    const next = text.charCodeAt(end);
    if (next === Ch.Dot || next === Ch.LowerE || next === Ch.UpperE) continue; // a double, meant as one
    const signed = text.charCodeAt(start - 1) === Ch.Minus ? start - 1 : start;
    let before = signed - 1;
    while (isBlank(text.charCodeAt(before))) before--;
    const opener = text.charCodeAt(before);
    if (opener !== Ch.Colon && opener !== Ch.Comma && opener !== Ch.OpenBracket) continue;
    if (digitsBeyondSafe(text, start, end)) spans.push([signed, end]);
  }
  if (spans.length === 0) {
    const whole = TOP_LEVEL_NUMBER.exec(text);
    if (whole && typeof integerLiteral(whole[1]!) === 'bigint') {
      const start = text.indexOf(whole[1]!);
      spans.push([start, start + whole[1]!.length]);
    }
  }
  return spans;
}

/** JSON's whitespace. */
function isBlank(c: number): boolean {
  return c === Ch.Space || c === Ch.NewLine || c === Ch.Return || c === Ch.Tab;
}

/** Our own lossless parser, character by character: slower than `parseJson`, the reference it is tested against. */
export function parseJsonStrict(text: string): JsonValue {
  return new LosslessParser(text).parseDocument();
}

/**
 * Integer literals outside strings that a double cannot hold, as [start, end) spans.
 */
export function unsafeIntegerLiterals(text: string): [number, number][] {
  const spans: [number, number][] = [];
  const n = text.length;
  let i = 0;
  // One tight pass: skip strings (honouring escapes), measure integer tokens outside them.
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === Ch.Quote) {
      i++;
      for (;;) {
        const d = text.charCodeAt(i);
        if (d === Ch.Quote || i >= n) break;
        i += d === Ch.Backslash ? 2 : 1;
      }
      i++;
      continue;
    }
    if (c === Ch.Minus || (c >= Ch.Zero && c <= Ch.Nine)) {
      const start = i;
      if (c === Ch.Minus) i++;
      let d = text.charCodeAt(i);
      while (d >= Ch.Zero && d <= Ch.Nine) d = text.charCodeAt(++i);
      const integer = d !== Ch.Dot && d !== Ch.LowerE && d !== Ch.UpperE;
      if (integer && i - start >= 16 && typeof integerLiteral(text.slice(start, i)) === 'bigint') spans.push([start, i]);
      // Skip the rest of a non-integer number (fraction, exponent) so its digits are not re-read.
      while (i < n) {
        d = text.charCodeAt(i);
        if (!((d >= Ch.Zero && d <= Ch.Nine) || d === Ch.Dot || d === Ch.LowerE || d === Ch.UpperE || d === Ch.Plus || d === Ch.Minus)) break;
        i++;
      }
      continue;
    }
    i++;
  }
  return spans;
}

/**
 * The common case of a few unsafe integers (every Debezium event has two 19-digit `ts_ns`): the
 * native parse, which rounds them to doubles, then each rounded number gets its exact value back
 * from its literal, with no marked copy of the text to build and parse. A walk meets values in
 * text order except under integer-like or repeated keys, so the exact values are given only when
 * the walk meets exactly as many unsafe integers as there are literals, each equal to its literal
 * rounded, and no two literals round alike. Anything else (a candidate inside a string, a double
 * written with an exponent, reordered keys) answers undefined, and the caller takes the marked
 * path. Repeated keys, which JSON leaves undefined, could mislead it only if a later duplicate
 * were a double written to round like the literal it replaces.
 */
function parseRestoringRounded(text: string, spans: [number, number][]): JsonValue | undefined {
  const literals = spans.map(([start, end]) => text.slice(start, end));
  const rounded = literals.map(Number);
  for (let i = 1; i < rounded.length; i++) if (rounded.indexOf(rounded[i]!) < i) return undefined;
  const walk: RoundedWalk = { literals, rounded, next: 0, ok: true };
  const result = restoreRounded(JSON.parse(text) as JsonValue, walk);
  return walk.ok && walk.next === literals.length ? result : undefined;
}

interface RoundedWalk {
  literals: string[];
  rounded: number[];
  /** The next literal to meet. */
  next: number;
  ok: boolean;
}

function restoreRounded(value: JsonValue, walk: RoundedWalk): JsonValue {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) || !Number.isInteger(value)) return value;
    if (walk.next < walk.rounded.length && walk.rounded[walk.next] === value) return BigInt(walk.literals[walk.next++]!);
    walk.ok = false;
    return value;
  }
  if (typeof value !== 'object' || value === null) return value;
  // Only a number that became a bigint is stored back: storing every member cost 0.15 of the 3.1 µs
  // a Debezium payload took.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && walk.ok; i++) {
      const v = value[i]!;
      if (typeof v === 'object' || typeof v === 'number') {
        const restored = restoreRounded(v, walk);
        if (restored !== v) value[i] = restored;
      }
    }
    return value;
  }
  for (const k in value) {
    if (!walk.ok) break;
    const v = value[k]!;
    if (typeof v === 'object' || typeof v === 'number') {
      const restored = restoreRounded(v, walk);
      if (restored !== v) value[k] = restored;
    }
  }
  return value;
}

/** Native JSON.parse with each unsafe literal swapped for a marker string, then the markers swapped for bigints. */
function parseWithBigInts(text: string, spans: [number, number][]): JsonValue {
  const values: bigint[] = [];
  let marked = '';
  let from = 0;
  for (const [start, end] of spans) {
    marked += `${text.slice(from, start)}"${PARSE_MARK_TEXT}${values.length}"`;
    values.push(BigInt(text.slice(start, end)));
    from = end;
  }
  marked += text.slice(from);
  return restoreBigInts(JSON.parse(marked) as JsonValue, values);
}

function restoreBigInts(value: JsonValue, values: bigint[]): JsonValue {
  if (typeof value === 'string') {
    return value.charCodeAt(0) === 2 && value.startsWith(PARSE_MARK) ? (values[Number(value.slice(PARSE_MARK.length))] ?? value) : value;
  }
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = restoreBigInts(value[i]!, values);
    return value;
  }
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = value[k]!;
    if (typeof v === 'object' || typeof v === 'string') value[k] = restoreBigInts(v, values);
  }
  return value;
}

/**
 * Where a schema lets integers beyond 2^53 appear: its 64-bit integer members (`nested: null`) and
 * the objects nesting such members, by member name. Built from a schema, e.g. a Kafka Connect one.
 */
export type IntegerSlots = readonly { readonly name: string; readonly nested: IntegerSlots | null }[];

/**
 * JSON text parsed exactly only where it matters: native JSON.parse, exact in the members `slots`
 * names (a schema's 64-bit integers that are read), and doubles everywhere else, so integers beyond
 * 2^53 elsewhere come out rounded. Only for a caller that knows nothing reads those exactly: a
 * Debezium payload whose `ts_ns` nobody reads took 1.8 instead of 3.2 µs (`parseJson` scans the
 * text for long digit runs and walks every member to restore them).
 *
 * When JSON.parse rounded a member `slots` names, or the text is not JSON or nests too deep, it is
 * `parseJson`'s (exact everywhere, or its error).
 */
export function parseJsonExactIn(text: string, slots: IntegerSlots): JsonValue {
  if (nestingExceeds(text, MAX_JSON_DEPTH)) return parseJson(text);
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    return parseJson(text);
  }
  return roundsAny(value, slots) ? parseJson(text) : value;
}

/** Whether a member `slots` names holds an integer a double could not hold exactly. */
function roundsAny(value: JsonValue | undefined, slots: IntegerSlots): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (let i = 0; i < slots.length; i++) {
    const { name, nested } = slots[i]!;
    if (!Object.prototype.hasOwnProperty.call(value, name)) continue;
    const v = value[name];
    if (nested === null ? typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) : roundsAny(v, nested)) return true;
  }
  return false;
}

/**
 * JSON text for a value; bigints are written as plain digits. `undefined` becomes `null`. Never
 * overflows the stack: a value too deep for native JSON.stringify is written iteratively.
 */
export function stringifyJson(value: unknown, indent?: number): string {
  return writeJson(value, indent, false) as string;
}

/**
 * What `stringifyJson` writes, for a wire that takes bytes (a Kafka message): text, or UTF-8
 * bytes when the value holds constants of constantJson. Their bytes were encoded once and are
 * copied in, so a Debezium envelope's schema (most of each message) is neither joined into a new
 * string per message nor encoded again: the join allocated 5.6 KB per change event of the native
 * change capture source, the largest allocation of its drain.
 */
export function stringifyJsonForWire(value: unknown): string | Buffer {
  return writeJson(value, undefined, true);
}

function writeJson(value: unknown, indent: number | undefined, bytesForConstants: boolean): string | Buffer {
  try {
    if ((BigInt.prototype as { toJSON?: unknown }).toJSON === bigintToJson) {
      // One native pass: bigints come out as marker strings, unquoted afterwards, and so do the
      // constants of constantJson (their text rendered once), unless indenting.
      let text: string;
      let constants: RenderedConstant[] | undefined;
      markingBigInts = true;
      markedBigInt = false;
      markingConstants = indent === undefined;
      try {
        text = JSON.stringify(value, null, indent) ?? 'null';
      } finally {
        markingBigInts = false;
        markingConstants = false;
        constants = constantsMarked;
        constantsMarked = undefined;
      }
      if (constants) {
        if (bytesForConstants) return spliceMarks(text, constants);
        // Constants and bigints in one pass: each pass copies the whole text, and for a Debezium
        // envelope (a schema constant, ts_ns bigints) two passes took a third longer than one.
        return text.replace(MARK_RE, (_mark, kind: string, digits: string) => (kind === 'bigint' ? digits : constants[Number(digits)]!.text));
      }
      // The flag, not a search of the text: looking for the marker took a sixth of the time of a
      // processed record's JSON.stringify.
      return markedBigInt ? text.replace(BIGINT_MARK_RE, '$1') : text;
    }
    // Someone else's BigInt toJSON is installed: leave it alone and mark bigints with a replacer.
    const text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${BIGINT_MARK}${v.toString()}` : v), indent);
    return (text ?? 'null').replace(BIGINT_MARK_RE, '$1');
  } catch (err) {
    if (!isStackOverflow(err)) throw err;
    return stringifyJsonIteratively(value, indent);
  }
}

/** Messages are carved out of slabs: Node's 8 KiB pool took 5% of the change capture drain. */
const wireSlabs = new ByteSlabs();

/**
 * UTF-8 bytes of `text` with each marker replaced: a bigint's by its digits, a constant's by its
 * bytes. Markers are found with indexOf, not MARK_RE: the regex's match arrays were 1.4 KB per
 * change event.
 */
function spliceMarks(text: string, constants: readonly RenderedConstant[]): Buffer {
  const pieces: (string | Buffer)[] = [];
  let size = 0;
  let from = 0;
  const addText = (end: number): void => {
    if (end <= from) return;
    const between = text.slice(from, end);
    pieces.push(between);
    size += Buffer.byteLength(between, 'utf8');
  };
  for (let at = text.indexOf(QUOTED_MARK_START); at !== -1; at = text.indexOf(QUOTED_MARK_START, from)) {
    const bigint = text.startsWith(QUOTED_BIGINT_MARK, at);
    if (!bigint && !text.startsWith(QUOTED_CONSTANT_MARK, at)) {
      // Not ours (a string holding U+0001): it stays text.
      addText(at + QUOTED_MARK_START.length);
      from = at + QUOTED_MARK_START.length;
      continue;
    }
    addText(at);
    const digitsFrom = at + (bigint ? QUOTED_BIGINT_MARK : QUOTED_CONSTANT_MARK).length;
    const digitsEnd = text.indexOf('"', digitsFrom);
    const piece = bigint ? text.slice(digitsFrom, digitsEnd) : constants[Number(text.slice(digitsFrom, digitsEnd))]!.bytes;
    pieces.push(piece);
    size += piece.length; // a bigint's digits are ASCII: one byte each
    from = digitsEnd + 1;
  }
  addText(text.length);
  const bytes = wireSlabs.take(size);
  let at = 0;
  for (const piece of pieces) at += typeof piece === 'string' ? bytes.write(piece, at, 'utf8') : piece.copy(bytes, at);
  return bytes;
}

function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

/** An array or object being written: its members are visited one per turn of the loop. */
interface OpenContainer {
  container: object;
  /** Object keys; undefined for an array. */
  keys: string[] | undefined;
  length: number;
  next: number;
  /** Whether a member was written yet (separators, and where the closing bracket goes). */
  wroteMember: boolean;
}

/**
 * What JSON.stringify(value, null, indent) writes, bigints as plain digits, with an explicit stack
 * instead of recursion: the same text at any depth. Slower than native; `stringifyJson` uses it
 * only when native overflows.
 */
export function stringifyJsonIteratively(value: unknown, indent?: number): string {
  const gap = indent === undefined ? '' : ' '.repeat(Math.max(0, Math.min(10, Math.floor(indent))));
  const parts: string[] = [];
  const stack: OpenContainer[] = [];
  const open = new Set<object>();
  const newline = (depth: number): void => {
    if (gap !== '') parts.push(`\n${gap.repeat(depth)}`);
  };
  const write = (v: unknown): void => {
    if (v === null) parts.push('null');
    else if (typeof v === 'string') parts.push(JSON.stringify(v));
    else if (typeof v === 'number') parts.push(Number.isFinite(v) ? String(v) : 'null');
    else if (typeof v === 'boolean') parts.push(v ? 'true' : 'false');
    else if (typeof v === 'bigint') parts.push(v.toString());
    else if (typeof v === 'object') {
      if (open.has(v)) throw new TypeError('Converting circular structure to JSON');
      open.add(v);
      const keys = Array.isArray(v) ? undefined : Object.keys(v);
      stack.push({ container: v, keys, length: keys === undefined ? (v as unknown[]).length : keys.length, next: 0, wroteMember: false });
      parts.push(keys === undefined ? '[' : '{');
    }
  };
  const top = jsonMember('', value);
  if (top === undefined) return 'null';
  write(top);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.length) {
      stack.pop();
      open.delete(frame.container);
      if (frame.wroteMember) newline(stack.length);
      parts.push(frame.keys === undefined ? ']' : '}');
      continue;
    }
    const i = frame.next++;
    const key = frame.keys === undefined ? String(i) : frame.keys[i]!;
    const member = jsonMember(key, (frame.container as Record<string, unknown>)[key]);
    // An object leaves out what JSON cannot hold; an array writes null in its place.
    if (member === undefined && frame.keys !== undefined) continue;
    if (frame.wroteMember) parts.push(',');
    frame.wroteMember = true;
    newline(stack.length);
    if (frame.keys !== undefined) parts.push(gap === '' ? `${JSON.stringify(key)}:` : `${JSON.stringify(key)}: `);
    write(member === undefined ? null : member);
  }
  return parts.join('');
}

/** A member as JSON.stringify sees it: after `toJSON`, boxed primitives unboxed, undefined when JSON cannot hold it. */
function jsonMember(key: string, v: unknown): unknown {
  // Our own BigInt toJSON is for the native pass; this writer writes bigints as digits itself.
  if ((typeof v === 'object' && v !== null) || (typeof v === 'bigint' && (BigInt.prototype as { toJSON?: unknown }).toJSON !== bigintToJson)) {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') v = (toJSON as (key: string) => unknown).call(v, key);
  }
  if (v instanceof Number) return Number(v);
  if (v instanceof String) return String(v);
  if (v instanceof Boolean) return v.valueOf();
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return undefined;
  return v;
}

const NONCE = Math.random().toString(36).slice(2, 10);
// Marks an unsafe integer while native JSON.parse runs; the control character and nonce keep data strings from matching.
const PARSE_MARK = `\u0002bigint-${NONCE}:`;
/** The marker as JSON text (a raw control character is not allowed inside a JSON string). */
const PARSE_MARK_TEXT = `\\u0002bigint-${NONCE}:`;
const BIGINT_MARK = `\u0001bigint-${NONCE}:`;
const BIGINT_MARK_RE = new RegExp(`"\\\\u0001bigint-${NONCE}:(-?\\d+)"`, 'g');

/**
 * JSON.stringify calls a BigInt's `toJSON` (and throws without one), so with this one a value
 * holding bigints is written in one native pass, each bigint as a marker string that
 * `stringifyJson` then unquotes. The other way, a failed native pass and then one with a replacer
 * called for every member, cost 14 µs instead of 2.7 for a repartition envelope carrying
 * Debezium's `ts_ns`. It marks only while `stringifyJson` writes: anywhere else it gives the bigint
 * back, so JSON.stringify throws as before and the logger writes the number.
 */
let markingBigInts = false;
/** Whether the native pass under way marked a bigint (its text then needs the markers unquoted). */
let markedBigInt = false;
function bigintToJson(this: bigint): string | bigint {
  if (!markingBigInts) return this;
  markedBigInt = true;
  return `${BIGINT_MARK}${this.toString()}`;
}
if (!Object.prototype.hasOwnProperty.call(BigInt.prototype, 'toJSON')) {
  Object.defineProperty(BigInt.prototype, 'toJSON', { value: bigintToJson, writable: true, configurable: true, enumerable: false });
}

const CONSTANT_MARK = `\u0001constant-${NONCE}:`;
/** The markers as JSON.stringify writes them (U+0001 escaped), up to their number or digits. */
const QUOTED_MARK_START = '"\\u0001';
const QUOTED_BIGINT_MARK = `"\\u0001bigint-${NONCE}:`;
const QUOTED_CONSTANT_MARK = `"\\u0001constant-${NONCE}:`;
/** A constant's or a bigint's marker, as JSON.stringify writes them: which, and its number or digits. */
const MARK_RE = new RegExp(`"\\\\u0001(bigint|constant)-${NONCE}:(-?\\d+)"`, 'g');
/** A constant's JSON, rendered once: as text, and as the UTF-8 bytes a wire takes. */
interface RenderedConstant {
  text: string;
  bytes: Buffer;
}
/** Whether stringifyJson's native pass runs (unindented), and the constants its markers stand for, by number. */
let markingConstants = false;
let constantsMarked: RenderedConstant[] | undefined;

/**
 * Marks an object that is never changed again (a table's Connect schema, written with every row
 * of it) so that `stringifyJson` writes it from text rendered here, once: JSON.stringify then
 * sees a short marker string instead of walking it each time. A non-enumerable `toJSON` does it,
 * and only inside `stringifyJson`: anywhere else it gives the object back, written as usual, and
 * copies (spread, Object.assign, structuredClone) are plain objects again.
 */
export function constantJson<T extends object>(value: T): T {
  const text = stringifyJson(value);
  const rendered: RenderedConstant = { text, bytes: Buffer.from(text, 'utf8') };
  Object.defineProperty(value, 'toJSON', {
    value(this: T): T | string {
      if (!markingConstants) return this;
      return `${CONSTANT_MARK}${(constantsMarked ??= []).push(rendered) - 1}`;
    },
    enumerable: false,
  });
  return value;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/** An integer literal's value: a number when a double holds it exactly, else a bigint. */
export function integerLiteral(digits: string): number | bigint {
  // Up to 15 digits always fit; 16+ need checking.
  const unsigned = digits.charCodeAt(0) === 45 ? digits.length - 1 : digits.length;
  if (unsigned < 16) return Number(digits);
  const big = BigInt(digits);
  return big > MAX_SAFE || big < MIN_SAFE ? big : Number(big);
}

const enum Ch {
  Tab = 9,
  NewLine = 10,
  Return = 13,
  Space = 32,
  Quote = 34,
  Plus = 43,
  Comma = 44,
  Minus = 45,
  Dot = 46,
  Zero = 48,
  Nine = 57,
  Colon = 58,
  UpperE = 69,
  OpenBracket = 91,
  Backslash = 92,
  CloseBracket = 93,
  LowerE = 101,
  OpenBrace = 123,
  CloseBrace = 125,
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class LosslessParser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    this.skipSpace();
    const value = this.parseValue();
    this.skipSpace();
    if (this.pos < this.text.length) this.fail('unexpected text after the JSON value');
    return value;
  }

  private parseValue(): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    if (c === Ch.Quote) return this.parseString();
    if (c === Ch.OpenBrace) return this.parseObject();
    if (c === Ch.OpenBracket) return this.parseArray();
    if (c === Ch.Minus || (c >= Ch.Zero && c <= Ch.Nine)) return this.parseNumber();
    if (this.text.startsWith('true', this.pos)) return this.literal(4, true);
    if (this.text.startsWith('false', this.pos)) return this.literal(5, false);
    if (this.text.startsWith('null', this.pos)) return this.literal(4, null);
    if (this.pos >= this.text.length) this.fail('unexpected end of JSON');
    return this.fail(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
  }

  private literal<T>(length: number, value: T): T {
    this.pos += length;
    return value;
  }

  private enter(): void {
    if (++this.depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
  }

  private parseObject(): JsonValue {
    this.enter();
    this.pos++; // {
    const out: { [key: string]: JsonValue } = {};
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) === Ch.CloseBrace) {
      this.pos++;
      this.depth--;
      return out;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== Ch.Quote) this.fail('expected a property name in double quotes');
      const key = this.parseString();
      this.skipSpace();
      if (this.text.charCodeAt(this.pos) !== Ch.Colon) this.fail("expected ':' after a property name");
      this.pos++;
      this.skipSpace();
      const value = this.parseValue();
      // Like JSON.parse: a later duplicate wins; `__proto__` is an own data property, never the prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
      this.skipSpace();
      const c = this.text.charCodeAt(this.pos);
      if (c === Ch.Comma) {
        this.pos++;
        this.skipSpace();
        continue;
      }
      if (c === Ch.CloseBrace) {
        this.pos++;
        this.depth--;
        return out;
      }
      this.fail("expected ',' or '}' in an object");
    }
  }

  private parseArray(): JsonValue {
    this.enter();
    this.pos++; // [
    const out: JsonValue[] = [];
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) === Ch.CloseBracket) {
      this.pos++;
      this.depth--;
      return out;
    }
    for (;;) {
      out.push(this.parseValue());
      this.skipSpace();
      const c = this.text.charCodeAt(this.pos);
      if (c === Ch.Comma) {
        this.pos++;
        this.skipSpace();
        continue;
      }
      if (c === Ch.CloseBracket) {
        this.pos++;
        this.depth--;
        return out;
      }
      this.fail("expected ',' or ']' in an array");
    }
  }

  private parseString(): string {
    const text = this.text;
    const start = ++this.pos; // opening quote
    let pos = start;
    // Plain strings (no escapes) are one slice.
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === Ch.Quote) {
        this.pos = pos + 1;
        return text.slice(start, pos);
      }
      if (c === Ch.Backslash) break;
      if (c < 0x20 || Number.isNaN(c)) {
        this.pos = pos;
        this.fail(Number.isNaN(c) ? 'unterminated string' : 'control character in a string');
      }
      pos++;
    }
    let out = text.slice(start, pos);
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === Ch.Quote) {
        this.pos = pos + 1;
        return out;
      }
      if (Number.isNaN(c)) {
        this.pos = pos;
        this.fail('unterminated string');
      }
      if (c < 0x20) {
        this.pos = pos;
        this.fail('control character in a string');
      }
      if (c !== Ch.Backslash) {
        out += text[pos];
        pos++;
        continue;
      }
      const e = text[pos + 1];
      if (e === 'u') {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
          this.pos = pos;
          this.fail('bad \\u escape in a string');
        }
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 6;
        continue;
      }
      const decoded = e === undefined ? undefined : ESCAPES[e];
      if (decoded === undefined) {
        this.pos = pos;
        this.fail('bad escape in a string');
      }
      out += decoded;
      pos += 2;
    }
  }

  private parseNumber(): number | bigint {
    const text = this.text;
    const start = this.pos;
    let pos = start;
    if (text.charCodeAt(pos) === Ch.Minus) pos++;
    const firstDigit = text.charCodeAt(pos);
    if (firstDigit === Ch.Zero) pos++;
    else if (firstDigit > Ch.Zero && firstDigit <= Ch.Nine) pos = this.digits(pos);
    else {
      this.pos = pos;
      this.fail('expected a digit');
    }
    let integer = true;
    if (text.charCodeAt(pos) === Ch.Dot) {
      integer = false;
      const after = this.digits(pos + 1);
      if (after === pos + 1) {
        this.pos = after;
        this.fail('expected a digit after the decimal point');
      }
      pos = after;
    }
    const e = text.charCodeAt(pos);
    if (e === Ch.LowerE || e === Ch.UpperE) {
      integer = false;
      pos++;
      const sign = text.charCodeAt(pos);
      if (sign === Ch.Plus || sign === Ch.Minus) pos++;
      const after = this.digits(pos);
      if (after === pos) {
        this.pos = after;
        this.fail('expected a digit in the exponent');
      }
      pos = after;
    }
    this.pos = pos;
    const literal = text.slice(start, pos);
    return integer ? integerLiteral(literal) : Number(literal);
  }

  private digits(pos: number): number {
    const text = this.text;
    let c = text.charCodeAt(pos);
    while (c >= Ch.Zero && c <= Ch.Nine) c = text.charCodeAt(++pos);
    return pos;
  }

  private skipSpace(): void {
    const text = this.text;
    let c = text.charCodeAt(this.pos);
    while (isBlank(c)) c = text.charCodeAt(++this.pos);
  }

  private fail(message: string): never {
    const { line, column } = lineAndColumn(this.text, this.pos);
    throw new JsonSyntaxError(message, this.pos, line, column);
  }
}

/** 1-based line and column of a character offset. */
function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < position; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: position - lineStart + 1 };
}
