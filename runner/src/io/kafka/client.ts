/**
 * The one module that talks to Kafka. It wraps kafkajs behind a narrow interface: a group consumer
 * that hands over batches per partition and commits only what it is told to, a producer that
 * writes in bounded chunks with retries, and a few admin calls for tests and tools. Nothing else
 * in sluice imports kafkajs, so the client library can be replaced here alone.
 *
 * Limits of kafkajs (2.2) that shape what sluice can promise:
 * - Eager rebalancing only (no cooperative-sticky, KIP-429): every rebalance revokes every
 *   partition of every member for a moment. sluice keeps its state for partitions it gets back.
 * - No KIP-447 consumer group metadata in transactional offset commits (`sendOffsets` carries the
 *   group id only, TxnOffsetCommit v0-v1). Exactly-once therefore fences the way Kafka Streams did
 *   before KIP-447 (EOS v1): one transactional id per task, derived from the application id and
 *   the task only (never the host or pid), so a restarted instance's InitProducerId bumps the
 *   epoch, aborts the old instance's open transaction and fences it (see TransactionalProducer).
 *   Until scale-out splits pipelines into tasks, a pipeline is one task: `<application id>-0_0`.
 * - No revocation callback: the group's new assignment is only known after it re-joined. sluice
 *   commits what completed when a rebalance starts (while the old generation may still commit) and
 *   forgets lost partitions when the join completes.
 * - A `topic_pattern` is matched against the topics that exist when the consumer subscribes;
 *   topics created later are not picked up until the runner restarts.
 * - Compression: kafkajs ships gzip only; codecs.ts adds snappy, lz4 and zstd (zstd read only), and
 *   compresses gzip without the thread pool.
 * - Heartbeats are sent from the fetch loop, not a background thread: a batch handler that waits
 *   long (downstream backpressure) must call `heartbeat()`; the source does so on a timer.
 */
// First: they replace kafkajs's read_committed filter, produce grouping, record encoding and decoding, record batch checksum, encoder growth, record batches, murmur2, the default partitioner, coordinator lookups and the decoding of fetched batches before kafkajs loads (see the files).
import './read-committed.ts';
import './produce-grouping.ts';
import './record-encoding.ts';
import './record-decoding.ts';
import './crc32c.ts';
import './encoder-buffers.ts';
import './record-batch.ts';
import './murmur2.ts';
import './default-partitioner.ts';
import './coordinator-cache.ts';
import './fetched-batches.ts';
import { adaptFetchSize, partitionMaxBytes } from './fetch-sizes.ts';
import kafkajs, {
  CompressionTypes,
  Kafka,
  Partitioners,
  logLevel as KafkaLogLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type KafkaConfig,
  type LogEntry,
  type Producer,
  type SASLOptions,
  type Transaction,
} from 'kafkajs';
import { DeadlineError, settleWithin } from '../../engine/deadline.ts';
import { ConnectionError, errorMessage, FencedError } from '../../engine/errors.ts';
import type { Logger } from '../../engine/logger.ts';
import { gzipCodec, lz4Codec, snappyCodec, zstdCodec } from './codecs.ts';
import { HeldSends } from './held-sends.ts';
import { loadTlsMaterial, type KafkaConnection } from './connection.ts';

// Every consumer reads topics whatever codec their producers chose (Debezium and Kafka Connect
// often set lz4, snappy or zstd), and gzip costs less than kafkajs's own (codecs.ts); kafkajs
// looks codecs up in this shared table. Reached through the default import: Node's named ESM
// imports of kafkajs's CommonJS exports do not include it.
kafkajs.CompressionCodecs[CompressionTypes.GZIP] = () => gzipCodec;
kafkajs.CompressionCodecs[CompressionTypes.Snappy] = () => snappyCodec;
kafkajs.CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec;
kafkajs.CompressionCodecs[CompressionTypes.ZSTD] = () => zstdCodec;

/* ------------------------------------------------------------------ shared */

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** kafkajs logs through this bridge into sluice's logger, at warn and above only (it is noisy). */
function logCreator(logger: Logger) {
  return () =>
    ({ namespace, level, log }: LogEntry): void => {
      const { message, timestamp: _ts, ...extra } = log;
      // Our own retry loop around a bounded kafkajs retry is deliberate (see createProducer).
      if (typeof message === 'string' && message.startsWith('Limiting retries for the idempotent producer')) return;
      // CONCURRENT_TRANSACTIONS: the first send of a transaction while the coordinator still
      // finishes the previous commit. Expected under exactly-once, and retried at once.
      if (isConcurrentTransactionsNotice(message, extra)) return;
      const fields = { kafka: namespace, ...sanitizeLogFields(extra) };
      if (level === KafkaLogLevel.ERROR) logger.error(fields, String(message));
      else if (level === KafkaLogLevel.WARN) logger.warn(fields, String(message));
    };
}

function isConcurrentTransactionsNotice(message: unknown, extra: Record<string, unknown>): boolean {
  const text = `${String(message)} ${typeof extra.error === 'string' ? extra.error : ''}`;
  return text.includes('another concurrent operation on the same transaction');
}

