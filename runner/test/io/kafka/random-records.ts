/**
 * Random produce records for the tests that compare sluice's record encoding and decoding with
 * kafkajs's own: keys and values of text (some multi-byte) or bytes or null, headers with single
 * and repeated values, offset and timestamp deltas.
 */
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

type Bytes = string | Buffer | null;

export interface RandomRecord {
  offsetDelta: number;
  timestampDelta: number;
  key: Bytes;
  value: Bytes;
  headers: Record<string, string | Buffer | (string | Buffer)[]>;
}

export interface RandomRecordOptions {
  /** Most bytes of a binary key or value. */
  maxBytes: number;
  /** Half the timestamp deltas are below 2^10, the other half below 2^deltaBits. */
  deltaBits: number;
  /** The share of negative timestamp deltas. */
  negativeShare: number;
  /** Values of a repeated header: 2 (text, bytes) or 3 (text, bytes, text). */
  repeatedValues: 2 | 3;
}

/** `count` records drawn from a seeded generator: the same records for the same seed and options. */
export function randomRecords(seed: number, count: number, options: RandomRecordOptions): RandomRecord[] {
  const random = mulberry32(seed);
  const text = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 90))).join('') + (random() < 0.2 ? 'é€😀' : '');
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
  const some = (): Bytes => (random() < 0.15 ? null : random() < 0.5 ? text(Math.floor(random() * 300)) : bytes(Math.floor(random() * options.maxBytes)));
  const repeated = () => (options.repeatedValues === 3 ? [text(5), bytes(4), text(2)] : [text(5), bytes(4)]);
  return Array.from({ length: count }, () => {
    const headers: RandomRecord['headers'] = {};
    const n = Math.floor(random() * 4);
    for (let h = 0; h < n; h++) headers[`h${h}${text(3)}`] = random() < 0.2 ? repeated() : random() < 0.5 ? text(10) : bytes(7);
    return {
      offsetDelta: Math.floor(random() * 5_000),
      timestampDelta: Math.floor(random() * 2 ** (random() < 0.5 ? 10 : options.deltaBits)) * (random() < options.negativeShare ? -1 : 1),
      key: some(),
      value: some(),
      headers,
    };
  });
}
