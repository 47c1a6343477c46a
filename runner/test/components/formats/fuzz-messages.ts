/**
 * Seeded generators of poison and plain messages for the format fuzz test: valid seeds per format,
 * and mutations of them (cut short, bytes flipped, numbers made huge, nesting made deep, schema
 * types swapped, invalid UTF-8). The same seed gives the same messages, so a failure is replayed
 * by its seed.
 */
import { EMPLOYEE_ACTIVITY_DEFAULTS, EmployeeActivitySimulator } from '../../../src/components/sources/generator/employee-activity.ts';
import { stringifyJson } from '../../../src/engine/json.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

/** A raw key and value as a wire source would hand them over: text, bytes or null. */
export interface FuzzMessage {
  key: string | Buffer | null;
  value: string | Buffer | null;
}

export type FuzzFormat = 'json' | 'text' | 'debezium';

/** The `max_bytes` the fuzz pipeline's formats run with: room for 100,000 levels of nesting, and cheap to exceed. */
export const MAX_BYTES = 262_144;

/** A source of random choices over one seeded stream. */
export class Chooser {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

const WORDS = ['', 'a', 'id', 'name', 'José', '😀', 'x y', '__proto__', 'constructor', 'op', 'after', '"', '\\', '\u0000', '\u2028', '\ud800'];
const NUMBERS = [
  '0',
  '-0',
  '1',
  '-1',
  '1.5',
  '1e308',
  '1e400',
  '-1e400',
  '1e-400',
  '9007199254740993',
  '-9007199254740993',
  '123456789012345678901234567890123456789',
  '0.' + '1'.repeat(40),
  '9'.repeat(400),
];

/** Random JSON text: objects, arrays, strings with escapes and unicode, numbers of every size. */
export function randomJsonText(c: Chooser, depth = 0): string {
  const kind = c.int(depth > 3 ? 5 : 7);
  switch (kind) {
    case 0:
      return c.pick(['null', 'true', 'false']);
    case 1:
      return c.pick(NUMBERS);
    case 2:
      return String(c.int(1_000_000) - 500_000);
    case 3:
    case 4:
      return JSON.stringify(c.pick(WORDS) + c.pick(WORDS));
    case 5: {
      const n = c.int(4);
      return `[${Array.from({ length: n }, () => randomJsonText(c, depth + 1)).join(',')}]`;
    }
    default: {
      const n = c.int(5);
      return `{${Array.from({ length: n }, () => `${JSON.stringify(c.pick(WORDS))}:${randomJsonText(c, depth + 1)}`).join(',')}}`;
    }
  }
}

/** Some JSON nested `depth` levels deep, around a value. */
function nested(c: Chooser, depth: number, inner: string): string {
  const open = c.chance(0.5) ? '[' : '{"k":';
  const close = open === '[' ? ']' : '}';
  return `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
}

/** Bytes that are not valid UTF-8: lone continuation bytes, cut sequences, overlongs, encoded surrogates. */
function invalidUtf8(c: Chooser, text: string): Buffer {
  const bad = c.pick([[0xff], [0xfe], [0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]);
  const bytes = Buffer.from(text, 'utf8');
  const at = c.int(bytes.length + 1);
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(bad), bytes.subarray(at)]);
}

const STRUCTURAL = ['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\n', '\u0000', 'e', '-', '.', '0', 'n', 't'];

/** One random change to a text: cut, insert, delete, flip, duplicate, or a number made huge. */
function mutateText(c: Chooser, text: string): string {
  const at = c.int(text.length + 1);
  switch (c.int(7)) {
    case 0:
      return text.slice(0, at); // truncated
    case 1:
      return text.slice(0, at) + c.pick(STRUCTURAL) + text.slice(at);
    case 2:
      return text.slice(0, at) + text.slice(at + 1 + c.int(8));
    case 3:
      return text.slice(0, at) + String.fromCharCode(c.int(0x10000)) + text.slice(at + 1);
    case 4:
      return text.slice(0, at) + text.slice(at, at + c.int(40)) + text.slice(at);
    case 5:
      return text.replace(/-?\d+(\.\d+)?/, c.pick(NUMBERS));
    default:
      return text.replace(/"(int32|int64|string|boolean|double|struct|array)"/, `"${c.pick(['int8', 'string', 'boolean', 'float', 'struct', 'map', 'nonsense', ''])}"`);
  }
}

/** A message as bytes or text, sometimes with invalid UTF-8 slipped in. */
function asWire(c: Chooser, text: string): string | Buffer {
  if (c.chance(0.1)) return invalidUtf8(c, text);
  return c.chance(0.5) ? Buffer.from(text, 'utf8') : text;
}

/** Valid JSON and the poison that Kafka topics and files actually carry. */
function jsonValue(c: Chooser): string | Buffer | null {
  const roll = c.int(20);
  if (roll === 0) return null;
  if (roll === 1) return c.pick(['', ' ', '\n', 'null', 'nul', '{', '"', '[]', '{}']);
  if (roll === 2) return nested(c, c.pick([100, 511, 512, 513, 2000, 100_000]), randomJsonText(c, 4));
  if (roll === 3) return Buffer.from(Array.from({ length: c.int(64) }, () => c.int(256)));
  if (roll === 4) return c.chance(0.05) ? `"${'x'.repeat(MAX_BYTES)}"` : `"${'x'.repeat(1000)}"`; // the first beyond max_bytes
  let text = randomJsonText(c);
  if (c.chance(0.6)) text = `{"id":${c.int(1000)},"v":${text}}`;
  const mutations = c.chance(0.5) ? 0 : 1 + c.int(3);
  for (let i = 0; i < mutations; i++) text = mutateText(c, text);
  return asWire(c, text);
}

function textValue(c: Chooser): string | Buffer | null {
  const roll = c.int(10);
  if (roll === 0) return null;
  if (roll === 1) return Buffer.from(Array.from({ length: c.int(64) }, () => c.int(256)));
  if (roll === 2) return c.pick(['', '\r', '\u0000', '\ud800', '\ufeffBOM']);
  return asWire(c, mutateText(c, randomJsonText(c)));
}

/** Debezium envelopes from the employee-activity simulator (with schemas) and schema-less ones, then mutated. */
export class DebeziumMessages {
  private readonly sim: EmployeeActivitySimulator;
  constructor(seed: number) {
    this.sim = new EmployeeActivitySimulator({ ...EMPLOYEE_ACTIVITY_DEFAULTS, seed, startMs: Date.UTC(2025, 0, 6, 8) });
  }

  message(c: Chooser): FuzzMessage {
    const event = this.sim.next();
    const key = event.key === null ? null : stringifyJson(event.key);
    let envelope = event.value === null ? null : stringifyJson(event.value);
    if (envelope !== null && c.chance(0.3)) {
      // Schema-less: the bare payload, as the JsonConverter writes it with schemas.enable=false.
      envelope = stringifyJson((event.value as { payload: unknown }).payload);
    }
    const roll = c.int(12);
    let value: string | Buffer | null = envelope;
    if (roll === 0) value = null;
    else if (envelope !== null && roll <= 6) {
      let text = envelope;
      const mutations = 1 + c.int(3);
      for (let i = 0; i < mutations; i++) text = mutateText(c, text);
      value = asWire(c, text);
    } else if (roll === 7) value = `{"op":"${c.pick(['c', 'u', 'd', 'r', 't', 'x', ''])}","after":${randomJsonText(c)},"before":${randomJsonText(c)}}`;
    else if (roll === 8) value = `{"op":"c","after":{"id":1,"tags":${nested(c, c.pick([200, 513, 5000, 100_000]), '1')}}}`;
    else if (roll === 9) value = `{"schema":${randomJsonText(c)},"payload":${randomJsonText(c)}}`;
    else if (envelope !== null && roll === 10) value = envelope.slice(0, c.int(envelope.length)); // a truncated envelope
    let wireKey: string | Buffer | null = key;
    if (key !== null && c.chance(0.1)) wireKey = asWire(c, mutateText(c, key));
    return { key: wireKey, value };
  }
}

/** `count` messages for a format from one seed: the same seed, the same messages. */
export function fuzzMessages(format: FuzzFormat, seed: number, count: number): FuzzMessage[] {
  const c = new Chooser(seed);
  const debezium = format === 'debezium' ? new DebeziumMessages(seed) : undefined;
  const out: FuzzMessage[] = [];
  for (let i = 0; i < count; i++) {
    if (debezium) out.push(debezium.message(c));
    else {
      const key = c.chance(0.2) ? asWire(c, c.chance(0.5) ? randomJsonText(c) : c.pick(WORDS)) : null;
      out.push({ key, value: format === 'json' ? jsonValue(c) : textValue(c) });
    }
  }
  return out;
}
