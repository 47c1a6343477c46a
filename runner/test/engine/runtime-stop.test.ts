/** A stopping run ends even when a sink cannot finish its write (a webhook whose target is down). */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.ts';
import type { OutboundMessage, Prepared, Sink } from '../../src/engine/component.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import type { StreamRecord } from '../../src/engine/record.ts';
import { Runtime } from '../../src/engine/runtime.ts';
import { graphOf, ScriptedSource, settle } from './fake-components.ts';

/** Its writes never end until it is closed, as a sink retrying a dead target. */
class StuckSink implements Sink {
  closed = false;
  writes = 0;
  private abandon: ((err: Error) => void)[] = [];
  async open(): Promise<void> {}
  prepare(records: readonly StreamRecord[]): Prepared[] {
    return records.map((r) => ({ key: r.key, value: r.value }));
  }
  write(_messages: OutboundMessage[]): Promise<void> {
    this.writes++;
    if (this.closed) return Promise.reject(new Error('closed'));
    return new Promise((_resolve, reject) => this.abandon.push(reject));
  }
  async close(): Promise<void> {
    this.closed = true;
    for (const reject of this.abandon.splice(0)) reject(new Error('closed while writing'));
  }
}

describe('stopping with a sink that cannot finish', () => {
  it('fails the run with E_SINK_STUCK after the grace, closes the sink, and acknowledges nothing unwritten', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: ['{"id":1}', '{"id":2}'] }], false);
    const sink = new StuckSink();
    const runtime = new Runtime(
      graphOf([
        { source: 'in', impl: source },
        { sink: 'out', impl: sink, from: ['in'] },
      ]),
      { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0, stopGraceMs: 300 },
    );
    const run = runtime.run();
    for (let i = 0; i < 50 && sink.writes === 0; i++) await settle();
    expect(sink.writes).toBe(1);
    const t0 = Date.now();
    await runtime.stop('test stop');
    await expect(run).rejects.toMatchObject({ code: 'E_SINK_STUCK' });
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(sink.closed).toBe(true);
    expect(source.completed).toEqual([]);
  });

  it('still waits for a sink that finishes within the grace', async () => {
    const source = new ScriptedSource('in', [{ partition: 'p', values: ['{"id":1}'] }], false);
    let finish: () => void = () => {};
    const slow: Sink = {
      open: async () => {},
      prepare: (records) => records.map((r) => ({ key: r.key, value: r.value })),
      write: () => new Promise<void>((resolve) => (finish = resolve)),
      close: async () => {},
    };
    const runtime = new Runtime(
      graphOf([
        { source: 'in', impl: source },
        { sink: 'out', impl: slow, from: ['in'] },
      ]),
      { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0, stopGraceMs: 5_000 },
    );
    const run = runtime.run();
    for (let i = 0; i < 50; i++) await settle();
    const stopping = runtime.stop('test stop');
    setTimeout(() => finish(), 100);
    await stopping;
    const outcome = await run;
    expect(outcome.ended).toBe('stopped');
    expect(source.completed).toEqual([0]);
  });
});
