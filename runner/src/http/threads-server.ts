/**
 * The HTTP server of `sluice run --threads N --http`, on the main thread. Each thread keeps its own
 * run, metrics and readiness; on every scrape or probe the server asks all of them:
 *   /metrics  every thread's series (labelled `thread`), then the process's own CPU and memory
 *             (prom-client's process metrics, kept once, by the main thread)
 *   /readyz   200 when every thread is ready; else 503 with each thread's reasons
 *   /healthz  200 while the process answers
 * The live view (/ and /api/*) is a single run's and is not served here yet: it answers 501.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../engine/logger.ts';
import { Metrics } from '../engine/metrics.ts';
import { mergeExpositions } from './exposition.ts';
import type { Readiness } from './readiness.ts';
import { closeServer, listenOn, send, type HttpAddress } from './server.ts';

/** What one thread says when asked: its exposition and its readiness. */
export interface ThreadReport {
  thread: number;
  metrics: string;
  readiness: Readiness;
}

/** A thread that did not report: it ended, or did not answer in time. */
export interface ThreadSilence {
  thread: number;
  reason: string;
}

export interface ThreadsHttpOptions {
  address: HttpAddress;
  pipeline: string;
  logger: Logger;
  /** Asks every thread for its report. */
  ask: () => Promise<(ThreadReport | ThreadSilence)[]>;
}

export interface ThreadsHttpServer {
  readonly url: string;
  close(): Promise<void>;
}

/** /readyz for the whole process: every thread ready, else each thread's reasons. */
export function threadsReadiness(reports: readonly (ThreadReport | ThreadSilence)[]): Readiness {
  const reasons: string[] = [];
  for (const r of reports) {
    if ('reason' in r) reasons.push(`thread ${r.thread}: ${r.reason}`);
    else for (const why of r.readiness.reasons) reasons.push(`thread ${r.thread}: ${why}`);
    if (!('reason' in r) && !r.readiness.ready && r.readiness.reasons.length === 0) reasons.push(`thread ${r.thread}: not ready`);
  }
  return { ready: reasons.length === 0 && reports.length > 0, reasons: reports.length === 0 ? ['no thread is running'] : reasons };
}

export async function startThreadsHttpServer(options: ThreadsHttpOptions): Promise<ThreadsHttpServer> {
  const { logger } = options;
  // The process as a whole: CPU, memory, handles. Per-thread heap and event loop figures are not kept.
  const processMetrics = new Metrics();
  processMetrics.collectProcessMetrics();
  processMetrics.setDefaultLabels({ pipeline: options.pipeline });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    switch (path) {
      case '/metrics': {
        const [reports, own] = await Promise.all([options.ask(), processMetrics.exposition()]);
        const texts = reports.flatMap((r) => ('metrics' in r ? [r.metrics] : []));
        send(res, 200, own.contentType, mergeExpositions([...texts, own.text]), head);
        return;
      }
      case '/healthz':
        send(res, 200, 'text/plain; charset=utf-8', 'ok\n', head);
        return;
      case '/readyz': {
        const r = threadsReadiness(await options.ask());
        send(res, r.ready ? 200 : 503, 'text/plain; charset=utf-8', r.ready ? 'ready\n' : `not ready:\n${r.reasons.map((x) => `  ${x}\n`).join('')}`, head);
        return;
      }
      case '/favicon.ico':
        res.writeHead(204).end();
        return;
    }
    if (path === '/' || path.startsWith('/api/') || path.startsWith('/live-view.')) {
      send(res, 501, 'text/plain; charset=utf-8', 'the live view is not served with --threads yet: /metrics, /readyz and /healthz are\n', head);
      return;
    }
    send(res, 404, 'text/plain; charset=utf-8', `no ${path} here: see /metrics, /healthz, /readyz\n`, head);
  };

  const { server, url } = await listenOn(options.address, handle, logger);
  logger.info({ url, metrics: `${url}metrics`, ready: `${url}readyz` }, 'http server listening (threads)');
  return { url, close: () => closeServer(server) };
}
