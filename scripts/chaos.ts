/**
 * `npm run chaos`: kill -9 the employee pipeline at random moments while it drains a backlog, and
 * check that nothing is lost or written twice. Not part of CI (it takes minutes).
 *
 * Produces CHAOS_EVENTS (default 1,000,000) simulated Debezium events into a fresh 6-partition
 * topic, then runs `sluice run pipelines/employee-activity.yaml` (exactly-once, state in Kafka) and
 * kills its process group CHAOS_KILLS times (default 20) at random moments, starting it again each
 * time, until every insert is enriched and every closed hour summarised. Then it compares what a
 * read_committed reader saw with a computation from the produced events: lost and duplicated
 * records (the goal is 0 and 0), wrong summaries, and the time each restore took.
 *
 *   npm run chaos
 *   CHAOS_EVENTS=200000 CHAOS_KILLS=10 CHAOS_DELIVERY=at-least-once npm run chaos
 *
 * Uses KAFKA_BROKERS (default 127.0.0.1:9092: start it with scripts/kafka.sh start).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../runner/src/engine/logger.ts';
import { mulberry32 } from '../runner/src/engine/seeded-random.ts';
import { createAdmin, createProducer } from '../runner/src/io/kafka/client.ts';
import { parseBrokers } from '../runner/src/io/kafka/connection.ts';
import { allWritten, compareOutputs, OutputReader, produceBacklog, startSluice } from '../runner/test/integration/employee-outputs.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const EVENTS = Number(process.env.CHAOS_EVENTS ?? 1_000_000);
const KILLS = Number(process.env.CHAOS_KILLS ?? 20);
const DELIVERY = process.env.CHAOS_DELIVERY ?? 'exactly-once';
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
const PARTITIONS = 6;
const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
process.env.KAFKA_BROKERS = brokers;
const say = (line: string) => process.stdout.write(`${line}\n`);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const conn = { brokers: parseBrokers(brokers), clientId: 'sluice-chaos' };
  const run = `chaos-${Date.now().toString(36)}`;
  const admin = createAdmin(conn, silentLogger);
  await admin.connect();
  const input = `${run}-activities`;
  const topics = { processed: `${run}-processed`, summaries: `${run}-summaries`, late: `${run}-late`, dead: `${run}-dead` };
  await admin.createTopics([input, ...Object.values(topics)].map((topic) => ({ topic, partitions: topic === input ? PARTITIONS : 1, configs: { 'retention.ms': '-1' } })));

  say(`sluice chaos: ${EVENTS.toLocaleString('en')} events, ${KILLS} kill -9, ${DELIVERY}, seed ${SEED}, broker ${brokers}`);
  const producer = createProducer(conn, {}, silentLogger);
  const expected = await produceBacklog(producer, input, { events: EVENTS, partitions: PARTITIONS, seed: 5, startMs: Date.parse('2025-04-07T06:00:00Z') });
  await producer.close();
  say(`produced; expecting ${expected.inserts.size.toLocaleString('en')} enriched and ${expected.summaries.size.toLocaleString('en')} hourly summaries`);

  const dir = mkdtempSync(join(tmpdir(), 'sluice-chaos-'));
  say(`each run's log goes to ${dir}/run-<n>.log`);
  const spec = join(dir, 'employee-activity.yaml');
  writeFileSync(spec, readFileSync(resolve(repo, 'pipelines/employee-activity.yaml'), 'utf8').replace(/^delivery: .*$/m, `delivery: ${DELIVERY}`));
  const start = () => startSluice(spec, { input, group: run, topics, brokers, cwd: dir });

  const reader = new OutputReader(topics);
  await reader.start();
  const random = mulberry32(SEED);
  const restores: number[] = [];
  const started = performance.now();
  const restoreOf = (stderr: string) => {
    const line = stderr.split('\n').find((l) => l.includes('"state restored from the last checkpoint"'));
    return line ? Number((JSON.parse(line) as { ms?: number }).ms) : undefined;
  };
  for (let k = 0; k < KILLS; k++) {
    const p = start();
    // A random moment once it reads again: 1 to 6 s after the group gave it its partitions (a
    // killed member holds its partitions until its session times out, 6 s here).
    while (!p.stderr().includes('"kafka partitions assigned"') && p.child.exitCode === null) await wait(50);
    await wait(1_000 + random() * 5_000);
    process.kill(-p.child.pid!, 'SIGKILL');
    await p.exit;
    writeFileSync(join(dir, `run-${k + 1}.log`), p.stderr());
    const ms = restoreOf(p.stderr());
    if (ms !== undefined) restores.push(ms);
    say(`kill ${k + 1}/${KILLS}: ${reader.distinctProcessed().toLocaleString('en')} enriched so far${ms !== undefined ? `, this run restored its state in ${ms} ms` : ''}`);
  }
  const last = start();
  while (!allWritten(reader, expected)) {
    if (last.child.exitCode !== null) throw new Error(`the last run exited with ${last.child.exitCode}:\n${last.stderr().slice(-2000)}`);
    await wait(500);
  }
  await wait(3_000);
  process.kill(-last.child.pid!, 'SIGINT');
  await last.exit;
  writeFileSync(join(dir, 'run-last.log'), last.stderr());
  const lastRestore = restoreOf(last.stderr());
  if (lastRestore !== undefined) restores.push(lastRestore);
  await wait(1_000);
  await reader.stop();

  const result = compareOutputs(reader, expected);
  const sorted = [...restores].sort((a, b) => a - b);
  say(`done in ${((performance.now() - started) / 1000).toFixed(0)} s after ${KILLS} kill -9:`);
  say(`  enriched: ${expected.inserts.size.toLocaleString('en')} expected, ${result.missing.length} lost, ${result.processedDuplicates} duplicated`);
  say(`  hourly summaries: ${result.summaries.toLocaleString('en')} written, ${result.wrong.length} wrong, ${result.unsummarised.length} closed hours missing, ${result.summaryDuplicates} duplicated`);
  say(`  restores: ${restores.length}, ${sorted.length ? `min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms` : 'none'}`);
  for (const w of result.wrong.slice(0, 5)) say(`  wrong: ${w}`);
  await admin.deleteTopics((await admin.listTopics()).filter((t) => t.startsWith(run)));
  await admin.close();
  const clean = result.missing.length === 0 && result.wrong.length === 0 && result.unsummarised.length === 0 && (DELIVERY !== 'exactly-once' || (result.processedDuplicates === 0 && result.summaryDuplicates === 0));
  process.exit(clean ? 0 : 1);
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(2);
});
