/**
 * Kafka compression codecs for kafkajs: the three it does not ship (snappy, lz4 and zstd), and gzip
 * compressed more cheaply than by its own. Debezium and Kafka Connect deployments often set
 * `compression.type` to one of them, and a kafkajs consumer cannot read a single batch of such a
 * topic without a codec. client.ts registers these with kafkajs; this module does not import
 * kafkajs, so its functions are tested on their own.
 *
 * - gzip: zlib's asynchronous call works in the thread pool, but hands back every `chunkSize` of
 *   output (16 KiB by default, as kafkajs's own codec uses it) to the main thread, which then
 *   copies the pieces together: inflating one 52 KiB batch of 500 Debezium events (1.8 MB) that
 *   way took 3.4 ms of the main thread, against 0.47 ms with an output buffer fitted to the batch
 *   (`inflateChunkSize`). Deflating small requests synchronously is cheaper still (gzipSync of
 *   2.7 KB: 42 µs; asynchronously, 110-130 µs whatever the chunk size), while a large one costs the
 *   main thread a quarter as much done asynchronously (270 KB: 0.78 ms in gzipSync, 0.2 ms); so
 *   requests from SYNC_DEFLATE_BELOW up are deflated in the thread pool. Inflating stays
 *   asynchronous, small batches asked for together in one call (gzip-groups.ts). Done
 *   synchronously (with 16 KiB pieces) it cost a third of the CPU per 1 MiB fetch, and at a
 *   steady 5,000 events/s sluice's CPU fell by a quarter; but a drain of
 *   1,000,000 events then held 2.7 GiB, growing with the backlog (0.87 GiB asynchronous, flat),
 *   and so it did when only batches up to 64 KiB were inflated synchronously. Why the fetch
 *   buffers outlived their batches was not found. Not full intake queues: with the runtime's
 *   intake also bounded by records (10,000 per task), synchronous inflating held 1,336 MiB in a
 *   drain of 300,000 events, as without the bound.
 * - snappy: reads Java's xerial framing (snappy-java's SnappyOutputStream, what the Java client
 *   writes) and raw snappy (what librdkafka writes); writes the xerial framing, as Java does.
 * - lz4: the LZ4 frame format (Kafka's framing since message format 1, KIP-57).
 * - zstd: read only: fzstd, the pure-JS zstd codec used here, only decompresses.
 */
import { compress as snappyCompressBlock, uncompress as snappyUncompressBlock } from 'snappyjs';
import { compressBlock as lz4CompressBlock, compressBound as lz4CompressBound } from 'lz4js';
import { hash as xxh32 } from 'lz4js/xxh32.js';
import { decompress as fzstdDecompress } from 'fzstd';
import { gunzip, gzip, gzipSync, unzip, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';
import { SluiceError, errorMessage } from '../../engine/errors.ts';
import { groupedGzipInflate } from './gzip-groups.ts';

/** A Kafka batch that cannot be decompressed, or compression sluice cannot write. */
export class CompressionError extends SluiceError {
  constructor(
    readonly codec: 'snappy' | 'lz4' | 'zstd',
    message: string,
    options?: { cause?: unknown },
  ) {
    super('E_KAFKA_COMPRESSION', `${codec}: ${message}`, undefined, options);
  }
}

/** The shape kafkajs expects in `CompressionCodecs` (see kafkajs's compression/gzip.js). */
export interface KafkaCompressionCodec {
  /** `encoder.buffer`: the encoded records of one batch. */
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

// Inflated as kafkajs's own codec does (zlib's unzip, which also takes a zlib header).
const unzipAsync = promisify<Buffer, ZlibOptions, Buffer>(unzip);
const gunzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gunzip);
const gzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gzip);

/** Produce requests from this size up are deflated in the thread pool; smaller ones at once (see above). */
export const SYNC_DEFLATE_BELOW = 32 * 1024;
const MIN_CHUNK = 16 * 1024;
const MAX_CHUNK = 4 * 1024 * 1024;

/** The next power of two from `n`, kept within zlib-friendly bounds (16 KiB, zlib's default, to 4 MiB). */
function fittedChunk(n: number): number {
  if (n <= MIN_CHUNK) return MIN_CHUNK;
  return Math.min(MAX_CHUNK, 2 ** Math.ceil(Math.log2(n)));
}

