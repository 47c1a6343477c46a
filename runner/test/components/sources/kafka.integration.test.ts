/**
 * The kafka source against a real broker, with the pipeline played by hand: which offsets it
 * commits depends only on which batches were acknowledged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaSource, type KafkaSourceConfig } from '../../../src/components/sources/kafka.ts';
import type { ComponentContext, RawBatch, SourceOutput } from '../../../src/engine/component.ts';
import { systemClock } from '../../../src/engine/clock.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { createProducer, type KafkaAdmin } from '../../../src/io/kafka/client.ts';
import { openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../../io/kafka/test-broker.ts';

/** Takes one reference per message and seals, as the runtime does; acknowledges only what the test says. */
class HandPipeline implements SourceOutput {
  readonly batches: RawBatch[] = [];
  readonly assigned: string[] = [];
  constructor(private readonly acknowledge: (offsets: string[]) => boolean) {}
  async emit(batch: RawBatch): Promise<void> {
    batch.ack.retain(batch.messages.length);
    batch.ack.seal();
    this.batches.push(batch);
    if (this.acknowledge(batch.messages.map((m) => m.position.offset))) batch.ack.release(batch.messages.length);
  }
  assign(partitions: string[]): void {
    this.assigned.push(...partitions);
  }
  revoke(): void {}
  get offsets(): number[] {
    return this.batches.flatMap((b) => b.messages.map((m) => Number(m.position.offset)));
  }
}

function ctx(): ComponentContext {
  return { name: 'activities', logger: silentLogger, clock: systemClock, metrics: new Metrics(), mode: 'run' };
}

