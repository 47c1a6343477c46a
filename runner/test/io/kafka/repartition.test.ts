import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import type { Checkpoint, CommitFigures, StateStore } from '../../../src/engine/checkpoint/checkpoint.ts';
import { CheckpointCoordinator } from '../../../src/engine/checkpoint/coordinator.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import {
  PrepareFailure,
  SharedResources,
  requireMessages,
  type CheckpointContext,
  type ComponentContext,
  type Decoded,
  type Format,
  type OutboundMessage,
  type Sink,
  type TaskIdentity,
} from '../../../src/engine/component.ts';
import { ConfigError, RecordError } from '../../../src/engine/errors.ts';
import { decodesEventTime } from '../../../src/engine/event-time.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { RawMessage, StreamRecord } from '../../../src/engine/record.ts';
import { KAFKA_TRANSACTION } from '../../../src/io/kafka/changelog-store.ts';
import type { KafkaAdmin, KafkaProducer, ProducedMessage, TopicSpec } from '../../../src/io/kafka/client.ts';
import {
  MARKER_REFRESH_MS,
  PACK_BYTES,
  RepartitionSink,
  ensureRepartitionTopic,
  markerHeaders,
  markersDue,
  parseMarker,
  partitionKey,
  partitionOf,
  repartitionFormat,
  repartitionSink,
  type RepartitionSinkConfig,
} from '../../../src/io/kafka/repartition.ts';

const TOPIC = 'app-hourly-repartition';
const task: TaskIdentity = { stage: '0', partition: 3, partitions: 4, id: '0_3' };

function context(clock = new ManualClock(1_000_000), extra: Partial<ComponentContext> = {}): ComponentContext {
  return { name: 'hourly-repartition', logger: silentLogger, clock, metrics: new Metrics(), mode: 'run', task, ...extra };
}

function rec(value: unknown, overrides: Partial<StreamRecord> = {}): StreamRecord {
  return {
    key: { id: 1 },
    value,
    time: 1_700_000_000_000,
    headers: {},
    meta: { topic: 'activities', partition: 3, offset: '41' },
    position: { source: 'activities', partition: 'activities/activities/3', offset: '41' },
    ack: Ack.none(),
    ...overrides,
  };
}

/** A producer that keeps what it was asked to send, in order. */
class RecordingProducer implements KafkaProducer {
  sent: ProducedMessage[] = [];
  connected = false;
  failNext: Error | undefined;
  async connect(): Promise<void> {
    this.connected = true;
  }
  async send(messages: readonly ProducedMessage[]): Promise<void> {
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    this.sent.push(...messages);
  }
  async close(): Promise<void> {
    this.connected = false;
  }
}

const base: RepartitionSinkConfig = { brokers: 'localhost:9092', topic: TOPIC, key: ['employee_id'], partitions: 4 };

async function openSink(config: Partial<RepartitionSinkConfig> = {}, ctx = context()): Promise<{ sink: RepartitionSink; producer: RecordingProducer; ctx: ComponentContext }> {
  const producer = new RecordingProducer();
  const sink = new RepartitionSink({ ...base, ...config }, { brokers: ['localhost:9092'], clientId: 'test' }, ctx, () => producer);
  await sink.open();
  return { sink, producer, ctx };
}

/** Prepares and writes records as the sink queue does (failed ones left out). */
async function writeRecords(sink: Sink, records: StreamRecord[]): Promise<void> {
  const prepared = await sink.prepare(records);
  await sink.write(prepared.filter((p): p is OutboundMessage => !(p instanceof PrepareFailure)));
}

/** A produced message as the kafka source hands it to a format: value bytes, headers as strings. */
function asRaw(m: ProducedMessage, offset = '0'): RawMessage {
  return {
    key: m.key === null ? null : Buffer.from(m.key),
    value: m.value === null ? null : Buffer.from(m.value),
    headers: { ...(m.headers ?? {}) },
    timestamp: 1_800_000_000_000,
    position: { source: 'hourly-repartition', partition: `hourly-repartition/${m.topic}/${m.partition}`, offset },
    meta: { topic: m.topic, partition: m.partition, offset },
  };
}

