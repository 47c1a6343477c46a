import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { adaptFetchSize, fetchAsk, partitionMaxBytes } from '../../../src/io/kafka/fetch-sizes.ts';
import { AHEAD, AHEAD_BYTES, decodeMessages, kafkajsDecodeMessages, kafkajsFetchResponse } from '../../../src/io/kafka/fetched-batches.ts';
import { kafkajsRecord } from '../../../src/io/kafka/record-encoding.ts';
import { randomRecords } from './random-records.ts';

const require = createRequire(import.meta.url);
type Decoder = { offset: number; readInt32(): number; readBytes(length: number): Buffer; canReadBytes(length: number): boolean };
const DecoderClass = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => Decoder;
const installed = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js') as (decoder: Decoder) => Promise<unknown[]>;
const installedResponse = require('kafkajs/src/protocol/requests/fetch/v11/response.js') as typeof kafkajsFetchResponse;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch(input: object): Promise<{ buffer: Buffer }> };
const { CompressionCodecs, CompressionTypes } = require('kafkajs') as {
  CompressionCodecs: Record<number, () => { decompress(buffer: Buffer): Promise<Buffer> }>;
  CompressionTypes: Record<'None' | 'GZIP' | 'Snappy' | 'LZ4', number>;
};

/** Record batches as a broker stores them (one per produce request), of `count` records each, in the codecs given in turn. */
async function recordSet(batches: number, count: number, codecs: readonly number[], seed: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = 0;
  for (let b = 0; b < batches; b++) {
    const records = randomRecords(seed + b, count, { maxBytes: 600, deltaBits: 20, negativeShare: 0, repeatedValues: 2 }).map((r, i) => kafkajsRecord({ ...r, offsetDelta: i }));
    parts.push((await RecordBatch({ compression: codecs[b % codecs.length], records, firstOffset: offset, lastOffsetDelta: count - 1, firstTimestamp: 1_700_000_000_000 })).buffer);
    offset += count;
  }
  return Buffer.concat(parts);
}

/** Each batch's length in a record set, read here from its bytes: 8 bytes of first offset, then the length of the rest. */
function batchLengths(set: Buffer): number[] {
  const lengths: number[] = [];
  for (let at = 0; at < set.length; at += 12 + set.readInt32BE(at + 8)) lengths.push(set.readInt32BE(at + 8));
  return lengths;
}

/** A partition's record set in a fetch response: its size, then its bytes (cut at `cut` bytes, as a fetch at its size limit is). */
function fetched(set: Buffer, cut = set.length): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(cut);
  return Buffer.concat([size, set.subarray(0, cut)]);
}

/** Both decoders on the same bytes: the records each gave (Buffers as hex), or the error each threw, and where each left the decoder. */
async function both(bytes: Buffer) {
  const run = async (decode: (decoder: Decoder) => Promise<unknown[]>) => {
    const decoder = new DecoderClass(bytes);
    const outcome = await decode(decoder).then(
      (records) => ({ records: JSON.parse(JSON.stringify(records, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v))) as unknown }),
      (err: unknown) => ({ error: String(err) }),
    );
    return { ...outcome, at: decoder.offset };
  };
  return { ours: await run(installed), theirs: await run(kafkajsDecodeMessages) };
}

/** Runs `body` with gzip's decompression counted: the most that ran at once. */
async function mostAtOnce(body: () => Promise<void>): Promise<number> {
  const gzip = CompressionCodecs[CompressionTypes.GZIP]!;
  let running = 0;
  let most = 0;
  CompressionCodecs[CompressionTypes.GZIP] = () => ({
    decompress: async (buffer: Buffer) => {
      most = Math.max(most, ++running);
      try {
        return await gzip().decompress(buffer);
      } finally {
        running--;
      }
    },
  });
  try {
    await body();
    return most;
  } finally {
    CompressionCodecs[CompressionTypes.GZIP] = gzip;
  }
}

