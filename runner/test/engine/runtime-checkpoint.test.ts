/**
 * Exactly-once across a restart, end to end in-process: pipelines/employee-activity.yaml (profile
 * `local`: the generator standing in for Debezium, file sinks) run with a FileStateStore and a
 * CheckpointCoordinator, stopped or crashed in the middle of an hour of event time, then a new
 * runtime over the same input restored from the store and run to the end. Its outputs must equal
 * an uninterrupted run's record for record, and every hourly summary must equal what this test
 * computes from the input events on its own. A second part does the same over scripted batches
 * from two partitions with a late record, where the restored watermarks decide what is late.
 *
 * Deterministic by construction, no sleeps:
 * - the generator is seeded and, in `mode: 'test'`, unpaced (rate 0) from a fixed start time;
 * - the processing-time clock is a ManualClock that never moves, so the window's `idle: 1m` never
 *   fires and nothing depends on how fast the machine is (the runtime's tick timer is off);
 * - the runtime's checkpoint timer is a fake `setInterval` (vi.useFakeTimers on setInterval only):
 *   the source advances it right after handing over a chosen batch, so the checkpoint job lands
 *   in the serial job queue exactly after that batch, then waits for its cut (a `snapshot()` job
 *   queued behind it) and its commit, which goes on beside processing, before reading on;
 * - stops and crashes happen right after a chosen batch: the wrapped source hands over nothing
 *   after it, whatever the generator still has in its current chunk.
 */
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Checkpoint, CommitFigures, StateStore } from '../../src/engine/checkpoint/checkpoint.ts';
import { CheckpointCoordinator } from '../../src/engine/checkpoint/coordinator.ts';
import { ManualClock } from '../../src/engine/clock.ts';
import { SharedResources, type CheckpointContext, type Source, type SourceOutput } from '../../src/engine/component.ts';
import { SluiceError } from '../../src/engine/errors.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import type { RawMessage } from '../../src/engine/record.ts';
import { Runtime, type RunOutcome } from '../../src/engine/runtime.ts';
import { FileStateStore } from '../../src/engine/state/file-store.ts';
import { instantiate } from '../../src/plan/instantiate.ts';
import { loadPipeline } from '../../src/plan/load-pipeline.ts';
import { stateSettings, storedIdentities } from '../../src/plan/state.ts';
import type { Plan } from '../../src/plan/types.ts';
import { windowStep } from '../../src/components/steps/window.ts';
import { RecordingSink, ScriptedSource, graphOf, settle, type BatchSpec } from './fake-components.ts';

const SPEC = path.resolve(import.meta.dirname, '../../../pipelines/employee-activity.yaml');
const HOUR = 3_600_000;
/** About six hours of simulated activity from 08:00, in 180 batches over three partitions. */
const EVENTS = 3000;
const PARTITIONS = 3;
const BATCH_SIZE = 50;
const FILE_SINKS = ['processed', 'summaries', 'late-activities', 'dead-letters'] as const;

/** The employee spec, its file sinks writing into `outDir`. */
async function employeePlan(outDir: string): Promise<Plan> {
  const loaded = await loadPipeline(SPEC, {
    env: {},
    profile: 'local',
    sets: [
      { path: 'sources.activities.generator.count', value: EVENTS },
      { path: 'sources.activities.generator.partitions', value: PARTITIONS },
      { path: 'sources.activities.generator.batch_size', value: BATCH_SIZE },
      ...FILE_SINKS.map((sink) => ({ path: `sinks.${sink}.file.path`, value: path.join(outDir, `${sink}.jsonl`) })),
    ],
  });
  if (!loaded.ok) throw new Error(`the spec did not load: ${JSON.stringify(loaded.diagnostics)}`);
  return loaded.plan;
}

/** What a run does after handing over a given generator batch (0-based, counted over the whole input). */
interface Script {
  checkpointAfter?: number[];
  /** runtime.stop(): a graceful stop, which takes a last checkpoint. */
  stopAfter?: number;
  /** The source fails once everything before it was written: the run ends with no last checkpoint, as a crash. */
  crashAfter?: number;
}

