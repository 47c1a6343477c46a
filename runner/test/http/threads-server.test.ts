import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/engine/logger.ts';
import type { StatusSnapshot } from '../../src/http/live-status.ts';
import type { SluiceHttpServer } from '../../src/http/server.ts';
import { startThreadsHttpServer, threadsReadiness, type ThreadReport, type ThreadSilence } from '../../src/http/threads-server.ts';
import type { Readiness } from '../../src/http/readiness.ts';
import { loadPipeline } from '../../src/plan/load-pipeline.ts';
import type { Plan } from '../../src/plan/types.ts';
import { family, parseExposition, valueOf } from './prometheus-text.ts';

const READY: Readiness = { ready: true, reasons: [] };

/** A thread's status with one source node that read `n` records. */
function status(thread: number, n: number): StatusSnapshot {
  return {
    pipeline: 'p',
    at: 1_000 + thread,
    phase: 'running',
    ready: READY,
    uptimeSeconds: 10 * thread,
    restarts: 0,
    nodes: [{ name: 'activities', role: 'source', kind: 'kafka', in: n, out: n, failed: 0, filtered: 0, late: 0, inRate: n / 10, outRate: n / 10, failedRate: 0, failing: false }],
  };
}

function report(thread: number, metrics: string, readiness = READY, n = 0): ThreadReport {
  return { thread, metrics, readiness, status: status(thread, n), errors: thread === 2 ? { activities: [{ at: 5, message: 'not JSON', partition: '0', offset: '7' }] } : {} };
}
const counter = (thread: number, n: number) => `# HELP sluice_records_in_total Records in.\n# TYPE sluice_records_in_total counter\nsluice_records_in_total{pipeline="p",thread="${thread}",node="activities"} ${n}\n`;

describe('threadsReadiness', () => {
  it('is ready when every thread is', () => {
    expect(threadsReadiness([report(1, ''), report(2, '')])).toEqual({ ready: true, reasons: [] });
  });

  it("is not ready when one thread is not, or did not report, with each thread's reasons", () => {
    const reports: (ThreadReport | ThreadSilence)[] = [
      report(1, '', { ready: false, reasons: ['source activities is not connected', 'the last checkpoint is 40 s old'] }),
      { thread: 2, reason: 'ended' },
      report(3, ''),
    ];
    expect(threadsReadiness(reports)).toEqual({
      ready: false,
      reasons: ['thread 1: source activities is not connected', 'thread 1: the last checkpoint is 40 s old', 'thread 2: ended'],
    });
  });

  it('is not ready with no thread at all', () => {
    expect(threadsReadiness([])).toEqual({ ready: false, reasons: ['no thread is running'] });
  });
});

describe('the HTTP server of a run on threads', () => {
  let server: SluiceHttpServer | undefined;
  let plan: Plan;
  beforeAll(async () => {
    const loaded = await loadPipeline('pipelines/employee-activity.yaml', { env: {} });
    if (!loaded.ok) throw new Error('pipelines/employee-activity.yaml does not load');
    plan = loaded.plan;
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("serves every thread's metrics and the process's own, one readiness, one status and a node's errors for all", async () => {
    let reports: (ThreadReport | ThreadSilence)[] = [report(1, counter(1, 5), READY, 5), report(2, counter(2, 8), READY, 8)];
    server = await startThreadsHttpServer({ address: { host: '127.0.0.1', port: 0 }, plan, logger: silentLogger, ask: () => Promise.resolve(reports) });

    const metrics = await fetch(`${server.url}metrics`);
    expect(metrics.status).toBe(200);
    const families = parseExposition(await metrics.text());
    expect([1, 2].map((t) => valueOf(families, 'sluice_records_in_total', { thread: String(t) }))).toEqual([5, 8]);
    expect(family(families, 'process_cpu_seconds_total').samples.map((s) => s.labels)).toEqual([{ pipeline: 'employee-activity' }]);

    expect((await fetch(`${server.url}readyz`)).status).toBe(200);
    const merged = (await (await fetch(`${server.url}api/status`)).json()) as StatusSnapshot;
    expect([merged.phase, merged.ready.ready, merged.uptimeSeconds, merged.threads, merged.nodes.map((n) => [n.name, n.in, n.inRate])]).toEqual(['running', true, 20, 2, [['activities', 13, 1.3]]]);
    const node = (await (await fetch(`${server.url}api/nodes/activities`)).json()) as { errors: unknown[] };
    expect(node.errors, "a node's errors, from every thread").toEqual([{ at: 5, message: 'not JSON', partition: '0', offset: '7' }]);

    reports = [reports[0]!, { thread: 2, reason: 'did not report within 5 s' }];
    const notReady = await fetch(`${server.url}readyz`);
    expect([notReady.status, await notReady.text()]).toEqual([503, 'not ready:\n  thread 2: did not report within 5 s\n']);
    // A silent thread's series are left out; the others' are served.
    expect(valueOf(parseExposition(await (await fetch(`${server.url}metrics`)).text()), 'sluice_records_in_total', { thread: '1' })).toBe(5);

    expect((await fetch(`${server.url}healthz`)).status).toBe(200);
    expect((await fetch(server.url)).status, 'the live view page').toBe(200);
    expect((await fetch(`${server.url}nothing`)).status).toBe(404);
    expect((await fetch(`${server.url}metrics`, { method: 'POST' })).status).toBe(405);
  });
});
