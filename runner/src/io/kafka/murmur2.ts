/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`), which places a keyed message in its
 * partition: the repartition sink uses it, and it replaces kafkajs's own for the default
 * partitioner (installed before kafkajs loads; client.ts imports this first). kafkajs computes the
 * same values with a Long object per arithmetic step: 5% of the CPU of a change-capture backlog
 * written to a keyed topic. 32-bit multiplication (Math.imul) gives the Java int arithmetic.
 */
import { replaceKafkajsModule } from './kafkajs-module.ts';

export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[whole + 2]! << 16;
  if (rest >= 2) h ^= data[whole + 1]! << 8;
  if (rest >= 1) {
    h ^= data[whole]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** kafkajs's hash takes a Buffer or anything it turns into text. */
export function kafkajsMurmur2(key: Buffer | string | number): number {
  return murmur2(Buffer.isBuffer(key) ? key : Buffer.from(String(key)));
}

/** kafkajs's own (the tests compare with it). */
export const kafkajsOwnMurmur2 = replaceKafkajsModule<(key: Buffer | string | number) => number>({
  module: 'kafkajs/src/producer/partitioners/default/murmur2.js',
  requiredBy: 'kafkajs/src/producer/partitioners/default/index.js',
  replacement: kafkajsMurmur2,
  mark: Symbol.for('sluice.kafkajs.murmur2'),
  what: 'its murmur2 partitioner hash',
});
