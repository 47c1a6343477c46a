import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import {
  adaptFetchSize,
  adapts,
  CompressionRatio,
  DECOMPRESSED_BUDGET,
  fetchAsk,
  INITIAL_RATIO,
  kafkajsFetchRequest,
  MIN_ASK,
  observeFetched,
  partitionMaxBytes,
} from '../../../src/io/kafka/fetch-sizes.ts';

const require = createRequire(import.meta.url);
type Request = (args: object) => { encode(): Promise<{ buffer: Buffer }> };
const installed = require('kafkajs/src/protocol/requests/fetch/v11/request.js') as Request;
const MiB = 1024 * 1024;

describe('fetchAsk', () => {
  it('asks for the budget decompressed, within the least and the configured most', () => {
    expect(fetchAsk(1, MiB)).toBe(MiB); // uncompressed: as Kafka's max.partition.fetch.bytes
    expect(fetchAsk(0.5, MiB)).toBe(MiB); // records never count as smaller than their batches
    expect(fetchAsk(4, 4 * MiB)).toBe(2 * MiB);
    expect(fetchAsk(32, MiB)).toBe(256 * 1024); // gzip-compressed Debezium events with schemas
    expect(fetchAsk(10_000, MiB)).toBe(MIN_ASK);
    expect(fetchAsk(10_000, 4096)).toBe(4096); // a maximum below the least is the maximum
    expect(fetchAsk(30, MiB, 3 * MiB)).toBe(Math.floor((3 * MiB) / 30));
  });
});

describe('CompressionRatio', () => {
  it('is the decompressed bytes per compressed byte, recent fetches weighing most', () => {
    const r = new CompressionRatio();
    expect(r.ratio).toBeUndefined();
    r.observe(0, 500); // nothing fetched: no news
    expect(r.ratio).toBeUndefined();
    r.observe(100, 3000);
    expect(r.ratio).toBe(30);
    r.observe(100, 100);
    // The first now counts 0.8: (3000 * 0.8 + 100) / (100 * 0.8 + 100).
    expect(r.ratio).toBeCloseTo(2500 / 180, 10);
    for (let i = 0; i < 60; i++) r.observe(100, 100);
    expect(r.ratio).toBeCloseTo(1, 3);
  });
});

describe('adaptive topics', () => {
  it('adapt while any consumer leaves them to sluice, from the assumed ratio to the observed one', () => {
    const topic = 'fetch-sizes-adapt';
    expect(adapts(topic)).toBe(false);
    observeFetched(topic, 100, 5000); // not adaptive: not kept
    expect(partitionMaxBytes(topic, 123_456)).toBe(123_456);

    const endOne = adaptFetchSize(topic, MiB);
    const endTwo = adaptFetchSize(topic, MiB);
    expect(partitionMaxBytes(topic, 123_456)).toBe(fetchAsk(INITIAL_RATIO, MiB));
    observeFetched(topic, 1000, 2000);
    expect(partitionMaxBytes(topic, 123_456)).toBe(Math.min(MiB, DECOMPRESSED_BUDGET / 2));
    endOne();
    endOne(); // ending twice ends one use
    expect(adapts(topic)).toBe(true);
    endTwo();
    expect(adapts(topic)).toBe(false);
    expect(partitionMaxBytes(topic, 123_456)).toBe(123_456);
  });
});

describe('fetch requests', () => {
  it('are sluice\'s, not kafkajs\'s own', () => {
    expect(installed).not.toBe(kafkajsFetchRequest);
  });

  const args = (maxBytes: (topic: string) => number) => ({
    replicaId: -1,
    maxWaitTime: 500,
    minBytes: 1,
    maxBytes: 10 * MiB,
    isolationLevel: 1,
    sessionId: 0,
    sessionEpoch: -1,
    topics: ['fetch-sizes-request-a', 'fetch-sizes-request-b'].map((topic) => ({
      topic,
      partitions: [0, 1].map((partition) => ({ partition, fetchOffset: '17', maxBytes: maxBytes(topic) })),
    })),
  });

  it('ask for the adapted size in an adaptive topic\'s partitions and leave the others as kafkajs writes them', async () => {
    const end = adaptFetchSize('fetch-sizes-request-a', MiB);
    try {
      observeFetched('fetch-sizes-request-a', 1000, 64_000);
      const ask = fetchAsk(64, MiB);
      expect(ask).toBeLessThan(MiB);
      const ours = (await installed(args(() => MiB)).encode()).buffer;
      // kafkajs's own request, told the sizes outright.
      const expected = (await (kafkajsFetchRequest(args((t) => (t === 'fetch-sizes-request-a' ? ask : MiB))) as ReturnType<Request>).encode()).buffer;
      expect(ours.equals(expected)).toBe(true);
      const unchanged = (await (kafkajsFetchRequest(args(() => MiB)) as ReturnType<Request>).encode()).buffer;
      expect(ours.equals(unchanged)).toBe(false);
    } finally {
      end();
    }
    // With no adaptive topic, the request is kafkajs's, byte for byte.
    const plain = (await installed(args(() => MiB)).encode()).buffer;
    expect(plain.equals((await (kafkajsFetchRequest(args(() => MiB)) as ReturnType<Request>).encode()).buffer)).toBe(true);
  });
});
