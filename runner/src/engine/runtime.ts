/**
 * Runtime: runs a Graph.
 *
 * Sources run concurrently and hand batches over with `out.emit`. Batches are processed one at a
 * time (a serial job queue), so the graph is deterministic and a window's state never sees two
 * batches interleaved: decode with the source's format, then every step in topological order,
 * each step's outputs routed by port to the steps and sinks that read them. Sinks write
 * concurrently with that processing, each from its own bounded queue (see SinkQueue).
 *
 * Backpressure: `emit` resolves only while fewer than `maxQueuedBatches` batches wait, and the
 * job loop does not take the next job while a sink queue is full. A slow sink therefore slows the
 * sources and memory stays bounded.
 *
 * Acknowledgement: each source batch's Ack gets one reference per message. References move with
 * records through steps, one more is taken per extra reader on fan-out, and they are released when
 * a sink has written the record, a step drops it on purpose, or it lands on a port nobody reads. A
 * record a sink cannot write for what it holds (its `prepare` fails for it, or `write` refuses it)
 * moves on to `<sink>.errors` with its reference, which the sinks reading that port release once
 * they wrote it. A failed write (an outage) fails the run and releases nothing, so nothing
 * unwritten is ever committed.
 *
 * Ending: when every source's `run` resolved and all are bounded, every step's `onEnd` runs (windows
 * flush), sinks drain (in graph order, so a sink's last refusals reach the sink reading its errors),
 * sinks then sources close. On `stop()` (SIGINT/SIGTERM) sources stop, what is
 * in flight drains, but `onEnd` is NOT called: open windows are incomplete. Without checkpoints
 * their references stay unreleased, the offsets they hold are not committed, and a restart re-reads
 * them. With checkpoints (engine/checkpoint) a last checkpoint stores the open windows instead, and
 * a restart restores them: see CheckpointCoordinator for how Acks then wait for checkpoints.
 */
import type { Ack } from './ack.ts';
import type { CheckpointCoordinator, CheckpointStats, PendingCheckpoint } from './checkpoint/coordinator.ts';
import type { Clock } from './clock.ts';
import type { Decoded, Format, PartitionEvent, ProgressMarker, RawBatch, Sink, Source, SourceHealth, SourceOutput, Step, StepOutput, StepState } from './component.ts';
import { ConfigError, FencedError, SluiceError, causedBy, errorMessage } from './errors.ts';
import { failedRecord, undecodableRecord } from './failed-record.ts';
import { ERRORS_PORT, MAIN_PORT, type Graph } from './graph.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import {
  BATCH_DURATION,
  CHECKPOINT_DURATION,
  CHECKPOINT_FAILURES,
  CHECKPOINT_METRICS,
  CHECKPOINTS,
  publishStatsGauges,
  RECORDS_DROPPED,
  RECORDS_FAILED,
  RECORDS_FILTERED,
  RECORDS_IN,
  RECORDS_OUT,
  RECORDS_WRITTEN,
  RUNTIME_METRICS,
  SINK_WRITE_DURATION,
} from './runtime-metrics.ts';
import { copyFields, type RawMessage, type SourcePosition, type StreamRecord } from './record.ts';
import { releaseRecords, retainRecords } from './record-acks.ts';
import { buildRoutes, type Reader } from './router.ts';
import { SinkQueue, type UnwrittenRecord } from './sink-queue.ts';

export interface RuntimeOptions {
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Processing-time tick for steps' `onTick`, in ms of real time; 0 = no timer (call `tick()`). Default 1000. */
  tickMs?: number;
  /** Source batches waiting to be processed before `emit` stops resolving at once. Default 8. */
  maxQueuedBatches?: number;
  /** Records waiting in one sink's queue before processing pauses. Default 10,000. */
  sinkQueueRecords?: number;
  /** At most this many records per sink `write`. Default 2,000. */
  sinkBatchRecords?: number;
  /** Call `sink.open()` before running. False for golden tests (`mode: 'test'`). Default true. */
  openSinks?: boolean;
  /** After stop() or a failure, how long to wait for sources' `run` to resolve before closing anyway. Default 30 s. */
  stopGraceMs?: number;
  /** At most one warning per node per this interval about records failing with nobody reading errors. Default 10 s. */
  warnIntervalMs?: number;
  /** Takes checkpoints and restores from the last one (see engine/checkpoint). Absent: no durable state. */
  checkpoints?: CheckpointCoordinator;
  /** When this run's checkpoints come, as a fraction (0 to 1) of the interval after the start's. Default 0. */
  checkpointPhase?: number;
}

export type RuntimeState = 'created' | 'running' | 'stopping' | 'ending' | 'done' | 'failed';

/**
 * Figures of one node. `nanos` is cumulative wall time inside the node's calls (source: decode;
 * step: process/onTick/onEnd; sink: prepare + write), awaits included. Sinks write while steps
 * evaluate, so async calls overlap and the per-node figures may add up to more than the elapsed
 * time: compare stages with them, measure throughput with elapsed (or CPU) time.
 */
export interface NodeStats {
  role: 'source' | 'step' | 'sink';
  /** Source: messages read. Step: records given to `process`. Sink: records queued for it. */
  recordsIn: number;
  /** Source: messages decoded. Step: records emitted on any port but `errors`. Sink: records written. */
  recordsOut: number;
  /**
   * Records that failed here (decode or step error), whether or not an errors port is read. Sinks:
   * records they could not write for what they hold (`prepare` failed, or `write` refused them).
   */
  failed: number;
  /** Records a step dropped on purpose (`out.drop`, e.g. filtered out). */
  discarded: number;
  /** Records emitted on a port nobody reads (including failures when `errors` is unread). */
  dropped: number;
  nanos: number;
  /** Sinks: records waiting, records and writes in flight, successful writes, and the split of `nanos`. */
  queued?: number;
  writing?: number;
  writes?: number;
  batches?: number;
  prepareNanos?: number;
  writeNanos?: number;
  /** Steps: what `step.stats()` reports (watermark, open windows ...). */
  step?: Record<string, number | string | undefined>;
}

export interface RuntimeStats {
  state: RuntimeState;
  /** Real milliseconds since `run()` started. */
  elapsedMs: number;
  /** Messages read by all sources. */
  recordsIn: number;
  /** Records written by all sinks. */
  recordsOut: number;
  /** Source batches emitted and not yet processed. */
  queuedBatches: number;
  /** Per node, in graph order. */
  nodes: Record<string, NodeStats>;
  /** When the run takes checkpoints: the last one's epoch, age, duration and size, and what was restored. */
  checkpoint?: CheckpointStats;
}

/** A record that failed at a node, or the failure of the run there, as the live view lists them. */
export interface RecentError {
  /** Wall-clock time, epoch ms. */
  at: number;
  message: string;
  /** Where the record came from, when it was one record. */
  partition?: string;
  offset?: string;
}

/** What readiness is decided from: the run's state, whether sources are connected, checkpoint age. */
export interface RuntimeHealth {
  state: RuntimeState;
  /** Per source; sources that cannot lose a connection (files, generators) are always connected. */
  sources: Record<string, SourceHealth>;
  /** When the run takes checkpoints: ms since the stored state last covered everything processed, and the interval. */
  checkpoint?: { ageMs: number; intervalMs: number };
  /** The failure that ended the run, once it failed. */
  failure?: { where?: string; code: string; message: string };
}

/** Recent errors kept per node for the live view: enough to see what goes wrong, bounded for poison floods. */
const RECENT_ERRORS = 20;

