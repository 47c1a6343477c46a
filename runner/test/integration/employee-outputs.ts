/**
 * The employee pipeline run against a backlog of simulated Debezium events: what it must write,
 * computed from the produced events without any sluice code; a reader of its output topics; and
 * `sluice run` started as a process on its own topics. Shared by the restart matrix
 * (runner/test/integration/restart-matrix.integration.test.ts) and the chaos script (scripts/chaos.ts).
 */
import { silentLogger } from '../../src/engine/logger.ts';
import { createGroupConsumer, type FetchedMessage, type GroupConsumer, type KafkaProducer, type ProducedMessage } from '../../src/io/kafka/client.ts';
import { DebeziumEventStream } from './debezium-events.ts';
import { testConnection, uniqueName } from '../io/kafka/test-broker.ts';
import { runSluice, type SluiceProcess } from './sluice-process.ts';

export type { SluiceProcess };

export const HOUR = 3_600_000;
/** The spec's `lateness`. */
const LATENESS = 10 * 60_000;

export interface Expected {
  inserts: Set<number>;
  /** `employee/type/window_start` -> [count, total, average]. */
  summaries: Map<string, [number, number | null, number | null]>;
  /** Windows that end at or before this have closed once the whole backlog was read. */
  closedBy: number;
}

/**
 * The expected outputs, computed from the produced events without any sluice code. Events are
 * added batch by batch as they are produced, so a million of them need not stay in memory.
 */
export class ExpectedOutputs {
  private readonly inserts = new Set<number>();
  private readonly groups = new Map<string, { count: number; total: number; n: number }>();
  private readonly maxPerPartition: number[];

  constructor(partitions: number) {
    this.maxPerPartition = new Array<number>(partitions).fill(Number.NEGATIVE_INFINITY);
  }

  add(messages: readonly ProducedMessage[]): void {
    for (const m of messages) {
      if (m.value === null) continue;
      const envelope = JSON.parse(String(m.value)) as { payload: { op: string; after: Record<string, unknown> | null } };
      const { op, after } = envelope.payload;
      if (!after) continue;
      const at = Math.floor(Number(after.activity_timestamp) / 1000); // MicroTimestamp
      this.maxPerPartition[m.partition!] = Math.max(this.maxPerPartition[m.partition!]!, at);
      if (op !== 'c') continue;
      this.inserts.add(Number(after.id));
      const start = Math.floor(at / HOUR) * HOUR;
      const key = `${after.employee_id}/${after.activity_type}/${new Date(start).toISOString()}`;
      const g = this.groups.get(key) ?? { count: 0, total: 0, n: 0 };
      g.count++;
      if (typeof after.duration_seconds === 'number') {
        g.total += after.duration_seconds;
        g.n++;
      }
      this.groups.set(key, g);
    }
  }

  result(): Expected {
    const summaries = new Map<string, [number, number | null, number | null]>();
    for (const [key, g] of this.groups) summaries.set(key, [g.count, g.n ? g.total : null, g.n ? g.total / g.n : null]);
    return { inserts: this.inserts, summaries, closedBy: Math.min(...this.maxPerPartition) - LATENESS };
  }
}

export function windowStartOf(key: string): number {
  return Date.parse(key.slice(key.lastIndexOf('/') + 1));
}

/**
 * Reads the output topics (read_committed) for as long as a scenario runs. A scenario that restarts
 * the broker can leave kafkajs's consumer dead (a crash it does not restart) or joined but never
 * fetching again; the reader then starts a fresh one in a new group, from the beginning, and skips
 * the offsets it already read. It does so when its consumer crashed for good, or when nothing new
 * arrived for `restartWhenIdleMs` (only where a scenario asks for it). What sluice wrote is still
 * what is checked: a new consumer reads the same topics.
 */
export class OutputReader {
  readonly processed: number[] = [];
  readonly processedIds = new Set<number>();
  readonly summaries: { key: string; figures: [number, number | null, number | null] }[] = [];
  /** Records of the `late` topic, when the reader was given one (`options.late`): what went to the window's late port. */
  readonly late: Record<string, unknown>[] = [];
  /** What made the reader start a new consumer, for a failing test's message. */
  readonly restarts: string[] = [];
  private consumer: GroupConsumer | undefined;
  private stopped = false;
  private lastNewAt = Date.now();
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private replacing: Promise<void> | undefined;
  constructor(
    private readonly topics: Pick<EmployeeTopics, 'processed' | 'summaries'>,
    private readonly options: { late?: string; restartWhenIdleMs?: number } = {},
  ) {}

  async start(): Promise<void> {
    await this.open();
    const idleMs = this.options.restartWhenIdleMs;
    if (idleMs !== undefined) {
      this.watchdog = setInterval(() => {
        if (Date.now() - this.lastNewAt >= idleMs) this.replace(`nothing new for ${Math.round(idleMs / 1000)} s`);
      }, 1_000);
    }
  }

