/**
 * `npm run bench:kafka`: the employee pipeline on a real Kafka broker, in both delivery modes
 * (at-least-once, then exactly-once), with checkpoints every second as `sluice run` takes them.
 *
 * 1. Throughput: produce N Debezium events (default 1,000,000, seed-shaped, from the generator's
 *    simulator) into a fresh 6-partition topic, then time pipelines/employee-activity.yaml (the
 *    spec as is; only its topic names and group are overridden with --set-style overrides so runs
 *    do not mix) draining them into both output topics. Prints events/s.
 * 2. Latency: with the pipeline running, produce at a steady rate (default 5,000 events/s for 30 s)
 *    with the produce time in a header; the kafka sink passes headers through, so each processed
 *    message carries it. Latency = when a read_committed consumer receives the processed message
 *    minus that header (under exactly-once a message is visible only once its checkpoint
 *    committed, so this is what a downstream reader sees). Prints p50, p90, p99 and max.
 *
 * The drain counts until the checkpoint that covers the last event has committed.
 *
 * Uses KAFKA_BROKERS when set; otherwise starts scripts/kafka.sh (and stops it if it started it).
 * Topics it creates are deleted at the end.
 *
 *   npm run bench:kafka
 *   BENCH_EVENTS=200000 BENCH_RATE=5000 BENCH_LATENCY_SECONDS=20 npm run bench:kafka
 *   BENCH_DELIVERY=exactly-once npm run bench:kafka     # one mode only
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../src/engine/clock.ts';
import { createLogger } from '../src/engine/logger.ts';
import { Metrics } from '../src/engine/metrics.ts';
import { Runtime } from '../src/engine/runtime.ts';
import { createAdmin, createGroupConsumer, createProducer, type KafkaAdmin } from '../src/io/kafka/client.ts';
import { parseBrokers } from '../src/io/kafka/connection.ts';
import type { Delivery } from '../src/engine/component.ts';
import { instantiate } from '../src/plan/instantiate.ts';
import { loadPipeline } from '../src/plan/load-pipeline.ts';
import { prepareState } from '../src/plan/state.ts';
import type { SetOverride } from '../src/spec/load.ts';
import { DebeziumEventStream } from '../test/integration/debezium-events.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SPEC = resolve(repo, 'pipelines/employee-activity.yaml');
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RATE = Number(process.env.BENCH_RATE ?? 5_000);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 30);
const PARTITIONS = 6;
const PRODUCED_AT = 'bench-produced-at';
const MODES: Delivery[] = process.env.BENCH_DELIVERY ? [process.env.BENCH_DELIVERY as Delivery] : ['at-least-once', 'exactly-once'];

const logger = createLogger(process.env.SLUICE_LOG_LEVEL ?? 'warn');
const say = (line: string) => process.stdout.write(`${line}\n`);

function ensureBroker(): { brokers: string; stop: () => void } {
  if (process.env.KAFKA_BROKERS) return { brokers: process.env.KAFKA_BROKERS, stop: () => {} };
  const script = resolve(repo, 'scripts/kafka.sh');
  const out = execFileSync('bash', [script, 'start'], { cwd: repo, encoding: 'utf8' }).trim();
  const [state, brokers] = out.split(/\s+/);
  if (!brokers) throw new Error(`scripts/kafka.sh start said: ${out}`);
  return { brokers, stop: () => (state === 'started' ? void execFileSync('bash', [script, 'stop'], { cwd: repo }) : undefined) };
}

interface BenchTopics {
  input: string;
  processed: string;
  summaries: string;
  late: string;
  dead: string;
}

function topicsFor(run: string): BenchTopics {
  return {
    input: `bench-${run}-activities`,
    processed: `bench-${run}-processed`,
    summaries: `bench-${run}-summaries`,
    late: `bench-${run}-late`,
    dead: `bench-${run}-dead-letters`,
  };
}

/** The spec as it is, pointed at this run's topics and group. */
function overrides(brokers: string, topics: BenchTopics, group: string): { env: Record<string, string | undefined>; sets: SetOverride[] } {
  return {
    env: { ...process.env, KAFKA_BROKERS: brokers, SLUICE_GROUP: group },
    sets: [
      { path: 'sources.activities.kafka.topic', value: topics.input },
      { path: 'sinks.processed.kafka.topic', value: topics.processed },
      { path: 'sinks.summaries.kafka.topic', value: topics.summaries },
      { path: 'sinks.late-activities.kafka.topic', value: topics.late },
      { path: 'sinks.dead-letters.kafka.topic', value: topics.dead },
    ],
  };
}

