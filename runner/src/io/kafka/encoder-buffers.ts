/**
 * How kafkajs 2.2.4's protocol Encoder grows its buffer, replaced (client.ts imports this first).
 * A produce request is copied from encoder to encoder about six times on its way out (records,
 * batch body, batch, partition, topic, request, frame), and each encoder grows by doubling into a
 * `Buffer.alloc`, which zero-fills memory that the copy overwrites at once. With records of a few
 * KB that was 9-10% of the main thread (the zero-filling allocations) while the native CDC source
 * wrote a backlog. Here a growing encoder takes unfilled memory (an encoder only ever exposes
 * `buf.slice(0, offset)`, what it wrote), and an array of encoders is sized once before its copy.
 */
import { createRequire } from 'node:module';

interface EncoderInstance {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
  ensureAvailable(length: number): void;
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

/** Grows `buf` to hold `length` more bytes: to the next power of two, as kafkajs does, unfilled. */
function ensureAvailable(this: EncoderInstance, length: number): void {
  if (this.offset + length <= this.buf.length) return;
  const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
  this.buf.copy(grown, 0, 0, this.offset);
  this.buf = grown;
}

/** Appends what each encoder wrote, after growing once for all of them. */
function writeEncoderArray(this: EncoderInstance, value: unknown[]): EncoderInstance {
  if (!Array.isArray(value) || value.some((v) => v == null || !Buffer.isBuffer((v as EncoderInstance).buf))) {
    throw new Error('all values should be an instance of Encoder[]');
  }
  const parts = value.map((v) => (v as EncoderInstance).buffer);
  let total = 0;
  for (const part of parts) total += part.length;
  this.ensureAvailable(total);
  for (const part of parts) {
    part.copy(this.buf, this.offset);
    this.offset += part.length;
  }
  return this;
}

const proto = Encoder.prototype as EncoderInstance & { [INSTALLED]?: Pick<EncoderInstance, 'ensureAvailable' | 'writeEncoderArray'> };
proto[INSTALLED] ??= { ensureAvailable: proto.ensureAvailable, writeEncoderArray: proto.writeEncoderArray };
proto.ensureAvailable = ensureAvailable;
proto.writeEncoderArray = writeEncoderArray;

/** kafkajs's own methods, for the tests to compare with. */
export const kafkajsEncoderMethods = proto[INSTALLED];
