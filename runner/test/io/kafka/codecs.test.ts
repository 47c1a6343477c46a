import { describe, expect, it } from 'vitest';
import { compress as rawSnappyCompress } from 'snappyjs';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import {
  CompressionError,
  decodeLz4Block,
  decodeXerialFrame,
  deflateChunkSize,
  encodeXerialFrame,
  gzipCodec,
  inflateChunkSize,
  isXerialFramed,
  lz4Codec,
  lz4Compress,
  lz4Decompress,
  snappyCodec,
  snappyCompress,
  snappyDecompress,
  SYNC_DEFLATE_BELOW,
  zstdCodec,
  zstdDecompress,
} from '../../../src/io/kafka/codecs.ts';

/** Text that compresses well, in lines like a topic's JSON values. */
function sampleText(lines: number): Buffer {
  return Buffer.from(Array.from({ length: lines }, (_, i) => `{"employee_id":${i % 37},"activity":"${['login', 'logout', 'file_access'][i % 3]}","seq":${i}}`).join('\n'));
}

/** Bytes that hardly compress (a fixed pseudo-random sequence). */
function noise(length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = 2463534242;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The input of the fixtures below, made by the reference CLIs (lz4 1.9.4, zstd) from it. */
function fixtureText(): Buffer {
  let pattern = '';
  for (let i = 0; i < 12; i++) pattern += `employee ${(i * 7919) % 101} did ${['login', 'logout', 'file_access'][i % 3]} at 08:${String(i * 5).padStart(2, '0')}\n`;
  let text = '';
  for (let i = 0; i < 250; i++) text += pattern.replace('did', i % 2 ? 'did' : 'DID');
  return Buffer.from(text);
}

/** `lz4 -B4 -BD -BX --content-size`: 64 KiB dependent blocks, block checksums, content size and content checksum. */
const LZ4_CLI_FIXTURE = Buffer.from(
  'BCJNGFxAsoMBAAAAAACPxgEAAPUPZW1wbG95ZWUgMCBESUQgbG9naW4gYXQgMDg6MDAKHgDUNDEgZGlkIGxvZ291dCAAFjUgACE4MiAAs2ZpbGVfYWNjZXNzJQAXMUUAEjIlAAhkABcxRAAhNjNEAAlkABcyPwACHwAOYwAXMkQAJDQ0RAAFxwAXM0MAJDg1HwAGxwAXMz8AEjIgAA5kABc0RQAkNjZFAAVkABc0RAAFHgAGYwAXNT4AITQ3PgAOYwAXNUQAETAkAAgpAQ+NAf9rDxoD/////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////8BQOjAwCmWZS6IslAAAAAT//w/h//9fD1T+/////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////6NQODo1NQp5U3AiAAAAAOd7+Y0=',
  'base64',
);

/** `zstd` (level 3). */
const ZSTD_CLI_FIXTURE = Buffer.from(
  'KLUv/aSygwEA1QQAsgUUGoC3bcBIFQoW9IbrX8yKQiEQohTar7NYUQkB/gHoHxEy/n6efBB/voNuzkZR8jiMQeoiXPqC2GTVkIWYwcIOJNtimGElq6YEymyZidVDIQMeAIqAHSWHQchVcIR3AYxBxQCxZcEISgOwYTAxwPgMFQMYA4/BhsHEAKMZfAg1ANgw8Bg2PAMPMC7YGKn0oCGA7FDvGzTlBPDfRbk=',
  'base64',
);

const XERIAL_HEADER = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
/** Raw snappy of "hello": length varint 5, a literal tag for 5 bytes, the bytes. */
const RAW_SNAPPY_HELLO = Buffer.from([0x05, 0x10, ...Buffer.from('hello')]);
/** Raw snappy of "abababab": varint 8, literal "ab", then a copy of 6 bytes from 2 back (tag type 1). */
const RAW_SNAPPY_ABABABAB = Buffer.from([0x08, 0x04, 0x61, 0x62, ((6 - 4) << 2) | 0x01, 0x02]);

/** Byte equality without vitest's element-by-element diff of large buffers (slow). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

function be32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

describe('xerial framing (snappy-java streams)', () => {
  it('encodes the header, then each block behind its big-endian length', () => {
    const frame = encodeXerialFrame([Buffer.from([1, 2, 3]), Buffer.from([9])]);
    expect(frame).toEqual(Buffer.concat([XERIAL_HEADER, be32(3), Buffer.from([1, 2, 3]), be32(1), Buffer.from([9])]));
    expect(encodeXerialFrame([])).toEqual(XERIAL_HEADER);
  });

  it('decodes a hand-built frame into its blocks, and snappy reads it', () => {
    const frame = Buffer.concat([XERIAL_HEADER, be32(RAW_SNAPPY_HELLO.length), RAW_SNAPPY_HELLO, be32(RAW_SNAPPY_ABABABAB.length), RAW_SNAPPY_ABABABAB]);
    expect(isXerialFramed(frame)).toBe(true);
    expect(decodeXerialFrame(frame).map((block) => Buffer.from(block))).toEqual([RAW_SNAPPY_HELLO, RAW_SNAPPY_ABABABAB]);
    expect(snappyDecompress(frame).toString()).toBe('helloabababab');
  });

  it('reads concatenated streams (a second header where a block length belongs), as snappy-java does', () => {
    const frame = Buffer.concat([XERIAL_HEADER, be32(RAW_SNAPPY_HELLO.length), RAW_SNAPPY_HELLO, XERIAL_HEADER, be32(RAW_SNAPPY_HELLO.length), RAW_SNAPPY_HELLO]);
    expect(snappyDecompress(frame).toString()).toBe('hellohello');
  });

  it('refuses truncated streams and newer formats, saying where', () => {
    const frame = Buffer.concat([XERIAL_HEADER, be32(RAW_SNAPPY_HELLO.length), RAW_SNAPPY_HELLO]);
    expect(() => decodeXerialFrame(frame.subarray(0, frame.length - 1))).toThrow(/snappy: truncated xerial stream: a block of 7 bytes at byte 20 runs past its end \(26 bytes\)/);
    expect(() => decodeXerialFrame(frame.subarray(0, 18))).toThrow(/truncated xerial stream: 2 bytes where a block length belongs/);
    const newer = Buffer.from(frame);
    newer.writeInt32BE(2, 12);
    expect(() => decodeXerialFrame(newer)).toThrow(/needs a reader of version 2/);
    expect(() => decodeXerialFrame(RAW_SNAPPY_HELLO)).toThrow(CompressionError);
  });
});

describe('gzip', () => {
  it('reads what zlib\'s asynchronous gzip (kafkajs\'s own codec) writes, and writes what it reads', async () => {
    for (const data of [Buffer.alloc(0), Buffer.from('x'), sampleText(3000), noise(70_000)]) {
      expectSameBytes(await gzipCodec.decompress(await promisify(gzip)(data)), data);
      const compressed = await gzipCodec.compress({ buffer: data });
      expect(compressed.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expectSameBytes(await promisify(gunzip)(compressed), data);
    }
    expect((await gzipCodec.compress({ buffer: sampleText(3000) })).length).toBeLessThan(sampleText(3000).length / 4);
  });

  it('refuses garbage', async () => {
    await expect(gzipCodec.decompress(Buffer.from('definitely not compressed'))).rejects.toThrow(/incorrect header check/);
  });

  it('round-trips on both sides of the synchronous deflate bound, and batches that inflate beyond their fitted buffer', async () => {
    for (const data of [sampleText(1_000).subarray(0, SYNC_DEFLATE_BELOW - 1), sampleText(1_000).subarray(0, SYNC_DEFLATE_BELOW), sampleText(60_000)]) {
      const compressed = await gzipCodec.compress({ buffer: data });
      expectSameBytes(await promisify(gunzip)(compressed), data);
      expectSameBytes(await gzipCodec.decompress(compressed), data);
    }
    // Zeros inflate about 1,000 times: far more than the 32 times the output buffer is fitted to.
    const zeros = Buffer.alloc(3_000_000);
    const compressed = await promisify(gzip)(zeros);
    expect(inflateChunkSize(compressed.length)).toBeLessThan(zeros.length);
    expectSameBytes(await gzipCodec.decompress(compressed), zeros);
  });

  it('fits zlib\'s output buffer to the batch: powers of two from 16 KiB (zlib\'s default) to 4 MiB', () => {
    expect(inflateChunkSize(0)).toBe(16 * 1024);
    expect(inflateChunkSize(512)).toBe(16 * 1024);
    expect(inflateChunkSize(513)).toBe(32 * 1024);
    expect(inflateChunkSize(52_033)).toBe(2 * 1024 * 1024);
    expect(inflateChunkSize(10_000_000)).toBe(4 * 1024 * 1024);
    expect(deflateChunkSize(SYNC_DEFLATE_BELOW)).toBe(16 * 1024);
    expect(deflateChunkSize(270_000)).toBe(256 * 1024);
    expect(deflateChunkSize(100_000_000)).toBe(4 * 1024 * 1024);
  });
});

describe('snappy', () => {
  it('round-trips, writing the xerial framing in 32 KiB blocks as the Java producer does', () => {
    for (const data of [Buffer.alloc(0), Buffer.from('x'), sampleText(3000), noise(70_000)]) {
      const compressed = snappyCompress(data);
      expect(isXerialFramed(compressed)).toBe(true);
      expect(decodeXerialFrame(compressed)).toHaveLength(Math.ceil(data.length / 32_768));
      expectSameBytes(snappyDecompress(compressed), data);
    }
    expect(snappyCompress(sampleText(3000)).length).toBeLessThan(sampleText(3000).length / 2);
  });

  it('reads raw snappy, as librdkafka writes it', () => {
    expect(snappyDecompress(RAW_SNAPPY_HELLO).toString()).toBe('hello');
    const data = sampleText(500);
    expectSameBytes(snappyDecompress(Buffer.from(rawSnappyCompress(data))), data);
  });

  it('refuses garbage with a CompressionError naming the codec', () => {
    const garbage = Buffer.from('definitely not compressed');
    expect(() => snappyDecompress(garbage)).toThrow(CompressionError);
    expect(() => snappyDecompress(garbage)).toThrow(/^snappy: not valid snappy data \(25 bytes\)/);
    // A length varint claiming far more than any snappy block of 3 bytes can hold.
    expect(() => snappyDecompress(Buffer.from([0xff, 0xff, 0x7f]))).toThrow(/snappy: not valid snappy data/);
  });

  it('is the codec kafkajs calls: compress(encoder) and decompress(buffer)', async () => {
    const data = sampleText(100);
    expectSameBytes(await snappyCodec.decompress(await snappyCodec.compress({ buffer: data })), data);
  });
});

describe('lz4', () => {
  it('round-trips, across blocks and for data that does not compress', () => {
    for (const data of [Buffer.alloc(0), Buffer.from('tiny'), sampleText(5000), noise(150_000), Buffer.alloc(200_000, 7)]) {
      expectSameBytes(lz4Decompress(lz4Compress(data)), data);
    }
    expect(lz4Compress(sampleText(5000)).length).toBeLessThan(sampleText(5000).length / 2);
  });

  it('writes one frame of independent blocks under a 256 KiB maximum, with the reference header checksum', () => {
    const frame = lz4Compress(Buffer.from('some text'));
    expect(frame.readUInt32LE(0)).toBe(0x184d2204);
    expect(frame[4]).toBe(0x60); // version 1, independent blocks, no checksums, no content size
    expect(frame[5]).toBe(0x50); // 256 KiB
    expect(frame[6]).toBe(0xfb); // (xxh32 of [0x60, 0x50]) >> 8, as lz4 1.9.4 writes it
    expect(frame.readUInt32LE(frame.length - 4)).toBe(0); // end mark
  });

  it('reads what the reference lz4 CLI writes: dependent blocks, block and content checksums, content size', () => {
    expect(LZ4_CLI_FIXTURE[4]).toBe(0x5c);
    expectSameBytes(lz4Decompress(LZ4_CLI_FIXTURE), fixtureText());
  });

  it('refuses garbage, truncation, a bad checksum and trailing bytes, saying what is wrong', () => {
    expect(() => lz4Decompress(Buffer.from('definitely not compressed'))).toThrow(/^lz4: not an LZ4 frame: it starts with 0x69666564/);
    expect(() => lz4Decompress(Buffer.from([4, 0x22]))).toThrow(/lz4: an LZ4 frame takes at least 7 bytes, this has 2/);
    expect(() => lz4Decompress(LZ4_CLI_FIXTURE.subarray(0, 400))).toThrow(/lz4: truncated frame: a block of \d+ bytes at byte \d+ runs past its end \(400 bytes\)/);
    const flipped = Buffer.from(LZ4_CLI_FIXTURE);
    flipped[40] = flipped[40]! ^ 0x01;
    expect(() => lz4Decompress(flipped)).toThrow(/lz4: block checksum mismatch/);
    expect(() => lz4Decompress(Buffer.concat([lz4Compress(Buffer.from('x')), Buffer.from([0])]))).toThrow(/lz4: 1 bytes follow the frame's end/);
    expect(() => lz4Decompress(LZ4_CLI_FIXTURE.subarray(0, 10))).toThrow(CompressionError);
  });

  it('is the codec kafkajs calls: compress(encoder) and decompress(buffer)', async () => {
    const data = sampleText(100);
    expectSameBytes(await lz4Codec.decompress(await lz4Codec.compress({ buffer: data })), data);
  });
});

describe('decodeLz4Block', () => {
  function decode(block: number[], capacity = 64): string {
    const out = new Uint8Array(capacity);
    const end = decodeLz4Block(Uint8Array.from(block), 0, block.length, out, 0, 0, capacity);
    return Buffer.from(out.subarray(0, end)).toString();
  }
  const abcd = [...Buffer.from('abcd')];
  const efghi = [...Buffer.from('efghi')];

  it('decodes literals, copies and overlapping copies', () => {
    // token: 4 literals, match of 4 + 4; offset 4; then the last literals
    expect(decode([0x44, ...abcd, 4, 0, 0x50, ...efghi])).toBe('abcdabcdabcdefghi');
    // offset 1 repeats one byte: 'a' then 6 more
    expect(decode([0x12, 0x61, 1, 0, 0x50, ...efghi])).toBe('aaaaaaaefghi');
    // a literal length with an extra byte: 15 + 3
    expect(decode([0xf0, 3, ...Buffer.from('abcdefghijklmnopqr')])).toBe('abcdefghijklmnopqr');
  });

  it('refuses offsets before the data, overruns and missing last literals', () => {
    expect(() => decode([0x44, ...abcd, 5, 0, 0x50, ...efghi])).toThrow(/lz4: corrupt block at byte 0: match offset 5 points before the data/);
    expect(() => decode([0x44, ...abcd, 0, 0, 0x50, ...efghi])).toThrow(/match offset 0/);
    expect(() => decode([0x50, 0x61])).toThrow(/5 literals run past the block/);
    expect(() => decode([0x44, ...abcd, 4, 0])).toThrow(/ends without its last literals/);
    expect(() => decode([0x4f, ...abcd, 4, 0, 0xff, 0xff, 0, 0x50, ...efghi])).toThrow(/decodes to more than the block size/);
  });
});

describe('zstd', () => {
  it('reads what the reference zstd CLI writes', () => {
    expectSameBytes(zstdDecompress(ZSTD_CLI_FIXTURE), fixtureText());
  });

  it('reads a hand-built frame of one raw block', () => {
    const text = Buffer.from('raw zstd block');
    // magic; frame header: single segment, 1-byte content size; block header: last, raw, size (LE, 3 bytes)
    const blockHeader = (text.length << 3) | 1;
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, text.length, blockHeader & 0xff, (blockHeader >> 8) & 0xff, blockHeader >> 16, ...text]);
    expect(zstdDecompress(frame)).toEqual(text);
  });

  it('refuses garbage and truncation with a CompressionError', () => {
    expect(() => zstdDecompress(Buffer.from('definitely not compressed'))).toThrow(/^zstd: not valid zstd data \(25 bytes\)/);
    expect(() => zstdDecompress(ZSTD_CLI_FIXTURE.subarray(0, 60))).toThrow(CompressionError);
  });

  it('reads but does not write', async () => {
    expectSameBytes(await zstdCodec.decompress(ZSTD_CLI_FIXTURE), fixtureText());
    await expect(zstdCodec.compress({ buffer: Buffer.from('x') })).rejects.toThrow(/zstd: sluice reads zstd but cannot write it/);
  });
});
