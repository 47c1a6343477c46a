/**
 * `kafka` source: consumes topics as a consumer group. Partitions are read concurrently, each in
 * offset order; each fetched batch becomes one RawBatch with one Ack. Offsets are committed only
 * up to the highest position whose batch, and every batch before it, was acknowledged downstream
 * (at-least-once: a crash re-delivers, never loses).
 */
import { randomUUID } from 'node:crypto';
import { Ack } from '../../engine/ack.ts';
import type { ComponentContext, RawBatch, Source, SourceDef, SourceHealth, SourceOutput } from '../../engine/component.ts';
import { settleWithin } from '../../engine/deadline.ts';
import { parseDuration } from '../../engine/duration.ts';
import { ConfigError, ConnectionError, RecordError, errorMessage } from '../../engine/errors.ts';
import type { MetricDefinition } from '../../engine/metrics.ts';
import { OffsetTracker } from '../../engine/offset-tracker.ts';
import { RefusedValue, type RawMessage } from '../../engine/record.ts';
import { duration, object, PLAIN_PATH_PATTERN } from '../../engine/schema.ts';
import {
  createAdmin,
  createGroupConsumer,
  type BatchControl,
  type ConsumerOptions,
  type FetchedBatch,
  type GroupConsumer,
  type KafkaAdmin,
  type TopicPartition,
} from '../../io/kafka/client.ts';
import {
  connectionFromConfig,
  connectionSchemaProperties,
  describeConnectionConfig,
  type ConnectionConfig,
  type KafkaConnection,
} from '../../io/kafka/connection.ts';

export interface KafkaSourceConfig extends ConnectionConfig {
  topic?: string;
  topics?: string[];
  topic_pattern?: string;
  group: string;
  start?: 'earliest' | 'latest';
  commit_interval?: string;
  concurrency?: number;
  max_message_bytes?: number;
  session_timeout?: string;
  isolation?: 'read_committed' | 'read_uncommitted';
  fetch_max_bytes?: number;
  max_wait?: string;
  /** Field paths of the decoded value the topic is partitioned by; read only by the stage split (plan/stages.ts). */
  partitioned_by?: string[];
  /** Every partition from the start, in a group of its own, committing nothing: a global table's input. */
  global?: boolean;
}

const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576;
/** How often the source asks for end offsets to say which partitions it has read to their end. */
const CAUGHT_UP_INTERVAL_MS = 500;

/** Headers of an oversized message's dead letter: its size, and where the original is (its value is left out). */
export const ERROR_SIZE_HEADER = 'sluice-error-size';
export const ERROR_TOPIC_HEADER = 'sluice-error-topic';
export const ERROR_PARTITION_HEADER = 'sluice-error-partition';
export const ERROR_OFFSET_HEADER = 'sluice-error-offset';

/** An oversized message's key is kept in its dead letter up to this size: an id, not a payload. */
const MAX_DEAD_LETTER_KEY_BYTES = 1024;

