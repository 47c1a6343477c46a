/**
 * No Docker engine runs in CI, so the users' stack is checked for structure: the services the
 * README promises, their images, health checks, start order, the seed's ports, PostgreSQL's
 * logical WAL and Kafka's KRaft settings, and that the runner image copies what it runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
}

const compose = parse(readFileSync(resolve(repo, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;
const svc = (name: string): Service => {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

describe('docker-compose.yml', () => {
  it('has the whole stack, and no ZooKeeper', () => {
    expect(Object.keys(services).sort()).toEqual(['connect', 'kafka', 'kafka-ui', 'pgadmin', 'postgres', 'register-connector', 'sluice']);
    expect(JSON.stringify(compose).toLowerCase()).not.toContain('zookeeper');
  });

  it('pins the images the README names', () => {
    expect(svc('postgres').image).toBe('postgres:15');
    expect(svc('kafka').image).toBe('apache/kafka:3.9.1');
    expect(svc('connect').image).toMatch(/^quay\.io\/debezium\/connect:2\.7/);
    expect(svc('kafka-ui').image).toMatch(/^provectuslabs\/kafka-ui/);
    expect(svc('pgadmin').image).toMatch(/^dpage\/pgadmin4/);
  });

  it('publishes the seed ports', () => {
    const published = (s: string) => (svc(s).ports ?? []).map((p) => p.split(':')[0]);
    expect(published('postgres')).toEqual(['5432']);
    expect(published('kafka')).toEqual(['9092']);
    expect(published('connect')).toEqual(['8083']);
    expect(published('kafka-ui')).toEqual(['8081']);
    expect(published('pgadmin')).toEqual(['8080']);
  });

  it('runs PostgreSQL with logical WAL and the init scripts', () => {
    const pg = svc('postgres');
    expect(pg.command?.join(' ')).toMatch(/-c wal_level=logical/);
    expect(pg.volumes).toContain('./init-scripts:/docker-entrypoint-initdb.d:ro');
    expect(existsSync(resolve(repo, 'init-scripts'))).toBe(true);
  });

  it('runs Kafka in KRaft mode with an internal listener kafka:29092 and the host one on 9092', () => {
    const env = svc('kafka').environment!;
    expect(env.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(env.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe('1@kafka:9093');
    expect(String(env.KAFKA_ADVERTISED_LISTENERS).split(',')).toEqual(['INTERNAL://kafka:29092', 'EXTERNAL://localhost:9092']);
    expect(env.KAFKA_INTER_BROKER_LISTENER_NAME).toBe('INTERNAL');
    expect(String(env.CLUSTER_ID)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(env.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR).toBe(1);
  });

  it('gives every long-running service but the UIs and the runner a health check', () => {
    for (const name of ['postgres', 'kafka', 'connect']) expect(svc(name).healthcheck?.test.length, name).toBeGreaterThan(0);
  });

  it('starts things in order: Connect after Kafka and PostgreSQL, the connector after Connect, sluice after both', () => {
    expect(svc('connect').depends_on).toEqual({ kafka: { condition: 'service_healthy' }, postgres: { condition: 'service_healthy' } });
    expect(svc('register-connector').depends_on).toEqual({ connect: { condition: 'service_healthy' } });
    expect(svc('sluice').depends_on).toEqual({
      kafka: { condition: 'service_healthy' },
      'register-connector': { condition: 'service_completed_successfully' },
    });
    // Every dependency names a service that exists, and the graph has no cycle.
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string): void => {
      if (done.has(name)) return;
      expect(visiting.has(name), `cycle through ${name}`).toBe(false);
      visiting.add(name);
      for (const dep of Object.keys(svc(name).depends_on ?? {})) visit(dep);
      visiting.delete(name);
      done.add(name);
    };
    for (const name of Object.keys(services)) visit(name);
  });

  it('registers the Debezium connector file that exists in the repo, tolerating a second run', () => {
    const reg = svc('register-connector');
    expect(reg.volumes).toContain('./connectors:/connectors:ro');
    const script = reg.entrypoint!.join(' ');
    expect(script).toContain('@/connectors/employee-connector.json');
    expect(script).toContain('http://connect:8083/connectors');
    expect(script).toMatch(/409/);
    const connector = JSON.parse(readFileSync(resolve(repo, 'connectors/employee-connector.json'), 'utf8')) as { config: Record<string, string> };
    expect(connector.config['database.hostname']).toBe('postgres');
    expect(connector.config['topic.prefix']).toBe('employee-server');
  });

  it('points Connect and Kafka UI at the internal listener', () => {
    expect(svc('connect').environment!.BOOTSTRAP_SERVERS).toBe('kafka:29092');
    expect(svc('kafka-ui').environment!.KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS).toBe('kafka:29092');
  });

  it('builds the runner from this repo and runs the employee pipeline against kafka:29092', () => {
    const s = svc('sluice');
    expect(s.build).toEqual({ context: '.', dockerfile: 'docker/Dockerfile' });
    expect(s.command).toEqual(['run', 'pipelines/employee-activity.yaml']);
    expect(s.environment!.KAFKA_BROKERS).toBe('kafka:29092');
    expect(existsSync(resolve(repo, 'pipelines/employee-activity.yaml'))).toBe(true);
  });
});

describe('docker/Dockerfile', () => {
  const dockerfile = readFileSync(resolve(repo, 'docker/Dockerfile'), 'utf8');
  it('builds on node 20 and installs from the lock file', () => {
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });

  it('copies every path the runner needs, and each exists', () => {
    const copied = [...dockerfile.matchAll(/^COPY (\S+)/gm)].map((m) => m[1]!);
    for (const p of ['runner/bin', 'runner/src', 'pipelines', 'package.json']) expect(copied.some((c) => c === p || c.startsWith(p))).toBe(true);
    for (const p of copied) expect(existsSync(resolve(repo, p)), p).toBe(true);
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "runner\/bin\/sluice\.js"\]/);
  });
});
