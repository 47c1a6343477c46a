/**
 * `sluice run --threads 2` of pipelines/employee-activity.yaml (its own spec, exactly-once; only
 * topic names and group overridden): one process whose two threads share the tasks of both stages
 * as two processes would, against an independent computation made here from the produced events
 * (employee-outputs.ts: ExpectedOutputs, no sluice code): every INSERT enriched exactly once, every
 * hourly summary exactly once and right, nothing late. SIGINT stops both threads cleanly, exit 0.
 * With --http, the main thread serves both threads' metrics (told apart by `thread`), one readiness
 * and one status; each thread's written-records counter is checked against what that thread logs it
 * wrote at its clean stop, their sum against the inserts produced here, and the status against the
 * threads' series. The live view, opened in headless Chromium, shows the process: the two threads
 * named, and each node's figures summed over them.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/engine/logger.ts';
// Before kafkajs: client.ts fixes kafkajs's read_committed filter, which the reader here relies on.
import { createProducer, type KafkaAdmin } from '../../src/io/kafka/client.ts';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { groupMembers, openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import { allWritten, BacklogWriter, closedHours, compareOutputs, OutputReader, startSluice, type SluiceProcess } from '../integration/employee-outputs.ts';
import { exitWithin, jsonLogLines, recordsOutBy } from '../integration/sluice-process.ts';
import { expectExactlyOnceAndRight } from '../integration/expect-outputs.ts';
import { family, parseExposition, valueOf } from '../http/prometheus-text.ts';
import type { StatusSnapshot } from '../../src/http/live-status.ts';
import { launchChromium } from '../http/browser.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SPEC = resolve(repo, 'pipelines/employee-activity.yaml');
const EVENTS = 40_000;
const PARTITIONS = 6;

/** Each member's partitions, once the group is stable and together they hold all `partitions` once. */
async function members(admin: Admin, groupId: string, partitions: number): Promise<number[][] | undefined> {
  const g = await groupMembers(admin, groupId);
  if (g.state !== 'Stable') return undefined;
  const all = g.members.flatMap((m) => m.partitions);
  return all.length === partitions && new Set(all).size === partitions ? g.members.map((m) => m.partitions) : undefined;
}

/** The URL the run's HTTP server logged, once it did. */
function httpUrl(sluice: SluiceProcess): string | undefined {
  const line = jsonLogLines(sluice.stderr()).find((l) => l.msg === 'http server listening');
  return typeof line?.url === 'string' ? line.url : undefined;
}

/** What the live view at `url` shows in a real browser once it runs: the uptime line, and each node's figures as drawn. */
async function liveView(url: string, nodes: readonly string[]): Promise<{ uptime: string; figures: Map<string, { in: number; out: number }>; pageErrors: string[] }> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('#phase.good', { timeout: 20_000 });
    const figures = new Map<string, { in: number; out: number }>();
    for (const name of nodes) {
      const g = page.locator(`g.node[data-node="${name}"]`);
      expect(await g.count(), `node ${name} drawn once`).toBe(1);
      figures.set(name, { in: Number(await g.getAttribute('data-in')), out: Number(await g.getAttribute('data-out')) });
    }
    return { uptime: (await page.locator('#uptime').textContent()) ?? '', figures, pageErrors };
  } finally {
    await browser.close();
  }
}

/** Writes the run's log to `file` and returns the path, for a failure message to point at. */
function savedLog(sluice: SluiceProcess, file: string): string {
  writeFileSync(file, sluice.stderr());
  return file;
}

