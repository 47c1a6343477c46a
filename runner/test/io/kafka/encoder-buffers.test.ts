import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { kafkajsEncoderMethods } from '../../../src/io/kafka/encoder-buffers.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

const require = createRequire(import.meta.url);
const Encoder = require('kafkajs/src/protocol/encoder.js') as { prototype: Record<string, unknown> };
const produceRequest = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (r: object) => { encode(): Promise<{ buffer: Buffer }> };
const request = require('kafkajs/src/protocol/request.js') as (r: object) => Promise<{ buffer: Buffer }>;

/** The bytes of a produce request frame, as the socket gets them. */
async function produceFrame(topicData: object[], compression: number): Promise<Buffer> {
  const produce = produceRequest({ acks: -1, timeout: 30_000, compression, topicData });
  return (await request({ correlationId: 7, clientId: 'test', request: produce })).buffer;
}

/** Runs `f` with kafkajs's own Encoder methods in place of sluice's. */
async function withKafkajsMethods<T>(f: () => Promise<T>): Promise<T> {
  const installed = { ensureAvailable: Encoder.prototype.ensureAvailable, writeEncoderArray: Encoder.prototype.writeEncoderArray };
  Object.assign(Encoder.prototype, kafkajsEncoderMethods);
  try {
    return await f();
  } finally {
    Object.assign(Encoder.prototype, installed);
  }
}

describe('kafkajs encoder growth', () => {
  it('is installed over kafkajs\'s own', () => {
    expect(Encoder.prototype.ensureAvailable).not.toBe(kafkajsEncoderMethods.ensureAvailable);
    expect(Encoder.prototype.writeEncoderArray).not.toBe(kafkajsEncoderMethods.writeEncoderArray);
  });

  it('gives produce requests the bytes kafkajs\'s own methods give, for small and large batches, compressed or not', async () => {
    const random = mulberry32(11);
    const text = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 90))).join('');
    for (const [messages, size, compression] of [[1, 10, 0], [40, 300, 0], [700, 2_500, 0], [300, 2_500, 1]] as const) {
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
      expect(ours.length).toBe(theirs.length);
      expect(Buffer.compare(ours, theirs)).toBe(0);
    }
  });
});
