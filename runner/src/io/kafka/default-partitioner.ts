/**
 * kafkajs 2.2.4's default partitioner (its `legacy/partitioner.js`, which the default one is built
 * from), replaced before kafkajs loads (client.ts imports this first). For every message it
 * filtered the topic's partitions down to those with a leader, an array and a callback per
 * partition, before looking at the message, though only a message with neither a partition nor a
 * key uses the result: every message of a repartition topic names its partition, and every
 * message of a keyed sink has a key. Here the filter runs only for the others. The choices are
 * kafkajs's: a partition given with the message as is, a key by its hash modulo all partitions,
 * and otherwise the available partitions in turn from a random start per topic.
 */
import { randomBytes } from 'node:crypto';
import { replaceKafkajsModule } from './kafkajs-module.ts';

interface PartitionMetadata {
  partitionId: number;
  leader: number;
}

interface PartitionerArgs<K> {
  topic: string;
  partitionMetadata: readonly PartitionMetadata[];
  message: { partition?: number | null; key?: K | null };
}

type Partitioner<K> = (args: PartitionerArgs<K>) => number;

/** As kafkajs turns a hash into a partition: its low 31 bits. */
function toPositive(x: number): number {
  return x & 0x7fffffff;
}

/** A partitioner factory as kafkajs's `createPartitioner` option takes it, hashing keys with `hash`. */
export function defaultPartitioner<K>(hash: (key: K) => number): () => Partitioner<K> {
  return () => {
    const counters = new Map<string, number>();
    return ({ topic, partitionMetadata, message }) => {
      if (message.partition !== null && message.partition !== undefined) return message.partition;
      if (message.key !== null && message.key !== undefined) return toPositive(hash(message.key)) % partitionMetadata.length;
      const counter = (counters.get(topic) ?? randomBytes(4).readUInt32BE(0)) + 1;
      counters.set(topic, counter);
      const available = partitionMetadata.filter((p) => p.leader >= 0);
      // With none available, one that is not: the request then fails and is retried.
      if (available.length === 0) return toPositive(counter) % partitionMetadata.length;
      return available[toPositive(counter) % available.length]!.partitionId;
    };
  };
}

/** kafkajs's own (the tests compare with it). */
export const kafkajsOwnPartitioner = replaceKafkajsModule<<K>(hash: (key: K) => number) => () => Partitioner<K>>({
  module: 'kafkajs/src/producer/partitioners/legacy/partitioner.js',
  requiredBy: 'kafkajs/src/producer/partitioners/default/index.js',
  replacement: defaultPartitioner,
  mark: Symbol.for('sluice.kafkajs.default-partitioner'),
  what: 'its default partitioner',
});
