import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { kafkajsRecordBatch } from '../../../src/io/kafka/record-batch.ts';
import { kafkajsRecord } from '../../../src/io/kafka/record-encoding.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

const require = createRequire(import.meta.url);
type Batch = { buffer: Buffer; size(): number; parts?: Buffer[] };
type BatchModule = { RecordBatch(input: object): Promise<Batch>; MAGIC_BYTE: number };
const installed = require('kafkajs/src/protocol/recordBatch/v0/index.js') as BatchModule;
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (input: object) => { buf: Buffer; buffer: Buffer };
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: number): unknown };

/** Records of the given value sizes, encoded as the produce request encodes them. */
function records(sizes: readonly number[], seed: number, encode: (input: object) => { buf: Buffer; buffer: Buffer } = Record) {
  const random = mulberry32(seed);
  const text = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 90))).join('');
  return sizes.map((size, i) => encode({ key: `k${i}`, value: text(size), headers: i % 2 ? { h: text(12) } : {}, offsetDelta: i, timestampDelta: i * 3 }));
}

describe('record batch encoding', () => {
  it('is what kafkajs\'s produce request requires', () => {
    expect(installed.RecordBatch).not.toBe(kafkajsRecordBatch.RecordBatch);
    expect(installed.MAGIC_BYTE).toBe(kafkajsRecordBatch.MAGIC_BYTE);
  });

  it('gives the bytes kafkajs\'s own gives, uncompressed or gzip, small or large, in a transaction or not', async () => {
    const shapes: [string, number[]][] = [
      ['none', []],
      ['one tiny', [3]],
      ['few small', [100, 200, 50]],
      ['many small, large together', Array.from({ length: 60 }, (_, i) => 80 + i)],
      ['Debezium-sized', Array.from({ length: 40 }, () => 2_500)],
      ['mixed', [10, 70_000, 20, 5_000, 1]],
      ['one huge', [1_500_000]],
    ];
    let seed = 1;
    for (const [name, sizes] of shapes) {
      for (const compression of [0, 1]) {
        for (const transactional of [false, true]) {
          const input = {
            compression,
            records: records(sizes, seed++),
            firstTimestamp: 1_700_000_000_000,
            maxTimestamp: 1_700_000_000_000 + sizes.length * 3,
            lastOffsetDelta: sizes.length - 1,
            transactional,
            producerId: Long.fromValue(transactional ? 4_242 : -1),
            producerEpoch: transactional ? 7 : 0,
            firstSequence: 12,
          };
          const ours = await installed.RecordBatch(input);
          const theirs = await kafkajsRecordBatch.RecordBatch(input);
          const label = `${name}, compression ${compression}, transactional ${transactional}`;
          expect([label, ours.size()]).toEqual([label, theirs.size()]);
          expect([label, Buffer.compare(ours.buffer, theirs.buffer)]).toEqual([label, 0]);
        }
      }
    }
  });

  it('agrees with kafkajs\'s own for records of kafkajs\'s own encoder too, whose large values are referenced parts', async () => {
    const input = { records: records([50, 9_000, 30, 100_000], 99, kafkajsRecord), lastOffsetDelta: 3, firstTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_009 };
    expect(Buffer.compare((await installed.RecordBatch(input)).buffer, (await kafkajsRecordBatch.RecordBatch(input)).buffer)).toBe(0);
  });

  it('references an uncompressed batch\'s records instead of copying them, and copies a small one', async () => {
    const large = records(Array.from({ length: 10 }, () => 2_500), 5);
    const batch = await installed.RecordBatch({ records: large, lastOffsetDelta: 9 });
    const parts = batch.parts ?? [];
    for (const record of large) {
      // The very bytes of the record: a view of its memory, not a copy of them.
      expect(parts.some((p) => p.buffer === record.buf.buffer && p.byteOffset === record.buf.byteOffset && p.length === record.buf.length)).toBe(true);
    }
    const small = await installed.RecordBatch({ records: records([10, 20], 6), lastOffsetDelta: 1 });
    expect(small.parts).toBeUndefined();
  });
});
