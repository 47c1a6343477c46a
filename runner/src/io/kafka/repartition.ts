/**
 * The repartition topic between two stages (plan/stages.ts): a `repartition` sink that writes
 * records keyed by their group key, and a `repartition` format that reads them back, with the
 * watermark markers that let the reading window know how far each upstream task has got.
 * Internal: a spec never names them; the stage split inserts them.
 *
 * Each record has a partition key: the values of the `key` expressions as one canonical JSON array
 * (`["emp-7",3]`: object keys sorted, missing values as null), and goes to partition murmur2(key
 * bytes) mod `partitions`, as Kafka's default partitioner and Kafka Streams place a key.
 *
 * Data message (a pack of the records of one write that go to one partition, in order), always on
 * an explicit partition:
 *   key      none
 *   value    one line per record, each the JSON envelope `{"value": <record value>, "meta": <record
 *            meta>, "time": <record time, epoch ms>, "key": <record key>, "headers": <record
 *            headers>}`; `key` is left out when the record key is not JSON (bytes) or absent, and
 *            read back as null; `headers` is left out when the record has none
 *   headers  `sluice-from: <origin>` (the writing task, `0_3`), `sluice-records: <lines>`
 * A message per record cost kafkajs an encoding and a decoding of each message and its headers,
 * and the engine the handling of each: packs took a sixth off sluice's CPU in a drain of the
 * employee pipeline. JSON text never holds a raw line break, so the lines split cleanly.
 *
 * Read too, as written before packs: a message without `sluice-records` is one record, its
 * envelope without `headers`, its headers the message's.
 *
 * Watermark marker (at every checkpoint that has news, to every partition, after the data):
 *   key `__wm`, no value, headers `sluice-ctl: wm`, `sluice-from: <origin>`, `sluice-wm: <highest
 *   event time written, epoch ms; empty before the first record>`, `sluice-idle: 0|1`,
 *   `sluice-n: <tasks of the writing stage>`.
 */
import {
  PrepareFailure,
  type ComponentContext,
  type Decoded,
  type Format,
  type FormatDef,
  type OutboundMessage,
  type Prepared,
  type ProgressMarker,
  type RefusedMessage,
  type Sink,
  type SinkDef,
  type WriteResult,
} from '../../engine/component.ts';
import { parseDuration } from '../../engine/duration.ts';
import { ConfigError, RecordError, errorMessage } from '../../engine/errors.ts';
import type { EventTimeFormat } from '../../engine/event-time.ts';
import { EvalFailure, compileExpression, evaluateRecords, type Expression } from '../../engine/expression.ts';
import { parseJson, stringifyJson } from '../../engine/json.ts';
import type { MetricDefinition } from '../../engine/metrics.ts';
import { throwIfRefused, type Headers, type RawMessage, type StreamRecord } from '../../engine/record.ts';
import { SINK_RETRIES } from '../../engine/runtime-metrics.ts';
import { duration, expression, object } from '../../engine/schema.ts';
import { toEpochMillis } from '../../engine/time.ts';
import { KAFKA_TRANSACTION } from './changelog-store.ts';
import { murmur2 } from './murmur2.ts';
import {
  DEFAULT_CHUNK_SIZE,
  createProducer,
  isUnknownTopic,
  type KafkaAdmin,
  type KafkaProducer,
  type ProducedMessage,
  type ProducerOptions,
} from './client.ts';
import {
  connectionFromConfig,
  connectionSchemaProperties,
  describeConnectionConfig,
  type ConnectionConfig,
  type KafkaConnection,
} from './connection.ts';

/** The `repartition` sink's config, made by the stage split (and `partitions` at start). */
export interface RepartitionSinkConfig extends ConnectionConfig {
  topic: string;
  /** JSONata expressions whose values, together, are the partition key. */
  key: string[];
  /** The reading window's `time` expression (absent: the record's own time): markers carry the highest seen. */
  time?: string;
  /** The reading window's `idle`: a task that wrote nothing this long marks itself idle. */
  idle?: string;
  /** The topic's partition count; every marker goes to each. Filled in at start. */
  partitions?: number;
  /** Whether the records' `$meta` travels (default true); false when nothing after the repartition reads it. */
  meta?: boolean;
}

/** The `repartition` format's config. */
export interface RepartitionFormatConfig {
  /** The writing stage's id: origins are `<upstream>_<task>`. */
  upstream: string;
  /** How many tasks the writing stage has (its input's partition count). Filled in at start. */
  tasks?: number;
}