/**
 * The output buffer for inflating `compressedBytes` of a Kafka batch: room for 32 times as much,
 * so that most batches come back in one piece. JSON change events inflate 13-34 times (the ratio
 * grows with the batch, as schemas repeat); a batch that inflates further takes a few pieces, and
 * an overestimate costs only untouched address space, which the pieces' views keep until their
 * messages are decoded.
 */
export function inflateChunkSize(compressedBytes: number): number {
  return fittedChunk(compressedBytes * 32);
}

/** The output buffer for deflating `bytes`: half of them, room enough for text that compresses at all. */
export function deflateChunkSize(bytes: number): number {
  return fittedChunk(bytes / 2);
}

export const gzipCodec: KafkaCompressionCodec = {
  compress: async (encoder) => {
    const bytes = encoder.buffer;
    return bytes.length < SYNC_DEFLATE_BELOW ? gzipSync(bytes) : gzipAsync(bytes, { chunkSize: deflateChunkSize(bytes.length) });
  },
  // Small batches asked for together are inflated in one call (gzip-groups.ts).
  decompress: groupedGzipInflate({
    alone: (member) => unzipAsync(member, { chunkSize: inflateChunkSize(member.length) }),
    members: (joined, outputBytes) => gunzipAsync(joined, { chunkSize: fittedChunk(outputBytes) }),
  }),
};

export const snappyCodec: KafkaCompressionCodec = {
  compress: async (encoder) => snappyCompress(encoder.buffer),
  decompress: async (buffer) => snappyDecompress(buffer),
};

export const lz4Codec: KafkaCompressionCodec = {
  compress: async (encoder) => lz4Compress(encoder.buffer),
  decompress: async (buffer) => lz4Decompress(buffer),
};

export const zstdCodec: KafkaCompressionCodec = {
  compress: async () => {
    throw new CompressionError('zstd', 'sluice reads zstd but cannot write it (its pure-JS zstd codec only decompresses); use lz4, snappy or gzip');
  },
  decompress: async (buffer) => zstdDecompress(buffer),
};

/** A Buffer over the same memory (kafkajs's decoders want Buffers). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/* ------------------------------------------------------------------ snappy */

/** snappy-java's stream header: 0x82 'SNAPPY' 0x00, then a version and a compatible version (big-endian int32 each). */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_LENGTH = 16;
const XERIAL_VERSION = 1;
const XERIAL_COMPATIBLE_VERSION = 1;
/** SnappyOutputStream's default block size, which Kafka's Java producer uses. */
const XERIAL_BLOCK_SIZE = 32 * 1024;
/**
 * Snappy cannot expand more than 64 bytes out of a 3-byte copy element; a raw block declaring more
 * than 22 times its own size is garbage, and is refused before its length is allocated.
 */
const SNAPPY_MAX_EXPANSION = 22;

function startsWithXerialMagic(bytes: Uint8Array, at: number): boolean {
  if (bytes.length - at < XERIAL_HEADER_LENGTH) return false;
  for (let i = 0; i < XERIAL_MAGIC.length; i++) if (bytes[at + i] !== XERIAL_MAGIC[i]) return false;
  return true;
}

/** Whether `bytes` starts with snappy-java's stream header (otherwise it is raw snappy). */
export function isXerialFramed(bytes: Uint8Array): boolean {
  return startsWithXerialMagic(bytes, 0);
}

/** snappy-java's stream format around raw snappy blocks: the header, then each block as [int32 length][block]. */
export function encodeXerialFrame(blocks: readonly Uint8Array[]): Buffer {
  const frame = Buffer.allocUnsafe(XERIAL_HEADER_LENGTH + blocks.reduce((sum, block) => sum + 4 + block.length, 0));
  XERIAL_MAGIC.copy(frame, 0);
  frame.writeInt32BE(XERIAL_VERSION, 8);
  frame.writeInt32BE(XERIAL_COMPATIBLE_VERSION, 12);
  let pos = XERIAL_HEADER_LENGTH;
  for (const block of blocks) {
    frame.writeUInt32BE(block.length, pos);
    frame.set(block, pos + 4);
    pos += 4 + block.length;
  }
  return frame;
}

