import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { encodeRecord, kafkajsRecord, uvarintSize, writeUVarInt, zigzag } from '../../../src/io/kafka/record-encoding.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

describe('kafka record encoding', () => {
  it('writes the bytes kafkajs writes, for keys, values and headers of every kind', () => {
    const random = mulberry32(5);
    const text = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 90))).join('') + (random() < 0.2 ? 'é€😀' : '');
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const some = (): string | Buffer | null => (random() < 0.15 ? null : random() < 0.5 ? text(Math.floor(random() * 300)) : bytes(Math.floor(random() * 20_000)));
    for (let i = 0; i < 500; i++) {
      const headers: Record<string, string | Buffer | (string | Buffer)[]> = {};
      const n = Math.floor(random() * 4);
      for (let h = 0; h < n; h++) headers[`h${h}${text(3)}`] = random() < 0.2 ? [text(5), bytes(4)] : random() < 0.5 ? text(10) : bytes(7);
      const input = {
        offsetDelta: Math.floor(random() * 5_000),
        timestampDelta: Math.floor(random() * 2 ** (random() < 0.5 ? 10 : 45)) * (random() < 0.1 ? -1 : 1),
        key: some(),
        value: some(),
        headers,
      };
      // Independently: kafkajs's own encoder of the same record.
      expect(encodeRecord(input)!.buffer.equals(kafkajsRecord(input).buffer), `record ${i}`).toBe(true);
    }
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
