/**
 * `sluice run --http` of pipelines/employee-activity.yaml against real Kafka, as a process:
 * - consumer lag: 10,000 events produced while the pipeline is stopped; started, its /metrics
 *   shows the group's lag at 10,000 (nothing committed yet), then falling to 0 as it catches up;
 * - the Grafana dashboard in the repo reads only series that this /metrics (the compose stack's
 *   pipeline on Kafka) really exposes;
 * - readiness: /readyz answers 200, 503 while its broker is down (a broker of its own, on other
 *   ports, so that other suites' broker stays up) through two restarts that fail on the outage,
 *   and 200 again after the broker returns, served by the same server across the restarts.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatorSource } from '../../src/components/sources/generator.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { createAdmin, createProducer, type KafkaAdmin } from '../../src/io/kafka/client.ts';
import { RecordingOutput, sourceContext } from '../components/sources/source-harness.ts';
import { privateBroker } from '../io/kafka/private-broker.ts';
import { openAdmin, testBrokers, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import { parseExposition } from './prometheus-text.ts';
import { dashboardQueries, familyOf, metricNames, readDashboard } from '../deploy/dashboard-queries.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Debezium change events as the connector writes them, from the generator. */
async function events(count: number): Promise<{ key: string | Buffer | null; value: string | Buffer | null }[]> {
  const out = new RecordingOutput();
  await generatorSource.create({ scenario: 'employee-activity', seed: 7, count, rate: 0, partitions: 1 }, sourceContext('activities', 'run')).run(out);
  return out.messages.map((m) => ({ key: toText(m.key), value: toText(m.value) }));
}

function toText(v: unknown): string | Buffer | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v;
  return JSON.stringify(v);
}

async function produce(brokers: string[], topic: string, count: number): Promise<void> {
  const producer = createProducer({ brokers, clientId: 'sluice-test-producer' }, {}, silentLogger);
  await producer.send((await events(count)).map((e) => ({ topic, ...e })));
  await producer.close();
}

interface Sluice {
  child: ChildProcessWithoutNullStreams;
  url: string;
  log: () => string;
  stop(): Promise<void>;
}

