/**
 * A partition's record batches in a fetch response, decoded with their decompression overlapped,
 * installed over kafkajs 2.2.4's own before kafkajs loads (client.ts imports this before kafkajs). kafkajs
 * decodes one batch after another and awaits each batch's decompression before it reads the next
 * batch's header. gzip inflates in the thread pool, so each batch cost the main thread a round trip
 * in which it sat idle: a backlog written at a steady rate holds many small batches (Debezium
 * streaming, or a producer lingering a few ms), and draining one of ten events per batch left the
 * main thread idle a third of the time. This starts the next batches' decompression while awaiting
 * the first (up to AHEAD of them, AHEAD_BYTES together), and hands the records back in the same order.
 *
 * Decoding a batch begins synchronously: reading its header moves the shared decoder to the next
 * batch before anything is awaited (kafkajs's recordBatch/v0/decoder.js), so batches can be started
 * one after another. A partial batch at the end (a fetch cut at its size limit) ends the records, as
 * in kafkajs; any other failure fails the fetch, as in kafkajs.
 *
 * The partitions of a fetch response are started together too (`decodeFetchResponse`): caught up
 * with a topic written at a steady rate, a fetch holds a batch or two per partition, and decoding
 * the partitions one after another, as kafkajs does, inflated each on its own.
 */
import { createRequire } from 'node:module';
import { adapts, observeFetched } from './fetch-sizes.ts';
import { replaceKafkajsModule } from './kafkajs-module.ts';
// The batch decoder below loads kafkajs's record decoder, which sluice replaces first.
import './record-decoding.ts';

/** What this reads of kafkajs's Decoder. */
interface KafkajsDecoder {
  offset: number;
  readInt32(): number;
  readBytes(length: number): Buffer;
  canReadBytes(length: number): boolean;
}

interface DecodedBatch {
  records: unknown[];
}

type DecodeMessages = (decoder: KafkajsDecoder) => Promise<unknown[]>;

const require = createRequire(import.meta.url);
const DecoderClass = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => KafkajsDecoder;
const decodeMessageSet = require('kafkajs/src/protocol/messageSet/decoder.js') as (decoder: KafkajsDecoder, size: number) => unknown[];
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: KafkajsDecoder) => Promise<DecodedBatch>;

/** Record batches (message format 2); older formats are message sets. */
const MAGIC_BYTE = 2;
/** Where the magic byte sits, the same in every message format (kafkajs's decodeMessages). */
const MAGIC_OFFSET = 16;
/** The smallest record batch: its header. */
const RECORD_BATCH_OVERHEAD = 49;
/**
 * Batches decompressing at once, and their compressed bytes (one batch is started whatever its
 * size). Each holds an output buffer sized from its compressed bytes (codecs.ts), or, inflated in
 * a group, exactly what its gzip trailer declares (gzip-groups.ts), so this bounds the
 * memory a fetch takes: a backlog of large batches (hundreds of events each), whose inflating
 * already keeps the thread pool busy, is decoded one or two at a time (kafkajs: one); small ones
 * up to 32 at a time, which gzip inflates in one call (gzip-groups.ts).
 */
export const AHEAD = 32;
export const AHEAD_BYTES = 64 * 1024;

/** What a partition's decoded record batches took compressed, and their records' keys and values decompressed. */
export type FetchedBytes = (compressed: number, decompressed: number) => void;

/** The bytes of a record's key and value, as kafkajs decodes them. */
function recordBytes(record: unknown): number {
  const { key, value } = record as { key?: unknown; value?: unknown };
  return (Buffer.isBuffer(key) ? key.length : 0) + (Buffer.isBuffer(value) ? value.length : 0);
}

/**
 * kafkajs's decodeMessages: the records of one partition's record set, in order. `fetched`, when
 * given, hears what the whole batches decoded took (fetch-sizes.ts learns a topic's compression
 * from it; a partial batch at the end is not counted).
 */
export async function decodeMessages(decoder: KafkajsDecoder, fetched?: FetchedBytes): Promise<unknown[]> {
  const size = decoder.readInt32();
  if (size <= 0 || !decoder.canReadBytes(size)) return [];
  const set = decoder.readBytes(size);
  const batches = new DecoderClass(set);
  if (set.readInt8(MAGIC_OFFSET) !== MAGIC_BYTE) return decodeMessageSet(batches, size);

  const records: unknown[] = [];
  const inFlight: { batch: Promise<DecodedBatch>; bytes: number }[] = [];
  /** Starts decoding the next batch if there is one and it fits; whether it did. */
  const startNext = (): boolean => {
    if (!batches.canReadBytes(RECORD_BATCH_OVERHEAD)) return false;
    // FirstOffset:int64, then Length:int32 (the bytes after it).
    const bytes = set.readInt32BE(batches.offset + 8);
    if (inFlight.length > 0 && (inFlight.length >= AHEAD || inFlight.reduce((sum, b) => sum + b.bytes, bytes) > AHEAD_BYTES)) return false;
    const batch = decodeRecordBatch(batches);
    // Handled at once: it may fail before its turn (a partial batch fails as it starts), and an
    // unhandled rejection would end the process. Its turn's await still sees the failure.
    batch.catch(() => {});
    inFlight.push({ batch, bytes });
    return true;
  };
  let compressed = 0;
  let decompressed = 0;
  const done = (): unknown[] => {
    if (fetched && compressed > 0) fetched(compressed, decompressed);
    return records;
  };
  try {
    for (;;) {
      while (startNext());
      const next = inFlight.shift();
      if (next === undefined) return done();
      const batch = await next.batch;
      // The batch header's Length counts the bytes after FirstOffset and Length themselves.
      compressed += next.bytes + 12;
      for (const record of batch.records) {
        records.push(record);
        if (fetched) decompressed += recordBytes(record);
      }
    }
  } catch (err) {
    if ((err as { name?: unknown }).name === 'KafkaJSPartialMessageError') return done();
    throw err;
  }
}

