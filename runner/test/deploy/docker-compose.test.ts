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
import { DEFAULT_HTTP_PORT } from '../../src/http/server.ts';
import { dashboardQueries, metricNames, readDashboard } from './dashboard-queries.ts';

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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function yamlFile(path: string): Record<string, unknown> {
  const doc: unknown = parse(readFileSync(resolve(repo, path), 'utf8'));
  if (!isRecord(doc)) throw new Error(`${path} is not a YAML map`);
  return doc;
}

/** The repo path a service mounts at `target`, from a `./repo/path:target[:ro]` volume. */
function mountedAt(service: Service, target: string): string {
  const v = (service.volumes ?? []).find((x) => x.split(':')[1] === target);
  if (!v) throw new Error(`nothing is mounted at ${target}`);
  return v.split(':')[0]!.replace(/^\.\//, '');
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
    expect(Object.keys(services).sort()).toEqual(['connect', 'grafana', 'kafka', 'kafka-ui', 'pgadmin', 'postgres', 'prometheus', 'register-connector', 'sluice']);
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
    expect(s.command).toEqual(['run', 'pipelines/employee-activity.yaml', '--http', `0.0.0.0:${DEFAULT_HTTP_PORT}`]);
    expect(s.environment!.KAFKA_BROKERS).toBe('kafka:29092');
    expect(existsSync(resolve(repo, 'pipelines/employee-activity.yaml'))).toBe(true);
  });
});

describe('monitoring in docker-compose.yml: Prometheus scrapes sluice, Grafana shows the dashboard kept in the repo', () => {
  it('publishes sluice\'s HTTP server to the host on 127.0.0.1 only, and checks its health by /readyz', () => {
    expect(svc('sluice').ports).toEqual([`127.0.0.1:${DEFAULT_HTTP_PORT}:${DEFAULT_HTTP_PORT}`]);
    expect(svc('sluice').healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${DEFAULT_HTTP_PORT}/readyz`);
    expect(svc('prometheus').image).toMatch(/^prom\/prometheus:v\d/);
    expect(svc('grafana').image).toMatch(/^grafana\/grafana:\d/);
    expect(svc('prometheus').ports).toEqual(['9090:9090']);
    expect(svc('grafana').ports).toEqual(['3000:3000']);
  });

  it('has a Prometheus config that parses and scrapes the sluice service at the port it listens on', () => {
    const config = yamlFile(mountedAt(svc('prometheus'), '/etc/prometheus/prometheus.yml'));
    expect(svc('prometheus').command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const jobs = config.scrape_configs;
    expect(Array.isArray(jobs)).toBe(true);
    const job = (jobs as unknown[]).find((j) => isRecord(j) && j.job_name === 'sluice');
    if (!isRecord(job)) throw new Error('no scrape job sluice');
    expect(job.metrics_path ?? '/metrics').toBe('/metrics');
    const targets = (job.static_configs as { targets: string[] }[]).flatMap((c) => c.targets);
    // The service's name on the compose network and the port of its --http.
    const listen = svc('sluice').command!.at(-1)!;
    expect(targets).toEqual([`sluice:${listen.split(':').at(-1)}`]);
    expect(listen).toBe(`0.0.0.0:${DEFAULT_HTTP_PORT}`);
  });

  it('provisions Grafana with the compose Prometheus as data source and the dashboard directory it mounts', () => {
    const grafana = svc('grafana');
    const provisioning = mountedAt(grafana, '/etc/grafana/provisioning');
    const datasources = yamlFile(`${provisioning}/datasources/prometheus.yml`);
    expect(datasources.apiVersion).toBe(1);
    const [ds] = datasources.datasources as Record<string, unknown>[];
    expect(ds).toMatchObject({ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090', isDefault: true });
    const providers = yamlFile(`${provisioning}/dashboards/sluice.yml`);
    expect(providers.apiVersion).toBe(1);
    const [provider] = providers.providers as { type: string; options: { path: string } }[];
    expect(provider!.type).toBe('file');
    const dashboards = mountedAt(grafana, provider!.options.path);
    expect(existsSync(resolve(repo, dashboards, 'sluice.json'))).toBe(true);
    expect(grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${provider!.options.path}/sluice.json`);
  });

  it('keeps a dashboard whose every query parses as PromQL, reads sluice series, and uses the provisioned data source', () => {
    const dashboard = readDashboard(repo);
    expect(dashboard.uid).toBe('sluice');
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(20);
    for (const q of queries) {
      const names = metricNames(q.expr);
      expect(names.length, `${q.panel}: ${q.expr}`).toBeGreaterThan(0);
      // Every query follows the pipeline variable, so one dashboard serves several pipelines.
      expect(q.expr, q.panel).toContain('pipeline=~"$pipeline"');
    }
    expect(JSON.stringify(dashboard)).not.toMatch(/"uid":\s*"(?!prometheus"|sluice")[^"]*"/);
    // The series the issue asks operators to see are all on it.
    const all = new Set(queries.flatMap((q) => metricNames(q.expr)));
    for (const name of ['sluice_records_in_total', 'sluice_records_out_total', 'sluice_records_failed_total', 'sluice_records_filtered_total', 'sluice_records_late_total', 'sluice_batch_duration_seconds_bucket', 'sluice_sink_write_duration_seconds_bucket', 'sluice_kafka_consumer_lag_messages', 'sluice_watermark_lag_seconds', 'sluice_open_windows', 'sluice_state_bytes', 'sluice_checkpoint_duration_seconds_bucket', 'sluice_checkpoint_age_seconds', 'sluice_sink_records_in_flight', 'sluice_sink_retries_total', 'process_cpu_seconds_total']) {
      expect(all.has(name), name).toBe(true);
    }
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
