import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { decodeRecord, int64Plus, kafkajsDecodeRecord, type RecordBatchContext } from '../../../src/io/kafka/record-decoding.ts';
import { kafkajsRecord } from '../../../src/io/kafka/record-encoding.ts';
import { randomRecords } from './random-records.ts';

const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => { buffer: Buffer; offset: number; readVarIntBytes(): Buffer };
const installed = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as unknown;

/** A record's bytes without its length, as the batch decoder hands them over. */
function recordBytes(encoded: Buffer): Buffer {
  return new Decoder(encoded).readVarIntBytes();
}

/** Both decoders on the same bytes: what each returns, and where each left the decoder. */
function both(bytes: Buffer, context: RecordBatchContext) {
  const ours = new Decoder(bytes);
  const theirs = new Decoder(bytes);
  return { ours: decodeRecord(ours, context), theirs: kafkajsDecodeRecord(theirs, context), oursAt: ours.offset, theirsAt: theirs.offset };
}

/** A decoded record with its Buffers as hex (comparing large Buffers element by element is slow). */
function comparable(record: object): unknown {
  return JSON.parse(JSON.stringify(record, (_key, v: unknown) => (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' ? `hex:${Buffer.from((v as { data: number[] }).data).toString('hex')}` : v)));
}

/** A zigzag varlong of any int64, written here with BigInt (independently of both decoders). */
function varLong(v: bigint): number[] {
  let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  const out: number[] = [];
  do {
    const b = Number(u & 0x7fn);
    u >>= 7n;
    out.push(u > 0n ? b | 0x80 : b);
  } while (u > 0n);
  return out;
}

const contexts: RecordBatchContext[] = [
  { firstOffset: '0', firstTimestamp: '0', magicByte: 2, timestampType: 0, maxTimestamp: '0' },
  { firstOffset: '1234567', firstTimestamp: '1735813800123', magicByte: 2, timestampType: 0, maxTimestamp: '1735813801000', isControlBatch: false },
  { firstOffset: '9007199254740990', firstTimestamp: '-1', magicByte: 2, timestampType: 0, maxTimestamp: '-1' },
  { firstOffset: '42', firstTimestamp: '1735813800123', magicByte: 2, timestampType: 1, maxTimestamp: '1735813899999' },
  { firstOffset: '9223372036854775800', firstTimestamp: '9223372036854775000', magicByte: 2, timestampType: 0, maxTimestamp: '0', isControlBatch: true },
];

describe('kafka record decoding', () => {
  it('is installed over kafkajs\'s own', () => {
    expect(installed).not.toBe(kafkajsDecodeRecord);
  });

  it('gives what kafkajs\'s own decoder gives, for keys, values, headers, deltas and batch contexts of every kind', () => {
    for (const [i, input] of randomRecords(17, 500, { maxBytes: 5_000, deltaBits: 52, negativeShare: 0.3, repeatedValues: 3 }).entries()) {
      const r = both(recordBytes(kafkajsRecord(input).buffer), contexts[i % contexts.length]!);
      expect(comparable(r.ours), `record ${i}`).toEqual(comparable(r.theirs));
      expect(r.oursAt, `record ${i}: where the decoder is left`).toBe(r.theirsAt);
    }
  });

  it('reads varlongs past 2^53, and sums past 2^53 exactly, as kafkajs\'s Longs do', () => {
    const extremes = [0n, -1n, 2n ** 48n, -(2n ** 48n), 2n ** 49n + 3n, 2n ** 53n + 1n, -(2n ** 60n) - 7n, 2n ** 63n - 1n, -(2n ** 63n)];
    for (const delta of extremes) {
      // attributes, timestamp delta, offset delta 3, null key, value "v", no headers
      const record = Buffer.from([0, ...varLong(delta), 6, 1, 2, 0x76, 0]);
      for (const context of contexts) {
        const r = both(record, context);
        expect(r.ours, `delta ${delta} in ${JSON.stringify(context)}`).toEqual(r.theirs);
      }
    }
    expect(int64Plus('9223372036854775807', 1)).toBe('9223372036854775808');
    expect(int64Plus('9007199254740991', 1)).toBe('9007199254740992');
    expect(int64Plus('1735813800123', -123)).toBe('1735813800000');
  });

  it('folds repeated header keys into arrays as kafkajs does, and keeps a `__proto__` or `toString` header as data', () => {
    const header = (key: string | null, value: string | null) => {
      const k = key === null ? [1] : [Buffer.byteLength(key) * 2, ...Buffer.from(key)];
      const v = value === null ? [1] : [Buffer.byteLength(value) * 2, ...Buffer.from(value)];
      return [...k, ...v];
    };
    const record = (headers: number[][]) => Buffer.from([0, 0, 0, 1, 1, headers.length * 2, ...headers.flat()]);
    // a, a, a (three values, one null) and a null key: the same as kafkajs.
    const r = both(record([header('a', '1'), header('a', null), header('a', '3'), header(null, 'n')]), contexts[1]!);
    expect(r.ours).toEqual(r.theirs);
    expect(r.ours.headers.a).toEqual([Buffer.from('1'), null, Buffer.from('3')]);
    expect(r.ours.headers.null).toEqual(Buffer.from('n'));
    // kafkajs reads `obj[key]` through the prototype, so these came out as [Object.prototype, value]
    // and [Object.prototype.toString, value]; here they are the header's own values.
    const own = both(record([header('__proto__', 'x'), header('toString', 'y')]), contexts[1]!).ours.headers;
    expect(Object.getPrototypeOf(own)).toBe(Object.prototype);
    expect(Object.keys(own)).toEqual(['__proto__', 'toString']);
    expect(Object.getOwnPropertyDescriptor(own, '__proto__')?.value).toEqual(Buffer.from('x'));
    expect(own.toString).toEqual(Buffer.from('y'));
  });
});