export interface RunOutcome {
  /**
   * `end-of-input`: every source was bounded and ended; onEnd ran, windows flushed. `stopped`:
   * stop() was called, or an unbounded source ended by itself; onEnd did not run.
   */
  ended: 'end-of-input' | 'stopped';
  /** The reason given to stop(), when stopped. */
  stopReason?: string;
  recordsIn: number;
  /** Records written, per sink. */
  recordsOut: Record<string, number>;
  /** Records that failed (decode, step errors, records sinks could not write), routed to an errors port or not. */
  failed: number;
  /** Records emitted on ports nobody reads. */
  dropped: number;
  /** Records dropped on purpose by steps (filters). */
  discarded: number;
  elapsedMs: number;
  stats: RuntimeStats;
}

/** Records written, per sink. */
export function recordsOutOf(stats: RuntimeStats): Record<string, number> {
  const recordsOut: Record<string, number> = {};
  for (const [name, node] of Object.entries(stats.nodes)) if (node.role === 'sink') recordsOut[name] = node.recordsOut;
  return recordsOut;
}

/** A finished run's outcome from its figures: totals over the nodes, records written per sink. */
export function outcomeOf(stats: RuntimeStats, ended: RunOutcome['ended'], stopReason?: string): RunOutcome {
  let failed = 0;
  let dropped = 0;
  let discarded = 0;
  for (const node of Object.values(stats.nodes)) {
    failed += node.failed;
    dropped += node.dropped;
    discarded += node.discarded;
  }
  const outcome: RunOutcome = { ended, recordsIn: stats.recordsIn, recordsOut: recordsOutOf(stats), failed, dropped, discarded, elapsedMs: stats.elapsedMs, stats };
  if (stopReason !== undefined) outcome.stopReason = stopReason;
  return outcome;
}

/* ------------------------------------------------------------------ internals */

type Job =
  | { kind: 'batch'; source: SourceNode; batch: RawBatch }
  | { kind: 'partitions'; source: SourceNode; event: PartitionEvent }
  | { kind: 'tick'; done?: () => void }
  | { kind: 'snapshot'; resolve: (states: Record<string, StepState>) => void; reject: (err: Error) => void }
  | { kind: 'checkpoint' }
  | { kind: 'end' }
  | { kind: 'finish' };

/** Where a port's records go: a step's inbox or a sink's queue. */
interface Target {
  /** `from`: the emitting node. */
  accept(records: StreamRecord[], partition: string, from: string): void;
}

interface Counters {
  recordsIn: number;
  recordsOut: number;
  failed: number;
  discarded: number;
  dropped: number;
  nanos: number;
}

function counters(): Counters {
  return { recordsIn: 0, recordsOut: 0, failed: 0, discarded: 0, dropped: 0, nanos: 0 };
}

const RESOLVED: Promise<void> = Promise.resolve();

/** Longest the job loop runs before it lets timers and I/O run. */
const YIELD_AFTER_MS = 20;

class SourceNode {
  readonly counters = counters();
  /** Its metric labels, made once: the batch histogram is observed per batch. */
  readonly labels: { node: string };
  readonly reported = counters();
  /** Readers per port, filled once routes are known. */
  routes = new Map<string, Target[]>();
  ended = false;
  /** Partitions it assigned or sent batches from, and has not revoked. */
  readonly partitions = new Set<string>();
  /**
   * The steps its records reach, directly or through other steps, each with the inputs (node names)
   * they arrive through: the only steps told of its partitions, and what they are told they come via.
   */
  readonly downstream = new Map<StepNode, string[]>();
  constructor(
    readonly name: string,
    readonly source: Source,
    readonly format: Format,
  ) {
    this.labels = { node: name };
  }
}

/** One step, its inbox, and the StepOutput it is given: outputs collect per port until flushed. */
class StepNode implements StepOutput, Target {
  readonly counters = counters();
  readonly reported = counters();
  routes = new Map<string, Target[]>();
  /** Record arrays waiting for `process`, with the partition their batch names. */
  inbox: { partition: string; records: StreamRecord[]; from: string }[] = [];
  /** Outputs of the current call, per port. */
  pending = new Map<string, StreamRecord[]>();
  /** Ports whose pending array this node created (and may push into). */
  owned = new Set<string>();
  hasPending = false;

  constructor(
    readonly name: string,
    readonly step: Step,
    private readonly runtime: Runtime,
  ) {}

  accept(records: StreamRecord[], partition: string, from: string): void {
    this.inbox.push({ partition, records, from });
  }

  emit(records: StreamRecord[], port: string = MAIN_PORT): void {
    if (records.length === 0) return;
    const current = this.pending.get(port);
    if (!current) {
      // Borrowed as is (it may be the input array, shared with other readers): never pushed into.
      this.pending.set(port, records);
    } else if (this.owned.has(port)) {
      for (let i = 0; i < records.length; i++) current.push(records[i]!);
    } else {
      this.pending.set(port, current.concat(records));
      this.owned.add(port);
    }
    this.hasPending = true;
  }

  drop(record: StreamRecord, _reason: string): void {
    record.ack.release();
    this.counters.discarded++;
  }

  fail(record: StreamRecord, error: Error): void {
    this.counters.failed++;
    this.runtime.noteError(this.name, error, record.position);
    if (this.routes.has(ERRORS_PORT)) {
      this.emit([failedRecord(record, this.name, error)], ERRORS_PORT);
    } else {
      this.runtime.dropUnreadFailure(this.name, this.counters, record.ack, record.position, error);
    }
  }
}

class SinkNode implements Target {
  readonly counters = counters();
  readonly reported = counters();
  /** Readers of its `errors` port: other sinks. */
  routes = new Map<string, Target[]>();
  constructor(
    readonly name: string,
    readonly sink: Sink,
    readonly queue: SinkQueue,
  ) {}

  accept(records: StreamRecord[]): void {
    this.counters.recordsIn += records.length;
    this.queue.push(records);
  }
}

/** At most one log line per node per interval, with how many were suppressed in between. */
class WarningLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
  ) {}

  /** The number suppressed since the last logged one, or undefined when this one must be suppressed. */
  admit(key: string): number | undefined {
    const now = this.clock.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return undefined;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.last.set(key, { at: now, suppressed: 0 });
    return suppressed;
  }
}

/** Adds every step reachable from these routes, through steps' own routes, to `into`. */
/**
 * Walks from emitter `name` along its routes, noting for every step reached the inputs it is
 * reached through. A step's side inputs (a join's table) end the walk: what follows it never sees
 * those records.
 */
function collectDownstream(name: string, routes: Map<string, Target[]>, into: Map<StepNode, string[]>): void {
  for (const targets of routes.values()) {
    for (const t of targets) {
      if (!(t instanceof StepNode)) continue;
      let via = into.get(t);
      if (via?.includes(name)) continue;
      if (!via) into.set(t, (via = []));
      via.push(name);
      if (!t.step.sideInputs?.includes(name)) collectDownstream(t.name, t.routes, into);
    }
  }
}

/** The record a decoded message (or one record of a pack) becomes. */
function recordOf(msg: RawMessage, d: Decoded, ack: Ack): StreamRecord {
  const record: StreamRecord = {
    key: d.key,
    value: d.value,
    time: d.time ?? msg.timestamp,
    headers: d.headers ?? msg.headers,
    // What the source knows (Kafka topic/partition/offset) under the format's own metadata.
    meta: msg.meta === undefined ? d.meta : copyFields(msg.meta, d.meta),
    position: msg.position,
    ack,
  };
  if (d.origin !== undefined) record.origin = d.origin;
  return record;
}

function nanosSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0);
}

function asSluiceError(err: unknown, code: string, where: string, what: string): SluiceError {
  if (err instanceof SluiceError) return err;
  return new SluiceError(code, `${what}: ${errorMessage(err)}`, where, { cause: err });
}

export class Runtime {
  private readonly logger: Logger;
  readonly metrics: Metrics;
  private readonly clock: Clock;
  private readonly tickMs: number;
  private readonly maxQueuedBatches: number;
  private readonly openSinks: boolean;
  private readonly stopGraceMs: number;
  private readonly warnings: WarningLimiter;

  private readonly sources: SourceNode[] = [];
  private readonly steps: StepNode[] = [];
  private readonly sinks: SinkNode[] = [];

  private state: RuntimeState = 'created';
  private startedAt = 0;
  private jobs: Job[] = [];
  private wakeLoop: (() => void) | undefined;
  private queuedBatches = 0;
  private emitWaiters: (() => void)[] = [];
  private tickQueued = false;
  private acceptingBatches = true;
  private failure: SluiceError | undefined;
  private stopReason: string | undefined;
  private stopRequested = false;
  private sourcesStopping = false;
  private startGrace: () => void = () => {};
  private readonly graceOver: Promise<void>;
  private settled: Promise<void> | undefined;
  private readonly checkpoints: CheckpointCoordinator | undefined;
  private readonly checkpointPhase: number;
  private checkpointQueued = false;
  /** Clock time at which the next checkpoint is due. */
  private checkpointDueAt = Number.POSITIVE_INFINITY;
  /** Clock time at which the stored state last covered everything processed (start: what was restored). */
  private checkpointCoveredAt: number | undefined;
  /** Whether a checkpoint completes while processing goes on, and the sinks it holds meanwhile (see decideCheckpointOverlap). */
  private overlapCheckpoints = false;
  private heldAtCheckpoint: SinkNode[] = [];
  /** The checkpoint cut and still completing while processing goes on. */
  private checkpointInFlight: Promise<void> | undefined;
  /** One was due while that one completed: it is queued once that one is done. */
  private checkpointAgain = false;
  private readonly recent = new Map<string, RecentError[]>();
  private unregisterCollector: (() => void) | undefined;

  constructor(
    readonly graph: Graph,
    options: RuntimeOptions,
  ) {
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.clock = options.clock;
    this.tickMs = options.tickMs ?? 1000;
    this.maxQueuedBatches = Math.max(1, options.maxQueuedBatches ?? 8);
    this.openSinks = options.openSinks ?? true;
    this.stopGraceMs = options.stopGraceMs ?? 30_000;
    this.warnings = new WarningLimiter(this.clock, options.warnIntervalMs ?? 10_000);
    this.checkpoints = options.checkpoints;
    this.checkpointPhase = Math.min(1, Math.max(0, options.checkpointPhase ?? 0));
    this.metrics.define(...RUNTIME_METRICS);
    if (this.checkpoints) this.metrics.define(...CHECKPOINT_METRICS);
    const queueOptions = {
      capacity: Math.max(1, options.sinkQueueRecords ?? 10_000),
      maxBatch: Math.max(1, options.sinkBatchRecords ?? 2_000),
    };
    this.graceOver = new Promise((resolve) => {
      this.startGrace = () => {
        this.startGrace = () => {};
        setTimeout(resolve, this.stopGraceMs).unref();
      };
    });

    const routes = buildRoutes(graph);
    const targets = new Map<string, Target>();
    const emitters = new Map<string, { routes: Map<string, Target[]> }>();
    for (const node of graph.nodes) {
      switch (node.role) {
        case 'source': {
          const s = new SourceNode(node.name, node.source, node.format);
          this.sources.push(s);
          emitters.set(node.name, s);
          break;
        }
        case 'step': {
          const s = new StepNode(node.name, node.step, this);
          this.steps.push(s);
          emitters.set(node.name, s);
          targets.set(node.name, s);
          break;
        }
        case 'sink': {
          let s: SinkNode | undefined;
          const labels = { node: node.name };
          const queue = new SinkQueue(
            node.name,
            node.sink,
            { ...queueOptions, onWrite: (seconds) => this.metrics.observe(SINK_WRITE_DURATION, labels, seconds) },
            (err) => this.fail(err),
            (unwritten) => this.routeUnwritten(s!, unwritten),
          );
          s = new SinkNode(node.name, node.sink, queue);
          this.sinks.push(s);
          emitters.set(node.name, s);
          targets.set(node.name, s);
          break;
        }
      }
    }
    for (const [node, byPort] of routes.readers) {
      const emitter = emitters.get(node)!;
      for (const [port, readers] of byPort) {
        emitter.routes.set(
          port,
          readers.map((r: Reader) => targets.get(r.name)!),
        );
      }
    }
    for (const source of this.sources) collectDownstream(source.name, source.routes, source.downstream);
  }

  /**
   * Runs the graph to its end: resolves when bounded input ended and everything was written, or
   * after stop() once in-flight work drained. Rejects when a sink gives up, a source fails, or a
   * step throws (a bug, not a record error); nothing unwritten is acknowledged then.
   */
  run(): Promise<RunOutcome> {
    if (this.settled) throw new Error('Runtime.run() called twice');
    const outcome = this.execute();
    this.settled = outcome.then(
      () => undefined,
      () => undefined,
    );
    return outcome;
  }

  /** Stops the sources and drains what is in flight (no onEnd). Resolves when the run has finished. */
  async stop(reason = 'stop requested'): Promise<void> {
    if (!this.stopRequested) {
      this.stopRequested = true;
      this.stopReason = reason;
      if (this.state === 'running') {
        this.state = 'stopping';
        this.logger.debug({ reason }, 'stopping: draining what is in flight');
        this.stopSources();
      }
    }
    await this.settled;
  }

  /**
   * Ends the run as a failure would, without its last checkpoint: sources stop, sinks stop writing
   * (what they still queue is abandoned), the Acks held for the next checkpoint are dropped, never
   * released, and run() rejects with an E_ABORTED error. For a run whose last checkpoint is not
   * worth waiting for: something else failed (the stage's input, another task) and the restart
   * restores from the last committed checkpoint anyway. Resolves when the run has finished, which
   * can still wait for a call in flight (a restore, a checkpoint commit, a write): bound it.
   */
  async abort(reason: string): Promise<void> {
    // A run that already ended keeps its outcome.
    if (this.state === 'done' || this.state === 'failed') return this.settled;
    this.stopRequested = true;
    this.stopReason ??= reason;
    this.fail(new SluiceError('E_ABORTED', `run aborted: ${reason}`, `graph ${this.graph.name}`), 'aborted');
    await this.settled;
  }

  /** Queues a processing-time tick (steps' onTick with clock.now()); resolves once it was processed. */
  tick(): Promise<void> {
    if (!this.acceptingBatches) return RESOLVED;
    return new Promise((resolve) => this.enqueue({ kind: 'tick', done: resolve }));
  }

  /**
   * The state of every step that has one (`step.snapshot()`), by step name, taken between two jobs
   * so no batch is half-applied. Rejects if the run ends before the snapshot could be taken.
   */
  snapshot(): Promise<Record<string, StepState>> {
    if (!this.acceptingBatches) return Promise.reject(new Error('the run has ended: nothing to snapshot'));
    return new Promise((resolve, reject) => this.enqueue({ kind: 'snapshot', resolve, reject }));
  }

