/**
 * What the Kafka integration suites share: the broker address the global setup provided, unique
 * topic and group names (suites never see each other's data), and an admin connection.
 */
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../src/engine/logger.ts';
import { createAdmin, type KafkaAdmin } from '../../../src/io/kafka/client.ts';
import { parseBrokers, type KafkaConnection } from '../../../src/io/kafka/connection.ts';
import { AssignerProtocol, type Admin } from 'kafkajs';

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

/**
 * The broker's view of a consumer group, through kafkajs' own admin (sluice's offers no group
 * description): its state, and each member's client id and the partitions assigned to it.
 */
export async function groupMembers(admin: Admin, groupId: string): Promise<{ state: string; members: { client: string; partitions: number[] }[] }> {
  const { groups } = await admin.describeGroups([groupId]);
  const g = groups[0];
  if (!g) return { state: 'unknown', members: [] };
  return {
    state: g.state,
    members: g.members.map((m) => {
      const decoded = m.memberAssignment.length ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
      return { client: m.clientId, partitions: Object.values(decoded?.assignment ?? {}).flat().sort((a, b) => a - b) };
    }),
  };
}