const schema = object(
  'Consume Kafka topics as a consumer group. Set exactly one of `topic`, `topics`, `topic_pattern`.',
  {
    ...connectionSchemaProperties(),
    topic: { type: 'string', minLength: 1, description: 'The topic to read.', examples: ['employee-server.public.employee_activities'] },
    topics: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      minItems: 1,
      description: 'Several topics to read.',
      examples: [['orders', 'refunds']],
    },
    topic_pattern: {
      type: 'string',
      minLength: 1,
      description: 'A regular expression over topic names, matched against the topics that exist at start.',
      examples: ['^employee-server\\.public\\..*'],
    },
    group: {
      type: 'string',
      minLength: 1,
      description: 'Consumer group id. Committed offsets belong to it: runners with the same group share the partitions.',
      examples: ['employee-activity'],
    },
    start: {
      type: 'string',
      enum: ['earliest', 'latest'],
      default: 'earliest',
      description:
        "Where to begin on a partition for which the group has no committed offset. `earliest` (the default, as in Kafka Streams) reads what the topic retains, so a pipeline that crashed before its first commit reads its first input again instead of losing it; `latest` starts at the end and skips what was written before the group's first commit.",
      examples: ['latest'],
    },
    commit_interval: duration('How often completed offsets are committed (also on rebalance and stop).', ['1s', '5s']),
    concurrency: {
      type: 'integer',
      minimum: 1,
      maximum: 256,
      default: 6,
      description: 'Partitions handed to the pipeline concurrently; order within each partition is kept.',
      examples: [6],
    },
    global: {
      type: 'boolean',
      default: false,
      description:
        "Read every partition of the topic from its start on every run, committing nothing, as Kafka Streams' global tables do: for the input of a `table` step that every process (or, when the pipeline runs as tasks, every task) needs whole, such as a few thousand employees. The consumer joins a group of its own, `<group>-global-<random>`, so it shares nothing with other readers; `start` is ignored. With checkpoints, what the restored state already holds is skipped. A pipeline whose other sources are all global still runs as tasks, one per partition of its one non-global source.",
      examples: [true],
    },
    max_message_bytes: {
      type: 'integer',
      minimum: 1,
      default: DEFAULT_MAX_MESSAGE_BYTES,
      description:
        'A message whose key plus value is larger is not decoded: it goes to `<source>.errors` (and so to a dead-letter sink) with its size in the header `sluice-error-size` and its topic, partition and offset in `sluice-error-topic`, `-partition`, `-offset`; its value is left out (null), its key kept up to 1 KiB. Counted in `sluice_kafka_oversized_total`.',
      examples: [1048576],
    },
    session_timeout: duration(
      'How long the group waits for a silent member before it reassigns its partitions. The source heartbeats every 3 s, also while a batch waits for room in the pipeline and between batches, so a member busy with a backlog stays in the group.',
      ['30s'],
    ),
    isolation: {
      type: 'string',
      enum: ['read_committed', 'read_uncommitted'],
      default: 'read_committed',
      description:
        '`read_committed`: messages of open or aborted transactions are never read (what an exactly-once producer upstream, sluice included, needs). `read_uncommitted`: everything, as soon as it is written.',
      examples: ['read_committed'],
    },
    fetch_max_bytes: {
      type: 'integer',
      minimum: 1024,
      description:
        'How many bytes a fetch asks for per partition, compressed (Kafka\'s `max.partition.fetch.bytes`). Unset, sluice sets it per topic from what the topic\'s records decompress to: up to 1 MiB, less for a topic that compresses well, so that a partition\'s fetch brings about 8 MiB of records (gzip-compressed Debezium events with schemas, about 30 times smaller compressed, get about 256 KiB). The fetch of each partition is held decompressed while its records are processed, so memory grows with what it brings times the partitions read; a set value is used as it is (see docs/operations.md, Memory). A larger message is still fetched whole.',
      examples: [1048576],
    },
    max_wait: duration('How long the broker may hold a fetch open waiting for new messages (Kafka\'s `fetch.max.wait.ms`); a message that arrives is returned at once.', ['500ms']),
    partitioned_by: {
      type: 'array',
      minItems: 1,
      description:
        "Field paths of the decoded value that the topic is partitioned by: messages with equal values of these fields are in the same partition (a producer that keys its messages by `employee_id`: `[employee_id]`). Only matters when the pipeline runs as tasks, one per partition (this is its only source and its state is kept in Kafka, the default for such a pipeline): a window whose plain `group_by` paths include all of these fields, with no `set` before it assigning one of them, then reads the topic directly instead of through a repartition topic. Default: unknown, so every grouped window repartitions. A Debezium topic is keyed by the row's primary key, which you may declare here (`[id]`). Declare only what the producer guarantees: a wrong declaration splits a group's records over tasks, and each task then emits its own partial result.",
      examples: [['employee_id'], ['id']],
      items: {
        type: 'string',
        pattern: PLAIN_PATH_PATTERN,
        description: 'A plain field path of the decoded value, such as `employee_id` or `user.id`.',
        examples: ['employee_id', 'user.id'],
      },
    },
  },
  ['brokers', 'group'],
  {
    oneOf: [{ required: ['topic'] }, { required: ['topics'] }, { required: ['topic_pattern'] }],
    examples: [
      {
        brokers: '${KAFKA_BROKERS:-localhost:9092}',
        topic: 'employee-server.public.employee_activities',
        group: 'employee-activity',
        start: 'earliest',
      },
    ],
  },
);

/** The subscription a config asks for. Throws ConfigError unless exactly one form is given. */
export function subscriptionOf(config: Pick<KafkaSourceConfig, 'topic' | 'topics' | 'topic_pattern'>, where: string): (string | RegExp)[] {
  const given = [config.topic, config.topics, config.topic_pattern].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new ConfigError('E_KAFKA_TOPIC', 'set exactly one of `topic`, `topics` and `topic_pattern`', where);
  }
  if (config.topic !== undefined) return [config.topic];
  if (config.topics !== undefined) return [...config.topics];
  try {
    return [new RegExp(config.topic_pattern!)];
  } catch (err) {
    throw new ConfigError('E_KAFKA_TOPIC', `\`topic_pattern\` is not a regular expression: ${errorMessage(err)}`, where);
  }
}