  /** Restores step states taken by `snapshot()`, before `run()`. Unknown step names are a ConfigError. */
  restore(states: Record<string, StepState>): void {
    if (this.settled) throw new Error('Runtime.restore() must be called before run()');
    for (const [name, state] of Object.entries(states)) {
      const node = this.steps.find((s) => s.name === name);
      if (!node?.step.restore) {
        throw new ConfigError('E_RESTORE', `no stateful step \`${name}\` to restore`, `steps.${name}`);
      }
      node.step.restore(state);
    }
  }

  stats(): RuntimeStats {
    const nodes: Record<string, NodeStats> = {};
    let recordsIn = 0;
    let recordsOut = 0;
    for (const s of this.sources) {
      nodes[s.name] = { role: 'source', ...s.counters };
      recordsIn += s.counters.recordsIn;
    }
    for (const s of this.steps) {
      const node: NodeStats = { role: 'step', ...s.counters };
      if (s.step.stats) node.step = s.step.stats();
      nodes[s.name] = node;
    }
    for (const s of this.sinks) {
      const q = s.queue.stats();
      nodes[s.name] = {
        role: 'sink',
        ...s.counters,
        recordsOut: q.written,
        failed: q.failed,
        nanos: q.prepareNanos + q.writeNanos,
        queued: q.queued,
        writing: q.writing,
        writes: q.writes,
        batches: q.batches,
        prepareNanos: q.prepareNanos,
        writeNanos: q.writeNanos,
      };
      recordsOut += q.written;
    }
    return {
      state: this.state,
      elapsedMs: this.startedAt ? performance.now() - this.startedAt : 0,
      recordsIn,
      recordsOut,
      queuedBatches: this.queuedBatches,
      nodes,
      ...(this.checkpoints ? { checkpoint: this.checkpoints.stats() } : {}),
    };
  }

  /** Keeps a failure's message for the live view: the last few per node. Only failures pay for it. */
  noteError(node: string, error: unknown, position?: SourcePosition): void {
    let list = this.recent.get(node);
    if (!list) this.recent.set(node, (list = []));
    const entry: RecentError = { at: Date.now(), message: errorMessage(error) };
    if (position) {
      entry.partition = position.partition;
      entry.offset = position.offset;
    }
    list.push(entry);
    if (list.length > RECENT_ERRORS) list.shift();
  }

  /** The last failures per node, oldest first (nodes without any are left out). */
  recentErrors(): Record<string, RecentError[]> {
    const out: Record<string, RecentError[]> = {};
    for (const [node, list] of this.recent) out[node] = list.slice();
    return out;
  }

  /** What readiness needs: the run's state, each source's connection, the checkpoint's age. */
  health(): RuntimeHealth {
    const sources: Record<string, SourceHealth> = {};
    for (const s of this.sources) sources[s.name] = s.source.health?.() ?? { connected: true };
    const out: RuntimeHealth = { state: this.state, sources };
    if (this.checkpoints && this.checkpointCoveredAt !== undefined) {
      out.checkpoint = { ageMs: Math.max(0, this.clock.now() - this.checkpointCoveredAt), intervalMs: this.checkpoints.intervalMs };
    }
    if (this.failure) out.failure = { ...(this.failure.where ? { where: this.failure.where } : {}), code: this.failure.code, message: this.failure.message };
    return out;
  }

  /** Sets the gauges that stand for current figures (queues, watermarks, checkpoint age); collectors call it before a scrape. */
  publishGauges(): void {
    const health = this.health();
    const connected: Record<string, boolean> = {};
    for (const [name, h] of Object.entries(health.sources)) connected[name] = h.connected;
    publishStatsGauges(this.metrics, this.stats(), Date.now(), health.checkpoint?.ageMs, connected);
  }

  /**
   * A record that failed at a source (decode) or a step while nothing reads `<node>.errors`: its
   * reference is released, it is counted as dropped, and logged at a limited rate.
   */
  dropUnreadFailure(node: string, c: Counters, ack: Ack, position: SourcePosition, error: unknown): void {
    ack.release();
    c.dropped++;
    this.metrics.inc(RECORDS_DROPPED, { node, port: ERRORS_PORT });
    this.warnDropped(node, position, error, `record failed and nothing reads ${node}.${ERRORS_PORT}`);
  }

  /**
   * Records a sink did not write for what they hold go to `<sink>.errors` with the reason, their
   * references with them; nobody reading it, they are counted, logged and dropped. Called from the
   * sink's writer, outside the job loop: only sinks read a sink's errors, so no step runs here.
   */
  private routeUnwritten(s: SinkNode, unwritten: UnwrittenRecord[]): void {
    for (const u of unwritten) this.noteError(s.name, u.error, u.record.position);
    const records = unwritten.map((u) => failedRecord(u.record, s.name, u.error));
    this.deliver(s.name, s.routes, s.counters, ERRORS_PORT, records, s.name);
  }

  /** Logs a dropped record, at most once per node per interval, with how many were suppressed. */
  private warnDropped(node: string, position: SourcePosition, error: unknown, what: string): void {
    const suppressed = this.warnings.admit(node);
    if (suppressed === undefined) return;
    this.logger.warn(
      { node, partition: position.partition, offset: position.offset, error: errorMessage(error), suppressed },
      `${node}: ${what}; dropped`,
    );
  }

  /* ---------------------------------------------------------------- run */

  private async execute(): Promise<RunOutcome> {
    this.startedAt = performance.now();
    this.unregisterCollector = this.metrics.addCollector(() => this.publishGauges());
    try {
      return await this.executeGraph();
    } finally {
      this.publishGauges();
      this.unregisterCollector();
    }
  }