/* ------------------------------------------------------------------ wire format */

/** Header names of the wire format. */
export const HEADER_FROM = 'sluice-from';
export const HEADER_CTL = 'sluice-ctl';
export const HEADER_WM = 'sluice-wm';
export const HEADER_IDLE = 'sluice-idle';
export const HEADER_TASKS = 'sluice-n';
export const HEADER_RECORDS = 'sluice-records';
/** `sluice-ctl` of a watermark marker. */
export const CTL_WATERMARK = 'wm';
/** The key of every marker. */
export const MARKER_KEY = '__wm';
/** The origin of a writer that is not a task (a pipeline run whole). */
export const DEFAULT_ORIGIN = '0_0';
/** Markers go out at least this often (ms) while checkpoints are taken, even when nothing changed. */
export const MARKER_REFRESH_MS = 10_000;
/** The default `idle`: a task that wrote nothing this long marks itself idle. */
export const DEFAULT_IDLE_MS = 60_000;
/** What a repartition message may take (the brokers' default `message.max.bytes`, as the topic is created with). */
export const MAX_MESSAGE_BYTES = 1_048_576;
/** Room in a message for its headers and framing: a record's line may take the rest. */
const MESSAGE_OVERHEAD_BYTES = 1_024;
/**
 * A pack is closed before its lines pass this many bytes (a single larger line gets one of its
 * own). Big enough that the per-message costs vanish; small enough that a reader never waits long
 * for one, or holds much for it.
 */
export const PACK_BYTES = 262_144;

/** A value as canonical JSON: object keys sorted at every depth, so equal values give equal text. */
function canonical(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value === undefined ? null : value;
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(canonical);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return canonical((toJSON as () => unknown).call(value));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[k];
    if (v !== undefined && typeof v !== 'function') out[k] = canonical(v);
  }
  return out;
}

/**
 * The partition key of a record: its key expressions' values as one canonical JSON array. Values
 * the window groups together (missing as null, numbers and bigints of equal value) give equal text.
 */
export function partitionKey(values: readonly unknown[]): string {
  return stringifyJson(values.map(canonical));
}

