import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { encodeRecord, kafkajsRecord, recordBuffer, uvarintSize, writeUVarInt, zigzag } from '../../../src/io/kafka/record-encoding.ts';
import { randomRecords } from './random-records.ts';

describe('kafka record encoding', () => {
  it('writes the bytes kafkajs writes, for keys, values and headers of every kind', () => {
    for (const [i, input] of randomRecords(5, 500, { maxBytes: 20_000, deltaBits: 45, negativeShare: 0.1, repeatedValues: 2 }).entries()) {
      // Independently: kafkajs's own encoder of the same record.
      expect(encodeRecord(input)!.buffer.equals(kafkajsRecord(input).buffer), `record ${i}`).toBe(true);
    }
  });

  it('keeps the bytes of every record while later records are encoded (records share slabs)', () => {
    const inputs = randomRecords(7, 2_000, { maxBytes: 30_000, deltaBits: 20, negativeShare: 0, repeatedValues: 2 });
    // Over 1,000 KB in all: records cross several slabs, and the largest get buffers of their own.
    const encoded = inputs.map((input) => encodeRecord(input)!);
    for (const [i, input] of inputs.entries()) {
      expect(encoded[i]!.buffer.equals(kafkajsRecord(input).buffer), `record ${i}`).toBe(true);
    }
  });

  it('gives buffers of the size asked for that never overlap', () => {
    const buffers = [1, 7, 8, 9, 4095, 16_384, 100_000, 3, ...Array.from({ length: 400 }, (_, i) => 1 + ((i * 977) % 9000))].map(recordBuffer);
    buffers.forEach((b, i) => b.fill(i % 251));
    buffers.forEach((b, i) => {
      expect(b.every((byte) => byte === i % 251), `buffer ${i} was overwritten`).toBe(true);
    });
    expect(buffers.map((b) => b.length).slice(0, 8)).toEqual([1, 7, 8, 9, 4095, 16_384, 100_000, 3]);
  });

  it('writes varints and zigzag as Kafka does, past 32 bits too', () => {
    expect([0, -1, 1, -2, 2, 2 ** 40, -(2 ** 40)].map(zigzag)).toEqual([0, 1, 2, 3, 4, 2 ** 41, 2 ** 41 - 1]);
    const buf = Buffer.alloc(10);
    expect(writeUVarInt(buf, 0, 300)).toBe(2);
    expect([...buf.subarray(0, 2)]).toEqual([0xac, 0x02]);
    expect(uvarintSize(127)).toBe(1);
    expect(uvarintSize(128)).toBe(2);
    expect(uvarintSize(2 ** 42)).toBe(7);
  });

  it('leaves a Long timestamp delta to kafkajs, and is what kafkajs\'s produce request requires', () => {
    expect(encodeRecord({ timestampDelta: { low: 1, high: 0 }, key: 'k', value: 'v' })).toBeUndefined();
    const require = createRequire(import.meta.url);
    const installed = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (i: object) => { buffer: Buffer };
    expect(installed).not.toBe(kafkajsRecord);
    expect(installed({ timestampDelta: 3, key: 'k', value: 'v', headers: { a: 'b' } }).buffer.equals(kafkajsRecord({ timestampDelta: 3, key: 'k', value: 'v', headers: { a: 'b' } }).buffer)).toBe(true);
  });
});
