import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { PrepareFailure, type ComponentContext, type OutboundMessage } from '../../../src/engine/component.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { readTopicsToEnd, type KafkaAdmin, type ReadRecord } from '../../../src/io/kafka/client.ts';
import { ensureRepartitionTopic, partitionOf, repartitionFormat, repartitionSink } from '../../../src/io/kafka/repartition.ts';
import { openAdmin, testBrokers, testConnection, uniqueName } from './test-broker.ts';

function rec(i: number): StreamRecord {
  return {
    key: `k${i}`,
    value: { employee_id: `e${i % 17}`, n: i },
    time: 1_700_000_000_000 + i * 1_000,
    headers: { seq: String(i) },
    meta: { topic: 'activities', partition: 0, offset: String(i) },
    position: { source: 'activities', partition: 'activities/activities/0', offset: String(i) },
    ack: Ack.none(),
  };
}

describe('repartition topic against a real broker', () => {
  let admin: KafkaAdmin;
  beforeAll(async () => {
    admin = await openAdmin();
  });
  afterAll(async () => {
    await admin.close();
  });

  it('creates the topic once, keeps it, and refuses another partition count', async () => {
    const topic = uniqueName('app-step-repartition');
    await ensureRepartitionTopic(admin, topic, 3);
    expect((await admin.topicOffsets(topic)).size).toBe(3);
    await ensureRepartitionTopic(admin, topic, 3);
    await expect(ensureRepartitionTopic(admin, topic, 5)).rejects.toThrow(/has 3 partitions, but this pipeline needs 5/);
    await admin.deleteTopics([topic]);
  });

  it('writes records, packed, to the partition of their key and a marker to every partition after them; the format reads both back', async () => {
    const topic = uniqueName('app-step-repartition');
    await ensureRepartitionTopic(admin, topic, 3);
    const clock = new ManualClock(Date.now());
    const ctx: ComponentContext = {
      name: 'step-repartition',
      logger: silentLogger,
      clock,
      metrics: new Metrics(),
      mode: 'run',
      task: { stage: '0', partition: 1, partitions: 2, id: '0_1' },
    };
    const sink = repartitionSink.create({ brokers: testBrokers(), topic, key: ['employee_id'], partitions: 3 }, ctx);
    await sink.open();
    const records = Array.from({ length: 200 }, (_, i) => rec(i));
    const prepared = await sink.prepare(records);
    await sink.write(prepared.filter((p): p is OutboundMessage => !(p instanceof PrepareFailure)));
    await sink.beforeCommit!();
    await sink.close();

    const read: ReadRecord[] = [];
    await readTopicsToEnd(testConnection(), [topic], (r) => read.push(r), silentLogger);
    // One pack per partition (200 small records fit in one), then one marker per partition.
    expect(read).toHaveLength(6);
    const format = repartitionFormat.create({ upstream: '0', tasks: 2 }, ctx);
    const byPartition = new Map<number, ReadRecord[]>();
    for (const r of read) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r]);
    expect([...byPartition.keys()].sort()).toEqual([0, 1, 2]);

    const decoded: { n: number; employee: string }[] = [];
    for (const [partition, list] of byPartition) {
      list.sort((a, b) => Number(a.offset) - Number(b.offset));
      const raw = list.map((r) => ({
        key: r.key,
        value: r.value,
        headers: r.headers,
        timestamp: 0,
        position: { source: 's', partition: `s/${topic}/${partition}`, offset: r.offset },
      }));
      // Exactly one marker per partition, and it is the last message: after all of this task's data.
      const markers = raw.map((m) => format.control!(m));
      expect(markers.filter((m) => m !== undefined)).toHaveLength(1);
      expect(markers[markers.length - 1]).toEqual({ origin: '0_1', time: 1_700_000_000_000 + 199_000, idle: false });
      expect(raw[raw.length - 1]!.headers['sluice-n']).toBe('2');
      for (const m of raw.slice(0, -1)) {
        const pack = format.unpack!(m)!;
        expect(m.headers['sluice-records']).toBe(String(pack.length));
        for (const d of pack) {
          expect(d.origin).toBe('0_1');
          const value = d.value as { employee_id: string; n: number };
          expect(d.headers).toEqual({ seq: String(value.n) });
          expect(partitionOf(JSON.stringify([value.employee_id]), 3)).toBe(partition);
          expect(d.time).toBe(1_700_000_000_000 + value.n * 1_000);
          expect(d.key).toBe(`k${value.n}`);
          decoded.push({ n: value.n, employee: value.employee_id });
        }
        // In the order written.
        const ns = pack.map((d) => (d.value as { n: number }).n);
        expect(ns).toEqual([...ns].sort((a, b) => a - b));
      }
    }
    expect(decoded.map((d) => d.n).sort((a, b) => a - b)).toEqual(records.map((_, i) => i));
    await admin.deleteTopics([topic]);
  });
});
