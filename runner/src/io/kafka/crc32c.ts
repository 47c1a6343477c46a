/**
 * CRC-32C (Castagnoli), the checksum of every record batch kafkajs produces (format v2, KIP-98),
 * installed over kafkajs 2.2.4's own before kafkajs loads (client.ts imports this first). kafkajs
 * reads one byte per step; this reads eight (slicing-by-8, as in Intel's paper and most C
 * libraries), which is several times faster. The checksum covers the batch after compression, so
 * it weighs most on uncompressed topics: 15-19% of the main thread while the native CDC source
 * wrote a backlog of Debezium envelopes (about 2.5 KB each).
 *
 * Where the CPU has a CRC-32C instruction (SSE 4.2, ARMv8) and @node-rs/crc32's prebuilt binary
 * loads, that does it instead: about 9 times the rate of slicing-by-8 here (3.7 GB/s against 0.4).
 * The native CDC source then drained a backlog of 200,000 rows at 17.7k-18.6k rows/s, against
 * 14.5k-17.2k (interleaved runs). The binary must give the standard check value first; otherwise,
 * and with SLUICE_CRC32C=js, this file's own runs.
 */
import { createRequire } from 'node:module';
import { replaceKafkajsModule } from './kafkajs-module.ts';

/** The reflected Castagnoli polynomial. */
const POLYNOMIAL = 0x82f63b78;

/** Eight tables of 256: table k gives a byte's contribution with k more bytes after it. */
const TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    t[i] = c;
  }
  for (let k = 1; k < 8; k++) {
    for (let i = 0; i < 256; i++) {
      const previous = t[(k - 1) * 256 + i]!;
      t[k * 256 + i] = (previous >>> 8) ^ t[previous & 0xff]!;
    }
  }
  return t;
})();

/**
 * The CRC-32C of the bytes, as an unsigned 32-bit integer, in JavaScript (slicing-by-8). With
 * `previous`, the checksum of bytes that follow those `previous` was computed over.
 */
export function crc32cSliced(bytes: Uint8Array, previous = 0): number {
  const t = TABLES;
  let crc = previous ^ -1;
  let i = 0;
  for (const last = bytes.length - 8; i <= last; i += 8) {
    const a = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    const b = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    crc =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + (b & 0xff)]! ^
      t[512 + ((b >>> 8) & 0xff)]! ^
      t[256 + ((b >>> 16) & 0xff)]! ^
      t[b >>> 24]!;
  }
  for (; i < bytes.length; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** CRC-32C's check value: the checksum of the nine bytes "123456789". */
const CHECK_VALUE = 0xe3069283;

/** @node-rs/crc32's hardware CRC-32C, when its binary loads here and gives the check value. */
function loadNativeCrc32c(): ((bytes: Buffer, previous: number) => number) | undefined {
  if (process.env.SLUICE_CRC32C === 'js') return undefined;
  let native: unknown;
  try {
    native = (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: unknown }).crc32c;
  } catch {
    return undefined; // no prebuilt binary for this platform
  }
  if (typeof native !== 'function') return undefined;
  const checksum = native as (input: Buffer, initialState: number) => number;
  const ofBuffer = (bytes: Buffer, previous: number): number => checksum(bytes, previous) >>> 0;
  const continued = ofBuffer(Buffer.from('6789'), ofBuffer(Buffer.from('12345'), 0));
  return ofBuffer(Buffer.from('123456789'), 0) === CHECK_VALUE && continued === CHECK_VALUE ? ofBuffer : undefined;
}

/** The hardware one when it loaded, else undefined (the tests say which ran). */
export const nativeCrc32c = loadNativeCrc32c();

/**
 * The CRC-32C of the bytes, as an unsigned 32-bit integer: in hardware where it can be. With
 * `previous`, the checksum of bytes that follow those `previous` was computed over, so a checksum
 * runs over parts in turn without joining them.
 */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  if (nativeCrc32c === undefined) return crc32cSliced(bytes, previous);
  return nativeCrc32c(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), previous);
}

/** kafkajs's own, kept for the tests to compare with. */
export const kafkajsCrc32c = replaceKafkajsModule<(buffer: Buffer) => number>({
  module: 'kafkajs/src/protocol/recordBatch/crc32C/index.js',
  requiredBy: 'kafkajs/src/protocol/recordBatch/v0/index.js',
  replacement: (buffer: Buffer) => crc32c(buffer),
  mark: Symbol.for('sluice.kafkajs.crc32c'),
  what: 'its record batch checksum',
});
