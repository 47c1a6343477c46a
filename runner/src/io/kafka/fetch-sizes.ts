/**
 * How many bytes a fetch asks for per partition, when a source leaves `fetch_max_bytes` to sluice.
 *
 * Kafka counts a fetch's bytes compressed; kafkajs holds what it fetched decompressed until the
 * records are processed. Debezium events with schemas compress about 30 times under gzip, so a
 * 1 MiB fetch per partition held about 30 MB a partition: a drain of the employee pipeline peaked
 * at 850 MiB, and the garbage collector's work on that much live data cost a fifth of sluice's CPU
 * per event. A fixed smaller ask fixed that but cost an uncompressed topic a tenth of its rate. So
 * the ask follows what the topic's records decompress to: about DECOMPRESSED_BUDGET of records a
 * partition, never more than the configured maximum (1 MiB, as Kafka's
 * `max.partition.fetch.bytes`), never less than MIN_ASK. A batch larger than the ask still comes
 * whole (Kafka returns at least one batch), so nothing stalls on it.
 *
 * The ratio is learned from the fetches themselves (fetched-batches.ts reports each partition's
 * decoded record batches), and the ask is set in each fetch request (the fetch v11 request module
 * is wrapped below). Per topic and per thread: a thread has its own modules, and its own fetches.
 */
import { replaceKafkajsModule } from './kafkajs-module.ts';

/** The decompressed bytes of records a partition's fetch aims at. */
export const DECOMPRESSED_BUDGET = 8 * 1024 * 1024;
/** The least a fetch asks for per partition. */
export const MIN_ASK = 64 * 1024;
/** The ratio assumed before a topic's first records: gzip-compressed Debezium events'. */
export const INITIAL_RATIO = 32;
/** How much of the past a new observation leaves standing (decaying sums). */
const DECAY = 0.8;

/** The bytes to ask for per partition: `budget` decompressed at `ratio`, within [MIN_ASK, max]. */
export function fetchAsk(ratio: number, max: number, budget = DECOMPRESSED_BUDGET): number {
  const ask = Math.floor(budget / Math.max(1, ratio));
  return Math.max(Math.min(MIN_ASK, max), Math.min(max, ask));
}

/** Decompressed bytes per compressed byte of what was fetched, recent fetches weighing most. */
export class CompressionRatio {
  private compressed = 0;
  private decompressed = 0;

  observe(compressed: number, decompressed: number): void {
    if (!(compressed > 0) || !(decompressed >= 0)) return;
    this.compressed = this.compressed * DECAY + compressed;
    this.decompressed = this.decompressed * DECAY + decompressed;
  }

  /** undefined before the first observation. */
  get ratio(): number | undefined {
    return this.compressed > 0 ? this.decompressed / this.compressed : undefined;
  }
}

interface AdaptiveTopic {
  max: number;
  ratio: CompressionRatio;
  /** Sources reading the topic adaptively in this thread. */
  users: number;
}

const adaptive = new Map<string, AdaptiveTopic>();

/**
 * A consumer of `topic` leaves its fetch size to sluice, up to `max` a partition. Returns the
 * function that ends it. While any consumer does, every fetch of the topic in this thread adapts.
 */
export function adaptFetchSize(topic: string, max: number): () => void {
  let entry = adaptive.get(topic);
  if (!entry) adaptive.set(topic, (entry = { max, ratio: new CompressionRatio(), users: 0 }));
  entry.max = Math.max(entry.max, max);
  entry.users++;
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    if (--entry.users === 0 && adaptive.get(topic) === entry) adaptive.delete(topic);
  };
}

/** Whether fetches of `topic` adapt (fetched-batches.ts reports only theirs). */
export function adapts(topic: string): boolean {
  return adaptive.has(topic);
}

/** A partition of `topic` brought record batches of `compressed` bytes holding records of `decompressed` bytes. */
export function observeFetched(topic: string, compressed: number, decompressed: number): void {
  adaptive.get(topic)?.ratio.observe(compressed, decompressed);
}

/** What a fetch asks for per partition of `topic`: the consumer's own `requested`, unless the topic adapts. */
export function partitionMaxBytes(topic: string, requested: number): number {
  const entry = adaptive.get(topic);
  return entry ? askOf(entry) : requested;
}

/** An adaptive topic's ask: one for all its partitions, which share the topic's ratio. */
function askOf(entry: AdaptiveTopic): number {
  return fetchAsk(entry.ratio.ratio ?? INITIAL_RATIO, entry.max);
}

/* ------------------------------------------------------------------ the fetch request */

interface FetchPartition {
  maxBytes: number;
}
interface FetchTopic {
  topic: string;
  partitions: FetchPartition[];
}
type FetchRequest = (args: { topics: FetchTopic[] } & Record<string, unknown>) => unknown;

const v11Request = 'kafkajs/src/protocol/requests/fetch/v11/request.js';

/** kafkajs's fetch v11 request (what it uses with Kafka 2.3 and later), with each adaptive topic's partitions asking for its size. */
export function fetchRequest(args: { topics: FetchTopic[] } & Record<string, unknown>): unknown {
  if (adaptive.size === 0 || !args.topics.some((t) => adaptive.has(t.topic))) return kafkajsFetchRequest(args);
  const topics = args.topics.map((t) => {
    const entry = adaptive.get(t.topic);
    if (!entry) return t;
    const maxBytes = askOf(entry);
    return { ...t, partitions: t.partitions.map((p) => ({ ...p, maxBytes })) };
  });
  return kafkajsFetchRequest({ ...args, topics });
}

/** kafkajs's own fetch v11 request module, for the tests to compare with. */
export const kafkajsFetchRequest: FetchRequest = replaceKafkajsModule<FetchRequest>({
  module: v11Request,
  // fetch/index.js requires it when the first fetch is made.
  requiredBy: v11Request,
  replacement: fetchRequest,
  mark: Symbol.for('sluice.kafkajs.fetch-request'),
  what: 'its fetch sizes',
});