/** The partition of a key: `toPositive(murmur2(utf8(key))) % partitions`, as Kafka's default partitioner. */
export function partitionOf(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

/** The value of a data message: the record as it was, except its headers (which travel as headers). */
export interface Envelope {
  value: unknown;
  meta: Record<string, unknown>;
  time: number;
  key?: unknown;
  headers?: Headers;
}

/** Whether a record key can travel as JSON (bytes and undefined cannot: the key is then left out). */
function jsonKey(key: unknown): boolean {
  if (key === undefined || typeof key === 'function' || typeof key === 'symbol') return false;
  return !(key instanceof Uint8Array);
}

/**
 * The envelope of a record. Without `meta` its `$meta` stays behind: a Debezium record's (the
 * before image, the source block with its 19-digit ts_ns) is most of what would cross the shuffle.
 * Its headers travel inside, but never one that the wire format itself uses (a record header must
 * not make a data message look like a marker, nor claim another origin).
 */
export function envelopeOf(rec: StreamRecord, meta = true): Envelope {
  const env: Envelope = { value: rec.value, meta: meta ? rec.meta : {}, time: rec.time };
  if (jsonKey(rec.key)) env.key = rec.key;
  const headers = recordHeaders(rec.headers);
  if (headers !== undefined) env.headers = headers;
  return env;
}

/** Header names of the wire format, which a record's own headers may not carry across. */
const WIRE_HEADERS = new Set([HEADER_FROM, HEADER_CTL, HEADER_WM, HEADER_IDLE, HEADER_TASKS, HEADER_RECORDS]);

/** A record's headers as its envelope carries them: undefined for none, the wire format's own left out. */
function recordHeaders(headers: Headers): Headers | undefined {
  let clean = true;
  let any = false;
  for (const name in headers) {
    any = true;
    if (WIRE_HEADERS.has(name)) clean = false;
  }
  if (!any) return undefined;
  if (clean) return headers;
  // fromEntries: a header named `__proto__` stays a header.
  const kept: Headers = Object.fromEntries(Object.entries(headers).filter(([name]) => !WIRE_HEADERS.has(name)));
  return Object.keys(kept).length > 0 ? kept : undefined;
}

/** The headers of a watermark marker. */
export function markerHeaders(origin: string, time: number | undefined, idle: boolean, tasks: number): Headers {
  return {
    [HEADER_CTL]: CTL_WATERMARK,
    [HEADER_FROM]: origin,
    [HEADER_WM]: time === undefined ? '' : String(time),
    [HEADER_IDLE]: idle ? '1' : '0',
    [HEADER_TASKS]: String(tasks),
  };
}

/** The marker a message's headers carry; a string saying what is wrong with a malformed one; undefined for data. */
export function parseMarker(headers: Headers): ProgressMarker | string | undefined {
  if (headers[HEADER_CTL] === undefined) return undefined;
  if (headers[HEADER_CTL] !== CTL_WATERMARK) return `unknown ${HEADER_CTL} \`${headers[HEADER_CTL]}\``;
  const origin = headers[HEADER_FROM];
  if (!origin) return `no ${HEADER_FROM} header`;
  const wm = headers[HEADER_WM] ?? '';
  let time: number | undefined;
  if (wm !== '') {
    if (!/^-?\d+$/.test(wm)) return `${HEADER_WM} \`${wm}\` is not epoch milliseconds`;
    time = Number(wm);
  }
  const idle = headers[HEADER_IDLE];
  if (idle !== '0' && idle !== '1') return `${HEADER_IDLE} \`${idle ?? ''}\` is not 0 or 1`;
  return { origin, time, idle: idle === '1' };
}

/* ------------------------------------------------------------------ when markers go out */

/** What a task's markers say. */
export interface MarkerState {
  time: number | undefined;
  idle: boolean;
}

/**
 * Whether a checkpoint sends markers: always the first time, then when the highest event time or
 * the idle flag changed since the last markers, or `refreshMs` after them regardless (a reader that
 * started since, or a partition whose marker a compaction of the past lost, hears again).
 */
export function markersDue(last: (MarkerState & { at: number }) | undefined, current: MarkerState, now: number, refreshMs = MARKER_REFRESH_MS): boolean {
  if (!last) return true;
  return last.time !== current.time || last.idle !== current.idle || now - last.at >= refreshMs;
}

/* ------------------------------------------------------------------ the sink */

const REPARTITION_REFUSED = 'sluice_repartition_refused_total';
const REPARTITION_REFUSED_METRIC: MetricDefinition = {
  name: REPARTITION_REFUSED,
  type: 'counter',
  help: 'Records larger than a repartition topic takes, sent to the errors port instead.',
  labels: ['node'],
};

const sinkSchema = object(
  'Internal: writes the input of a window into its repartition topic, keyed by the group key, with watermark markers. Inserted by the stage split, never written in a spec.',
  {
    ...connectionSchemaProperties(),
    topic: { type: 'string', minLength: 1, description: 'The repartition topic: `<application id>-<step>-repartition`.', examples: ['employee-activity-hourly-repartition'] },
    key: {
      type: 'array',
      minItems: 1,
      items: expression('JSONata of one part of the partition key.', ['employee_id']),
      description: 'The expressions whose values, together, are the partition key (the window\'s group keys).',
      examples: [['employee_id', 'activity_type']],
    },
    time: expression('The reading window\'s event-time expression; absent: the record\'s own time. Markers carry the highest written.', ['occurred_at']),
    idle: duration('The reading window\'s `idle`: a task that wrote nothing this long marks itself idle.', ['1m']),
    partitions: { type: 'integer', minimum: 1, description: 'The topic\'s partition count; filled in at start.', examples: [12] },
    meta: {
      type: 'boolean',
      default: true,
      description: 'Whether each record\'s `$meta` travels with it; the stage split turns it off when no node after the repartition mentions `$meta`.',
      examples: [false],
    },
  },
  ['brokers', 'topic', 'key'],
);

/** How the sink gets its producer; tests pass a recording one. */
export type RepartitionProducerFactory = (connection: KafkaConnection, options: ProducerOptions, logger: ComponentContext['logger']) => KafkaProducer;

type Send = (messages: readonly ProducedMessage[]) => Promise<void>;

/** The lines of one message being packed. */
interface Pack {
  partition: number;
  lines: string[];
  bytes: number;
}

export class RepartitionSink implements Sink {
  private readonly where: string;
  private readonly keys: Expression[];
  private readonly time: Expression | undefined;
  private readonly idleMs: number;
  private readonly origin: string;
  private readonly tasks: number;
  /** Event time of each prepared message whose time could be evaluated, until it is written. */
  private readonly eventTimes = new WeakMap<OutboundMessage, number>();
  private producer: KafkaProducer | undefined;
  private send: Send | undefined;
  /** It writes into the checkpoint's transaction (decided at open). */
  private inTransaction = false;
  private partitions = 0;
  /** Highest event time written; undefined before the first. */
  private maxTime: number | undefined;
  /** Processing time of the last write (or of open): idleness counts from it. */
  private lastWriteAt: number;
  private lastMarkers: (MarkerState & { at: number }) | undefined;

  constructor(
    private readonly config: RepartitionSinkConfig,
    private readonly connection: KafkaConnection,
    private readonly ctx: ComponentContext,
    private readonly makeProducer: RepartitionProducerFactory = createProducer,
  ) {
    this.where = `sinks.${ctx.name}`;
    if (!config.key || config.key.length === 0) throw new ConfigError('E_REPARTITION', 'a repartition needs at least one key expression', this.where);
    this.keys = config.key.map((k) => compileExpression(k));
    this.time = config.time !== undefined ? compileExpression(config.time) : undefined;
    this.idleMs = config.idle ? parseDuration(config.idle) : DEFAULT_IDLE_MS;
    this.origin = ctx.task?.id ?? DEFAULT_ORIGIN;
    this.tasks = ctx.task?.partitions ?? 1;
    this.lastWriteAt = ctx.clock.now();
    ctx.metrics.define(REPARTITION_REFUSED_METRIC);
  }

  async open(): Promise<void> {
    const partitions = this.config.partitions;
    if (partitions === undefined || !Number.isInteger(partitions) || partitions < 1) {
      throw new ConfigError(
        'E_REPARTITION',
        `repartition topic \`${this.config.topic}\`: its partition count is not known (partitions: ${String(partitions)}); the runner sets it at start, after ensuring the topic`,
        this.where,
      );
    }
    this.partitions = partitions;
    this.lastWriteAt = this.ctx.clock.now();
    // Written into the checkpoint's transaction whenever there is one (tasks always have one, under
    // at-least-once too): data and markers become visible together with the offsets that cover
    // them, so a restarted upstream never writes a record into the topic twice. A duplicate here
    // would not be a duplicate output but a wrong count, since the window behind sums it again.
    const tx = this.ctx.checkpoints?.shared.get(KAFKA_TRANSACTION);
    if (tx || this.ctx.checkpoints?.delivery === 'exactly-once') {
      if (!tx) throw new ConfigError('E_DELIVERY', 'delivery: exactly-once, but no Kafka checkpoint transaction is set up (checkpoint.store must be kafka)', this.where);
      if (tx.brokers.join(',') !== this.connection.brokers.join(',')) {
        throw new ConfigError(
          'E_DELIVERY',
          `delivery: exactly-once needs the repartition topic on the brokers that keep the state (${tx.brokers.join(',')}), not ${this.connection.brokers.join(',')}: one transaction cannot span two clusters`,
          this.where,
        );
      }
      this.send = (messages) => tx.send(messages);
      this.inTransaction = true;
      return;
    }
    const producer = this.makeProducer(
      this.connection,
      {
        // Uncompressed, as Kafka Streams writes its repartition topics: compressing each small
        // request cost more of the main thread than the bytes saved on a local network.
        compression: 'none',
        chunkSize: DEFAULT_CHUNK_SIZE,
        retryForMs: 120_000,
        onRetry: () => this.ctx.metrics.inc(SINK_RETRIES, { node: this.ctx.name }),
      },
      this.ctx.logger,
    );
    await producer.connect();
    this.producer = producer;
    this.send = (messages) => producer.send(messages);
  }

  /** One message per record; a record whose key expression fails gets a PrepareFailure. */
  prepare(records: readonly StreamRecord[]): Prepared[] | Promise<Prepared[]> {
    const columns: (unknown[] | Promise<unknown[]>)[] = this.keys.map((k) => evaluateRecords(k, records));
    if (this.time) columns.push(evaluateRecords(this.time, records));
    if (columns.some((c) => c instanceof Promise)) return Promise.all(columns).then((cols) => this.build(records, cols));
    return this.build(records, columns as unknown[][]);
  }

  private build(records: readonly StreamRecord[], cols: unknown[][]): Prepared[] {
    const out: Prepared[] = new Array(records.length);
    const timeCol = this.time ? cols[this.keys.length] : undefined;
    const values: unknown[] = new Array(this.keys.length);
    records: for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      for (let k = 0; k < this.keys.length; k++) {
        const v = cols[k]![i];
        if (v instanceof EvalFailure) {
          out[i] = new PrepareFailure(
            new RecordError(
              'E_SINK_EXPR',
              `repartition key \`${this.keys[k]!.source}\` failed for the record at ${rec.position.partition}@${rec.position.offset}: ${v.error.message}`,
              this.where,
              { cause: v.error },
            ),
          );
          continue records;
        }
        values[k] = v === undefined ? null : v;
      }
      // The record's own headers travel in its envelope; the message's are the pack's (see write).
      const msg: OutboundMessage = { topic: this.config.topic, key: partitionKey(values), value: envelopeOf(rec, this.config.meta ?? true) };
      // As the window: a time that cannot be evaluated does not count (the window routes the record to its errors).
      const t = timeCol ? (timeCol[i] instanceof EvalFailure ? undefined : toEpochMillis(timeCol[i])) : rec.time;
      if (t !== undefined && Number.isFinite(t)) this.eventTimes.set(msg, t);
      out[i] = msg;
    }
    return out;
  }

  /**
   * Sends each record to the partition of its key, packed with the others of this write that go
   * there (in order, up to PACK_BYTES a message); resolves once the brokers have them (or, under
   * exactly-once, the checkpoint's transaction). A record larger than a repartition message takes
   * is refused (it goes to `<sink>.errors`).
   */
  async write(messages: OutboundMessage[]): Promise<WriteResult | void> {
    const send = this.send;
    if (!send) throw new ConfigError('E_SINK_NOT_OPEN', 'repartition sink written before open()', this.where);
    const produced: ProducedMessage[] = [];
    const refused: RefusedMessage[] = [];
    /** The pack being filled for each partition. */
    const packs: (Pack | undefined)[] = new Array(this.partitions);
    let max = this.maxTime;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const key = typeof m.key === 'string' ? m.key : stringifyJson(m.key);
      const line = stringifyJson(m.value);
      const bytes = Buffer.byteLength(line) + 1;
      if (bytes + MESSAGE_OVERHEAD_BYTES > MAX_MESSAGE_BYTES) {
        refused.push({ index: i, error: new RecordError('E_MESSAGE_TOO_LARGE', `the repartition record is ${bytes - 1} bytes, more than a repartition message takes (${MAX_MESSAGE_BYTES - MESSAGE_OVERHEAD_BYTES})`, this.where) });
        continue;
      }
      const partition = partitionOf(key, this.partitions);
      let pack = packs[partition];
      if (pack !== undefined && pack.bytes + bytes > PACK_BYTES) {
        produced.push(this.packMessage(pack));
        pack = undefined;
      }
      if (pack === undefined) packs[partition] = pack = { partition, lines: [], bytes: 0 };
      pack.lines.push(line);
      pack.bytes += bytes;
      const t = this.eventTimes.get(m);
      if (t !== undefined && (max === undefined || t > max)) max = t;
    }
    for (const pack of packs) if (pack !== undefined) produced.push(this.packMessage(pack));
    if (produced.length > 0) {
      await send(produced);
      this.maxTime = max;
      this.lastWriteAt = this.ctx.clock.now();
    }
    if (refused.length === 0) return;
    this.ctx.metrics.inc(REPARTITION_REFUSED, { node: this.ctx.name }, refused.length);
    return { refused };
  }

  private packMessage(pack: Pack): ProducedMessage {
    return {
      topic: this.config.topic,
      key: null,
      value: pack.lines.length === 1 ? pack.lines[0]! : pack.lines.join('\n'),
      partition: pack.partition,
      headers: { [HEADER_FROM]: this.origin, [HEADER_RECORDS]: String(pack.lines.length) },
    };
  }

  get writesInCheckpoint(): boolean {
    return this.inTransaction;
  }

  /** What the next markers would say now. */
  markerState(now = this.ctx.clock.now()): MarkerState {
    return { time: this.maxTime, idle: now - this.lastWriteAt >= this.idleMs };
  }

  /** At a checkpoint, after the data: a marker to every partition, when there is news or it is time again. */
  async beforeCommit(): Promise<void> {
    const send = this.send;
    if (!send) return;
    const now = this.ctx.clock.now();
    const state = this.markerState(now);
    if (!markersDue(this.lastMarkers, state, now)) return;
    const headers = markerHeaders(this.origin, state.time, state.idle, this.tasks);
    const markers: ProducedMessage[] = [];
    for (let p = 0; p < this.partitions; p++) markers.push({ topic: this.config.topic, key: MARKER_KEY, value: null, partition: p, headers });
    await send(markers);
    this.lastMarkers = { ...state, at: now };
  }

  async close(): Promise<void> {
    if (this.producer) {
      await this.producer.close().catch((err: unknown) => this.ctx.logger.warn({ error: errorMessage(err) }, 'repartition producer close failed'));
    }
    this.producer = undefined;
    this.send = undefined;
  }
}