/** The file store, counting commits and noting at each how many records the checkpoint-less sink had written. */
class ObservedStore implements StateStore {
  commits = 0;
  /** `terminal` records written when the last commit became durable. */
  terminalAtCommit = 0;
  constructor(
    readonly inner: FileStateStore,
    private readonly terminal: RecordingSink,
  ) {}
  get description(): string {
    return this.inner.description;
  }
  open(): Promise<void> {
    return this.inner.open();
  }
  load(): Promise<Checkpoint | undefined> {
    return this.inner.load();
  }
  async commit(checkpoint: Checkpoint): Promise<CommitFigures> {
    const figures = await this.inner.commit(checkpoint);
    this.commits++;
    // The coordinator flushed every sink before committing: this is what the checkpoint covers.
    this.terminalAtCommit = this.terminal.values.length;
    return figures;
  }
  reset(): Promise<void> {
    return this.inner.reset();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Segment {
  outcome: RunOutcome | undefined;
  error: unknown;
  /** Every message the generator handed over in this run (before the coordinator's admit). */
  messages: RawMessage[];
  store: ObservedStore | undefined;
  /** What the `terminal` sink (no checkpoint support: at-least-once, as stdout) received. */
  terminal: unknown[];
}

/**
 * One run of the employee pipeline. With `stateDir` it takes checkpoints into a file store there
 * (restoring from what is stored); without, it is a plain run with no durable state.
 */
async function runSegment(plan: Plan, stateDir: string | undefined, script: Script = {}): Promise<Segment> {
  const clock = new ManualClock(Date.parse('2025-01-06T08:00:00Z'));
  const metrics = new Metrics();
  const terminal = new RecordingSink();
  let store: ObservedStore | undefined;
  let coordinator: CheckpointCoordinator | undefined;
  let context: CheckpointContext | undefined;
  if (stateDir !== undefined) {
    const settings = stateSettings(plan, { stateDir });
    expect(settings).toMatchObject({ store: 'file', delivery: 'exactly-once', applicationId: 'employee-activity' });
    store = new ObservedStore(new FileStateStore(settings.dir), terminal);
    coordinator = new CheckpointCoordinator(
      { store, intervalMs: settings.intervalMs, applicationId: settings.applicationId, identities: storedIdentities(plan) },
      clock,
      silentLogger,
    );
    context = { delivery: settings.delivery, applicationId: settings.applicationId, shared: new SharedResources() };
  }
  const graph = instantiate(plan, { mode: 'test', clock, metrics, ...(context ? { checkpoints: context } : {}) });

  // The profile's `terminal` (stdout) sink becomes a recording one: a sink that cannot undo writes.
  const terminalNode = graph.nodes.find((n) => n.name === 'terminal');
  if (terminalNode?.role !== 'sink') throw new Error('the local profile has no terminal sink');
  terminalNode.sink = terminal;

  const sourceNode = graph.nodes.find((n) => n.name === 'activities');
  if (sourceNode?.role !== 'source') throw new Error('no activities source');
  const messages: RawMessage[] = [];
  // Wrapped before the Runtime is built: it takes the graph's components as they are then.
  sourceNode.source = scripted(sourceNode.source, script, messages, () => runtime, coordinator?.intervalMs ?? 0);
  const runtime = new Runtime(graph, { logger: silentLogger, metrics, clock, tickMs: 0, ...(coordinator ? { checkpoints: coordinator } : {}) });

  let outcome: RunOutcome | undefined;
  let error: unknown;
  try {
    outcome = await runtime.run();
  } catch (err) {
    error = err;
  }
  return { outcome, error, messages, store, terminal: terminal.values };
}

/** Wraps a source: records what it hands over and acts on the script after chosen batches. */
function scripted(inner: Source, script: Script, messages: RawMessage[], runtimeOf: () => Runtime, intervalMs: number): Source {
  let index = 0;
  let halted = false;
  return {
    bounded: inner.bounded,
    stop: () => inner.stop(),
    close: () => inner.close(),
    run: (out: SourceOutput) =>
      inner.run({
        ...out,
        emit: async (batch) => {
          const at = index++;
          const runtime = runtimeOf();
          if (halted) return; // stopped or crashed: the rest of the generator's chunk never arrives
          messages.push(...batch.messages);
          await out.emit(batch);
          if (script.checkpointAfter?.includes(at)) {
            const before = runtime.stats().checkpoint?.epoch ?? 0;
            vi.advanceTimersByTime(intervalMs); // the checkpoint timer fires: its job queues right behind this batch
            await runtime.snapshot(); // queued behind the checkpoint job: resolves once it was cut
            await committedAfter(runtime, before); // it commits while processing goes on
          }
          if (at === script.stopAfter) {
            halted = true;
            void runtime.stop('test: stop mid-hour');
          }
          if (at === script.crashAfter) {
            halted = true;
            await everythingWritten(runtime);
            throw new Error('test: crash');
          }
        },
      }),
  };
}

/** Resolves once a checkpoint after epoch `before` committed. */
async function committedAfter(runtime: Runtime, before: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if ((runtime.stats().checkpoint?.epoch ?? 0) > before) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`no checkpoint after epoch ${before} committed`);
}

/** Every job before now processed and every sink queue written out. */
async function everythingWritten(runtime: Runtime): Promise<void> {
  await runtime.snapshot();
  for (let i = 0; i < 1000; i++) {
    const sinks = Object.values(runtime.stats().nodes).filter((n) => n.role === 'sink');
    if (sinks.every((n) => n.queued === 0 && n.writing === 0)) return;
    await settle();
  }
  throw new Error('sinks did not drain');
}

/* ------------------------------------------------------------------ the input, independently */

interface Row {
  id: number;
  employee_id: number;
  activity_type: string;
  duration_seconds: number | null;
  /** Epoch microseconds (Debezium MicroTimestamp). */
  activity_timestamp: number;
}

/** The row of an insert event, read straight from the generator's Debezium envelope; undefined for anything else. */
function insertedRow(m: RawMessage): Row | undefined {
  const envelope = m.value as { payload?: { op?: string; after?: Row | null } } | null;
  return envelope?.payload?.op === 'c' && envelope.payload.after ? envelope.payload.after : undefined;
}

const eventMillis = (row: Row) => Math.floor(row.activity_timestamp / 1000);
const hourStart = (ms: number) => Math.floor(ms / HOUR) * HOUR;

interface Summary {
  window_end: string;
  activity_count: number;
  total_duration: number | null;
  avg_duration: number | null;
}

/**
 * Count, sum and average of duration per employee, activity type and UTC hour, over the inserts
 * (SQL semantics: a NULL duration is counted as an activity but left out of sum and average).
 */
function expectedSummaries(input: readonly RawMessage[]): Map<string, Summary> {
  const groups = new Map<string, { start: number; count: number; durations: number[] }>();
  for (const m of input) {
    const row = insertedRow(m);
    if (!row) continue;
    const start = hourStart(eventMillis(row));
    const key = `${row.employee_id}|${row.activity_type}|${new Date(start).toISOString()}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { start, count: 0, durations: [] }));
    g.count++;
    if (row.duration_seconds !== null) g.durations.push(row.duration_seconds);
  }
  const out = new Map<string, Summary>();
  for (const [key, g] of groups) {
    const total = g.durations.reduce((a, b) => a + b, 0);
    out.set(key, {
      window_end: new Date(g.start + HOUR).toISOString(),
      activity_count: g.count,
      total_duration: g.durations.length === 0 ? null : total,
      avg_duration: g.durations.length === 0 ? null : total / g.durations.length,
    });
  }
  return out;
}

function summariesByKey(lines: readonly string[]): Map<string, Summary> {
  const out = new Map<string, Summary>();
  for (const line of lines) {
    const s = JSON.parse(line) as Summary & { employee_id: number; activity_type: string; window_start: string };
    const key = `${s.employee_id}|${s.activity_type}|${s.window_start}`;
    expect(out.has(key), `summary ${key} written twice`).toBe(false);
    out.set(key, { window_end: s.window_end, activity_count: s.activity_count, total_duration: s.total_duration, avg_duration: s.avg_duration });
  }
  return out;
}

/** Whether a message is at or below the checkpoint's position for its partition (the state reflects it). */
function beforeCut(m: RawMessage, positions: Record<string, string>): boolean {
  const p = positions[m.position.partition];
  return p !== undefined && BigInt(m.position.offset) <= BigInt(p);
}

/* ------------------------------------------------------------------ outputs */

type Outputs = Record<(typeof FILE_SINKS)[number], string[]>;

async function readOutputs(outDir: string): Promise<Outputs> {
  const entries = await Promise.all(
    FILE_SINKS.map(async (sink) => {
      const text = await readFile(path.join(outDir, `${sink}.jsonl`), 'utf8');
      return [sink, text.split('\n').filter((l) => l.length > 0)] as const;
    }),
  );
  return Object.fromEntries(entries) as Outputs;
}

const tempDir = (what: string) => mkdtemp(path.join(tmpdir(), `sluice-${what}-`));

let reference: Promise<{ outputs: Outputs; input: RawMessage[]; terminal: unknown[] }> | undefined;
/** The uninterrupted run, without checkpoints: what every interrupted one must end up writing. */
function uninterrupted(): Promise<{ outputs: Outputs; input: RawMessage[]; terminal: unknown[] }> {
  reference ??= (async () => {
    const outDir = await tempDir('reference');
    const run = await runSegment(await employeePlan(outDir), undefined);
    expect(run.error).toBeUndefined();
    expect(run.outcome?.ended).toBe('end-of-input');
    return { outputs: await readOutputs(outDir), input: run.messages, terminal: run.terminal };
  })();
  return reference;
}

/* ------------------------------------------------------------------ tests */

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('an uninterrupted run of the employee pipeline', () => {
  it('writes every insert once, in input order, and hourly summaries equal to a computation from the input events', async () => {
    const { outputs, input } = await uninterrupted();
    const inserts = input.map(insertedRow).filter((r): r is Row => r !== undefined);
    expect(input).toHaveLength(EVENTS);
    expect(new Set(input.map((m) => m.position.partition)).size).toBe(PARTITIONS);
    expect(inserts.length).toBeGreaterThan(EVENTS * 0.9);
    expect(outputs.processed.map((l) => (JSON.parse(l) as { id: number }).id)).toEqual(inserts.map((r) => r.id));
    const expected = expectedSummaries(input);
    expect(expected.size).toBeGreaterThan(100);
    expect(new Set([...expected.keys()].map((k) => k.split('|')[2])).size).toBeGreaterThanOrEqual(5); // several hours
    expect(summariesByKey(outputs.summaries)).toEqual(expected);
    expect(outputs['late-activities']).toEqual([]);
    expect(outputs['dead-letters']).toEqual([]);
  });
});

describe('the employee pipeline stopped or crashed mid-hour and restored from its checkpoint', () => {
  const scenarios: [string, Script[]][] = [
    ['stopped once, with no checkpoint before the stop\'s own', [{ stopAfter: 40 }]],
    ['stopped after three checkpoints', [{ checkpointAfter: [20, 45, 70], stopAfter: 100 }]],
    ['crashed after three checkpoints, with output written after the last one', [{ checkpointAfter: [30, 60, 90], crashAfter: 120 }]],
    ['stopped, restored, checkpointed, stopped again, restored', [{ stopAfter: 25 }, { checkpointAfter: [50], stopAfter: 80 }]],
  ];

  it.each(scenarios)('%s: the outputs equal the uninterrupted run\'s record for record', async (_name, scripts) => {
    const ref = await uninterrupted();
    const outDir = await tempDir('out');
    const stateDir = await tempDir('state');
    const plan = await employeePlan(outDir);
    /** What the checkpoint-less sink keeps: each run's records up to its last checkpoint (the rest is replayed). */
    const terminalKept: unknown[] = [];
    let replayed: unknown[] = [];
    let restoredFrom: Checkpoint | undefined;

    for (const script of [...scripts, {}]) {
      const run = await runSegment(plan, stateDir, script);
      const store = run.store!;

      // A restored run skipped exactly the messages its checkpoint already reflected, and replayed
      // to the checkpoint-less sink exactly what the previous run wrote after its last checkpoint.
      if (restoredFrom) {
        const cut = restoredFrom.positions;
        expect(run.outcome?.stats.checkpoint?.restored?.epoch).toBe(restoredFrom.epoch);
        expect(run.outcome?.stats.checkpoint?.skipped).toBe(run.messages.filter((m) => beforeCut(m, cut)).length);
        expect(run.terminal.slice(0, replayed.length)).toEqual(replayed);
      }

      const last = script.stopAfter ?? script.crashAfter;
      if (last === undefined) {
        expect(run.error).toBeUndefined();
        expect(run.outcome?.ended).toBe('end-of-input');
        // A finished bounded run removes its state: the next run starts from the beginning.
        expect(await new FileStateStore(stateDir).load()).toBeUndefined();
        terminalKept.push(...run.terminal);
        break;
      }

      const cp = await new FileStateStore(stateDir).load();
      if (!cp) throw new Error('no checkpoint stored');
      const checkpoints = script.checkpointAfter?.length ?? 0;
      if (script.stopAfter !== undefined) {
        expect(run.error).toBeUndefined();
        expect(run.outcome?.ended).toBe('stopped');
        // The scripted checkpoints, then the stop's own; each took a new epoch.
        expect(store.commits).toBe(checkpoints + 1);
        // The stop's checkpoint covers every batch handed over, the stopping one included.
        for (const m of run.messages) expect(beforeCut(m, cp.positions), `${m.position.partition}@${m.position.offset}`).toBe(true);
      } else {
        expect(run.error).toBeInstanceOf(SluiceError);
        expect((run.error as SluiceError).code).toBe('E_SOURCE');
        expect(store.commits).toBe(checkpoints);
        // The crash left output the last checkpoint does not cover: the restart must cut it away.
        const written = (await stat(path.join(outDir, 'processed.jsonl'))).size;
        expect(written).toBeGreaterThan((cp.sinks.processed as { length: number }).length);
        expect(run.messages.some((m) => !beforeCut(m, cp.positions))).toBe(true);
      }
      expect(cp.epoch).toBe((restoredFrom?.epoch ?? 0) + store.commits);

      // Mid-hour: the hour of the latest insert the checkpoint covers goes on after the cut, and
      // its open panes are in the stored window state.
      const inserts = ref.input.map((m) => ({ m, row: insertedRow(m) })).filter((x): x is { m: RawMessage; row: Row } => x.row !== undefined);
      const covered = inserts.filter((x) => beforeCut(x.m, cp.positions));
      const openHour = hourStart(Math.max(...covered.map((x) => eventMillis(x.row))));
      expect(inserts.some((x) => !beforeCut(x.m, cp.positions) && hourStart(eventMillis(x.row)) === openHour)).toBe(true);
      expect([...cp.states.get('hourly')!.entries.keys()].some((k) => k.startsWith(`${openHour}|`))).toBe(true);

      terminalKept.push(...run.terminal.slice(0, store.terminalAtCommit));
      replayed = run.terminal.slice(store.terminalAtCommit);
      if (script.stopAfter !== undefined) expect(replayed).toEqual([]);
      restoredFrom = cp;
    }

    const outputs = await readOutputs(outDir);
    for (const sink of FILE_SINKS) expect(outputs[sink], sink).toEqual(ref.outputs[sink]);
    expect(summariesByKey(outputs.summaries)).toEqual(expectedSummaries(ref.input));
    expect(terminalKept).toEqual(ref.terminal);
  });

  it('a sink that cannot undo writes repeats what it wrote after the last checkpoint of a crashed run (at-least-once)', async () => {
    const outDir = await tempDir('out');
    const stateDir = await tempDir('state');
    const plan = await employeePlan(outDir);
    const crashed = await runSegment(plan, stateDir, { checkpointAfter: [30, 60, 90], crashAfter: 120 });
    const afterCheckpoint = crashed.terminal.slice(crashed.store!.terminalAtCommit);
    // Hours closed between the last checkpoint and the crash: their summaries reached the sink.
    expect(afterCheckpoint.length).toBeGreaterThan(0);
    const restarted = await runSegment(plan, stateDir);
    const ref = await uninterrupted();
    // Everything the two runs wrote: the reference with those summaries twice.
    expect([...crashed.terminal, ...restarted.terminal]).toHaveLength(ref.terminal.length + afterCheckpoint.length);
    expect(restarted.terminal.slice(0, afterCheckpoint.length)).toEqual(afterCheckpoint);
    // The file sinks, cut back to the checkpoint, hold every summary once.
    expect((await readOutputs(outDir)).summaries).toEqual(ref.outputs.summaries);
  });
});

/* ------------------------------------------------------------------ scripted batches with a late record */

/**
 * The same promise over scripted batches from two partitions, with records out of order: here the
 * decisions right after the restart (is this record late? does this window close?) depend on the
 * restored per-partition watermarks, which the generator's in-order input never puts to the test.
 */
describe('a window over scripted batches from two partitions, stopped mid-hour and restored', () => {
  const at = (hhmm: string) => `2025-01-06T${hhmm}:00.000Z`;
  const event = (user: string, hhmm: string, d: number) => JSON.stringify({ user, t: at(hhmm), d });
  // Watermark = min over partitions of their highest event time, minus 10 minutes.
  const batches: BatchSpec[] = [
    { partition: 'a/0', values: [event('u1', '08:05', 1), event('u2', '08:20', 2)] }, // 0
    { partition: 'a/1', values: [event('u1', '08:10', 3), event('u1', '08:50', 4)] }, // 1
    { partition: 'a/0', values: [event('u1', '09:15', 5)] }, // 2: watermark 08:40
    { partition: 'a/1', values: [event('u2', '09:12', 6)] }, // 3: watermark 09:02, 08:00 closes
    { partition: 'a/0', values: [event('u1', '08:55', 7), event('u2', '09:20', 8)] }, // 4: 08:55 is late
    { partition: 'a/1', values: [event('u2', '09:40', 16)] }, // 5
    { partition: 'a/0', values: [event('u1', '10:20', 32)] }, // 6: watermark 09:30
    // 7: 09:35 still counts (watermark 09:30), then 10:15 moves it to 10:05 and 09:00 closes. (In
    // the other order 09:35 would be late: lateness is judged record by record.)
    { partition: 'a/1', values: [event('u1', '09:35', 128), event('u1', '10:15', 64)] },
  ];
  const LATE = [7]; // by the watermark rule above: 08:55 arrives once the 08:00 window has closed

  /** Count and sum of `d` per user and hour over the records that are not late, computed here. */
  function expected(): Record<string, unknown>[] {
    const groups = new Map<string, { user: string; start: number; n: number; total: number }>();
    for (const b of batches) {
      for (const v of b.values) {
        const e = JSON.parse(v) as { user: string; t: string; d: number };
        if (LATE.includes(e.d)) continue;
        const start = hourStart(Date.parse(e.t));
        const key = `${start}|${e.user}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { user: e.user, start, n: 0, total: 0 }));
        g.n++;
        g.total += e.d;
      }
    }
    return [...groups.values()]
      .sort((a, b) => a.start - b.start)
      .map((g) => ({ user: g.user, window_start: new Date(g.start).toISOString(), window_end: new Date(g.start + HOUR).toISOString(), n: g.n, total: g.total }));
  }

  interface Run {
    outcome: RunOutcome;
    summaries: unknown[];
    late: unknown[];
  }

  async function run(stateDir: string | undefined, script: Script = {}): Promise<Run> {
    const clock = new ManualClock(0);
    const metrics = new Metrics();
    const shared = new SharedResources();
    const checkpoints = stateDir === undefined ? undefined : { delivery: 'at-least-once' as const, applicationId: 'scripted', shared };
    const hourly = windowStep.create(
      {
        window: { tumbling: '1h', time: 't', lateness: '10m' },
        group_by: ['user'],
        aggregate: { n: '$count()', total: '$sum(d)' },
      },
      { name: 'hourly', logger: silentLogger, clock, metrics, mode: 'test', ...(checkpoints ? { checkpoints } : {}) },
    );
    const coordinator =
      stateDir === undefined
        ? undefined
        : new CheckpointCoordinator(
            { store: new FileStateStore(stateDir), intervalMs: 1000, applicationId: 'scripted', identities: { hourly: { kind: 'window', fingerprint: 'hourly-v1', parts: null } } },
            clock,
            silentLogger,
          );
    const summaries = new RecordingSink();
    const late = new RecordingSink();
    const source = new ScriptedSource('a', batches);
    source.assignFirst = ['a/0', 'a/1'];
    let runtime: Runtime | undefined;
    const graph = graphOf([
      { source: 'a', impl: scripted(source, script, [], () => runtime!, 1000) },
      { step: 'hourly', impl: hourly, from: ['a'] },
      { sink: 'summaries', impl: summaries, from: ['hourly'] },
      { sink: 'late', impl: late, from: ['hourly.late'] },
    ]);
    runtime = new Runtime(graph, { logger: silentLogger, metrics, clock, tickMs: 0, ...(coordinator ? { checkpoints: coordinator } : {}) });
    const outcome = await runtime.run();
    return { outcome, summaries: summaries.values, late: late.values };
  }

  const lateValue = (v: unknown) => (v as { d: number }).d;

  it('uninterrupted, it writes the summaries computed here and sends the one late record to `late`', async () => {
    const whole = await run(undefined);
    expect(whole.summaries).toEqual(expected());
    expect(whole.late.map(lateValue)).toEqual(LATE);
  });

  const stops: [string, Script][] = [
    ['just before the late record arrives', { stopAfter: 3 }],
    ['right after the late record, with checkpoints before', { checkpointAfter: [1, 2], stopAfter: 4 }],
    ['in the last hour', { checkpointAfter: [4], stopAfter: 5 }],
  ];
  it.each(stops)('stopped %s: the two runs together write what one uninterrupted run writes', async (_name, script) => {
    const whole = await run(undefined);
    const stateDir = await tempDir('scripted-state');
    const first = await run(stateDir, script);
    expect(first.outcome.ended).toBe('stopped');
    const cp = await new FileStateStore(stateDir).load();
    // Mid-hour: the 09:00 window is open in the stored state, with its records from both partitions' watermarks.
    const nine = Date.parse(at('09:00'));
    expect([...cp!.states.get('hourly')!.entries.keys()].some((k) => k.startsWith(`${nine}|`))).toBe(true);
    expect(cp!.epoch).toBe((script.checkpointAfter?.length ?? 0) + 1);

    const second = await run(stateDir);
    expect(second.outcome.ended).toBe('end-of-input');
    expect(second.outcome.stats.checkpoint?.restored?.epoch).toBe(cp!.epoch);
    expect([...first.summaries, ...second.summaries]).toEqual(whole.summaries);
    expect([...first.late, ...second.late]).toEqual(whole.late);
    expect([...first.summaries, ...second.summaries]).toEqual(expected());
    expect([...first.late, ...second.late].map(lateValue)).toEqual(LATE);
  });
});
