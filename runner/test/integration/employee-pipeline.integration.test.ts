/**
 * pipelines/employee-activity.yaml, unchanged, against a real broker: each golden case's input is
 * produced to the Debezium topic, the pipeline runs through the real runtime, and every output
 * topic must hold exactly what the case's golden files say. Then the runner (the `sluice` CLI) is
 * killed mid-stream and started again: nothing is lost, and the duplicates are counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { systemClock } from '../../src/engine/clock.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { encodeValue } from '../../src/components/sinks/kafka.ts';
import { createGroupConsumer, createProducer, readTopicsToEnd, type FetchedMessage, type KafkaAdmin } from '../../src/io/kafka/client.ts';
import { instantiate } from '../../src/plan/instantiate.ts';
import { loadPipeline } from '../../src/plan/load-pipeline.ts';
import type { SetOverride } from '../../src/spec/load.ts';
import { openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import { ACTIVITIES_TOPIC, DebeziumEventStream } from './debezium-events.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SPEC = resolve(repo, 'pipelines/employee-activity.yaml');
const CASES = resolve(repo, 'pipelines/tests/employee-activity');
const OUTPUT_TOPICS = ['processed-employee-activities', 'employee-activity-summaries', 'employee-activities-late', 'employee-activity-dead-letters'];

interface Golden {
  topic: string;
  key: unknown;
  value: unknown;
  headers?: Record<string, string>;
}

/** The topic whose sink writes raw values (`value_format: raw`): its golden values are the text written as is. */
const RAW_TOPIC = 'employee-activity-dead-letters';

/** A message as comparable text: key, the value's bytes as text, and headers. */
function comparable(m: { key: unknown; value: string | null; headers?: Record<string, string> }): string {
  return JSON.stringify({ key: m.key ?? null, value: m.value, headers: m.headers ?? {} });
}

/** A golden line as the broker holds it: its value encoded as the topic's sink encodes it. */
function fromGolden(g: Golden): string {
  const value = encodeValue(g.value, g.topic === RAW_TOPIC ? 'raw' : 'json');
  return comparable({ key: g.key, value: Buffer.isBuffer(value) ? value.toString('utf8') : value, ...(g.headers ? { headers: g.headers } : {}) });
}

function fromWire(m: FetchedMessage): string {
  return comparable({ key: m.key ? m.key.toString('utf8') : null, value: m.value ? m.value.toString('utf8') : null, headers: m.headers });
}

/** The record id of an output message, when its value is a JSON object with one. */
function idOf(m: FetchedMessage): unknown {
  try {
    return (JSON.parse(m.value?.toString('utf8') ?? 'null') as { id?: unknown } | null)?.id;
  } catch {
    return undefined;
  }
}

function readJsonLines(file: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as unknown);
}

/** Messages of some topics after the given start offsets, by topic, read until `enough` holds. */
async function readFrom(
  admin: KafkaAdmin,
  starts: ReadonlyMap<string, ReadonlyMap<number, string>>,
  enough: (byTopic: Map<string, FetchedMessage[]>) => boolean,
  timeoutMs = 60_000,
): Promise<Map<string, FetchedMessage[]>> {
  const group = uniqueName('golden-reader');
  for (const [topic, start] of starts) await retrying(() => admin.setCommittedOffsets(group, topic, start));
  const byTopic = new Map<string, FetchedMessage[]>([...starts.keys()].map((t) => [t, []]));
  const consumer = createGroupConsumer(testConnection('sluice-test-reader'), { groupId: group, topics: [...starts.keys()], fromBeginning: true, concurrency: 4 }, silentLogger);
  await consumer.start({
    onBatch: async (b) => {
      byTopic.get(b.topic)!.push(...b.messages);
    },
    onRebalancing: () => {},
    onAssignment: () => {},
    onCrash: () => {},
  });
  try {
    await waitFor(`messages on ${[...starts.keys()].join(', ')}`, () => enough(byTopic), timeoutMs);
  } finally {
    await consumer.disconnect();
  }
  return byTopic;
}

/** Retries an admin call while a new topic's leader is being elected. */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 20 || (err as { retriable?: boolean }).retriable !== true) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Topic-wide start offsets (end offsets now), for every partition. */
async function ends(admin: KafkaAdmin, topic: string): Promise<Map<number, string>> {
  return retrying(() => admin.endOffsets(topic));
}

