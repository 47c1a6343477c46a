/**
 * Scale-out across processes (issue 10): `sluice run pipelines/employee-activity.yaml` (its own
 * spec, exactly-once as it declares; only topic names, group and the source's session timeout
 * overridden) started several times in one consumer group shares the work as tasks, one per input
 * partition: stage 0 (source -> enriched -> processed, and the `hourly` window's repartition) and
 * stage 1 (the repartition topic -> the hourly window -> summaries / late).
 *
 * What reaches the output topics (read_committed) is compared with an independent computation
 * made here from the produced events (employee-outputs.ts: ExpectedOutputs, no sluice code):
 * every INSERT enriched exactly once, every hourly summary (count, sum and average of duration
 * per employee, activity type and hour) exactly once and right, and nothing on the late topic.
 *
 * 1. Three processes drain a backlog keyed by row id; one is killed (kill -9, its whole process
 *    group) in the middle, a fourth joins later. The work must really have been shared.
 * 2. A backlog whose partitions hold very different event-time ranges (partition 0 the earliest
 *    40% of the stream, the others the later half, an overlap between), all of it there before
 *    sluice starts, drained at once through the repartition by two processes: Kafka Streams'
 *    stream time runs ahead with the later partitions and drops the earlier ones' records as late;
 *    here there must be no wrong window and no late record.
 * 3. A repartition topic that exists with another partition count: `sluice run` refuses to start,
 *    naming the topic and both counts, before writing anything.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/engine/logger.ts';
// Before kafkajs: client.ts fixes kafkajs's read_committed filter, which the reader here relies on.
import { createProducer, type KafkaAdmin } from '../../src/io/kafka/client.ts';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { groupMembers, openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import {
  allWritten,
  closedHours,
  compareOutputs,
  HOUR,
  OutputReader,
  BacklogWriter,
  produceBacklog,
  produceSkewedBacklog,
  startSluice,
  windowStartOf,
  type EmployeeTopics,
  type Expected,
  type SluiceProcess,
} from './employee-outputs.ts';
import { exitWithin, jsonLogLines, recordsOutBy } from './sluice-process.ts';
import { expectExactlyOnceAndRight } from './expect-outputs.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SPEC = resolve(repo, 'pipelines/employee-activity.yaml');
const EVENTS = Number(process.env.SCALE_OUT_EVENTS ?? 100_000);
const SKEWED_EVENTS = Number(process.env.SCALE_OUT_SKEWED_EVENTS ?? 60_000);
const PARTITIONS = 6;
/** The source's session timeout, when not startSluice's 6 s. */
const SESSION_TIMEOUT = process.env.SCALE_OUT_SESSION_TIMEOUT;

/** Every task a process's log says it was given, per stage (`tasks assigned`; tasks taken away are not logged). */
function tasksEver(run: SluiceProcess): Map<string, Set<string>> {
  const ever = new Map<string, Set<string>>();
  for (const line of jsonLogLines(run.stderr())) {
    if (line.msg !== 'tasks assigned') continue;
    const all = ever.get(String(line.stage)) ?? new Set<string>();
    for (const t of Array.isArray(line.tasks) ? line.tasks : []) all.add(String(t));
    ever.set(String(line.stage), all);
  }
  return ever;
}

/** Whether the group is stable with exactly `clients` as members, each holding some of the `partitions`, together all, none twice. */
async function sharedBy(admin: Admin, groupId: string, clients: readonly string[], partitions: number): Promise<boolean> {
  const { state, members } = await groupMembers(admin, groupId);
  if (state !== 'Stable' || members.length !== clients.length) return false;
  if (!clients.every((c) => members.some((m) => m.client === c && m.partitions.length > 0))) return false;
  const all = members.flatMap((m) => m.partitions);
  return all.length === partitions && new Set(all).size === partitions;
}

