/**
 * Figures of one thread of a run on threads (`--threads N`), which prom-client's process metrics
 * do not give: those are the main thread's, while each thread has a V8 heap of its own, with its
 * own limit, and an event loop of its own. Served with the thread's series, labelled `thread`.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Metrics, MetricDefinition } from '../engine/metrics.ts';

export const THREAD_HEAP_USED = 'sluice_thread_heap_used_bytes';
export const THREAD_HEAP_LIMIT = 'sluice_thread_heap_limit_bytes';
export const THREAD_BUSY = 'sluice_thread_busy_seconds_total';

export const THREAD_METRICS: readonly MetricDefinition[] = [
  { name: THREAD_HEAP_USED, type: 'gauge', help: "Bytes of this thread's V8 heap in use.", labels: [] },
  { name: THREAD_HEAP_LIMIT, type: 'gauge', help: "The most this thread's V8 heap may grow to: past it the thread, and the process, end out of memory.", labels: [] },
  {
    name: THREAD_BUSY,
    type: 'counter',
    help: "Seconds this thread's event loop spent running code rather than waiting (its rate is the thread's utilisation: near 1, the thread is the bottleneck).",
    labels: [],
  },
];

/** What the thread reports; the functions read the thread they run on (tests give their own). */
export interface ThreadReadings {
  heap(): { used: number; limit: number };
  /** Milliseconds the event loop has been busy since the thread started. */
  busyMs(): number;
}

const thisThread: ThreadReadings = {
  heap() {
    const h = getHeapStatistics();
    return { used: h.used_heap_size, limit: h.heap_size_limit };
  },
  busyMs: () => performance.eventLoopUtilization().active,
};

/** Defines the thread's series in `metrics` and refreshes them at each collection (a scrape, a live-view sample). */
export function collectThreadMetrics(metrics: Metrics, readings: ThreadReadings = thisThread): () => void {
  metrics.define(...THREAD_METRICS);
  return metrics.addCollector(() => {
    const { used, limit } = readings.heap();
    metrics.set(THREAD_HEAP_USED, {}, used);
    metrics.set(THREAD_HEAP_LIMIT, {}, limit);
    // A counter only moves forward: what the busy time grew by since it was last counted.
    const grown = readings.busyMs() / 1000 - metrics.counter(THREAD_BUSY);
    if (grown > 0) metrics.inc(THREAD_BUSY, {}, grown);
  });
}
