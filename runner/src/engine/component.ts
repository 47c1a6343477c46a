/**
 * The contracts between the engine and components. A component is one file under
 * `components/{sources,steps,sinks,formats}/` that exports one `*Def` value: its name, its config
 * JSON Schema (with descriptions and examples) and a factory. The engine only knows these
 * interfaces; `components/index.ts` is the one list of all components.
 */
import type { Ack } from './ack.ts';
import type { Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { Batch, Headers, RawMessage, StreamRecord } from './record.ts';

/** A JSON Schema (2020-12) object. Components give `description` and `examples` on every field. */
export type JsonSchema = { [key: string]: unknown };

/** What every factory gets. Creating a component never connects to anything: `open`/`run` do. */
export interface ComponentContext {
  /** The node's name in the spec, e.g. `activities`. */
  readonly name: string;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: Metrics;
  /** `test` runs golden files (no wall clock, no network); `run` is live. */
  readonly mode: 'run' | 'test';
  /** Present when the pipeline runs as tasks (scale-out): the task this instance belongs to. */
  readonly task?: TaskIdentity;
  /**
   * Present when the run takes checkpoints (see engine/checkpoint). A stateful step then keeps no
   * source references: a checkpoint holds them instead, and its state is restored after a restart.
   */
  readonly checkpoints?: CheckpointContext;
  /**
   * Whether some node of the pipeline may read this member of `$meta` (plan/meta-read.ts); absent
   * means any may. A source need not make exact what nothing reads.
   */
  readonly readsMeta?: (member: string) => boolean;
}

/**
 * One task of a stage: the stage's steps and sinks for one partition of its input. `id` is
 * `<stage>_<partition>`, as in transactional ids and repartition markers.
 */
export interface TaskIdentity {
  readonly stage: string;
  readonly partition: number;
  /** Tasks in the stage: its input's partition count. */
  readonly partitions: number;
  readonly id: string;
}

/** How a run that takes checkpoints delivers its outputs. */
export type Delivery = 'at-least-once' | 'exactly-once';

export interface CheckpointContext {
  readonly delivery: Delivery;
  /** Names the pipeline's durable state, consumer groups and transactional ids; default the pipeline name. */
  readonly applicationId: string;
  /**
   * Things that several components of one run share, each under a typed key: under exactly-once, the
   * open checkpoint transaction that Kafka sinks write into. The engine never looks inside.
   */
  readonly shared: SharedResources;
}

/** A typed key for SharedResources: `resourceKey<KafkaTransaction>('kafka-transaction')`. */
export interface ResourceKey<T> {
  readonly name: string;
  /** Phantom member: carries T, never set. */
  readonly type?: T;
}

export function resourceKey<T>(name: string): ResourceKey<T> {
  return { name };
}

export class SharedResources {
  private readonly values = new Map<string, unknown>();
  set<T>(key: ResourceKey<T>, value: T): void {
    this.values.set(key.name, value);
  }
  get<T>(key: ResourceKey<T>): T | undefined {
    return this.values.get(key.name) as T | undefined;
  }
}

/** Plain JSON, the form state takes in checkpoints. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A stateful step's state as a checkpoint stores it: a small header (watermarks, counters) and
 * keyed entries (a window's panes), so that a changelog store writes only the entries that changed
 * and a tombstone for each that is gone.
 */
export interface StepState {
  header: JsonValue;
  entries: Map<string, JsonValue>;
  /**
   * Only on a snapshot taken with `changesOnly`: `entries` then holds just the entries that changed
   * since the step's previous snapshot, and these keys are gone since then.
   */
  removed?: string[];
  /** Entries in the whole state, when `entries` holds only the changes. */
  size?: number;
}

export interface SnapshotOptions {
  /** Only what changed since the previous snapshot (a changelog store writes nothing else). */
  changesOnly?: boolean;
}

interface DefBase<C, I> {
  /** The kind, which is also the YAML key that selects it: `kafka`, `filter`, `window`, `debezium`. */
  readonly name: string;
  /** One sentence for the reference docs and `sluice graph`. */
  readonly summary: string;
  /** Longer reference text (Markdown), optional. */
  readonly description?: string;
  /** What this node does with this config, in one short line, secrets redacted. */
  describe(config: C): string;
  create(config: C, ctx: ComponentContext): I;
}

/* ---------------------------------------------------------------- sources */

/** A batch as a source hands it to the engine: raw messages from one partition and the Ack for them. */
export interface RawBatch {
  partition: string;
  messages: RawMessage[];
  /**
   * Completes when every record derived from these messages is acknowledged by the sinks (or
   * dropped on purpose). The engine retains one reference per message and seals it; the source
   * only creates it, with the callback that marks the positions committable.
   */
  ack: Ack;
}

export interface SourceOutput {
  /** Hands over a batch; resolves when the pipeline can take more (backpressure: await it). */
  emit(batch: RawBatch): Promise<void>;
  /** Partitions this source now reads; each holds the watermark back until it sends data or goes idle. */
  assign(partitions: string[]): void;
  /** Partitions this source no longer reads (rebalance). */
  revoke(partitions: string[]): void;
  /**
   * These partitions held nothing at processing time `at` that the source has not handed over:
   * whatever it emits from them later was written after `at`. A join then knows a table is
   * complete for every record that reached the pipeline before `at`, instead of guessing from
   * silence (`idle`). Sources that can tell (Kafka: its position at the high watermark) call it.
   */
  caughtUp?(partitions: string[], at: number): void;
}

/** Whether a source reaches what it reads: readiness (`/readyz`) requires it of every source. */
export interface SourceHealth {
  connected: boolean;
  /** Why not, or what it is connected to, in a few words. */
  detail?: string;
}

export interface Source {
  /**
   * Verifies, before any sink opens, that the input is there (a file source: that its path matches
   * a readable file). A file sink truncates its file on open, so a mistyped input path must fail
   * first. Throws a ConfigError naming what it looked for; connects to nothing `run` would retry.
   */
  check?(): Promise<void>;
  /**
   * Reads until the input ends (bounded sources: file, generator with `count`) or until `stop()`.
   * Resolving means "no more data"; for a bounded source the engine then flushes every window.
   */
  run(out: SourceOutput): Promise<void>;
  /** Stop reading soon; `run` resolves afterwards. Called on SIGINT/SIGTERM. */
  stop(): Promise<void>;
  /** Release connections, after the engine has drained and acknowledged what it could. */
  close(): Promise<void>;
  /** True when the input ends by itself; the run then exits 0 once drained. */
  readonly bounded: boolean;
  /** Sources that can lose their connection (Kafka, PostgreSQL) say whether they have it now; absent: always connected. */
  health?(): SourceHealth;
}

export interface SourceDef<C = unknown> extends DefBase<C, Source> {
  readonly family: 'source';
  /** Schema of the value under the kind key: `sources.<name>.<kind>`. */
  readonly schema: JsonSchema;
}

/* ---------------------------------------------------------------- formats */

/** What a format makes of a raw message. */
export interface Decoded {
  key: unknown;
  value: unknown;
  meta: Record<string, unknown>;
  /** Event time in epoch ms when the format knows one (Debezium: `ts_ms`); else the message timestamp. */
  time?: number;
  /**
   * The partition whose event time this record advances, when it is not the one it was read from:
   * after a repartition, the upstream task that wrote it (see StreamRecord.origin).
   */
  origin?: string;
  /** The record's headers, when the format carries them itself (a repartition pack's records); else the message's. */
  headers?: Headers;
}

/**
 * A control record's promise, read from a repartition topic: upstream task `origin` has written
 * everything with event time up to `time` into this partition (its highest event time so far;
 * undefined before its first record), or is `idle` (nothing to send). It never reaches a step as
 * a record: it becomes a `progress` PartitionEvent, in offset order with the data.
 */
export interface ProgressMarker {
  origin: string;
  time: number | undefined;
  idle: boolean;
}

export interface Format {
  /** Decodes one message; throws RecordError (the record then goes to the source's errors port). */
  decode(message: RawMessage): Decoded;
  /** Formats of inputs that carry control records: the marker a message is, or undefined for data. Called before `decode`. */
  control?(message: RawMessage): ProgressMarker | undefined;
  /**
   * Formats whose messages may each carry several records (a repartition topic's packs): every
   * record of a message that is such a pack, in order, or undefined for a message to `decode`.
   * Throws RecordError for a malformed pack, which then goes to the errors port whole. Called
   * after `control`, before `decode`. The records share the message's position: a checkpoint
   * never falls inside a message, so they are committed, and read again after a crash, together.
   */
  unpack?(message: RawMessage): Decoded[] | undefined;
  /**
   * Formats whose records carry an `origin`: the origins a source partition's records come from
   * (every upstream task of a repartition topic). Steps are told these on assign instead of the
   * partition itself, so each holds the watermark back until it has sent a marker or data.
   */
  origins?(partition: string): string[] | undefined;
}

export interface FormatDef<C = unknown> extends DefBase<C, Format> {
  readonly family: 'format';
  /** Schema of the options: `format: { <name>: <options> }`; `format: <name>` means default options. */
  readonly schema: JsonSchema;
}

/* ---------------------------------------------------------------- steps */

/** Where a step sends records. Ports other than `out` are addressed in specs as `<step>.<port>`. */
export interface StepOutput {
  /** Passes records on; ownership of their Ack references moves with them. */
  emit(records: StreamRecord[], port?: string): void;
  /** Drops a record on purpose (e.g. filtered out): releases its Ack reference, counts it. */
  drop(record: StreamRecord, reason: string): void;
  /** A record this step could not process: routed to `<step>.errors` if read, else counted and dropped. */
  fail(record: StreamRecord, error: Error): void;
}

/** Partition lifecycle, as sources report it; windows track watermarks per partition with it. */
export type PartitionEvent =
  | { type: 'assign'; partitions: string[] }
  | { type: 'revoke'; partitions: string[] }
  /** A ProgressMarker of an origin (an upstream task): its event time advanced, or it went idle or active. */
  | { type: 'progress'; origin: string; time: number | undefined; idle: boolean }
  /** The partitions held nothing unread at processing time `at` (SourceOutput.caughtUp). */
  | { type: 'caught-up'; partitions: string[]; at: number };

export interface Step {
  /** Extra named output ports beyond `out` and `errors`, e.g. `['late']`. */
  readonly ports?: readonly string[];
  process(batch: Batch, out: StepOutput): void | Promise<void>;
  /**
   * `via`: this step's inputs (node names) through which the event's source reaches it, so a step
   * with a side input (a join's table) knows which of its inputs the partitions feed.
   */
  onPartitions?(event: PartitionEvent, out: StepOutput, via?: readonly string[]): void;
  /**
   * Inputs (node names) whose records this step keeps as state and never passes on (a join's
   * table). Partition events of a source that reaches the steps after it only through these stop
   * here: those steps never see its records, so its partitions must not hold their watermarks.
   */
  readonly sideInputs?: readonly string[];
  /** Processing-time tick from the injected clock (idle timeouts, update-mode emits). */
  onTick?(now: number, out: StepOutput): void;
  /** All input has ended (bounded run): emit everything still held. */
  onEnd?(out: StepOutput): void | Promise<void>;
  /**
   * State for checkpoints, taken between two jobs; `restore` takes what `snapshot` returned (or
   * what a store read back), on a fresh step before any record. Only stateful steps have them.
   * What it returns must not change afterwards: the checkpoint is committed while processing goes
   * on, so it holds copies, never the step's live objects.
   */
  snapshot?(options?: SnapshotOptions): StepState;
  restore?(state: StepState): void;
  /** Figures for the progress line and metrics, e.g. `{ open_windows: 12, watermark: ... }`. */
  stats?(): Record<string, number | string | undefined>;
}

export interface StepDef<C = unknown> extends DefBase<C, Step> {
  readonly family: 'step';
  /**
   * Schema of the step entry without `from`: an object whose required property `name` selects
   * this kind, plus any sibling keys it owns (a window owns `window`, `group_by`, `aggregate`).
   */
  readonly schema: JsonSchema;
  /** Extra ports this kind may emit on, so specs can read `<step>.<port>` and validation knows them. */
  readonly ports?: readonly string[];
  /**
   * Nodes this kind reads besides `from`, named in its config (a join's `table`), with the path of
   * each name inside the step entry (for `file:line:col`). Called on a config its schema accepted.
   */
  sideInputs?(config: C): { node: string; path: (string | number)[] }[];
  /** Stateful kinds: the parts of a config that define what the stored state means (window shape, time, group keys, aggregates). Two configs with equal parts can share state. */
  stateIdentity?(config: C): Record<string, unknown>;
}

/* ---------------------------------------------------------------- sinks */

/** One message as a sink will write it: the golden files of `sluice test` record exactly this. */
export interface OutboundMessage {
  topic?: string;
  key: unknown;
  value: unknown;
  headers?: Headers;
}

/**
 * What `prepare` gives, in place of a message, for a record that cannot become one (its key, topic
 * or column expression threw, its topic expression gave no name, its value has the wrong shape).
 * Such a record can never be written: the engine counts it as failed at the sink
 * (`sluice_records_failed_total{node}`) and sends it to `<sink>.errors` with the reason, or, when
 * nothing reads that port, logs it at a limited rate and drops it (holding it would stall the
 * source's commits forever). The rest of the batch is written. `error` is best a RecordError naming
 * the sink and the record's position.
 */
export class PrepareFailure {
  constructor(readonly error: Error) {}
}

/** One entry of `prepare`'s result: the record's message, or why it has none. */
export type Prepared = OutboundMessage | PrepareFailure;

/** The messages of a prepare result that must be complete (tests, tools): throws the first failure's error. */
export function requireMessages(prepared: readonly Prepared[]): OutboundMessage[] {
  const messages: OutboundMessage[] = new Array(prepared.length);
  for (let i = 0; i < prepared.length; i++) {
    const p = prepared[i]!;
    if (p instanceof PrepareFailure) throw p.error;
    messages[i] = p;
  }
  return messages;
}

/**
 * A message `write` did not write because of what it holds, not because the sink is down: a value
 * the database refuses, a column the table lacks, a message larger than the broker takes. Retrying
 * cannot help. Like a PrepareFailure, its record goes to `<sink>.errors` with the reason.
 */
export interface RefusedMessage {
  /** Its index in the array `write` was given. */
  readonly index: number;
  /** Why: best a RecordError naming the sink and what was refused, never the value (personal data, any size). */
  readonly error: Error;
}

/** What `write` resolves to when it refused messages; the others are written. */
export interface WriteResult {
  readonly refused: readonly RefusedMessage[];
}

export interface Sink {
  /** Connects. Not called in test mode. */
  open(): Promise<void>;
  /**
   * Pure: turns records into messages (evaluates key, topic, headers expressions). No I/O.
   * Returns exactly one entry per record, in order: its message, or a PrepareFailure when that one
   * record cannot become a message (the others are still written). Throwing is for failures that
   * are not about one record, and fails the run.
   */
  prepare(records: readonly StreamRecord[]): Prepared[] | Promise<Prepared[]>;
  /**
   * Writes durably, retrying transient failures; throws only when it gives up (an outage: the run
   * then fails, and nothing unwritten is acknowledged). A message refused for what it holds is no
   * outage: `write` writes the others and names it in the result.
   */
  write(messages: OutboundMessage[]): Promise<WriteResult | void>;
  /**
   * How many `write` calls may be outstanding at once (default 1). Above 1, the engine calls
   * `write` for the next batch before the earlier ones resolved, always in record order; the sink
   * must fix the order of a write's messages before its first `await` (appending them to a queue,
   * say), and the engine still acknowledges records in order.
   */
  readonly maxInFlight?: number;
  close(): Promise<void>;
  /**
   * Sinks that can undo writes made after a checkpoint: what to keep in it, read after every write
   * before the checkpoint's cut completed (a file sink: its file's length). `restore` gets it back
   * before `open`, after a restart, so the sink can drop what the crashed run wrote after the
   * checkpoint (which the restarted run writes again).
   */
  checkpoint?(): JsonValue;
  restore?(state: JsonValue): void;
  /**
   * Its writes become visible with the checkpoint's commit (they join the checkpoint's Kafka
   * transaction). Read after `open`. The records of such a sink, and of one with `checkpoint`, that
   * arrive after a checkpoint's cut are not written until that checkpoint committed.
   */
  readonly writesInCheckpoint?: boolean;
  /**
   * Called at every checkpoint after the sinks wrote everything handed to them and before the store
   * commits: under exactly-once what it writes here joins the checkpoint's transaction, after the
   * data (a repartition writes its watermark markers).
   */
  beforeCommit?(): Promise<void>;
}

export interface SinkDef<C = unknown> extends DefBase<C, Sink> {
  readonly family: 'sink';
  /** Schema of the value under the kind key: `sinks.<name>.<kind>`. */
  readonly schema: JsonSchema;
}

// Method parameters are bivariant, so a SourceDef<KafkaConfig> is a SourceDef<unknown>: the registry
// holds them as such, and each factory receives its config after schema validation.
export type ComponentDef = SourceDef<unknown> | FormatDef<unknown> | StepDef<unknown> | SinkDef<unknown>;

/** Dot-separated JSON paths (e.g. `sasl.password`) whose values are secrets, per component config. */
export const SECRET_KEYWORD = 'x-secret';
/** Marks a string property of a component schema as a JSONata expression (checked at validation). */
export const EXPRESSION_KEYWORD = 'x-jsonata';
