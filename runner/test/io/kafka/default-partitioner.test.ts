import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { defaultPartitioner, kafkajsOwnPartitioner } from '../../../src/io/kafka/default-partitioner.ts';
import { kafkajsMurmur2 } from '../../../src/io/kafka/murmur2.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

/** Partition metadata of `n` partitions; those in `down` have no leader. */
function partitions(n: number, down: readonly number[] = []): { partitionId: number; leader: number }[] {
  return Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: down.includes(partitionId) ? -1 : 1 }));
}

describe('default partitioner', () => {
  it('places messages with a partition or a key where kafkajs\'s own places them', () => {
    const random = mulberry32(4);
    const ours = defaultPartitioner(kafkajsMurmur2)();
    // Independently: kafkajs's own partitioner with the same hash.
    const theirs = kafkajsOwnPartitioner(kafkajsMurmur2)();
    for (let i = 0; i < 3_000; i++) {
      const n = 1 + Math.floor(random() * 12);
      const partitionMetadata = partitions(n, random() < 0.3 ? [Math.floor(random() * n)] : []);
      const key = random() < 0.5 ? Buffer.from(Array.from({ length: Math.floor(random() * 30) }, () => Math.floor(random() * 256))) : `emp-${Math.floor(random() * 1000)}`;
      const message = random() < 0.5 ? { partition: Math.floor(random() * n), key } : { key };
      expect(ours({ topic: 't', partitionMetadata, message })).toBe(theirs({ topic: 't', partitionMetadata, message }));
    }
  });

  it('takes the partitions with a leader in turn for messages with neither, per topic, as kafkajs\'s own does', () => {
    const metadata = partitions(5, [1, 3]);
    for (const make of [defaultPartitioner(kafkajsMurmur2), kafkajsOwnPartitioner(kafkajsMurmur2)]) {
      const partitioner = make();
      const picks = Array.from({ length: 7 }, () => partitioner({ topic: 'a', partitionMetadata: metadata, message: { key: null } }));
      // From a random start, 0, 2 and 4 in turn.
      const start = [0, 2, 4].indexOf(picks[0]!);
      expect(start).toBeGreaterThanOrEqual(0);
      expect(picks).toEqual(Array.from({ length: 7 }, (_, i) => [0, 2, 4][(start + i) % 3]));
      // With no partition available, all of them in turn.
      const none = partitions(3, [0, 1, 2]);
      const first = partitioner({ topic: 'b', partitionMetadata: none, message: {} });
      expect(partitioner({ topic: 'b', partitionMetadata: none, message: {} })).toBe((first + 1) % 3);
    }
  });

  it('is the partitioner kafkajs\'s producers use', () => {
    // What `Partitioners.DefaultPartitioner` is, and client.ts gives its producers.
    const require = createRequire(import.meta.url);
    const ours = (require('kafkajs/src/producer/partitioners/default/index.js') as ReturnType<typeof defaultPartitioner<string>>)();
    const metadata = partitions(6);
    // kafkajs's own would filter the metadata first, and so read `leader` of every partition.
    const watched = metadata.map((p) => ({
      partitionId: p.partitionId,
      get leader(): number {
        throw new Error('the partitions were filtered for a message that names its partition');
      },
    }));
    expect(ours({ topic: 't', partitionMetadata: watched, message: { partition: 4 } })).toBe(4);
    expect(ours({ topic: 't', partitionMetadata: metadata, message: { key: '21' } })).toBe(kafkajsOwnPartitioner(kafkajsMurmur2)()({ topic: 't', partitionMetadata: metadata, message: { key: '21' } }));
  });
});