  private async open(): Promise<void> {
    const topics = [this.topics.processed, this.topics.summaries, ...(this.options.late !== undefined ? [this.options.late] : [])];
    const consumer = createGroupConsumer(
      testConnection('restart-matrix-reader'),
      { groupId: uniqueName('matrix-reader'), topics, fromBeginning: true, concurrency: 4 },
      silentLogger,
    );
    this.consumer = consumer;
    this.lastNewAt = Date.now();
    await consumer.start({
      onBatch: async (b) => this.take(b.topic, b.partition, b.messages),
      onRebalancing: () => {},
      onAssignment: () => {},
      onCrash: (err, restart) => {
        if (!restart && this.consumer === consumer) this.replace(`its consumer crashed for good: ${err.message}`);
      },
    });
  }

  /** Drops the consumer (without waiting for it to leave: it may never answer) and opens a new one. */
  private replace(why: string): void {
    if (this.stopped || this.replacing) return;
    this.restarts.push(`${why} (${this.processedIds.size} enriched and ${this.summaries.length} summaries read by then)`);
    const old = this.consumer;
    this.consumer = undefined;
    void old?.disconnect().catch(() => {});
    this.replacing = this.open()
      .catch((err: unknown) => {
        this.restarts.push(`a new consumer could not start: ${(err as Error).message}`);
        this.consumer = undefined;
      })
      .finally(() => {
        this.replacing = undefined;
        this.lastNewAt = Date.now();
      });
  }

  /** Offsets read so far: a reader restarted by a broker restart reads again from the start (it never commits). */
  private readonly seen = new Set<string>();

  private take(topic: string, partition: number, messages: FetchedMessage[]): void {
    for (const m of messages) {
      const at = `${topic}/${partition}/${m.offset}`;
      if (this.seen.has(at)) continue;
      this.seen.add(at);
      this.lastNewAt = Date.now();
      const v = JSON.parse(m.value!.toString('utf8')) as Record<string, unknown>;
      if (topic === this.options.late) this.late.push(v);
      else if (topic === this.topics.processed) {
        this.processed.push(Number(v.id));
        this.processedIds.add(Number(v.id));
      }
      else this.summaries.push({ key: `${v.employee_id}/${v.activity_type}/${v.window_start}`, figures: [v.activity_count as number, v.total_duration as number | null, v.avg_duration as number | null] });
    }
  }

  /** The highest offset read from a topic (all partitions), or -1. */
  lastOffsetRead(topic: string): number {
    let last = -1;
    for (const at of this.seen) if (at.startsWith(`${topic}/`)) last = Math.max(last, Number(at.slice(at.lastIndexOf('/') + 1)));
    return last;
  }

  distinctProcessed(): number {
    return this.processedIds.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.watchdog) clearInterval(this.watchdog);
    await this.replacing;
    await this.consumer?.disconnect();
  }
}


/** Hours that have closed once the whole backlog was read: every one must be summarised. */
export function closedHours(expected: Expected): string[] {
  return [...expected.summaries.keys()].filter((k) => windowStartOf(k) + HOUR <= expected.closedBy);
}

/** What the outputs read show against the expectation: missing and wrong records, and duplicates. */
export function compareOutputs(reader: OutputReader, expected: Expected) {
  const missing = [...expected.inserts].filter((id) => !reader.processedIds.has(id));
  const last = new Map<string, [number, number | null, number | null]>();
  for (const s of reader.summaries) last.set(s.key, s.figures);
  const wrong: string[] = [];
  for (const [key, figures] of last) {
    const want = expected.summaries.get(key);
    if (!want || want[0] !== figures[0] || want[1] !== figures[1] || !close(want[2], figures[2])) wrong.push(`${key}: got ${JSON.stringify(figures)}, want ${JSON.stringify(want)}`);
  }
  const unsummarised = closedHours(expected).filter((k) => !last.has(k));
  return {
    missing,
    wrong,
    unsummarised,
    summaries: last.size,
    processedDuplicates: reader.processed.length - reader.processedIds.size,
    summaryDuplicates: reader.summaries.length - last.size,
  };
}

/** The row id in a Debezium key. */
export function rowId(m: ProducedMessage): number {
  const key = JSON.parse(String(m.key)) as { payload: { id: number } };
  return key.payload.id;
}

function close(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a === b;
  return Math.abs(a - b) < 1e-9 * Math.max(1, Math.abs(a));
}

/** The topics one run of the employee pipeline writes. */
export interface EmployeeTopics {
  processed: string;
  summaries: string;
  late: string;
  dead: string;
}

/**
 * `sluice run <spec>` reading `input` in consumer group `group` (the spec names its state after it)
 * and writing `topics`.
 */
export function startSluice(spec: string, options: { input: string; group: string; topics: EmployeeTopics; brokers: string; cwd: string; args?: string[]; nodeArgs?: string[] }): SluiceProcess {
  const { input, group, topics } = options;
  const sets = [
    `sources.activities.kafka.topic=${input}`,
    // A killed member leaves the group only when its session times out: keep that short here.
    'sources.activities.kafka.session_timeout=6s',
    `sinks.processed.kafka.topic=${topics.processed}`,
    `sinks.summaries.kafka.topic=${topics.summaries}`,
    `sinks.late-activities.kafka.topic=${topics.late}`,
    `sinks.dead-letters.kafka.topic=${topics.dead}`,
  ].flatMap((s) => ['--set', s]);
  return runSluice(spec, { cwd: options.cwd, args: [...sets, ...(options.args ?? [])], env: { KAFKA_BROKERS: options.brokers, SLUICE_GROUP: group }, ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}) });
}

