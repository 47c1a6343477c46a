/**
 * Runs one golden case: the spec is loaded and compiled as usual (with the case's overrides), then
 * every source is swapped for the case's input file and every sink for a recorder that keeps what
 * the real sink's `prepare` made. The run is bounded and uses a manual clock: no network, no wall
 * clock, the same output every time.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import path from 'node:path';
import { Ack } from '../engine/ack.ts';
import { ManualClock } from '../engine/clock.ts';
import { parseSchedule, type Schedule } from '../engine/schedule.ts';
import type { OutboundMessage, Sink, Source, SourceOutput } from '../engine/component.ts';
import { errorMessage } from '../engine/errors.ts';
import type { Graph } from '../engine/graph.ts';
import { parseJson, stringifyJson } from '../engine/json.ts';
import { silentLogger, type Logger } from '../engine/logger.ts';
import { Metrics } from '../engine/metrics.ts';
import { Runtime, type RunOutcome } from '../engine/runtime.ts';
import { lineMessages, readLineBatches, type LineBatch } from '../io/files/line-reader.ts';
import { instantiate } from '../plan/instantiate.ts';
import { loadPipeline, renderLoadErrors } from '../plan/load-pipeline.ts';
import type { GoldenCase, InterleaveEntry } from './cases.ts';
import { lineDiff } from './line-diff.ts';

export interface SinkComparison {
  sink: string;
  file: string;
  actual: string[];
  /** Undefined when the case has no expected file for this sink. */
  expected: string[] | undefined;
  equal: boolean;
  /** `--update` rewrote the expected file (it differed, or there was none). */
  updated: boolean;
}

export interface CaseResult {
  case: GoldenCase;
  ok: boolean;
  /** Why the case could not run, or invariants it broke (spec errors, unacknowledged input ...). */
  problems: string[];
  /**
   * What passed without a trace in the expected files: records dropped on ports nothing reads, or
   * that a sink could not prepare. Not failures (a case may mean them), but worth a look.
   */
  notes: string[];
  sinks: SinkComparison[];
  outcome?: RunOutcome;
}

/** The start of the manual clock in golden runs: fixed, so generated data and idle timers repeat. */
export const GOLDEN_CLOCK_START = Date.UTC(2025, 0, 1);

const INPUT_BATCH = 500;

/** A bounded source over a case's input text, standing in for a real source in a golden run. */
class CaseInput implements Source {
  readonly bounded = true;
  /** Acks of the batches handed over, to check at the end that everything was acknowledged. */
  readonly acks: Ack[] = [];
  readonly partition: string;
  /** Interleaved: the lines not handed over yet. */
  private rest: LineBatch | undefined;

  constructor(
    readonly name: string,
    private readonly text: string,
    private readonly interleaving?: Interleaving,
    /** A source that runs on a schedule (postgres-query): its lines are one run's rows. */
    readonly scheduled?: ScheduledInput,
  ) {
    this.partition = `${name}/0`;
  }

  async run(out: SourceOutput): Promise<void> {
    out.assign([this.partition]);
    if (this.scheduled) return this.runScheduled(out, this.scheduled);
    if (this.interleaving) return this.interleaving.join(this, out);
    for await (const batch of readLineBatches(Readable.from([this.text]), INPUT_BATCH)) await this.emit(out, batch);
  }

  /**
   * The case's lines are the rows of the source's first run: at start when it runs at start, else
   * when the manual clock (moved by `interleave` clock entries) reaches the schedule's first tick.
   * A case whose clock never gets there reads nothing from it.
   */
  private async runScheduled(out: SourceOutput, s: ScheduledInput): Promise<void> {
    const clock = s.clock;
    const start = clock.now();
    const fireAt = s.runAtStart ? start : s.schedule.nextAfter(start);
    const fire = (): Promise<void> => this.emit(out, this.take(), { at: clock.now(), fired: true });
    if (clock.now() >= fireAt) return fire();
    let unsubscribe = (): void => {};
    const fired = new Promise<void>((resolve) => {
      unsubscribe = clock.onChange((now) => {
        if (now < fireAt) return;
        unsubscribe();
        // Handed over at once (before the tick the clock move queues), so steps see the run first.
        void fire().then(resolve, resolve);
      });
    });
    // Without an interleaving nothing moves the clock: the schedule never fires in this case.
    await Promise.race([fired, this.interleaving ? this.interleaving.done() : Promise.resolve()]);
    unsubscribe();
  }