/** `sluice run` of the employee pipeline reading `topic`, its outputs on topics of the test, with --http on a free port. */
async function startSluice(brokers: string[], app: string, topic: string, extra: string[] = []): Promise<Sluice> {
  const sets = [
    `sources.activities.kafka.topic=${topic}`,
    ...['processed', 'summaries', 'late-activities', 'dead-letters'].map((s) => `sinks.${s}.kafka.topic=${app}-${s}`),
    ...extra,
  ].flatMap((s) => ['--set', s]);
  const child = spawn(process.execPath, [path.join(repo, 'runner/bin/sluice.js'), 'run', path.join(repo, 'pipelines/employee-activity.yaml'), ...sets, '--http', '127.0.0.1:0'], {
    cwd: repo,
    // Its own process group: the test ends it and everything it started.
    detached: true,
    env: { ...process.env, KAFKA_BROKERS: brokers.join(','), SLUICE_GROUP: app, SLUICE_LOG_LEVEL: 'info' },
  });
  let stderr = '';
  child.stdout.resume();
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice did not say where it listens:\n${stderr}`)), 30_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      const found = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(stderr);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]!);
      }
    });
    child.on('exit', () => reject(new Error(`sluice exited before listening:\n${stderr}`)));
  });
  return {
    child,
    url,
    log: () => stderr,
    async stop() {
      if (child.pid !== undefined && child.exitCode === null) {
        process.kill(-child.pid, 'SIGTERM');
        // Bounded: a run stuck in a restart must not turn a test failure into a suite timeout.
        const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000))]);
        if (!stopped) {
          process.kill(-child.pid, 'SIGKILL');
          await exited;
          throw new Error(`sluice did not stop within 30 s of SIGTERM; its log ends:\n${stderr.slice(-3000)}`);
        }
      }
    },
  };
}

async function cleanTopics(admin: KafkaAdmin, app: string, topic: string): Promise<void> {
  const all = await admin.listTopics();
  await admin.deleteTopics(all.filter((t) => t === topic || t.startsWith(`${app}-`)));
}

describe('consumer lag on /metrics', () => {
  let admin: KafkaAdmin;
  /** The last exposition of the run, for the dashboard check. */
  let exposition = '';
  beforeAll(async () => {
    admin = await openAdmin();
  });
  afterAll(async () => {
    await admin?.close();
  });

  it('is the 10,000 events produced while the pipeline was stopped, then falls to 0', async () => {
    const app = uniqueName('lag');
    const topic = `${app}-input`;
    await admin.createTopics([{ topic, partitions: 3 }]);
    await produce(testBrokers(), topic, 10_000);
    // Checkpoints (and so offset commits) every 3 s: the lag before the first commit is seen.
    const sluice = await startSluice(testBrokers(), app, topic, ['checkpoint.interval=3s']);
    const seen: number[] = [];
    let recordsIn = 0;
    try {
      await waitFor(
        'the lag to fall to 0 after the whole backlog was seen',
        async () => {
          exposition = await (await fetch(`${sluice.url}metrics`)).text();
          const families = parseExposition(exposition);
          const lag = families.find((f) => f.name === 'sluice_kafka_consumer_lag_messages')?.samples.filter((s) => s.labels.node === 'activities') ?? [];
          recordsIn = families.find((f) => f.name === 'sluice_records_in_total')?.samples.find((s) => s.labels.node === 'activities')?.value ?? 0;
          if (lag.length === 3) seen.push(lag.reduce((n, s) => n + (s.value ?? 0), 0));
          return seen.length > 1 && seen[seen.length - 1] === 0;
        },
        90_000,
      );
    } finally {
      await sluice.stop();
      await cleanTopics(admin, app, topic);
    }
    expect(seen[0]).toBe(10_000);
    expect(Math.max(...seen)).toBe(10_000);
    // It only ever falls.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeLessThanOrEqual(seen[i - 1]!);
    expect(recordsIn).toBe(10_000);
    console.info(`consumer lag seen: ${[...new Set(seen)].join(' -> ')}`);
  }, 120_000);

  it('is what the dashboard reads, and so is every other series of its queries', () => {
    expect(exposition, 'the lag test above scraped /metrics').not.toBe('');
    const families = parseExposition(exposition);
    const exposed = new Set(families.map((f) => f.name));
    const histograms = new Set(families.filter((f) => f.type === 'HISTOGRAM').map((f) => f.name));
    const missing = dashboardQueries(readDashboard(repo)).flatMap((q) => metricNames(q.expr).filter((n) => !exposed.has(familyOf(n, histograms))).map((n) => `${q.panel}: ${n}`));
    expect(missing).toEqual([]);
  });
});

describe('/readyz through a broker outage', () => {
  const broker = privateBroker(19_192);
  const brokers = broker.brokers;
  const kafka = (cmd: 'start' | 'stop') => broker[cmd]();

  beforeAll(() => broker.start(), 180_000);
  afterAll(() => broker.remove(), 120_000);

  it('answers 503 while the broker is down and 200 after it returns', async () => {
    const app = uniqueName('ready');
    const topic = `${app}-input`;
    const admin = createAdmin({ brokers, clientId: 'sluice-test-admin' }, silentLogger);
    await admin.connect();
    await admin.createTopics([{ topic, partitions: 2 }]);
    await admin.close();
    await produce(brokers, topic, 500);
    const sluice = await startSluice(brokers, app, topic);
    const ready = async () => {
      const res = await fetch(`${sluice.url}readyz`).catch(() => undefined);
      return { status: res?.status ?? 0, text: (await res?.text()) ?? '' };
    };
    let whileDown = '';
    let restarts = 0;
    try {
      await waitFor('ready', async () => (await ready()).status === 200, 60_000);
      await kafka('stop');
      await waitFor(
        '503 while the broker is down',
        async () => {
          const r = await ready();
          whileDown = r.text;
          return r.status === 503;
        },
        60_000,
      );
      // Down long enough that the run fails (its checkpoint cannot commit once kafkajs gives up
      // retrying) and the restart's restore meets the outage too: that failure must restart the
      // run again, not end the process (it once ended it: the restore's kafkajs error was not
      // taken for an outage). Not ready throughout.
      const restartsNow = async () => ((await (await fetch(`${sluice.url}api/status`)).json()) as { restarts: number }).restarts;
      await waitFor(
        'two restarts while the broker is down',
        async () => {
          expect((await ready()).status).toBe(503);
          return (await restartsNow()) >= 2;
        },
        180_000,
      );
      await kafka('start');
      await waitFor('200 after the broker returned', async () => (await ready()).status === 200, 120_000);
      expect((await fetch(`${sluice.url}healthz`)).status).toBe(200);
      restarts = await restartsNow();
    } catch (err) {
      // The process's own account: an exit during the outage (a failure sluice run does not restart) shows here.
      console.error(`sluice's log, last 8 KB:\n${sluice.log().slice(-8_000)}`);
      throw err;
    } finally {
      await sluice.stop();
    }
    expect(whileDown).toMatch(/^not ready:\n/);
    console.info(`/readyz while the broker was down: ${whileDown.trim().replace(/\n\s*/g, ' | ')}; ready again after ${restarts} restart(s)`);
    // Its waits add up to 6 minutes, and stopping and starting a broker on a loaded machine takes
    // up to a minute more each.
  }, 600_000);
});