describe('sluice run --threads 2: one process, two threads sharing the tasks, against an independent computation', () => {
  let admin: KafkaAdmin;
  let groupAdmin: Admin;
  let dir: string;
  const created: string[] = [];
  let group = '';
  let run: SluiceProcess | undefined;

  beforeAll(async () => {
    admin = await openAdmin();
    groupAdmin = new Kafka({ brokers: testBrokers(), clientId: 'sluice-test-threads', logLevel: logLevel.NOTHING }).admin();
    await groupAdmin.connect();
    dir = mkdtempSync(join(tmpdir(), 'sluice-threads-'));
  });

  afterAll(async () => {
    if (run && run.child.exitCode === null && run.child.signalCode === null) process.kill(-run.child.pid!, 'SIGKILL');
    const state = (await admin.listTopics().catch(() => [] as string[])).filter((t) => group !== '' && t.startsWith(`${group}-`));
    await admin.deleteTopics([...created, ...state]).catch(() => {});
    await admin.close();
    await groupAdmin.disconnect();
  });

  it('both threads hold tasks of both stages; every enriched row and hourly summary exactly once and right; one /metrics, /readyz and status for both; SIGINT stops both, exit 0', async () => {
    const input = uniqueName('threads-activities');
    await admin.createTopics([{ topic: input, partitions: PARTITIONS, configs: { 'retention.ms': '-1' } }]);
    created.push(input);
    group = uniqueName('threads');
    const topics = { processed: `${group}-processed`, summaries: `${group}-summaries`, late: `${group}-late`, dead: `${group}-dead` };
    await admin.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1, configs: { 'retention.ms': '-1' } })));
    created.push(...Object.values(topics));

    const producer = createProducer(testConnection(), {}, silentLogger);
    const backlog = new BacklogWriter(producer, input, { partitions: PARTITIONS, seed: 31, startMs: Date.parse('2025-03-10T07:00:00Z') });
    // Half before the start, half once the threads share the tasks: both then have work of their own.
    await backlog.produce(EVENTS / 2);
    const reader = new OutputReader(topics, { late: topics.late });
    await reader.start();
    const sluice = startSluice(SPEC, { input, group, topics, brokers: testBrokers().join(','), cwd: dir, args: ['--threads', '2', '--http', '0'] });
    run = sluice;
    const logs = () => savedLog(sluice, join(dir, 'threads.log'));
    let scraped = '';
    let status: StatusSnapshot | undefined;
    let view: Awaited<ReturnType<typeof liveView>> | undefined;
    try {
      let shared: number[][][] = [];
      await waitFor(
        'the two threads to share the 6 partitions of each stage',
        async () => {
          if (sluice.child.exitCode !== null) throw new Error(`sluice exited (${sluice.child.exitCode}); log: ${logs()}`);
          const held = await Promise.all([group, `${group}-hourly-repartition`].map((g) => members(groupAdmin, g, PARTITIONS)));
          // Two members in each group, each holding some of its partitions.
          if (!held.every((h): h is number[][] => h !== undefined && h.length === 2 && h.every((p) => p.length > 0))) return false;
          shared = held;
          return true;
        },
        90_000,
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; log: ${logs()}`);
      });
      const url = await waitFor('the http server', () => httpUrl(sluice) !== undefined, 30_000).then(() => httpUrl(sluice)!);
      // Ready once both threads run with their sources connected.
      await waitFor('/readyz to answer 200', async () => (await fetch(`${url}readyz`)).status === 200, 60_000).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}: it answers ${await (await fetch(`${url}readyz`)).text()}; log: ${logs()}`);
      });
      expect((await fetch(url)).status, 'the live view').toBe(200);
      await backlog.produce(EVENTS / 2);
      const expected = backlog.result();
      expect(closedHours(expected).length).toBeGreaterThan(50);
      await waitFor('every insert and every closed hour', () => allWritten(reader, expected), 180_000).catch((err: unknown) => {
        const r = compareOutputs(reader, expected);
        throw new Error(`${(err as Error).message}: ${reader.distinctProcessed()} of ${expected.inserts.size} enriched, ${r.unsummarised.length} closed hours unsummarised; log: ${logs()}`);
      });
      // A moment for anything that should not come (a summary written twice) to show.
      await new Promise((r) => setTimeout(r, 2_000));
      scraped = await (await fetch(`${url}metrics`)).text();
      status = (await (await fetch(`${url}api/status`)).json()) as StatusSnapshot;
      // The live view of both threads in a real browser, once nothing more comes in.
      view = await liveView(url, status.nodes.map((n) => n.name));

      process.kill(-sluice.child.pid!, 'SIGINT');
      const ended = await exitWithin(sluice, 60_000, 'sluice --threads 2 after SIGINT');
      expect(ended, `exit after SIGINT; log: ${logs()}`).toEqual({ code: 0, signal: null });

      const result = expectExactlyOnceAndRight(reader, expected);
      // Each thread stopped cleanly and wrote enriched rows of its own tasks: its clean stop logs what it wrote, with its number.
      const wrote = recordsOutBy(sluice, (l) => (l.msg === 'pipeline stopped cleanly' && typeof l.thread === 'number' ? l.thread : undefined));
      expect([...wrote.keys()].sort(), `threads that logged a clean stop; log: ${logs()}`).toEqual([1, 2]);
      expect([1, 2].map((t) => (wrote.get(t)?.processed ?? 0) > 0), `enriched rows per thread: ${[1, 2].map((t) => wrote.get(t)?.processed ?? 0).join(', ')}`).toEqual([true, true]);
      // /metrics, read with a parser of the format: each thread's series under its number, equal to
      // what the thread logged it wrote; each family once; the process's own metrics once, unlabelled by thread.
      const families = parseExposition(scraped);
      const written = [1, 2].map((t) => valueOf(families, 'sluice_records_written_total', { node: 'processed', thread: String(t) }));
      expect(written, `enriched rows written per thread in /metrics, against the threads' logs`).toEqual([wrote.get(1)?.processed, wrote.get(2)?.processed]);
      expect(written.reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBeGreaterThanOrEqual(expected.inserts.size);
      const names = families.map((f) => f.name);
      expect(names.length, 'each family once').toBe(new Set(names).size);
      expect(family(families, 'process_cpu_seconds_total').samples.map((x) => x.labels.thread), "the process's CPU, once, without a thread").toEqual([undefined]);
      // Each thread's own heap and busy time: the heaps live in the process, so together they stay below its resident memory.
      const heaps = [1, 2].map((t) => valueOf(families, 'sluice_thread_heap_used_bytes', { thread: String(t) }) ?? 0);
      const rss = valueOf(families, 'process_resident_memory_bytes', {})!;
      expect(heaps.every((h) => h > 1_000_000), `heap used per thread: ${heaps.join(', ')}`).toBe(true);
      expect(heaps[0]! + heaps[1]!, `the threads' heaps against the process's resident memory (${rss})`).toBeLessThan(rss);
      const busy = [1, 2].map((t) => valueOf(families, 'sluice_thread_busy_seconds_total', { thread: String(t) }) ?? 0);
      expect(busy.every((b) => b > 0), `busy seconds per thread: ${busy.join(', ')}`).toBe(true);
      // The live view's status: the threads added up, as their series in /metrics, and every event read.
      const readByThread = [1, 2].map((t) => valueOf(families, 'sluice_records_in_total', { node: 'activities', thread: String(t) }) ?? 0);
      const node = (name: string) => status?.nodes.find((n) => n.name === name);
      expect([status?.phase, status?.threads, node('activities')?.in, node('processed')?.out], 'the status of the process, against the threads\' series').toEqual(['running', 2, readByThread[0]! + readByThread[1]!, written[0]! + written[1]!]);
      expect(node('activities')!.in).toBeGreaterThanOrEqual(EVENTS);
      // The page draws the process, not one thread: both threads' events read, every insert enriched once and written.
      expect(view?.uptime, 'the live view names the threads').toContain('2 threads');
      expect([view?.figures.get('activities')?.in, view?.figures.get('processed')?.out], "the page's figures, against the threads' series").toEqual([readByThread[0]! + readByThread[1]!, written[0]! + written[1]!]);
      expect(view!.figures.get('processed')!.out, 'enriched rows on the page, against the inserts produced here').toBeGreaterThanOrEqual(expected.inserts.size);
      expect(view?.pageErrors).toEqual([]);
      console.info(
        `--threads 2: ${EVENTS} events, ${expected.inserts.size} inserts, ${result.summaries} summaries, all exactly once and right, 0 late; ` +
          `partitions per thread (stage 0, stage 1): ${JSON.stringify(shared)}; enriched per thread: ${[1, 2].map((t) => wrote.get(t)?.processed ?? 0).join(', ')}; ` +
          `heap used per thread ${heaps.map((h) => `${(h / 2 ** 20).toFixed(0)} MiB`).join(', ')} of ${(rss / 2 ** 20).toFixed(0)} MiB resident; busy ${busy.map((b) => `${b.toFixed(1)} s`).join(', ')}`,
      );
    } finally {
      if (sluice.child.exitCode === null && sluice.child.signalCode === null) process.kill(-sluice.child.pid!, 'SIGKILL');
      await reader.stop();
      await producer.close();
    }
  }, 360_000);

  it('--reset-state drops the stored state once, before either thread prepares; the run is then exactly once and right', async () => {
    const input = uniqueName('threads-reset-activities');
    await admin.createTopics([{ topic: input, partitions: PARTITIONS, configs: { 'retention.ms': '-1' } }]);
    created.push(input);
    const resetGroup = uniqueName('threads-reset');
    const topics = { processed: `${resetGroup}-processed`, summaries: `${resetGroup}-summaries`, late: `${resetGroup}-late`, dead: `${resetGroup}-dead` };
    // State kept for another partitioning: without the reset, the run refuses it (E_STATE_PARTITIONS).
    const stale = `${resetGroup}-hourly-changelog`;
    await admin.createTopics([...Object.values(topics), stale].map((topic) => ({ topic, partitions: 1, configs: { 'retention.ms': '-1' } })));
    created.push(...Object.values(topics));
    const producer = createProducer(testConnection(), {}, silentLogger);
    const backlog = new BacklogWriter(producer, input, { partitions: PARTITIONS, seed: 32, startMs: Date.parse('2025-03-11T07:00:00Z') });
    await backlog.produce(EVENTS / 2);
    const expected = backlog.result();
    const reader = new OutputReader(topics, { late: topics.late });
    await reader.start();
    const sluice = startSluice(SPEC, { input, group: resetGroup, topics, brokers: testBrokers().join(','), cwd: dir, args: ['--threads', '2', '--reset-state'] });
    run = sluice;
    const logs = () => savedLog(sluice, join(dir, 'threads-reset.log'));
    try {
      await waitFor('every insert and every closed hour', () => {
        if (sluice.child.exitCode !== null) throw new Error(`sluice exited (${sluice.child.exitCode}); log: ${logs()}`);
        return allWritten(reader, expected);
      }, 180_000).catch((err: unknown) => {
        const r = compareOutputs(reader, expected);
        throw new Error(`${(err as Error).message}: ${reader.distinctProcessed()} of ${expected.inserts.size} enriched, ${r.unsummarised.length} closed hours unsummarised; log: ${logs()}`);
      });
      await new Promise((r) => setTimeout(r, 2_000));
      process.kill(-sluice.child.pid!, 'SIGINT');
      expect(await exitWithin(sluice, 60_000, 'sluice --threads 2 --reset-state after SIGINT'), `exit after SIGINT; log: ${logs()}`).toEqual({ code: 0, signal: null });
      expectExactlyOnceAndRight(reader, expected);
      const lines = jsonLogLines(sluice.stderr());
      const dropped = lines.filter((l) => l.msg === 'state topics deleted');
      expect(dropped.map((l) => l.thread), `state dropped by (undefined: the main thread); log: ${logs()}`).toEqual([undefined]);
      expect(dropped[0]!.topics, 'the stale changelog was among the topics dropped').toContain(stale);
    } finally {
      if (sluice.child.exitCode === null && sluice.child.signalCode === null) process.kill(-sluice.child.pid!, 'SIGKILL');
      await reader.stop();
      await producer.close();
      const state = (await admin.listTopics().catch(() => [] as string[])).filter((t) => t.startsWith(`${resetGroup}-`));
      await admin.deleteTopics(state).catch(() => {});
    }
  }, 300_000);
});