/** Drops fields that could carry credentials or huge payloads; keeps short scalars. */
export function sanitizeLogFields(extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra)) {
    if (/pass|secret|sasl|token|key$/i.test(k) || k === 'stack') continue;
    if (typeof v === 'string') out[k] = v.length > 500 ? `${v.slice(0, 500)}...` : v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

function kafkaConfig(conn: KafkaConnection, logger: Logger): KafkaConfig {
  const config: KafkaConfig = {
    brokers: conn.brokers,
    clientId: conn.clientId,
    connectionTimeout: conn.connectionTimeoutMs ?? 10_000,
    requestTimeout: conn.requestTimeoutMs ?? 30_000,
    logLevel: KafkaLogLevel.WARN,
    logCreator: logCreator(logger),
    // Reconnects keep trying for about a minute before an operation fails; callers add their own
    // retry on top where giving up is worse (the sink) or crash cleanly (the source restarts).
    retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 8 },
  };
  if (conn.tls) {
    const tls = loadTlsMaterial(conn.tls, conn.clientId);
    config.ssl = {
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert ? { cert: tls.cert } : {}),
      ...(tls.key ? { key: tls.key } : {}),
    };
  }
  if (conn.sasl) {
    const { mechanism, username, password } = conn.sasl;
    config.sasl = { mechanism, username, password } as SASLOptions;
  }
  return config;
}

/** The chain of causes of an error, outermost first (kafkajs wraps retried errors). */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = err;
  for (let i = 0; i < 10 && cur; i++) {
    out.push(cur);
    cur = (cur as { cause?: unknown }).cause;
  }
  return out;
}

/** Kafka error types that no retry fixes: the message or the permissions are wrong. */
const PERMANENT_ERROR_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'UNSUPPORTED_SASL_MECHANISM',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'INVALID_REQUIRED_ACKS',
]);

/**
 * Whether a produce failed because a message (or the request carrying it) is larger than the topic
 * takes: no retry helps, but the others of the request may be written without it.
 */
export function isMessageTooLarge(err: unknown): boolean {
  return causes(err).some((e) => {
    const type = (e as { type?: unknown }).type;
    return type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE';
  });
}

/** Whether retrying a failed produce can succeed (a broker restart can; a too-large message cannot). */
export function isPermanentKafkaError(err: unknown): boolean {
  return causes(err).some((e) => {
    const type = (e as { type?: unknown }).type;
    const name = (e as { name?: unknown }).name;
    return (typeof type === 'string' && PERMANENT_ERROR_TYPES.has(type)) || name === 'KafkaJSSASLAuthenticationError';
  });
}

/**
 * Whether a kafkajs failure is the brokers being out of reach or moving (a refused or closed
 * connection, a timeout, a leader or coordinator not there yet, retries of those given up on):
 * an outage that may end, so a run failed by it is worth restarting. kafkajs marks such errors
 * `retriable`, and wraps them in KafkaJSNumberOfRetriesExceeded when it gives up.
 */
export function isKafkaOutage(err: unknown): boolean {
  if (isPermanentKafkaError(err)) return false;
  // Through the default import: Node's named ESM imports of kafkajs's CommonJS exports lack its error classes.
  return causes(err).some((e) => e instanceof kafkajs.KafkaJSError && e.retriable);
}

/**
 * Runs one call of the Kafka client; an outage it fails on becomes a ConnectionError (what a run
 * restarts on), anything else is thrown as it is. Every call outside a consumer or producer (the
 * admin's, a restore's read) goes through this: a kafkajs error reaching the engine unclassified
 * made a restore during an outage end the process instead of restarting it.
 */
async function reachingKafka<T>(conn: KafkaConnection, what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ConnectionError || !isKafkaOutage(err)) throw err;
    throw new ConnectionError('E_KAFKA_CONNECT', `${what} on Kafka at ${conn.brokers.join(',')} failed: ${errorMessage(err)}`, conn.clientId, { cause: err });
  }
}

/** Whether a partition's leader is not elected yet: what a topic another process has just created answers for a moment. */
function isLeaderless(err: unknown): boolean {
  return causes(err).some((e) => {
    const type = (e as { type?: unknown }).type;
    return type === 'LEADER_NOT_AVAILABLE' || type === 'NOT_LEADER_FOR_PARTITION';
  });
}

/**
 * Runs `call` again while it fails because a partition has no leader yet, `attempts` times at most,
 * `delayMs` apart. The process that creates a topic waits for its leaders; another process that
 * finds it listed a moment later (two instances of a pipeline starting together) does not, and
 * kafkajs's offset requests do not retry that.
 */
export async function retryWhileLeaderless<T>(call: () => Promise<T>, attempts = 20, delayMs = 250, alsoRetry: (err: unknown) => boolean = () => false): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= attempts || !(isLeaderless(err) || alsoRetry(err))) throw err;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** Some partitions of newly created topics have no leader yet (what createTopics waits out). */
class LeadersPending extends Error {}

/* ------------------------------------------------------------------ consumer */

/** One fetched message. Offsets are strings: Kafka offsets are int64. */
export interface FetchedMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** Broker timestamp, epoch milliseconds. */
  timestamp: number;
  offset: string;
  /** Encoded size of key plus value in bytes. */
  size: number;
}

export interface FetchedBatch {
  topic: string;
  partition: number;
  messages: FetchedMessage[];
  /**
   * The last offset this batch covers. It can be beyond the last message's offset when the batch
   * ends with transaction control records, which are never delivered; committing past it is right.
   */
  lastOffset: string;
}

export interface BatchControl {
  /** Tells the group this member is alive; throws when the group is rebalancing. */
  heartbeat(): Promise<void>;
  /** True when this batch is outdated (a seek happened): skip it. */
  isStale(): boolean;
}

export interface ConsumerHandlers {
  /**
   * One batch of one partition. Partitions are handled concurrently, each in offset order: the
   * next batch of a partition comes only after this resolves (that is the backpressure). Errors
   * of the group (rebalance) thrown from `heartbeat` may be rethrown; any other error crashes the
   * consumer, which kafkajs restarts from the committed offsets.
   */
  onBatch(batch: FetchedBatch, control: BatchControl): Promise<void>;
  /** The group started a rebalance: commit what is committable now, while this generation may. */
  onRebalancing(): void;
  /** This member's assignment after every (re)join, complete (not a delta). */
  onAssignment(assigned: TopicPartition[]): void;
  /** The consumer failed; `restarting` says whether kafkajs restarts it from committed offsets. */
  onCrash(error: Error, restarting: boolean): void;
}

