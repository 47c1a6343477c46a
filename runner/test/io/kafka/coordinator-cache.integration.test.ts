import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Before kafkajs: client.ts installs the remembered coordinators (and the read_committed filter).
import { readTopicsToEnd, type KafkaAdmin } from '../../../src/io/kafka/client.ts';
import { kafkajsFindGroupCoordinator } from '../../../src/io/kafka/coordinator-cache.ts';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { silentLogger } from '../../../src/engine/logger.ts';
import { openAdmin, testBrokers, testConnection, uniqueName } from './test-broker.ts';

const require = createRequire(import.meta.url);
const Cluster = require('kafkajs/src/cluster/index.js') as { prototype: { findGroupCoordinator: unknown } };

/** Runs `rounds` transactions, each a send, offsets for a group and a commit, counting the requests by API name. */
async function transactions(topic: string, group: string, rounds: number): Promise<Map<string, number>> {
  const kafka = new Kafka({ brokers: testBrokers(), clientId: uniqueName('coordinator-test'), logLevel: logLevel.NOTHING });
  const producer: Producer = kafka.producer({ transactionalId: uniqueName('coordinator-tx'), idempotent: true, maxInFlightRequests: 1 });
  const requests = new Map<string, number>();
  producer.on(producer.events.REQUEST, (e) => requests.set(e.payload.apiName, (requests.get(e.payload.apiName) ?? 0) + 1));
  await producer.connect();
  try {
    for (let i = 0; i < rounds; i++) {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: [{ key: String(i), value: `round ${i}` }] });
      await tx.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: String(i + 1) }] }] });
      await tx.commit();
    }
  } finally {
    await producer.disconnect();
  }
  return requests;
}

describe('remembered coordinators against a real broker', () => {
  let admin: KafkaAdmin;
  beforeAll(async () => {
    admin = await openAdmin();
  });
  afterAll(async () => {
    await admin.close();
  });

  it('looks each coordinator up once for ten transactions, where kafkajs alone asks before nearly every call; every transaction commits', async () => {
    const topic = uniqueName('coordinator-cache');
    await admin.createTopics([{ topic, partitions: 1 }]);
    try {
      const remembered = await transactions(topic, uniqueName('coordinator-group'), 10);
      const installed = Cluster.prototype.findGroupCoordinator;
      Cluster.prototype.findGroupCoordinator = kafkajsFindGroupCoordinator;
      let own: Map<string, number>;
      try {
        own = await transactions(topic, uniqueName('coordinator-group'), 10);
      } finally {
        Cluster.prototype.findGroupCoordinator = installed;
      }
      // One lookup for the transaction coordinator, one for the group's.
      expect(remembered.get('GroupCoordinator')).toBe(2);
      expect(own.get('GroupCoordinator')).toBeGreaterThanOrEqual(40);
      // The same transactional calls either way (AddPartitionsToTxn may be answered
      // CONCURRENT_TRANSACTIONS and sent again while the coordinator still ends the previous one).
      expect(remembered.get('AddPartitionsToTxn')).toBeGreaterThanOrEqual(10);
      for (const api of ['AddOffsetsToTxn', 'TxnOffsetCommit', 'EndTxn']) {
        expect(remembered.get(api), api).toBe(10);
        expect(own.get(api), api).toBe(10);
      }
      // Committed records only: all twenty rounds' sends.
      const committed: string[] = [];
      await readTopicsToEnd(testConnection(), [topic], (r) => committed.push(r.value?.toString() ?? ''), silentLogger);
      expect(committed.sort()).toEqual(
        [...Array.from({ length: 10 }, (_, i) => `round ${i}`), ...Array.from({ length: 10 }, (_, i) => `round ${i}`)].sort(),
      );
    } finally {
      await admin.deleteTopics([topic]);
    }
  });
});