function ids(messages: readonly FetchedMessage[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const m of messages) {
    const id = (JSON.parse(m.value!.toString()) as { id: number }).id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** A valid INSERT far in the future: its batch moves the watermark past every window of the case. */
function watermarkPusher(id: number): string {
  const line = readFileSync(resolve(CASES, 'boundaries/activities.jsonl'), 'utf8').split('\n')[0]!;
  const event = JSON.parse(line) as { payload: { op: string; ts_ms: number; after: Record<string, unknown> } };
  const at = Date.UTC(2030, 0, 1);
  event.payload.after = { ...event.payload.after, id, activity_timestamp: at * 1000 };
  event.payload.ts_ms = at;
  return JSON.stringify(event);
}

describe('pipelines/employee-activity.yaml on a real broker', () => {
  let admin: KafkaAdmin;
  beforeAll(async () => {
    admin = await openAdmin();
    // Topics persist between runs of the local broker; each case reads only what it produced.
    const existing = new Set(await admin.listTopics());
    const missing = [ACTIVITIES_TOPIC, ...OUTPUT_TOPICS].filter((t) => !existing.has(t));
    await admin.createTopics(missing.map((topic) => ({ topic, partitions: 1, configs: { 'retention.ms': '-1' } })));
  });
  afterAll(async () => {
    await admin.close();
  });

  // Cases of the spec as it is, without a profile: a profile's sinks write files, not these topics.
  const cases = readdirSync(CASES, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .filter((name) => ((parseYaml(readFileSync(resolve(CASES, name, 'case.yaml'), 'utf8')) ?? {}) as { profile?: unknown }).profile === undefined)
    .sort();

  it.each(cases)('golden case %s: every output topic equals its golden file', async (name) => {
    const dir = resolve(CASES, name);
    const caseFile = (parseYaml(readFileSync(resolve(dir, 'case.yaml'), 'utf8')) ?? {}) as { set?: Record<string, unknown> };
    const sets: SetOverride[] = Object.entries(caseFile.set ?? {}).map(([path, value]) => ({ path, value }));
    const input = readFileSync(resolve(dir, 'activities.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim().length > 0);
    const expected = new Map<string, string[]>(OUTPUT_TOPICS.map((t) => [t, []]));
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl') && f !== 'activities.jsonl')) {
      for (const g of readJsonLines(resolve(dir, file)) as Golden[]) expected.get(g.topic)?.push(fromGolden(g));
    }

    const group = uniqueName(`golden-${name}`);
    await retrying(async () => admin.setCommittedOffsets(group, ACTIVITIES_TOPIC, await ends(admin, ACTIVITIES_TOPIC)));
    const starts = new Map<string, Map<number, string>>();
    for (const t of OUTPUT_TOPICS) starts.set(t, await ends(admin, t));

    const loaded = await loadPipeline(SPEC, { env: { ...process.env, KAFKA_BROKERS: testBrokers().join(','), SLUICE_GROUP: group }, sets });
    if (!loaded.ok) throw new Error(`the spec did not load: ${JSON.stringify(loaded.diagnostics)}`);
    const metrics = new Metrics();
    const graph = instantiate(loaded.plan, { mode: 'run', metrics });
    const runtime = new Runtime(graph, { logger: silentLogger, metrics, clock: systemClock });
    const done = runtime.run();
    done.catch(() => {});

    const pusherId = 990_000;
    const producer = createProducer(testConnection(), {}, silentLogger);
    // One raw value per line; "null" is a tombstone. All to partition 0: the case's order matters.
    await producer.send([...input, watermarkPusher(pusherId)].map((line) => ({ topic: ACTIVITIES_TOPIC, key: null, value: line === 'null' ? null : line, partition: 0 })));
    await producer.close();

    const want = (topic: string) => expected.get(topic)!.length + (topic === 'processed-employee-activities' ? 1 : 0);
    const got = await readFrom(admin, starts, (byTopic) => OUTPUT_TOPICS.every((t) => byTopic.get(t)!.length >= want(t)));
    const actual = new Map<string, string[]>();
    for (const topic of OUTPUT_TOPICS) {
      actual.set(
        topic,
        got
          .get(topic)!
          .filter((m) => idOf(m) !== pusherId)
          .map(fromWire),
      );
    }
    // Nothing more arrives than the golden files expect.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const topic of OUTPUT_TOPICS) {
      const after = await ends(admin, topic);
      const produced = [...after].reduce((sum, [p, end]) => sum + Number(end) - Number(starts.get(topic)!.get(p) ?? 0), 0);
      expect(produced, `${topic}: messages written`).toBe(want(topic));
    }
    await runtime.stop();
    await done;
    for (const topic of OUTPUT_TOPICS) {
      expect([...actual.get(topic)!].sort(), topic).toEqual([...expected.get(topic)!].sort());
    }
    // Processed records keep their input order (one partition in, one partition out).
    expect(actual.get('processed-employee-activities')).toEqual(expected.get('processed-employee-activities'));
  });

  it('loses nothing when the runner is killed mid-stream and started again; counts the duplicates', async () => {
    const group = uniqueName('restart');
    await retrying(async () => admin.setCommittedOffsets(group, ACTIVITIES_TOPIC, await ends(admin, ACTIVITIES_TOPIC)));
    const processedStart = new Map([['processed-employee-activities', await ends(admin, 'processed-employee-activities')]]);
    const summariesStart = new Map([['employee-activity-summaries', await ends(admin, 'employee-activity-summaries')]]);
    const stream = new DebeziumEventStream(ACTIVITIES_TOPIC, 7, Date.parse('2025-03-03T06:00:00Z'));
    const total = 20_000;
    const batch = stream.take(total);
    const producer = createProducer(testConnection(), {}, silentLogger);
    await producer.send(batch.messages);
    await producer.close();

    const env = { ...process.env, KAFKA_BROKERS: testBrokers().join(','), SLUICE_GROUP: group, SLUICE_LOG_LEVEL: 'warn' };
    const start = (...extra: string[]): ChildProcess =>
      spawn(process.execPath, [resolve(repo, 'runner/bin/sluice.js'), 'run', SPEC, ...extra], { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = (child: ChildProcess) => new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const processedOf = (byTopic: Map<string, FetchedMessage[]>) => byTopic.get('processed-employee-activities')!;

    // The group was set to the topic's end above, and has no stored state: --reset-state says that
    // starting from those offsets with empty windows is intended (sluice refuses it otherwise).
    const first = start('--reset-state');
    const firstExit = exited(first);
    await readFrom(admin, processedStart, (b) => processedOf(b).length >= 4_000, 90_000);
    first.kill('SIGKILL'); // a crash: nothing drained, nothing committed at exit
    await firstExit;

    // At info level, to know when it has taken its tasks (and so handles SIGTERM).
    const second = start('--log-level', 'info');
    const secondExit = exited(second);
    let stderr = '';
    second.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const everyInsert = (b: Map<string, FetchedMessage[]>) => {
      const seen = ids(processedOf(b));
      return batch.insertIds.every((id) => seen.has(id));
    };
    // Under exactly-once the first run may have committed every enriched record before the kill
    // (a checkpoint makes a whole second's output visible at once) while its windows were still
    // open: the second run must also have written summaries before it is stopped.
    const summariesOf = (byTopic: Map<string, FetchedMessage[]>) => byTopic.get('employee-activity-summaries')!;
    let processed: FetchedMessage[] = [];
    try {
      // The first run may have committed everything before it was killed: without this wait the
      // SIGTERM below could come before the second run even installed its handlers, and kill it.
      await waitFor('the second run to take its tasks', () => stderr.includes('"tasks assigned"'), 90_000);
      const both = new Map([...processedStart, ...summariesStart]);
      processed = processedOf(await readFrom(admin, both, (b) => everyInsert(b) && summariesOf(b).length > 0, 120_000));
    } finally {
      second.kill('SIGTERM');
      expect(await secondExit, stderr).toBe(0);
    }
    const counts = ids(processed);
    expect(batch.insertIds.filter((id) => !counts.has(id))).toEqual([]);
    let duplicates = 0;
    for (const n of counts.values()) duplicates += n - 1;
    // Summaries recomputed after the restart are whole windows: duplicates repeat the same figures.
    // Read to the topic's end: under exactly-once, offsets also hold transaction markers and
    // aborted records, so the offset range does not count the messages.
    const from = summariesStart.get('employee-activity-summaries')!;
    const summaries: { value: Buffer | null }[] = [];
    await readTopicsToEnd(testConnection('sluice-test-reader'), ['employee-activity-summaries'], (r) => {
      if (BigInt(r.offset) >= BigInt(from.get(r.partition) ?? '0')) summaries.push(r);
    }, silentLogger);
    const byWindow = new Map<string, string>();
    let summaryDuplicates = 0;
    for (const m of summaries) {
      const v = JSON.parse(m.value!.toString()) as Record<string, unknown>;
      const id = `${v.employee_id}/${v.activity_type}/${v.window_start}`;
      const figures = JSON.stringify([v.activity_count, v.total_duration, v.avg_duration]);
      if (byWindow.has(id)) {
        summaryDuplicates++;
        expect(figures, id).toBe(byWindow.get(id));
      } else byWindow.set(id, figures);
    }
    console.info(
      `runner killed mid-stream: ${total} events, ${batch.insertIds.length} inserts, ${processed.length} processed written, ${duplicates} duplicates; ${byWindow.size} summaries, ${summaryDuplicates} duplicates`,
    );
    expect(byWindow.size).toBeGreaterThan(0);
  }, 300_000);
});