const format = (tasks?: number): Format =>
  repartitionFormat.create({ upstream: '0', ...(tasks !== undefined ? { tasks } : {}) }, { name: 'hourly-repartition', logger: silentLogger, clock: new ManualClock(), metrics: new Metrics(), mode: 'run' });

/** The data messages among those sent (markers left out). */
const dataMessages = (sent: readonly ProducedMessage[]): ProducedMessage[] => sent.filter((m) => m.headers?.['sluice-ctl'] === undefined);

/** Every record the data messages among `sent` carry, read back as the runtime reads them: packs unpacked, in order. */
function readBack(sent: readonly ProducedMessage[], f = format(4)): Decoded[] {
  return dataMessages(sent).flatMap((m) => f.unpack!(asRaw(m)) ?? [f.decode(asRaw(m))]);
}

describe('repartition envelope: what the sink writes, the format reads back as the record it was', () => {
  it('restores value (big integers exact), meta, key and event time, with the writing task as origin', async () => {
    const { sink, producer } = await openSink();
    const value = { employee_id: 'e-7', amount: 12345678901234567890n, nested: { list: [1, 'two', null] } };
    const meta = { op: 'c', source: { table: 'activities', lsn: '0/1A2B' }, topic: 'activities' };
    await writeRecords(sink, [rec(value, { meta, key: { id: 7 }, time: 1_700_000_123_456, headers: { trace: 'abc' } })]);
    expect(producer.sent).toHaveLength(1);
    const m = producer.sent[0]!;
    expect(m.topic).toBe(TOPIC);
    expect(m.key).toBeNull();
    expect(m.partition).toBe(partitionOf('["e-7"]', 4));
    expect(m.headers).toEqual({ 'sluice-from': '0_3', 'sluice-records': '1' });
    expect(m.value).toBe(
      '{"value":{"employee_id":"e-7","amount":12345678901234567890,"nested":{"list":[1,"two",null]}},"meta":{"op":"c","source":{"table":"activities","lsn":"0/1A2B"},"topic":"activities"},"time":1700000123456,"key":{"id":7},"headers":{"trace":"abc"}}',
    );

    const f = format(4);
    const raw = asRaw(m);
    expect(f.control!(raw)).toBeUndefined();
    expect(f.unpack!(raw)).toEqual([{ key: { id: 7 }, value, meta, time: 1_700_000_123_456, origin: '0_3', headers: { trace: 'abc' } }]);
    // The runtime unpacks every message first; decode takes only a message of one record, as written before packs.
    expect(() => f.decode(raw)).toThrow(/a pack of records where one was expected/);
  });

  it('leaves out a key that is not JSON (bytes), read back as null; a pipeline run whole writes as origin 0_0', async () => {
    const { sink, producer } = await openSink({}, context(new ManualClock(), { task: undefined }));
    await writeRecords(sink, [rec({ employee_id: 1 }, { key: Buffer.from([0xff, 0x00]) }), rec({ employee_id: 2 }, { key: null })]);
    // In partition order: the two may go to different ones.
    const decoded = readBack(producer.sent, format()).sort((a, b) => (a.value as { employee_id: number }).employee_id - (b.value as { employee_id: number }).employee_id);
    expect(decoded.map((d) => [d.value, d.key, d.origin])).toEqual([
      [{ employee_id: 1 }, null, '0_0'],
      [{ employee_id: 2 }, null, '0_0'],
    ]);
    const lines = producer.sent.flatMap((m) => (m.value as string).split('\n').map((line) => JSON.parse(line) as { value: { employee_id: number } }));
    expect(lines.find((l) => l.value.employee_id === 1)).not.toHaveProperty('key');
    expect(lines.find((l) => l.value.employee_id === 2)).toHaveProperty('key', null);
  });

  it('never lets a record header make a data message look like a marker', async () => {
    const { sink, producer } = await openSink();
    await writeRecords(sink, [rec({ employee_id: 1 }, { headers: { 'sluice-ctl': 'wm', 'sluice-from': 'forged', 'sluice-records': '9', keep: '1' } })]);
    expect(producer.sent[0]!.headers).toEqual({ 'sluice-from': '0_3', 'sluice-records': '1' });
    expect(format().control!(asRaw(producer.sent[0]!))).toBeUndefined();
    expect(readBack(producer.sent).map((d) => [d.headers, d.origin])).toEqual([[{ keep: '1' }, '0_3']]);
  });

  it('prepare gives the structured envelope (what golden files record) and a PrepareFailure for a record whose key throws', async () => {
    const sink = repartitionSink.create({ ...base, key: ['employee_id', '$meta.op', 'kind = "boom" ? $error("no key") : kind'] }, context());
    const out = await sink.prepare([rec({ employee_id: 5, kind: 'login' }, { meta: { op: 'u' } }), rec({ employee_id: 6, kind: 'boom' }), rec({ kind: 'x' })]);
    expect(out[0]).toEqual({
      topic: TOPIC,
      key: '[5,"u","login"]',
      value: { value: { employee_id: 5, kind: 'login' }, meta: { op: 'u' }, time: 1_700_000_000_000, key: { id: 1 } },
    });
    expect(out[1]).toBeInstanceOf(PrepareFailure);
    const error = (out[1] as PrepareFailure).error;
    expect(error).toBeInstanceOf(RecordError);
    expect(error.message).toContain('no key');
    expect(error.message).toContain('activities/activities/3@41');
    // A missing value is a null part, as the window groups it.
    expect(requireMessages([out[2]!])[0]!.key).toBe('[null,null,"x"]');
  });

  it('with meta: false leaves $meta behind, and the reader gets an empty one', async () => {
    const sink = repartitionSink.create({ ...base, key: ['employee_id'], meta: false }, context());
    const [out] = await sink.prepare([rec({ employee_id: 5 }, { meta: { op: 'c', source: { ts_ns: 1735813800123456789n } } })]);
    expect(out).toMatchObject({ value: { value: { employee_id: 5 }, meta: {}, time: 1_700_000_000_000 } });
  });

  it('refuses malformed messages as record errors', () => {
    const f = format(4);
    const data = (value: string | null, headers: Record<string, string> = { 'sluice-from': '0_1' }): RawMessage => ({
      key: null,
      value: value === null ? null : Buffer.from(value),
      headers,
      timestamp: 0,
      position: { source: 's', partition: 's/t/0', offset: '9' },
    });
    const refusal = (m: RawMessage) => {
      try {
        f.decode(m);
      } catch (err) {
        expect(err).toBeInstanceOf(RecordError);
        return (err as Error).message;
      }
      throw new Error('decoded');
    };
    expect(refusal(data('{"value":1,"meta":{},"time":5'))).toContain('not JSON');
    expect(refusal(data('[1,2]'))).toContain('not an object');
    expect(refusal(data('{"value":1,"meta":{}}'))).toContain('no event time');
    expect(refusal(data('{"value":1,"meta":[],"time":5}'))).toContain('`meta`');
    expect(refusal(data('{"value":1,"meta":{},"time":5}', {}))).toContain('no sluice-from');
    expect(refusal(data(null))).toContain('no value');
    // A marker that does not parse is no progress: control leaves it to decode, which refuses it.
    const bad = data(null, { 'sluice-ctl': 'wm', 'sluice-from': '0_1', 'sluice-wm': 'soon', 'sluice-idle': '0' });
    expect(f.control!(bad)).toBeUndefined();
    expect(refusal(bad)).toContain('sluice-wm `soon`');
    expect(f.decode(data('{"value":{"a":1},"time":5}'))).toEqual({ key: null, value: { a: 1 }, meta: {}, time: 5, origin: '0_1' });
  });

  it('reads a message as written before packs: one record, its headers the message\'s; unpack leaves it to decode', () => {
    const f = format(4);
    const old: RawMessage = {
      key: Buffer.from('["e-7"]'),
      value: Buffer.from('{"value":{"employee_id":"e-7"},"meta":{"op":"c"},"time":1700000123456,"key":{"id":7}}'),
      headers: { trace: 'abc', 'sluice-from': '0_2' },
      timestamp: 0,
      position: { source: 's', partition: 's/t/0', offset: '3' },
    };
    expect(f.unpack!(old)).toBeUndefined();
    expect(f.decode(old)).toEqual({ key: { id: 7 }, value: { employee_id: 'e-7' }, meta: { op: 'c' }, time: 1_700_000_123_456, origin: '0_2' });
  });

  it('refuses a malformed pack whole, saying which line or header is wrong', () => {
    const f = format(4);
    const pack = (value: string, count: string, extra: Record<string, string> = {}): RawMessage => ({
      key: null,
      value: Buffer.from(value),
      headers: { 'sluice-from': '0_1', 'sluice-records': count, ...extra },
      timestamp: 0,
      position: { source: 's', partition: 's/t/0', offset: '9' },
    });
    const refusal = (m: RawMessage) => {
      try {
        f.unpack!(m);
      } catch (err) {
        expect(err).toBeInstanceOf(RecordError);
        return (err as Error).message;
      }
      throw new Error('unpacked');
    };
    const line = '{"value":1,"meta":{},"time":5}';
    expect(f.unpack!(pack(`${line}\n${line}`, '2'))).toHaveLength(2);
    expect(refusal(pack(`${line}\n${line}`, '3'))).toContain('says 3 records, the value has 2 lines');
    expect(refusal(pack(line, 'two'))).toContain('`two` is not a record count');
    expect(refusal(pack(line, '0'))).toContain('`0` is not a record count');
    expect(refusal(pack(`${line}\n{"value":1`, '2'))).toContain('line 2: value is not JSON');
    expect(refusal(pack(`${line}\n{"value":1,"meta":{}}`, '2'))).toContain('line 2: no event time');
    expect(refusal(pack('{"value":1,"meta":{},"time":5,"headers":{"a":1}}', '1'))).toContain('`headers` is not an object of strings');
    expect(refusal(pack(line, '1', { 'sluice-from': '' }))).toContain('no sluice-from');
    expect(refusal({ ...pack(line, '1'), value: null })).toContain('no value');
  });

  it('says it decodes event time (the records keep the time they had upstream)', () => {
    expect(decodesEventTime(repartitionFormat)).toBe(true);
  });
});

