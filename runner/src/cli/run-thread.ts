/**
 * One thread of `sluice run --threads N` (run-threads.ts): runs the `sluice run` command as a
 * process would, except that its stop requests come as messages from the main thread (signals
 * reach only the main thread), and its log lines carry its number.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { processIO, type CliIO } from './command.ts';
import { command } from './run.ts';
import type { ThreadReportBody } from '../http/threads-server.ts';
import type { FromThread, ThreadData, ToThread } from './run-threads.ts';

function threadData(data: unknown): ThreadData {
  const d = data as Partial<ThreadData> | null;
  if (!d || !Array.isArray(d.argv) || !d.argv.every((a) => typeof a === 'string') || typeof d.thread !== 'number') {
    throw new Error('run-thread: started without its workerData ({ argv, thread })');
  }
  return { argv: d.argv, thread: d.thread };
}

function stopSignal(message: unknown): NodeJS.Signals | undefined {
  const stop = (message as { stop?: unknown } | null)?.stop;
  return stop === 'SIGINT' || stop === 'SIGTERM' ? stop : undefined;
}

function isStart(message: unknown): message is Extract<ToThread, { start: true }> {
  return (message as { start?: unknown } | null)?.start === true;
}

function reportRequest(message: unknown): { request: number; withMetrics: boolean } | undefined {
  const m = message as { report?: unknown; metrics?: unknown } | null;
  return typeof m?.report === 'number' ? { request: m.report, withMetrics: m.metrics === true } : undefined;
}

/** Until the run hands over its report (while it loads the spec), a thread has nothing to report. */
let report: ((withMetrics: boolean) => Promise<ThreadReportBody>) | undefined;

const data = threadData(workerData);
const listeners = new Set<(signal: NodeJS.Signals) => void>();
/** A stop asked for before the command listened (while it loaded the spec) is passed on when it does. */
let asked: NodeJS.Signals | undefined;
/** Resolves when the main thread says every thread is ready to join its groups. */
let started!: () => void;
const allReady = new Promise<void>((resolve) => (started = resolve));
parentPort?.on('message', (message: unknown) => {
  if (isStart(message)) started();
  const wanted = reportRequest(message);
  if (wanted !== undefined) {
    const { request, withMetrics } = wanted;
    // A thread that cannot report yet (or whose report failed) says why: the main thread counts it not ready.
    const answer = report
      ? report(withMetrics).then(
          (r): FromThread => ({ report: request, ...r }),
          (err: unknown): FromThread => ({ report: request, silent: `its report failed: ${err instanceof Error ? err.message : String(err)}` }),
        )
      : Promise.resolve<FromThread>({ report: request, silent: 'the pipeline is starting' });
    void answer.then((m) => parentPort?.postMessage(m));
    return;
  }
  const signal = stopSignal(message);
  if (!signal) return;
  asked = signal;
  for (const listener of listeners) listener(signal);
});

const io: CliIO = {
  ...processIO,
  thread: data.thread,
  onStopRequest: (listener) => {
    listeners.add(listener);
    if (asked) listener(asked);
    return () => listeners.delete(listener);
  },
  reportWith: (r) => {
    report = r;
  },
  startTogether: () => {
    parentPort?.postMessage({ ready: true } satisfies FromThread);
    return allReady;
  },
};
// Ends this thread (not the process) with the command's exit code, whatever still holds its loop.
process.exit(await command.run(data.argv, io));
