/**
 * `kafka` sink: writes records as JSON (or, with `value_format: raw`, text and bytes as they are) to
 * a topic (fixed, or chosen per record by an expression), keyed by an expression, through an
 * idempotent producer with acks=all. `write` resolves only once every message is acknowledged by
 * the brokers. A message larger than the topic takes is refused (its record goes to
 * `<sink>.errors`); a write that fails otherwise (the brokers unreachable) throws, so the records'
 * source offsets are never committed.
 */
import {
  PrepareFailure,
  type ComponentContext,
  type OutboundMessage,
  type Prepared,
  type RefusedMessage,
  type Sink,
  type SinkDef,
  type WriteResult,
} from '../../engine/component.ts';
import { parseDuration } from '../../engine/duration.ts';
import { ConfigError, ConnectionError, RecordError, errorMessage } from '../../engine/errors.ts';
import { EvalFailure, compileExpression, evaluateRecords, type Expression } from '../../engine/expression.ts';
import { stringifyJson, stringifyJsonForWire } from '../../engine/json.ts';
import type { Headers, StreamRecord } from '../../engine/record.ts';
import { duration, expression, object } from '../../engine/schema.ts';
import { KAFKA_TRANSACTION } from '../../io/kafka/changelog-store.ts';
import {
  COMPRESSIONS,
  DEFAULT_CHUNK_SIZE,
  createProducer,
  producedBytes,
  isMessageTooLarge,
  type Compression,
  type KafkaProducer,
  type ProducedMessage,
  type ProducerOptions,
} from '../../io/kafka/client.ts';
import {
  connectionFromConfig,
  connectionSchemaProperties,
  describeConnectionConfig,
  type ConnectionConfig,
  type KafkaConnection,
} from '../../io/kafka/connection.ts';
import { LingerQueue } from '../../io/kafka/linger-queue.ts';
import { sharedWritersOf, type SharedWriter } from '../../io/kafka/shared-writer.ts';
import type { MetricDefinition } from '../../engine/metrics.ts';
import { SINK_RETRIES } from '../../engine/runtime-metrics.ts';

/** The sink's codec unless `compression` says otherwise (Kafka's own producers default to none). */
const DEFAULT_COMPRESSION: Compression = 'gzip';

const KAFKA_REFUSED = 'sluice_kafka_refused_total';
const KAFKA_REFUSED_METRIC: MetricDefinition = {
  name: KAFKA_REFUSED,
  type: 'counter',
  help: 'Messages larger than max_message_bytes or than the broker takes, sent to the errors port instead.',
  labels: ['node'],
};

export interface KafkaSinkConfig extends ConnectionConfig {
  topic?: string;
  topic_expr?: string;
  key?: string;
  value?: string;
  headers?: Record<string, string>;
  value_format?: ValueFormat;
  max_message_bytes?: number;
  compression?: Compression;
  linger?: string;
  batch_size?: number;
  max_in_flight?: number;
  retry_for?: string;
}

/** `json`: every value as JSON. `raw`: text and bytes as they are (a dead letter's original message), other values as JSON. */
export type ValueFormat = 'json' | 'raw';

/**
 * Batches on their way at once. 1 waits for each produce acknowledgement (a linger plus a round
 * trip with acks=all) before preparing the next batch; on a local broker 4 measured no faster and
 * no lower in latency, so the default stays 1. A remote cluster's longer round trips are what it is for.
 */
export const DEFAULT_MAX_IN_FLIGHT = 1;

