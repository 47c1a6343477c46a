/**
 * postgres-query with `schedule:` against the local PostgreSQL, on the system clock with a schedule
 * every second: each run emits the table as it was when it ran; a tick during a slow run is
 * skipped and counted; a failing run (its table dropped) is counted and the next tick succeeds once
 * the table is back; `timeout` cancels a slow statement; `stop()` cancels a running query. One
 * test drives the schedule with a ManualClock instead.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresQueryConfig } from '../../../src/components/sources/postgres-query.ts';
import { postgresQuerySource } from '../../../src/components/sources/postgres-query.ts';
import { comparePositions } from '../../../src/engine/checkpoint/checkpoint.ts';
import { ManualClock, systemClock, type Clock } from '../../../src/engine/clock.ts';
import type { ComponentContext, RawBatch, Source, SourceOutput } from '../../../src/engine/component.ts';
import type { Logger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { RawMessage } from '../../../src/engine/record.ts';
import { waitFor } from '../../io/kafka/test-broker.ts';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const tag = `${process.pid}_${Date.now() % 100000}`;
const EVERY_SECOND = '* * * * * *';

let admin: pg.Client;
const tables: string[] = [];

function table(name: string): string {
  const t = `pgq_sched_${name}_${tag}`;
  tables.push(t);
  return t;
}

/** What a source logged at warn, as `msg {fields}`. */
class CapturingLogger implements Logger {
  readonly warnings: { msg: string; fields: Record<string, unknown> }[] = [];
  debug(): void {}
  info(): void {}
  error(): void {}
  warn(obj: object | string, msg?: string): void {
    if (typeof obj === 'string') this.warnings.push({ msg: obj, fields: {} });
    else this.warnings.push({ msg: msg ?? '', fields: obj as Record<string, unknown> });
  }
  child(): Logger {
    return this;
  }
}

interface Harness {
  name: string;
  source: Source;
  metrics: Metrics;
  logger: CapturingLogger;
  out: Output;
  /** run()'s promise, started by `start`. */
  running?: Promise<void>;
}

/** Records batches; `onBatch` runs inside emit, so the source waits for it (what it changes happens before the run ends). */
class Output implements SourceOutput {
  readonly batches: RawBatch[] = [];
  onBatch: ((batch: RawBatch) => Promise<void>) | undefined;
  async emit(batch: RawBatch): Promise<void> {
    this.batches.push(batch);
    await this.onBatch?.(batch);
  }
  assign(): void {}
  revoke(): void {}
  get messages(): RawMessage[] {
    return this.batches.flatMap((b) => b.messages);
  }
  /** Each run's values, by `$meta.run`. */
  runs(): Map<number, unknown[]> {
    const byRun = new Map<number, unknown[]>();
    for (const m of this.messages) {
      const run = m.meta?.run as number;
      byRun.set(run, [...(byRun.get(run) ?? []), m.value]);
    }
    return byRun;
  }
}

function harness(name: string, overrides: Partial<PostgresQueryConfig> & { query: string }, clock: Clock = systemClock): Harness {
  const logger = new CapturingLogger();
  const metrics = new Metrics();
  const ctx: ComponentContext = { name, logger, clock, metrics, mode: 'run' };
  const cfg: PostgresQueryConfig = { ...conn, schedule: EVERY_SECOND, ...overrides };
  return { name, source: postgresQuerySource.create(cfg, ctx), metrics, logger, out: new Output() };
}

async function start(h: Harness): Promise<void> {
  await h.source.check?.();
  h.running = h.source.run(h.out);
}

async function stop(h: Harness): Promise<void> {
  await h.source.stop();
  await h.running;
  await h.source.close();
}

const counter = (h: Harness, what: 'runs' | 'runs_failed' | 'runs_skipped') => h.metrics.counter(`sluice_query_${what}_total`, { node: h.name });

const until = (what: string, cond: () => boolean | Promise<boolean>, ms = 8_000): Promise<void> => waitFor(what, cond, ms);

async function connectionsOf(name: string): Promise<number> {
  const res = await admin.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [`sluice-${name}`]);
  return Number(res.rows[0]?.n);
}

beforeAll(async () => {
  admin = new pg.Client(conn);
  await admin.connect();
});

afterAll(async () => {
  for (const t of tables) await admin.query(`DROP TABLE IF EXISTS ${t}`);
  await admin.end();
});