  private async executeGraph(): Promise<RunOutcome> {
    // Inputs, then state, then sinks: a mistyped input path and stored state that cannot be used are
    // refused before any sink opens (a file sink truncates its file on open).
    if (this.failure) throw this.failure;
    await this.checkSources();
    if (this.checkpoints) await this.restoreCheckpoint(this.checkpoints);
    if (this.failure) {
      // Aborted while restoring: no sink opens.
      const store = this.checkpoints?.store;
      if (store) await this.closeQuietly('state store', () => store.close());
      throw this.failure;
    }
    if (this.openSinks) {
      try {
        await this.openAllSinks();
      } catch (err) {
        const store = this.checkpoints?.store;
        if (store) await this.closeQuietly('state store', () => store.close());
        throw err;
      }
    }
    this.decideCheckpointOverlap();
    this.state = this.failure ? 'failed' : this.stopRequested ? 'stopping' : 'running';
    const timer = this.tickMs > 0 ? setInterval(() => this.queueTimerTick(), this.tickMs) : undefined;
    timer?.unref();
    // Due checkpoints are taken between jobs (see processLoop); the timer only wakes an idle loop,
    // since a loop that always has work runs on microtasks and timers would wait for it to empty.
    // A phase shifts this run's checkpoints within the interval (tasks of one process spread theirs).
    const interval = this.checkpoints?.intervalMs ?? 0;
    const offset = Math.round(interval * this.checkpointPhase);
    let checkpointTimer: NodeJS.Timeout | undefined;
    const startCheckpointTimer = () => {
      checkpointTimer = setInterval(() => this.queueCheckpoint(), interval);
      checkpointTimer.unref();
    };
    let phaseTimer: NodeJS.Timeout | undefined;
    if (this.checkpoints && offset > 0) {
      phaseTimer = setTimeout(startCheckpointTimer, offset);
      phaseTimer.unref();
    } else if (this.checkpoints) startCheckpointTimer();
    if (this.checkpoints) {
      this.checkpointDueAt = this.clock.now() + this.checkpoints.intervalMs + offset;
      this.checkpointCoveredAt = this.clock.now();
    }
    const loop = this.processLoop().catch((err: unknown) => {
      this.fail(asSluiceError(err, 'E_RUNTIME', `graph ${this.graph.name}`, 'processing failed'));
    });
    const runs = this.sources.map((s) => this.runSource(s));
    if (this.stopRequested) this.stopSources();

    await this.sourcesEnded(runs);
    const endOfInput = !this.failure && !this.stopRequested && this.sources.every((s) => s.ended && s.source.bounded);
    if (endOfInput) {
      this.state = 'ending';
      this.enqueue({ kind: 'end' });
    }
    this.enqueue({ kind: 'finish' });
    await loop;
    this.settleLeftoverJobs();
    this.acceptingBatches = false;
    this.releaseEmitWaiters();
    if (timer) clearInterval(timer);
    if (phaseTimer) clearTimeout(phaseTimer);
    if (checkpointTimer) clearInterval(checkpointTimer);

    if (this.failure) await Promise.all(this.sinks.map((s) => s.queue.abort()));
    else if (this.stopRequested) await this.settleSinks(() => this.drainSinks());
    else await this.drainSinks();
    if (this.checkpoints) await this.lastCheckpoint(this.checkpoints, endOfInput);
    await this.closeAll();
    this.publishMetrics();

    if (this.failure) {
      this.state = 'failed';
      throw this.failure;
    }
    this.state = 'done';
    return outcomeOf(this.stats(), endOfInput ? 'end-of-input' : 'stopped', endOfInput ? undefined : this.stopReason);
  }

