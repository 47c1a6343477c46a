import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import { PrepareFailure, requireMessages, type ComponentContext, type Prepared } from '../../../src/engine/component.ts';
import { systemClock } from '../../../src/engine/clock.ts';
import { ConfigError, RecordError } from '../../../src/engine/errors.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { constantJson, stringifyJson } from '../../../src/engine/json.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { encodeHeader, encodeKey, encodeValue, KafkaSink, kafkaSink, type KafkaSinkConfig, type ProducerFactory } from '../../../src/components/sinks/kafka.ts';
import { producedBytes, type ProducedMessage } from '../../../src/io/kafka/client.ts';

const ctx: ComponentContext = { name: 'processed', logger: silentLogger, clock: systemClock, metrics: new Metrics(), mode: 'test' };

function rec(value: unknown, key: unknown = { id: 1 }, meta: Record<string, unknown> = { op: 'c' }): StreamRecord {
  return {
    key,
    value,
    time: 0,
    headers: {},
    meta,
    position: { source: 'activities', partition: 'activities/t/0', offset: '7' },
    ack: Ack.none(),
  };
}

const base: KafkaSinkConfig = { brokers: 'localhost:9092', topic: 'out' };

function failureAt(prepared: Prepared[], i: number): PrepareFailure {
  const p = prepared[i];
  if (!(p instanceof PrepareFailure)) throw new Error(`expected a PrepareFailure at ${i}, got ${JSON.stringify(p)}`);
  return p;
}

describe('kafka sink: prepare (pure, what golden files record)', () => {
  it('keys by expression as a string, value as the record value, fixed topic', async () => {
    const sink = kafkaSink.create({ ...base, key: '$string(employee_id)' }, ctx);
    const out = await sink.prepare([rec({ employee_id: 42, a: 1 }), rec({ employee_id: 7, a: 2 })]);
    expect(out).toEqual([
      { topic: 'out', key: '42', value: { employee_id: 42, a: 1 } },
      { topic: 'out', key: '7', value: { employee_id: 7, a: 2 } },
    ]);
  });

  it('defaults the key to the record key, JSON-encoded when it is not a string', async () => {
    const sink = kafkaSink.create(base, ctx);
    const out = await sink.prepare([rec({ a: 1 }, { id: 5 }), rec({ a: 2 }, 'plain'), rec({ a: 3 }, null)]);
    expect(requireMessages(out).map((m) => m.key)).toEqual(['{"id":5}', 'plain', null]);
  });

  it('chooses the topic per record, projects the value and evaluates headers with $meta', async () => {
    const sink = kafkaSink.create(
      {
        brokers: 'localhost:9092',
        topic_expr: '"activity-" & type',
        key: 'id',
        value: '{ "id": id, "kind": type }',
        headers: { op: '$meta.op', n: 'n', missing: 'nope' },
      },
      ctx,
    );
    const out = await sink.prepare([rec({ id: 1, type: 'login', n: 3, extra: true })]);
    expect(out).toEqual([{ topic: 'activity-login', key: '1', value: { id: 1, kind: 'login' }, headers: { op: 'c', n: '3' } }]);
  });

  it('passes record headers through (dead-letter reasons reach the topic); configured headers add to or override them', async () => {
    const withHeaders = { ...rec({ id: 1 }), headers: { 'sluice-error-node': 'activities', keep: 'a' } };
    const headersOf = async (config: KafkaSinkConfig, r: StreamRecord) => requireMessages(await kafkaSink.create(config, ctx).prepare([r]))[0]!.headers;
    expect(await headersOf(base, withHeaders)).toEqual({ 'sluice-error-node': 'activities', keep: 'a' });
    expect(await headersOf({ ...base, headers: { keep: '"b"', op: '$meta.op' } }, withHeaders)).toEqual({ 'sluice-error-node': 'activities', keep: 'b', op: 'c' });
    expect(await headersOf(base, rec({ id: 1 }))).toBeUndefined();
  });

  it('fails only the record whose topic_expr gives no topic name, naming the sink and the record; the others get messages', async () => {
    const sink = kafkaSink.create({ brokers: 'localhost:9092', topic_expr: 'dest' }, ctx);
    const out = await sink.prepare([rec({ dest: 'a' }), rec({ other: 1 }), rec({ dest: 'b' })]);
    expect(out).toHaveLength(3);
    expect(out[0]).toEqual({ topic: 'a', key: '{"id":1}', value: { dest: 'a' } });
    expect(out[2]).toEqual({ topic: 'b', key: '{"id":1}', value: { dest: 'b' } });
    const failure = failureAt(out, 1);
    expect(failure.error).toBeInstanceOf(RecordError);
    expect(failure.error).toMatchObject({ code: 'E_SINK_TOPIC', where: 'sinks.processed' });
    expect(failure.error.message).toMatch(/topic_expr gave nothing.*activities\/t\/0@7/);
  });

  it('fails only the record whose key or header expression throws, with the record position', async () => {
    const keyed = kafkaSink.create({ ...base, key: '$number(k)' }, ctx);
    const byKey = await keyed.prepare([rec({ k: '12' }), rec({ k: 'x' })]);
    expect(byKey[0]).toEqual({ topic: 'out', key: '12', value: { k: '12' } });
    expect(failureAt(byKey, 1).error).toMatchObject({ code: 'E_SINK_EXPR' });
    expect(failureAt(byKey, 1).error.message).toMatch(/key expression failed for the record at activities\/t\/0@7/);

    const headed = kafkaSink.create({ ...base, headers: { n: '$number(k)' } }, ctx);
    const byHeader = await headed.prepare([rec({ k: 'x' }), rec({ k: '3' })]);
    expect(failureAt(byHeader, 0).error.message).toMatch(/header n expression failed/);
    expect(byHeader[1]).toEqual({ topic: 'out', key: '{"id":1}', value: { k: '3' }, headers: { n: '3' } });
  });

  it('needs exactly one of topic and topic_expr', () => {
    expect(() => kafkaSink.create({ brokers: 'localhost:9092' }, ctx)).toThrow(ConfigError);
    expect(() => kafkaSink.create({ brokers: 'localhost:9092', topic: 'a', topic_expr: '"b"' }, ctx)).toThrow(/exactly one/);
  });

  it('refuses write before open', async () => {
    const sink = kafkaSink.create(base, ctx);
    await expect(sink.write([{ topic: 'out', key: null, value: 1 }])).rejects.toThrow(/before open/);
  });
});

