import { describe, expect, it } from 'vitest';
import { HourlySummaries, LATENESS_MS, type ChangePayload } from '../../bench/hourly-summaries.ts';
import { DebeziumEventStream } from '../integration/debezium-events.ts';
import { ExpectedOutputs, HOUR, closedHours, rowId } from '../integration/employee-outputs.ts';

describe('the equal-work yardstick\'s hourly summaries', () => {
  it('emits exactly the closed hours the integration tests expect, with their figures, on a simulated backlog', () => {
    const partitions = 6;
    const stream = new DebeziumEventStream('t', 3, Date.parse('2025-01-06T08:00:00Z'));
    const messages = stream.take(20_000).messages.map((m) => ({ ...m, partition: rowId(m) % partitions }));
    const expected = new ExpectedOutputs(partitions);
    expected.add(messages);
    const want = expected.result();

    const summaries = new HourlySummaries(partitions);
    const got = new Map<string, [number, number | null, number | null]>();
    // In batches of 250, hours closed after each, as the pass-through closes them after each batch.
    for (let i = 0; i < messages.length; i += 250) {
      for (const m of messages.slice(i, i + 250)) {
        if (m.value !== null) summaries.event(m.partition, (JSON.parse(String(m.value)) as { payload: ChangePayload }).payload);
      }
      for (const s of summaries.closed()) {
        const key = `${String(s.employee_id)}/${String(s.activity_type)}/${s.window_start}`;
        expect(got.has(key), `${key} emitted twice`).toBe(false);
        expect(Date.parse(s.window_end) - Date.parse(s.window_start)).toBe(HOUR);
        got.set(key, [s.activity_count, s.total_duration, s.avg_duration]);
      }
    }
    const closed = closedHours(want);
    expect(closed.length).toBeGreaterThan(100);
    expect([...got.keys()].sort()).toEqual([...closed].sort());
    for (const key of closed) {
      const [count, total, avg] = want.summaries.get(key)!;
      const [gotCount, gotTotal, gotAvg] = got.get(key)!;
      expect([gotCount, gotTotal], key).toEqual([count, total]);
      if (avg === null) expect(gotAvg).toBeNull();
      else expect(gotAvg!).toBeCloseTo(avg, 9);
    }
    expect(summaries.late).toBe(0);
  });

  it('closes an hour once the watermark, 10 minutes behind, passes its end; an insert for it after that is late and left out', () => {
    const summaries = new HourlySummaries(1);
    const t0 = Date.parse('2025-01-06T08:10:00Z');
    summaries.observe(0, t0);
    summaries.add(t0, 1, 'login', 5);
    // 09:05: the hour has ended, but records up to 10 minutes late may still come.
    summaries.observe(0, Date.parse('2025-01-06T09:00:00Z') + LATENESS_MS - 5 * 60_000);
    expect(summaries.closed()).toEqual([]);
    summaries.observe(0, Date.parse('2025-01-06T09:00:00Z') + LATENESS_MS);
    expect(summaries.closed().map((s) => [s.window_start, s.activity_count, s.total_duration])).toEqual([['2025-01-06T08:00:00.000Z', 1, 5]]);
    summaries.add(t0, 1, 'login', 7);
    expect(summaries.late).toBe(1);
    expect(summaries.closed()).toEqual([]);
  });

  it('waits for the slowest partition: an hour closes when every partition passed its end by the lateness', () => {
    const summaries = new HourlySummaries(2);
    const t0 = Date.parse('2025-01-06T08:10:00Z');
    summaries.observe(0, t0);
    summaries.add(t0, 1, 'login', null);
    summaries.observe(0, t0 + 5 * HOUR);
    expect(summaries.closed()).toEqual([]);
    summaries.observe(1, Date.parse('2025-01-06T09:10:00Z'));
    expect(summaries.closed()).toEqual([
      { employee_id: 1, activity_type: 'login', window_start: '2025-01-06T08:00:00.000Z', window_end: '2025-01-06T09:00:00.000Z', activity_count: 1, total_duration: null, avg_duration: null },
    ]);
  });
});
