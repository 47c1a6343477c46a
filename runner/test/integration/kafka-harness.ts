/**
 * Kafka-level pipelines for the integration suites, built straight as engine Graphs (kafka source
 * -> kafka sinks) so they exercise the runtime, the source and the sink without the spec layer.
 */
import { kafkaSink, type KafkaSinkConfig } from '../../src/components/sinks/kafka.ts';
import { kafkaSource, type KafkaSourceConfig } from '../../src/components/sources/kafka.ts';
import type { ComponentContext, Format } from '../../src/engine/component.ts';
import { systemClock } from '../../src/engine/clock.ts';
import { RecordError } from '../../src/engine/errors.ts';
import type { Graph } from '../../src/engine/graph.ts';
import { silentLogger, type Logger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { createGroupConsumer, type FetchedBatch, type FetchedMessage } from '../../src/io/kafka/client.ts';
import { testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';

/** JSON objects with a numeric `id`; anything else is a decode error (goes to `<source>.errors`). */
export const idJsonFormat: Format = {
  decode(message) {
    const text = Buffer.isBuffer(message.value) ? message.value.toString('utf8') : String(message.value);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new RecordError('E_DECODE', `not JSON: ${(err as Error).message}`, message.position.source);
    }
    if (typeof value !== 'object' || value === null || typeof (value as { id?: unknown }).id !== 'number') {
      throw new RecordError('E_DECODE', 'expected an object with a numeric id', message.position.source);
    }
    // Only the format's own metadata: the runtime adds the source's (topic, partition, offset).
    return { key: null, value, meta: { format: 'id-json' } };
  },
};

export interface PassThrough {
  runtime: Runtime;
  metrics: Metrics;
  done: Promise<unknown>;
}

/** in-topic --(kafka source, idJsonFormat)--> out-topic; decode failures --> errors-topic when given. */
export function passThrough(opts: {
  inTopic: string;
  outTopic: string;
  errorsTopic?: string;
  group: string;
  source?: Partial<KafkaSourceConfig>;
  sink?: Partial<KafkaSinkConfig>;
  logger?: Logger;
}): PassThrough {
  const metrics = new Metrics();
  const ctx = (name: string): ComponentContext => ({ name, logger: opts.logger ?? silentLogger, clock: systemClock, metrics, mode: 'run' });
  const brokers = testBrokers().join(',');
  const graph: Graph = {
    name: 'kafka-pass-through',
    nodes: [
      {
        role: 'source',
        name: 'in',
        source: kafkaSource.create(
          { brokers, topic: opts.inTopic, group: opts.group, start: 'earliest', commit_interval: '200ms', ...opts.source },
          ctx('in'),
        ),
        format: idJsonFormat,
      },
      {
        role: 'sink',
        name: 'out',
        sink: kafkaSink.create(
          {
            brokers,
            topic: opts.outTopic,
            key: '$string(id)',
            linger: '5ms',
            headers: { 'source-topic': '$meta.topic', 'source-partition': '$meta.partition', 'source-offset': '$meta.offset', format: '$meta.format' },
            ...opts.sink,
          },
          ctx('out'),
        ),
        inputs: [{ node: 'in', port: 'out' }],
      },
    ],
  };
  if (opts.errorsTopic) {
    graph.nodes.push({
      role: 'sink',
      name: 'dead-letters',
      sink: kafkaSink.create({ brokers, topic: opts.errorsTopic, value_format: 'raw', headers: { error: '$meta.error.message' } }, ctx('dead-letters')),
      inputs: [{ node: 'in', port: 'errors' }],
    });
  }
  const runtime = new Runtime(graph, { logger: opts.logger ?? silentLogger, metrics, clock: systemClock, tickMs: 0 });
  const done = runtime.run();
  done.catch(() => {});
  return { runtime, metrics, done };
}

/** Reads a topic from the beginning, handing each fetched batch to `onBatch`, until `enough` says so. */
async function readUntil(topic: string, onBatch: (batch: FetchedBatch) => void, enough: () => boolean, timeoutMs: number): Promise<void> {
  const consumer = createGroupConsumer(testConnection('sluice-test-reader'), { groupId: uniqueName('reader'), topics: [topic], fromBeginning: true, concurrency: 8 }, silentLogger);
  await consumer.start({
    onBatch: async (b) => onBatch(b),
    onRebalancing: () => {},
    onAssignment: () => {},
    onCrash: () => {},
  });
  try {
    await waitFor(`messages on ${topic}`, enough, timeoutMs);
  } finally {
    await consumer.disconnect();
  }
}

/** Reads a topic from the beginning until `enough` says so; returns every message read. */
export async function readTopic(topic: string, enough: (messages: FetchedMessage[]) => boolean, timeoutMs = 60_000): Promise<FetchedMessage[]> {
  const messages: FetchedMessage[] = [];
  await readUntil(topic, (b) => messages.push(...b.messages), () => enough(messages), timeoutMs);
  return messages;
}

/** Like readTopic, with the partition each message was read from. */
export async function readTopicByPartition(topic: string, enough: (count: number) => boolean, timeoutMs = 60_000): Promise<Map<number, FetchedMessage[]>> {
  const byPartition = new Map<number, FetchedMessage[]>();
  let count = 0;
  const add = (b: FetchedBatch) => {
    let list = byPartition.get(b.partition);
    if (!list) byPartition.set(b.partition, (list = []));
    list.push(...b.messages);
    count += b.messages.length;
  };
  await readUntil(topic, add, () => enough(count), timeoutMs);
  return byPartition;
}

/** The `id`s of JSON values, with how often each occurs. */
export function idCounts(messages: readonly FetchedMessage[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const m of messages) {
    const id = (JSON.parse(m.value!.toString('utf8')) as { id: number }).id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}