export const CONSUMER_LAG = 'sluice_kafka_consumer_lag_messages';
export const FETCH_BYTES = 'sluice_kafka_fetch_bytes';
export const OVERSIZED = 'sluice_kafka_oversized_total';

export const KAFKA_SOURCE_METRICS: readonly MetricDefinition[] = [
  {
    name: CONSUMER_LAG,
    type: 'gauge',
    help: "Messages in a partition the source's consumer group has not committed yet: the broker's high watermark minus the group's committed offset (as Kafka UI and kafka-consumer-groups show it).",
    labels: ['node', 'topic', 'partition'],
  },
  { name: OVERSIZED, type: 'counter', help: 'Messages larger than max_message_bytes, sent to the errors port with their value left out.', labels: ['node'] },
  { name: 'sluice_kafka_commits_total', type: 'counter', help: 'Offset commits of the consumer group.', labels: ['node'] },
  { name: 'sluice_kafka_consumer_crashes_total', type: 'counter', help: 'Times the consumer failed (kafkajs restarts it from the committed offsets).', labels: ['node'] },
  {
    name: FETCH_BYTES,
    type: 'gauge',
    help: "What a fetch asks for per partition of the topic, compressed: fetch_max_bytes when set, otherwise what sluice adapted it to from the topic's compression (1 MiB at most).",
    labels: ['node', 'topic'],
  },
];

/** Lag is refreshed at most this often, however often it is scraped: two small admin requests per topic. */
const LAG_REFRESH_MS = 2_000;

/** How often the source asks whether a heartbeat is due, at most. */
const HEARTBEAT_CHECK_MS = 500;

/**
 * How often to ask for a heartbeat, during batches and between them: kafkajs's heartbeat() sends
 * only once its interval has passed since the last one, so asking often costs nothing and keeps the
 * gap near the interval. Asking once per interval from the start of each wait for room in the
 * pipeline did not: a wait a little shorter than the interval never asked, and kafkajs's own check
 * after each batch then came every second batch, 6 s apart under a backlog. A member that joins
 * waits until every busy member has heard of the rebalance from a heartbeat, so those gaps kept a
 * second thread or process idle as long.
 */
export function heartbeatCheckMs(heartbeatIntervalMs: number): number {
  return Math.max(1, Math.min(HEARTBEAT_CHECK_MS, Math.floor(heartbeatIntervalMs / 6)));
}

/**
 * A partition's consumer lag: messages after the group's committed offset up to the high
 * watermark. A partition the group never committed counts from where the group will start.
 */
export function consumerLag(offsets: { low: string; high: string }, committed: string | undefined, start: 'earliest' | 'latest'): number {
  const high = BigInt(offsets.high);
  const from = committed !== undefined && BigInt(committed) >= 0n ? BigInt(committed) : start === 'earliest' ? BigInt(offsets.low) : high;
  return Number(high > from ? high - from : 0n);
}

/** The engine-wide partition id of a Kafka partition: `<source>/<topic>/<partition>`. */
export function partitionId(source: string, topic: string, partition: number): string {
  return `${source}/${topic}/${partition}`;
}

/** What happened to a group's assignment: partitions gained and lost, by their keys. */
export function assignmentChange(
  owned: ReadonlySet<string>,
  assigned: readonly string[],
): { gained: string[]; lost: string[] } {
  const next = new Set(assigned);
  return {
    gained: assigned.filter((k) => !owned.has(k)),
    lost: [...owned].filter((k) => !next.has(k)),
  };
}

/**
 * Messages of a batch this partition has not handed over yet. After a rebalance kafkajs fetches
 * again from the committed offset; messages still in flight in this process are not sent twice.
 */
export function unseenMessages<M extends { offset: string }>(messages: readonly M[], nextOffset: bigint | undefined): readonly M[] {
  if (nextOffset === undefined || messages.length === 0) return messages;
  // Offsets rise within a batch: the usual case (nothing re-fetched) costs one comparison.
  if (BigInt(messages[0]!.offset) >= nextOffset) return messages;
  return messages.filter((m) => BigInt(m.offset) >= nextOffset);
}

