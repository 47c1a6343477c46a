/**
 * Pipelines on a real broker: poison messages, a runner restarted mid-stream, a consumer group
 * that rebalances, and a broker restarted under a running pipeline. At-least-once everywhere:
 * nothing is lost; duplicates are allowed and counted.
 */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaSource } from '../../src/components/sources/kafka.ts';
import { systemClock } from '../../src/engine/clock.ts';
import type { ComponentContext, Sink } from '../../src/engine/component.ts';
import type { Graph } from '../../src/engine/graph.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { createProducer, type KafkaAdmin, type ProducedMessage } from '../../src/io/kafka/client.ts';
import { openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import { idCounts, idJsonFormat, passThrough, readTopic, readTopicByPartition } from './kafka-harness.ts';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function messages(topic: string, from: number, count: number): ProducedMessage[] {
  return Array.from({ length: count }, (_, i) => ({ topic, key: String(from + i), value: JSON.stringify({ id: from + i, pad: 'x'.repeat(100) }) }));
}

function duplicates(counts: Map<number, number>): number {
  let d = 0;
  for (const n of counts.values()) d += n - 1;
  return d;
}

describe('kafka pipelines on a real broker', () => {
  let admin: KafkaAdmin;
  beforeAll(async () => {
    admin = await openAdmin();
  });
  afterAll(async () => {
    await admin.close();
  });

  it('routes poison messages (not JSON, wrong shape) and a far too large one to the errors port, whose raw dead letters keep the original bytes, and the partition keeps flowing', async () => {
    const inTopic = uniqueName('poison-in');
    const outTopic = uniqueName('poison-out');
    const errorsTopic = uniqueName('poison-errors');
    const group = uniqueName('g');
    await admin.createTopics([{ topic: inTopic, partitions: 1, configs: { 'retention.ms': '-1', 'max.message.bytes': '8000000' } }]);
    const producer = createProducer(testConnection(), {}, silentLogger);
    await producer.send([
      ...messages(inTopic, 0, 10),
      { topic: inTopic, key: 'bad-1', value: 'this is not JSON {' },
      ...messages(inTopic, 10, 10),
      { topic: inTopic, key: 'bad-2', value: '{"wrong":"shape"}' },
      { topic: inTopic, key: 'huge', value: JSON.stringify({ id: 999_999, blob: 'y'.repeat(3_000_000) }) },
      ...messages(inTopic, 20, 10),
    ]);
    await producer.close();

    const p = passThrough({ inTopic, outTopic, errorsTopic, group });
    const out = await readTopic(outTopic, (ms) => ms.length >= 30);
    const dead = await readTopic(errorsTopic, (ms) => ms.length >= 3);
    await waitFor('commit to the end of the input', async () => (await admin.committedOffsets(group, inTopic)).get(0) === '33');
    await p.runtime.stop();
    const outcome = (await p.done) as { failed: number };

    expect([...idCounts(out).keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // $meta carries the Kafka position next to the format's own metadata.
    const first = out.find((m) => JSON.parse(m.value!.toString()).id === 0)!;
    expect(first.headers).toMatchObject({ 'source-topic': inTopic, 'source-partition': '0', 'source-offset': '0', format: 'id-json' });
    expect(dead.map((m) => m.key!.toString()).sort()).toEqual(['bad-1', 'bad-2', 'huge']);
    // value_format: raw: the dead letter holds the original bytes, not a JSON string of them.
    expect(dead.find((m) => m.key!.toString() === 'bad-1')!.value!.toString()).toBe('this is not JSON {');
    expect(dead.every((m) => m.headers.error && m.headers.error.length > 0)).toBe(true);
    // The too large one: its value left out, its size and where to read it in headers.
    const huge = dead.find((m) => m.key!.toString() === 'huge')!;
    expect(huge.value).toBeNull();
    expect(huge.headers).toMatchObject({ 'sluice-error-size': String(3_000_000 + 27), 'sluice-error-topic': inTopic, 'sluice-error-partition': '0', 'sluice-error-offset': '22' });
    expect(outcome.failed).toBe(3);
    expect(p.metrics.counter('sluice_kafka_oversized_total', { node: 'in' })).toBe(1);
    await admin.deleteTopics([inTopic, outTopic, errorsTopic]);
  });

  it('loses nothing when the runner is restarted mid-stream; counts the duplicates', async () => {
    const inTopic = uniqueName('restart-in');
    const outTopic = uniqueName('restart-out');
    const group = uniqueName('g');
    const total = 6_000;
    await admin.createTopics([{ topic: inTopic, partitions: 3, configs: { 'retention.ms': '-1' } }]);
    const producer = createProducer(testConnection(), {}, silentLogger);
    await producer.send(messages(inTopic, 0, total / 2));

    const first = passThrough({ inTopic, outTopic, group });
    await readTopic(outTopic, (ms) => ms.length >= 500);
    // The second half arrives while the first runner stops and the second one starts.
    const producing = producer.send(messages(inTopic, total / 2, total / 2));
    await first.runtime.stop();
    await first.done;
    const second = passThrough({ inTopic, outTopic, group });
    await producing;
    await producer.close();

    const out = await readTopic(outTopic, (ms) => idCounts(ms).size >= total, 90_000);
    await second.runtime.stop();
    await second.done;
    const counts = idCounts(out);
    expect(counts.size).toBe(total);
    console.info(`runner restart: ${total} events, ${out.length} written, ${duplicates(counts)} duplicates`);
    // A graceful stop commits what completed: duplicates are at most what was in flight.
    expect(duplicates(counts)).toBeLessThan(total / 2);
    await admin.deleteTopics([inTopic, outTopic]);
  });

  it('with max_in_flight 4, writes every message once and keeps each source partition\'s order in every output partition', async () => {
    const inTopic = uniqueName('inflight-in');
    const outTopic = uniqueName('inflight-out');
    const total = 12_000;
    await admin.createTopics([
      { topic: inTopic, partitions: 3, configs: { 'retention.ms': '-1' } },
      { topic: outTopic, partitions: 4, configs: { 'retention.ms': '-1' } },
    ]);
    const producer = createProducer(testConnection(), {}, silentLogger);
    await producer.send(messages(inTopic, 0, total));
    await producer.close();
    // Small batches, so that several writes are out at once while the backlog drains.
    const p = passThrough({ inTopic, outTopic, group: uniqueName('g'), sink: { max_in_flight: 4, batch_size: 100, linger: '20ms' } });
    const byPartition = await readTopicByPartition(outTopic, (n) => n >= total, 90_000);
    await p.runtime.stop();
    await p.done;
    const all = [...byPartition.values()].flat();
    const counts = idCounts(all);
    expect(counts.size).toBe(total);
    expect(duplicates(counts)).toBe(0);
    // The order Kafka gave the input (its offsets), not anything sluice computed.
    for (const [partition, list] of byPartition) {
      const last = new Map<string, bigint>();
      for (const m of list) {
        const from = m.headers['source-partition']!;
        const offset = BigInt(m.headers['source-offset']!);
        const before = last.get(from);
        if (before !== undefined) expect(offset, `output partition ${partition}, source partition ${from}`).toBeGreaterThan(before);
        last.set(from, offset);
      }
    }
    await admin.deleteTopics([inTopic, outTopic]);
  });

  it('shares partitions between two runners of one group and loses nothing across the rebalance', async () => {
    const inTopic = uniqueName('rebalance-in');
    const outTopic = uniqueName('rebalance-out');
    const group = uniqueName('g');
    const total = 8_000;
    await admin.createTopics([{ topic: inTopic, partitions: 4, configs: { 'retention.ms': '-1' } }]);
    const producer = createProducer(testConnection(), {}, silentLogger);
    await producer.send(messages(inTopic, 0, total / 2));
    const a = passThrough({ inTopic, outTopic, group });
    await readTopic(outTopic, (ms) => ms.length >= 1000);
    const b = passThrough({ inTopic, outTopic, group });
    // The second half trickles in over several seconds, so it lands after the group rebalanced.
    for (let i = total / 2; i < total; i += 100) {
      await producer.send(messages(inTopic, i, 100));
      await new Promise((r) => setTimeout(r, 100));
    }
    await producer.close();
    const out = await readTopic(outTopic, (ms) => idCounts(ms).size >= total, 90_000);
    await waitFor('both runners took part', () => b.runtime.stats().recordsIn > 0 && a.runtime.stats().recordsIn > 0);
    await Promise.all([a.runtime.stop(), b.runtime.stop()]);
    await Promise.all([a.done, b.done]);
    const counts = idCounts(out);
    expect(counts.size).toBe(total);
    console.info(`rebalance: ${total} events, ${duplicates(counts)} duplicates`);
    await admin.deleteTopics([inTopic, outTopic]);
  });

  it('stops fetching while a slow sink holds the pipeline full, then catches up', async () => {
    const inTopic = uniqueName('backpressure-in');
    const group = uniqueName('g');
    const total = 60_000;
    await admin.createTopics([{ topic: inTopic, partitions: 2, configs: { 'retention.ms': '-1' } }]);
    const producer = createProducer(testConnection(), {}, silentLogger);
    await producer.send(messages(inTopic, 0, total));
    await producer.close();

    let written = 0;
    let slow = true;
    const slowSink: Sink = {
      open: async () => {},
      prepare: (records) => records.map((r) => ({ key: null, value: r.value })),
      write: async (ms) => {
        if (slow) await new Promise((r) => setTimeout(r, 500));
        written += ms.length;
      },
      close: async () => {},
    };
    const metrics = new Metrics();
    const ctx: ComponentContext = { name: 'in', logger: silentLogger, clock: systemClock, metrics, mode: 'run' };
    const graph: Graph = {
      name: 'backpressure',
      nodes: [
        { role: 'source', name: 'in', source: kafkaSource.create({ brokers: testBrokers().join(','), topic: inTopic, group, start: 'earliest' }, ctx), format: idJsonFormat },
        { role: 'sink', name: 'slow', sink: slowSink, inputs: [{ node: 'in', port: 'out' }] },
      ],
    };
    const runtime = new Runtime(graph, { logger: silentLogger, metrics, clock: systemClock, tickMs: 0, sinkQueueRecords: 2_000, sinkBatchRecords: 500 });
    const done = runtime.run();
    await new Promise((r) => setTimeout(r, 3_000));
    const read1 = runtime.stats().recordsIn;
    const written1 = written;
    await new Promise((r) => setTimeout(r, 3_000));
    const read2 = runtime.stats().recordsIn;
    const written2 = written;
    // Unthrottled, this pipeline reads all 60,000 in about a second. Held back by the sink, reading
    // follows writing: between the two looks it reads about what was written, plus at most one
    // fetch (~6,000 of these messages per partition batch).
    expect(read2).toBeLessThan(total);
    expect(read2 - read1).toBeLessThanOrEqual(written2 - written1 + 8_000);
    slow = false;
    await waitFor('catching up', () => written >= total, 60_000);
    await runtime.stop();
    await done;
    console.info(`backpressure: slow sink, read ${read1} -> ${read2} while written ${written1} -> ${written2}; then all ${total} written`);
    await admin.deleteTopics([inTopic]);
  });

  it('rides out a broker restart under a running pipeline: reconnects and loses nothing', async () => {
    // This restarts the broker scripts/kafka.sh manages; an external KAFKA_BROKERS cluster cannot be restarted here.
    const status = await run('bash', [resolve(repo, 'scripts/kafka.sh'), 'status'], { cwd: repo }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    expect(status.stdout, 'the broker-restart test needs the broker of scripts/kafka.sh (unset KAFKA_BROKERS)').toMatch(/^running/);

    const inTopic = uniqueName('bounce-in');
    const outTopic = uniqueName('bounce-out');
    const group = uniqueName('g');
    await admin.createTopics([
      { topic: inTopic, partitions: 2, configs: { 'retention.ms': '-1' } },
      { topic: outTopic, partitions: 2, configs: { 'retention.ms': '-1' } },
    ]);
    const p = passThrough({ inTopic, outTopic, group });
    const producer = createProducer(testConnection(), { retryForMs: 120_000 }, silentLogger);
    let sent = 0;
    let producing = true;
    const loop = (async () => {
      while (producing) {
        await producer.send(messages(inTopic, sent, 100));
        sent += 100;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await waitFor('some output', async () => p.runtime.stats().recordsOut > 300);
    await run('bash', [resolve(repo, 'scripts/kafka.sh'), 'stop'], { cwd: repo });
    await new Promise((r) => setTimeout(r, 2_000));
    await run('bash', [resolve(repo, 'scripts/kafka.sh'), 'start'], { cwd: repo });
    const sentBeforeRestart = sent;
    await waitFor('output after the restart', async () => p.runtime.stats().recordsOut > sentBeforeRestart + 300, 90_000);
    producing = false;
    await loop;
    await producer.close();
    const out = await readTopic(outTopic, (ms) => idCounts(ms).size >= sent, 90_000);
    await p.runtime.stop();
    await p.done;
    const counts = idCounts(out);
    expect(counts.size).toBe(sent);
    console.info(`broker restart: ${sent} events, ${duplicates(counts)} duplicates`);
    await admin.deleteTopics([inTopic, outTopic]);
  });
});
