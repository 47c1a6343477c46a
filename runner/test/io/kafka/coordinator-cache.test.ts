import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import {
  countCoordinatorFailure,
  kafkajsFindGroupCoordinator,
  meansStaleCoordinator,
  rememberedCoordinator,
  type CoordinatorBroker,
} from '../../../src/io/kafka/coordinator-cache.ts';

const require = createRequire(import.meta.url);
const Cluster = require('kafkajs/src/cluster/index.js') as { prototype: { findGroupCoordinator(q: object): Promise<CoordinatorBroker> } };
const Broker = require('kafkajs/src/broker/index.js') as { prototype: Record<string, (...args: unknown[]) => Promise<unknown>> };

/** A cluster of brokers 1..n for rememberedCoordinator, counting lookups; `coordinator` is who answers. */
function fakeCluster(n: number) {
  const brokers = new Map<number, CoordinatorBroker>(Array.from({ length: n }, (_, i) => [i + 1, { nodeId: i + 1 }]));
  const state = { coordinator: 1, lookups: 0, unreachable: new Set<number>() };
  const remembered = new Map();
  const find = (key = 'g') =>
    rememberedCoordinator(
      remembered,
      key,
      async () => {
        state.lookups++;
        return brokers.get(state.coordinator)!;
      },
      async (nodeId) => {
        if (state.unreachable.has(nodeId)) throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'KafkaJSConnectionError' });
        return brokers.get(nodeId)!;
      },
    );
  return { brokers, state, find };
}

function protocolError(type: string): Error {
  return Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type });
}

