import { describe, expect, it } from 'vitest';
import { mergeExpositions } from '../../src/http/exposition.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { family, parseExposition, valueOf } from './prometheus-text.ts';

/** A registry of one thread: the same definitions as every other thread, its own values. */
function threadRegistry(thread: number, records: number, latencies: number[]): Metrics {
  const m = new Metrics();
  m.define(
    { name: 'sluice_records_in_total', type: 'counter', help: 'Records in.', labels: ['node'] },
    { name: 'sluice_queued_batches', type: 'gauge', help: 'Batches waiting.', labels: [] },
    { name: 'sluice_batch_seconds', type: 'histogram', help: 'Batch time.', labels: ['node'], buckets: [0.01, 0.1] },
  );
  m.setDefaultLabels({ pipeline: 'p', thread: String(thread) });
  m.inc('sluice_records_in_total', { node: 'src' }, records);
  m.set('sluice_queued_batches', {}, thread);
  for (const s of latencies) m.observe('sluice_batch_seconds', { node: 'src' }, s);
  return m;
}

describe('mergeExpositions', () => {
  it("keeps every thread's series, each family once with its help and type, histograms whole", async () => {
    const one = await threadRegistry(1, 7, [0.005, 0.05]).exposition();
    const two = await threadRegistry(2, 11, [0.5]).exposition();
    const merged = parseExposition(mergeExpositions([one.text, two.text]));
    expect(merged.map((f) => f.name)).toEqual(['sluice_records_in_total', 'sluice_queued_batches', 'sluice_batch_seconds']);
    expect(family(merged, 'sluice_records_in_total')).toMatchObject({ help: 'Records in.', type: 'COUNTER' });
    expect(valueOf(merged, 'sluice_records_in_total', { thread: '1' })).toBe(7);
    expect(valueOf(merged, 'sluice_records_in_total', { thread: '2' })).toBe(11);
    expect(valueOf(merged, 'sluice_queued_batches', { thread: '2' })).toBe(2);
    const histogram = family(merged, 'sluice_batch_seconds');
    expect(histogram.type).toBe('HISTOGRAM');
    expect(histogram.samples.map((s) => [s.labels.thread, s.count, s.buckets])).toEqual([
      ['1', 2, { '0.01': 1, '0.1': 2, '+Inf': 2 }],
      ['2', 1, { '0.01': 0, '0.1': 0, '+Inf': 1 }],
    ]);
  });

  it('adds families only one text has (the main thread\'s process metrics) after the others', () => {
    const thread = '# HELP a_total A.\n# TYPE a_total counter\na_total{thread="1"} 3\n';
    const main = '# HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n';
    expect(mergeExpositions([thread, main])).toBe(thread + main);
  });

  it('takes help and type from the first text that has a family, and ignores other comments', () => {
    const a = '# HELP x First.\n# TYPE x gauge\nx{thread="1"} 1\n';
    const b = '# a comment\n# HELP x Second.\n# TYPE x gauge\nx{thread="2"} 2\n';
    expect(mergeExpositions([a, b])).toBe('# HELP x First.\n# TYPE x gauge\nx{thread="1"} 1\nx{thread="2"} 2\n');
  });

  it('is empty for no texts, or texts with nothing in them', () => {
    expect(mergeExpositions([])).toBe('');
    expect(mergeExpositions(['', '\n'])).toBe('');
  });
});