/** Whether a reader has seen every insert enriched and every closed hour summarised. */
export function allWritten(reader: OutputReader, expected: Expected): boolean {
  return reader.distinctProcessed() >= expected.inserts.size && new Set(reader.summaries.map((s) => s.key)).size >= closedHours(expected).length;
}

/**
 * Produces `events` simulated Debezium events into `input`, each to the partition of its row id
 * (so the expectation knows each partition's event times), and returns what the pipeline must write.
 */
export async function produceBacklog(producer: KafkaProducer, input: string, options: { events: number; partitions: number; seed: number; startMs: number }): Promise<Expected> {
  const backlog = new BacklogWriter(producer, input, options);
  await backlog.produce(options.events);
  return backlog.result();
}

/**
 * The simulated stream of produceBacklog, produced in parts (a test holds some back until after a
 * kill, so the run cannot have drained everything before it); `result()` covers all parts so far.
 */
export class BacklogWriter {
  private readonly stream: DebeziumEventStream;
  private readonly outputs: ExpectedOutputs;

  constructor(
    private readonly producer: KafkaProducer,
    input: string,
    private readonly options: { partitions: number; seed: number; startMs: number },
  ) {
    this.stream = new DebeziumEventStream(input, options.seed, options.startMs);
    this.outputs = new ExpectedOutputs(options.partitions);
  }

  async produce(events: number): Promise<void> {
    for (let done = 0; done < events; done += 5_000) {
      const batch = this.stream.take(Math.min(5_000, events - done)).messages.map((m) => ({ ...m, partition: rowId(m) % this.options.partitions }));
      await this.producer.send(batch);
      this.outputs.add(batch);
    }
  }

  result(): Expected {
    return this.outputs.result();
  }
}

/**
 * Produces a backlog whose partitions hold very different event-time ranges, all of it before any
 * reader starts: the backlog Kafka Streams gets wrong when it drains it through a repartition
 * (its stream time runs ahead with the partitions of later events, and the earlier events of the
 * others arrive after their windows closed). Events are the simulator's, in time order; the i-th
 * of `events` goes to `partitionOf(i / events, rowId)` (a fraction of the way through the
 * stream, so through its event time), and a tombstone follows its delete. Returns what the
 * pipeline must write and, per partition, the event-time range it holds.
 */
export async function produceSkewedBacklog(
  producer: KafkaProducer,
  input: string,
  options: {
    events: number;
    partitions: number;
    seed: number;
    startMs: number;
    partitionOf: (fraction: number, rowId: number) => number;
    /**
     * Events (by their place in the stream and their partition) not sent now but returned, for the
     * caller to send later; expected all the same. Holding back only a partition's last events
     * keeps each partition in time order.
     */
    holdBack?: (fraction: number, partition: number) => boolean;
  },
): Promise<Expected & { ranges: { partition: number; events: number; from: string; to: string }[]; heldBack: ProducedMessage[] }> {
  const stream = new DebeziumEventStream(input, options.seed, options.startMs);
  const outputs = new ExpectedOutputs(options.partitions);
  const ranges = Array.from({ length: options.partitions }, (_, partition) => ({ partition, events: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY }));
  const heldBack: ProducedMessage[] = [];
  let index = 0;
  let lastPartition = 0;
  let lastHeld = false;
  for (let done = 0; done < options.events; done += 5_000) {
    const held: boolean[] = [];
    const batch = stream.take(Math.min(5_000, options.events - done)).messages.map((m) => {
      // A tombstone (no value) right after its delete: to the delete's partition, sent with it.
      const partition = m.value === null ? lastPartition : options.partitionOf(index / options.events, rowId(m));
      const hold = m.value === null ? lastHeld : (options.holdBack?.(index / options.events, partition) ?? false);
      held.push(hold);
      index++;
      lastPartition = partition;
      lastHeld = hold;
      if (partition < 0 || partition >= options.partitions || !Number.isInteger(partition)) throw new Error(`partitionOf gave ${partition}`);
      const r = ranges[partition]!;
      r.events++;
      const after = m.value === null ? null : (JSON.parse(String(m.value)) as { payload: { after: { activity_timestamp?: number } | null } }).payload.after;
      if (after && typeof after.activity_timestamp === 'number') {
        const at = Math.floor(after.activity_timestamp / 1000);
        r.min = Math.min(r.min, at);
        r.max = Math.max(r.max, at);
      }
      return { ...m, partition };
    });
    const now = batch.filter((_, i) => !held[i]);
    heldBack.push(...batch.filter((_, i) => held[i]));
    if (now.length > 0) await producer.send(now);
    outputs.add(batch);
  }
  const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : '-');
  return { ...outputs.result(), ranges: ranges.map((r) => ({ partition: r.partition, events: r.events, from: iso(r.min), to: iso(r.max) })), heldBack };
}