  /**
   * After a stop: waits for the sinks to finish what they were handed, but not for ever. A sink
   * still writing after `stopGraceMs` (a webhook whose target is down retries without end) fails
   * the run and is closed, which abandons its write: what it had not written is not acknowledged,
   * so a restart writes it again. A stopping run must end. (After a failure the sinks' writes are
   * waited for as before: the run restarts, and closing a Kafka producer under a broker outage
   * kept the restarted run from ever becoming ready.)
   */
  private async settleSinks(finish: () => Promise<void>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = finish().then(() => true);
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.stopGraceMs)));
    const inTime = await Promise.race([finished, late]);
    clearTimeout(timer);
    if (inTime) return;
    const stuck = this.sinks
      .filter((s) => {
        const q = s.queue.stats();
        return q.writing > 0 || q.queued > 0;
      })
      .map((s) => s.name);
    this.fail(
      new SluiceError(
        'E_SINK_STUCK',
        `sink${stuck.length === 1 ? '' : 's'} ${stuck.join(', ')} still writing ${Math.round(this.stopGraceMs / 1000)} s after the run stopped: closed; what ${stuck.length === 1 ? 'it' : 'they'} had not written is not acknowledged, and a restart writes it again`,
        `sinks.${stuck[0] ?? '?'}`,
      ),
    );
    // Bounded too: a client may wait for an unreachable server to close.
    const closed = Promise.all(this.sinks.map((s) => this.closeQuietly(`sink ${s.name}`, () => s.sink.close())));
    await Promise.race([Promise.all([closed, finished]), new Promise<void>((resolve) => setTimeout(resolve, this.stopGraceMs).unref())]);
  }

  /**
   * One sink after another, in graph order: a sink's last write may refuse records into a later
   * sink that reads its errors, which must then still write them.
   */
  private async drainSinks(): Promise<void> {
    for (const s of this.sinks) await s.queue.drain();
  }

  private statefulSteps(): { name: string; step: Step }[] {
    return this.steps.filter((s) => s.step.snapshot).map((s) => ({ name: s.name, step: s.step }));
  }

  private checkpointedSinks(): { name: string; sink: Sink }[] {
    return this.sinks.filter((s) => s.sink.checkpoint || s.sink.beforeCommit).map((s) => ({ name: s.name, sink: s.sink }));
  }

  private async restoreCheckpoint(checkpoints: CheckpointCoordinator): Promise<void> {
    try {
      const report = await checkpoints.restore(this.statefulSteps(), this.checkpointedSinks());
      if (report) {
        this.logger.info(
          { store: checkpoints.store.description, epoch: report.epoch, entries: report.entries, partitions: report.partitions, age_s: Math.round(report.ageMs / 1000), ms: report.durationMs },
          'state restored from the last checkpoint',
        );
      } else {
        this.logger.info({ store: checkpoints.store.description }, 'no stored state: starting empty');
      }
    } catch (err) {
      this.state = 'failed';
      await this.closeQuietly('state store', () => checkpoints.store.close());
      throw asSluiceError(err, 'E_STATE', checkpoints.store.description, 'cannot restore state');
    }
  }

  /**
   * Decided once the sinks are open. Held at a checkpoint: sinks whose records after a cut wait
   * for the checkpoint's commit, since their writes join the commit or their checkpoint says how
   * far they wrote. A checkpoint may complete (sinks flush, the store commits) while the loop goes
   * on processing, pausing it only for the snapshot, unless a held sink reads another sink's
   * errors port: what a sink refuses of the records before the cut reaches it after the cut, and
   * could not be told apart from later records, which must wait. Such runs pause for the whole
   * checkpoint, as Kafka Streams does for its commit.
   */
  private decideCheckpointOverlap(): void {
    this.heldAtCheckpoint = this.sinks.filter((s) => s.sink.writesInCheckpoint === true || s.sink.checkpoint !== undefined);
    const held = new Set<Target>(this.heldAtCheckpoint);
    this.overlapCheckpoints = !this.sinks.some((s) => [...s.routes.values()].some((targets) => targets.some((t) => held.has(t))));
  }

  /**
   * Takes a checkpoint between two jobs. Its cut (the steps' snapshot, the positions) is taken
   * now; the rest (the sinks writing what came before the cut, the commit) goes on beside
   * processing when checkpoints overlap, else the loop waits for it, as it does when `wait`. A
   * checkpoint due while the previous one still completes is queued for when that one is done. A
   * store that cannot commit fails the run (nothing held is released).
   */
  private async takeCheckpoint(checkpoints: CheckpointCoordinator, wait = !this.overlapCheckpoints): Promise<void> {
    if (this.checkpointInFlight) {
      if (!wait) {
        this.checkpointAgain = true;
        return;
      }
      await this.checkpointInFlight;
    }
    const cut = this.clock.now();
    this.checkpointDueAt = cut + checkpoints.intervalMs;
    const t0 = performance.now();
    const sinks = this.checkpointedSinks();
    let pending: PendingCheckpoint | undefined;
    try {
      pending = checkpoints.cut(this.statefulSteps(), sinks);
    } catch (err) {
      this.checkpointFailed(checkpoints, err);
      return;
    }
    if (!pending) {
      // Nothing new since the last one: the store covers the cut.
      this.checkpointCoveredAt = cut;
      return;
    }
    const flush = this.flushToCut(!wait);
    const completion = checkpoints.complete(pending, sinks, flush.run).then(
      () => {
        flush.resume();
        this.checkpointCoveredAt = cut;
        this.metrics.observe(CHECKPOINT_DURATION, {}, (performance.now() - t0) / 1000);
        this.metrics.inc(CHECKPOINTS);
      },
      (err: unknown) => this.checkpointFailed(checkpoints, err),
    );
    if (wait) return completion;
    this.checkpointInFlight = completion.finally(() => {
      this.checkpointInFlight = undefined;
      if (!this.checkpointAgain) return;
      this.checkpointAgain = false;
      this.queueCheckpoint();
    });
  }

  private checkpointFailed(checkpoints: CheckpointCoordinator, err: unknown): void {
    this.metrics.inc(CHECKPOINT_FAILURES);
    this.fail(asSluiceError(err, 'E_CHECKPOINT', checkpoints.store.description, 'checkpoint failed'));
  }

  /**
   * What a checkpoint waits for before it commits: every sink wrote what it had been handed at the
   * cut. Each sink's cut is taken in graph order when the flush reaches it, so what a sink refused
   * of its records before the cut, and handed to a later sink's queue, is included. When
   * processing goes on meanwhile (`overlapping`), the held sinks' cuts are taken now instead, and
   * hold their later records until `resume`. A sink that gave up meanwhile failed the run, and its
   * cut resolved all the same: the checkpoint must not commit then, or it would cover positions
   * whose outputs were never written.
   */
  private flushToCut(overlapping: boolean): { run: () => Promise<void>; resume: () => void } {
    const heldCuts = new Map<SinkNode, Promise<void>>();
    if (overlapping) for (const s of this.heldAtCheckpoint) heldCuts.set(s, s.queue.cut(true));
    return {
      run: async () => {
        for (const s of this.sinks) await (heldCuts.get(s) ?? s.queue.cut());
        if (this.failure) throw this.failure;
      },
      resume: () => {
        for (const s of heldCuts.keys()) s.queue.resume();
      },
    };
  }

  /** After the loop: a stopped run stores where it stopped; a finished one removes its state. */
  private async lastCheckpoint(checkpoints: CheckpointCoordinator, endOfInput: boolean): Promise<void> {
    // One still completing finishes first (it never rejects: a failure fails the run).
    await this.checkpointInFlight;
    if (this.failure) checkpoints.abandon();
    else if (endOfInput) {
      try {
        const t0 = performance.now();
        await checkpoints.finishedInput(this.statefulSteps(), this.checkpointedSinks(), () => this.flushToCut(false).run());
        // Its last checkpoint carries the last outputs (under exactly-once) before the state is removed.
        this.metrics.observe(CHECKPOINT_DURATION, {}, (performance.now() - t0) / 1000);
        this.metrics.inc(CHECKPOINTS);
        this.checkpointCoveredAt = this.clock.now();
      } catch (err) {
        this.fail(asSluiceError(err, 'E_CHECKPOINT', checkpoints.store.description, 'cannot remove the finished run\'s state'));
      }
    } else await this.takeCheckpoint(checkpoints, true);
    await this.closeQuietly('state store', () => checkpoints.store.close());
  }

  /** Runs every source's `check`; the first that fails fails the run, naming the source, before anything opened. */
  private async checkSources(): Promise<void> {
    const results = await Promise.allSettled(this.sources.map((s) => s.source.check?.()));
    const failedAt = results.findIndex((r) => r.status === 'rejected');
    if (failedAt < 0) return;
    this.state = 'failed';
    const name = this.sources[failedAt]!.name;
    const reason = (results[failedAt] as PromiseRejectedResult).reason;
    throw asSluiceError(reason, 'E_SOURCE', `sources.${name}`, `source \`${name}\` cannot read its input`);
  }

  /** Opens every sink; if one fails, closes those that opened and fails naming the sink. */
  private async openAllSinks(): Promise<void> {
    const results = await Promise.allSettled(this.sinks.map((s) => s.sink.open()));
    const failedAt = results.findIndex((r) => r.status === 'rejected');
    if (failedAt < 0) return;
    await Promise.all(
      this.sinks
        .filter((_, i) => results[i]!.status === 'fulfilled')
        .map((s) => this.closeQuietly(`sinks.${s.name}`, () => s.sink.close())),
    );
    this.state = 'failed';
    const name = this.sinks[failedAt]!.name;
    const reason = (results[failedAt] as PromiseRejectedResult).reason;
    throw asSluiceError(reason, 'E_SINK_OPEN', `sinks.${name}`, `sink \`${name}\` could not open`);
  }

  private runSource(s: SourceNode): Promise<void> {
    const out: SourceOutput = {
      emit: (batch) => {
        s.partitions.add(batch.partition);
        return this.acceptBatch(s, batch);
      },
      assign: (partitions) => {
        for (const p of partitions) s.partitions.add(p);
        this.acceptPartitions(s, { type: 'assign', partitions });
      },
      revoke: (partitions) => {
        for (const p of partitions) s.partitions.delete(p);
        this.acceptPartitions(s, { type: 'revoke', partitions });
      },
    };
    // Offered only to a source that feeds a step's side input (a join's table): finding out how far
    // it has read costs a source requests of its own, which nothing else would use.
    if ([...s.downstream].some(([step, via]) => step.step.sideInputs?.some((input) => via.includes(input)))) {
      // Queued behind the batches emitted before it, so a step sees it after their records.
      out.caughtUp = (partitions, at) => {
        if (this.acceptingBatches && partitions.length > 0) this.enqueue({ kind: 'partitions', source: s, event: { type: 'caught-up', partitions: [...partitions], at } });
      };
    }
    let running: Promise<void>;
    try {
      running = s.source.run(out);
    } catch (err) {
      running = Promise.reject(err);
    }
    return running.then(
      () => {
        s.ended = true;
        // A bounded source that is done while others still run: its partitions will send nothing
        // more, so they must stop holding the watermark back (as a finished split does in Flink).
        // When every source is done, onEnd flushes instead.
        if (s.source.bounded && s.partitions.size > 0 && this.sources.some((o) => !o.ended)) {
          this.acceptPartitions(s, { type: 'revoke', partitions: [...s.partitions] });
          s.partitions.clear();
        }
      },
      (err: unknown) => {
        s.ended = true;
        this.fail(asSluiceError(err, 'E_SOURCE', `sources.${s.name}`, `source \`${s.name}\` failed`));
      },
    );
  }

  /** Waits for every source's run(); after stop() or a failure, at most stopGraceMs. */
  private async sourcesEnded(runs: Promise<void>[]): Promise<void> {
    const all = Promise.all(runs).then(() => true);
    const finished = await Promise.race([all, this.graceOver.then(() => false)]);
    if (!finished) {
      const waiting = this.sources.filter((s) => !s.ended).map((s) => s.name);
      this.logger.error({ sources: waiting, graceMs: this.stopGraceMs }, 'sources did not stop in time; closing anyway');
    }
  }

  private stopSources(): void {
    if (this.sourcesStopping) return;
    this.sourcesStopping = true;
    this.startGrace();
    for (const s of this.sources) {
      let stopping: Promise<void>;
      try {
        stopping = s.source.stop();
      } catch (err) {
        stopping = Promise.reject(err);
      }
      stopping.catch((err: unknown) => this.logger.warn({ source: s.name, error: errorMessage(err) }, 'source stop failed'));
    }
  }

  /** Sinks first (they flush what completed), then sources (they commit what completed last). */
  private async closeAll(): Promise<void> {
    for (const s of this.sinks) {
      try {
        await s.sink.close();
      } catch (err) {
        const error = asSluiceError(err, 'E_SINK_CLOSE', `sinks.${s.name}`, `sink \`${s.name}\` failed to close`);
        if (this.failure) this.logger.warn({ sink: s.name, error: error.message }, 'sink close failed');
        else this.fail(error);
      }
    }
    for (const s of this.sources) await this.closeQuietly(`sources.${s.name}`, () => s.source.close());
  }

  private async closeQuietly(where: string, close: () => Promise<void>): Promise<void> {
    try {
      await close();
    } catch (err) {
      this.logger.warn({ node: where, error: errorMessage(err) }, 'close failed');
    }
  }

  /** The first failure wins: sources stop, the loop ends, nothing more is acknowledged. */
  private fail(error: SluiceError, how: 'failed' | 'aborted' = 'failed'): void {
    if (this.failure) return;
    this.failure = error;
    const node = error.where?.match(/^(?:sources|steps|sinks)\.([^.\s]+)/)?.[1];
    if (node !== undefined && this.graph.nodes.some((n) => n.name === node)) this.noteError(node, error);
    this.state = 'failed';
    if (how === 'aborted') this.logger.info({ error: error.message }, 'run aborted: no last checkpoint, a restart restores the last committed one');
    // Stopping, and fenced: a newer owner of this state took over first (a task handed over in a
    // rebalance). The caller decides what that means; it is no error of this run's.
    else if (this.stopRequested && causedBy(error, FencedError)) this.logger.info({ where: error.where, code: error.code }, 'stopped: a newer owner of this state fenced the last checkpoint');
    else this.logger.error({ where: error.where, code: error.code, error: error.message }, 'run failed');
    this.stopSources();
    this.acceptingBatches = false;
    this.releaseEmitWaiters();
    for (const s of this.sinks) void s.queue.abort();
    const wake = this.wakeLoop;
    this.wakeLoop = undefined;
    wake?.();
  }

  /* ---------------------------------------------------------------- intake */

  private acceptBatch(source: SourceNode, batch: RawBatch): Promise<void> {
    // After a failure (or the end) a batch is ignored: never retained, never acknowledged.
    if (!this.acceptingBatches) return RESOLVED;
    this.queuedBatches++;
    this.enqueue({ kind: 'batch', source, batch });
    if (this.queuedBatches <= this.maxQueuedBatches) return RESOLVED;
    return new Promise((resolve) => this.emitWaiters.push(resolve));
  }

  /**
   * Queues an assignment or revocation of source partitions for the steps. When the source's
   * records carry origins (a repartition topic), the steps are told the origins each partition's
   * records come from instead, since their watermarks are tracked per origin.
   */
  private acceptPartitions(source: SourceNode, event: { type: 'assign' | 'revoke'; partitions: readonly string[] }): void {
    if (!this.acceptingBatches) return;
    const format = source.format;
    let partitions: string[];
    if (format.origins === undefined) partitions = [...event.partitions];
    else {
      const named = new Set<string>();
      for (const p of event.partitions) for (const o of format.origins(p) ?? [p]) named.add(o);
      partitions = [...named];
    }
    this.enqueue({ kind: 'partitions', source, event: { type: event.type, partitions } });
  }

  private queueCheckpoint(): void {
    if (this.checkpointQueued || !this.acceptingBatches) return;
    this.checkpointQueued = true;
    this.enqueue({ kind: 'checkpoint' });
  }

  private queueTimerTick(): void {
    if (this.tickQueued || !this.acceptingBatches) return;
    this.tickQueued = true;
    this.enqueue({ kind: 'tick' });
  }

  private enqueue(job: Job): void {
    this.jobs.push(job);
    const wake = this.wakeLoop;
    if (wake) {
      this.wakeLoop = undefined;
      wake();
    }
  }

  /** Jobs the loop never reached (after a failure): callers awaiting them must not hang. */
  private settleLeftoverJobs(): void {
    for (const job of this.jobs.splice(0)) {
      if (job.kind === 'tick') job.done?.();
      else if (job.kind === 'snapshot') job.reject(new Error('the run ended before the snapshot was taken'));
    }
  }

  private releaseEmitWaiters(): void {
    if (this.emitWaiters.length === 0) return;
    const waiters = this.emitWaiters;
    this.emitWaiters = [];
    for (const w of waiters) w();
  }

  /* ---------------------------------------------------------------- processing */

  private async processLoop(): Promise<void> {
    let ranSince = performance.now();
    for (;;) {
      if (this.failure) return;
      // A loop that always has work runs on microtasks, and timers wait for it: a Kafka consumer's
      // heartbeats among them (several tasks' loops in one process starved them past the session
      // timeout, and the group dropped the process). Let timers and I/O in every few ms.
      if (performance.now() - ranSince > YIELD_AFTER_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        ranSince = performance.now();
      }
      const job = this.jobs.shift();
      if (!job) {
        await new Promise<void>((resolve) => (this.wakeLoop = resolve));
        continue;
      }
      switch (job.kind) {
        case 'finish':
          return;
        case 'batch': {
          const t0 = performance.now();
          await this.processBatch(job.source, job.batch);
          this.metrics.observe(BATCH_DURATION, job.source.labels, (performance.now() - t0) / 1000);
          this.queuedBatches--;
          if (this.queuedBatches <= this.maxQueuedBatches) this.releaseEmitWaiters();
          break;
        }
        case 'partitions':
          this.checkpoints?.noteChange();
          // Only steps that read this source: a quiet partition of another source must not hold
          // their watermark back.
          await this.broadcast((s) => {
            const via = job.source.downstream.get(s);
            return via ? s.step.onPartitions?.(job.event, s, via) : undefined;
          });
          break;
        case 'checkpoint':
          this.checkpointQueued = false;
          await this.takeCheckpoint(this.checkpoints!);
          break;
        case 'tick': {
          this.tickQueued = false;
          const now = this.clock.now();
          const emitted = this.stepOutputs();
          await this.broadcast((s) => s.step.onTick?.(now, s));
          // A tick that closed windows changed state; one that did nothing needs no checkpoint.
          if (this.stepOutputs() !== emitted) this.checkpoints?.noteChange();
          job.done?.();
          break;
        }
        case 'end':
          await this.broadcast((s) => s.step.onEnd?.(s));
          break;
        case 'snapshot': {
          const states: Record<string, StepState> = {};
          for (const s of this.steps) if (s.step.snapshot) states[s.name] = s.step.snapshot();
          job.resolve(states);
          break;
        }
      }
      this.publishMetrics();
      if (this.checkpoints && job.kind !== 'checkpoint' && this.clock.now() >= this.checkpointDueAt) await this.takeCheckpoint(this.checkpoints);
      await this.waitForSinkRoom();
    }
  }

  /** Records the steps emitted so far, on any port. */
  private stepOutputs(): number {
    let n = 0;
    for (const s of this.steps) n += s.counters.recordsOut + s.counters.failed;
    return n;
  }

  /**
   * Moves the per-node counters into the metrics registry, once per job rather than per record:
   * the hot path only bumps plain numbers.
   */
  private publishMetrics(): void {
    for (const s of this.sources) this.publishCounters(s.name, s.counters, s.reported, false);
    for (const s of this.steps) this.publishCounters(s.name, s.counters, s.reported, false);
    for (const s of this.sinks) {
      const q = s.queue.stats();
      s.counters.recordsOut = q.written;
      s.counters.failed = q.failed;
      this.publishCounters(s.name, s.counters, s.reported, true);
    }
  }

  private publishCounters(node: string, now: Counters, reported: Counters, isSink: boolean): void {
    const labels = { node };
    const delta = (name: string, key: 'recordsIn' | 'failed' | 'discarded' | 'recordsOut') => {
      const d = now[key] - reported[key];
      if (d !== 0) {
        this.metrics.inc(name, labels, d);
        reported[key] = now[key];
      }
    };
    delta(RECORDS_IN, 'recordsIn');
    delta(RECORDS_FAILED, 'failed');
    delta(RECORDS_FILTERED, 'discarded');
    if (isSink) delta(RECORDS_WRITTEN, 'recordsOut');
  }

  private async waitForSinkRoom(): Promise<void> {
    for (const s of this.sinks) {
      if (!s.queue.hasRoom()) await s.queue.waitForRoom();
    }
  }

  /**
   * Decodes a source batch, routes it, and runs the steps. A format with `control` may find
   * progress markers among the messages (a repartition topic): a marker is no record. The records
   * before it are processed first, then it reaches the steps downstream of the source as a
   * `progress` partition event, so the steps see data and markers in offset order.
   */
  private async processBatch(source: SourceNode, batch: RawBatch): Promise<void> {
    const { ack, partition } = batch;
    const messages = this.checkpoints ? this.checkpoints.admit(partition, batch.messages) : batch.messages;
    const n = messages.length;
    const c = source.counters;
    ack.retain(n);
    if (this.checkpoints && n > 0) this.checkpoints.track(partition, messages[n - 1]!.position.offset, ack);
    ack.seal();
    const t0 = process.hrtime.bigint();
    const format = source.format;
    const control = format.control;
    const unpack = format.unpack;
    let records: StreamRecord[] = [];
    let failures: StreamRecord[] | undefined;
    /** Records beyond one per message, from packs. */
    let unpacked = 0;
    /** What came before each marker of the batch, when it has any. */
    let segments: { records: StreamRecord[]; failures: StreamRecord[] | undefined; marker: ProgressMarker }[] | undefined;
    const errorsRead = source.routes.has(ERRORS_PORT);
    for (let i = 0; i < n; i++) {
      const msg = messages[i]!;
      try {
        if (control !== undefined) {
          const marker = control.call(format, msg);
          if (marker !== undefined) {
            (segments ??= []).push({ records, failures, marker });
            records = [];
            failures = undefined;
            // Its position is committed like a data message's, but nothing goes on to hold it.
            ack.release();
            continue;
          }
        }
        const pack = unpack !== undefined ? unpack.call(format, msg) : undefined;
        if (pack !== undefined) {
          // One Ack reference per record, as for a message of one; none for an empty pack.
          if (pack.length === 0) ack.release();
          else if (pack.length > 1) ack.retain(pack.length - 1);
          for (let k = 0; k < pack.length; k++) records.push(recordOf(msg, pack[k]!, ack));
          unpacked += pack.length - 1;
          continue;
        }
        records.push(recordOf(msg, format.decode(msg), ack));
      } catch (err) {
        c.failed++;
        this.noteError(source.name, err, msg.position);
        if (errorsRead) {
          (failures ??= []).push(undecodableRecord(msg, source.name, ack, err));
        } else {
          this.dropUnreadFailure(source.name, c, ack, msg.position, err);
        }
      }
    }
    c.nanos += nanosSince(t0);
    c.recordsIn += n + unpacked;
    if (segments) {
      for (const segment of segments) {
        this.deliverDecoded(source, segment.records, segment.failures, partition);
        await this.broadcast(undefined);
        const { origin, time, idle } = segment.marker;
        const event: PartitionEvent = { type: 'progress', origin, time, idle };
        await this.broadcast((s) => {
          const via = source.downstream.get(s);
          return via ? s.step.onPartitions?.(event, s, via) : undefined;
        });
        if (this.failure) return;
      }
    }
    this.deliverDecoded(source, records, failures, partition);
    await this.broadcast(undefined);
  }

  /** Hands a source's decoded records to their readers, and those that failed to decode to `errors`. */
  private deliverDecoded(source: SourceNode, records: StreamRecord[], failures: StreamRecord[] | undefined, partition: string): void {
    const c = source.counters;
    c.recordsOut += records.length;
    this.deliver(source.name, source.routes, c, MAIN_PORT, records, partition);
    if (failures) this.deliver(source.name, source.routes, c, ERRORS_PORT, failures, partition);
  }

  /**
   * Runs the steps in topological order: each first processes what its upstreams delivered, then
   * (for ticks, partition events and the end) gets `call`; its outputs flow on to later steps.
   */
  private async broadcast(call: ((s: StepNode) => void | Promise<void>) | undefined): Promise<void> {
    for (const s of this.steps) {
      if (this.failure) return;
      if (s.inbox.length > 0) await this.processInbox(s);
      if (call) {
        const t0 = process.hrtime.bigint();
        const r = this.guard(s, () => call(s));
        if (r) await r;
        s.counters.nanos += nanosSince(t0);
        if (s.hasPending) this.flush(s);
      }
    }
  }

  private async processInbox(s: StepNode): Promise<void> {
    const chunks = s.inbox;
    s.inbox = [];
    const c = s.counters;
    for (const chunk of chunks) {
      c.recordsIn += chunk.records.length;
      const t0 = process.hrtime.bigint();
      const r = this.guard(s, () => s.step.process(chunk, s));
      if (r) await r;
      c.nanos += nanosSince(t0);
    }
    if (s.hasPending) this.flush(s);
  }

  /** A step that throws (rather than failing a record) has a bug: the run fails, nothing is acknowledged. */
  private guard(s: StepNode, call: () => void | Promise<void>): Promise<void> | undefined {
    const wrap = (err: unknown) => asSluiceError(err, 'E_STEP', `steps.${s.name}`, `step \`${s.name}\` threw`);
    try {
      const r = call();
      if (r instanceof Promise) return r.catch((err: unknown) => this.fail(wrap(err)));
    } catch (err) {
      this.fail(wrap(err));
    }
    return undefined;
  }

  private flush(s: StepNode): void {
    const pending = s.pending;
    s.pending = new Map();
    s.owned.clear();
    s.hasPending = false;
    for (const [port, records] of pending) {
      if (port !== ERRORS_PORT) s.counters.recordsOut += records.length;
      this.deliver(s.name, s.routes, s.counters, port, records, s.name);
    }
  }

  /** Hands records to every reader of `node.port`: one more Ack reference per extra reader; none reads -> dropped. */
  private deliver(
    node: string,
    routes: Map<string, Target[]>,
    c: Counters,
    port: string,
    records: StreamRecord[],
    partition: string,
  ): void {
    if (records.length === 0) return;
    if (port !== ERRORS_PORT) this.metrics.inc(RECORDS_OUT, { node, port }, records.length);
    const readers = routes.get(port);
    if (!readers) {
      releaseRecords(records);
      c.dropped += records.length;
      this.metrics.inc(RECORDS_DROPPED, { node, port }, records.length);
      if (port === ERRORS_PORT) {
        const first = records[0]!;
        const error = (first.meta.error as { message?: string } | undefined)?.message ?? 'record error';
        this.warnDropped(node, first.position, error, `record failed and nothing reads ${node}.${ERRORS_PORT}`);
      }
      return;
    }
    if (readers.length > 1) retainRecords(records, readers.length - 1);
    for (let i = 0; i < readers.length; i++) readers[i]!.accept(records, partition, node);
  }
}
