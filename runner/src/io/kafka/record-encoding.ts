/**
 * A faster encoder for kafkajs 2.2.4's produce records, installed before kafkajs loads (client.ts
 * imports this first). kafkajs encodes each record through a growable Encoder that allocates a
 * Buffer for every varint, Long objects for the timestamp delta, an array and an Encoder per
 * header, and then copies them all again into the record: in a drain it was about a tenth of the
 * CPU, much of it garbage. This computes the record's size, writes it into one buffer in one pass,
 * and gives kafkajs what it reads of an Encoder (`buf`, `buffer`). Same bytes (record format v2,
 * KIP-98); kafkajs's own runs for anything this does not expect (a Long timestamp delta).
 *
 * Record => Length:varint Attributes:int8 TimestampDelta:varlong OffsetDelta:varint
 *           Key:varint-bytes Value:varint-bytes Headers:[varint-string varint-bytes]
 */
import { ByteSlabs } from '../../engine/byte-slabs.ts';
import { replaceKafkajsModule } from './kafkajs-module.ts';

type Bytes = Buffer | string | null | undefined;

interface RecordInput {
  offsetDelta?: number;
  timestampDelta?: unknown;
  key?: Bytes;
  value?: Bytes;
  headers?: Record<string, Bytes | Bytes[]>;
}

/** What kafkajs's RecordBatch reads of a record's Encoder (record-batch.ts's too). */
export interface EncodedRecord {
  readonly buf: Buffer;
  readonly buffer: Buffer;
}

/** Zigzag of a safe integer (numbers, not 32-bit ints, so a long fits): 0, -1, 1, -2 ... -> 0, 1, 2, 3 ... */
export function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

/** Bytes of an unsigned varint. */
export function uvarintSize(u: number): number {
  let n = 1;
  while (u >= 128) {
    u = Math.floor(u / 128);
    n++;
  }
  return n;
}

/** Writes an unsigned varint at `at`; returns the offset after it. */
export function writeUVarInt(buf: Buffer, at: number, u: number): number {
  while (u >= 128) {
    buf[at++] = (u % 128) | 128;
    u = Math.floor(u / 128);
  }
  buf[at++] = u;
  return at;
}

/** A key, value or header value as kafkajs writes it: null stays null, a Buffer as is, anything else as UTF-8 text. */
function bytesOf(v: Bytes | number | boolean): Buffer | string | null {
  if (v === null || v === undefined) return null;
  return Buffer.isBuffer(v) ? v : String(v);
}

function byteLength(v: Buffer | string): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
}

/** Size of a varint length and the bytes after it (-1 for null). */
function sizedBytes(v: Buffer | string | null, length: number): number {
  return v === null ? 1 : uvarintSize(zigzag(length)) + length;
}

function writeSizedBytes(buf: Buffer, at: number, v: Buffer | string | null, length: number): number {
  if (v === null) return writeUVarInt(buf, at, 1); // zigzag(-1)
  at = writeUVarInt(buf, at, zigzag(length));
  if (typeof v === 'string') buf.write(v, at, length, 'utf8');
  else v.copy(buf, at);
  return at + length;
}

/** Records are carved out of slabs (see ByteSlabs), freed once the produce requests that carried them are written. */
const recordSlabs = new ByteSlabs();

/** A buffer of `size` bytes for one record, its contents undefined. Exported for its test. */
export function recordBuffer(size: number): Buffer {
  return recordSlabs.take(size);
}

/** The record's bytes, or undefined when it holds what this does not encode (kafkajs's own does). */
export function encodeRecord({ offsetDelta = 0, timestampDelta = 0, key, value, headers }: RecordInput): EncodedRecord | undefined {
  if (typeof timestampDelta !== 'number' || !Number.isSafeInteger(timestampDelta) || !Number.isSafeInteger(offsetDelta)) return undefined;
  const k = bytesOf(key);
  const v = bytesOf(value);
  const kLen = k === null ? 0 : byteLength(k);
  const vLen = v === null ? 0 : byteLength(v);
  const hKeys: string[] = [];
  const hValues: (Buffer | string | null)[] = [];
  if (headers) {
    for (const name in headers) {
      const h = headers[name];
      if (Array.isArray(h)) {
        for (const one of h) {
          hKeys.push(name);
          hValues.push(bytesOf(one));
        }
      } else {
        hKeys.push(name);
        hValues.push(bytesOf(h));
      }
    }
  }
  const hKeyLens = hKeys.map((n) => Buffer.byteLength(n, 'utf8'));
  const hValueLens = hValues.map((h) => (h === null ? 0 : byteLength(h)));
  let body = 1 + uvarintSize(zigzag(timestampDelta)) + uvarintSize(zigzag(offsetDelta)) + sizedBytes(k, kLen) + sizedBytes(v, vLen) + uvarintSize(zigzag(hKeys.length));
  for (let i = 0; i < hKeys.length; i++) body += uvarintSize(zigzag(hKeyLens[i]!)) + hKeyLens[i]! + sizedBytes(hValues[i]!, hValueLens[i]!);

  const buf = recordBuffer(uvarintSize(zigzag(body)) + body);
  let at = writeUVarInt(buf, 0, zigzag(body));
  buf[at++] = 0; // attributes: none used in a record
  at = writeUVarInt(buf, at, zigzag(timestampDelta));
  at = writeUVarInt(buf, at, zigzag(offsetDelta));
  at = writeSizedBytes(buf, at, k, kLen);
  at = writeSizedBytes(buf, at, v, vLen);
  at = writeUVarInt(buf, at, zigzag(hKeys.length));
  for (let i = 0; i < hKeys.length; i++) {
    at = writeSizedBytes(buf, at, hKeys[i]!, hKeyLens[i]!);
    at = writeSizedBytes(buf, at, hValues[i]!, hValueLens[i]!);
  }
  if (at !== buf.length) throw new Error(`kafka record encoding: wrote ${at} of ${buf.length} bytes`);
  return { buf, buffer: buf };
}

type RecordEncoder = (input: RecordInput) => EncodedRecord;

/** kafkajs's own, for what encodeRecord leaves to it (and for the tests to compare with). */
export const kafkajsRecord: RecordEncoder = replaceKafkajsModule<RecordEncoder>({
  module: 'kafkajs/src/protocol/recordBatch/record/v0/index.js',
  requiredBy: 'kafkajs/src/protocol/requests/produce/v3/request.js',
  replacement: (input: RecordInput) => encodeRecord(input) ?? kafkajsRecord(input),
  mark: Symbol.for('sluice.kafkajs.record-encoding'),
  what: 'its produce record encoding',
});
