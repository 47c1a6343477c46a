import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { windowStep, type WindowStepConfig } from '../../../src/components/steps/window.ts';
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { ComponentContext, StepOutput } from '../../../src/engine/component.ts';
import { ConfigError, ExpressionSyntaxError } from '../../../src/engine/errors.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';

const ajv = new Ajv2020({ allErrors: true, strict: false, allowUnionTypes: true });
for (const keyword of ['x-jsonata', 'x-duration', 'x-secret']) ajv.addKeyword({ keyword, schemaType: 'boolean' });
const validate = ajv.compile(windowStep.schema);

function ctx(): ComponentContext {
  return { name: 'hourly', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' };
}

class Collect implements StepOutput {
  out: StreamRecord[] = [];
  late: StreamRecord[] = [];
  failed: Error[] = [];
  emit(records: StreamRecord[], port = 'out'): void {
    (port === 'late' ? this.late : this.out).push(...records);
  }
  drop(): void {}
  fail(_r: StreamRecord, e: Error): void {
    this.failed.push(e);
  }
}

function records(values: unknown[]): StreamRecord[] {
  const ack = Ack.none();
  ack.retain(values.length);
  return values.map((value, i) => ({ key: null, value, time: 0, headers: {}, meta: {}, position: { source: 's', partition: 's/0', offset: String(i) }, ack }));
}

const employeeHourly: WindowStepConfig = {
  window: { tumbling: '1h', time: 'activity_timestamp', lateness: '10m', idle: '1m', emit: 'final', timezone: 'UTC' },
  group_by: ['employee_id', 'activity_type'],
  aggregate: { activity_count: '$count()', total_duration: '$sum(duration_seconds)', avg_duration: '$average(duration_seconds)' },
};

describe('window step schema', () => {
  it('accepts the employee pipeline\'s hourly step', () => {
    expect(validate(employeeHourly), JSON.stringify(validate.errors)).toBe(true);
  });

  it('accepts hopping and session windows and the map form of group_by', () => {
    expect(validate({ window: { hopping: { size: '1h', advance: '15m' }, time: 'ts' }, aggregate: { n: '$count()' } })).toBe(true);
    expect(validate({ window: { session: { gap: '30m' }, time: 'ts' }, group_by: { hour: '$hour(ts)' }, aggregate: { n: '$count()' } })).toBe(true);
  });

  it('accepts its own examples', () => {
    const props = windowStep.schema.properties as Record<string, { examples?: unknown[] }>;
    for (const example of props.window!.examples ?? []) {
      expect(validate({ window: example, aggregate: { n: '$count()' } })).toBe(true);
    }
    for (const example of props.group_by!.examples ?? []) {
      expect(validate({ window: { tumbling: '1h' }, group_by: example, aggregate: { n: '$count()' } })).toBe(true);
    }
    for (const example of props.aggregate!.examples ?? []) {
      expect(validate({ window: { tumbling: '1h' }, aggregate: example })).toBe(true);
    }
  });

  it('refuses a computed expression in the list form of group_by', () => {
    expect(validate({ window: { tumbling: '1h' }, group_by: ['$hour(ts)'], aggregate: { n: '$count()' } })).toBe(false);
    expect(validate({ window: { tumbling: '1h' }, group_by: ['user.id', 'a.`b c`'], aggregate: { n: '$count()' } })).toBe(true);
  });

  it('needs exactly one window kind, a duration, and known keys', () => {
    expect(validate({ window: { time: 'ts' }, aggregate: { n: '$count()' } })).toBe(false);
    expect(validate({ window: { tumbling: '1h', session: { gap: '1m' } }, aggregate: { n: '$count()' } })).toBe(false);
    expect(validate({ window: { tumbling: '1 hour' }, aggregate: { n: '$count()' } })).toBe(false);
    expect(validate({ window: { tumbling: '1h', emit: 'sometimes' }, aggregate: { n: '$count()' } })).toBe(false);
    expect(validate({ window: { tumbling: '1h', lateness: '5m', windw: 1 }, aggregate: { n: '$count()' } })).toBe(false);
    expect(validate({ window: { tumbling: '1h' } })).toBe(false);
  });

  it('gives every field a description and examples', () => {
    const missing: string[] = [];
    const walk = (s: unknown, path: string): void => {
      if (s === null || typeof s !== 'object') return;
      const o = s as Record<string, unknown>;
      if (o.properties) {
        for (const [k, v] of Object.entries(o.properties as Record<string, Record<string, unknown>>)) {
          if (!v.description || !v.examples) missing.push(`${path}.${k}`);
          walk(v, `${path}.${k}`);
        }
      }
    };
    walk(windowStep.schema, 'step');
    expect(missing).toEqual([]);
  });
});

describe('window step create', () => {
  it('refuses a computed group_by list entry with a message that shows the map form', () => {
    const config = { ...employeeHourly, group_by: ['employee_id', '$hour(activity_timestamp)'] };
    expect(() => windowStep.create(config, ctx())).toThrow(ConfigError);
    expect(() => windowStep.create(config, ctx())).toThrow(
      'group_by entry `$hour(activity_timestamp)` is not a plain field path; name a computed key in the map form, e.g. `group_by: { my_key: $hour(activity_timestamp) }`',
    );
  });

  it('refuses an unknown time zone, a zero size, clashing and reserved names, and bad JSONata', () => {
    const bad = (patch: Partial<WindowStepConfig>, message: RegExp | string) =>
      expect(() => windowStep.create({ ...employeeHourly, ...patch }, ctx())).toThrow(message);
    bad({ window: { tumbling: '1d', timezone: 'Europe/Berlln' } }, '`timezone` `Europe/Berlln` is not an IANA time zone like Europe/Berlin');
    bad({ window: { tumbling: '0s' } }, '`tumbling` must be longer than 0, got `0s`');
    bad({ window: { hopping: { size: '1h', advance: '0m' } } }, '`hopping.advance` must be longer than 0, got `0m`');
    bad({ aggregate: { employee_id: '$count()' } }, 'output field `employee_id` is defined twice (group keys and aggregates share one record)');
    bad({ aggregate: { window_end: '$count()' } }, '`window_end` is set by the window itself; name the group key or aggregate differently');
    expect(() => windowStep.create({ ...employeeHourly, aggregate: { n: '$sum(' } }, ctx())).toThrow(ExpressionSyntaxError);
  });

  it('carries the step name in config errors', () => {
    try {
      windowStep.create({ ...employeeHourly, window: { tumbling: '1h', timezone: 'Mars/Olympus' } }, ctx());
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).where).toBe('steps.hourly');
    }
  });

  it('defines the metrics it publishes, so an exposition documents them', () => {
    const context = ctx();
    windowStep.create(employeeHourly, context);
    expect(context.metrics.definedMetrics().map((d) => [d.name, d.type])).toEqual(
      expect.arrayContaining([
        ['sluice_watermark_held_seconds', 'gauge'],
        ['sluice_watermark_holds_total', 'counter'],
        ['sluice_window_row_limit_total', 'counter'],
      ]),
    );
  });

  it('declares the late port', () => {
    expect(windowStep.ports).toEqual(['late']);
    expect(windowStep.create(employeeHourly, ctx()).ports).toEqual(['late']);
  });

  it('describes itself in one line', () => {
    expect(windowStep.describe(employeeHourly)).toBe(
      'tumbling 1h windows on `activity_timestamp` (lateness 10m, idle 1m, emit final) by employee_id, activity_type -> activity_count, total_duration, avg_duration',
    );
    expect(windowStep.describe({ window: { tumbling: '1d', timezone: 'Europe/Berlin' }, group_by: { dept: 'department' }, aggregate: { n: '$count()' } })).toBe(
      'tumbling 1d calendar (Europe/Berlin) windows on record time (lateness 0s, idle 1m, emit final) by dept -> n',
    );
  });
});