/** Java's producer default (`max.request.size`), just under the brokers' default `message.max.bytes`. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576;

const schema = object(
  'Write records to Kafka as JSON. Set exactly one of `topic` and `topic_expr`.',
  {
    ...connectionSchemaProperties(),
    topic: { type: 'string', minLength: 1, description: 'The topic every record goes to.', examples: ['processed-employee-activities'] },
    topic_expr: expression('JSONata choosing the topic per record; must give a non-empty string.', ['"activities-" & activity_type']),
    key: expression(
      'JSONata for the message key. Strings are written as they are, other values as JSON; no result means no key. Default: the record key.',
      ['$string(employee_id)'],
    ),
    value: expression('JSONata projection of the value to write. Default: the record value.', ['{ "id": id, "type": activity_type }']),
    value_format: {
      type: 'string',
      enum: ['json', 'raw'],
      default: 'json',
      description:
        '`json` writes every value as JSON (a string becomes a JSON string, quoted). `raw` writes a string or bytes as they are, and any other value as JSON: for a dead-letter topic, where a message that could not be decoded must keep its original bytes (as Kafka Connect\'s dead-letter queue does with the ByteArrayConverter).',
      examples: ['raw'],
    },
    max_message_bytes: {
      type: 'integer',
      minimum: 1,
      default: DEFAULT_MAX_MESSAGE_BYTES,
      description:
        'A message whose key, value and headers take more bytes is not sent: its record goes to `<sink>.errors` (Kafka\'s own limit is the topic\'s `max.message.bytes`, 1 MB by default; set this to it when it is lower). A message the broker refuses as too large is refused the same way.',
      examples: [1048576],
    },
    headers: {
      type: 'object',
      additionalProperties: expression('JSONata for the header value; strings as they are, other values as JSON.', ['$meta.op']),
      description: 'Message headers: name -> JSONata. A header whose expression gives no result is left out.',
      examples: [{ source_op: '$meta.op', pipeline: '"employee-activity"' }],
    },
    compression: {
      type: 'string',
      enum: [...COMPRESSIONS],
      default: DEFAULT_COMPRESSION,
      description:
        'Compression of produce requests, as Kafka\'s `compression.type`. zstd is not offered: sluice reads it (the kafka source reads gzip, snappy, lz4 and zstd) but cannot write it.',
      examples: ['lz4'],
    },
    linger: duration(
      'How long a write waits for others to share its produce request (default 5ms). Writes whose linger ends while a request is on its way wait for it and go together in the next, as with Kafka\'s producer: under load requests grow instead of queueing.',
      ['5ms', '50ms'],
    ),
    batch_size: {
      type: 'integer',
      minimum: 1,
      maximum: 10_000,
      default: DEFAULT_CHUNK_SIZE,
      description: 'Most messages in one produce request (larger batches are split).',
      examples: [2000],
    },
    max_in_flight: {
      type: 'integer',
      minimum: 1,
      maximum: 64,
      default: DEFAULT_MAX_IN_FLIGHT,
      description:
        "How many batches of records may be on their way to the brokers at once, as Benthos's `max_in_flight`: the next batch is prepared and sent while earlier ones wait for the brokers' acknowledgement. Order is kept either way (one producer, one request in flight, requests in the order of the records), except that a batch the broker refused as too large is sent again one message at a time after what was sent meanwhile; records are acknowledged in order. `1` waits for each batch before preparing the next.",
      examples: [4],
    },
    retry_for: duration('How long to keep retrying a failing write (with backoff) before the run fails.', ['2m']),
  },
  ['brokers'],
  {
    oneOf: [{ required: ['topic'] }, { required: ['topic_expr'] }],
    examples: [{ brokers: '${KAFKA_BROKERS:-localhost:9092}', topic: 'processed-employee-activities', key: '$string(employee_id)' }],
  },
);

/** Kafka key bytes for an expression result: strings as is, nothing as no key, anything else as JSON. */
export function encodeKey(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return stringifyJson(value);
}

/** A header value: strings as is, anything else as JSON; undefined when the expression gave nothing. */
export function encodeHeader(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : stringifyJson(value);
}

/**
 * The value bytes of a prepared message: JSON, and a tombstone (null) for a null value. `raw`: a
 * string or bytes as they are (a dead letter keeps the message it was), anything else as JSON.
 */
export function encodeValue(value: unknown, format: ValueFormat = 'json'): string | Buffer | null {
  if (value === undefined || value === null) return null;
  if (format === 'raw' && (typeof value === 'string' || Buffer.isBuffer(value))) return value;
  return stringifyJsonForWire(value);
}