async function describeAssignments(admin: Admin, groupIds: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const id of groupIds) {
    const { state, members } = await groupMembers(admin, id).catch(() => ({ state: 'unreadable', members: [] }));
    parts.push(`${id} (${state}): ${members.map((m) => `${m.client} [${m.partitions.join(',')}]`).join(' ')}`);
  }
  return parts.join('; ');
}

/** Throws, with its log, when one of the processes exited on its own. */
function assertRunning(runs: readonly SluiceProcess[]): void {
  for (const [i, r] of runs.entries()) {
    if (r.child.exitCode !== null) throw new Error(`process #${i + 1} exited with code ${r.child.exitCode}; its log ends:\n${r.stderr().slice(-3000)}`);
  }
}

/** Records a process wrote per sink, over all its runs: a clean stop's summary and a failed run's figures. */
function recordsOutOf(run: SluiceProcess): Record<string, number> | undefined {
  return recordsOutBy(run, (l) => (l.msg === 'pipeline stopped cleanly' || (typeof l.msg === 'string' && l.msg.startsWith('pipeline failed')) ? 'all' : undefined)).get('all');
}

describe('scale-out: sluice run started several times in one group shares the employee pipeline, against an independent computation', () => {
  let admin: KafkaAdmin;
  /** kafkajs' own admin, for what sluice's does not offer: the members of a group and their partitions. */
  let groupAdmin: Admin;
  let dir: string;
  const created: string[] = [];
  const groups: string[] = [];
  const running: SluiceProcess[] = [];

  beforeAll(async () => {
    admin = await openAdmin();
    groupAdmin = new Kafka({ brokers: testBrokers(), clientId: 'sluice-test-groups', logLevel: logLevel.NOTHING }).admin();
    await groupAdmin.connect();
    dir = mkdtempSync(join(tmpdir(), 'sluice-scale-out-'));
    // The spec as it is: its default delivery is what the issue asks for.
    expect(readFileSync(SPEC, 'utf8')).toMatch(/^delivery: exactly-once$/m);
  });

  afterAll(async () => {
    for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) process.kill(-r.child.pid!, 'SIGKILL');
    const state = (await admin.listTopics().catch(() => [] as string[])).filter((t) => groups.some((g) => t.startsWith(`${g}-`)));
    await admin.deleteTopics([...created, ...state]).catch(() => {});
    await admin.close();
    await groupAdmin.disconnect();
  });

  async function inputTopic(prefix: string): Promise<string> {
    const input = uniqueName(prefix);
    await admin.createTopics([{ topic: input, partitions: PARTITIONS, configs: { 'retention.ms': '-1' } }]);
    created.push(input);
    return input;
  }

  async function outputTopics(group: string): Promise<EmployeeTopics> {
    groups.push(group);
    const topics = { processed: `${group}-processed`, summaries: `${group}-summaries`, late: `${group}-late`, dead: `${group}-dead` };
    await admin.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1, configs: { 'retention.ms': '-1' } })));
    created.push(...Object.values(topics));
    return topics;
  }

  /** `sluice run` of the spec; `client` names its Kafka clients, so the groups show which process holds what. */
  function start(input: string, group: string, topics: EmployeeTopics, client?: string): SluiceProcess {
    const args = client ? ['--set', `sources.activities.kafka.client_id=${client}`] : [];
    // startSluice shortens the source's session timeout to 6 s (a killed process's partitions move sooner); this lengthens it again.
    if (SESSION_TIMEOUT) args.push('--set', `sources.activities.kafka.session_timeout=${SESSION_TIMEOUT}`);
    const run = startSluice(SPEC, { input, group, topics, brokers: testBrokers().join(','), cwd: dir, args });
    running.push(run);
    return run;
  }

  /** Keeps every process's log in a file and says where, for a failure's message. */
  function keepLogs(name: string, runs: readonly SluiceProcess[]): string {
    return runs
      .map((r, i) => {
        const file = join(dir, `${name}-${i + 1}.log`);
        writeFileSync(file, r.stderr());
        return file;
      })
      .join(', ');
  }

  async function stopAll(runs: readonly SluiceProcess[]): Promise<void> {
    for (const r of runs) if (r.child.exitCode === null && r.child.signalCode === null) process.kill(-r.child.pid!, 'SIGINT');
    for (const [i, r] of runs.entries()) {
      const { code, signal } = await exitWithin(r, 60_000, `process #${i + 1} after SIGINT`);
      expect({ code, signal }, `process #${i + 1} stops cleanly on SIGINT; its log ends:\n${r.stderr().slice(-3000)}`).toEqual({ code: 0, signal: null });
    }
  }

  it('three processes share a 6-partition backlog keyed by row id; one is killed -9 mid-run and a fourth joins: every enriched row and every hourly summary exactly once and right', async () => {
    const t0 = performance.now();
    const input = await inputTopic('scale-activities');
    const producer = createProducer(testConnection(), {}, silentLogger);
    // 60% of the backlog before the start, the rest only after the kill: the run cannot have
    // drained everything before the kill (on a slow machine it once had, waiting for the victim
    // to hold tasks of both stages), and the survivors must take on new work.
    const backlog = new BacklogWriter(producer, input, { partitions: PARTITIONS, seed: 23, startMs: Date.parse('2025-03-03T07:00:00Z') });
    const held = Math.round(EVENTS * 0.4);
    await backlog.produce(EVENTS - held);
    const before = backlog.result();
    const produced = performance.now();

    const group = uniqueName('scale-three');
    const stage1 = `${group}-hourly-repartition`;
    const topics = await outputTopics(group);
    const reader = new OutputReader(topics, { late: topics.late });
    await reader.start();
    const client = (n: number) => `${group}-p${n}`;
    const first = [1, 2, 3].map((n) => start(input, group, topics, client(n)));
    const all = [...first];
    const failure = async (err: unknown, runs: readonly SluiceProcess[]) =>
      new Error(`${(err as Error).message}; groups: ${await describeAssignments(groupAdmin, [group, stage1])}; logs: ${keepLogs('three', runs)}`);
    try {
      // The three share both stages at the same time: each holds some partitions of each group, none all.
      await waitFor(
        'the three processes to share the 6 partitions of each stage',
        async () => {
          assertRunning(all);
          return (await sharedBy(groupAdmin, group, [1, 2, 3].map(client), PARTITIONS)) && (await sharedBy(groupAdmin, stage1, [1, 2, 3].map(client), PARTITIONS));
        },
        90_000,
      ).catch(async (err: unknown) => {
        throw await failure(err, all);
      });
      const shared = await describeAssignments(groupAdmin, [group, stage1]);
      await waitFor('30% of the inserts', () => (assertRunning(all), reader.distinctProcessed() >= 0.3 * before.inserts.size), 120_000).catch(async (err: unknown) => {
        throw await failure(err, all);
      });
      const victim = first[1]!;
      // Killed while it holds tasks of both stages: a group caught between two rebalances (eager,
      // in kafkajs) shows no assignment for a moment, so wait for one that does.
      let victimHeld: number[][] = [];
      await waitFor(
        'the victim holding partitions of both stages',
        async () => {
          victimHeld = (await Promise.all([group, stage1].map((g) => groupMembers(groupAdmin, g)))).map((g) => g.members.find((m) => m.client === client(2))?.partitions ?? []);
          return victimHeld.every((p) => p.length > 0);
        },
        30_000,
      ).catch(async (err: unknown) => {
        throw await failure(err, all);
      });
      const atKill = reader.distinctProcessed();
      process.kill(-victim.child.pid!, 'SIGKILL');
      expect((await exitWithin(victim, 10_000, 'the killed process')).signal).toBe('SIGKILL');
      const killed = performance.now();
      await backlog.produce(held);
      const expected = backlog.result();
      expect(expected.inserts.size).toBeGreaterThan(EVENTS / 2);
      expect(closedHours(expected).length).toBeGreaterThan(100);
      // Killed in the middle of the run, holding tasks of both stages.
      expect(atKill, 'killed before the drain ended').toBeLessThan(expected.inserts.size);
      expect(victimHeld.map((p) => p.length > 0), `partitions of stage 0 and 1 the killed process held: ${JSON.stringify(victimHeld)}`).toEqual([true, true]);

      await new Promise((r) => setTimeout(r, 3_000));
      const fourth = start(input, group, topics, client(4));
      all.push(fourth);
      const survivors = [first[0]!, first[2]!, fourth];

      await waitFor('every insert and every closed hour', () => (assertRunning(survivors), allWritten(reader, expected)), 180_000).catch(async (err: unknown) => {
        const r = compareOutputs(reader, expected);
        throw await failure(
          new Error(
            `${(err as Error).message}: ${reader.distinctProcessed()} of ${expected.inserts.size} enriched, ${r.unsummarised.length} closed hours unsummarised ` +
              `(first: ${r.unsummarised.slice(0, 3).join(', ')}), ${r.wrong.length} wrong, ${reader.late.length} late`,
          ),
          all,
        );
      });
      const drained = performance.now();
      // The groups re-formed around the survivors and the fourth: the killed one's partitions went to them.
      await waitFor(
        'the two survivors and the fourth process to share both stages',
        async () => {
          assertRunning(survivors);
          return (await sharedBy(groupAdmin, group, [1, 3, 4].map(client), PARTITIONS)) && (await sharedBy(groupAdmin, stage1, [1, 3, 4].map(client), PARTITIONS));
        },
        90_000,
      ).catch(async (err: unknown) => {
        throw await failure(err, all);
      });
      const reformed = await describeAssignments(groupAdmin, [group, stage1]);
      // A moment for anything that should not come (an epoch written twice) to show.
      await new Promise((r) => setTimeout(r, 3_000));
      await stopAll(survivors);
      await new Promise((r) => setTimeout(r, 1_000));

      const { summaries } = expectExactlyOnceAndRight(reader, expected);
      // The work was shared, not just the assignments: more than one of the surviving processes
      // wrote enriched rows (each counts its own tasks' records in its runs' summaries).
      const wrote = survivors.map((r) => recordsOutOf(r)?.processed ?? 0);
      expect(wrote.filter((n) => n > 0).length, `enriched rows written per surviving process (1st, 3rd, 4th): ${wrote.join(', ')}`).toBeGreaterThanOrEqual(2);
      const summariesWrote = survivors.map((r) => recordsOutOf(r)?.summaries ?? 0);
      const restarts = all.map((r) => jsonLogLines(r.stderr()).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('restarting from the last checkpoint')).length);
      console.info(
        `scale-out, 3 processes + kill -9 + a fourth: ${EVENTS} events, ${expected.inserts.size} inserts, ${summaries} summaries, all exactly once and right, 0 late; ` +
          `${EVENTS - held} produced in ${((produced - t0) / 1000).toFixed(1)} s, the rest after the kill; killed at ${atKill} enriched (${Math.round((atKill / expected.inserts.size) * 100)}%) ` +
          `${((killed - produced) / 1000).toFixed(1)} s after start, holding ${JSON.stringify(victimHeld)}; drained ${((drained - killed) / 1000).toFixed(1)} s after the kill; ` +
          `before the kill: ${shared}; after: ${reformed}; enriched written by the survivors (1st, 3rd, 4th): ${wrote.join(', ')}; summaries: ${summariesWrote.join(', ')}; ` +
          `in-process restarts per process: ${restarts.join(', ')}; tasks the fourth was given: ${JSON.stringify(Object.fromEntries([...tasksEver(fourth)].map(([k, v]) => [k, v.size])))}`,
      );
    } finally {
      for (const r of all) if (r.child.exitCode === null && r.child.signalCode === null) process.kill(-r.child.pid!, 'SIGKILL');
      await reader.stop();
      await producer.close();
    }
  }, 420_000);

  it('a backlog whose partitions hold very different event-time ranges, drained at once through the repartition by two processes: no wrong window, no late record', async () => {
    const input = await inputTopic('scale-skewed');
    const producer = createProducer(testConnection(), {}, silentLogger);
    // Partition 0: the first 40% of the stream (its earliest days) and a share of the next 10%;
    // partitions 1-5: that share and the whole second half. All there before sluice starts but for
    // partition 0's share of that 10% band, its last events: they follow once both processes hold
    // stage 1's tasks. Until then the band's windows cannot close (partition 0 holds the watermark
    // before them), so both processes have windows of their own to close (the first of two to join
    // can otherwise drain everything alone before the second gets its share). Each partition stays
    // in time order, so nothing of it is late.
    const expected = await produceSkewedBacklog(producer, input, {
      events: SKEWED_EVENTS,
      partitions: PARTITIONS,
      seed: 31,
      startMs: Date.parse('2025-05-05T07:00:00Z'),
      partitionOf: (fraction, id) => (fraction < 0.4 ? 0 : fraction < 0.5 ? id % PARTITIONS : 1 + (id % (PARTITIONS - 1))),
      holdBack: (fraction, partition) => partition === 0 && fraction >= 0.4 && fraction < 0.5,
    });
    await producer.close();
    expect(expected.heldBack.length).toBeGreaterThan(SKEWED_EVENTS / 200);
    // The fixture is what it claims: partition 0 starts and ends days before every other one.
    const [p0, ...rest] = expected.ranges;
    for (const r of rest) {
      expect(Date.parse(r.from) - Date.parse(p0!.from), `partition ${r.partition} starts days after partition 0: ${JSON.stringify(expected.ranges)}`).toBeGreaterThan(24 * HOUR);
      expect(Date.parse(r.to) - Date.parse(p0!.to)).toBeGreaterThan(24 * HOUR);
    }
    // Windows that hold records of partition 0 and of the others: an early close shows as a wrong count.
    const mixed = [...expected.summaries.keys()].filter((k) => {
      const start = windowStartOf(k);
      return rest.some((r) => start + HOUR > Date.parse(r.from)) && start < Date.parse(p0!.to);
    }).length;
    expect(mixed).toBeGreaterThan(0);

    const group = uniqueName('scale-skewed');
    const stage1 = `${group}-hourly-repartition`;
    const topics = await outputTopics(group);
    const reader = new OutputReader(topics, { late: topics.late });
    await reader.start();
    const client = (n: number) => `${group}-p${n}`;
    const runs = [start(input, group, topics, client(1)), start(input, group, topics, client(2))];
    const failure = async (err: unknown) => new Error(`${(err as Error).message}; groups: ${await describeAssignments(groupAdmin, [group, stage1])}; logs: ${keepLogs('skewed', runs)}`);
    try {
      await waitFor(
        'the two processes to share the repartition topic (stage 1)',
        async () => {
          assertRunning(runs);
          return sharedBy(groupAdmin, stage1, [client(1), client(2)], PARTITIONS);
        },
        90_000,
      ).catch(async (err: unknown) => {
        throw await failure(err);
      });
      const shared = await describeAssignments(groupAdmin, [group, stage1]);
      const late = createProducer(testConnection(), {}, silentLogger);
      try {
        for (let i = 0; i < expected.heldBack.length; i += 5_000) await late.send(expected.heldBack.slice(i, i + 5_000));
      } finally {
        await late.close();
      }
      await waitFor('every insert and every closed hour', () => (assertRunning(runs), allWritten(reader, expected)), 180_000).catch(async (err: unknown) => {
        const r = compareOutputs(reader, expected);
        throw await failure(
          new Error(
            `${(err as Error).message}: ${reader.distinctProcessed()} of ${expected.inserts.size} enriched, ${r.unsummarised.length} closed hours unsummarised, ` +
              `${r.wrong.length} wrong (first: ${r.wrong.slice(0, 3).join('; ')}), ${reader.late.length} late`,
          ),
        );
      });
      await new Promise((r) => setTimeout(r, 3_000));
      await stopAll(runs);
      await new Promise((r) => setTimeout(r, 1_000));
      const { summaries } = expectExactlyOnceAndRight(reader, expected);
      // Both windows' halves did work: each process's stage-1 tasks emitted summaries.
      const summariesWrote = runs.map((r) => recordsOutOf(r)?.summaries ?? 0);
      expect(summariesWrote.every((n) => n > 0), `summaries written per process: ${summariesWrote.join(', ')}`).toBe(true);
      const beyond = [...new Set(reader.summaries.map((s) => s.key))].filter((k) => windowStartOf(k) + HOUR > expected.closedBy).length;
      console.info(
        `scale-out, skewed backlog through the repartition, 2 processes: ${SKEWED_EVENTS} events, ${expected.inserts.size} inserts; partitions ${expected.ranges.map((r) => `${r.partition}: ${r.events} events ${r.from.slice(0, 16)}..${r.to.slice(0, 16)}`).join('; ')}; ` +
          `${summaries} summaries all right and once (${closedHours(expected).length} required closed, ${mixed} mixing partition 0 with the others, ${beyond} beyond partition 0's end), 0 late; ` +
          `summaries written per process ${summariesWrote.join(', ')}; groups: ${shared}`,
      );
    } finally {
      for (const r of runs) if (r.child.exitCode === null && r.child.signalCode === null) process.kill(-r.child.pid!, 'SIGKILL');
      await reader.stop();
    }
  }, 360_000);

  it('refuses to start, naming the topic and both counts, when the repartition topic exists with another partition count; nothing is written', async () => {
    const input = await inputTopic('scale-wrong');
    const group = uniqueName('scale-wrong');
    const topics = await outputTopics(group);
    const repartition = `${group}-hourly-repartition`;
    const wrong = 3;
    await admin.createTopics([{ topic: repartition, partitions: wrong }]);
    const producer = createProducer(testConnection(), {}, silentLogger);
    await produceBacklog(producer, input, { events: 500, partitions: PARTITIONS, seed: 3, startMs: Date.parse('2025-06-02T08:00:00Z') });
    await producer.close();

    const run = start(input, group, topics);
    const { code } = await exitWithin(run, 90_000, 'sluice run with a wrong repartition topic');
    const log = run.stderr();
    expect(code, log).not.toBe(0);
    expect(code, log).not.toBeNull();
    expect(log).toContain('E_REPARTITION');
    const errorLine = jsonLogLines(log).find((l) => typeof l.msg === 'string' && l.msg.includes(repartition));
    expect(errorLine, `an error naming ${repartition}; log:\n${log}`).toBeDefined();
    const text = String(errorLine!.msg).replaceAll(repartition, '<topic>');
    expect(text, 'the topic has 3 partitions').toMatch(new RegExp(`\\b${wrong}\\b`));
    expect(text, 'the pipeline needs 6').toMatch(new RegExp(`\\b${PARTITIONS}\\b`));

    // Nothing was written or committed, and the topic was left as it is.
    const written = async (topic: string) => [...(await admin.endOffsets(topic)).values()].reduce((n, o) => n + Number(o), 0);
    expect(await written(topics.processed)).toBe(0);
    expect(await written(topics.summaries)).toBe(0);
    expect(await written(repartition)).toBe(0);
    expect((await admin.topicOffsets(repartition)).size).toBe(wrong);
    expect([...(await admin.committedOffsets(group, input)).values()].every((o) => BigInt(o) <= 0n)).toBe(true);
  }, 120_000);
});
