/**
 * The HTTP server of `sluice run --threads N --http`, on the main thread: the same endpoints and
 * live view as one run's (server.ts), gathered from the threads, each of which keeps its own run,
 * metrics and status. On every scrape, probe or live-view sample the server asks all of them:
 *   /metrics   every thread's series (labelled `thread`), then the process's own CPU and memory
 *              (prom-client's process metrics, kept once, by the main thread)
 *   /readyz    200 when every thread is ready; else 503 with each thread's reasons
 *   /api/...   the threads' statuses as one (threads-status.ts); a node's errors from all threads
 */
import type { Logger } from '../engine/logger.ts';
import { Metrics } from '../engine/metrics.ts';
import type { RecentError } from '../engine/runtime.ts';
import type { Plan } from '../plan/types.ts';
import { mergeExpositions } from './exposition.ts';
import { LiveStatus, type StatusSnapshot } from './live-status.ts';
import { readiness, type Readiness } from './readiness.ts';
import { KEPT_ERRORS, type RunStatus } from './run-status.ts';
import { serve, type HttpAddress, type ServedRun, type SluiceHttpServer } from './server.ts';
import { collectThreadMetrics } from './thread-metrics.ts';
import { mergeStatuses } from './threads-status.ts';

/** What one thread says when asked. */
export interface ThreadReport {
  thread: number;
  /** Its exposition, when asked for (a scrape); left out for probes and live-view samples. */
  metrics?: string;
  readiness: Readiness;
  status: StatusSnapshot;
  /** Recent errors by node (nodes without any left out). */
  errors: Record<string, RecentError[]>;
}

/** What a thread sends, without its number (the main thread knows whom it asked). */
export type ThreadReportBody = Omit<ThreadReport, 'thread'>;

/** A thread that did not report: it ended, or did not answer in time. */
export interface ThreadSilence {
  thread: number;
  reason: string;
}

export interface ThreadsHttpOptions {
  address: HttpAddress;
  plan: Plan;
  logger: Logger;
  /** Asks every thread for its report, with its metrics exposition or without. */
  ask: (withMetrics: boolean) => Promise<(ThreadReport | ThreadSilence)[]>;
  /** How often the live view is updated, ms. Default 1000. */
  sampleMs?: number;
}

function reported(reports: readonly (ThreadReport | ThreadSilence)[]): ThreadReport[] {
  return reports.filter((r): r is ThreadReport => !('reason' in r));
}

/** /readyz for the whole process: every thread ready, else each thread's reasons. */
export function threadsReadiness(reports: readonly (ThreadReport | ThreadSilence)[]): Readiness {
  if (reports.length === 0) return { ready: false, reasons: ['no thread is running'] };
  const reasons: string[] = [];
  for (const r of reports) {
    if ('reason' in r) reasons.push(`thread ${r.thread}: ${r.reason}`);
    else if (!r.readiness.ready) reasons.push(...(r.readiness.reasons.length > 0 ? r.readiness.reasons : ['not ready']).map((why) => `thread ${r.thread}: ${why}`));
  }
  return { ready: reasons.length === 0, reasons };
}

/** The threads of a run on threads, as the server shows one run. */
export function threadsServed(options: Pick<ThreadsHttpOptions, 'plan' | 'ask'>): ServedRun {
  const { plan, ask } = options;
  // The process as a whole: CPU, memory, handles. Each thread's heap and busy time are its own series (thread-metrics.ts).
  const processMetrics = new Metrics();
  processMetrics.collectProcessMetrics();
  processMetrics.setDefaultLabels({ pipeline: plan.name });
  return {
    plan,
    async exposition() {
      const [reports, own] = await Promise.all([ask(true), processMetrics.exposition()]);
      return { contentType: own.contentType, text: mergeExpositions([...reported(reports).map((r) => r.metrics ?? ''), own.text]) };
    },
    async readiness() {
      return threadsReadiness(await ask(false));
    },
    async sample() {
      const reports = await ask(false);
      const ready = threadsReadiness(reports);
      const statuses = reported(reports).map((r) => r.status);
      const threads = reports.length;
      if (statuses.length > 0) return { ...mergeStatuses(statuses, ready), threads };
      // No thread answered: the process is starting, or every thread ended.
      return { pipeline: plan.name, ...(plan.profile !== undefined ? { profile: plan.profile } : {}), at: Date.now(), phase: 'starting', ready, uptimeSeconds: 0, restarts: 0, threads, nodes: [] };
    },
    async recentErrors(node) {
      const errors = reported(await ask(false)).flatMap((r) => r.errors[node] ?? []);
      return errors.sort((a, b) => a.at - b.at).slice(-KEPT_ERRORS);
    },
  };
}

/**
 * How a thread of a run on threads reports to the main thread's server: its run's status sample,
 * readiness and recent errors, and its exposition when asked for one. Its series are labelled with
 * its number, and its heap and busy time are among them (thread-metrics.ts); the process metrics
 * are the main thread's (threadsServed).
 */
export function threadReporter(status: RunStatus, thread: number): (withMetrics: boolean) => Promise<ThreadReportBody> {
  const { plan, metrics } = status;
  metrics.setDefaultLabels({ pipeline: plan.name, thread: String(thread) });
  collectThreadMetrics(metrics);
  const live = new LiveStatus(status);
  return async (withMetrics) => {
    // Either runs the collectors (lag), which the status sample then reads.
    const exposition = withMetrics ? (await metrics.exposition()).text : (await metrics.collect(), undefined);
    const errors: Record<string, RecentError[]> = {};
    for (const n of plan.nodes) {
      const recent = status.recentErrors(n.name);
      if (recent.length > 0) errors[n.name] = recent;
    }
    return { ...(exposition !== undefined ? { metrics: exposition } : {}), readiness: readiness(status), status: live.sample(), errors };
  };
}

export async function startThreadsHttpServer(options: ThreadsHttpOptions): Promise<SluiceHttpServer> {
  return serve(threadsServed(options), options);
}