describe('remembered coordinators', () => {
  it('looks a coordinator up once and answers from memory after that, per group', async () => {
    const c = fakeCluster(3);
    for (let i = 0; i < 5; i++) expect(await c.find('a')).toBe(c.brokers.get(1));
    expect(c.state.lookups).toBe(1);
    c.state.coordinator = 2;
    expect(await c.find('b')).toBe(c.brokers.get(2));
    expect(await c.find('a')).toBe(c.brokers.get(1));
    expect(c.state.lookups).toBe(2);
  });

  it('looks up again once the remembered broker answered that it is not the coordinator', async () => {
    const c = fakeCluster(3);
    const first = await c.find();
    c.state.coordinator = 3;
    // A wrong answer that does not put coordinatorship in doubt keeps the memory.
    expect(() => countCoordinatorFailure(first, protocolError('INVALID_PRODUCER_EPOCH'))).toThrow('INVALID_PRODUCER_EPOCH');
    expect(await c.find()).toBe(first);
    expect(() => countCoordinatorFailure(first, protocolError('NOT_COORDINATOR_FOR_GROUP'))).toThrow('NOT_COORDINATOR_FOR_GROUP');
    expect(await c.find()).toBe(c.brokers.get(3));
    expect(await c.find()).toBe(c.brokers.get(3));
    expect(c.state.lookups).toBe(2);
  });

  it('looks up again when the remembered broker cannot be reached, or the pool holds another instance for it', async () => {
    const c = fakeCluster(2);
    await c.find();
    c.state.unreachable.add(1);
    c.state.coordinator = 2;
    expect(await c.find()).toBe(c.brokers.get(2));
    expect(c.state.lookups).toBe(2);
    c.brokers.set(2, { nodeId: 2 });
    expect(await c.find()).toBe(c.brokers.get(2));
    expect(c.state.lookups).toBe(3);
  });

  it('does not remember a failed lookup', async () => {
    const remembered = new Map();
    let lookups = 0;
    const find = () =>
      rememberedCoordinator(
        remembered,
        'g',
        async () => {
          lookups++;
          if (lookups === 1) throw protocolError('GROUP_COORDINATOR_NOT_AVAILABLE');
          return { nodeId: 1 };
        },
        async () => ({ nodeId: 1 }),
      );
    await expect(find()).rejects.toThrow('GROUP_COORDINATOR_NOT_AVAILABLE');
    await find();
    expect(lookups).toBe(2);
  });

  it('takes coordinator errors and lost connections, not other failures, as a stale coordinator', () => {
    for (const type of ['GROUP_COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR_FOR_GROUP', 'COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR']) {
      expect(meansStaleCoordinator(protocolError(type))).toBe(true);
    }
    for (const name of ['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound']) {
      expect(meansStaleCoordinator(Object.assign(new Error('x'), { name }))).toBe(true);
    }
    expect(meansStaleCoordinator(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
    for (const type of ['COORDINATOR_LOAD_IN_PROGRESS', 'CONCURRENT_TRANSACTIONS', 'INVALID_PRODUCER_EPOCH', 'UNKNOWN_MEMBER_ID']) {
      expect(meansStaleCoordinator(protocolError(type))).toBe(false);
    }
    expect(meansStaleCoordinator(new Error('x'))).toBe(false);
    expect(meansStaleCoordinator(undefined)).toBe(false);
  });
});

describe('installed over kafkajs', () => {
  /** kafkajs's Cluster as its findGroupCoordinator uses it: `retrier`, the metadata lookup and `findBroker`. */
  function kafkajsLikeCluster() {
    const broker = { nodeId: 7 };
    const calls = { metadata: 0 };
    const cluster = {
      retrier: (f: (bail: (e: unknown) => never, retryCount: number, retryTime: number) => Promise<unknown>) =>
        f(
          (e) => {
            throw e;
          },
          0,
          0,
        ),
      async findGroupCoordinatorMetadata() {
        calls.metadata++;
        return { coordinator: { nodeId: 7 } };
      },
      async findBroker({ nodeId }: { nodeId: number }) {
        if (nodeId !== 7) throw new Error(`no broker ${nodeId}`);
        return broker;
      },
    };
    return { cluster, broker, calls };
  }

  it('replaces Cluster.findGroupCoordinator, which then asks the cluster once per group and coordinator type', async () => {
    expect(Cluster.prototype.findGroupCoordinator).not.toBe(kafkajsFindGroupCoordinator);
    const { cluster, broker, calls } = kafkajsLikeCluster();
    const find = Cluster.prototype.findGroupCoordinator;
    for (let i = 0; i < 3; i++) {
      expect(await find.call(cluster, { groupId: 'tx', coordinatorType: 1 })).toBe(broker);
      expect(await find.call(cluster, { groupId: 'tx' })).toBe(broker);
    }
    expect(calls.metadata).toBe(2);
    // kafkajs's own asks every time.
    for (let i = 0; i < 3; i++) await kafkajsFindGroupCoordinator.call(cluster as never, { groupId: 'tx', coordinatorType: 1 });
    expect(calls.metadata).toBe(5);
  });

  it('wraps the Broker\'s coordinator calls, so a NOT_COORDINATOR answer makes the next lookup ask again', async () => {
    const { cluster, broker, calls } = kafkajsLikeCluster();
    const find = Cluster.prototype.findGroupCoordinator;
    await find.call(cluster, { groupId: 'g' });
    // The installed endTxn on that broker, its request answered NOT_COORDINATOR (kafkajs's endTxn
    // looks its request up first; that is where the answer is made to come from).
    const endTxn = Broker.prototype.endTxn!;
    const answering = (type: string) =>
      Object.assign(broker, {
        lookupRequest() {
          throw protocolError(type);
        },
      });
    await expect(endTxn.call(answering('CONCURRENT_TRANSACTIONS'), {})).rejects.toThrow('CONCURRENT_TRANSACTIONS');
    await find.call(cluster, { groupId: 'g' });
    expect(calls.metadata).toBe(1);
    await expect(endTxn.call(answering('NOT_COORDINATOR_FOR_GROUP'), {})).rejects.toThrow('NOT_COORDINATOR_FOR_GROUP');
    await find.call(cluster, { groupId: 'g' });
    expect(calls.metadata).toBe(2);
  });
});
