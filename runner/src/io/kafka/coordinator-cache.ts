/**
 * Coordinators remembered, as the Java client does, instead of asked for before every call.
 * kafkajs 2.2.4 sends a FindCoordinator request for nearly every transactional call (adding
 * partitions, adding offsets, committing offsets, ending the transaction): at 5,000 events/s a
 * pipeline's checkpoints made 272 of them in 5 s, each a round trip while its task waits in the
 * checkpoint. Installed over kafkajs's `Cluster.findGroupCoordinator` (client.ts imports this
 * before kafkajs).
 *
 * A remembered coordinator is forgotten as soon as a request to that broker answers that it is
 * not, or no longer, a coordinator, or fails to reach it: every coordinator call of kafkajs's
 * Broker is wrapped to count such failures, and an answer remembered before the last failure of
 * its broker is not used again. kafkajs's own retries then look the coordinator up anew.
 */
import { createRequire } from 'node:module';

/** The part of a kafkajs Broker this uses. */
export interface CoordinatorBroker {
  nodeId?: number;
}

/** kafkajs's Cluster, as far as this uses it. */
interface ClusterInstance {
  findBroker(query: { nodeId: number }): Promise<CoordinatorBroker>;
  findGroupCoordinator(query: { groupId: string; coordinatorType?: number }): Promise<CoordinatorBroker>;
}

/** A coordinator as last found: its broker, and how many coordinator failures that broker had then. */
interface Remembered {
  broker: CoordinatorBroker & { nodeId: number };
  failures: number;
}

/** Where a broker counts its coordinator failures. */
const FAILURES = Symbol.for('sluice.kafkajs.coordinator-failures');

type CountingBroker = CoordinatorBroker & { [FAILURES]?: number };

function hasNodeId(broker: CoordinatorBroker): broker is CoordinatorBroker & { nodeId: number } {
  return typeof broker.nodeId === 'number';
}

function failuresOf(broker: CoordinatorBroker): number {
  return (broker as CountingBroker)[FAILURES] ?? 0;
}

/**
 * The error types that say a broker is not (or not yet, or no longer) the coordinator. kafkajs
 * names Kafka's codes 15 and 16 GROUP_COORDINATOR_NOT_AVAILABLE and NOT_COORDINATOR_FOR_GROUP;
 * the spellings its own transaction code checks for are listed too.
 */
const STALE_COORDINATOR_TYPES: ReadonlySet<string> = new Set([
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR_FOR_GROUP',
  'COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
]);

/** Whether an error from a coordinator call means the coordinator must be looked up again. */
export function meansStaleCoordinator(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { type, name, code } = err as { type?: unknown; name?: unknown; code?: unknown };
  if (typeof type === 'string' && STALE_COORDINATOR_TYPES.has(type)) return true;
  // The broker went away (kafkajs's own retries treat ECONNREFUSED as a moved coordinator too).
  return (
    name === 'KafkaJSConnectionError' ||
    name === 'KafkaJSConnectionClosedError' ||
    name === 'KafkaJSRequestTimeoutError' ||
    name === 'KafkaJSBrokerNotFound' ||
    code === 'ECONNREFUSED'
  );
}

/** Counts a failure on the broker when the error means its coordinatorship is in doubt; rethrows. */
export function countCoordinatorFailure(broker: CoordinatorBroker, err: unknown): never {
  if (meansStaleCoordinator(err)) (broker as CountingBroker)[FAILURES] = failuresOf(broker) + 1;
  throw err;
}

/**
 * Finds a coordinator through `remembered` (one map per cluster): a remembered broker whose
 * failures have not grown since is taken again (through `findBroker`, which connects it if need
 * be); anything else is looked up, and the answer remembered.
 */
export async function rememberedCoordinator(
  remembered: Map<string, Remembered>,
  key: string,
  lookUp: () => Promise<CoordinatorBroker>,
  findBroker: (nodeId: number) => Promise<CoordinatorBroker>,
): Promise<CoordinatorBroker> {
  const known = remembered.get(key);
  if (known && failuresOf(known.broker) === known.failures) {
    try {
      const broker = await findBroker(known.broker.nodeId);
      // The pool may hold a new instance for the node now (after a metadata refresh): count on it.
      if (broker === known.broker) return broker;
    } catch {
      // Gone from the cluster, or unreachable: look it up.
    }
  }
  remembered.delete(key);
  const broker = await lookUp();
  if (hasNodeId(broker)) remembered.set(key, { broker, failures: failuresOf(broker) });
  return broker;
}

/** The Broker calls that go to a group or transaction coordinator. */
const COORDINATOR_CALLS = [
  'heartbeat',
  'joinGroup',
  'syncGroup',
  'leaveGroup',
  'offsetCommit',
  'offsetFetch',
  'initProducerId',
  'addPartitionsToTxn',
  'addOffsetsToTxn',
  'txnOffsetCommit',
  'endTxn',
] as const;

type Call = (this: CoordinatorBroker, ...args: unknown[]) => Promise<unknown>;

const require = createRequire(import.meta.url);
const Cluster = require('kafkajs/src/cluster/index.js') as { prototype: ClusterInstance };
const Broker = require('kafkajs/src/broker/index.js') as { prototype: Record<string, Call> };

/** Where the prototypes keep kafkajs's own methods (a test runner may evaluate this module again in one process). */
const INSTALLED = Symbol.for('sluice.kafkajs.coordinator-cache');
/** Each cluster's remembered coordinators. */
const REMEMBERED = Symbol.for('sluice.kafkajs.remembered-coordinators');

type PatchedCluster = ClusterInstance & { [INSTALLED]?: ClusterInstance['findGroupCoordinator']; [REMEMBERED]?: Map<string, Remembered> };
type PatchedBroker = Record<string, Call> & { [INSTALLED]?: Record<string, Call> };

const clusterProto = Cluster.prototype as PatchedCluster;
const brokerProto = Broker.prototype as PatchedBroker;
clusterProto[INSTALLED] ??= clusterProto.findGroupCoordinator;
brokerProto[INSTALLED] ??= Object.fromEntries(COORDINATOR_CALLS.map((name) => [name, brokerProto[name]!]));
const ownFind = clusterProto[INSTALLED];
const ownCalls = brokerProto[INSTALLED];

clusterProto.findGroupCoordinator = function (this: PatchedCluster, query) {
  const remembered = (this[REMEMBERED] ??= new Map());
  return rememberedCoordinator(
    remembered,
    `${query.coordinatorType ?? 0}:${query.groupId}`,
    () => ownFind.call(this, query),
    (nodeId) => this.findBroker({ nodeId }),
  );
};

for (const name of COORDINATOR_CALLS) {
  const own = ownCalls[name]!;
  brokerProto[name] = async function (this: CoordinatorBroker, ...args: unknown[]) {
    try {
      return await own.apply(this, args);
    } catch (err) {
      return countCoordinatorFailure(this, err);
    }
  };
}

/** kafkajs's own lookup, for the tests to compare with. */
export const kafkajsFindGroupCoordinator = ownFind;
