/**
 * How kafkajs 2.2.4's protocol Encoder grows and nests its buffers, replaced (client.ts imports this
 * first).
 *
 * - Growth: each encoder grows by doubling into a `Buffer.alloc`, which zero-fills memory that the
 *   copy overwrites at once. Here a growing encoder takes unfilled memory (an encoder only ever
 *   exposes what it wrote, `buf.slice(0, offset)`), and an array of encoders is sized once before
 *   its copy. With records of a few KB the zero-filling was 9-10% of the main thread while the
 *   native CDC source wrote a backlog.
 * - Nesting: a produce request is built inside out (records, batch body, batch, partition, topic,
 *   request, frame), and kafkajs copies each encoder whole into the next: eight copies of every
 *   byte. Here an encoder takes a large part (LARGE_PART bytes or more, or one that holds parts
 *   itself) by reference, as a list of parts, and copies only when its bytes are read (`buffer`).
 *   An array of encoders that are large together (a batch's records) is referenced too, and
 *   record-batch.ts checksums a batch's parts (`bytesInParts`) instead of joining them, so the
 *   frame's join, for the socket, is the one copy.
 *   Parts are views of bytes already written, which no encoder writes again: an encoder only
 *   appends.
 */
import { createRequire } from 'node:module';
import type { EncodedRecord } from './record-encoding.ts';

interface EncoderInstance {
  buf: Buffer;
  offset: number;
  /** Parts before `buf`, taken by reference; undefined for none (kafkajs's constructor sets no such field). */
  parts?: Buffer[];
  partsLength?: number;
  readonly buffer: Buffer;
  size(): number;
  ensureAvailable(length: number): void;
  writeBufferInternal(buffer: Buffer): void;
  writeEncoder(value: unknown): EncoderInstance;
  writeEncoderArray(value: unknown[]): EncoderInstance;
}

interface EncoderClass {
  prototype: EncoderInstance;
  nextPowerOfTwo(value: number): number;
}

const require = createRequire(import.meta.url);
const Encoder = require('kafkajs/src/protocol/encoder.js') as EncoderClass;

/** Where the prototype keeps kafkajs's own methods (a test runner may evaluate this module again in one process). */
const INSTALLED = Symbol.for('sluice.kafkajs.encoder-buffers');

/**
 * Parts at least this long, alone or as an array together, are referenced, not copied. A produce
 * request's batches are tens of KB to a MB; a string, a header or a few small records are copied
 * as before, so small requests stay one buffer.
 */
const LARGE_PART = 4096;

/** Grows `buf` to hold `length` more bytes: to the next power of two, as kafkajs does, unfilled. */
function ensureAvailable(this: EncoderInstance, length: number): void {
  if (this.offset + length <= this.buf.length) return;
  const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
  this.buf.copy(grown, 0, 0, this.offset);
  this.buf = grown;
}

/** Appends a part by reference: what `buf` holds so far becomes a part, and writing goes on in a fresh one. */
function appendPart(encoder: EncoderInstance, part: Buffer): void {
  if (part.length === 0) return;
  const parts = (encoder.parts ??= []);
  encoder.partsLength = (encoder.partsLength ?? 0) + encoder.offset + part.length;
  if (encoder.offset > 0) {
    parts.push(encoder.buf.subarray(0, encoder.offset));
    encoder.buf = Buffer.allocUnsafe(64);
    encoder.offset = 0;
  }
  parts.push(part);
}

/**
 * An encoder's bytes when it holds no parts (a view), else undefined. Besides kafkajs's Encoders,
 * record-encoding.ts's records come here: `{buf, buffer}` with no offset, all of `buf` written.
 */
function flatBytes(v: EncoderInstance): Buffer | undefined {
  if (v.parts !== undefined) return undefined;
  return typeof v.offset === 'number' ? v.buf.subarray(0, v.offset) : v.buffer;
}

/** Appends another encoder's bytes: its parts by reference when it has any, else as writeBufferInternal does. */
function appendEncoder(encoder: EncoderInstance, other: EncoderInstance): void {
  const flat = flatBytes(other);
  if (flat !== undefined) {
    encoder.writeBufferInternal(flat);
    return;
  }
  for (const part of other.parts!) appendPart(encoder, part);
  appendPart(encoder, other.buf.subarray(0, other.offset));
}