/** Per-partition state while this member owns the partition. A new object after every (re)gain. */
interface OwnedPartition {
  readonly topic: string;
  readonly partition: number;
  readonly id: string;
  /** The next offset not yet handed to the pipeline. */
  next: bigint | undefined;
  /** The next offset after what the pipeline has accepted (its emit resolved): what `caughtUp` may claim. */
  handedOver: bigint | undefined;
  /** The last offset committed by this member (the committed value is this + 1). */
  committed: string | undefined;
}

const keyOf = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;

/** How the source gets its consumer; tests pass a fake to drive batches and assignments by hand. */
export type ConsumerFactory = (conn: KafkaConnection, options: ConsumerOptions, logger: ComponentContext['logger']) => GroupConsumer;

/** How the source gets the admin connection it reads consumer lag with. */
export type AdminFactory = (conn: KafkaConnection, logger: ComponentContext['logger']) => KafkaAdmin;

export class KafkaSource implements Source {
  readonly bounded = false;
  private readonly tracker = new OffsetTracker();
  private readonly owned = new Map<string, OwnedPartition>();
  private consumer: GroupConsumer | undefined;
  private out: SourceOutput | undefined;
  private commitTimer: ReturnType<typeof setInterval> | undefined;
  private caughtUpTimer: ReturnType<typeof setInterval> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * The heartbeat of the generation this member is in, from its last batch; undefined from a
   * rebalance or a restart of the consumer until the next batch. kafkajs has no heartbeat thread:
   * it heartbeats only after a batch, so a fetch that took long under a backlog left the group
   * without one for 9 s (two threads, 100,000-event drain); the timer asks meanwhile.
   */
  private heartbeatControl: BatchControl | undefined;
  /** A heartbeat's failure in this generation (the group is rebalancing): kafkajs hears it at the next batch. */
  private groupError: unknown;
  /** Counts assignments: a heartbeat's failure from before the last one is old news. */
  private assignments = 0;
  private checkingCaughtUp: Promise<void> | undefined;
  private committing: Promise<void> = Promise.resolve();
  private stopping = false;
  private finish: ((err?: Error) => void) | undefined;
  private readonly subscription: (string | RegExp)[];
  private admin: KafkaAdmin | undefined;
  private adminConnected: Promise<void> | undefined;
  private lagRefresh: Promise<void> | undefined;
  private lagRefreshedAt = 0;
  /** Partitions whose lag series is published, by key, so a revoked one's series is removed. */
  private readonly lagSeries = new Map<string, { node: string; topic: string; partition: string }>();
  /** Unregisters the scrape-time collector (lag and fetch sizes). */
  private unregisterCollector: (() => void) | undefined;
  /** Topics whose FETCH_BYTES series this source published. */
  private fetchBytesTopics = new Set<string>();

  constructor(
    private readonly config: KafkaSourceConfig,
    private readonly connection: KafkaConnection,
    private readonly ctx: ComponentContext,
    private readonly makeConsumer: ConsumerFactory = createGroupConsumer,
    private readonly makeAdmin: AdminFactory = createAdmin,
  ) {
    this.subscription = subscriptionOf(config, `sources.${ctx.name}`);
    ctx.metrics.define(...KAFKA_SOURCE_METRICS);
  }

  /**
   * Connected while the group's brokers answer: an idle consumer still fetches every 500 ms and
   * heartbeats every few seconds, so no answer for a few heartbeats means they are out of reach.
   */
  health(): SourceHealth {
    const at = this.consumer?.lastContactAt();
    const within = Math.max(10_000, 3 * (this.consumer?.heartbeatIntervalMs ?? 3_000));
    if (at === undefined) return { connected: false, detail: `not joined to group ${this.config.group} at ${this.connection.brokers.join(',')}` };
    const silent = Date.now() - at;
    if (silent > within) return { connected: false, detail: `no answer from ${this.connection.brokers.join(',')} for ${Math.round(silent / 1000)} s` };
    return { connected: true };
  }

  /** Refreshes the lag gauges of the partitions this member owns; called before a scrape, at most every LAG_REFRESH_MS. */
  refreshLag(): Promise<void> {
    // Lag is measured against committed offsets, which a global reader never has.
    if (this.config.global) return Promise.resolve();
    if (this.lagRefresh) return this.lagRefresh;
    if (Date.now() - this.lagRefreshedAt < LAG_REFRESH_MS) return Promise.resolve();
    this.lagRefresh = this.readLag().finally(() => {
      this.lagRefresh = undefined;
      this.lagRefreshedAt = Date.now();
    });
    return this.lagRefresh;
  }

