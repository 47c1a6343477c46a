/**
 * The restart matrix: pipelines/employee-activity.yaml (its own spec, only topics, group and
 * delivery changed) drains a backlog of Debezium events in 6 partitions while the `sluice` process
 * is stopped (SIGINT) and killed (SIGKILL) in the middle of an hour and started again in the same
 * group. What reaches the output topics (read_committed) is compared, record by record, with an
 * independent computation made here from the produced events: every INSERT enriched, and every
 * hourly summary (count, sum and average of duration per employee, activity type and hour).
 *
 * exactly-once: every enriched id exactly once, every summary exactly once and right.
 * at-least-once: every id at least once, the last summary per key right; duplicates counted.
 * Then the same state is refused when the spec's window changes, and when its changelog is gone.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/engine/logger.ts';
import { createProducer, type KafkaAdmin, type ProducedMessage } from '../../src/io/kafka/client.ts';
import { openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import { allWritten, compareOutputs, OutputReader, produceBacklog, startSluice, type EmployeeTopics, type Expected, type SluiceProcess } from './employee-outputs.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SPEC = resolve(repo, 'pipelines/employee-activity.yaml');
// 50,000 events still span many hours (13,019 closed hour summaries); 100,000 cost CI a minute more.
const EVENTS = Number(process.env.RESTART_MATRIX_EVENTS ?? 50_000);
const PARTITIONS = 6;

describe('restart matrix: the employee pipeline stopped and killed mid-hour, against an independent computation', () => {
  let admin: KafkaAdmin;
  let input: string;
  let expected: Expected;
  let specDir: string;

  beforeAll(async () => {
    admin = await openAdmin();
    input = uniqueName('matrix-activities');
    await admin.createTopics([{ topic: input, partitions: PARTITIONS, configs: { 'retention.ms': '-1' } }]);
    const producer = createProducer(testConnection(), {}, silentLogger);
    expected = await produceBacklog(producer, input, { events: EVENTS, partitions: PARTITIONS, seed: 11, startMs: Date.parse('2025-02-03T07:00:00Z') });
    await producer.close();
    specDir = mkdtempSync(join(tmpdir(), 'sluice-matrix-'));
  }, 180_000);

  afterAll(async () => {
    await admin.deleteTopics([input]).catch(() => {});
    await admin.close();
  });

  function specWith(delivery: 'exactly-once' | 'at-least-once', edit: (text: string) => string = (t) => t): string {
    const file = join(specDir, `${uniqueName('spec')}.yaml`);
    const text = readFileSync(SPEC, 'utf8').replace(/^delivery: .*$/m, `delivery: ${delivery}`);
    writeFileSync(file, edit(text));
    return file;
  }

  function start(spec: string, group: string, topics: EmployeeTopics, args: string[] = []): SluiceProcess {
    return startSluice(spec, { input, group, topics, brokers: testBrokers().join(','), cwd: specDir, args });
  }

  async function outputTopics(prefix: string): Promise<EmployeeTopics> {
    const topics = { processed: `${prefix}-processed`, summaries: `${prefix}-summaries`, late: `${prefix}-late`, dead: `${prefix}-dead` };
    await admin.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1, configs: { 'retention.ms': '-1' } })));
    return topics;
  }

  /** Runs the scenario: a process per stop, each stopped once `fraction` of the inserts are out. */
  async function scenario(delivery: 'exactly-once' | 'at-least-once', stops: { signal: 'SIGINT' | 'SIGKILL'; fraction: number }[]) {
    const group = uniqueName(`matrix-${delivery}`);
    const topics = await outputTopics(group);
    const spec = specWith(delivery);
    const reader = new OutputReader({ processed: topics.processed, summaries: topics.summaries });
    await reader.start();
    try {
      for (const { signal, fraction } of stops) {
        const run = start(spec, group, topics);
        // Counted only once this process runs (it restored its state and reads): a commit can
        // reveal a whole second of output at once, which may already pass the mark.
        await waitFor('the pipeline running', () => run.stderr().includes('"pipeline starting"'), 60_000);
        await waitFor(`${Math.round(fraction * 100)}% of the inserts`, () => reader.distinctProcessed() >= fraction * expected.inserts.size, 120_000);
        process.kill(-run.child.pid!, signal);
        const { code } = await run.exit;
        if (signal === 'SIGINT') expect(code, run.stderr()).toBe(0);
      }
      const last = start(spec, group, topics);
      // Running before it can be told to stop: the run before may already have written everything,
      // and a SIGINT while node still loads the modules kills the process (exit code null).
      await waitFor('the last run running', () => last.stderr().includes('"pipeline starting"'), 60_000);
      await waitFor(
        'every insert and every closed hour',
        () => allWritten(reader, expected),
        180_000,
      );
      // A moment for anything that should not come (duplicates of a committed epoch) to show.
      await new Promise((r) => setTimeout(r, 2_000));
      process.kill(-last.child.pid!, 'SIGINT');
      expect((await last.exit).code, last.stderr()).toBe(0);
      await new Promise((r) => setTimeout(r, 1_000));
      return { reader, group, topics };
    } finally {
      await reader.stop();
    }
  }

  /** Per task, how many checkpoints it committed since `sinceMs` and when its last one was (from a debug-level log). */
  function checkpointsSince(log: string, sinceMs: number): string {
    const byTask = new Map<string, { count: number; last: number }>();
    for (const line of log.split('\n')) {
      if (!line.includes('"checkpoint committed"')) continue;
      const { time, task } = JSON.parse(line) as { time: number; task?: string };
      const t = byTask.get(task ?? '-') ?? { count: 0, last: 0 };
      if (time >= sinceMs) t.count++;
      t.last = Math.max(t.last, time);
      byTask.set(task ?? '-', t);
    }
    const now = Date.now();
    return [...byTask].sort().map(([task, t]) => `${task}: ${t.count}, last ${Math.round((now - t.last) / 1000)} s ago`).join(', ') || 'none logged';
  }

  /** How many tasks of a stage a process last said it runs (its `tasks assigned` log line). */
  function lastTasks(log: string, stage: string): number {
    const lines = [...log.matchAll(new RegExp(`"stage":"${stage}","tasks":\\[([^\\]]*)\\]`, 'g'))];
    const last = lines.at(-1)?.[1];
    return last ? last.split(',').length : 0;
  }

  function check(reader: OutputReader) {
    const result = compareOutputs(reader, expected);
    expect(result.missing.slice(0, 10), 'inserts never enriched').toEqual([]);
    expect(result.wrong.slice(0, 10), `${result.wrong.length} of ${result.summaries} summaries wrong`).toEqual([]);
    expect(result.unsummarised.slice(0, 10), 'closed hours never summarised').toEqual([]);
    return result;
  }

  it('exactly-once: killed once and stopped once in the middle of an hour, the outputs equal the independent computation, each record once', async () => {
    const { reader } = await scenario('exactly-once', [
      { signal: 'SIGKILL', fraction: 0.3 },
      { signal: 'SIGINT', fraction: 0.6 },
    ]);
    const { processedDuplicates, summaryDuplicates, summaries } = check(reader);
    console.info(`restart matrix, exactly-once: ${EVENTS} events, ${expected.inserts.size} inserts, ${summaries} summaries; duplicates: ${processedDuplicates} enriched, ${summaryDuplicates} summaries`);
    expect(processedDuplicates).toBe(0);
    expect(summaryDuplicates).toBe(0);
  }, 600_000);

  it('at-least-once: killed twice in the middle of an hour, nothing is lost and the last summary of every hour is right; duplicates are counted', async () => {
    const { reader } = await scenario('at-least-once', [
      { signal: 'SIGKILL', fraction: 0.35 },
      { signal: 'SIGKILL', fraction: 0.7 },
    ]);
    const { processedDuplicates, summaryDuplicates, summaries } = check(reader);
    console.info(`restart matrix, at-least-once: ${EVENTS} events, ${expected.inserts.size} inserts, ${summaries} summaries; duplicates: ${processedDuplicates} enriched, ${summaryDuplicates} summaries`);
  }, 600_000);

  it('exactly-once: the broker restarted under a running transaction; the run resumes from its last checkpoint, nothing lost or written twice', async () => {
    // This restarts the broker scripts/kafka.sh manages; an external KAFKA_BROKERS cluster cannot be restarted here.
    const kafka = (cmd: string) => execFileSync('bash', [resolve(repo, 'scripts/kafka.sh'), cmd], { cwd: repo, encoding: 'utf8' });
    expect(kafka('status'), 'the broker-restart test needs the broker of scripts/kafka.sh').toMatch(/^running/);
    const group = uniqueName('matrix-bounce');
    const topics = await outputTopics(group);
    // The reader's own consumer goes through the broker restart too; it starts a new one when that
    // one stays silent, so a reader that kafkajs never brought back is not taken for a stalled run.
    const reader = new OutputReader({ processed: topics.processed, summaries: topics.summaries }, { restartWhenIdleMs: 30_000 });
    await reader.start();
    // At debug level the log has every task's checkpoints: a failure says which tasks stopped committing.
    const run = start(specWith('exactly-once'), group, topics, ['--log-level', 'debug']);
    try {
      await waitFor('the pipeline running', () => run.stderr().includes('"pipeline starting"'), 60_000);
      await waitFor('a third of the inserts', () => reader.distinctProcessed() >= expected.inserts.size / 3, 120_000);
      kafka('stop');
      await new Promise((r) => setTimeout(r, 3_000));
      kafka('start');
      const restartedAt = Date.now();
      await waitFor('every insert and every closed hour after the restart', () => allWritten(reader, expected), 240_000).catch(async (err: unknown) => {
        const log = join(specDir, `${group}.log`);
        writeFileSync(log, run.stderr());
        const warnings = run.stderr().split('\n').filter((l) => /"level":[4-6]0/.test(l));
        throw new Error(
          `${(err as Error).message}; ${reader.distinctProcessed()} enriched so far; the reader started a new consumer ${reader.restarts.length} time(s) (${reader.restarts.slice(0, 3).join('; ')}); ` +
            `the processed topic ends at offset ${[...(await admin.endOffsets(topics.processed)).values()].join(',')} and the reader has read to ${reader.lastOffsetRead(topics.processed)}; ` +
            `checkpoints since the broker came back: ${checkpointsSince(run.stderr(), restartedAt)}; the run's log is in ${log}; its last warnings and errors:\n${warnings.slice(-12).join('\n').slice(-5000)}`,
        );
      });
      await new Promise((r) => setTimeout(r, 2_000));
      process.kill(-run.child.pid!, 'SIGINT');
      expect((await run.exit).code, run.stderr()).toBe(0);
      await new Promise((r) => setTimeout(r, 1_000));
      const { processedDuplicates, summaryDuplicates } = check(reader);
      const restarts = (run.stderr().match(/restarting from the last checkpoint/g) ?? []).length;
      console.info(`restart matrix, broker restart under exactly-once: ${restarts} in-process restart(s); duplicates: ${processedDuplicates} enriched, ${summaryDuplicates} summaries; the reader started a new consumer ${reader.restarts.length} time(s)${reader.restarts.length ? `: ${reader.restarts.join('; ')}` : ''}`);
      expect(processedDuplicates).toBe(0);
      expect(summaryDuplicates).toBe(0);
    } finally {
      if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGKILL');
      await reader.stop();
    }
  }, 600_000);

  it('a process paused past its session timeout is fenced when it resumes, and goes on sharing the work: the outputs stay exactly once', async () => {
    // Kafka Streams' zombie: the group gives a silent member's partitions away, and the member
    // does not know. The newer process's tasks fence its transactional ids; its next checkpoint
    // fails, and it must neither write anything visible nor exit, but let go and rejoin.
    const group = uniqueName('matrix-fence');
    const topics = await outputTopics(group);
    const spec = specWith('exactly-once');
    const reader = new OutputReader({ processed: topics.processed, summaries: topics.summaries });
    await reader.start();
    const older = start(spec, group, topics);
    let newer: SluiceProcess | undefined;
    try {
      await waitFor('the first instance running', () => older.stderr().includes('"pipeline starting"'), 60_000);
      await waitFor('a fifth of the inserts', () => reader.distinctProcessed() >= expected.inserts.size / 5, 120_000);
      process.kill(-older.child.pid!, 'SIGSTOP');
      newer = start(spec, group, topics);
      const took = newer;
      // Past the 6 s session timeout the group gives the paused process's partitions to the newer one.
      await waitFor('the newer process owning every source partition', () => lastTasks(took.stderr(), '0') === PARTITIONS, 120_000);
      const logBeforeResume = older.stderr().length;
      process.kill(-older.child.pid!, 'SIGCONT');
      // Fenced: it hands the tasks over when the group's revoke reaches it (fenced if their last
      // checkpoint had anything to commit, else simply revoked), or restarts and restores them when
      // the group gives them back before it noticed; only what it logged after resuming counts.
      // What it wrote is checked below either way.
      const resumed = () => older.stderr().slice(logBeforeResume);
      await waitFor('the resumed process fenced or revoked', () => /task handed over|fenced before its revoke|E_TASK_LOST|"tasks revoked"/.test(resumed()), 120_000).catch((err: unknown) => {
        const log = join(specDir, `${group}-older.log`);
        writeFileSync(log, older.stderr());
        const lines = older.stderr().split('\n').filter((l) => /"level":[3-6]0/.test(l) && !l.includes('"logger":"kafkajs"'));
        throw new Error(`${(err as Error).message}; the resumed process's log is in ${log}; its last lines:\n${lines.slice(-15).join('\n').slice(-5000)}`);
      });
      await waitFor('every insert and every closed hour', () => allWritten(reader, expected), 240_000);
      await new Promise((r) => setTimeout(r, 2_000));
      for (const p of [older, newer]) process.kill(-p.child.pid!, 'SIGINT');
      expect((await older.exit).code, older.stderr()).toBe(0);
      expect((await newer.exit).code, newer.stderr()).toBe(0);
      await new Promise((r) => setTimeout(r, 1_000));
      const { processedDuplicates, summaryDuplicates } = check(reader);
      expect(processedDuplicates).toBe(0);
      expect(summaryDuplicates).toBe(0);
    } finally {
      for (const r of [older, newer]) if (r && r.child.exitCode === null) process.kill(-r.child.pid!, 'SIGKILL');
      await reader.stop();
    }
  }, 600_000);

  it('refuses stored state that the edited spec cannot use, and a state whose changelog was deleted, before writing anything', async () => {
    const group = uniqueName('matrix-refuse');
    const topics = await outputTopics(group);
    const first = start(specWith('exactly-once'), group, topics);
    await waitFor('a committed checkpoint', async () => [...(await admin.committedOffsets(group, input)).values()].some((o) => BigInt(o) > 0n), 60_000);
    process.kill(-first.child.pid!, 'SIGINT');
    expect((await first.exit).code, first.stderr()).toBe(0);
    const written = async () => [...(await admin.endOffsets(topics.processed)).values()].reduce((n, o) => n + Number(o), 0);
    const before = await written();

    const halfHour = start(specWith('exactly-once', (t) => t.replace('tumbling: 1h', 'tumbling: 30m')), group, topics);
    expect((await halfHour.exit).code, halfHour.stderr()).toBe(1);
    expect(halfHour.stderr()).toMatch(/E_STATE_INCOMPATIBLE|stored state cannot be used/);
    expect(halfHour.stderr()).toMatch(/steps\.hourly: its definition changed since its state was stored \(window size changed from 1h to 30m\)/);
    expect(await written()).toBe(before);

    await admin.deleteTopics([`${group}-hourly-changelog`]);
    await waitFor('the changelog gone', async () => !(await admin.listTopics()).includes(`${group}-hourly-changelog`), 30_000);
    const noChangelog = start(specWith('exactly-once'), group, topics);
    expect((await noChangelog.exit).code, noChangelog.stderr()).toBe(1);
    expect(noChangelog.stderr()).toMatch(/changelog .*-hourly-changelog is missing or was deleted.*--reset-state/s);
    expect(await written()).toBe(before);
  }, 300_000);
});