describe('fetched record batches', () => {
  it('are decoded by sluice\'s decoder, not kafkajs\'s own', () => {
    expect(installed).not.toBe(kafkajsDecodeMessages);
  });

  it('give the records kafkajs\'s own decoder gives, in order, whatever the codecs, and end at a batch cut short', async () => {
    const { None, GZIP, Snappy, LZ4 } = CompressionTypes;
    const sets: [string, Buffer][] = [
      ['many small gzip batches', await recordSet(30, 10, [GZIP], 1)],
      ['codecs mixed', await recordSet(13, 7, [GZIP, None, Snappy, LZ4], 100)],
      ['one large batch', await recordSet(1, 400, [GZIP], 200)],
      ['uncompressed', await recordSet(12, 5, [None], 300)],
    ];
    for (const [name, set] of sets) {
      for (const cut of [set.length, set.length - 1, Math.floor(set.length * 0.6), 60, 30, 0]) {
        const { ours, theirs } = await both(fetched(set, cut));
        expect(ours, `${name}, cut at ${cut} of ${set.length} bytes`).toEqual(theirs);
        if (cut === set.length) expect((ours as { records: unknown[] }).records.length, name).toBeGreaterThan(0);
      }
    }
  });

  it('fail as kafkajs\'s own fails on a batch that cannot be inflated, and leave no rejection unhandled', async () => {
    const set = await recordSet(20, 5, [CompressionTypes.GZIP], 400);
    const corrupt = Buffer.from(set);
    // The 4th batch's compressed bytes: past its 61-byte header, where the gzip stream begins.
    const at = batchLengths(set).slice(0, 3).reduce((sum, length) => sum + 12 + length, 0);
    corrupt.fill(0x55, at + 61 + 10, at + 61 + 30);
    const { ours, theirs } = await both(fetched(corrupt));
    expect((theirs as { error?: string }).error).toMatch(/header|invalid|incorrect/i);
    expect(ours).toEqual(theirs);
  });

  it(`inflate up to ${AHEAD} small batches at once, where kafkajs's own inflates one at a time`, async () => {
    const set = await recordSet(AHEAD + 10, 4, [CompressionTypes.GZIP], 500);
    let records: unknown[] = [];
    expect(AHEAD).toBeGreaterThan(1);
    expect(await mostAtOnce(async () => void (records = await installed(new DecoderClass(fetched(set)))))).toBe(AHEAD);
    expect(records).toHaveLength((AHEAD + 10) * 4);
    expect(await mostAtOnce(async () => void (await kafkajsDecodeMessages(new DecoderClass(fetched(set)))))).toBe(1);
  });

  it(`inflate large batches no more than ${AHEAD_BYTES} compressed bytes at once`, async () => {
    const set = await recordSet(8, 150, [CompressionTypes.GZIP], 600);
    const lengths = batchLengths(set);
    // The most batches in a row that fit together (one always runs).
    let bound = 1;
    for (let i = 0; i < lengths.length; i++) {
      let sum = 0;
      let k = 0;
      while (i + k < lengths.length && sum + lengths[i + k]! <= AHEAD_BYTES) sum += lengths[i + k++]!;
      bound = Math.max(bound, k);
    }
    expect(bound).toBeLessThan(AHEAD);
    const most = await mostAtOnce(async () => expect(await installed(new DecoderClass(fetched(set)))).toHaveLength(8 * 150));
    expect(most).toBeGreaterThanOrEqual(1);
    expect(most).toBeLessThanOrEqual(bound);
  });
});

/** A fetch v11 response, written here field by field from the protocol's description (kafkajs's v11/response.js). */
interface PartitionData {
  partition: number;
  aborted?: [bigint, bigint][];
  /** The record set's bytes with their size in front (`fetched`), or null for a null record set. */
  records: Buffer | null;
}
function fetchResponse(topics: [string, PartitionData[]][]): Buffer {
  const parts: Buffer[] = [];
  const int = (bytes: number, v: number | bigint) => {
    const b = Buffer.alloc(bytes);
    if (bytes === 2) b.writeInt16BE(Number(v));
    else if (bytes === 4) b.writeInt32BE(Number(v));
    else b.writeBigInt64BE(BigInt(v));
    parts.push(b);
  };
  int(4, 0); // throttle_time_ms
  int(2, 0); // error_code
  int(4, 77); // session_id
  int(4, topics.length);
  for (const [topic, partitions] of topics) {
    int(2, Buffer.byteLength(topic));
    parts.push(Buffer.from(topic));
    int(4, partitions.length);
    for (const p of partitions) {
      int(4, p.partition);
      int(2, 0);
      int(8, 1000n + BigInt(p.partition)); // high watermark
      int(8, 900n); // last stable offset
      int(8, 0n); // log start offset
      int(4, p.aborted?.length ?? -1);
      for (const [producerId, firstOffset] of p.aborted ?? []) {
        int(8, producerId);
        int(8, firstOffset);
      }
      int(4, -1); // preferred read replica
      if (p.records === null) int(4, -1);
      else parts.push(p.records);
    }
  }
  return Buffer.concat(parts);
}