async function startPipeline(brokers: string, topics: BenchTopics, group: string, delivery: Delivery): Promise<{ runtime: Runtime; done: Promise<unknown> }> {
  const { env, sets } = overrides(brokers, topics, group);
  const loaded = await loadPipeline(SPEC, { env, sets });
  if (!loaded.ok) throw new Error(`the spec did not load: ${loaded.diagnostics.map((d) => d.message).join('; ')}`);
  // As `sluice run` does: state in Kafka, named after the (fresh) group, checkpoints every second.
  const state = await prepareState({ ...loaded.plan, delivery }, { logger, clock: systemClock });
  const metrics = new Metrics();
  const graph = instantiate(loaded.plan, { mode: 'run', logger, metrics, ...(state.context ? { checkpoints: state.context } : {}) });
  const runtime = new Runtime(graph, { logger, metrics, clock: systemClock, ...(state.coordinator ? { checkpoints: state.coordinator } : {}) });
  const done = runtime.run();
  done.catch((err: unknown) => logger.error({ err }, 'pipeline failed'));
  return { runtime, done };
}

async function createTopics(admin: KafkaAdmin, topics: BenchTopics): Promise<void> {
  await admin.createTopics(
    Object.values(topics).map((topic) => ({ topic, partitions: topic === topics.input ? PARTITIONS : 1, configs: { 'retention.ms': '-1' } })),
  );
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(100);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Resolves once a checkpoint committed after `since` (performance.now() time): what came before is durable. */
async function committedAfter(runtime: Runtime, since: number): Promise<void> {
  const wallSince = Date.now() - (performance.now() - since);
  await until('a checkpoint to commit', () => (runtime.stats().checkpoint?.lastCommittedAt ?? 0) > wallSince, 60_000);
}

async function throughput(brokers: string, admin: KafkaAdmin, run: string, delivery: Delivery): Promise<{ eventsPerSecond: number }> {
  const topics = topicsFor(`${run}-t`);
  await createTopics(admin, topics);
  const conn = { brokers: parseBrokers(brokers), clientId: 'sluice-bench' };
  const producer = createProducer(conn, { chunkSize: 2_000 }, logger);
  await producer.connect();
  const stream = new DebeziumEventStream(topics.input, 1);
  let inserts = 0;
  const produceStart = performance.now();
  for (let sent = 0; sent < EVENTS; ) {
    const n = Math.min(20_000, EVENTS - sent);
    const batch = stream.take(n);
    inserts += batch.insertIds.length;
    await producer.send(batch.messages);
    sent += n;
  }
  const produceSeconds = (performance.now() - produceStart) / 1000;
  await producer.close();
  say(`produced ${EVENTS.toLocaleString('en')} Debezium events (${inserts.toLocaleString('en')} inserts) into ${PARTITIONS} partitions in ${produceSeconds.toFixed(1)} s (${Math.round(EVENTS / produceSeconds).toLocaleString('en')} events/s, gzip, acks=all)`);

  const { runtime, done } = await startPipeline(brokers, topics, `bench-${run}-t`, delivery);
  const started = performance.now();
  let lastReport = started;
  await until(
    'the pipeline to drain the topic',
    () => {
      const s = runtime.stats();
      const now = performance.now();
      if (now - lastReport > 5_000) {
        lastReport = now;
        say(`  ... ${s.nodes.activities?.recordsIn ?? 0} read, ${s.nodes.processed?.recordsOut ?? 0} processed written, ${s.nodes.summaries?.recordsOut ?? 0} summaries`);
      }
      return (s.nodes.activities?.recordsIn ?? 0) >= EVENTS && (s.nodes.processed?.recordsOut ?? 0) >= inserts;
    },
    30 * 60_000,
  );
  await committedAfter(runtime, performance.now());
  const seconds = (performance.now() - started) / 1000;
  const cp = runtime.stats().checkpoint;
  await runtime.stop();
  await done;
  const processedEnd = [...(await admin.endOffsets(topics.processed)).values()].reduce((a, b) => a + Number(b), 0);
  const summariesEnd = [...(await admin.endOffsets(topics.summaries)).values()].reduce((a, b) => a + Number(b), 0);
  say(
    `[${delivery}] drained ${EVENTS.toLocaleString('en')} events through pipelines/employee-activity.yaml in ${seconds.toFixed(1)} s: ` +
      `${Math.round(EVENTS / seconds).toLocaleString('en')} events/s ` +
      `(processed topic end offset ${processedEnd.toLocaleString('en')}, summaries ${summariesEnd.toLocaleString('en')}; offsets include transaction markers under exactly-once; the last hour stays open, as it should); ` +
      `${cp?.checkpoints ?? 0} checkpoints, the last took ${cp?.lastDurationMs ?? '?'} ms`,
  );
  if (delivery === 'at-least-once' && processedEnd < inserts) say(`WARNING: processed topic holds ${processedEnd}, expected ${inserts}`);
  await admin.deleteTopics(Object.values(topics));
  await deleteStateTopics(admin, `bench-${run}-t`);
  return { eventsPerSecond: EVENTS / seconds };
}

/** The state topics a run left behind (its application id is its group). */
async function deleteStateTopics(admin: KafkaAdmin, applicationId: string): Promise<void> {
  const ours = (await admin.listTopics()).filter((t) => t.startsWith(`${applicationId}-`));
  await admin.deleteTopics(ours);
}

async function latency(brokers: string, admin: KafkaAdmin, run: string, delivery: Delivery): Promise<void> {
  const topics = topicsFor(`${run}-l`);
  await createTopics(admin, topics);
  const conn = { brokers: parseBrokers(brokers), clientId: 'sluice-bench-latency' };
  const { runtime, done } = await startPipeline(brokers, topics, `bench-${run}-l`, delivery);
  // A read_committed reader, live: latency is when a downstream consumer can see a message.
  const samples: number[] = [];
  const reader = createGroupConsumer(conn, { groupId: `bench-${run}-reader`, topics: [topics.processed], fromBeginning: true, concurrency: 1, maxWaitMs: 50 }, logger);
  await reader.start({
    onBatch: async (b) => {
      const now = Date.now();
      for (const m of b.messages) {
        const at = Number(m.headers[PRODUCED_AT]);
        if (Number.isFinite(at)) samples.push(now - at);
      }
    },
    onRebalancing: () => {},
    onAssignment: () => {},
    onCrash: () => {},
  });
  // Let the pipeline and the reader join their groups before the clock starts.
  await wait(3_000);

  const producer = createProducer(conn, { chunkSize: 2_000 }, logger);
  await producer.connect();
  // Event times start now, so the pipeline sees a live stream, not a backlog.
  const stream = new DebeziumEventStream(topics.input, 2, Date.now());
  const tickMs = 100;
  const perTick = Math.max(1, Math.round((RATE * tickMs) / 1000));
  const ticks = Math.round((LATENCY_SECONDS * 1000) / tickMs);
  let inserts = 0;
  const t0 = performance.now();
  for (let i = 0; i < ticks; i++) {
    const batch = stream.take(perTick);
    inserts += batch.insertIds.length;
    const at = String(Date.now());
    for (const m of batch.messages) m.headers = { [PRODUCED_AT]: at };
    await producer.send(batch.messages);
    // Keep the schedule: sleep to the next tick boundary (no catch-up bursts beyond one tick).
    const next = t0 + (i + 1) * tickMs;
    const sleep = next - performance.now();
    if (sleep > 0) await wait(sleep);
  }
  const offered = (ticks * perTick) / ((performance.now() - t0) / 1000);
  await producer.close();
  await until('the reader to see every processed message', () => samples.length >= inserts, 120_000);
  await runtime.stop();
  await done;
  await reader.disconnect();
  samples.sort((a, b) => a - b);
  say(
    `[${delivery}] latency at a steady ${Math.round(offered).toLocaleString('en')} events/s for ${LATENCY_SECONDS} s (${samples.length.toLocaleString('en')} processed messages), produce -> processed topic: ` +
      `p50 ${percentile(samples, 50)} ms, p90 ${percentile(samples, 90)} ms, p99 ${percentile(samples, 99)} ms, max ${samples[samples.length - 1]} ms`,
  );
  await admin.deleteTopics(Object.values(topics));
  await deleteStateTopics(admin, `bench-${run}-l`);
}

async function main(): Promise<void> {
  const broker = ensureBroker();
  const admin = createAdmin({ brokers: parseBrokers(broker.brokers), clientId: 'sluice-bench-admin' }, logger);
  await admin.connect();
  const run = randomBytes(3).toString('hex');
  say(`sluice kafka bench: broker ${broker.brokers}, node ${process.version}, ${EVENTS.toLocaleString('en')} events, then ${RATE}/s for ${LATENCY_SECONDS} s`);
  try {
    const rates = new Map<Delivery, number>();
    for (const delivery of MODES) {
      rates.set(delivery, (await throughput(broker.brokers, admin, `${run}-${delivery === 'exactly-once' ? 'eo' : 'al'}`, delivery)).eventsPerSecond);
      await latency(broker.brokers, admin, `${run}-${delivery === 'exactly-once' ? 'eo' : 'al'}`, delivery);
    }
    const al = rates.get('at-least-once');
    const eo = rates.get('exactly-once');
    if (al && eo) say(`exactly-once drains at ${Math.round((eo / al) * 100)}% of at-least-once's rate`);
  } finally {
    await admin.close();
    broker.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:kafka failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
