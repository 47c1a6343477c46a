import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { kafkajsMurmur2, kafkajsOwnMurmur2, murmur2 } from '../../../src/io/kafka/murmur2.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

describe('murmur2', () => {
  it('is Kafka\'s (the Java client\'s values)', () => {
    // Values of org.apache.kafka.common.utils.Utils.murmur2.
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('a'))).toBe(-1563381124);
    expect(murmur2(Buffer.from('abc'))).toBe(479470107);
    expect(murmur2(Buffer.from(''))).toBe(275646681);
  });

  it('gives what kafkajs\'s own gives, for text and bytes of every length', () => {
    const random = mulberry32(9);
    for (let i = 0; i < 2_000; i++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
      expect(kafkajsMurmur2(bytes)).toBe(kafkajsOwnMurmur2(bytes));
      const text = bytes.toString('base64');
      expect(kafkajsMurmur2(text)).toBe(kafkajsOwnMurmur2(text));
    }
    expect(kafkajsMurmur2(42)).toBe(kafkajsOwnMurmur2(42));
  });

  it('is what kafkajs\'s default partitioner hashes with', () => {
    const require = createRequire(import.meta.url);
    expect(require('kafkajs/src/producer/partitioners/default/murmur2.js')).toBe(kafkajsMurmur2);
  });
});