export interface ConsumerOptions {
  groupId: string;
  /** Topic names and regular expressions. */
  topics: (string | RegExp)[];
  /** Where to start when the group has no committed offset for a partition. */
  fromBeginning: boolean;
  /** Partitions handed over concurrently. */
  concurrency: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Per partition and fetch, compressed; absent: it adapts to the topics' compression, up to 1 MiB (fetch-sizes.ts). */
  maxBytesPerPartition?: number;
  maxWaitMs?: number;
  /** read_committed (default): messages of open or aborted transactions are never delivered. */
  isolation?: 'read_committed' | 'read_uncommitted';
}

export interface GroupConsumer {
  readonly heartbeatIntervalMs: number;
  /**
   * Epoch ms of the last answer from the group's brokers (a fetch, a heartbeat, a join), or
   * undefined before the first and after a crash: readiness tells a reachable broker by it.
   */
  lastContactAt(): number | undefined;
  /** Connects, subscribes, joins the group and starts fetching. Resolves once running. */
  start(handlers: ConsumerHandlers): Promise<void>;
  /** Commits offsets as given: `offset` is the NEXT offset to read, as Kafka wants it. */
  commit(offsets: (TopicPartition & { offset: string })[]): Promise<void>;
  /** Stops fetching these partitions. Throws while kafkajs restarts the consumer after a crash (it has no group then). */
  pause(partitions: TopicPartition[]): void;
  /** Leaves the group and closes connections. */
  disconnect(): Promise<void>;
  /** What its fetches ask for per partition of `topic` now, compressed: its own size, or what the topic's compression adapted it to. */
  fetchBytes(topic: string): number;
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [name, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    // A repeated header arrives as an array; the last value wins, as in most HTTP-like readers.
    const v = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (v === undefined) continue;
    out[name] = typeof v === 'string' ? v : v.toString('utf8');
  }
  return out;
}

function toFetchedBatch(payload: EachBatchPayload): FetchedBatch {
  const { batch } = payload;
  const messages: FetchedMessage[] = new Array(batch.messages.length);
  for (let i = 0; i < batch.messages.length; i++) {
    const m = batch.messages[i]!;
    messages[i] = {
      key: m.key,
      value: m.value,
      headers: decodeHeaders(m.headers),
      timestamp: Number(m.timestamp),
      offset: m.offset,
      size: (m.key?.length ?? 0) + (m.value?.length ?? 0),
    };
  }
  return { topic: batch.topic, partition: batch.partition, messages, lastOffset: batch.lastOffset() };
}

/** The most a fetch asks for per partition when the consumer sets no size (Kafka's `max.partition.fetch.bytes` default); fetch-sizes.ts asks for less of a topic that compresses well. */
const DEFAULT_FETCH_BYTES = 1_048_576;

