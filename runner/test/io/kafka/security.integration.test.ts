/**
 * SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and TLS (CA, client certificate, verification) against
 * the real broker's secured listeners, which scripts/kafka.sh sets up with test credentials and a CA
 * of its own. Then the kafka source and sink, configured as a spec would configure them.
 */
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaSink } from '../../../src/components/sinks/kafka.ts';
import { kafkaSource } from '../../../src/components/sources/kafka.ts';
import { Ack } from '../../../src/engine/ack.ts';
import { requireMessages, type ComponentContext, type RawBatch } from '../../../src/engine/component.ts';
import { systemClock } from '../../../src/engine/clock.ts';
import { ConnectionError } from '../../../src/engine/errors.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { createGroupConsumer, createProducer, type KafkaAdmin } from '../../../src/io/kafka/client.ts';
import type { KafkaConnection, SaslMechanism } from '../../../src/io/kafka/connection.ts';
import { openAdmin, uniqueName, waitFor } from './test-broker.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The secured listeners of the broker scripts/kafka.sh runs; an external KAFKA_BROKERS cluster has none we know of. */
function brokerInfo(): Record<string, string> {
  const text = execFileSync('bash', [resolve(repo, 'scripts/kafka.sh'), 'info'], { cwd: repo, encoding: 'utf8' });
  const info = Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const status = execFileSync('bash', [resolve(repo, 'scripts/kafka.sh'), 'status'], { cwd: repo, encoding: 'utf8' }).trim();
  if (!status.startsWith('running') || !info.tls_brokers) {
    throw new Error('the security tests need the broker of scripts/kafka.sh with its TLS listener (openssl); unset KAFKA_BROKERS or start it');
  }
  return info;
}

async function roundTrip(conn: KafkaConnection, topic: string): Promise<string[]> {
  const producer = createProducer(conn, {}, silentLogger);
  await producer.connect();
  await producer.send([1, 2, 3].map((i) => ({ topic, key: null, value: `m${i}` })));
  await producer.close();
  const seen: string[] = [];
  const consumer = createGroupConsumer(conn, { groupId: uniqueName('g'), topics: [topic], fromBeginning: true, concurrency: 1 }, silentLogger);
  await consumer.start({
    onBatch: async (b) => {
      seen.push(...b.messages.map((m) => m.value!.toString()));
    },
    onRebalancing: () => {},
    onAssignment: () => {},
    onCrash: () => {},
  });
  try {
    await waitFor('3 messages', () => seen.length >= 3);
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

describe('kafka client security against the real broker', () => {
  let info: Record<string, string>;
  let admin: KafkaAdmin;
  const topics: string[] = [];
  const topic = async () => {
    const t = uniqueName('secure');
    topics.push(t);
    await admin.createTopics([{ topic: t }]);
    return t;
  };
  beforeAll(async () => {
    info = brokerInfo();
    admin = await openAdmin();
  });
  afterAll(async () => {
    await admin.deleteTopics(topics);
    await admin.close();
  });

  const sasl = (mechanism: SaslMechanism, password = info.sasl_password!): KafkaConnection => ({
    brokers: [info.sasl_brokers!],
    clientId: 'sluice-test-sasl',
    sasl: { mechanism, username: info.sasl_user!, password },
  });

  it.each(['plain', 'scram-sha-256', 'scram-sha-512'] as const)('authenticates with SASL %s and round-trips messages', async (mechanism) => {
    expect(await roundTrip(sasl(mechanism), await topic())).toEqual(['m1', 'm2', 'm3']);
  });

  it('refuses a wrong password quickly, as a ConnectionError', async () => {
    const producer = createProducer(sasl('scram-sha-512', 'not-the-password'), {}, silentLogger);
    const started = Date.now();
    await expect(producer.connect()).rejects.toBeInstanceOf(ConnectionError);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('connects over TLS with the CA and a client certificate given as file paths, or as PEM text', async () => {
    const byPath: KafkaConnection = {
      brokers: [info.tls_brokers!],
      clientId: 'sluice-test-tls',
      tls: { ca: info.tls_ca!, cert: info.tls_client_cert!, key: info.tls_client_key! },
    };
    expect(await roundTrip(byPath, await topic())).toEqual(['m1', 'm2', 'm3']);
    const { readFileSync } = await import('node:fs');
    const byText: KafkaConnection = {
      ...byPath,
      tls: { ca: readFileSync(info.tls_ca!, 'utf8'), cert: readFileSync(info.tls_client_cert!, 'utf8'), key: readFileSync(info.tls_client_key!, 'utf8') },
    };
    expect(await roundTrip(byText, await topic())).toEqual(['m1', 'm2', 'm3']);
  });

  it('refuses a broker certificate it cannot verify, unless reject_unauthorized is off', async () => {
    const unverified: KafkaConnection = {
      brokers: [info.tls_brokers!],
      clientId: 'sluice-test-tls',
      connectionTimeoutMs: 3_000,
      tls: { cert: info.tls_client_cert!, key: info.tls_client_key! },
    };
    await expect(createProducer(unverified, {}, silentLogger).connect()).rejects.toBeInstanceOf(ConnectionError);
    const trusting: KafkaConnection = { ...unverified, tls: { cert: info.tls_client_cert!, key: info.tls_client_key!, rejectUnauthorized: false } };
    expect(await roundTrip(trusting, await topic())).toEqual(['m1', 'm2', 'm3']);
  });
});

describe('kafka source and sink configured as in a spec, through SASL and TLS', () => {
  it('the sink writes with SCRAM-SHA-512 and the source reads with mutual TLS', async () => {
    const info = brokerInfo();
    const admin = await openAdmin();
    const t = uniqueName('secure-components');
    await admin.createTopics([{ topic: t }]);
    const metrics = new Metrics();
    const ctx = (name: string): ComponentContext => ({ name, logger: silentLogger, clock: systemClock, metrics, mode: 'run' });

    const sink = kafkaSink.create(
      { brokers: info.sasl_brokers!, topic: t, key: 'id', sasl: { mechanism: 'scram-sha-512', username: info.sasl_user!, password: info.sasl_password! } },
      ctx('out'),
    );
    await sink.open();
    const records = [1, 2].map((id) => ({ key: null, value: { id }, time: 0, headers: {}, meta: {}, position: { source: 's', partition: 's/0', offset: String(id) }, ack: Ack.none() }));
    await sink.write(requireMessages(await sink.prepare(records)));
    await sink.close();

    const source = kafkaSource.create(
      { brokers: info.tls_brokers!, topic: t, group: uniqueName('g'), start: 'earliest', tls: { ca: info.tls_ca!, cert: info.tls_client_cert!, key: info.tls_client_key! } },
      ctx('in'),
    );
    const batches: RawBatch[] = [];
    const run = source.run({
      emit: async (b) => {
        b.ack.retain(b.messages.length);
        b.ack.seal();
        batches.push(b);
        b.ack.release(b.messages.length);
      },
      assign: () => {},
      revoke: () => {},
    });
    await waitFor('2 messages', () => batches.flatMap((b) => b.messages).length >= 2);
    await source.stop();
    await run;
    await source.close();
    const got = batches.flatMap((b) => b.messages).map((m) => ({ key: (m.key as Buffer).toString(), value: JSON.parse((m.value as Buffer).toString()) }));
    expect(got).toEqual([
      { key: '1', value: { id: 1 } },
      { key: '2', value: { id: 2 } },
    ]);
    await admin.deleteTopics([t]);
    await admin.close();
  });
});
