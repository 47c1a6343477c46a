/**
 * What the Kafka integration suites share: the broker address the global setup provided, unique
 * topic and group names (suites never see each other's data), and an admin connection.
 */
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../src/engine/logger.ts';
import { createAdmin, type KafkaAdmin } from '../../../src/io/kafka/client.ts';
import { parseBrokers, type KafkaConnection } from '../../../src/io/kafka/connection.ts';

export function testBrokers(): string[] {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set: the integration global setup could not start Kafka (see its log)');
  return parseBrokers(brokers);
}

export function testConnection(clientId = 'sluice-test'): KafkaConnection {
  return { brokers: testBrokers(), clientId };
}

/** A name no other run used: `<prefix>-<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function openAdmin(): Promise<KafkaAdmin> {
  const admin = createAdmin(testConnection('sluice-test-admin'), silentLogger);
  await admin.connect();
  return admin;
}

/** Polls `check` until it returns true or `timeoutMs` passes; throws with `what` on timeout. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