/** What this reads of kafkajs's Decoder for a fetch response's headers. */
interface ResponseDecoder extends KafkajsDecoder {
  buffer: Buffer;
  readInt16(): number;
  slice(length: number): ResponseDecoder;
  forward(length: number): void;
  readInt64(): { toString(): string };
  readString(): string | null;
  readArray<T>(reader: (decoder: ResponseDecoder) => T): T[];
}

/** A partition of a fetch response: its header as kafkajs gives it, and its records (being decoded already, or once asked). */
interface StartedPartition {
  header: object;
  messages: () => Promise<unknown[]>;
}

/**
 * Reads a partition's header and starts decoding its records if the record sets started so far
 * (`budget.started` compressed bytes) leave room within AHEAD_BYTES, as the first always does; a
 * larger one is cut out of the response to be decoded in its turn. In a backlog each partition
 * brings a megabyte, and six of them inflating at once took a drain's peak RSS from 0.87 to 1.2 GiB.
 */
function startPartition(decoder: ResponseDecoder, budget: { started: number }, topic: string | null): StartedPartition {
  const header = {
    partition: decoder.readInt32(),
    errorCode: decoder.readInt16(),
    highWatermark: decoder.readInt64().toString(),
    lastStableOffset: decoder.readInt64().toString(),
    // (sic: kafkajs's name for log_start_offset)
    lastStartOffset: decoder.readInt64().toString(),
    abortedTransactions: decoder.readArray((d) => ({ producerId: d.readInt64().toString(), firstOffset: d.readInt64().toString() })),
    preferredReadReplica: decoder.readInt32(),
  };
  // The record set's size, which decodeMessages reads again.
  const size = decoder.canReadBytes(4) ? decoder.buffer.readInt32BE(decoder.offset) : 0;
  const fetched: FetchedBytes | undefined = topic !== null && adapts(topic) ? (c, d) => observeFetched(topic, c, d) : undefined;
  if (budget.started > 0 && size > 0 && budget.started + size > AHEAD_BYTES && decoder.canReadBytes(4 + size)) {
    const own = decoder.slice(4 + size);
    decoder.forward(4 + size);
    return { header, messages: () => decodeMessages(own, fetched) };
  }
  budget.started += Math.max(0, size);
  const messages = decodeMessages(decoder, fetched);
  // Awaited in its turn below; handled now, as a later partition may fail before its turn.
  messages.catch(() => {});
  return { header, messages: () => messages };
}

/**
 * kafkajs's fetch v11 response decoder (what it uses with Kafka 2.3 and later), with the
 * partitions' records decoded at once (within AHEAD_BYTES): the same value, the same failure (the
 * first partition's in order), the same decoder position.
 */
export async function decodeFetchResponse(rawData: Buffer) {
  const decoder = new DecoderClass(rawData) as ResponseDecoder;
  const clientSideThrottleTime = decoder.readInt32();
  const errorCode = decoder.readInt16();
  const sessionId = decoder.readInt32();
  const budget = { started: 0 };
  const started = decoder.readArray((d) => {
    const topicName = d.readString();
    return { topicName, partitions: d.readArray((p) => startPartition(p, budget, topicName)) };
  });
  const responses = [];
  for (const { topicName, partitions } of started) {
    const decoded = [];
    for (const { header, messages } of partitions) decoded.push({ ...header, messages: await messages() });
    responses.push({ topicName, partitions: decoded });
  }
  // As kafkajs: the broker did not throttle this request; a clientSideThrottleTime asks us to.
  return { throttleTime: 0, clientSideThrottleTime, errorCode, sessionId, responses };
}

/** kafkajs's own, for the tests to compare with. */
export const kafkajsDecodeMessages: DecodeMessages = replaceKafkajsModule<DecodeMessages>({
  module: 'kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js',
  requiredBy: 'kafkajs/src/protocol/requests/fetch/v11/response.js',
  replacement: decodeMessages,
  mark: Symbol.for('sluice.kafkajs.fetched-batches'),
  what: 'its decoding of fetched record batches',
});

interface FetchResponseModule {
  decode(rawData: Buffer): Promise<unknown>;
  parse(data: unknown): unknown;
}
const v11Response = 'kafkajs/src/protocol/requests/fetch/v11/response.js';
// v11's parse is v1's (it turns partition error codes into errors).
const { parse } = require('kafkajs/src/protocol/requests/fetch/v1/response.js') as Pick<FetchResponseModule, 'parse'>;

/** kafkajs's own fetch v11 response module, for the tests to compare with; its parse is kept. */
export const kafkajsFetchResponse: FetchResponseModule = replaceKafkajsModule<FetchResponseModule>({
  module: v11Response,
  // fetch/index.js requires it when the first fetch is made.
  requiredBy: v11Response,
  replacement: { decode: decodeFetchResponse, parse },
  mark: Symbol.for('sluice.kafkajs.fetch-response'),
  what: 'its decoding of fetch responses',
});