describe('kafka sink: write', () => {
  /** A producer that keeps what it sent and refuses, as the broker does, what `tooLarge` picks. */
  function fakeProducer(tooLarge: (m: ProducedMessage) => boolean = () => false): { factory: ProducerFactory; sent: ProducedMessage[]; requests: number } {
    const state = { sent: [] as ProducedMessage[], requests: 0, factory: undefined as unknown as ProducerFactory };
    state.factory = () => ({
      connect: async () => {},
      close: async () => {},
      send: async (messages) => {
        state.requests++;
        if (messages.some(tooLarge)) {
          const broker = Object.assign(new Error('The request included a message larger than the max message size the server will accept'), { type: 'MESSAGE_TOO_LARGE' });
          throw Object.assign(new Error(`cannot write ${messages.length} message(s)`), { cause: broker });
        }
        state.sent.push(...messages);
      },
    });
    return state;
  }

  const conn = { brokers: ['localhost:9092'], clientId: 'test' };

  it('writes raw values as they are with value_format: raw', async () => {
    const producer = fakeProducer();
    const sink = new KafkaSink({ ...base, value_format: 'raw', linger: '0ms' }, conn, ctx, producer.factory);
    await sink.open();
    await sink.write([{ topic: 'out', key: null, value: 'this is not JSON' }, { topic: 'out', key: null, value: { n: 1 } }]);
    expect(producer.sent.map((m) => m.value)).toEqual(['this is not JSON', '{"n":1}']);
  });

  it('refuses, unsent, a message over max_message_bytes, naming its size; the others are written', async () => {
    const producer = fakeProducer();
    const sink = new KafkaSink({ ...base, max_message_bytes: 100, linger: '0ms' }, conn, ctx, producer.factory);
    await sink.open();
    const result = await sink.write([
      { topic: 'out', key: 'a', value: 'small' },
      { topic: 'out', key: 'b', value: 'x'.repeat(200) },
    ]);
    expect(result?.refused.map((r) => [r.index, r.error.message])).toEqual([[1, 'the message is 203 bytes, more than max_message_bytes (100)']]);
    expect(result?.refused[0]!.error).toMatchObject({ code: 'E_MESSAGE_TOO_LARGE', where: 'sinks.processed' });
    expect(producer.sent.map((m) => m.key)).toEqual(['a']);
  });

  it('when the broker refuses a request as too large, sends its messages one at a time and refuses only those it refuses alone', async () => {
    const producer = fakeProducer((m) => typeof m.value === 'string' && m.value.length > 50);
    const sink = new KafkaSink({ ...base, linger: '0ms' }, conn, ctx, producer.factory);
    await sink.open();
    const result = await sink.write([
      { topic: 'out', key: 'a', value: 1 },
      { topic: 'out', key: 'b', value: 'y'.repeat(60) },
      { topic: 'out', key: 'c', value: 3 },
    ]);
    expect(result?.refused.map((r) => [r.index, r.error.message])).toEqual([[1, "the message of 63 bytes was refused by the broker as too large (the topic's max.message.bytes)"]]);
    expect(producer.sent.map((m) => m.key)).toEqual(['a', 'c']);
    expect(producer.requests).toBe(4);
  });

  it("writes what the sink's instances in a run's tasks wrote meanwhile in one request, each acknowledged; the producer closes with the last instance", async () => {
    const producer = fakeProducer();
    let closes = 0;
    const factory: ProducerFactory = (...args) => ({ ...producer.factory(...args), close: async () => void closes++ });
    const run: ComponentContext = { ...ctx, metrics: new Metrics() };
    const tasks = [0, 1, 2].map((partition) => new KafkaSink({ ...base, linger: '20ms' }, conn, { ...run, task: { stage: '0', partition, partitions: 3, id: `0_${partition}` } }, factory));
    await Promise.all(tasks.map((t) => t.open()));
    await Promise.all(tasks.map((t, i) => t.write([{ topic: 'out', key: `k${i}`, value: i }])));
    expect(producer.requests).toBe(1);
    expect(producer.sent.map((m) => m.key)).toEqual(['k0', 'k1', 'k2']);
    // Another run (its own metrics registry) has a producer of its own.
    const other = new KafkaSink({ ...base, linger: '0ms' }, conn, { ...ctx, metrics: new Metrics() }, factory);
    await other.open();
    await other.write([{ topic: 'out', key: 'x', value: 9 }]);
    expect(producer.requests).toBe(2);
    await other.close();
    expect(closes).toBe(1);
    await tasks[0]!.close();
    await tasks[1]!.close();
    expect(closes).toBe(1);
    await tasks[2]!.close();
    expect(closes).toBe(2);
  });

  it("after a too-large refusal, an instance sends its messages one at a time with no request of the other instances' in between", async () => {
    let inFlight = 0;
    let overlapped = false;
    const sent: string[] = [];
    const factory: ProducerFactory = () => ({
      connect: async () => {},
      close: async () => {},
      send: async (messages) => {
        if (inFlight++ > 0) overlapped = true;
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        if (messages.some((m) => typeof m.value === 'string' && m.value.length > 50)) {
          const broker = Object.assign(new Error('The request included a message larger than the max message size the server will accept'), { type: 'MESSAGE_TOO_LARGE' });
          throw Object.assign(new Error(`cannot write ${messages.length} message(s)`), { cause: broker });
        }
        sent.push(...messages.map((m) => String(m.key)));
      },
    });
    const run: ComponentContext = { ...ctx, metrics: new Metrics() };
    const [a, b] = [0, 1].map((partition) => new KafkaSink({ ...base, linger: '1ms' }, conn, { ...run, task: { stage: '0', partition, partitions: 2, id: `0_${partition}` } }, factory));
    await a!.open();
    await b!.open();
    const writeA = a!.write([{ topic: 'out', key: 'a1', value: 1 }, { topic: 'out', key: 'a2', value: 'z'.repeat(60) }]);
    // B writes while A's request fails and while A sends one at a time.
    const writesB = [0, 1, 2, 3].map(async (i) => {
      await new Promise((r) => setTimeout(r, 4 * i));
      return b!.write([{ topic: 'out', key: `b${i}`, value: i }]);
    });
    const [resultA] = await Promise.all([writeA, ...writesB]);
    expect(resultA?.refused.map((r) => r.index)).toEqual([1]);
    expect(overlapped).toBe(false);
    expect([...sent].sort()).toEqual(['a1', 'b0', 'b1', 'b2', 'b3']);
  });

  it('still fails the write on anything else, such as brokers that stay unreachable', async () => {
    const factory: ProducerFactory = () => ({
      connect: async () => {},
      close: async () => {},
      send: async () => {
        throw new Error('cannot write 1 message(s): Connection timeout');
      },
    });
    const sink = new KafkaSink({ ...base, linger: '0ms' }, conn, ctx, factory);
    await sink.open();
    await expect(sink.write([{ topic: 'out', key: 'a', value: 1 }])).rejects.toThrow(/Connection timeout/);
  });
});