/** How the sink gets its producer; tests pass one that refuses what they choose. */
export type ProducerFactory = (connection: KafkaConnection, options: ProducerOptions, logger: ComponentContext['logger']) => KafkaProducer;

interface Compiled {
  topic: string | Expression;
  key?: Expression;
  value?: Expression;
  headers: [string, Expression][];
}

function compile(config: KafkaSinkConfig, where: string): Compiled {
  if ((config.topic === undefined) === (config.topic_expr === undefined)) {
    throw new ConfigError('E_KAFKA_TOPIC', 'set exactly one of `topic` and `topic_expr`', where);
  }
  const c: Compiled = {
    topic: config.topic ?? compileExpression(config.topic_expr!),
    headers: Object.entries(config.headers ?? {}).map(([name, src]) => [name, compileExpression(src)]),
  };
  if (config.key !== undefined) c.key = compileExpression(config.key);
  if (config.value !== undefined) c.value = compileExpression(config.value);
  return c;
}

function check(result: unknown, rec: StreamRecord, what: string, where: string): unknown {
  if (result instanceof EvalFailure) {
    throw new RecordError(
      'E_SINK_EXPR',
      `${what} expression failed for the record at ${rec.position.partition}@${rec.position.offset}: ${result.error.message}`,
      where,
      { cause: result.error },
    );
  }
  return result;
}

export class KafkaSink implements Sink {
  /** Under exactly-once: this instance's queue into its task's transaction. */
  private queue: LingerQueue<ProducedMessage> | undefined;
  /** Otherwise: the writer it shares with the sink's instances in the run's other tasks. */
  private writer: SharedWriter | undefined;
  private readonly compiled: Compiled;
  private readonly where: string;
  readonly maxInFlight: number;

  constructor(
    private readonly config: KafkaSinkConfig,
    private readonly connection: KafkaConnection,
    private readonly ctx: ComponentContext,
    private readonly makeProducer: ProducerFactory = createProducer,
  ) {
    this.where = `sinks.${ctx.name}`;
    this.compiled = compile(config, this.where);
    this.maxInFlight = config.max_in_flight ?? DEFAULT_MAX_IN_FLIGHT;
    ctx.metrics.define(KAFKA_REFUSED_METRIC);
  }

  /** Under exactly-once its writes join the checkpoint's transaction. */
  get writesInCheckpoint(): boolean {
    return this.queue !== undefined;
  }

  async open(): Promise<void> {
    const linger = this.config.linger ? parseDuration(this.config.linger) : 5;
    const batchSize = this.config.batch_size ?? DEFAULT_CHUNK_SIZE;
    const compression = this.config.compression ?? DEFAULT_COMPRESSION;
    if (this.ctx.checkpoints?.delivery === 'exactly-once') {
      // Written into the checkpoint's transaction: visible to read_committed readers only once the
      // checkpoint that covers them (with the state and the consumed offsets) commits.
      const tx = this.ctx.checkpoints.shared.get(KAFKA_TRANSACTION);
      if (!tx) throw new ConfigError('E_DELIVERY', 'delivery: exactly-once, but no Kafka checkpoint transaction is set up (checkpoint.store must be kafka)', this.where);
      if (tx.brokers.join(',') !== this.connection.brokers.join(',')) {
        throw new ConfigError(
          'E_DELIVERY',
          `delivery: exactly-once needs this sink on the brokers that keep the state (${tx.brokers.join(',')}), not ${this.connection.brokers.join(',')}: one transaction cannot span two clusters`,
          this.where,
        );
      }
      this.queue = new LingerQueue((items) => tx.send(items, compression), linger, batchSize);
      return;
    }
    const retryForMs = this.config.retry_for ? parseDuration(this.config.retry_for) : 120_000;
    // The instances of this sink in the run's other tasks write through the same producer and
    // queue (shared-writer.ts): one produce request for what they all wrote meanwhile.
    const key = JSON.stringify([this.ctx.name, this.connection, compression, batchSize, linger, retryForMs]);
    const writer = await sharedWritersOf(this.ctx.metrics, this.makeProducer).acquire(
      key,
      () =>
        this.makeProducer(
          this.connection,
          { compression, chunkSize: batchSize, retryForMs, onRetry: () => this.ctx.metrics.inc(SINK_RETRIES, { node: this.ctx.name }) },
          this.ctx.logger,
        ),
      linger,
      batchSize,
    );
    this.writer = writer;
  }