/**
 * The raw snappy blocks of a snappy-java stream. A header where a block length would be starts a
 * concatenated stream (snappy-java reads those too).
 */
export function decodeXerialFrame(frame: Uint8Array): Uint8Array[] {
  if (!isXerialFramed(frame)) throw new CompressionError('snappy', 'no xerial (snappy-java) stream header');
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const blocks: Uint8Array[] = [];
  let pos = 0;
  while (pos < frame.length) {
    if (startsWithXerialMagic(frame, pos)) {
      const compatibleVersion = view.getInt32(pos + 12);
      if (compatibleVersion > XERIAL_VERSION) {
        throw new CompressionError('snappy', `xerial stream needs a reader of version ${compatibleVersion}; this one reads version ${XERIAL_VERSION}`);
      }
      pos += XERIAL_HEADER_LENGTH;
      continue;
    }
    if (pos + 4 > frame.length) throw new CompressionError('snappy', `truncated xerial stream: ${frame.length - pos} bytes where a block length belongs, at byte ${pos}`);
    const length = view.getUint32(pos);
    pos += 4;
    if (length > frame.length - pos) {
      throw new CompressionError('snappy', `truncated xerial stream: a block of ${length} bytes at byte ${pos} runs past its end (${frame.length} bytes)`);
    }
    blocks.push(frame.subarray(pos, pos + length));
    pos += length;
  }
  return blocks;
}

/** Snappy in the xerial framing, in 32 KiB blocks: what Kafka's Java producer writes. */
export function snappyCompress(data: Uint8Array): Buffer {
  const blocks: Uint8Array[] = [];
  for (let start = 0; start < data.length; start += XERIAL_BLOCK_SIZE) {
    blocks.push(snappyCompressBlock(data.subarray(start, start + XERIAL_BLOCK_SIZE)));
  }
  return encodeXerialFrame(blocks);
}

/** Snappy in the xerial framing or raw. */
export function snappyDecompress(data: Uint8Array): Buffer {
  if (!isXerialFramed(data)) return asBuffer(uncompressSnappyBlock(data));
  return Buffer.concat(decodeXerialFrame(data).map(uncompressSnappyBlock));
}

function uncompressSnappyBlock(block: Uint8Array): Uint8Array {
  try {
    return snappyUncompressBlock(block, block.length * SNAPPY_MAX_EXPANSION);
  } catch (err) {
    throw new CompressionError('snappy', `not valid snappy data (${block.length} bytes): ${errorMessage(err)}`, { cause: err });
  }
}

/* ------------------------------------------------------------------ lz4 */

const LZ4_MAGIC = 0x184d2204;
const LZ4_FRAME_HEADER_LENGTH = 7; // magic, FLG, BD, header checksum (no content size)
const FLG_VERSION_MASK = 0xc0;
const FLG_VERSION_1 = 0x40;
const FLG_BLOCK_INDEPENDENCE = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_RESERVED = 0x02;
const FLG_DICTIONARY_ID = 0x01;
const BLOCK_UNCOMPRESSED = 0x80000000;
/** Each 0xFF length byte adds 255 bytes of output: no block expands more. */
const LZ4_MAX_EXPANSION = 255;

/** BD's block maximum size index: 4 → 64 KiB, 5 → 256 KiB, 6 → 1 MiB, 7 → 4 MiB. */
function lz4MaxBlockSize(sizeIndex: number): number {
  return 1 << (8 + 2 * sizeIndex);
}

/**
 * Written blocks hold 64 KiB (as Kafka's Java producer's) under a declared maximum of 256 KiB, so a
 * block never fills a reader's block buffer: the reference decoder (lz4-java, librdkafka) refuses
 * a match that starts in the last 12 bytes of a full buffer, and lz4js may end a block with one.
 */
const LZ4_WRITE_BLOCK_SIZE = 64 * 1024;
const LZ4_WRITE_SIZE_INDEX = 5;
/** lz4js's match finder state, zeroed per block so that blocks are independent (Kafka's Java reader requires it). */
const lz4HashTable = new Uint32Array(1 << 16);
const lz4BlockScratch = new Uint8Array(lz4CompressBound(LZ4_WRITE_BLOCK_SIZE));