export const repartitionSink: SinkDef<RepartitionSinkConfig> = {
  family: 'sink',
  name: 'repartition',
  summary: 'Internal: writes a window\'s input into its repartition topic, keyed by the group key, with watermark markers at every checkpoint.',
  description:
    'Inserted by the stage split when a window\'s `group_by` differs from how its input is partitioned; a spec never names it. Each record goes to the partition of its key (murmur2 of the canonical JSON of the key values, as Kafka places keys) as a JSON line `{value, meta, time, key, headers}`; the lines of one write that go to one partition share a message (up to 256 KiB), with the headers `sluice-from: <task>` and `sluice-records: <lines>`. At every checkpoint, after the data, each partition gets a marker with the highest event time this task has written, and whether it is idle.',
  schema: sinkSchema,
  describe(config) {
    return `repartition ${config.topic} by ${config.key.join(', ')}${config.partitions ? `, ${config.partitions} partitions` : ''}, at ${describeConnectionConfig(config)}`;
  },
  create(config, ctx) {
    return new RepartitionSink(config, connectionFromConfig(config, `sluice-${ctx.name}`, `sinks.${ctx.name}`), ctx);
  },
};

/* ------------------------------------------------------------------ the format */

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether every member is a string (a loop: an array of the values per record was garbage). */
function allStrings(o: Record<string, unknown>): boolean {
  for (const k in o) if (typeof o[k] !== 'string') return false;
  return true;
}