/** The bytes of the keys and values of records as kafkajs decodes them: counted here, record by record. */
function keyValueBytes(records: unknown[]): number {
  let n = 0;
  for (const r of records as { key: Buffer | null; value: Buffer | null }[]) n += (r.key?.length ?? 0) + (r.value?.length ?? 0);
  return n;
}

describe('what fetched record batches took', () => {
  it('is reported: the whole batches decoded, compressed, and their records\' keys and values, not a batch cut short', async () => {
    const { None, GZIP, LZ4 } = CompressionTypes;
    const set = await recordSet(5, 20, [GZIP, None, LZ4], 2100);
    const lengths = batchLengths(set);
    // Cut inside the fifth batch: four whole ones.
    const cut = lengths.slice(0, 4).reduce((sum, l) => sum + 12 + l, 0) + 30;
    const reports: [number, number][] = [];
    const records = await decodeMessages(new DecoderClass(fetched(set, cut)), (c, d) => reports.push([c, d]));
    const theirs = await kafkajsDecodeMessages(new DecoderClass(fetched(set, cut)));
    expect(records.length).toBe(80);
    expect(reports).toEqual([[lengths.slice(0, 4).reduce((sum, l) => sum + 12 + l, 0), keyValueBytes(theirs)]]);
    // Nothing decoded, nothing reported.
    const none: unknown[] = [];
    await decodeMessages(new DecoderClass(fetched(set, 30)), (c, d) => none.push([c, d]));
    expect(none).toEqual([]);
  });

  it('teaches an adaptive topic its fetch size, through the fetch response decoder', async () => {
    // Records that compress, as Debezium's do: the same JSON but for a number.
    const records = Array.from({ length: 40 }, (_, i) =>
      kafkajsRecord({ offsetDelta: i, timestampDelta: 0, key: `row-${i}`, value: JSON.stringify({ schema: { type: 'struct', optional: false, name: 'x'.repeat(200) }, payload: { id: i } }), headers: {} }),
    );
    const set = (await RecordBatch({ compression: CompressionTypes.GZIP, records, firstOffset: 0, lastOffsetDelta: 39, firstTimestamp: 1_700_000_000_000 })).buffer;
    const theirs = await kafkajsDecodeMessages(new DecoderClass(fetched(set)));
    const ratio = keyValueBytes(theirs) / set.length;
    expect(ratio).toBeGreaterThan(5);
    const end = adaptFetchSize('t-adaptive', 1_048_576);
    try {
      await installedResponse.decode(fetchResponse([['t-adaptive', [{ partition: 0, records: fetched(set) }]], ['t-fixed', [{ partition: 0, records: fetched(set) }]]]));
      expect(partitionMaxBytes('t-adaptive', 1_048_576)).toBe(fetchAsk(ratio, 1_048_576));
      expect(partitionMaxBytes('t-fixed', 1_048_576)).toBe(1_048_576);
    } finally {
      end();
    }
  });
});