describe('window step end to end', () => {
  it('runs the hourly employee summary', async () => {
    const step = windowStep.create(employeeHourly, ctx());
    const out = new Collect();
    await step.process(
      {
        partition: 's/0',
        records: records([
          { employee_id: 1, activity_type: 'login', activity_timestamp: '2025-06-01T09:00:00', duration_seconds: 30 },
          { employee_id: 1, activity_type: 'login', activity_timestamp: '2025-06-01T09:59:59.999', duration_seconds: null },
          { employee_id: 2, activity_type: 'click', activity_timestamp: '2025-06-01T09:30:00', duration_seconds: 299 },
          { employee_id: 1, activity_type: 'login', activity_timestamp: '2025-06-01T10:00:00', duration_seconds: 300 },
        ]),
      },
      out,
    );
    await step.onEnd!(out);
    expect(out.out.map((r) => r.value)).toEqual([
      { employee_id: 1, activity_type: 'login', window_start: '2025-06-01T09:00:00.000Z', window_end: '2025-06-01T10:00:00.000Z', activity_count: 2, total_duration: 30, avg_duration: 30 },
      { employee_id: 2, activity_type: 'click', window_start: '2025-06-01T09:00:00.000Z', window_end: '2025-06-01T10:00:00.000Z', activity_count: 1, total_duration: 299, avg_duration: 299 },
      { employee_id: 1, activity_type: 'login', window_start: '2025-06-01T10:00:00.000Z', window_end: '2025-06-01T11:00:00.000Z', activity_count: 1, total_duration: 300, avg_duration: 300 },
    ]);
  });

  it('aligns 7d windows to Monday midnight in the time zone and names list keys by their last segment', async () => {
    const step = windowStep.create({ window: { tumbling: '7d', time: 'ts', timezone: 'Europe/Berlin' }, group_by: ['user.id'], aggregate: { n: '$count()' } }, ctx());
    const out = new Collect();
    await step.process({ partition: 's/0', records: records([{ user: { id: 'u1' }, ts: '2025-10-26T12:00:00Z' }]) }, out);
    await step.onEnd!(out);
    expect(out.out.map((r) => r.value)).toEqual([{ id: 'u1', window_start: '2025-10-19T22:00:00.000Z', window_end: '2025-10-26T23:00:00.000Z', n: 1 }]);
  });

  it('without `idle`, stops waiting for a quiet partition after the default of 1m', async () => {
    const context = ctx();
    const clock = context.clock as ManualClock;
    const step = windowStep.create({ window: { tumbling: '1h', time: 'ts' }, aggregate: { n: '$count()' } }, context);
    const out = new Collect();
    step.onPartitions!({ type: 'assign', partitions: ['s/0', 's/1'] }, out);
    await step.process({ partition: 's/0', records: records([{ ts: '2025-06-01T09:00:00Z' }, { ts: '2025-06-01T10:30:00Z' }]) }, out);
    clock.advance(59_999);
    step.onTick!(clock.now(), out);
    expect(out.out).toEqual([]); // s/1 has sent nothing and is not idle yet
    clock.advance(1);
    step.onTick!(clock.now(), out);
    expect(out.out.map((r) => r.value)).toEqual([{ window_start: '2025-06-01T09:00:00.000Z', window_end: '2025-06-01T10:00:00.000Z', n: 1 }]);
  });

  it('takes `max_rows`: a group with more records than that goes to the errors port when its aggregate needs them all', async () => {
    const config = { window: { tumbling: '1h', time: 'ts', max_rows: 2 }, aggregate: { n: '$count()', ids: '$join(id, ",")' } };
    expect(validate(config)).toBe(true);
    expect(validate({ ...config, window: { ...config.window, max_rows: 0 } })).toBe(false);
    expect(() => windowStep.create({ ...config, window: { ...config.window, max_rows: 1.5 } }, ctx())).toThrow('`max_rows` must be a whole number of at least 1, got `1.5`');
    const step = windowStep.create(config, ctx());
    const out = new Collect();
    await step.process({ partition: 's/0', records: records(['a', 'b', 'c'].map((id) => ({ id, ts: '2025-06-01T09:00:00Z' }))) }, out);
    await step.onEnd!(out);
    expect(out.out).toEqual([]);
    expect(out.failed.map((e) => e.message)).toEqual([expect.stringContaining('had more than max_rows (2)')]);
  });

  it('uses the record time when `time` is omitted, and keeps sub-day sizes aligned to UTC', async () => {
    const step = windowStep.create({ window: { tumbling: '6h', timezone: 'Europe/Berlin' }, aggregate: { n: '$count()' } }, ctx());
    const out = new Collect();
    const [r] = records([{}]);
    await step.process({ partition: 's/0', records: [{ ...r!, time: Date.parse('2025-06-01T07:00:00Z') }] }, out);
    await step.onEnd!(out);
    expect(out.out.map((x) => x.value)).toEqual([{ window_start: '2025-06-01T06:00:00.000Z', window_end: '2025-06-01T12:00:00.000Z', n: 1 }]);
  });
});