/** The origins of a repartition topic's partitions: every task of the writing stage. */
export function upstreamOrigins(upstream: string, tasks: number): string[] {
  return Array.from({ length: tasks }, (_, i) => `${upstream}_${i}`);
}

export const repartitionFormat: FormatDef<RepartitionFormatConfig> & EventTimeFormat = {
  family: 'format',
  name: 'repartition',
  decodesEventTime: true,
  summary: 'Internal: reads a repartition topic: records as the stage before had them, and its watermark markers.',
  description:
    'The reading side of the `repartition` sink. Each line of a data message becomes the record it was upstream (value, `$meta`, key, headers and event time restored), its origin the upstream task that wrote it; a watermark marker becomes progress of that task. A message that is neither goes to `<source>.errors` whole.',
  schema: object('Options of the repartition format (internal).', {
    upstream: { type: 'string', minLength: 1, description: 'The writing stage\'s id: origins are `<upstream>_<task>`.', examples: ['0'] },
    tasks: { type: 'integer', minimum: 1, description: 'How many tasks the writing stage has; filled in at start.', examples: [12] },
  }, ['upstream']),
  describe: (config) => `repartitioned records from stage ${config.upstream}${config.tasks ? ` (${config.tasks} tasks)` : ''}`,
  create(config, ctx): Format {
    const where = `sources.${ctx.name}`;
    const malformed = (what: string, cause?: unknown) => new RecordError('E_DECODE', `not a repartition message: ${what}`, where, cause === undefined ? undefined : { cause });
    /** A data message's origin and value text; throws for a marker, or for what is neither. */
    const dataOf = (message: RawMessage): { origin: string; text: string } => {
      throwIfRefused(message);
      const marker = parseMarker(message.headers);
      if (typeof marker === 'string') throw malformed(`a malformed watermark marker (${marker})`);
      if (marker) throw malformed('a watermark marker where a record was expected');
      const origin = message.headers[HEADER_FROM];
      if (!origin) throw malformed(`no ${HEADER_FROM} header`);
      const { value } = message;
      if (typeof value !== 'string' && !Buffer.isBuffer(value)) throw malformed('no value');
      return { origin, text: typeof value === 'string' ? value : value.toString('utf8') };
    };
    /**
     * One envelope's record; `packed`: its headers are in it (a pack's), not the message's. `line`
     * (1-based, for a pack of several) goes into an error only: nothing is built for it per record.
     */
    const envelopeRecord = (text: string, origin: string, packed: boolean, line?: number): Decoded => {
      const bad = (what: string, cause?: unknown) => malformed(line === undefined ? what : `line ${line}: ${what}`, cause);
      let env: unknown;
      try {
        env = parseJson(text);
      } catch (err) {
        throw bad(`value is not JSON: ${errorMessage(err)}`, err);
      }
      if (!isObject(env)) throw bad('value is not an object');
      if (typeof env.time !== 'number' || !Number.isFinite(env.time)) throw bad('no event time (`time`)');
      const meta = env.meta ?? {};
      if (!isObject(meta)) throw bad('`meta` is not an object');
      const d: Decoded = { key: env.key ?? null, value: env.value ?? null, meta, time: env.time, origin };
      if (packed) {
        const headers = env.headers ?? {};
        if (!isObject(headers) || !allStrings(headers)) throw bad('`headers` is not an object of strings');
        d.headers = headers as Headers;
      }
      return d;
    };
    return {
      control(message: RawMessage): ProgressMarker | undefined {
        const marker = parseMarker(message.headers);
        // A malformed marker is left to decode, which refuses it as a record error.
        return typeof marker === 'object' ? marker : undefined;
      },
      unpack(message: RawMessage): Decoded[] | undefined {
        const count = message.headers[HEADER_RECORDS];
        if (count === undefined) return undefined;
        const { origin, text } = dataOf(message);
        if (!/^[1-9]\d*$/.test(count)) throw malformed(`${HEADER_RECORDS} \`${count}\` is not a record count`);
        const lines = text.split('\n');
        if (lines.length !== Number(count)) throw malformed(`${HEADER_RECORDS} says ${count} records, the value has ${lines.length} lines`);
        const records: Decoded[] = new Array(lines.length);
        for (let i = 0; i < lines.length; i++) records[i] = envelopeRecord(lines[i]!, origin, true, lines.length > 1 ? i + 1 : undefined);
        return records;
      },
      decode(message: RawMessage): Decoded {
        if (message.headers[HEADER_RECORDS] !== undefined) throw malformed('a pack of records where one was expected');
        const { origin, text } = dataOf(message);
        return envelopeRecord(text, origin, false);
      },
      origins(): string[] | undefined {
        return config.tasks === undefined ? undefined : upstreamOrigins(config.upstream, config.tasks);
      },
    };
  },
};

