/**
 * Side inputs over a real Runtime: a join reads a table step besides its stream. Batches say which
 * node handed them over (`batch.from`); a source's partition events reach only the steps its records
 * reach, each told through which of its inputs (`via`), and they stop at a step that keeps that
 * input as state: the steps after a join never see the table's records, so the table's partitions
 * must not hold their watermarks.
 */
import { describe, expect, it } from 'vitest';
import { joinStep, type JoinSettings } from '../../src/components/steps/join.ts';
import { tableStep } from '../../src/components/steps/table.ts';
import { windowStep } from '../../src/components/steps/window.ts';
import { ManualClock } from '../../src/engine/clock.ts';
import type { ComponentContext, PartitionEvent, Source, SourceOutput, Step, StepOutput } from '../../src/engine/component.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import type { Batch } from '../../src/engine/record.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { RecordingSink, ScriptedSource, graphOf, settle } from './fake-components.ts';

const json = (...values: unknown[]) => values.map((v) => JSON.stringify(v));

/** Wraps a step, noting the batches it gets (`from` and partition) and the partition events (with `via`). */
class Spy implements Step {
  readonly batches: string[] = [];
  readonly events: { event: string; via: readonly string[] | undefined }[] = [];
  readonly ports?: readonly string[];
  readonly sideInputs?: readonly string[];
  constructor(
    readonly inner: Step,
    hideSideInputs = false,
  ) {
    if (inner.ports) this.ports = inner.ports;
    if (inner.sideInputs && !hideSideInputs) this.sideInputs = inner.sideInputs;
  }
  process(batch: Batch, out: StepOutput): void | Promise<void> {
    this.batches.push(`${batch.from}:${batch.partition}:${batch.records.length}`);
    return this.inner.process(batch, out);
  }
  onPartitions(event: PartitionEvent, out: StepOutput, via?: readonly string[]): void {
    const what = event.type === 'progress' ? `progress ${event.origin}` : `${event.type} ${event.partitions.join(',')}`;
    this.events.push({ event: what, via });
    this.inner.onPartitions?.(event, out, via);
  }
  onTick(now: number, out: StepOutput): void {
    this.inner.onTick?.(now, out);
  }
  onEnd(out: StepOutput): void | Promise<void> {
    return this.inner.onEnd?.(out);
  }
  stats(): Record<string, number | string | undefined> {
    return this.inner.stats?.() ?? {};
  }
}

/** An unbounded source that assigns its partitions and then never sends anything. */
class QuietSource implements Source {
  readonly bounded = false;
  private wake: (() => void) | undefined;
  constructor(private readonly partitions: string[]) {}
  async run(out: SourceOutput): Promise<void> {
    out.assign(this.partitions);
    await new Promise<void>((resolve) => (this.wake = resolve));
  }
  async stop(): Promise<void> {
    this.wake?.();
  }
  async close(): Promise<void> {}
}

function setup(employeeSource: Source, join: Partial<JoinSettings> = {}, hideSideInputs = false) {
  const clock = new ManualClock(1_000_000);
  const metrics = new Metrics();
  const ctx = (name: string): ComponentContext => ({ name, logger: silentLogger, clock, metrics, mode: 'test' });
  const activities = new ScriptedSource('activities', [
    {
      partition: 'activities/0',
      values: json(
        { id: 'a1', employee_id: 1, activity_timestamp: '2025-01-06T10:05:00Z' },
        { id: 'a2', employee_id: 1, activity_timestamp: '2025-01-06T10:40:00Z' },
      ),
    },
    { partition: 'activities/0', values: json({ id: 'a3', employee_id: 1, activity_timestamp: '2025-01-06T11:30:00Z' }) },
  ]);
  activities.assignFirst = ['activities/0'];
  const joined = new Spy(
    joinStep.create({ join: { table: 'employees', on: 'employee_id', as: 'employee', type: 'left', time: 'activity_timestamp', idle: '1s', ...join } }, ctx('with-employee')),
    hideSideInputs,
  );
  // An idle timeout far beyond the test's clock: only partitions it is told of can hold it.
  const hourly = new Spy(
    windowStep.create(
      {
        window: { tumbling: '1h', time: 'activity_timestamp', lateness: '0s', idle: '1h' },
        group_by: { department: '$exists(employee.department) ? employee.department : "Unknown"' },
        aggregate: { n: '$count()' },
      },
      ctx('hourly'),
    ),
  );
  const joinedOut = new RecordingSink();
  const hourlyOut = new RecordingSink();
  const graph = graphOf([
    { source: 'activities', impl: activities },
    { source: 'employee-changes', impl: employeeSource },
    { step: 'employees', impl: tableStep.create({ table: { key: 'id' } }, ctx('employees')), from: ['employee-changes'] },
    // As the plan resolves a join: its `from`, then its side input.
    { step: 'with-employee', impl: joined, from: ['activities', 'employees'] },
    { step: 'hourly', impl: hourly, from: ['with-employee'] },
    { sink: 'joined-out', impl: joinedOut, from: ['with-employee'] },
    { sink: 'hourly-out', impl: hourlyOut, from: ['hourly'] },
  ]);
  const runtime = new Runtime(graph, { logger: silentLogger, metrics, clock, tickMs: 0, openSinks: false });
  return { runtime, clock, joined, hourly, joinedOut, hourlyOut, activities };
}