  /**
   * One message per record; a record whose key, value, topic_expr or header expression fails (or
   * whose topic_expr gives no topic name) gets a PrepareFailure, and the engine drops it.
   */
  prepare(records: readonly StreamRecord[]): Prepared[] | Promise<Prepared[]> {
    const { topic, key, value, headers } = this.compiled;
    const columns: (unknown[] | Promise<unknown[]> | undefined)[] = [
      typeof topic === 'string' ? undefined : evaluateRecords(topic, records),
      key ? evaluateRecords(key, records) : undefined,
      value ? evaluateRecords(value, records) : undefined,
      ...headers.map(([, e]) => evaluateRecords(e, records)),
    ];
    const build = (cols: (unknown[] | undefined)[]): Prepared[] => {
      const [topics, keys, values, ...headerCols] = cols;
      const out: Prepared[] = new Array(records.length);
      const message = (i: number): OutboundMessage => {
        const rec = records[i]!;
        const msg: OutboundMessage = {
          key: encodeKey(keys ? check(keys[i], rec, 'key', this.where) : rec.key),
          value: values ? check(values[i], rec, 'value', this.where) : rec.value,
        };
        if (topics) {
          const t = check(topics[i], rec, 'topic_expr', this.where);
          if (typeof t !== 'string' || t.length === 0) {
            throw new RecordError(
              'E_SINK_TOPIC',
              `topic_expr gave ${JSON.stringify(t) ?? 'nothing'}, not a topic name, for the record at ${rec.position.partition}@${rec.position.offset}`,
              this.where,
            );
          }
          msg.topic = t;
        } else {
          msg.topic = topic as string;
        }
        // Record headers pass through (as in Kafka Streams): an errors port's reason headers
        // reach a dead-letter topic. `headers:` adds to them or overrides them.
        if (headerCols.length) {
          const h: Headers = { ...rec.headers };
          headerCols.forEach((col, j) => {
            const v = encodeHeader(check(col![i], rec, `header ${headers[j]![0]}`, this.where));
            if (v !== undefined) h[headers[j]![0]] = v;
          });
          msg.headers = h;
        } else if (Object.keys(rec.headers).length > 0) {
          msg.headers = { ...rec.headers };
        }
        return msg;
      };
      for (let i = 0; i < records.length; i++) {
        try {
          out[i] = message(i);
        } catch (err) {
          // Only this record is unwritable; anything else is a bug and fails the run.
          if (!(err instanceof RecordError)) throw err;
          out[i] = new PrepareFailure(err);
        }
      }
      return out;
    };
    if (columns.some((c) => c instanceof Promise)) {
      return Promise.all(columns).then(build);
    }
    return build(columns as (unknown[] | undefined)[]);
  }

