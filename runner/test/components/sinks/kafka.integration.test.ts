/**
 * The kafka sink against a real broker: a message the topic refuses as too large is refused alone,
 * the rest of the batch is written, and raw values arrive byte for byte.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaSink } from '../../../src/components/sinks/kafka.ts';
import type { ComponentContext } from '../../../src/engine/component.ts';
import { systemClock } from '../../../src/engine/clock.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { readTopicsToEnd, type KafkaAdmin, type ReadRecord } from '../../../src/io/kafka/client.ts';
import { openAdmin, testBrokers, testConnection, uniqueName } from '../../io/kafka/test-broker.ts';

const ctx: ComponentContext = { name: 'dead-letters', logger: silentLogger, clock: systemClock, metrics: new Metrics(), mode: 'run' };

async function readAll(topic: string): Promise<ReadRecord[]> {
  const out: ReadRecord[] = [];
  await readTopicsToEnd(testConnection(), [topic], (r) => out.push(r), silentLogger);
  return out;
}

describe('kafka sink on a real broker', () => {
  let admin: KafkaAdmin;
  beforeAll(async () => {
    admin = await openAdmin();
  });
  afterAll(async () => {
    await admin.close();
  });

  it('refuses the message a topic refuses as too large, and writes the others of its batch', async () => {
    const topic = uniqueName('sink-too-large');
    await admin.createTopics([{ topic, configs: { 'max.message.bytes': '4096' } }]);
    const sink = kafkaSink.create({ brokers: testBrokers().join(','), topic, compression: 'none', linger: '0ms' }, ctx);
    await sink.open();
    try {
      // Random bytes as hex do not compress below the topic's limit.
      const result = await sink.write([
        { topic, key: 'a', value: { n: 1 } },
        { topic, key: 'b', value: randomBytes(8192).toString('hex') },
        { topic, key: 'c', value: { n: 3 } },
      ]);
      expect(result?.refused.map((r) => [r.index, r.error.message])).toEqual([[1, expect.stringMatching(/^the message of 16\d{3} bytes was refused by the broker as too large/)]]);
    } finally {
      await sink.close();
    }
    // At-least-once: `a` may be there twice (the refused request's other messages are sent again).
    const keys = [...new Set((await readAll(topic)).map((r) => r.key?.toString()))];
    expect(keys).toEqual(['a', 'c']);
  });

  it('writes a raw value byte for byte, invalid UTF-8 included', async () => {
    const topic = uniqueName('sink-raw');
    await admin.createTopics([{ topic }]);
    const sink = kafkaSink.create({ brokers: testBrokers().join(','), topic, value_format: 'raw', linger: '0ms' }, ctx);
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x7d]);
    await sink.open();
    try {
      await sink.write([
        { topic, key: null, value: 'this is not JSON' },
        { topic, key: null, value: bytes },
      ]);
    } finally {
      await sink.close();
    }
    const values = (await readAll(topic)).map((r) => r.value);
    expect(values).toEqual([Buffer.from('this is not JSON'), bytes]);
  });
});