  private async readLag(): Promise<void> {
    const owned = [...this.owned.values()];
    const byTopic = new Map<string, OwnedPartition[]>();
    for (const p of owned) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
    const admin = await this.adminClient();
    const start = this.config.start ?? 'earliest';
    const seen = new Set<string>();
    for (const [topic, partitions] of byTopic) {
      const [offsets, committed] = await Promise.all([admin.topicOffsets(topic), admin.committedOffsets(this.config.group, topic)]);
      for (const p of partitions) {
        const o = offsets.get(p.partition);
        if (!o) continue;
        const labels = { node: this.ctx.name, topic, partition: String(p.partition) };
        const key = keyOf(p);
        this.ctx.metrics.set(CONSUMER_LAG, labels, consumerLag(o, committed.get(p.partition), start));
        this.lagSeries.set(key, labels);
        seen.add(key);
      }
    }
    this.dropLagSeries((key) => !seen.has(key));
  }

  /** The one admin client of this source (lag and end offsets), connected on first use. */
  private async adminClient(): Promise<KafkaAdmin> {
    if (!this.admin) {
      const admin = this.makeAdmin(this.connection, this.ctx.logger);
      this.admin = admin;
      // A failed connect is tried again by the next caller.
      this.adminConnected = admin.connect().catch((err: unknown) => {
        if (this.admin === admin) this.admin = undefined;
        throw err;
      });
    }
    await this.adminConnected;
    return this.admin;
  }

  /** The fetch size of each topic this member reads now (a scrape's; a lookup per topic). */
  private publishFetchBytes(): void {
    const consumer = this.consumer;
    if (!consumer) return;
    const topics = new Set([...this.owned.values()].map((p) => p.topic));
    for (const topic of topics) this.ctx.metrics.set(FETCH_BYTES, { node: this.ctx.name, topic }, consumer.fetchBytes(topic));
    this.dropFetchBytesSeries(topics);
  }

  /** Removes the FETCH_BYTES series of topics not in `kept`, and remembers `kept` as published. */
  private dropFetchBytesSeries(kept: Set<string>): void {
    for (const topic of this.fetchBytesTopics) if (!kept.has(topic)) this.ctx.metrics.remove(FETCH_BYTES, { node: this.ctx.name, topic });
    this.fetchBytesTopics = kept;
  }

  private dropLagSeries(which: (key: string) => boolean): void {
    for (const [key, labels] of this.lagSeries) {
      if (!which(key)) continue;
      this.ctx.metrics.remove(CONSUMER_LAG, labels);
      this.lagSeries.delete(key);
    }
  }

