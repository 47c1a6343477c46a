/**
 * `sluice run --threads N`: N runs of the same pipeline in one process, one per worker thread, as
 * Kafka Streams' `num.stream.threads`. Each thread is what a process of its own would be: its own
 * consumers in the application's groups, so Kafka's group protocol shares the tasks among the
 * threads exactly as among processes, and its own checkpoints. A JavaScript thread runs one
 * event loop: one process kept the main thread of a drain saturated while the machine's other
 * core sat partly idle. The main thread only starts the workers, passes signals on and waits.
 *
 * A signal asks every thread to stop cleanly (each drains, checkpoints and ends as a process
 * would); a second exits at once. A thread that ends with a failure stops the others, so the
 * process fails as a whole (Kafka Streams' SHUTDOWN_CLIENT) instead of running on short a thread.
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../engine/logger.ts';
import type { RecentError } from '../engine/runtime.ts';
import type { StatusSnapshot } from '../http/live-status.ts';
import type { HttpAddress, SluiceHttpServer } from '../http/server.ts';
import type { Plan } from '../plan/types.ts';
import { startThreadsHttpServer, type ThreadReport, type ThreadReportBody, type ThreadSilence } from '../http/threads-server.ts';
import { EXIT_INTERRUPTED, EXIT_OK } from './command.ts';

/** What a thread is given: the `sluice run` arguments (without `--threads`) and its number. */
export interface ThreadData {
  argv: string[];
  thread: number;
}

/**
 * Messages from the main thread to a run thread: stop, join the groups now (every thread is
 * ready), or report (for --http: its status, readiness and recent errors, and its metrics when
 * `metrics`; answered with the same number).
 */
export type ToThread = { stop: NodeJS.Signals } | { start: true } | { report: number; metrics: boolean };

/**
 * Messages from a run thread to the main thread: prepared, waiting to join its groups; its report;
 * or why it has none (`silent`: still loading the spec, or its report failed).
 */
export type FromThread = { ready: true } | ({ report: number } & ThreadReportBody) | { report: number; silent: string };

/** How long a scrape or probe waits for a thread's report: a thread answers between batches. */
export const REPORT_TIMEOUT_MS = 5_000;

/** The largest `--threads`: more threads than cores only add contention. */
export const MAX_THREADS = 64;

/** `--threads` as a count: a whole number from 1 to MAX_THREADS, else an error message. */
export function parseThreadCount(text: string): number | string {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) return `--threads must be a whole number from 1 to ${MAX_THREADS}, got \`${text}\``;
  return n;
}

/**
 * The arguments each thread runs with: without `--threads` and its value, in either spelling
 * (`--threads 2`, `--threads=2`), since a thread never starts more; without `--reset-state`,
 * which the main thread carries out once before any thread starts; and without `--http`, whose
 * server the main thread runs for all of them.
 */