/** One LZ4 frame: independent blocks, no checksums besides the header's (as Kafka's Java producer writes). */
export function lz4Compress(data: Uint8Array): Buffer {
  const blockCount = Math.ceil(data.length / LZ4_WRITE_BLOCK_SIZE);
  const frame = Buffer.allocUnsafe(LZ4_FRAME_HEADER_LENGTH + blockCount * (4 + LZ4_WRITE_BLOCK_SIZE) + 4);
  frame.writeUInt32LE(LZ4_MAGIC, 0);
  frame[4] = FLG_VERSION_1 | FLG_BLOCK_INDEPENDENCE;
  frame[5] = LZ4_WRITE_SIZE_INDEX << 4;
  frame[6] = (xxh32(0, frame, 4, 2) >>> 8) & 0xff;
  let pos = LZ4_FRAME_HEADER_LENGTH;
  for (let start = 0; start < data.length; start += LZ4_WRITE_BLOCK_SIZE) {
    const block = data.subarray(start, start + LZ4_WRITE_BLOCK_SIZE);
    lz4HashTable.fill(0);
    const compressedLength = lz4CompressBlock(block, lz4BlockScratch, 0, block.length, lz4HashTable);
    // 0: nothing to compress. Data that does not shrink is stored as it is.
    if (compressedLength === 0 || compressedLength >= block.length) {
      frame.writeUInt32LE((BLOCK_UNCOMPRESSED | block.length) >>> 0, pos);
      frame.set(block, pos + 4);
      pos += 4 + block.length;
    } else {
      frame.writeUInt32LE(compressedLength, pos);
      frame.set(lz4BlockScratch.subarray(0, compressedLength), pos + 4);
      pos += 4 + compressedLength;
    }
  }
  frame.writeUInt32LE(0, pos); // end mark
  return frame.subarray(0, pos + 4);
}

interface Lz4Block {
  start: number;
  length: number;
  compressed: boolean;
}

/** One LZ4 frame, checked throughout: every length against the input, checksums where the frame has them. */
export function lz4Decompress(frame: Uint8Array): Buffer {
  const fail = (why: string) => new CompressionError('lz4', why);
  if (frame.length < LZ4_FRAME_HEADER_LENGTH) throw fail(`an LZ4 frame takes at least ${LZ4_FRAME_HEADER_LENGTH} bytes, this has ${frame.length}`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== LZ4_MAGIC) throw fail(`not an LZ4 frame: it starts with 0x${magic.toString(16).padStart(8, '0')}, not the frame magic 0x${LZ4_MAGIC.toString(16)}`);
  const flags = frame[4]!;
  const descriptor = frame[5]!;
  if ((flags & FLG_VERSION_MASK) !== FLG_VERSION_1) throw fail(`frame version ${flags >> 6}, only version 1 exists`);
  if (flags & FLG_RESERVED) throw fail('a reserved frame flag is set');
  if (flags & FLG_DICTIONARY_ID) throw fail('frames compressed with a dictionary are not supported');
  const sizeIndex = (descriptor >> 4) & 0x07;
  if ((descriptor & 0x8f) !== 0 || sizeIndex < 4) throw fail(`invalid block descriptor byte 0x${descriptor.toString(16)}`);
  const maxBlockSize = lz4MaxBlockSize(sizeIndex);
  const blockChecksumLength = flags & FLG_BLOCK_CHECKSUM ? 4 : 0;

  let pos = 6;
  let contentSize: bigint | undefined;
  if (flags & FLG_CONTENT_SIZE) {
    if (frame.length < pos + 9) throw fail('truncated frame header');
    contentSize = view.getBigUint64(pos, true);
    pos += 8;
  }
  // The header checksum is not checked: Kafka's message format 0 (before 0.10) computed it wrongly (KIP-57).
  pos += 1;

  const blocks: Lz4Block[] = [];
  let outputBound = 0;
  for (;;) {
    if (pos + 4 > frame.length) throw fail(`truncated frame: it ends at byte ${frame.length} before its end mark`);
    const word = view.getUint32(pos, true);
    pos += 4;
    if (word === 0) break;
    const length = (word & ~BLOCK_UNCOMPRESSED) >>> 0;
    const compressed = (word & BLOCK_UNCOMPRESSED) === 0;
    if (length > maxBlockSize) throw fail(`a block of ${length} bytes at byte ${pos} exceeds the frame's block size of ${maxBlockSize}`);
    if (pos + length + blockChecksumLength > frame.length) {
      throw fail(`truncated frame: a block of ${length} bytes at byte ${pos} runs past its end (${frame.length} bytes)`);
    }
    if (blockChecksumLength > 0 && xxh32(0, frame, pos, length) !== view.getUint32(pos + length, true)) {
      throw fail(`block checksum mismatch in the block at byte ${pos}`);
    }
    blocks.push({ start: pos, length, compressed });
    outputBound += compressed ? Math.min(maxBlockSize, length * LZ4_MAX_EXPANSION + 32) : length;
    pos += length + blockChecksumLength;
  }
  let contentChecksum: number | undefined;
  if (flags & FLG_CONTENT_CHECKSUM) {
    if (pos + 4 > frame.length) throw fail('truncated frame: the content checksum is missing');
    contentChecksum = view.getUint32(pos, true);
    pos += 4;
  }
  if (pos !== frame.length) throw fail(`${frame.length - pos} bytes follow the frame's end`);

  const output = new Uint8Array(outputBound);
  let written = 0;
  for (const block of blocks) {
    if (!block.compressed) {
      output.set(frame.subarray(block.start, block.start + block.length), written);
      written += block.length;
      continue;
    }
    // A dependent block may copy from the blocks before it; an independent one only from itself.
    const windowStart = flags & FLG_BLOCK_INDEPENDENCE ? written : 0;
    written = decodeLz4Block(frame, block.start, block.start + block.length, output, written, windowStart, Math.min(output.length, written + maxBlockSize));
  }
  if (contentSize !== undefined && contentSize !== BigInt(written)) throw fail(`the frame declares ${contentSize} bytes of content but holds ${written}`);
  if (contentChecksum !== undefined && xxh32(0, output, 0, written) !== contentChecksum) throw fail('content checksum mismatch');
  return Buffer.from(output.buffer, 0, written);
}

