import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { groupMessagesPerPartition } from '../../../src/io/kafka/produce-grouping.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

describe('kafkajs produce grouping', () => {
  it('groups messages by partition, each partition in send order', () => {
    const random = mulberry32(3);
    const messages = Array.from({ length: 5_000 }, (_, i) => ({ i, p: Math.floor(random() * 7) }));
    const grouped = groupMessagesPerPartition({ topic: 't', partitionMetadata: [{}], messages, partitioner: ({ message }) => message.p });
    // Independently: for each partition, the messages that the partitioner sends there, filtered in order.
    for (let p = 0; p < 7; p++) expect(grouped[p] ?? []).toEqual(messages.filter((m) => m.p === p));
    expect(Object.keys(grouped).length).toBe(new Set(messages.map((m) => m.p)).size);
  });

  it('gives nothing without partition metadata, as kafkajs does', () => {
    expect(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages: [1, 2], partitioner: () => 0 })).toEqual({});
  });

  it('is what kafkajs\'s producer requires', () => {
    const require = createRequire(import.meta.url);
    expect(require('kafkajs/src/producer/groupMessagesPerPartition.js')).toBe(groupMessagesPerPartition);
  });
});
