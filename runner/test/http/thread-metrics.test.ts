import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/engine/metrics.ts';
import { THREAD_BUSY, THREAD_HEAP_LIMIT, THREAD_HEAP_USED, collectThreadMetrics } from '../../src/http/thread-metrics.ts';

describe('a thread\'s own metrics', () => {
  it('sets the heap figures and adds the busy time as it grows, at each collection', async () => {
    const metrics = new Metrics();
    let busy = 1_500;
    let used = 10_000_000;
    collectThreadMetrics(metrics, { heap: () => ({ used, limit: 4_000_000_000 }), busyMs: () => busy });
    await metrics.collect();
    expect([metrics.gauge(THREAD_HEAP_USED), metrics.gauge(THREAD_HEAP_LIMIT), metrics.counter(THREAD_BUSY)]).toEqual([10_000_000, 4_000_000_000, 1.5]);
    busy = 2_250;
    used = 12_000_000;
    await metrics.collect();
    expect([metrics.gauge(THREAD_HEAP_USED), metrics.counter(THREAD_BUSY)]).toEqual([12_000_000, 2.25]);
    // A counter never goes back.
    busy = 2_000;
    await metrics.collect();
    expect(metrics.counter(THREAD_BUSY)).toBe(2.25);
    expect((await metrics.exposition()).text).toContain(`# TYPE ${THREAD_BUSY} counter`);
  });

  it('reads the thread it runs on: a 150 ms spin is busy time, a 150 ms wait is not, and memory kept shows in the heap', async () => {
    const metrics = new Metrics();
    collectThreadMetrics(metrics);
    await metrics.collect();
    const busyBefore = metrics.counter(THREAD_BUSY);
    // Measured here, by the clock, not by what the metric reads.
    const start = performance.now();
    while (performance.now() - start < 150) {
      // spin
    }
    await metrics.collect();
    const spun = metrics.counter(THREAD_BUSY) - busyBefore;
    expect(spun).toBeGreaterThanOrEqual(0.14);
    expect(spun).toBeLessThan(1);
    const beforeWait = metrics.counter(THREAD_BUSY);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await metrics.collect();
    expect(metrics.counter(THREAD_BUSY) - beforeWait).toBeLessThan(0.1);

    // 1,000 arrays of 20,000 doubles kept: 160 MB of heap in all, whatever a collection frees
    // meanwhile. The heap in use was below that before, and cannot be after.
    const KEPT_BYTES = 1_000 * 20_000 * 8;
    expect(metrics.gauge(THREAD_HEAP_USED)!).toBeLessThan(KEPT_BYTES);
    const kept = Array.from({ length: 1_000 }, () => new Array<number>(20_000).fill(1.5));
    await metrics.collect();
    expect(metrics.gauge(THREAD_HEAP_USED)!).toBeGreaterThan(KEPT_BYTES);
    expect(metrics.gauge(THREAD_HEAP_USED)!).toBeLessThan(metrics.gauge(THREAD_HEAP_LIMIT)!);
    expect(kept.length).toBe(1_000);
  });
});