describe('postgres-query on a schedule', () => {
  it('runs at start and at every tick; each run emits the table as it was, $meta.run counting, positions ordered across runs', async () => {
    const t = table('items');
    await admin.query(`CREATE TABLE ${t} (id int PRIMARY KEY, name text)`);
    await admin.query(`INSERT INTO ${t} VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    const h = harness('sched_items', { query: `SELECT id, name FROM ${t} ORDER BY id`, key: ['id'] });
    // The table changes while each run's rows are handed over: the run has its snapshot already, the next run sees the change.
    const changes = [`INSERT INTO ${t} VALUES (4, 'd')`, `UPDATE ${t} SET name = 'A' WHERE id = 1`, `DELETE FROM ${t} WHERE id = 2`];
    h.out.onBatch = async (batch) => {
      const change = changes[(batch.messages[0]!.meta?.run as number) - 1];
      if (change) await admin.query(change);
    };
    const started = Date.now();
    await start(h);
    await until('four runs', () => (h.out.runs().get(4)?.length ?? 0) > 0);
    await stop(h);

    const runs = h.out.runs();
    expect([1, 2, 3, 4].map((r) => runs.get(r))).toEqual([
      [{ id: 1, name: 'a' }, { id: 2, name: 'b' }, { id: 3, name: 'c' }],
      [{ id: 1, name: 'a' }, { id: 2, name: 'b' }, { id: 3, name: 'c' }, { id: 4, name: 'd' }],
      [{ id: 1, name: 'A' }, { id: 2, name: 'b' }, { id: 3, name: 'c' }, { id: 4, name: 'd' }],
      [{ id: 1, name: 'A' }, { id: 3, name: 'c' }, { id: 4, name: 'd' }],
    ]);
    // Run at start, then one per second: four runs take about three seconds.
    expect(Date.now() - started).toBeLessThan(6_000);
    const messages = h.out.messages;
    expect(messages.slice(0, 4).map((m) => [m.position.offset, m.meta, m.key])).toEqual([
      ['1/1', { op: 'r', run: 1, row: 1, started_at: new Date(messages.find((m) => m.meta?.run === 1)!.timestamp).toISOString() }, { id: 1 }],
      ['1/2', { op: 'r', run: 1, row: 2, started_at: new Date(messages.find((m) => m.meta?.run === 1)!.timestamp).toISOString() }, { id: 2 }],
      ['1/3', { op: 'r', run: 1, row: 3, started_at: new Date(messages.find((m) => m.meta?.run === 1)!.timestamp).toISOString() }, { id: 3 }],
      ['2/1', { op: 'r', run: 2, row: 1, started_at: new Date(messages.find((m) => m.meta?.run === 2)!.timestamp).toISOString() }, { id: 1 }],
    ]);
    expect(messages.every((m) => m.position.partition === 'sched_items/query')).toBe(true);
    for (let i = 1; i < messages.length; i++) expect(comparePositions(messages[i - 1]!.position.offset, messages[i]!.position.offset)).toBe(-1);
    // Each run's rows carry the time it started, later run by run.
    const startedAt = [1, 2, 3, 4].map((r) => messages.find((m) => m.meta?.run === r)!.timestamp);
    expect([...startedAt].sort((a, b) => a - b)).toEqual(startedAt);
    expect(startedAt[3]! - startedAt[1]!).toBeGreaterThanOrEqual(1_500);

    expect(counter(h, 'runs')).toBeGreaterThanOrEqual(4);
    expect(counter(h, 'runs_failed')).toBe(0);
    expect(h.metrics.gauge('sluice_query_last_run_rows', { node: 'sched_items' })).toBeGreaterThan(0);
    expect(h.metrics.gauge('sluice_query_last_run_duration_seconds', { node: 'sched_items' })).toBeGreaterThan(0);
    expect(h.source.bounded).toBe(false);
    expect(await connectionsOf('sched_items')).toBe(0);
  });

  it('skips and counts ticks while a slow run is still going; stop() cancels the running query', async () => {
    const h = harness('sched_slow', { query: 'SELECT 1 AS x FROM pg_sleep(2.5)' });
    await start(h);
    // Run 1 sleeps 2.5 s from start: the ticks of at least two whole seconds come during it.
    await until('a second run', () => counter(h, 'runs') >= 2);
    expect(counter(h, 'runs_skipped')).toBeGreaterThanOrEqual(2);
    expect(h.out.runs().get(1)).toEqual([{ x: 1 }]);
    expect(h.logger.warnings.filter((w) => /tick skipped/.test(w.msg)).length).toBe(counter(h, 'runs_skipped'));

    // Run 2 is sleeping now: stop ends it at once, and the server is not left running it.
    await until('run 2 sleeping on the server', async () => {
      const res = await admin.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'sluice-sched_slow' AND wait_event = 'PgSleep'");
      return res.rowCount === 1;
    });
    const stopping = Date.now();
    await stop(h);
    expect(Date.now() - stopping).toBeLessThan(1_500);
    expect(h.out.runs().get(2)).toBeUndefined();
    await until('no connections left', async () => (await connectionsOf('sched_slow')) === 0, 1_000);
    expect(counter(h, 'runs_failed')).toBe(0);
  });

  it('a run that fails (its table dropped) is logged with SQLSTATE and counted; the next tick succeeds once the table is back', async () => {
    const t = table('dropped');
    await admin.query(`CREATE TABLE ${t} (id int PRIMARY KEY)`);
    await admin.query(`INSERT INTO ${t} VALUES (1), (2)`);
    const h = harness('sched_dropped', { query: `SELECT id FROM ${t} ORDER BY id` });
    await start(h);
    // Dropped once run 1 is over (during it, DROP would wait for its transaction, which waits for us).
    await until('run 1', () => h.metrics.gauge('sluice_query_last_run_rows', { node: 'sched_dropped' }) === 2);
    await admin.query(`DROP TABLE ${t}`);
    await until('a failed run', () => counter(h, 'runs_failed') >= 1);
    const warning = h.logger.warnings.find((w) => /query run failed/.test(w.msg));
    expect(warning?.fields).toMatchObject({ code: 'E_PG_QUERY', sqlstate: '42P01' });
    expect(String(warning?.fields.err)).toMatch(/relation ".*" does not exist/);

    await admin.query(`CREATE TABLE ${t} (id int PRIMARY KEY)`);
    await admin.query(`INSERT INTO ${t} VALUES (7)`);
    await until('a run after the table is back', () => [...h.out.runs().values()].some((rows) => rows.length === 1));
    await stop(h);

    const runs = h.out.runs();
    expect(runs.get(1)).toEqual([{ id: 1 }, { id: 2 }]);
    const back = [...runs.entries()].find(([, rows]) => rows.length === 1)!;
    expect(back[1]).toEqual([{ id: 7 }]);
    // Runs before the drop emitted the old rows; every run between the drop and `back` failed, and each was counted.
    const before = [...runs.keys()].filter((r) => r < back[0]).length;
    expect(counter(h, 'runs_failed')).toBe(back[0] - 1 - before);
    expect(counter(h, 'runs_failed')).toBeGreaterThanOrEqual(1);
    expect(counter(h, 'runs')).toBeGreaterThanOrEqual(back[0]);
  });

  it('timeout: a statement that takes longer fails the run with SQLSTATE 57014, counted; the schedule goes on', async () => {
    const h = harness('sched_timeout', { query: 'SELECT 1 AS x FROM pg_sleep(3)', timeout: '300ms' });
    const started = Date.now();
    await start(h);
    await until('two timed-out runs', () => counter(h, 'runs_failed') >= 2);
    // Without the timeout the first run alone would take 3 s.
    expect(Date.now() - started).toBeLessThan(2_900);
    await stop(h);
    const warning = h.logger.warnings.find((w) => /query run failed/.test(w.msg));
    expect(warning?.fields).toMatchObject({ run: 1, sqlstate: '57014' });
    expect(String(warning?.fields.err)).toContain('canceling statement due to statement timeout (SQLSTATE 57014); a statement of the run took longer than `timeout` (300ms)');
    expect(h.out.messages).toEqual([]);
  });

  it('on a ManualClock with run_at_start: false, runs only when the clock reaches a tick', async () => {
    const t = table('manual');
    await admin.query(`CREATE TABLE ${t} (id int PRIMARY KEY)`);
    await admin.query(`INSERT INTO ${t} VALUES (1)`);
    const clock = new ManualClock(Date.parse('2025-03-30T00:59:00Z'));
    // 03:00 in Berlin, which on this day comes an hour after 01:59.
    const h = harness('sched_manual', { query: `SELECT id FROM ${t}`, schedule: '0 3 * * *', timezone: 'Europe/Berlin', run_at_start: false }, clock);
    await start(h);
    await new Promise((r) => setTimeout(r, 200));
    expect(counter(h, 'runs')).toBe(0);
    clock.advance(30 * 60_000); // 01:29 UTC, 03:29 in Berlin: past the tick at 01:00 UTC
    await until('the run at the tick', () => h.out.messages.length === 1);
    expect(h.out.messages[0]).toMatchObject({ timestamp: Date.parse('2025-03-30T01:29:00Z'), position: { offset: '1/1' }, meta: { run: 1 } });
    clock.advance(3_600_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(counter(h, 'runs')).toBe(1);
    await stop(h);
  });
});