describe('kafka source on a real broker', () => {
  let admin: KafkaAdmin;
  beforeAll(async () => {
    admin = await openAdmin();
  });
  afterAll(async () => {
    await admin.close();
  });

  async function seed(topic: string, count: number, partitions = 1): Promise<void> {
    await admin.createTopics([{ topic, partitions, configs: { 'retention.ms': '-1' } }]);
    const producer = createProducer(testConnection(), { chunkSize: 50 }, silentLogger);
    // Small produce requests make several fetch batches per partition.
    for (let i = 0; i < count; i += 50) {
      await producer.send(Array.from({ length: Math.min(50, count - i) }, (_, j) => ({ topic, key: null, value: JSON.stringify({ id: i + j }) })));
    }
    await producer.close();
  }

  function source(topic: string, group: string): KafkaSource {
    const config: KafkaSourceConfig = { brokers: testBrokers().join(','), topic, group, start: 'earliest', commit_interval: '100ms' };
    return new KafkaSource(config, testConnection(), ctx());
  }

  it('commits only acknowledged offsets: what was never acknowledged is read again by the next consumer', async () => {
    const topic = uniqueName('src-unacked');
    const group = uniqueName('g');
    await admin.createTopics([{ topic, partitions: 1, configs: { 'retention.ms': '-1' } }]);
    const producer = createProducer(testConnection(), {}, silentLogger);

    // First run: every batch is acknowledged except the one holding offset 230. Messages arrive in
    // rounds of 100 while the source runs, so fetches (and so batches) stay around 100 messages.
    const first = new HandPipeline((offsets) => !offsets.includes('230'));
    const s1 = source(topic, group);
    const run1 = s1.run(first);
    for (let round = 0; round < 5; round++) {
      await producer.send(Array.from({ length: 100 }, (_, j) => ({ topic, key: null, value: JSON.stringify({ id: round * 100 + j }) })));
      await waitFor(`round ${round}`, () => first.offsets.length >= (round + 1) * 100);
    }
    await producer.close();
    const held = first.batches.find((b) => b.messages.some((m) => m.position.offset === '230'))!;
    const firstHeld = Number(held.messages[0]!.position.offset);
    expect(firstHeld).toBeGreaterThan(0);
    await waitFor('a commit up to the held batch', async () => (await admin.committedOffsets(group, topic)).get(0) === String(firstHeld));
    // Later batches were acknowledged, but the commit must not pass the held one.
    await new Promise((r) => setTimeout(r, 300));
    expect((await admin.committedOffsets(group, topic)).get(0)).toBe(String(firstHeld));
    await s1.stop();
    await run1;
    await s1.close();
    expect((await admin.committedOffsets(group, topic)).get(0)).toBe(String(firstHeld));

    // Second run, same group: starts exactly at the first unacknowledged message.
    const second = new HandPipeline(() => true);
    const s2 = source(topic, group);
    const run2 = s2.run(second);
    await waitFor('the rest again', () => second.offsets.length >= 500 - firstHeld);
    expect(second.offsets).toEqual(Array.from({ length: 500 - firstHeld }, (_, i) => firstHeld + i));
    await waitFor('everything committed', async () => (await admin.committedOffsets(group, topic)).get(0) === '500');
    await s2.stop();
    await run2;
    await s2.close();
    await admin.deleteTopics([topic]);
  });

  it('reads partitions concurrently, each in order, and names them <source>/<topic>/<partition>', async () => {
    const topic = uniqueName('src-partitions');
    await seed(topic, 600, 3);
    const out = new HandPipeline(() => true);
    const s = source(topic, uniqueName('g'));
    const run = s.run(out);
    await waitFor('600 messages', () => out.offsets.length >= 600);
    await s.stop();
    await run;
    await s.close();
    expect(new Set(out.assigned)).toEqual(new Set([0, 1, 2].map((p) => `activities/${topic}/${p}`)));
    for (const p of [0, 1, 2]) {
      const offsets = out.batches.filter((b) => b.partition === `activities/${topic}/${p}`).flatMap((b) => b.messages.map((m) => Number(m.position.offset)));
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
    const ids = out.batches.flatMap((b) => b.messages.map((m) => JSON.parse((m.value as Buffer).toString()).id as number));
    expect(new Set(ids).size).toBe(600);
    await admin.deleteTopics([topic]);
  });

  it('subscribes by topic_pattern to every matching topic', async () => {
    const prefix = uniqueName('src-pattern');
    await seed(`${prefix}.a`, 5);
    await seed(`${prefix}.b`, 7);
    await seed(`${prefix}-other`, 3);
    const out = new HandPipeline(() => true);
    const config: KafkaSourceConfig = {
      brokers: testBrokers().join(','),
      // The prefix is [a-z0-9-] only: no regex metacharacters to escape.
      topic_pattern: `^${prefix}\\..*`,
      group: uniqueName('g'),
      start: 'earliest',
    };
    const s = new KafkaSource(config, testConnection(), ctx());
    const run = s.run(out);
    await waitFor('12 messages', () => out.offsets.length >= 12);
    await new Promise((r) => setTimeout(r, 300));
    await s.stop();
    await run;
    await s.close();
    expect(new Set(out.batches.map((b) => b.partition))).toEqual(new Set([`activities/${prefix}.a/0`, `activities/${prefix}.b/0`]));
    expect(out.offsets).toHaveLength(12);
    await admin.deleteTopics([`${prefix}.a`, `${prefix}.b`, `${prefix}-other`]);
  });

  it('starts at the end of the topic with start: latest when the group has no offsets', async () => {
    const topic = uniqueName('src-latest');
    await seed(topic, 20);
    const out = new HandPipeline(() => true);
    const config: KafkaSourceConfig = { brokers: testBrokers().join(','), topic, group: uniqueName('g'), start: 'latest' };
    const s = new KafkaSource(config, testConnection(), ctx());
    const run = s.run(out);
    await waitFor('assignment', () => out.assigned.length === 1);
    await new Promise((r) => setTimeout(r, 500));
    const producer = createProducer(testConnection(), {}, silentLogger);
    await producer.send([{ topic, key: null, value: '{"id":999}' }]);
    await producer.close();
    await waitFor('the new message', () => out.offsets.length >= 1);
    expect(out.offsets).toEqual([20]);
    await s.stop();
    await run;
    await s.close();
    await admin.deleteTopics([topic]);
  });
});