/**
 * Decodes the raw LZ4 block `src[start, end)` into `dst` from `out`, refusing anything out of
 * bounds (lz4js's own decoder does not check). Matches may reach back to `windowStart`; output may
 * not pass `outLimit`. Returns the new output position.
 */
export function decodeLz4Block(src: Uint8Array, start: number, end: number, dst: Uint8Array, out: number, windowStart: number, outLimit: number): number {
  const corrupt = (why: string) => new CompressionError('lz4', `corrupt block at byte ${start}: ${why}`);
  let s = start;
  let o = out;
  const readLength = (initial: number): number => {
    let length = initial;
    if (initial !== 15) return length;
    for (;;) {
      if (s >= end) throw corrupt('a length runs past the block');
      const byte = src[s++]!;
      length += byte;
      if (byte !== 255) return length;
    }
  };
  for (;;) {
    if (s >= end) throw corrupt('it ends without its last literals');
    const token = src[s++]!;
    const literals = readLength(token >>> 4);
    if (literals > end - s) throw corrupt(`${literals} literals run past the block`);
    if (literals > outLimit - o) throw corrupt('it decodes to more than the block size');
    dst.set(src.subarray(s, s + literals), o);
    s += literals;
    o += literals;
    if (s === end) return o; // the last sequence has literals only
    if (end - s < 2) throw corrupt('a match offset runs past the block');
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > o - windowStart) throw corrupt(`match offset ${offset} points before the data`);
    const matchLength = readLength(token & 0x0f) + 4;
    if (matchLength > outLimit - o) throw corrupt('it decodes to more than the block size');
    if (offset >= matchLength) {
      dst.copyWithin(o, o - offset, o - offset + matchLength);
      o += matchLength;
    } else {
      // Byte by byte: the match overlaps the bytes it produces (a short pattern repeated).
      for (let from = o - offset, stop = o + matchLength; o < stop; ) dst[o++] = dst[from++]!;
    }
  }
}

/* ------------------------------------------------------------------ zstd */

export function zstdDecompress(data: Uint8Array): Buffer {
  try {
    return asBuffer(fzstdDecompress(data));
  } catch (err) {
    throw new CompressionError('zstd', `not valid zstd data (${data.length} bytes): ${errorMessage(err)}`, { cause: err });
  }
}
