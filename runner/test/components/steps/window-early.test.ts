/** Early results: a window's result so far on a cron schedule, before its exact final one. */
import { describe, expect, it } from 'vitest';
import { windowStep } from '../../../src/components/steps/window.ts';
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { ComponentContext, Step, StepOutput } from '../../../src/engine/component.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';

const START = Date.UTC(2025, 0, 6, 10, 0, 0);

class Collect implements StepOutput {
  out: StreamRecord[] = [];
  emit(records: StreamRecord[]): void {
    this.out.push(...records);
  }
  drop(): void {}
  fail(_r: StreamRecord, e: Error): void {
    throw e;
  }
  take(): { n: number; early: unknown; start: string; who: unknown }[] {
    const taken = this.out.splice(0).map((r) => {
      const v = r.value as Record<string, unknown>;
      return { n: v.n as number, early: v.early, start: v.window_start as string, who: v.who };
    });
    return taken;
  }
}

const acks: Ack[] = [];
function records(values: { who: string; ts: string }[]): StreamRecord[] {
  const ack = new Ack(() => {});
  acks.push(ack);
  ack.retain(values.length);
  ack.seal();
  return values.map((value, i) => ({ key: null, value, time: 0, headers: {}, meta: {}, position: { source: 's', partition: 's/0', offset: String(i) }, ack }));
}

function setup(early = '*/5 * * * *'): { step: Step; clock: ManualClock; out: Collect } {
  const clock = new ManualClock(START);
  const context: ComponentContext = { name: 'hourly', logger: silentLogger, clock, metrics: new Metrics(), mode: 'test' };
  const step = windowStep.create({ window: { tumbling: '1h', time: 'ts', early }, group_by: ['who'], aggregate: { n: '$count()' } }, context);
  return { step, clock, out: new Collect() };
}

async function tickAt(s: { step: Step; clock: ManualClock; out: Collect }, iso: string): Promise<void> {
  s.clock.set(Date.parse(iso));
  await s.step.onTick!(s.clock.now(), s.out);
}

describe('window early results', () => {
  it('emits the open windows\' results so far when the schedule fires, then the final one, all under one key', async () => {
    const s = setup();
    s.step.onPartitions!({ type: 'assign', partitions: ['s/0'] }, s.out);
    await s.step.process({ partition: 's/0', records: records([{ who: 'a', ts: '2025-01-06T09:01:00Z' }, { who: 'b', ts: '2025-01-06T09:02:00Z' }]) }, s.out);
    // The first tick only learns when the first early results are due (10:05): none yet.
    await tickAt(s, '2025-01-06T10:01:00Z');
    expect(s.out.take()).toEqual([]);
    await tickAt(s, '2025-01-06T10:05:00Z');
    expect(s.out.take()).toEqual([
      { n: 1, early: true, start: '2025-01-06T09:00:00.000Z', who: 'a' },
      { n: 1, early: true, start: '2025-01-06T09:00:00.000Z', who: 'b' },
    ]);
    // Only a group that took records since its last early result comes again.
    await s.step.process({ partition: 's/0', records: records([{ who: 'a', ts: '2025-01-06T09:03:00Z' }]) }, s.out);
    await tickAt(s, '2025-01-06T10:07:00Z');
    expect(s.out.take()).toEqual([]);
    await tickAt(s, '2025-01-06T10:10:00Z');
    expect(s.out.take()).toEqual([{ n: 2, early: true, start: '2025-01-06T09:00:00.000Z', who: 'a' }]);
    // Nothing new: nothing at 10:15.
    await tickAt(s, '2025-01-06T10:15:00Z');
    expect(s.out.take()).toEqual([]);
    // A record past the hour closes it: the final results, exact, marked early: false.
    await s.step.process({ partition: 's/0', records: records([{ who: 'a', ts: '2025-01-06T10:00:01Z' }]) }, s.out);
    expect(s.out.take()).toEqual([
      { n: 2, early: false, start: '2025-01-06T09:00:00.000Z', who: 'a' },
      { n: 1, early: false, start: '2025-01-06T09:00:00.000Z', who: 'b' },
    ]);
    const keys = new Set<string>();
    await tickAt(s, '2025-01-06T10:20:00Z');
    for (const r of s.out.out) keys.add(JSON.stringify(r.key));
    expect([...keys]).toEqual([JSON.stringify({ who: 'a', window_start: '2025-01-06T10:00:00.000Z' })]);
    await s.step.onEnd!(s.out);
    // Every input reference is released once the outputs are.
    for (const r of s.out.out) r.ack.release();
  });

  it('fires once per tick however many schedule times it slept through', async () => {
    const s = setup('* * * * *');
    await s.step.process({ partition: 's/0', records: records([{ who: 'a', ts: '2025-01-06T09:01:00Z' }]) }, s.out);
    await tickAt(s, '2025-01-06T10:00:30Z');
    await tickAt(s, '2025-01-06T10:09:30Z');
    expect(s.out.take()).toEqual([{ n: 1, early: true, start: '2025-01-06T09:00:00.000Z', who: 'a' }]);
  });

  it('leaves outputs without `early` when not configured, and refuses it with emit: update or a bad schedule', async () => {
    const context: ComponentContext = { name: 'w', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' };
    const plain = windowStep.create({ window: { tumbling: '1h', time: 'ts' }, aggregate: { n: '$count()' } }, context);
    const out = new Collect();
    await plain.process({ partition: 's/0', records: records([{ who: 'a', ts: '2025-01-06T09:01:00Z' }]) }, out);
    await plain.onEnd!(out);
    expect(out.out.map((r) => Object.keys(r.value as object))).toEqual([['window_start', 'window_end', 'n']]);
    expect(out.out[0]!.meta).not.toHaveProperty('early');
    expect(() => windowStep.create({ window: { tumbling: '1h', emit: 'update', early: '*/5 * * * *' }, aggregate: { n: '$count()' } }, context)).toThrow(/emit: final/);
    expect(() => windowStep.create({ window: { tumbling: '1h', early: '61 * * * *' }, aggregate: { n: '$count()' } }, context)).toThrow(/not a cron schedule/);
    expect(() => windowStep.create({ window: { tumbling: '1h', early: '*/5 * * * *' }, group_by: ['early'], aggregate: { n: '$count()' } }, context)).toThrow(/set by the window itself/);
  });
});