function writeBufferInternal(this: EncoderInstance, buffer: Buffer): void {
  if (buffer.length >= LARGE_PART) {
    appendPart(this, buffer);
    return;
  }
  this.ensureAvailable(buffer.length);
  buffer.copy(this.buf, this.offset);
  this.offset += buffer.length;
}

function isEncoder(v: unknown): v is EncoderInstance {
  return v != null && Buffer.isBuffer((v as EncoderInstance).buf);
}

function writeEncoder(this: EncoderInstance, value: unknown): EncoderInstance {
  if (!isEncoder(value)) throw new Error('value should be an instance of Encoder');
  appendEncoder(this, value);
  return this;
}

/**
 * Appends what each encoder wrote. Together at least LARGE_PART (a batch's records), each is
 * referenced; else the small ones are copied after growing once for all of them.
 */
function writeEncoderArray(this: EncoderInstance, value: unknown[]): EncoderInstance {
  if (!Array.isArray(value) || !value.every(isEncoder)) throw new Error('all values should be an instance of Encoder[]');
  const flats = value.map(flatBytes);
  let toCopy = 0;
  for (const flat of flats) if (flat !== undefined) toCopy += flat.length;
  if (toCopy >= LARGE_PART) {
    for (let i = 0; i < value.length; i++) {
      const flat = flats[i];
      if (flat === undefined) appendEncoder(this, value[i]!);
      else appendPart(this, flat);
    }
    return this;
  }
  this.ensureAvailable(toCopy);
  for (let i = 0; i < value.length; i++) {
    const flat = flats[i];
    if (flat !== undefined) {
      // copy() stops silently where the target ends: a short copy would send a corrupt batch.
      if (flat.copy(this.buf, this.offset) !== flat.length) throw new Error('kafka encoder: a part did not fit');
      this.offset += flat.length;
      toCopy -= flat.length;
    } else {
      appendEncoder(this, value[i]!);
      // A referenced part starts a fresh `buf`: room again for the small ones still to come.
      this.ensureAvailable(toCopy);
    }
  }
  return this;
}

/** What an encoder wrote, as the list of its parts (views), without joining them. */
function partList(e: EncoderInstance): Buffer[] {
  return e.parts === undefined ? [e.buf.subarray(0, e.offset)] : [...e.parts, e.buf.subarray(0, e.offset)];
}

/**
 * The bytes written: a view when there are no parts, else one copy of them all, which then replaces
 * the parts (kafkajs reads a request's bytes twice: for its debug log's size, then for the socket).
 */
function buffer(this: EncoderInstance): Buffer {
  if (this.parts !== undefined) {
    const whole = Buffer.concat(partList(this), (this.partsLength ?? 0) + this.offset);
    this.parts = undefined;
    this.partsLength = 0;
    this.buf = whole;
    this.offset = whole.length;
  }
  return this.buf.subarray(0, this.offset);
}

function size(this: EncoderInstance): number {
  return (this.partsLength ?? 0) + this.offset;
}

type Replaced = Pick<EncoderInstance, 'ensureAvailable' | 'writeBufferInternal' | 'writeEncoder' | 'writeEncoderArray' | 'size'> & {
  buffer: PropertyDescriptor;
};

const proto = Encoder.prototype as EncoderInstance & { [INSTALLED]?: Replaced };
proto[INSTALLED] ??= {
  ensureAvailable: proto.ensureAvailable,
  writeBufferInternal: proto.writeBufferInternal,
  writeEncoder: proto.writeEncoder,
  writeEncoderArray: proto.writeEncoderArray,
  size: proto.size,
  buffer: Object.getOwnPropertyDescriptor(proto, 'buffer')!,
};
proto.ensureAvailable = ensureAvailable;
proto.writeBufferInternal = writeBufferInternal;
proto.writeEncoder = writeEncoder;
proto.writeEncoderArray = writeEncoderArray;
proto.size = size;
Object.defineProperty(proto, 'buffer', { get: buffer, configurable: true, enumerable: false });

/**
 * What an encoder wrote, as the list of its parts, without joining them (record-batch.ts checksums
 * a batch this way). With kafkajs's own methods in place (the tests compare with them) it is one.
 */
export function bytesInParts(encoder: EncodedRecord): Buffer[] {
  return partList(encoder as EncoderInstance);
}

/** kafkajs's own methods (and its `buffer` getter), for the tests to compare with. */
export const kafkajsEncoderMethods = proto[INSTALLED];
