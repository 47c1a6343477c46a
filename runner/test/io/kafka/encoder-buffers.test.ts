import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { kafkajsEncoderMethods } from '../../../src/io/kafka/encoder-buffers.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

const require = createRequire(import.meta.url);
const Encoder = require('kafkajs/src/protocol/encoder.js') as { prototype: Record<string, unknown> };
const produceRequest = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (r: object) => { encode(): Promise<{ buffer: Buffer }> };
const request = require('kafkajs/src/protocol/request.js') as (r: object) => Promise<{ buffer: Buffer; size(): number; parts?: Buffer[] }>;

/** A produce request frame as the socket gets it (`bytes`), and how many parts its encoder referenced. */
async function produceFrame(topicData: object[], compression: number): Promise<{ bytes: Buffer; size: number; parts: number }> {
  const produce = produceRequest({ acks: -1, timeout: 30_000, compression, topicData });
  const frame = await request({ correlationId: 7, clientId: 'test', request: produce });
  // Parts and size first: reading the bytes joins the parts into one buffer.
  const parts = frame.parts?.length ?? 0;
  const size = frame.size();
  const bytes = frame.buffer;
  // Read again, the bytes come from that one buffer, not from a second join.
  expect(frame.parts).toBeUndefined();
  expect(Buffer.compare(frame.buffer, bytes)).toBe(0);
  return { bytes, size, parts };
}

/** Runs `f` with kafkajs's own Encoder methods (and `buffer` getter) in place of sluice's. */
async function withKafkajsMethods<T>(f: () => Promise<T>): Promise<T> {
  const { buffer: theirBuffer, ...theirMethods } = kafkajsEncoderMethods;
  const ourBuffer = Object.getOwnPropertyDescriptor(Encoder.prototype, 'buffer')!;
  const ourMethods = Object.fromEntries(Object.keys(theirMethods).map((k) => [k, Encoder.prototype[k]]));
  Object.assign(Encoder.prototype, theirMethods);
  Object.defineProperty(Encoder.prototype, 'buffer', theirBuffer);
  try {
    return await f();
  } finally {
    Object.assign(Encoder.prototype, ourMethods);
    Object.defineProperty(Encoder.prototype, 'buffer', ourBuffer);
  }
}

/** Printable text of `n` characters, from a seeded generator. */
function randomText(seed: number): (n: number) => string {
  const random = mulberry32(seed);
  return (n) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 90))).join('');
}

describe('kafkajs encoder growth', () => {
  it('is installed over kafkajs\'s own', () => {
    expect(Encoder.prototype.ensureAvailable).not.toBe(kafkajsEncoderMethods.ensureAvailable);
    expect(Encoder.prototype.writeEncoderArray).not.toBe(kafkajsEncoderMethods.writeEncoderArray);
    expect(Encoder.prototype.writeEncoder).not.toBe(kafkajsEncoderMethods.writeEncoder);
    expect(Object.getOwnPropertyDescriptor(Encoder.prototype, 'buffer')!.get).not.toBe(kafkajsEncoderMethods.buffer.get);
  });

  it('gives produce requests the bytes kafkajs\'s own methods give, for small and large batches, compressed or not', async () => {
    const text = randomText(11);
    // Records of 6 KB and 40 KB are large parts themselves; a batch of 40 x 300 bytes is one.
    const cases = [[1, 10, 0, false], [3, 300, 0, false], [40, 300, 0, true], [700, 2_500, 0, true], [3, 6_000, 0, true], [2, 40_000, 0, true], [300, 2_500, 1, true], [2, 40_000, 1, true], [2, 3_000_000, 1, true]] as const;
    for (const [messages, size, compression, referenced] of cases) {
      const topicData = [
        {
          topic: 'a',
          partitions: [0, 1].map((partition) => ({
            partition,
            firstSequence: 3,
            messages: Array.from({ length: messages }, (_, i) => ({ key: `k${i}`, value: text(size), headers: i % 3 ? { h: text(20) } : {}, timestamp: 1_700_000_000_000 + i })),
          })),
        },
        { topic: 'b', partitions: [{ partition: 2, firstSequence: 0, messages: [{ key: null, value: text(5), timestamp: 1_700_000_000_000 }] }] },
      ];
      const ours = await produceFrame(topicData, compression);
      const theirs = await withKafkajsMethods(() => produceFrame(topicData, compression));
      expect(ours.bytes.length).toBe(theirs.bytes.length);
      expect(Buffer.compare(ours.bytes, theirs.bytes)).toBe(0);
      expect(ours.size).toBe(theirs.size);
      // Large batches reach the frame as referenced parts, not copies; small requests stay one buffer.
      expect([messages, size, ours.parts > 0]).toEqual([messages, size, referenced]);
      expect(theirs.parts).toBe(0);
    }
  });

  it('keeps the small records after a large one in the same batch whole, compressed or not', async () => {
    const text = randomText(5);
    // Small records, one large enough to be referenced, then more small ones than fit in what the
    // encoder had left: a copy after the reference must not be cut short.
    const messages = [10, 10, 9_000, ...Array.from({ length: 30 }, () => 200)].map((n, i) => ({ key: `k${i}`, value: text(n), timestamp: 1_700_000_000_000 }));
    for (const compression of [0, 1]) {
      const topicData = [{ topic: 'a', partitions: [{ partition: 0, firstSequence: 0, messages }] }];
      const ours = await produceFrame(topicData, compression);
      const theirs = await withKafkajsMethods(() => produceFrame(topicData, compression));
      expect(Buffer.compare(ours.bytes, theirs.bytes)).toBe(0);
      expect(ours.parts).toBeGreaterThan(0);
    }
  });
});