export function createGroupConsumer(conn: KafkaConnection, options: ConsumerOptions, logger: Logger): GroupConsumer {
  const kafka = new Kafka(kafkaConfig(conn, logger));
  let closed = false;
  let lastContact: number | undefined;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 3_000;
  // Without a size of its own, each named topic's fetches adapt to its compression (a pattern's
  // topics are not known by name: they take the 1 MiB).
  const adaptiveEnds = options.maxBytesPerPartition === undefined ? options.topics.filter((t) => typeof t === 'string').map((t) => adaptFetchSize(t, DEFAULT_FETCH_BYTES)) : [];
  const consumer: Consumer = kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: heartbeatIntervalMs,
    maxBytesPerPartition: options.maxBytesPerPartition ?? DEFAULT_FETCH_BYTES,
    // kafkajs caps a whole fetch at 10 MiB by default, below what several partitions may ask for
    // (counted for up to 8 of them, which bounds what one fetch can hold).
    maxBytes: Math.max(10_485_760, (options.maxBytesPerPartition ?? DEFAULT_FETCH_BYTES) * Math.min(options.concurrency, 8)),
    maxWaitTimeInMs: options.maxWaitMs ?? 500,
    readUncommitted: options.isolation === 'read_uncommitted',
    allowAutoTopicCreation: false,
    // Restart after any retriable failure (broker restart, coordinator moved); never give up.
    // (but not once disconnect() was called: a crash while leaving must not bring the consumer back).
    retry: { initialRetryTime: 500, maxRetryTime: 10_000, retries: 8, restartOnFailure: async () => !closed },
  });
  const contact = () => {
    lastContact = Date.now();
  };
  // kafkajs's stop() does nothing while a (re)start is still joining the group (its runner is not
  // `running` yet), so a consumer disconnected while the brokers were away comes back when they
  // return, joins, and holds partitions that nobody reads. Whatever it does after disconnect() was
  // called, it is told to leave again; a macrotask later, so its runner counts as running.
  let leaving: Promise<void> | undefined;
  // A restart kafkajs scheduled after a crash, from that crash until it joined the group or crashed
  // again. kafkajs's disconnect() during it forgets the restarting member without stopping it: once
  // the brokers answer, it joins and holds partitions nobody reads, and nothing can make it leave
  // (seen after a broker restart: a stage's partitions held by such a member until the test gave
  // up). disconnect() waits for the restart to settle instead, then stops the member it became.
  let restarting: { settled: Promise<void>; settle: () => void } | undefined;
  const settleRestart = () => {
    restarting?.settle();
    restarting = undefined;
  };
  const leaveAgain = () => {
    if (!closed || leaving) return;
    leaving = new Promise<void>((resolve) => setTimeout(resolve, 0))
      .then(() => consumer.disconnect())
      .catch((err: unknown) => logger.warn({ error: errorMessage(err) }, 'kafka consumer came back after disconnect and could not leave'))
      .finally(() => (leaving = undefined));
  };
  return {
    heartbeatIntervalMs,
    lastContactAt: () => lastContact,
    async start(handlers) {
      // An idle consumer still fetches every maxWaitMs and heartbeats every heartbeatIntervalMs.
      consumer.on(consumer.events.FETCH, contact);
      consumer.on(consumer.events.FETCH_START, leaveAgain);
      consumer.on(consumer.events.HEARTBEAT, contact);
      consumer.on(consumer.events.REBALANCING, () => handlers.onRebalancing());
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        settleRestart();
        if (closed) {
          logger.warn({ group: options.groupId }, 'kafka consumer rejoined its group after disconnect; leaving again');
          leaveAgain();
          return;
        }
        contact();
        const assigned: TopicPartition[] = [];
        for (const [topic, partitions] of Object.entries(event.payload.memberAssignment)) {
          for (const partition of partitions) assigned.push({ topic, partition });
        }
        handlers.onAssignment(assigned);
      });
      consumer.on(consumer.events.CRASH, (event) => {
        lastContact = undefined;
        settleRestart();
        if (event.payload.restart) {
          let settle!: () => void;
          const settled = new Promise<void>((resolve) => (settle = resolve));
          restarting = { settled, settle };
        }
        if (closed) return;
        const err = event.payload.error;
        handlers.onCrash(err instanceof Error ? err : new Error(String(err)), event.payload.restart);
      });
      try {
        await consumer.connect();
        // A topic that does not exist yet (Debezium creates its topics on the first change) is
        // waited for rather than failing the run.
        for (let attempt = 0; ; attempt++) {
          try {
            await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning });
            break;
          } catch (err) {
            if (closed || !isUnknownTopic(err)) throw err;
            if (attempt % 20 === 0) logger.warn({ topics: options.topics.map(String) }, 'kafka topic does not exist yet; waiting for it');
            await new Promise((r) => setTimeout(r, 500));
          }
        }
      } catch (err) {
        throw new ConnectionError('E_KAFKA_CONNECT', `cannot reach Kafka at ${conn.brokers.join(',')}: ${errorMessage(err)}`, conn.clientId, {
          cause: err,
        });
      }
      if (closed) return;
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        partitionsConsumedConcurrently: options.concurrency,
        eachBatch: async (payload) => {
          await handlers.onBatch(toFetchedBatch(payload), {
            heartbeat: () => payload.heartbeat(),
            isStale: () => payload.isStale(),
          });
        },
      });
    },
    async commit(offsets) {
      if (offsets.length === 0) return;
      await consumer.commitOffsets(offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })));
    },
    pause(partitions) {
      const byTopic = new Map<string, number[]>();
      for (const { topic, partition } of partitions) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
      consumer.pause([...byTopic].map(([topic, ps]) => ({ topic, partitions: ps })));
    },
    fetchBytes(topic) {
      return options.maxBytesPerPartition ?? partitionMaxBytes(topic, DEFAULT_FETCH_BYTES);
    },
    async disconnect() {
      closed = true;
      for (const end of adaptiveEnds) end();
      const pending = restarting;
      if (!pending) {
        await consumer.disconnect();
        return;
      }
      // Not awaited: the restart may take as long as the brokers are away, and the run that is
      // disconnecting (to restart, say) need not wait for it; its member leaves once it joined.
      void untilSettled(pending.settled)
        .then(() => consumer.disconnect())
        .catch((err: unknown) => logger.warn({ error: errorMessage(err) }, 'kafka consumer could not leave after its restart'));
    },
  };
}

/** How long a consumer's disconnect() waits for a restart kafkajs has under way to join or fail: joining takes up to the rebalance timeout (kafkajs's default: 60 s). */
const RESTART_SETTLE_MS = 65_000;

/** Resolves once `settled` does (or after RESTART_SETTLE_MS), and a macrotask later: only then does a member that just joined count as running, so that kafkajs can stop it. */
async function untilSettled(settled: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Unreferenced: a process ending anyway need not wait for it (its sockets close with it).
  await Promise.race([settled, new Promise<void>((resolve) => (timer = setTimeout(resolve, RESTART_SETTLE_MS)).unref())]);
  clearTimeout(timer);
  await new Promise((resolve) => setTimeout(resolve, 0));
}

/** UNKNOWN_TOPIC_OR_PARTITION: the topic does not exist (yet). */
export function isUnknownTopic(err: unknown): boolean {
  return causes(err).some((e) => (e as { type?: unknown }).type === 'UNKNOWN_TOPIC_OR_PARTITION');
}

/* ------------------------------------------------------------------ producer */

export interface ProducedMessage {
  topic: string;
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers?: Record<string, string>;
  /** Epoch ms; default: now (so retention counts from when sluice wrote it, not from event time). */
  timestamp?: number;
  /** A fixed partition; default: by key (murmur2, as Java clients), round-robin without a key. */
  partition?: number;
}