  emit(out: SourceOutput, batch: LineBatch, run?: { at: number; fired: boolean }): Promise<void> {
    const ack = new Ack(() => {});
    this.acks.push(ack);
    let messages = lineMessages(batch, this.name, this.partition, run?.at ?? GOLDEN_CLOCK_START, `${this.name}.jsonl`);
    if (run) {
      // What a scheduled postgres-query says of its rows.
      const startedAt = new Date(run.at).toISOString();
      messages = messages.map((m, i) => ({ ...m, meta: { op: 'r', run: 1, row: i + 1, started_at: startedAt } }));
    }
    return out.emit({ partition: this.partition, messages, ack });
  }

  /** The next `n` lines (all that are left when undefined), for an interleaved run. */
  take(n?: number): LineBatch {
    if (!this.rest) {
      const lines: Buffer[] = [];
      const numbers: number[] = [];
      this.text.split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        // As the file source hands lines over: their bytes.
        lines.push(Buffer.from(line.replace(/\r$/, ''), 'utf8'));
        numbers.push(i + 1);
      });
      this.rest = { lines, numbers };
    }
    const count = n ?? this.rest.lines.length;
    const taken = { lines: this.rest.lines.slice(0, count), numbers: this.rest.numbers.slice(0, count) };
    this.rest = { lines: this.rest.lines.slice(count), numbers: this.rest.numbers.slice(count) };
    return taken;
  }

  async stop(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A case input standing in for a source on a cron schedule. */
interface ScheduledInput {
  schedule: Schedule;
  runAtStart: boolean;
  clock: ManualClock;
}

/** The schedule of a source whose config has one (postgres-query's `schedule`, `timezone`, `run_at_start`). */
function scheduleOf(config: unknown, clock: ManualClock): ScheduledInput | undefined {
  if (config === null || typeof config !== 'object') return undefined;
  const c = config as { schedule?: unknown; timezone?: unknown; run_at_start?: unknown };
  if (typeof c.schedule !== 'string') return undefined;
  return { schedule: parseSchedule(c.schedule, typeof c.timezone === 'string' ? c.timezone : 'UTC'), runAtStart: c.run_at_start !== false, clock };
}

/**
 * case.yaml `interleave`: the sources hand over their lines in the order it gives, one batch per
 * entry, then whatever each has left, source by source. One driver emits them all once every
 * source has started: the runtime processes batches in the order they were handed over, so the
 * order of the entries is the order the steps see.
 */
class Interleaving {
  private readonly joined = new Map<string, { input: CaseInput; out: SourceOutput }>();
  private finish!: (err?: unknown) => void;
  private readonly finished: Promise<void>;
  private started = false;
  private drove: () => void = () => {};
  private readonly drivenOut = new Promise<void>((resolve) => (this.drove = resolve));
  /** Moves the manual clock to a time and has the steps tick there, after what was handed over before. */
  tickAt: (ms: number) => Promise<void> = async () => {};

  constructor(
    private readonly order: readonly InterleaveEntry[],
    private readonly sources: readonly string[],
  ) {
    this.finished = new Promise((resolve, reject) => (this.finish = (err) => (err === undefined ? resolve() : reject(err))));
  }

  /** Resolves once every entry, and what the inputs had left, was handed over. */
  done(): Promise<void> {
    return this.drivenOut;
  }

  join(input: CaseInput, out: SourceOutput): Promise<void> {
    this.joined.set(input.name, { input, out });
    if (this.joined.size === this.sources.length) this.start();
    return this.finished;
  }

  /** Drives the entries once; called when every source joined, or at once when none will (only scheduled ones). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.drive().then(
      () => this.finish(),
      (err: unknown) => {
        this.drove();
        this.finish(err ?? new Error('interleaving failed'));
      },
    );
  }

  private async drive(): Promise<void> {
    for (const entry of this.order) {
      if ('clock' in entry) {
        await this.tickAt(entry.clock);
        continue;
      }
      const { source, lines } = entry;
      const s = this.joined.get(source);
      if (!s) throw new Error(`case.yaml interleave names \`${source}\`, which is not a source of the pipeline (sources: ${this.sources.join(', ')})`);
      const batch = s.input.take(lines);
      if (batch.lines.length > 0) await s.input.emit(s.out, batch);
    }
    for (const name of this.sources) {
      const s = this.joined.get(name)!;
      const batch = s.input.take();
      if (batch.lines.length > 0) await s.input.emit(s.out, batch);
    }
    this.drove();
  }
}

/**
 * Keeps what a sink would write, using the real sink's `prepare` (keys, topics, headers). A record
 * `prepare` fails for reaches no `write` (the engine sends it to `<sink>.errors`, or drops it, and
 * counts it in `outcome.failed`), so it is not recorded here, as the real sink would not write it.
 */
function recorder(real: Sink, into: OutboundMessage[]): Sink {
  return {
    open: async () => {},
    prepare: (records) => real.prepare(records),
    write: async (messages) => {
      into.push(...messages);
    },
    close: async () => {},
  };
}

/** One golden line per message: topic and headers only when present, so simple cases stay short. */
export function goldenLine(message: OutboundMessage): string {
  const line: Record<string, unknown> = {};
  if (message.topic !== undefined) line.topic = message.topic;
  line.key = message.key;
  line.value = message.value;
  if (message.headers && Object.keys(message.headers).length > 0) line.headers = message.headers;
  return stringifyJson(line);
}

/** A file's text, or undefined when it does not exist. */
async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function readLines(file: string): Promise<string[] | undefined> {
  return (await readText(file))?.split('\n').filter((l) => l.trim() !== '');
}

/**
 * Canonical form of an expected line, so key order and spacing in hand-written files do not matter.
 * Parsed losslessly, as outputs are written: a JSON.parse would round an int64 like `ts_ns`.
 */
function canonical(line: string): string {
  let parsed: unknown;
  try {
    parsed = parseJson(line);
  } catch {
    return line;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return line;
  const { topic, key, value, headers } = parsed as Record<string, unknown>;
  const message: OutboundMessage = { key, value };
  if (typeof topic === 'string') message.topic = topic;
  if (headers !== null && typeof headers === 'object') message.headers = headers as Record<string, string>;
  return goldenLine(message);
}

export interface RunCaseOptions {
  /** Rewrite the expected files with what the run produced. */
  update?: boolean;
  logger?: Logger;
}

export async function runCase(c: GoldenCase, options: RunCaseOptions = {}): Promise<CaseResult> {
  const result: CaseResult = { case: c, ok: false, problems: [], notes: [], sinks: [] };
  const loaded = await loadPipeline(c.pipelineFile, {
    env: { ...process.env, ...c.env },
    sets: c.sets,
    ...(c.profile !== undefined ? { profile: c.profile } : {}),
  });
  if (!loaded.ok) {
    result.problems.push(renderLoadErrors(loaded));
    return result;
  }
  const clock = new ManualClock(GOLDEN_CLOCK_START);
  const metrics = new Metrics();
  const logger = options.logger ?? silentLogger;
  const graph = instantiate(loaded.plan, { mode: 'test', clock, metrics, logger });

  const inputs: CaseInput[] = [];
  const captured = new Map<string, OutboundMessage[]>();
  const nodes: Graph['nodes'] = [];
  const configs = new Map(loaded.plan.nodes.map((n) => [n.name, n.config]));
  const schedules = new Map(graph.nodes.filter((n) => n.role === 'source').map((n) => [n.name, scheduleOf(configs.get(n.name), clock)]));
  // Scheduled inputs hand over their lines when their schedule fires, not in the interleaving.
  const sourceNames = graph.nodes.filter((n) => n.role === 'source' && !schedules.get(n.name)).map((n) => n.name);
  const interleaving = c.interleave ? new Interleaving(c.interleave, sourceNames) : undefined;
  for (const node of graph.nodes) {
    if (node.role === 'source') {
      const input = new CaseInput(node.name, (await readText(path.join(c.dir, `${node.name}.jsonl`))) ?? '', interleaving, schedules.get(node.name));
      inputs.push(input);
      nodes.push({ ...node, source: input });
    } else if (node.role === 'sink') {
      const into: OutboundMessage[] = [];
      captured.set(node.name, into);
      nodes.push({ ...node, sink: recorder(node.sink, into) });
    } else {
      nodes.push(node);
    }
  }

  try {
    const runtime = new Runtime({ name: graph.name, nodes }, { logger, metrics, clock, tickMs: 0, openSinks: false });
    if (interleaving) {
      interleaving.tickAt = async (ms) => {
        // The batches handed over before are processed at the old time (a tick waits for the jobs
        // before it); then the clock moves, only forward, as processing time does, and the steps tick.
        await runtime.tick();
        if (ms > clock.now()) clock.set(ms);
        await runtime.tick();
      };
      if (sourceNames.length === 0) interleaving.start();
    }
    result.outcome = await runtime.run();
  } catch (err) {
    result.problems.push(`the run failed: ${errorMessage(err)}`);
    return result;
  }

  for (const [name, node] of Object.entries(result.outcome.stats.nodes)) {
    if (node.role === 'sink' && node.failed > 0) result.notes.push(`sink \`${name}\`: ${node.failed} record(s) could not be prepared (sent to \`${name}.errors\`, or dropped when nothing reads it)`);
    if (node.dropped > 0) result.notes.push(`\`${name}\`: ${node.dropped} record(s) went to ports nothing reads (counted, dropped)`);
  }

  const unacked = inputs.reduce((n, input) => n + input.acks.filter((a) => !a.isComplete).length, 0);
  if (unacked > 0) {
    result.problems.push(`${unacked} input batch(es) were never fully acknowledged at the end of input`);
  }

  for (const [sink, messages] of captured) {
    const file = path.join(c.dir, `${sink}.jsonl`);
    const actual = messages.map(goldenLine);
    const expected = (await readLines(file))?.map(canonical);
    const equal = expected !== undefined && expected.length === actual.length && expected.every((l, i) => l === actual[i]);
    // A file that already says what the run wrote is left as it is, hand formatting included.
    if (options.update && !equal) {
      await writeFile(file, actual.length ? actual.join('\n') + '\n' : '');
      result.sinks.push({ sink, file, actual, expected: actual, equal: true, updated: true });
    } else {
      result.sinks.push({ sink, file, actual, expected, equal, updated: false });
    }
  }
  result.ok = result.problems.length === 0 && result.sinks.every((s) => s.equal);
  return result;
}

/** A readable account of a failed case: problems, then a diff per differing sink. */
export function describeFailure(result: CaseResult): string {
  const out: string[] = [];
  for (const p of result.problems) out.push(p);
  for (const s of result.sinks) {
    if (s.equal) continue;
    if (s.expected === undefined) {
      out.push(`sink \`${s.sink}\`: no expected file ${s.file} (${s.actual.length} message(s) written; run with --update to create it)`);
      continue;
    }
    out.push(`sink \`${s.sink}\` differs from ${s.file} (- expected, + actual):`);
    out.push(lineDiff(s.expected, s.actual));
  }
  return out.join('\n');
}