/* ------------------------------------------------------------------ the topic */

/**
 * Creates a repartition topic that does not exist yet (delete policy, unlimited retention, as Kafka
 * Streams does: a reader's committed offsets, not time, decide what it still needs), and refuses one
 * that exists with another partition count: its keys would be placed differently from what the
 * records already in it, and the reading tasks' state, assume.
 */
export async function ensureRepartitionTopic(admin: KafkaAdmin, topic: string, partitions: number): Promise<void> {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new ConfigError('E_REPARTITION', `repartition topic \`${topic}\`: ${partitions} is not a partition count`, topic);
  }
  // listTopics first: asking for the offsets of a missing topic could have the broker auto-create it with its defaults.
  let existing = (await admin.listTopics()).includes(topic) ? await partitionCount(admin, topic) : undefined;
  if (existing === undefined) {
    // Another instance may create it at the same moment; the count is checked again below either way.
    await admin.createTopics([{ topic, partitions, configs: { 'cleanup.policy': 'delete', 'retention.ms': '-1' } }]);
    existing = await partitionCount(admin, topic);
  }
  if (existing !== partitions) {
    throw new ConfigError(
      'E_REPARTITION',
      `repartition topic \`${topic}\` has ${existing ?? 'no'} partitions, but this pipeline needs ${partitions}. ` +
        `Either delete the topic while no instance of the pipeline runs (records in it that the next stage has not read yet are lost), so that it is created again with ${partitions}, ` +
        `or set \`partitions: ${existing ?? partitions}\` on the window that reads it to keep the topic as it is`,
      topic,
    );
  }
}

async function partitionCount(admin: KafkaAdmin, topic: string): Promise<number | undefined> {
  try {
    return (await admin.topicOffsets(topic)).size;
  } catch (err) {
    if (isUnknownTopic(err)) return undefined;
    throw err;
  }
}