  run(out: SourceOutput): Promise<void> {
    this.out = out;
    this.unregisterCollector ??= this.ctx.metrics.addCollector(() => {
      this.publishFetchBytes();
      return this.refreshLag();
    });
    const done = new Promise<void>((resolve, reject) => {
      this.finish = (err) => (err ? reject(err) : resolve());
    });
    const consumer = this.makeConsumer(
      this.connection,
      {
        // kafkajs cannot assign partitions by hand: a group of its own gets them all.
        groupId: this.config.global ? `${this.config.group}-global-${randomUUID()}` : this.config.group,
        topics: this.subscription,
        fromBeginning: this.config.global === true || (this.config.start ?? 'earliest') === 'earliest',
        concurrency: this.config.concurrency ?? 6,
        sessionTimeoutMs: this.config.session_timeout ? parseDuration(this.config.session_timeout) : 30_000,
        isolation: this.config.isolation ?? 'read_committed',
        // Unset: the client adapts it to the topic's compression (io/kafka/fetch-sizes.ts).
        ...(this.config.fetch_max_bytes !== undefined ? { maxBytesPerPartition: this.config.fetch_max_bytes } : {}),
        ...(this.config.max_wait ? { maxWaitMs: parseDuration(this.config.max_wait) } : {}),
      },
      this.ctx.logger,
    );
    this.consumer = consumer;
    consumer
      .start({
        onBatch: (batch, control) => this.onBatch(batch, control),
        onRebalancing: () => {
          this.heartbeatControl = undefined;
          this.ctx.logger.info({ group: this.config.group }, 'kafka group rebalancing: committing completed offsets');
          void this.commit();
        },
        onAssignment: (assigned) => this.onAssignment(assigned),
        onCrash: (error, restarting) => {
          // A restarted consumer is a new member: the old heartbeat is not its.
          this.heartbeatControl = undefined;
          this.groupError = undefined;
          this.ctx.metrics.inc('sluice_kafka_consumer_crashes_total', { node: this.ctx.name });
          if (restarting) {
            this.ctx.logger.warn({ error: error.message }, 'kafka consumer failed; restarting from the committed offsets');
          } else {
            this.fail(new ConnectionError('E_KAFKA_CONSUMER', `kafka consumer stopped: ${error.message}`, `sources.${this.ctx.name}`, { cause: error }));
          }
        },
      })
      .then(
        () => {
          const interval = this.config.commit_interval ? parseDuration(this.config.commit_interval) : 1_000;
          this.commitTimer = setInterval(() => void this.commit(), interval);
          this.commitTimer.unref?.();
          this.caughtUpTimer = setInterval(() => {
            if (this.checkingCaughtUp) return;
            this.checkingCaughtUp = this.reportCaughtUp()
              .catch((err: unknown) => this.ctx.logger.debug({ error: errorMessage(err) }, 'kafka end offsets: not read this time'))
              .finally(() => (this.checkingCaughtUp = undefined));
          }, CAUGHT_UP_INTERVAL_MS);
          this.caughtUpTimer.unref?.();
          this.heartbeatTimer = setInterval(() => this.heartbeatBetweenBatches(), heartbeatCheckMs(consumer.heartbeatIntervalMs));
          this.heartbeatTimer.unref?.();
        },
        (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
      );
    return done;
  }

  private fail(err: Error): void {
    this.stopping = true;
    this.finish?.(err);
    this.finish = undefined;
  }

  /**
   * Asks for a heartbeat (kafkajs sends it only when due); a failure waits for the next batch. Also
   * while stopping: the member stays in the group until close() leaves it, after the drain.
   */
  private heartbeatBetweenBatches(): void {
    const control = this.heartbeatControl;
    if (!control) return;
    const assignments = this.assignments;
    control.heartbeat().catch((err: unknown) => {
      if (assignments === this.assignments) this.groupError ??= err;
    });
  }

  private onAssignment(assigned: TopicPartition[]): void {
    this.assignments++;
    this.groupError = undefined;
    const byKey = new Map(assigned.map((tp) => [keyOf(tp), tp]));
    const { gained, lost } = assignmentChange(new Set(this.owned.keys()), [...byKey.keys()]);
    const lostIds: string[] = [];
    for (const k of lost) {
      const p = this.owned.get(k)!;
      // Its new owner starts from the committed offset; later completions here must not commit.
      this.tracker.revoke(p.id);
      this.owned.delete(k);
      this.dropLagSeries((key) => key === k);
      lostIds.push(p.id);
    }
    const gainedIds: string[] = [];
    for (const k of gained) {
      const tp = byKey.get(k)!;
      const id = partitionId(this.ctx.name, tp.topic, tp.partition);
      this.owned.set(k, { topic: tp.topic, partition: tp.partition, id, next: undefined, handedOver: undefined, committed: undefined });
      gainedIds.push(id);
    }
    if (lostIds.length) this.out?.revoke(lostIds);
    if (gainedIds.length) this.out?.assign(gainedIds);
    this.ctx.logger.info({ assigned: assigned.length, gained: gainedIds.length, lost: lostIds.length }, 'kafka partitions assigned');
  }

  private async onBatch(batch: FetchedBatch, control: BatchControl): Promise<void> {
    if (this.stopping || control.isStale()) return;
    this.heartbeatControl = control;
    // The group rebalanced while this member fetched: let kafkajs rejoin now, before this batch.
    this.throwGroupError();
    const key = keyOf(batch);
    let owned = this.owned.get(key);
    if (!owned) {
      // A batch can race the assignment event; the partition is ours if kafkajs fetched it.
      this.onAssignment([...[...this.owned.values()].map(({ topic, partition }) => ({ topic, partition })), batch]);
      owned = this.owned.get(key)!;
    }
    const fresh = unseenMessages(batch.messages, owned.next);
    if (fresh.length === 0) {
      // Only what was read before (or transaction markers): nothing left to hand over below it.
      const after = BigInt(batch.lastOffset) + 1n;
      if (owned.next !== undefined && after <= owned.next && (owned.handedOver === undefined || owned.handedOver < owned.next)) owned.handedOver = owned.next;
      return;
    }
    const lastOffset = BigInt(batch.lastOffset) >= BigInt(fresh[fresh.length - 1]!.offset) ? batch.lastOffset : fresh[fresh.length - 1]!.offset;
    owned.next = BigInt(lastOffset) + 1n;

    const limit = this.config.max_message_bytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const messages: RawMessage[] = [];
    for (const m of fresh) {
      const message: RawMessage = {
        key: m.key,
        value: m.value,
        headers: m.headers,
        timestamp: m.timestamp,
        position: { source: this.ctx.name, partition: owned.id, offset: m.offset },
        meta: { topic: owned.topic, partition: owned.partition, offset: m.offset },
      };
      if (m.size > limit) {
        this.ctx.metrics.inc(OVERSIZED, { node: this.ctx.name });
        messages.push(this.oversized(message, owned, m.size, limit));
        continue;
      }
      messages.push(message);
    }

    // One tracker entry per batch: the Ack completes for the whole batch at once.
    this.tracker.track(owned.id, lastOffset);
    const id = owned.id;
    const ack = new Ack(() => {
      if (this.owned.get(key) === owned) this.tracker.complete(id, lastOffset);
    });
    if (messages.length === 0) {
      ack.seal();
      return;
    }
    const raw: RawBatch = { partition: id, messages, ack };
    await this.handOver(raw);
    if (this.owned.get(key) === owned) owned.handedOver = BigInt(lastOffset) + 1n;
  }

  /**
   * Tells the pipeline which partitions it has read to their end, as of a time just before asking
   * the brokers for the end offsets: a record any consumer got before then was written before
   * then, so everything before it in these partitions is already handed over. A join waits for
   * this instead of a table's silence (see SourceOutput.caughtUp).
   */
  private async reportCaughtUp(): Promise<void> {
    const out = this.out;
    if (!out?.caughtUp || this.stopping || this.owned.size === 0) return;
    const at = this.ctx.clock.now();
    const admin = await this.adminClient();
    const topics = new Set([...this.owned.values()].map((p) => p.topic));
    const caught: string[] = [];
    for (const topic of topics) {
      const offsets = await admin.topicOffsets(topic);
      for (const p of this.owned.values()) {
        if (p.topic !== topic) continue;
        const o = offsets.get(p.partition);
        if (!o) continue;
        const high = BigInt(o.high);
        // An empty partition (or one whose records all expired) is read to its end from the start.
        if (high <= BigInt(o.low) || (p.handedOver !== undefined && p.handedOver >= high)) caught.push(p.id);
      }
    }
    if (!this.stopping) out.caughtUp(caught, at);
  }

  /**
   * A message over `max_message_bytes`, as `<source>.errors` gets it. Its value is left out, not cut:
   * a cut message cannot be replayed, and a dead-letter topic would refuse it whole (its limit is
   * the brokers' default too). The headers say how large it was and where to read the original
   * while the topic retains it.
   */
  private oversized(message: RawMessage, owned: OwnedPartition, size: number, limit: number): RawMessage {
    const offset = message.position.offset;
    const error = new RecordError(
      'E_MESSAGE_TOO_LARGE',
      `message of ${size} bytes is larger than max_message_bytes (${limit}); its value is left out, read it at ${owned.topic} partition ${owned.partition} offset ${offset}`,
      `sources.${this.ctx.name}`,
    );
    const key = message.key;
    return {
      ...message,
      key: Buffer.isBuffer(key) && key.length > MAX_DEAD_LETTER_KEY_BYTES ? null : key,
      value: new RefusedValue(error),
      headers: {
        ...message.headers,
        [ERROR_SIZE_HEADER]: String(size),
        [ERROR_TOPIC_HEADER]: owned.topic,
        [ERROR_PARTITION_HEADER]: String(owned.partition),
        [ERROR_OFFSET_HEADER]: offset,
      },
    };
  }

  /** Hands a batch over (the heartbeat timer keeps the group membership alive while the pipeline is full). */
  private async handOver(raw: RawBatch): Promise<void> {
    try {
      await this.out!.emit(raw);
    } catch (err) {
      // The pipeline failed: stop reading; the runtime reports the cause.
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    // A rebalance seen while waiting: let kafkajs re-join now rather than at its next heartbeat.
    this.throwGroupError();
  }

  /** Throws, once, what a heartbeat heard (the group is rebalancing): kafkajs then rejoins. */
  private throwGroupError(): void {
    const err = this.groupError;
    if (err === undefined) return;
    this.groupError = undefined;
    throw err;
  }

  /** Commits, per owned partition, the offset after the last completed one, if it moved. One commit at a time. */
  commit(): Promise<void> {
    this.committing = this.committing.then(() => this.commitOnce());
    return this.committing;
  }

  private async commitOnce(): Promise<void> {
    const consumer = this.consumer;
    // A global reader starts from the beginning every time: it has nothing to commit.
    if (!consumer || this.config.global) return;
    const offsets: (TopicPartition & { offset: string })[] = [];
    const owners: [OwnedPartition, string][] = [];
    for (const p of this.owned.values()) {
      const done = this.tracker.committable(p.id);
      if (done === undefined || done === p.committed) continue;
      offsets.push({ topic: p.topic, partition: p.partition, offset: (BigInt(done) + 1n).toString() });
      owners.push([p, done]);
    }
    if (offsets.length === 0) return;
    try {
      await consumer.commit(offsets);
      for (const [p, done] of owners) p.committed = done;
      this.ctx.metrics.inc('sluice_kafka_commits_total', { node: this.ctx.name });
    } catch (err) {
      // Not fatal: the next commit carries the same or higher offsets; a crash re-delivers.
      this.ctx.logger.warn({ error: errorMessage(err), partitions: offsets.length }, 'kafka offset commit failed; will retry');
    }
  }

  async stop(): Promise<void> {
    if (this.stopping) {
      this.finish?.();
      this.finish = undefined;
      return;
    }
    this.stopping = true;
    try {
      this.consumer?.pause([...this.owned.values()].map(({ topic, partition }) => ({ topic, partition })));
    } catch (err) {
      // kafkajs refuses to pause a consumer it is restarting (after a crash, until it rejoins).
      // What it fetches after it rejoins is not handed over while stopping; close() disconnects it.
      this.ctx.logger.debug({ error: errorMessage(err) }, 'kafka consumer not paused (restarting): its batches are ignored from now on');
    } finally {
      // run() must end whatever the consumer does: a stage waits for it before its restart.
      this.finish?.();
      this.finish = undefined;
    }
  }

  async close(): Promise<void> {
    if (this.commitTimer) clearInterval(this.commitTimer);
    this.commitTimer = undefined;
    if (this.caughtUpTimer) clearInterval(this.caughtUpTimer);
    this.caughtUpTimer = undefined;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.heartbeatControl = undefined;
    this.stopping = true;
    this.unregisterCollector?.();
    this.unregisterCollector = undefined;
    // Each wait is bounded: with the brokers out of reach they could last until they return, and a
    // consumer that was never disconnected then rejoins its group and holds partitions nobody reads.
    await boundedWait(this.lagRefresh);
    await boundedWait(this.checkingCaughtUp);
    this.dropLagSeries(() => true);
    this.dropFetchBytesSeries(new Set());
    await boundedWait(this.admin?.close());
    this.admin = undefined;
    this.adminConnected = undefined;
    if (!this.consumer) return;
    await boundedWait(this.commit());
    await this.consumer.disconnect().catch((err: unknown) => this.ctx.logger.warn({ error: errorMessage(err) }, 'kafka consumer disconnect failed'));
    this.consumer = undefined;
  }
}

/** How long close() waits for each step before the consumer disconnects anyway. */
const CLOSE_STEP_MS = 2_000;

/** Resolves when `work` settles (either way) or after CLOSE_STEP_MS, whichever comes first. */
async function boundedWait(work: Promise<unknown> | undefined): Promise<void> {
  if (work) await settleWithin(work, CLOSE_STEP_MS, 'close step').catch(() => {});
}

export function describeKafkaSource(config: KafkaSourceConfig): string {
  const what = config.topic ?? config.topics?.join(', ') ?? `/${config.topic_pattern}/`;
  const conn = describeConnectionConfig(config);
  if (config.global) return `kafka ${what}, every partition from the start (global), at ${conn}`;
  return `kafka ${what} as group ${config.group}, from ${config.start ?? 'earliest'} when uncommitted, at ${conn}`;
}

export const kafkaSource: SourceDef<KafkaSourceConfig> = {
  family: 'source',
  name: 'kafka',
  summary: 'Consume Kafka topics as a consumer group, committing offsets only after the sinks acknowledged the output.',
  description: [
    'Partitions are read concurrently and each in order; fetching pauses while the pipeline is full.',
    'Offsets are committed every `commit_interval`, when the group rebalances, and on stop, up to the last',
    'message whose every derived output was acknowledged (at-least-once). Record metadata `$meta`: `topic`,',
    '`partition`, `offset` (formats such as `debezium` add their own).',
  ].join(' '),
  schema,
  describe: describeKafkaSource,
  create(config, ctx) {
    const connection = connectionFromConfig(config, `sluice-${ctx.name}`, `sources.${ctx.name}`);
    return new KafkaSource(config, connection, ctx);
  },
};