/** What sluice's producers write; zstd is read but not written (see codecs.ts). */
export const COMPRESSIONS = ['gzip', 'snappy', 'lz4', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

const COMPRESSION_TYPES: Record<Compression, CompressionTypes> = {
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  none: CompressionTypes.None,
};

export interface ProducerOptions {
  /** Messages per produce request; kafkajs slows down superlinearly beyond a few thousand. */
  chunkSize?: number;
  compression?: Compression;
  /** Keep retrying a failing chunk this long before giving up (ms). */
  retryForMs?: number;
  /** Idempotent producer with acks=all (default true). */
  idempotent?: boolean;
  /** Told of every retry of a failed request (the sink's retry counter). */
  onRetry?: () => void;
}

export interface KafkaProducer {
  connect(): Promise<void>;
  /**
   * Writes the messages, in order per topic-partition, in chunks; resolves once all are
   * acknowledged by all in-sync replicas. Retries with backoff; throws ConnectionError when it
   * gives up or the error is permanent (the caller must then not acknowledge upstream).
   */
  send(messages: readonly ProducedMessage[]): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_CHUNK_SIZE = 2_000;

/** Splits into consecutive chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (size < 1) throw new Error('chunk size must be at least 1');
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The bytes of a message's key, value and headers: what a produce request carries before compression. */
export function producedBytes(m: ProducedMessage): number {
  let n = byteSize(m.key) + byteSize(m.value);
  if (m.headers) for (const name in m.headers) n += Buffer.byteLength(name) + Buffer.byteLength(m.headers[name]!);
  return n;
}

// At module level: a closure made per call is garbage per message (and tsx names each one).
function byteSize(v: string | Buffer | null): number {
  return v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

/**
 * The uncompressed bytes one produce chunk may hold, by codec. The brokers refuse a record batch
 * (after compression) over `message.max.bytes`, 1 MB by default: without compression 2,000 Debezium
 * rows of 2.5 KB are 5 MB, so a chunk is cut by bytes too. gzip shrinks such rows 5-10 times
 * (no bound, as before); lz4 and snappy about 2-3 times.
 */
const CHUNK_BYTES: Record<Compression, number> = { none: 900_000, lz4: 1_800_000, snappy: 1_800_000, gzip: Number.POSITIVE_INFINITY };

/** Consecutive chunks of at most `size` messages and, past the first message of each, `CHUNK_BYTES` of the codec. */
export function produceChunks(messages: readonly ProducedMessage[], size: number, compression: Compression): ProducedMessage[][] {
  const maxBytes = CHUNK_BYTES[compression];
  if (maxBytes === Number.POSITIVE_INFINITY) return chunk(messages, size);
  const out: ProducedMessage[][] = [];
  let current: ProducedMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const b = producedBytes(m);
    if (current.length > 0 && (current.length >= size || bytes + b > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += b;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Backoff before retry number `attempt` (0-based): doubling from 250 ms, capped at 10 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
}

/** A message as kafkajs's sendBatch takes it, in the one shape every message of sluice has. */
export interface KafkajsMessage {
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers: Record<string, string> | undefined;
  timestamp: string | undefined;
  partition: number | undefined;
  /** Set by kafkajs's produce request; here only so the message already has them (see toKafkaMessages). */
  offsetDelta: number;
  timestampDelta: number;
}

/**
 * kafkajs's produce request builds each record as `{ ...message, offsetDelta, timestampDelta }`.
 * In Node 20's V8, a spread followed by properties the source lacks leaves the fast clone path:
 * 1-2.5 µs per message, measured, and about 5% of the main thread in a drain. Followed by
 * properties the source already has, it costs about 0.15 µs: so every message carries both,
 * as placeholders kafkajs overwrites, and has the same shape (absent fields are undefined, which
 * kafkajs reads as absent).
 */
export function toKafkaMessages(messages: readonly ProducedMessage[]): KafkajsMessage[] {
  const out: KafkajsMessage[] = new Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    out[i] = {
      key: m.key,
      value: m.value,
      headers: m.headers,
      timestamp: m.timestamp === undefined ? undefined : String(m.timestamp),
      partition: m.partition,
      offsetDelta: 0,
      timestampDelta: 0,
    };
  }
  return out;
}

/** One produce request's messages, grouped by topic as kafkajs's sendBatch takes them. */
function topicMessagesOf(messages: readonly ProducedMessage[]) {
  const byTopic = new Map<string, ProducedMessage[]>();
  for (const m of messages) {
    let list = byTopic.get(m.topic);
    if (!list) byTopic.set(m.topic, (list = []));
    list.push(m);
  }
  return [...byTopic].map(([topic, msgs]) => ({ topic, messages: toKafkaMessages(msgs) }));
}

/** How long to wait for kafkajs's disconnect of a producer given up on: it waits for the call that did not answer too. */
const CLOSE_GIVEN_UP_MS = 2_000;

export function createProducer(conn: KafkaConnection, options: ProducerOptions, logger: Logger): KafkaProducer {
  const kafka = new Kafka(kafkaConfig(conn, logger));
  const idempotent = options.idempotent ?? true;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const retryForMs = options.retryForMs ?? 120_000;
  const codec = options.compression ?? 'gzip';
  const compression = COMPRESSION_TYPES[codec];
  const newProducer = (): Producer =>
    kafka.producer({
      idempotent,
      // The idempotent producer keeps order across retries only with one request in flight.
      maxInFlightRequests: idempotent ? 1 : 5,
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: true,
      retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 5 },
    });
  let producer = newProducer();
  let connected = false;

  // An attempt that kafkajs leaves pending (its code can: see engine/deadline.ts) ends at the deadline.
  async function sendChunk(batch: ProducedMessage[], deadline: number): Promise<void> {
    await settleWithin(producer.sendBatch({ acks: -1, compression, topicMessages: topicMessagesOf(batch) }), Math.max(1, deadline - Date.now()), 'kafkajs send');
  }

  async function reconnect(): Promise<void> {
    // A fresh producer gets a new producer id: the way out of a sequence-number mismatch after
    // a broker lost its state (or a request kafkajs never ended). Messages of the failed attempt
    // may then be written twice. Its disconnect waits for its requests, so it is bounded too.
    await settleWithin(producer.disconnect(), CLOSE_GIVEN_UP_MS, 'kafkajs disconnect').catch(() => {});
    producer = newProducer();
    connected = false;
    await producer.connect();
    connected = true;
  }

  return {
    async connect() {
      try {
        await producer.connect();
        connected = true;
      } catch (err) {
        throw new ConnectionError('E_KAFKA_CONNECT', `cannot reach Kafka at ${conn.brokers.join(',')}: ${errorMessage(err)}`, conn.clientId, {
          cause: err,
        });
      }
    },
    async send(messages) {
      if (!connected) await this.connect();
      for (const part of produceChunks(messages, chunkSize, codec)) {
        const deadline = Date.now() + retryForMs;
        for (let attempt = 0; ; attempt++) {
          try {
            await sendChunk(part, deadline);
            break;
          } catch (err) {
            if (isPermanentKafkaError(err) || Date.now() >= deadline) {
              throw new ConnectionError(
                'E_KAFKA_PRODUCE',
                `cannot write ${part.length} message(s) to ${[...new Set(part.map((m) => m.topic))].join(', ')}: ${errorMessage(err)}`,
                conn.clientId,
                { cause: err },
              );
            }
            const delay = retryDelayMs(attempt);
            options.onRetry?.();
            logger.warn({ attempt: attempt + 1, delay_ms: delay, error: errorMessage(err) }, 'kafka produce failed; retrying');
            await new Promise((r) => setTimeout(r, delay));
            await reconnect().catch((e: unknown) => logger.warn({ error: errorMessage(e) }, 'kafka producer reconnect failed'));
          }
        }
      }
    },
    async close() {
      connected = false;
      await settleWithin(producer.disconnect(), retryForMs, 'kafkajs disconnect');
    },
  };
}

/* ------------------------------------------------------------------ transactions */

/** Kafka's answers that mean "a newer producer with this transactional id exists". */
const FENCING_ERROR_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING', 'TRANSACTION_COORDINATOR_FENCED']);

/** Whether an error (through kafkajs's wrapping retry errors) says this producer was fenced. */
export function isFencingError(err: unknown): boolean {
  return causes(err).some((e) => {
    const type = (e as { type?: unknown }).type;
    return typeof type === 'string' && FENCING_ERROR_TYPES.has(type);
  });
}

/** Offsets a transaction commits for a consumer group: `offset` is the NEXT offset to read. */
export interface GroupOffsets {
  groupId: string;
  offsets: (TopicPartition & { offset: string })[];
}

/**
 * A producer whose writes become visible together, once per `commit`. Only `send` writes (never a
 * plain producer.send on the same client: that would bypass the transaction).
 */
export interface TransactionalProducer {
  readonly transactionalId: string;
  /**
   * Connects and registers the transactional id (InitProducerId). That fences every earlier
   * producer with the id and aborts its open transaction, so call it before reading what the
   * previous instance committed.
   */
  connect(): Promise<void>;
  /**
   * Writes into the open transaction, opening one when none is; with `compression`, or the
   * producer's (default none). Nothing sent is visible before the commit, so the messages are held
   * (`lingerMs`, or until `chunkSize` are waiting) to share a produce request with later sends,
   * and the promise resolves at once while few are held: it waits only for the send that a full
   * hold starts. A held send that fails fails the next `send` and the `commit`.
   */
  send(messages: readonly ProducedMessage[], compression?: Compression): Promise<void>;
  /** Sends what is held, adds the offsets, then commits everything sent since the last commit. A no-op with nothing sent and no offsets. */
  commit(offsets: readonly GroupOffsets[]): Promise<void>;
  /** Drops the open transaction, if any, and whatever is held. */
  abort(): Promise<void>;
  close(): Promise<void>;
}

export interface TransactionalOptions {
  transactionalId: string;
  /** The broker aborts a transaction open longer than this. Default 60 s; keep it well above the checkpoint interval. */
  transactionTimeoutMs?: number;
  compression?: Compression;
  chunkSize?: number;
  /** How long a send is held for others to share its produce request (default 100 ms, Kafka Streams' linger.ms). */
  lingerMs?: number;
}

export function createTransactionalProducer(conn: KafkaConnection, options: TransactionalOptions, logger: Logger): TransactionalProducer {
  const kafka = new Kafka(kafkaConfig(conn, logger));
  const { transactionalId } = options;
  // Internal topics (changelogs, checkpoints, repartitions) go uncompressed, as Kafka Streams
  // writes them; a sink sharing the producer names its own codec per send.
  const defaultCodec = options.compression ?? 'none';
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const lingerMs = options.lingerMs ?? 100;
  const producer: Producer = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: options.transactionTimeoutMs ?? 60_000,
    createPartitioner: Partitioners.DefaultPartitioner,
    // As the plain producer: sink topics may be created on first write (where the broker allows it).
    allowAutoTopicCreation: true,
    // Quick first retries: a transaction's first send often meets CONCURRENT_TRANSACTIONS for the
    // few ms the coordinator needs to finish the previous commit, and the pipeline waits on it.
    retry: { initialRetryTime: 30, maxRetryTime: 10_000, retries: 10 },
  });
  let tx: Transaction | undefined;
  // Every kafkajs call is bounded by the transaction timeout: past it the broker has aborted the
  // transaction anyway, and kafkajs's code can leave a call pending for good (engine/deadline.ts).
  // A producer that did not answer is given up on: later calls fail at once, the run restarts.
  const boundMs = options.transactionTimeoutMs ?? 60_000;
  let unanswered: DeadlineError | undefined;
  const bounded = <T>(what: string, call: () => Promise<T>): Promise<T> => {
    if (unanswered) return Promise.reject(unanswered);
    return settleWithin(call(), boundMs, `kafkajs ${what}`).catch((err: unknown) => {
      if (err instanceof DeadlineError) unanswered ??= err;
      throw err;
    });
  };
  // Several sinks and the state store share one producer: its sends go one at a time, so the
  // idempotent sequence numbers kafkajs assigns per partition stay in order.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const next = queue.then(f, f);
    queue = next.catch(() => {});
    return next;
  };
  // Sends are held a moment to share produce requests (held-sends.ts); each part goes in turn.
  const hold = new HeldSends<ProducedMessage, Compression>((messages, codec) => serial(() => sendNow(messages, codec)), lingerMs, chunkSize);

  const wrap = (what: string, err: unknown): Error => {
    if (isFencingError(err)) {
      return new FencedError(
        'E_KAFKA_FENCED',
        `another sluice instance took over transactional id \`${transactionalId}\` (same application id): this one stops; its uncommitted outputs were aborted`,
        transactionalId,
        { cause: err },
      );
    }
    return new ConnectionError('E_KAFKA_TRANSACTION', `kafka transaction ${what} failed for \`${transactionalId}\`: ${errorMessage(err)}`, transactionalId, { cause: err });
  };

  return {
    transactionalId,
    async connect() {
      try {
        await bounded('connect', () => producer.connect());
        // The first transaction() sends InitProducerId; an empty transaction ends without EndTxn.
        await bounded('registration (InitProducerId)', async () => (await producer.transaction()).abort());
      } catch (err) {
        throw wrap('registration', err);
      }
    },
    send(messages, codec = defaultCodec) {
      return hold.add(messages, codec);
    },
    async commit(offsets) {
      // What is held goes first; when a held send failed, that failure is thrown and nothing commits.
      await hold.release();
      await serial(() => commitNow(offsets));
    },
    abort() {
      hold.discard();
      return serial(async () => {
        const open = tx;
        tx = undefined;
        if (open) await bounded('abort', () => open.abort()).catch((err: unknown) => logger.warn({ error: errorMessage(err) }, 'kafka transaction abort failed'));
      });
    },
    async close() {
      hold.discard();
      // kafkajs's disconnect waits for the requests on its connections, which may never end.
      await settleWithin(producer.disconnect(), unanswered ? CLOSE_GIVEN_UP_MS : boundMs, 'kafkajs disconnect');
    },
  };

  async function sendNow(messages: readonly ProducedMessage[], codec: Compression): Promise<void> {
    try {
      const open = (tx ??= await bounded('transaction', () => producer.transaction()));
      const compression = COMPRESSION_TYPES[codec];
      for (const part of produceChunks(messages, chunkSize, codec)) await bounded('send', () => open.sendBatch({ acks: -1, compression, topicMessages: topicMessagesOf(part) }));
    } catch (err) {
      throw wrap('send', err);
    }
  }

  async function commitNow(offsets: readonly GroupOffsets[]): Promise<void> {
    const withOffsets = offsets.filter((g) => g.offsets.length > 0);
    if (!tx && withOffsets.length === 0) return;
    try {
      const open = (tx ??= await bounded('transaction', () => producer.transaction()));
      for (const g of withOffsets) {
        const byTopic = new Map<string, { partition: number; offset: string }[]>();
        for (const { topic, partition, offset } of g.offsets) byTopic.set(topic, [...(byTopic.get(topic) ?? []), { partition, offset }]);
        await bounded('sendOffsets', () => open.sendOffsets({ consumerGroupId: g.groupId, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) }));
      }
      tx = undefined;
      await bounded('commit', () => open.commit());
    } catch (err) {
      tx = undefined;
      throw wrap('commit', err);
    }
  }
}