describe('repartition partitioning', () => {
  it('puts a key where Kafka\'s default partitioner (and Kafka Streams) would', () => {
    expect(partitionOf('["emp-7",3]', 12)).toBe(5);
  });

  it('gives one partition key for values the window groups together', () => {
    expect(partitionKey([{ b: 2, a: 1 }, 'x'])).toBe(partitionKey([{ a: 1, b: 2 }, 'x']));
    expect(partitionKey([undefined, 5n])).toBe(partitionKey([null, 5]));
    expect(partitionKey([undefined, 5n])).toBe('[null,5]');
    expect(partitionKey(['5'])).not.toBe(partitionKey([5]));
    expect(partitionKey(['a', 'b'])).not.toBe(partitionKey(['a,b']));
  });

  it('is stable and spreads keys over the partitions', async () => {
    const counts = new Array<number>(12).fill(0);
    for (let i = 0; i < 6_000; i++) {
      const key = partitionKey([`employee-${i}`, i % 7]);
      const p = partitionOf(key, 12);
      expect(partitionOf(key, 12)).toBe(p);
      counts[p]!++;
    }
    // 500 expected per partition.
    for (const c of counts) expect(c).toBeGreaterThan(400);
    for (const c of counts) expect(c).toBeLessThan(600);
  });

  it('writes every record to the partition of its key, explicitly, packed with the others of the write that go there, in order', async () => {
    const { sink, producer } = await openSink({ partitions: 7 });
    await writeRecords(sink, Array.from({ length: 50 }, (_, i) => rec({ employee_id: `e${i % 10}`, n: i })));
    const f = format(4);
    const seen: number[] = [];
    for (const m of producer.sent) {
      const records = f.unpack!(asRaw(m))!;
      expect(m.headers!['sluice-records']).toBe(String(records.length));
      const ns: number[] = [];
      for (const d of records) {
        const { employee_id, n } = d.value as { employee_id: string; n: number };
        expect(m.partition).toBe(partitionOf(partitionKey([employee_id]), 7));
        ns.push(n);
      }
      // Within a message, the records in the order written.
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
      seen.push(...ns);
    }
    // One message per partition that got records.
    expect(producer.sent).toHaveLength(new Set(producer.sent.map((m) => m.partition)).size);
    expect(producer.sent.length).toBeGreaterThan(1);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('closes a pack before it passes PACK_BYTES, keeping the order of the records across its packs', async () => {
    const { sink, producer } = await openSink({ partitions: 1 });
    const blob = 'y'.repeat(10_000);
    const count = Math.ceil((3 * PACK_BYTES) / 10_000);
    await writeRecords(sink, Array.from({ length: count }, (_, i) => rec({ employee_id: 1, n: i, blob })));
    expect(producer.sent.length).toBeGreaterThanOrEqual(3);
    for (const m of producer.sent) expect(Buffer.byteLength(m.value as string)).toBeLessThanOrEqual(PACK_BYTES);
    expect(readBack(producer.sent).map((d) => (d.value as { n: number }).n)).toEqual(Array.from({ length: count }, (_, i) => i));
  });
});

describe('repartition watermark markers', () => {
  it('go to every partition after the data, with the highest event time written, the origin and the task count; control() reads them', async () => {
    const clock = new ManualClock(1_000_000);
    const { sink, producer } = await openSink({}, context(clock));
    await writeRecords(sink, [rec({ employee_id: 1 }, { time: 5_000 }), rec({ employee_id: 2 }, { time: 9_000 }), rec({ employee_id: 3 }, { time: 7_000 })]);
    await sink.beforeCommit();
    const data = dataMessages(producer.sent).length;
    expect(readBack(producer.sent)).toHaveLength(3);
    const markers = producer.sent.slice(data);
    expect(markers.map((m) => m.partition)).toEqual([0, 1, 2, 3]);
    for (const m of markers) {
      expect(m).toMatchObject({ topic: TOPIC, key: '__wm', value: null });
      expect(m.headers).toEqual({ 'sluice-ctl': 'wm', 'sluice-from': '0_3', 'sluice-wm': '9000', 'sluice-idle': '0', 'sluice-n': '4' });
      expect(format(4).control!(asRaw(m))).toEqual({ origin: '0_3', time: 9_000, idle: false });
    }
  });

  it('carry no time before the first record, and idle once nothing was written for `idle`', async () => {
    const clock = new ManualClock(1_000_000);
    const { sink, producer } = await openSink({ idle: '30s' }, context(clock));
    await sink.beforeCommit();
    expect(producer.sent.map((m) => format().control!(asRaw(m)))).toEqual(new Array(4).fill({ origin: '0_3', time: undefined, idle: false }));
    expect(producer.sent[0]!.headers!['sluice-wm']).toBe('');
    producer.sent = [];
    clock.advance(30_000);
    await sink.beforeCommit();
    expect(producer.sent.map((m) => format().control!(asRaw(m))!.idle)).toEqual([true, true, true, true]);
    producer.sent = [];
    // Data makes it active again.
    await writeRecords(sink, [rec({ employee_id: 1 }, { time: 42 })]);
    await sink.beforeCommit();
    expect(format().control!(asRaw(producer.sent[1]!))).toEqual({ origin: '0_3', time: 42, idle: false });
  });

  it('use the window\'s time expression; a record whose time cannot be evaluated is written but does not move the highest', async () => {
    const { sink, producer } = await openSink({ time: 'occurred_at' });
    await writeRecords(sink, [
      rec({ employee_id: 1, occurred_at: '2025-01-06T09:00:00Z' }, { time: 1 }),
      rec({ employee_id: 2, occurred_at: 'not a time' }, { time: 9e12 }),
      rec({ employee_id: 3 }, { time: 9e12 }),
      rec({ employee_id: 4, occurred_at: 1_736_150_000_000 }, { time: 1 }),
    ]);
    expect(readBack(producer.sent)).toHaveLength(4);
    await sink.beforeCommit();
    const marker = producer.sent.find((m) => m.headers?.['sluice-ctl'] !== undefined);
    expect(marker!.headers!['sluice-wm']).toBe(String(Date.parse('2025-01-06T09:00:00Z')));
  });

  it('are not sent again while nothing changed, until the refresh interval passed', async () => {
    const clock = new ManualClock(1_000_000);
    const { sink, producer } = await openSink({}, context(clock));
    await writeRecords(sink, [rec({ employee_id: 1 }, { time: 100 })]);
    await sink.beforeCommit();
    expect(producer.sent).toHaveLength(5);
    clock.advance(1_000);
    await sink.beforeCommit();
    expect(producer.sent).toHaveLength(5);
    // Data at or below the highest changes nothing either.
    await writeRecords(sink, [rec({ employee_id: 1 }, { time: 50 })]);
    await sink.beforeCommit();
    expect(producer.sent).toHaveLength(6);
    clock.advance(MARKER_REFRESH_MS);
    await sink.beforeCommit();
    expect(producer.sent).toHaveLength(10);
  });

  it('that failed to go out are sent at the next checkpoint', async () => {
    const { sink, producer } = await openSink();
    producer.failNext = new Error('broker gone');
    await expect(sink.beforeCommit()).rejects.toThrow('broker gone');
    await sink.beforeCommit();
    expect(producer.sent).toHaveLength(4);
  });

  it('the rule: first always, then on a change of time or idleness, else every refresh interval', () => {
    const last = { time: 100, idle: false, at: 50_000 };
    expect(markersDue(undefined, { time: undefined, idle: false }, 0)).toBe(true);
    expect(markersDue(last, { time: 100, idle: false }, 50_000)).toBe(false);
    expect(markersDue(last, { time: 100, idle: false }, 50_000 + MARKER_REFRESH_MS - 1)).toBe(false);
    expect(markersDue(last, { time: 100, idle: false }, 50_000 + MARKER_REFRESH_MS)).toBe(true);
    expect(markersDue(last, { time: 101, idle: false }, 50_001)).toBe(true);
    expect(markersDue(last, { time: 100, idle: true }, 50_001)).toBe(true);
    expect(markersDue({ time: undefined, idle: false, at: 0 }, { time: 5, idle: false }, 1)).toBe(true);
    expect(MARKER_REFRESH_MS).toBe(10_000);
  });

  it('parse back from their headers; malformed ones say why', () => {
    expect(parseMarker(markerHeaders('1_2', 123, true, 6))).toEqual({ origin: '1_2', time: 123, idle: true });
    expect(parseMarker(markerHeaders('1_2', undefined, false, 6))).toEqual({ origin: '1_2', time: undefined, idle: false });
    expect(parseMarker({ 'sluice-from': '1_2' })).toBeUndefined();
    expect(parseMarker({ 'sluice-ctl': 'wm', 'sluice-wm': '1', 'sluice-idle': '0' })).toMatch(/sluice-from/);
    expect(parseMarker({ 'sluice-ctl': 'wm', 'sluice-from': 'x', 'sluice-wm': '1', 'sluice-idle': 'yes' })).toMatch(/sluice-idle/);
    expect(parseMarker({ 'sluice-ctl': 'eof', 'sluice-from': 'x' })).toMatch(/unknown sluice-ctl/);
  });
});

describe('repartition format origins', () => {
  it('are every task of the writing stage, or unknown before the task count is filled in', () => {
    expect(format(3).origins!('hourly-repartition/t/0')).toEqual(['0_0', '0_1', '0_2']);
    expect(repartitionFormat.create({ upstream: '1', tasks: 2 }, context()).origins!('x')).toEqual(['1_0', '1_1']);
    expect(format().origins!('hourly-repartition/t/0')).toBeUndefined();
  });
});

describe('repartition sink: how it writes', () => {
  it('refuses to open without a partition count', async () => {
    const sink = new RepartitionSink({ ...base, partitions: undefined }, { brokers: ['b:1'], clientId: 'c' }, context(), () => new RecordingProducer());
    await expect(sink.open()).rejects.toThrow(ConfigError);
    await expect(sink.open()).rejects.toThrow(/partition count is not known/);
  });

  it('under exactly-once writes data and markers into the checkpoint transaction, and opens no producer', async () => {
    const sentTx: ProducedMessage[] = [];
    const shared = new SharedResources();
    shared.set(KAFKA_TRANSACTION, { brokers: ['localhost:9092'], send: async (m) => void sentTx.push(...m) });
    const checkpoints: CheckpointContext = { delivery: 'exactly-once', applicationId: 'app', shared };
    let made = 0;
    const sink = new RepartitionSink(base, { brokers: ['localhost:9092'], clientId: 'c' }, context(new ManualClock(), { checkpoints }), () => {
      made++;
      return new RecordingProducer();
    });
    await sink.open();
    await writeRecords(sink, [rec({ employee_id: 1 }, { time: 77 })]);
    await sink.beforeCommit();
    expect(made).toBe(0);
    expect(sentTx.map((m) => m.key)).toEqual([null, '__wm', '__wm', '__wm', '__wm']);
    expect(readBack(sentTx).map((d) => d.value)).toEqual([{ employee_id: 1 }]);
    expect(sentTx[1]!.headers!['sluice-wm']).toBe('77');

    const elsewhere = new RepartitionSink(base, { brokers: ['other:9092'], clientId: 'c' }, context(new ManualClock(), { checkpoints }));
    await expect(elsewhere.open()).rejects.toThrow(/one transaction cannot span two clusters/);
  });

  it('refuses a message larger than the topic takes, to the errors port, and writes the rest', async () => {
    const { sink, producer } = await openSink();
    const prepared = requireMessages(await sink.prepare([rec({ employee_id: 1, blob: 'x'.repeat(1_100_000) }, { time: 10_000 }), rec({ employee_id: 2 }, { time: 5 })]));
    const result = await sink.write(prepared);
    expect(result?.refused.map((r) => r.index)).toEqual([0]);
    expect(result?.refused[0]!.error).toBeInstanceOf(RecordError);
    expect(readBack(producer.sent).map((d) => d.value)).toEqual([{ employee_id: 2 }]);
    await sink.beforeCommit();
    // The refused record's time does not count.
    expect(producer.sent[1]!.headers!['sluice-wm']).toBe('5');
  });
});

/** A fake admin that knows some topics and their partition counts. */
class FakeAdmin implements Partial<KafkaAdmin> {
  created: TopicSpec[] = [];
  constructor(readonly topics = new Map<string, number>()) {}
  async listTopics(): Promise<string[]> {
    return [...this.topics.keys()];
  }
  async createTopics(specs: TopicSpec[]): Promise<void> {
    for (const s of specs) {
      this.created.push(s);
      if (!this.topics.has(s.topic)) this.topics.set(s.topic, s.partitions ?? 1);
    }
  }
  async topicOffsets(topic: string): Promise<Map<number, { low: string; high: string }>> {
    const n = this.topics.get(topic);
    if (n === undefined) throw Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
    return new Map(Array.from({ length: n }, (_, p) => [p, { low: '0', high: '0' }]));
  }
}

describe('ensureRepartitionTopic', () => {
  it('creates a missing topic with delete policy and unlimited retention', async () => {
    const admin = new FakeAdmin();
    await ensureRepartitionTopic(admin as unknown as KafkaAdmin, TOPIC, 6);
    expect(admin.created).toEqual([{ topic: TOPIC, partitions: 6, configs: { 'cleanup.policy': 'delete', 'retention.ms': '-1' } }]);
  });

  it('keeps a topic that has the partitions it needs', async () => {
    const admin = new FakeAdmin(new Map([[TOPIC, 6]]));
    await ensureRepartitionTopic(admin as unknown as KafkaAdmin, TOPIC, 6);
    expect(admin.created).toEqual([]);
  });

  it('refuses one with another partition count, naming the topic, both counts and what to do', async () => {
    const admin = new FakeAdmin(new Map([[TOPIC, 4]]));
    const err = await ensureRepartitionTopic(admin as unknown as KafkaAdmin, TOPIC, 6).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('E_REPARTITION');
    const message = (err as Error).message;
    expect(message).toContain(TOPIC);
    expect(message).toContain('has 4 partitions');
    expect(message).toContain('needs 6');
    expect(message).toContain('delete the topic while no instance of the pipeline runs');
    expect(message).toContain('`partitions: 4`');
    expect(admin.created).toEqual([]);
  });

  it('refuses when another instance created it with another count at the same moment', async () => {
    const admin = new FakeAdmin();
    admin.createTopics = async (specs) => {
      admin.created.push(...specs);
      admin.topics.set(TOPIC, 3);
    };
    await expect(ensureRepartitionTopic(admin as unknown as KafkaAdmin, TOPIC, 6)).rejects.toThrow(/has 3 partitions, but this pipeline needs 6/);
  });
});

describe('checkpoint coordinator: sinks\' beforeCommit', () => {
  class LogStore implements StateStore {
    readonly description = 'log';
    failNext = false;
    constructor(private readonly log: string[]) {}
    async open(): Promise<void> {}
    async load(): Promise<Checkpoint | undefined> {
      return undefined;
    }
    async commit(checkpoint: Checkpoint): Promise<CommitFigures> {
      this.log.push(`commit ${checkpoint.epoch}`);
      return { written: 0, deleted: 0, bytes: 0 };
    }
    async reset(): Promise<void> {}
    async close(): Promise<void> {}
  }

  const sinkLogging = (log: string[], fail?: Error): Sink => ({
    open: async () => {},
    prepare: () => [],
    write: async () => {},
    close: async () => {},
    beforeCommit: async () => {
      log.push('beforeCommit');
      if (fail) throw fail;
    },
  });

  const coordinator = (store: StateStore) => new CheckpointCoordinator({ store, intervalMs: 1000, applicationId: 'app', identities: {} }, new ManualClock(), silentLogger);

  it('runs after the sinks flushed and before the store commits', async () => {
    const log: string[] = [];
    const c = coordinator(new LogStore(log));
    await c.restore([], []);
    await c.take([], [{ name: 'r', sink: sinkLogging(log) }], async () => void log.push('flush'), true);
    expect(log).toEqual(['flush', 'beforeCommit', 'commit 1']);
  });

  it('a failing one fails the checkpoint: nothing commits and the held Acks stay held', async () => {
    const log: string[] = [];
    const c = coordinator(new LogStore(log));
    await c.restore([], []);
    let completed = false;
    const ack = new Ack(() => (completed = true));
    c.track('p/0', '1', ack);
    ack.seal();
    await expect(c.take([], [{ name: 'r', sink: sinkLogging(log, new Error('markers lost')) }], async () => {})).rejects.toThrow('markers lost');
    expect(log).toEqual(['beforeCommit']);
    expect(completed).toBe(false);
    expect(c.stats().epoch).toBe(0);
    await c.take([], [{ name: 'r', sink: sinkLogging(log) }], async () => {});
    expect(completed).toBe(true);
    expect(c.stats().epoch).toBe(1);
  });
});
