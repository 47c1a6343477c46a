/**
 * The runtime with the real filter, set and window steps in the employee pipeline's shape: the
 * window's acknowledgements flow through Ack.derived, so source batches complete only after the
 * hourly summaries were written.
 */
import { describe, expect, it } from 'vitest';
import { filterStep } from '../../src/components/steps/filter.ts';
import { setStep } from '../../src/components/steps/set.ts';
import { windowStep } from '../../src/components/steps/window.ts';
import { ManualClock } from '../../src/engine/clock.ts';
import type { Decoded, Format } from '../../src/engine/component.ts';
import type { RawMessage } from '../../src/engine/record.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { RecordingSink, ScriptedSource, graphOf, settle } from './fake-components.ts';

/** `{"op": ..., "after": {...}}` text, a Debezium envelope in miniature. */
const envelopeFormat: Format = {
  decode(message: RawMessage): Decoded {
    const env = JSON.parse(String(message.value)) as { op: string; after: Record<string, unknown> };
    return { key: null, value: env.after, meta: { op: env.op } };
  },
};

const ctx = (name: string) => ({ name, logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' as const });

function activity(op: string, employee: number, time: string, duration: number): string {
  return JSON.stringify({ op, after: { employee_id: employee, activity_type: 'click', activity_timestamp: time, duration_seconds: duration } });
}

function employeeGraph(source: ScriptedSource, processed: RecordingSink, summaries: RecordingSink) {
  return graphOf([
    { source: 'activities', impl: source, format: envelopeFormat },
    { step: 'inserts', impl: filterStep.create({ filter: '$meta.op = "c"' }, ctx('inserts')), from: ['activities'] },
    {
      step: 'enriched',
      impl: setStep.create(
        { set: { activity_hour: '$hour(activity_timestamp)', is_business_hours: 'activity_hour >= 9 and activity_hour <= 17' } },
        ctx('enriched'),
      ),
      from: ['inserts'],
    },
    {
      step: 'hourly',
      impl: windowStep.create(
        {
          window: { tumbling: '1h', time: 'activity_timestamp', lateness: '0s', emit: 'final', timezone: 'UTC' },
          group_by: ['employee_id'],
          aggregate: { activity_count: '$count()', total_duration: '$sum(duration_seconds)' },
        },
        ctx('hourly'),
      ),
      from: ['inserts'],
    },
    { sink: 'processed', impl: processed, from: ['enriched'] },
    { sink: 'summaries', impl: summaries, from: ['hourly'] },
  ]);
}

const batches = [
  { partition: 'a/0', values: [activity('c', 1, '2024-01-15T08:59:00Z', 10), activity('u', 1, '2024-01-15T09:01:00Z', 5)] },
  { partition: 'a/0', values: [activity('c', 1, '2024-01-15T09:00:00Z', 20), activity('c', 2, '2024-01-15T09:30:00Z', 30)] },
];

describe('Runtime with the employee pipeline steps', () => {
  it('at the end of input flushes the windows and completes every batch once the summaries are written', async () => {
    const source = new ScriptedSource('activities', batches);
    const processed = new RecordingSink();
    const summaries = new RecordingSink();
    const outcome = await new Runtime(employeeGraph(source, processed, summaries), { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0 }).run();

    expect(processed.values).toEqual([
      expect.objectContaining({ employee_id: 1, activity_hour: 8, is_business_hours: false }),
      expect.objectContaining({ employee_id: 1, activity_hour: 9, is_business_hours: true }),
      expect.objectContaining({ employee_id: 2, activity_hour: 9, is_business_hours: true }),
    ]);
    const rows = summaries.values as { employee_id: number; window_start: string; activity_count: number; total_duration: number }[];
    const brief = rows.map((r) => [r.employee_id, r.window_start, r.activity_count, r.total_duration]);
    expect(brief).toEqual(
      expect.arrayContaining([
        [1, '2024-01-15T08:00:00.000Z', 1, 10],
        [1, '2024-01-15T09:00:00.000Z', 1, 20],
        [2, '2024-01-15T09:00:00.000Z', 1, 30],
      ]),
    );
    expect(rows).toHaveLength(3);
    expect(source.completed.sort()).toEqual([0, 1]);
    expect(outcome.recordsOut).toEqual({ processed: 3, summaries: 3 });
  });

  it('on stop() leaves batches held by open windows unacknowledged', async () => {
    const source = new ScriptedSource('activities', batches, false);
    const processed = new RecordingSink();
    const summaries = new RecordingSink();
    const runtime = new Runtime(employeeGraph(source, processed, summaries), { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0 });
    const running = runtime.run();
    for (let i = 0; i < 10; i++) await settle();
    await runtime.stop('SIGINT');
    const outcome = await running;
    expect(outcome.ended).toBe('stopped');
    // The watermark reached 09:30, so the 08:00 window closed and was written: batch 0 (its 08:59
    // insert summarised, its update filtered) completed. Batch 1 sits in the open 09:00 window.
    expect(processed.values).toHaveLength(3);
    expect((summaries.values as { window_start: string }[]).map((r) => r.window_start)).toEqual(['2024-01-15T08:00:00.000Z']);
    expect(source.completed).toEqual([0]);
  });
});