export function threadArgv(argv: readonly string[]): string[] {
  const { tokens } = parseArgs({
    args: [...argv],
    options: { threads: { type: 'string' }, http: { type: 'string' }, 'reset-state': { type: 'boolean' } },
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const drop = new Set<number>();
  for (const t of tokens) {
    if (t.kind !== 'option' || (t.name !== 'threads' && t.name !== 'http' && t.name !== 'reset-state')) continue;
    drop.add(t.index);
    // A value given as the next argument (not `--threads=2`).
    if (t.name !== 'reset-state' && t.value !== undefined && !t.inlineValue) drop.add(t.index + 1);
  }
  return argv.filter((_, i) => !drop.has(i));
}

/**
 * The exit code of the whole process from its threads': the first failure (1) or invalid spec
 * (2) in thread order, else an interrupted one (130), else 0.
 */
export function processExitCode(codes: readonly number[]): number {
  const failed = codes.find((c) => c !== EXIT_OK && c !== EXIT_INTERRUPTED);
  if (failed !== undefined) return failed;
  return codes.includes(EXIT_INTERRUPTED) ? EXIT_INTERRUPTED : EXIT_OK;
}

/** The script each thread runs: run-thread.ts, with tsx registered. */
const THREAD_ENTRY = new URL('../../bin/run-thread.js', import.meta.url);

/** The --http server of a run on threads: where, and what it names the pipeline and logs to. */
export interface ThreadsHttp {
  address: HttpAddress;
  plan: Plan;
  logger: Logger;
}

/**
 * Runs `argv` on `threads` worker threads; resolves with the process's exit code once all ended.
 * `entry` is the thread's script (tests give one of their own). With `http`, the main thread serves
 * there what --http serves, for all threads (http/threads-server.ts); a server that cannot listen
 * fails the run before any thread starts.
 */
export async function runOnThreads(
  argv: readonly string[],
  threads: number,
  onNote: (text: string) => void,
  entry: URL = THREAD_ENTRY,
  http?: ThreadsHttp,
): Promise<number> {
  const args = threadArgv(argv);
  const workers: Worker[] = [];
  /** Threads still running, by number, and the reports they owe, by request number. */
  const running = new Map<number, Worker>();
  const owed = new Map<number, { thread: number; settle: (report: ThreadReport | ThreadSilence) => void }>();
  let nextRequest = 0;
  const askThread = (thread: number, withMetrics: boolean): Promise<ThreadReport | ThreadSilence> => {
    const worker = running.get(thread);
    if (!worker) return Promise.resolve({ thread, reason: 'ended' });
    const request = nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        owed.delete(request);
        resolve({ thread, reason: `did not report within ${REPORT_TIMEOUT_MS / 1000} s` });
      }, REPORT_TIMEOUT_MS);
      owed.set(request, {
        thread,
        settle: (report) => {
          clearTimeout(timer);
          resolve(report);
        },
      });
      worker.postMessage({ report: request, metrics: withMetrics } satisfies ToThread);
    });
  };
  let server: SluiceHttpServer | undefined;
  if (http) {
    server = await startThreadsHttpServer({
      address: http.address,
      plan: http.plan,
      logger: http.logger,
      ask: (withMetrics) => Promise.all(Array.from({ length: threads }, (_, i) => askThread(i + 1, withMetrics))),
    });
  }
  let stopping: NodeJS.Signals | undefined;
  const stopAll = (signal: NodeJS.Signals) => {
    for (const w of workers) w.postMessage({ stop: signal } satisfies ToThread);
  };
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      onNote(`second signal (${signal}): exiting without draining`);
      process.exit(EXIT_INTERRUPTED);
    }
    // Already stopping (a thread failed): a second stop would end the threads without draining.
    if (stopping !== undefined) return;
    stopping = signal;
    stopAll(signal);
  };
  // Threads not yet prepared to join their groups. They join together once none is left: with
  // joins one after another, the first took every task and gave half of them up again seconds into
  // its work, through a rebalance (a broker's group.initial.rebalance.delay.ms, 3 s by default,
  // hides this only when it is not 0). A thread that ended counts as ready: the rest must not wait.
  const preparing = new Set(Array.from({ length: threads }, (_, i) => i + 1));
  const prepared = (thread: number) => {
    if (!preparing.delete(thread) || preparing.size > 0) return;
    for (const w of workers) w.postMessage({ start: true } satisfies ToThread);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const ended = Array.from({ length: threads }, (_, i) => {
      const worker = new Worker(entry, { workerData: { argv: args, thread: i + 1 } satisfies ThreadData });
      workers.push(worker);
      running.set(i + 1, worker);
      return new Promise<number>((resolve) => {
        worker.on('error', (err) => onNote(`thread ${i + 1} crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
        worker.on('message', (message: unknown) => {
          if ((message as { ready?: unknown } | null)?.ready === true) prepared(i + 1);
          const report = threadReport(message, i + 1);
          if (report) {
            owed.get(report.request)?.settle(report.report);
            owed.delete(report.request);
          }
        });
        worker.on('exit', (code) => {
          running.delete(i + 1);
          // What it still owed, it will never send.
          for (const [request, o] of owed) {
            if (o.thread !== i + 1) continue;
            owed.delete(request);
            o.settle({ thread: i + 1, reason: 'ended' });
          }
          prepared(i + 1);
          // One thread's failure ends the run: the others stop cleanly, their work checkpointed.
          if (code !== EXIT_OK && stopping === undefined) {
            onNote(`thread ${i + 1} ended with exit code ${code}: stopping the other threads`);
            stopping = 'SIGTERM';
            stopAll('SIGTERM');
          }
          resolve(code);
        });
      });
    });
    return processExitCode(await Promise.all(ended));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server?.close();
  }
}

/**
 * A thread's report, or why it has none, from its message. The numbers, texts and lists the main
 * thread reads directly are checked; the status snapshot is the thread's own LiveStatus sample, taken
 * by this same program, and only its shape is.
 */
function threadReport(message: unknown, thread: number): { request: number; report: ThreadReport | ThreadSilence } | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  if (typeof m.report !== 'number') return undefined;
  if (typeof m.silent === 'string') return { request: m.report, report: { thread, reason: m.silent } };
  const readiness = m.readiness as Record<string, unknown> | null | undefined;
  const status = m.status as Record<string, unknown> | null | undefined;
  if ((m.metrics !== undefined && typeof m.metrics !== 'string') || typeof readiness !== 'object' || readiness === null || typeof status !== 'object' || status === null) return undefined;
  if (typeof readiness.ready !== 'boolean' || !Array.isArray(readiness.reasons) || !readiness.reasons.every((r) => typeof r === 'string')) return undefined;
  if (typeof status.phase !== 'string' || !Array.isArray(status.nodes) || typeof m.errors !== 'object' || m.errors === null) return undefined;
  return {
    request: m.report,
    report: {
      thread,
      ...(typeof m.metrics === 'string' ? { metrics: m.metrics } : {}),
      readiness: { ready: readiness.ready, reasons: readiness.reasons as string[] },
      status: status as unknown as StatusSnapshot,
      errors: m.errors as Record<string, RecentError[]>,
    },
  };
}
