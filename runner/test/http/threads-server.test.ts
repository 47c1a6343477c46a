import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/engine/logger.ts';
import { startThreadsHttpServer, threadsReadiness, type ThreadReport, type ThreadSilence, type ThreadsHttpServer } from '../../src/http/threads-server.ts';
import { family, parseExposition, valueOf } from './prometheus-text.ts';

const READY = { ready: true, reasons: [] };
const counter = (thread: number, n: number) => `# HELP sluice_records_in_total Records in.\n# TYPE sluice_records_in_total counter\nsluice_records_in_total{pipeline="p",thread="${thread}",node="src"} ${n}\n`;

describe('threadsReadiness', () => {
  it('is ready when every thread is', () => {
    expect(threadsReadiness([{ thread: 1, metrics: '', readiness: READY }, { thread: 2, metrics: '', readiness: READY }])).toEqual({ ready: true, reasons: [] });
  });

  it("is not ready when one thread is not, or did not report, with each thread's reasons", () => {
    const reports: (ThreadReport | ThreadSilence)[] = [
      { thread: 1, metrics: '', readiness: { ready: false, reasons: ['source activities is not connected', 'the last checkpoint is 40 s old'] } },
      { thread: 2, reason: 'ended' },
      { thread: 3, metrics: '', readiness: READY },
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
  let server: ThreadsHttpServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("serves every thread's metrics and the process's own, one readiness for all, and says the live view is not served", async () => {
    let reports: (ThreadReport | ThreadSilence)[] = [
      { thread: 1, metrics: counter(1, 5), readiness: READY },
      { thread: 2, metrics: counter(2, 8), readiness: READY },
    ];
    server = await startThreadsHttpServer({ address: { host: '127.0.0.1', port: 0 }, pipeline: 'p', logger: silentLogger, ask: () => Promise.resolve(reports) });

    const metrics = await fetch(`${server.url}metrics`);
    expect(metrics.status).toBe(200);
    const families = parseExposition(await metrics.text());
    expect([1, 2].map((t) => valueOf(families, 'sluice_records_in_total', { thread: String(t) }))).toEqual([5, 8]);
    expect(family(families, 'process_cpu_seconds_total').samples.map((s) => s.labels)).toEqual([{ pipeline: 'p' }]);

    expect((await fetch(`${server.url}readyz`)).status).toBe(200);
    reports = [reports[0]!, { thread: 2, reason: 'did not report within 5 s' }];
    const notReady = await fetch(`${server.url}readyz`);
    expect([notReady.status, await notReady.text()]).toEqual([503, 'not ready:\n  thread 2: did not report within 5 s\n']);
    // A silent thread's series are left out; the others' are served.
    expect(valueOf(parseExposition(await (await fetch(`${server.url}metrics`)).text()), 'sluice_records_in_total', { thread: '1' })).toBe(5);

    expect((await fetch(`${server.url}healthz`)).status).toBe(200);
    expect((await fetch(server.url)).status).toBe(501);
    expect((await fetch(`${server.url}api/status`)).status).toBe(501);
    expect((await fetch(`${server.url}nothing`)).status).toBe(404);
    expect((await fetch(`${server.url}metrics`, { method: 'POST' })).status).toBe(405);
  });
});