describe('fetch responses', () => {
  it('are decoded by sluice\'s decoder, not kafkajs\'s own', () => {
    expect(installedResponse.decode).not.toBe(kafkajsFetchResponse.decode);
  });

  async function bothResponses(bytes: Buffer) {
    const run = (decode: (raw: Buffer) => Promise<unknown>) =>
      decode(bytes).then(
        (value) => ({ value: JSON.parse(JSON.stringify(value)) as unknown }),
        (err: unknown) => ({ error: String(err) }),
      );
    return { ours: await run(installedResponse.decode), theirs: await run(kafkajsFetchResponse.decode) };
  }

  it('give what kafkajs\'s own gives: every topic and partition, headers, aborted transactions, records, in order', async () => {
    const { GZIP, None, LZ4 } = CompressionTypes;
    const set = (seed: number, batches: number, codecs: number[]) => recordSet(batches, 6, codecs, seed);
    const a = await set(1000, 5, [GZIP]);
    const bytes = fetchResponse([
      [
        'activities',
        [
          { partition: 0, records: fetched(a) },
          { partition: 1, aborted: [[7n, 3n]], records: fetched(await set(1100, 3, [GZIP, None])) },
          { partition: 2, records: null },
          { partition: 3, records: fetched(a, a.length - 9) },
        ],
      ],
      ['other', [{ partition: 5, records: fetched(await set(1200, 4, [LZ4, GZIP])) }]],
      ['empty', []],
    ]);
    const { ours, theirs } = await bothResponses(bytes);
    expect(ours).toEqual(theirs);
    const value = (ours as { value: { responses: { partitions: { messages: unknown[] }[] }[] } }).value;
    expect(value.responses.map((t) => t.partitions.map((p) => p.messages.length))).toEqual([[30, 18, 0, 24], [24], []]);
  });

  it('fail as kafkajs\'s own fails: with the first failing partition\'s error, in order', async () => {
    /** Three gzip batches, the first broken from `from` bytes into its gzip stream (which starts past the batch's 61-byte header). */
    const broken = async (seed: number, from: number) => {
      const set = Buffer.from(await recordSet(3, 4, [CompressionTypes.GZIP], seed));
      set.fill(0xff, 61 + from, 61 + 40);
      return fetched(set);
    };
    const good = fetched(await recordSet(2, 4, [CompressionTypes.GZIP], 1300));
    // The gzip header's compression method, then the deflate stream: two different errors.
    const [method, stream] = [await broken(1400, 2), await broken(1500, 10)];
    const response = (...records: Buffer[]) => fetchResponse([['t', records.map((r, partition) => ({ partition, records: r }))]]);
    const alone = await bothResponses(response(good, stream));
    expect((alone.theirs as { error?: string }).error).toMatch(/invalid|incorrect/);
    const { ours, theirs } = await bothResponses(response(good, method, stream));
    expect((theirs as { error?: string }).error).toMatch(/unknown compression method/);
    expect(ours).toEqual(theirs);
    expect(alone.ours).toEqual(alone.theirs);
  });

  it('inflate every partition\'s small batches at once, where kafkajs\'s own takes one partition after another', async () => {
    const partitions = await Promise.all([0, 1, 2, 3].map(async (p) => ({ partition: p, records: fetched(await recordSet(2, 3, [CompressionTypes.GZIP], 1600 + p)) })));
    const bytes = fetchResponse([['t', partitions]]);
    expect(await mostAtOnce(async () => void (await installedResponse.decode(bytes)))).toBe(8);
    // (kafkajs's own response decoder calls sluice's decodeMessages, which starts a partition's batches together.)
    expect(await mostAtOnce(async () => void (await kafkajsFetchResponse.decode(bytes)))).toBe(2);
  });

  it(`inflate large record sets (past ${AHEAD_BYTES} compressed bytes together) one partition after another, as kafkajs\'s own does`, async () => {
    const sets = await Promise.all([0, 1, 2].map((p) => recordSet(2, 200, [CompressionTypes.GZIP], 1700 + p)));
    for (const set of sets) expect(set.length).toBeGreaterThan(AHEAD_BYTES / 2);
    const bytes = fetchResponse([['t', sets.map((set, partition) => ({ partition, records: fetched(set, partition === 2 ? set.length - 5 : set.length) }))]]);
    const most = await mostAtOnce(async () => void (await installedResponse.decode(bytes)));
    expect(most).toBeLessThanOrEqual(2);
    expect(most).toBe(await mostAtOnce(async () => void (await kafkajsFetchResponse.decode(bytes))));
    const { ours, theirs } = await bothResponses(bytes);
    expect(ours).toEqual(theirs);
    expect((ours as { value: { responses: { partitions: { messages: unknown[] }[] }[] } }).value.responses[0]!.partitions.map((p) => p.messages.length)).toEqual([400, 400, 200]);
  });
});