/* ------------------------------------------------------------------ reading a topic to its end */

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/**
 * Reads whole topics from the beginning to the end they had when the read started, committed
 * records only, and returns. kafkajs has no manual partition assignment, so this joins a
 * throw-away group that never commits. The end is reached when a partition's next offset reaches
 * the end offset: a transaction marker may occupy the last offset, so the last data record need
 * not be there (control-only batches are seen through the END_BATCH_PROCESS event).
 */
export async function readTopicsToEnd(
  conn: KafkaConnection,
  topics: string[],
  onRecord: (r: ReadRecord) => void,
  logger: Logger,
  /** Only these partitions of a topic (a task's changelog partition); absent: all of it. */
  only?: ReadonlyMap<string, number>,
): Promise<void> {
  return reachingKafka(conn, `reading ${topics.join(', ')}`, () => readToEnd(conn, topics, onRecord, logger, only));
}

async function readToEnd(conn: KafkaConnection, topics: string[], onRecord: (r: ReadRecord) => void, logger: Logger, only?: ReadonlyMap<string, number>): Promise<void> {
  const kafka = new Kafka(kafkaConfig(conn, logger));
  const admin = kafka.admin();
  const remaining = new Map<string, bigint>();
  await admin.connect();
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        const wanted = only?.get(topic);
        if (wanted !== undefined && wanted !== p.partition) continue;
        if (BigInt(p.high) > BigInt(p.low)) remaining.set(`${topic}\u0000${p.partition}`, BigInt(p.high));
      }
    }
  } finally {
    await admin.disconnect();
  }
  if (remaining.size === 0) return;
  const consumer = kafka.consumer({
    groupId: `sluice-restore-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
    readUncommitted: false,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 10_485_760,
  });
  let finish!: () => void;
  let failed!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    failed = reject;
  });
  const reached = (topic: string, partition: number, lastOffset: string) => {
    const k = `${topic}\u0000${partition}`;
    const end = remaining.get(k);
    if (end !== undefined && BigInt(lastOffset) + 1n >= end) {
      remaining.delete(k);
      if (remaining.size === 0) finish();
    }
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => reached(e.payload.topic, e.payload.partition, e.payload.lastOffset));
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) failed(e.payload.error instanceof Error ? e.payload.error : new Error(String(e.payload.error)));
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const wanted = only?.get(batch.topic);
        if (wanted !== undefined && wanted !== batch.partition) return;
        for (const m of batch.messages) {
          onRecord({ topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value: m.value, headers: decodeHeaders(m.headers) });
        }
      },
    });
    await done;
  } finally {
    await consumer.disconnect();
  }
}

/* ------------------------------------------------------------------ admin (consumer lag, tests, tools) */

export interface TopicSpec {
  topic: string;
  partitions?: number;
  /** Topic configs, e.g. `{ 'retention.ms': '-1', 'max.message.bytes': '20000000' }`. */
  configs?: Record<string, string>;
}

export interface KafkaAdmin {
  connect(): Promise<void>;
  /** Creates the topics that do not exist yet and waits for their leaders. */
  createTopics(topics: TopicSpec[]): Promise<void>;
  deleteTopics(topics: string[]): Promise<void>;
  listTopics(): Promise<string[]>;
  /** Committed offsets of a group on a topic, per partition (`-1`: none). */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, string>>;
  /** Whether a group has a committed offset on any topic. */
  hasCommittedOffsets(groupId: string): Promise<boolean>;
  /** The members a group has now (dynamic members get a new id each time they join anew), with how many partitions each was assigned (0 while it is still joining). */
  groupMembers(groupId: string): Promise<{ memberId: string; clientId: string; partitions: number }[]>;
  /** Sets a group's committed offsets (the group must have no active members). */
  setCommittedOffsets(groupId: string, topic: string, offsets: ReadonlyMap<number, string>): Promise<void>;
  /** The end offset (high watermark) per partition of a topic. */
  endOffsets(topic: string): Promise<Map<number, string>>;
  /** The first (low watermark) and end (high watermark) offsets per partition of a topic. */
  topicOffsets(topic: string): Promise<Map<number, { low: string; high: string }>>;
  close(): Promise<void>;
}

export function createAdmin(conn: KafkaConnection, logger: Logger): KafkaAdmin {
  const kafka = new Kafka(kafkaConfig(conn, logger));
  const admin: Admin = kafka.admin();
  // Every call's outage becomes a ConnectionError (reachingKafka).
  const on = <T>(what: string, call: () => Promise<T>): Promise<T> => reachingKafka(conn, what, call);
  const topicOffsets = (topic: string) =>
    on(`reading ${topic}'s offsets`, async () => {
      const res = await retryWhileLeaderless(() => admin.fetchTopicOffsets(topic));
      return new Map(res.map((p) => [p.partition, { low: p.low, high: p.high }]));
    });
  /** Waits until every partition of `topics` has a leader: 10 s at most, as kafkajs's wait. */
  const untilLeadersOf = (topics: string[]): Promise<void> =>
    retryWhileLeaderless(
      async () => {
        const { topics: found } = await admin.fetchTopicMetadata({ topics });
        const led = found.length === topics.length && found.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
        if (!led) throw new LeadersPending(`partitions of ${topics.join(', ')} still have no leader after 10 s`);
      },
      40,
      250,
      (err) => err instanceof LeadersPending || isUnknownTopic(err),
    );
  return {
    connect: () => on('connecting the admin', () => admin.connect()),
    createTopics: (topics) =>
      // Nothing to create (every topic exists): metadata asked for no topics would list them all.
      topics.length === 0 ? Promise.resolve() : on(`creating ${topics.map((t) => t.topic).join(', ')}`, async () => {
        // kafkajs's own wait for leaders gives up on the first UNKNOWN_TOPIC_OR_PARTITION, which a
        // broker answers while it is still setting up some of many new partitions: waited out here.
        await admin.createTopics({
          waitForLeaders: false,
          topics: topics.map((t) => ({
            topic: t.topic,
            numPartitions: t.partitions ?? 1,
            replicationFactor: 1,
            configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
          })),
        });
        await untilLeadersOf(topics.map((t) => t.topic));
      }),
    deleteTopics: (topics) =>
      on(`deleting ${topics.join(', ')}`, async () => {
        const existing = new Set(await admin.listTopics());
        const present = topics.filter((t) => existing.has(t));
        if (present.length) await admin.deleteTopics({ topics: present });
      }),
    listTopics: () => on('listing topics', () => admin.listTopics()),
    committedOffsets: (groupId, topic) =>
      on(`reading group ${groupId}'s offsets`, async () => {
        const res = await admin.fetchOffsets({ groupId, topics: [topic] });
        return new Map((res[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
      }),
    hasCommittedOffsets: (groupId) =>
      on(`reading group ${groupId}'s offsets`, async () => {
        const res = await admin.fetchOffsets({ groupId });
        return res.some((t) => t.partitions.some((p) => BigInt(p.offset) >= 0n));
      }),
    groupMembers: (groupId) =>
      on(`describing group ${groupId}`, async () => {
        const { groups } = await admin.describeGroups([groupId]);
        return (groups[0]?.members ?? []).map(({ memberId, clientId, memberAssignment }) => {
          const assigned = memberAssignment.length > 0 ? kafkajs.AssignerProtocol.MemberAssignment.decode(memberAssignment) : null;
          const partitions = Object.values(assigned?.assignment ?? {}).reduce((n, ps) => n + ps.length, 0);
          return { memberId, clientId, partitions };
        });
      }),
    setCommittedOffsets: (groupId, topic, offsets) =>
      on(`committing group ${groupId}'s offsets`, async () => {
        // kafkajs' admin.setOffsets waits for a full fetch (seconds); joining, committing and leaving is quicker.
        const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 });
        try {
          await consumer.connect();
          await consumer.subscribe({ topics: [topic] });
          await consumer.run({ autoCommit: false, eachBatch: async () => {} });
          consumer.pause([{ topic }]);
          await consumer.commitOffsets([...offsets].map(([partition, offset]) => ({ topic, partition, offset })));
        } finally {
          await consumer.disconnect();
        }
      }),
    endOffsets: async (topic) => new Map([...(await topicOffsets(topic))].map(([partition, { high }]) => [partition, high])),
    topicOffsets,
    close: () => admin.disconnect(),
  };
}