describe('kafka sink: encodings', () => {
  it('keys: strings as is, scalars as text, objects as JSON, nothing as no key', () => {
    expect(encodeKey('a')).toBe('a');
    expect(encodeKey(12)).toBe('12');
    expect(encodeKey(true)).toBe('true');
    expect(encodeKey(12345678901234567890n)).toBe('12345678901234567890');
    expect(encodeKey({ id: 1 })).toBe('{"id":1}');
    expect(encodeKey(undefined)).toBeNull();
    expect(encodeKey(null)).toBeNull();
  });

  it('values: JSON with exact big integers; null is a tombstone', () => {
    expect(encodeValue({ big: 12345678901234567890n })).toBe('{"big":12345678901234567890}');
    expect(encodeValue('s')).toBe('"s"');
    expect(encodeValue(null)).toBeNull();
  });

  it('values holding a constant (a change event\'s schema) as the UTF-8 bytes of the same JSON', () => {
    const schema = () => ({ type: 'struct', name: 'café.Envelope', fields: [{ type: 'int64', field: 'id' }] });
    const value = { schema: constantJson(schema()), payload: { id: 1, ts_ns: 1735813800123456789n, name: 'Zoë' } };
    const written = encodeValue(value);
    expect(Buffer.isBuffer(written)).toBe(true);
    expect((written as Buffer).equals(Buffer.from('{"schema":' + JSON.stringify(schema()) + ',"payload":{"id":1,"ts_ns":1735813800123456789,"name":"Zoë"}}'))).toBe(true);
    expect(producedBytes({ topic: 't', key: null, value: written })).toBe(Buffer.byteLength(stringifyJson(value)));
  });

  it('raw values: text and bytes as they are (a dead letter keeps its original message), anything else as JSON', () => {
    expect(encodeValue('this is not JSON', 'raw')).toBe('this is not JSON');
    const bytes = Buffer.from([0xff, 0xfe, 0x41]);
    expect(encodeValue(bytes, 'raw')).toBe(bytes);
    expect(encodeValue({ id: 1 }, 'raw')).toBe('{"id":1}');
    expect(encodeValue(null, 'raw')).toBeNull();
  });

  it('counts a message\'s bytes as the size limit does: key, value, header names and values', () => {
    expect(producedBytes({ topic: 't', key: 'ké', value: Buffer.alloc(10), headers: { h: 'vv' } })).toBe(3 + 10 + 1 + 2);
  });

  it('headers: strings as is, others as JSON, nothing left out', () => {
    expect(encodeHeader('x')).toBe('x');
    expect(encodeHeader(3)).toBe('3');
    expect(encodeHeader({ a: 1 })).toBe('{"a":1}');
    expect(encodeHeader(undefined)).toBeUndefined();
  });
});

describe('kafka sink: definition', () => {
  it('describes itself without the password', () => {
    const line = kafkaSink.describe({
      ...base,
      key: '$string(employee_id)',
      sasl: { mechanism: 'plain', username: 'u', password: 'hunter2' },
    });
    expect(line).toContain('out');
    expect(line).toContain('$string(employee_id)');
    expect(line).not.toContain('hunter2');
  });

  it('marks expressions and secrets in its schema', () => {
    const props = kafkaSink.schema.properties as Record<string, Record<string, unknown>>;
    expect(props.key!['x-jsonata']).toBe(true);
    expect(props.topic_expr!['x-jsonata']).toBe(true);
    expect((props.headers!.additionalProperties as Record<string, unknown>)['x-jsonata']).toBe(true);
    expect((props.sasl!.properties as Record<string, Record<string, unknown>>).password!['x-secret']).toBe(true);
    expect(props.linger!['x-duration']).toBe(true);
  });
});