describe('Runtime: side inputs', () => {
  it('hands a step with two inputs batches that say which input sent them', async () => {
    const changes = new ScriptedSource('employee-changes', [{ partition: 'employee-changes/0', values: json({ id: 1, department: 'Sales' }) }]);
    const { runtime, joined, joinedOut, hourlyOut, activities } = setup(changes);
    const outcome = await runtime.run();
    expect(outcome.ended).toBe('end-of-input');
    expect(joined.batches.sort()).toEqual(['activities:activities/0:1', 'activities:activities/0:2', 'employees:employees:1']);
    expect(joinedOut.values.map((v) => [(v as { id: string }).id, (v as { employee: { department: string } | null }).employee?.department ?? null])).toEqual([
      ['a1', 'Sales'],
      ['a2', 'Sales'],
      ['a3', 'Sales'],
    ]);
    expect(hourlyOut.values).toEqual([
      { department: 'Sales', window_start: '2025-01-06T10:00:00.000Z', window_end: '2025-01-06T11:00:00.000Z', n: 2 },
      { department: 'Sales', window_start: '2025-01-06T11:00:00.000Z', window_end: '2025-01-06T12:00:00.000Z', n: 1 },
    ]);
    // The table's change never passes the join: nothing but activities reaches the sinks.
    expect(joinedOut.values).toHaveLength(3);
    expect(activities.completed.sort()).toEqual([0, 1]);
    expect(changes.completed).toEqual([0]);
  });

  it('tells the join of the table source\'s partitions (via the table), but not the window after it, whose watermark they must not hold', async () => {
    const { runtime, clock, joined, hourly, hourlyOut, joinedOut } = setup(new QuietSource(['employee-changes/0']));
    const running = runtime.run();
    for (let i = 0; i < 10; i++) await settle();

    expect(joined.events).toContainEqual({ event: 'assign employee-changes/0', via: ['employees'] });
    expect(joined.events).toContainEqual({ event: 'assign activities/0', via: ['activities'] });
    expect(hourly.events.map((e) => e.event)).not.toContain('assign employee-changes/0');
    expect(hourly.events).toContainEqual({ event: 'assign activities/0', via: ['with-employee'] });
    expect(hourly.events.every((e) => !e.event.includes('employee-changes'))).toBe(true);

    // The join holds the activities: the table's partition is assigned, active and behind.
    expect(joined.inner.stats!().waiting).toBe(3);
    expect(joinedOut.values).toEqual([]);

    // The table's partition goes idle for the join (1s): the activities pass, and the window,
    // held by nothing but the activities' partition, closes 10:00-11:00 at once (its own idle is 1h).
    clock.advance(1_000);
    await runtime.tick();
    for (let i = 0; i < 5; i++) await settle();
    expect(joinedOut.values).toHaveLength(3);
    expect(hourlyOut.values).toEqual([{ department: 'Unknown', window_start: '2025-01-06T10:00:00.000Z', window_end: '2025-01-06T11:00:00.000Z', n: 2 }]);

    // Stopped, not ended: the 11:00 hour stays open (no onEnd flush).
    await runtime.stop();
    const outcome = await running;
    expect(outcome.ended).toBe('stopped');
    expect(hourlyOut.values).toHaveLength(1);
  });

  it('control: were the table an ordinary input, its quiet partition would reach the window and hold it', async () => {
    const { runtime, clock, hourly, hourlyOut, joinedOut } = setup(new QuietSource(['employee-changes/0']), {}, true);
    const running = runtime.run();
    for (let i = 0; i < 10; i++) await settle();
    expect(hourly.events).toContainEqual({ event: 'assign employee-changes/0', via: ['with-employee'] });
    clock.advance(1_000);
    await runtime.tick();
    for (let i = 0; i < 5; i++) await settle();
    expect(joinedOut.values).toHaveLength(3);
    expect(hourlyOut.values).toEqual([]);
    await runtime.stop();
    await running;
  });
});

describe('Runtime: how far a table source has read', () => {
  /** Notes whether the runtime offered it `caughtUp`, and reports its partition read to the end once. */
  class ReportingSource extends QuietSource {
    offered: boolean | undefined;
    constructor(partitions: string[], private readonly reportAt?: number) {
      super(partitions);
    }
    override async run(out: SourceOutput): Promise<void> {
      this.offered = out.caughtUp !== undefined;
      const running = super.run(out);
      if (this.reportAt !== undefined) out.caughtUp?.(['employee-changes/0'], this.reportAt);
      return running;
    }
  }

  it('offers caughtUp only to a source that feeds a side input, and the join hears it via the table', async () => {
    const table = new ReportingSource(['employee-changes/0'], 5);
    const { runtime, joined } = setup(table);
    const running = runtime.run();
    for (let i = 0; i < 50 && !joined.events.some((e) => e.event.startsWith('caught-up')); i++) await settle();
    expect(table.offered).toBe(true);
    expect(joined.events.find((e) => e.event.startsWith('caught-up'))).toEqual({ event: 'caught-up employee-changes/0', via: ['employees'] });
    await runtime.stop();
    await running;
  });

  it('offers nothing when the join does not keep the table as a side input', async () => {
    const table = new ReportingSource(['employee-changes/0']);
    const { runtime } = setup(table, {}, true);
    const running = runtime.run();
    for (let i = 0; i < 20; i++) await settle();
    expect(table.offered).toBe(false);
    await runtime.stop();
    await running;
  });
});