  /**
   * Sends the messages; resolves once the brokers have them all. A message over `max_message_bytes`
   * is refused unsent. When the broker refuses a request as too large (a topic whose limit is lower),
   * its messages are sent again one at a time (at-least-once: the others of the request may have
   * been written already, and are written again) and those it refuses alone are refused. Under
   * exactly-once such a refusal fails the run: the messages share the checkpoint's transaction.
   */
  async write(messages: OutboundMessage[]): Promise<WriteResult | void> {
    const target = this.writer ?? this.queue;
    if (!target) throw new ConfigError('E_SINK_NOT_OPEN', 'kafka sink written before open()', this.where);
    const limit = this.config.max_message_bytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const format = this.config.value_format ?? 'json';
    const produced: ProducedMessage[] = [];
    const indices: number[] = [];
    const refused: RefusedMessage[] = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const p: ProducedMessage = {
        topic: m.topic ?? (this.compiled.topic as string),
        key: encodeKey(m.key),
        value: encodeValue(m.value, format),
        ...(m.headers && Object.keys(m.headers).length ? { headers: m.headers } : {}),
      };
      const bytes = producedBytes(p);
      if (bytes > limit) {
        refused.push({ index: i, error: this.tooLarge(`is ${bytes} bytes, more than max_message_bytes (${limit})`) });
        continue;
      }
      produced.push(p);
      indices.push(i);
    }
    if (produced.length > 0) {
      try {
        await target.add(produced);
      } catch (err) {
        if (!isMessageTooLarge(err)) throw err;
        const writer = this.writer;
        if (!writer) {
          throw new ConnectionError(
            'E_KAFKA_PRODUCE',
            `${errorMessage(err)}: the broker refused a message as too large inside the checkpoint transaction; set max_message_bytes to the topic's max.message.bytes so such messages are refused before they are sent`,
            this.where,
            { cause: err },
          );
        }
        // With no flush of the sink's other instances in between: they share the producer.
        refused.push(...(await writer.exclusive(() => this.sendOneByOne(writer.producer, produced, indices))));
      }
    }
    if (refused.length === 0) return;
    this.ctx.metrics.inc(KAFKA_REFUSED, { node: this.ctx.name }, refused.length);
    refused.sort((a, b) => a.index - b.index);
    return { refused };
  }

  /** After the broker refused a request as too large: each message alone, so only those it refuses alone are refused. */
  private async sendOneByOne(producer: KafkaProducer, produced: readonly ProducedMessage[], indices: readonly number[]): Promise<RefusedMessage[]> {
    this.ctx.logger.warn({ sink: this.ctx.name, messages: produced.length }, 'the broker refused a message as too large; sending the batch one message at a time to find which');
    const refused: RefusedMessage[] = [];
    for (let j = 0; j < produced.length; j++) {
      try {
        await producer.send([produced[j]!]);
      } catch (err) {
        if (!isMessageTooLarge(err)) throw err;
        refused.push({ index: indices[j]!, error: this.tooLarge(`of ${producedBytes(produced[j]!)} bytes was refused by the broker as too large (the topic's max.message.bytes)`) });
      }
    }
    return refused;
  }

  private tooLarge(what: string): RecordError {
    return new RecordError('E_MESSAGE_TOO_LARGE', `the message ${what}`, this.where);
  }

  async close(): Promise<void> {
    await this.queue?.drain();
    await this.writer?.release().catch((err: unknown) => this.ctx.logger.warn({ error: errorMessage(err) }, 'kafka producer close failed'));
    this.queue = undefined;
    this.writer = undefined;
  }
}

export const kafkaSink: SinkDef<KafkaSinkConfig> = {
  family: 'sink',
  name: 'kafka',
  summary: 'Write records to Kafka as JSON through an idempotent producer (acks=all, gzip by default), keyed by an expression.',
  description:
    'Writes are batched (`linger`, `batch_size`) and retried with backoff for `retry_for`; running as tasks, the sink\'s instances in one process share one producer, so what the tasks wrote meanwhile goes in one request (under exactly-once each task writes into its own transaction instead); when the brokers stay unreachable the run fails and the source offsets are not committed. A record that cannot become a message (its `key`, `value`, `topic_expr` or `headers` expression fails, or its `topic_expr` gives no topic name) and a message larger than `max_message_bytes` or than the broker takes go to `<sink>.errors` with the reason (or are counted, logged and dropped when nothing reads it); the rest are written. `value_format: raw` writes text and bytes as they are, so a dead-letter topic holds the original message. Message timestamps are the write time, so topic retention counts from then.',
  schema,
  describe(config) {
    const conn = describeConnectionConfig(config);
    const topic = config.topic ?? `topic_expr ${config.topic_expr}`;
    return `kafka ${topic}, key ${config.key ?? 'record key'}${config.value_format === 'raw' ? ', raw values' : ''}, ${config.compression ?? DEFAULT_COMPRESSION}, at ${conn}`;
  },
  create(config, ctx) {
    return new KafkaSink(config, connectionFromConfig(config, `sluice-${ctx.name}`, `sinks.${ctx.name}`), ctx);
  },
};
