import { describe, expect, it } from 'vitest';
import { Metrics, UNDEFINED_HELP } from '../../src/engine/metrics.ts';
import { family, parseExposition, valueOf } from '../http/prometheus-text.ts';

describe('Metrics', () => {
  it('exports counters, gauges and histograms as Prometheus text that a real parser reads back', async () => {
    const m = new Metrics();
    m.define(
      { name: 'sluice_things_total', type: 'counter', help: 'Things.', labels: ['node', 'port'] },
      { name: 'sluice_depth', type: 'gauge', help: 'Depth.', labels: ['node'] },
      { name: 'sluice_wait_seconds', type: 'histogram', help: 'Waits.', labels: ['node'], buckets: [0.1, 1] },
    );
    m.inc('sluice_things_total', { node: 'a', port: 'out' }, 3);
    m.inc('sluice_things_total', { port: 'out', node: 'a' }, 2);
    m.inc('sluice_things_total', { node: 'b', port: 'late' });
    m.set('sluice_depth', { node: 'a' }, 7);
    m.observe('sluice_wait_seconds', { node: 'a' }, 0.05);
    m.observe('sluice_wait_seconds', { node: 'a' }, 0.5);
    m.setDefaultLabels({ pipeline: 'p' });
    const families = parseExposition((await m.exposition()).text);
    expect(family(families, 'sluice_things_total')).toMatchObject({ type: 'COUNTER', help: 'Things.' });
    expect(valueOf(families, 'sluice_things_total', { node: 'a', port: 'out', pipeline: 'p' })).toBe(5);
    expect(valueOf(families, 'sluice_things_total', { node: 'b', port: 'late' })).toBe(1);
    expect(valueOf(families, 'sluice_depth', { node: 'a' })).toBe(7);
    const h = family(families, 'sluice_wait_seconds').samples[0]!;
    expect(h.buckets).toEqual({ '0.1': 1, '1': 2, '+Inf': 2 });
    expect(h.count).toBe(2);
    expect(h.sum).toBeCloseTo(0.55);
    // Synchronous reads for tests and the progress line, whatever the label order.
    expect(m.counter('sluice_things_total', { port: 'out', node: 'a' })).toBe(5);
    expect(m.gauge('sluice_depth', { node: 'a' })).toBe(7);
  });

  it('removes a gauge series that stands for something gone', async () => {
    const m = new Metrics();
    m.define({ name: 'sluice_lag', type: 'gauge', help: 'Lag.', labels: ['partition'] });
    m.set('sluice_lag', { partition: '0' }, 1);
    m.set('sluice_lag', { partition: '1' }, 2);
    m.remove('sluice_lag', { partition: '0' });
    expect(family(parseExposition((await m.exposition()).text), 'sluice_lag').samples).toEqual([{ labels: { partition: '1' }, value: 2 }]);
  });

  it('accepts the same definition twice (a restarted run) and refuses a conflicting one', () => {
    const m = new Metrics();
    const d = { name: 'sluice_x_total', type: 'counter', help: 'X.', labels: ['node'] } as const;
    m.define(d);
    m.define(d);
    expect(() => m.define({ ...d, type: 'gauge' })).toThrow(/already defined as a counter/);
  });

  it('still exports a metric used without a definition, marked so that a test can find it', async () => {
    const m = new Metrics();
    m.inc('sluice_surprise_total', { node: 'a' });
    expect(family(parseExposition((await m.exposition()).text), 'sluice_surprise_total').help).toBe(UNDEFINED_HELP);
  });

  it('runs collectors before an exposition, and serves the last values when one is slow or fails', async () => {
    const m = new Metrics();
    m.define({ name: 'sluice_g', type: 'gauge', help: 'G.', labels: [] });
    let n = 0;
    const stop = m.addCollector(() => m.set('sluice_g', {}, ++n));
    m.addCollector(() => new Promise<void>(() => {}));
    m.addCollector(() => {
      throw new Error('broken');
    });
    const started = Date.now();
    expect(valueOf(parseExposition((await m.exposition(50)).text), 'sluice_g')).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);
    stop();
    expect(valueOf(parseExposition((await m.exposition(50)).text), 'sluice_g')).toBe(1);
  });

  it('adds process metrics on request', async () => {
    const m = new Metrics();
    m.collectProcessMetrics();
    const families = parseExposition((await m.exposition()).text);
    expect(valueOf(families, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(families, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });
});

describe('the exposition reader of the tests', () => {
  it('keeps every series of a histogram with several label sets', async () => {
    const m = new Metrics();
    m.define({ name: 'sluice_w_seconds', type: 'histogram', help: 'W.', labels: ['node'], buckets: [1] });
    m.observe('sluice_w_seconds', { node: 'a' }, 0.5);
    m.observe('sluice_w_seconds', { node: 'b' }, 2);
    m.observe('sluice_w_seconds', { node: 'b' }, 3);
    const samples = family(parseExposition((await m.exposition()).text), 'sluice_w_seconds').samples;
    expect(samples).toEqual([
      { labels: { node: 'a' }, buckets: { '1': 1, '+Inf': 1 }, count: 1, sum: 0.5 },
      { labels: { node: 'b' }, buckets: { '1': 0, '+Inf': 2 }, count: 2, sum: 5 },
    ]);
  });
});
