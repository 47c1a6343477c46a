import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ComponentContext, RawBatch, SourceOutput } from '../../../src/engine/component.ts';
import { systemClock } from '../../../src/engine/clock.ts';
import { ConfigError, ConnectionError, RecordError } from '../../../src/engine/errors.ts';
import { undecodableRecord } from '../../../src/engine/failed-record.ts';
import { RefusedValue } from '../../../src/engine/record.ts';
import { jsonFormat } from '../../../src/components/formats/json.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { ConsumerHandlers, ConsumerOptions, FetchedBatch, FetchedMessage, GroupConsumer, KafkaAdmin, TopicPartition } from '../../../src/io/kafka/client.ts';
import {
  KafkaSource,
  consumerLag,
  assignmentChange,
  heartbeatCheckMs,
  kafkaSource,
  partitionId,
  subscriptionOf,
  unseenMessages,
  type KafkaSourceConfig,
} from '../../../src/components/sources/kafka.ts';

class FakeConsumer implements GroupConsumer {
  readonly heartbeatIntervalMs = 5;
  handlers!: ConsumerHandlers;
  commits: (TopicPartition & { offset: string })[][] = [];
  paused: TopicPartition[] = [];
  heartbeats = 0;
  disconnected = false;
  lastContact: number | undefined;
  lastContactAt(): number | undefined {
    return this.lastContact;
  }
  async start(handlers: ConsumerHandlers): Promise<void> {
    this.handlers = handlers;
  }
  async commit(offsets: (TopicPartition & { offset: string })[]): Promise<void> {
    this.commits.push(offsets);
  }
  pause(partitions: TopicPartition[]): void {
    this.paused.push(...partitions);
  }
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
  fetchBytes(topic: string): number {
    return topic.length * 1000;
  }
  /** Delivers a batch as kafkajs would, with a heartbeat that counts. */
  deliver(batch: FetchedBatch): Promise<void> {
    return this.handlers.onBatch(batch, {
      heartbeat: async () => {
        this.heartbeats++;
      },
      isStale: () => false,
    });
  }
}

/** Plays the engine: takes one reference per message and seals, like the runtime does. */
class FakeOutput implements SourceOutput {
  batches: RawBatch[] = [];
  assigned: string[][] = [];
  revoked: string[][] = [];
  gate: Promise<void> | undefined;
  failWith: Error | undefined;
  async emit(batch: RawBatch): Promise<void> {
    batch.ack.retain(batch.messages.length);
    batch.ack.seal();
    this.batches.push(batch);
    if (this.failWith) throw this.failWith;
    if (this.gate) await this.gate;
  }
  assign(partitions: string[]): void {
    this.assigned.push(partitions);
  }
  revoke(partitions: string[]): void {
    this.revoked.push(partitions);
  }
  /** Acknowledges every message of the n-th emitted batch. */
  ackBatch(n: number): void {
    const b = this.batches[n]!;
    b.ack.release(b.messages.length);
  }
}

function ctx(metrics = new Metrics()): ComponentContext {
  return { name: 'activities', logger: silentLogger, clock: systemClock, metrics, mode: 'run' };
}

function msg(offset: number, size = 10): FetchedMessage {
  return { key: Buffer.from('k'), value: Buffer.from('{"a":1}'), headers: { h: 'v' }, timestamp: 1_700_000_000_000, offset: String(offset), size };
}

function batch(topic: string, partition: number, from: number, to: number, lastOffset = to): FetchedBatch {
  const messages: FetchedMessage[] = [];
  for (let o = from; o <= to; o++) messages.push(msg(o));
  return { topic, partition, messages, lastOffset: String(lastOffset) };
}

const config: KafkaSourceConfig = { brokers: 'localhost:9092', topic: 't', group: 'g', start: 'earliest' };

function setup(extra: Partial<KafkaSourceConfig> = {}, metrics = new Metrics()) {
  const consumer = new FakeConsumer();
  const source = new KafkaSource({ ...config, ...extra }, { brokers: ['localhost:9092'], clientId: 'x' }, ctx(metrics), () => consumer);
  const out = new FakeOutput();
  const running = source.run(out);
  return { consumer, source, out, running, metrics };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

/** Under vi.useFakeTimers: a running source whose consumer heartbeats every `heartbeatIntervalMs`, assigned partition t/0. */
async function startedUnderFakeTimers(heartbeatIntervalMs: number) {
  const consumer = Object.assign(new FakeConsumer(), { heartbeatIntervalMs });
  const source = new KafkaSource(config, { brokers: ['localhost:9092'], clientId: 'x' }, ctx(new Metrics()), () => consumer);
  const out = new FakeOutput();
  void source.run(out);
  await vi.advanceTimersByTimeAsync(0);
  consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
  return { consumer, source, out };
}

describe('kafka source: offsets', () => {
  it('hands each fetched batch over as one RawBatch with positions, headers and timestamps', async () => {
    const { consumer, out } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    expect(out.assigned).toEqual([['activities/t/0']]);
    await consumer.deliver(batch('t', 0, 0, 2));
    expect(out.batches).toHaveLength(1);
    const b = out.batches[0]!;
    expect(b.partition).toBe('activities/t/0');
    expect(b.messages.map((m) => m.position)).toEqual([0, 1, 2].map((o) => ({ source: 'activities', partition: 'activities/t/0', offset: String(o) })));
    expect(b.messages[0]).toMatchObject({ headers: { h: 'v' }, timestamp: 1_700_000_000_000, meta: { topic: 't', partition: 0, offset: '0' } });
    expect(Buffer.isBuffer(b.messages[0]!.value)).toBe(true);
  });

  it('commits only up to the last batch whose every earlier batch was acknowledged, each offset once', async () => {
    const { consumer, source, out } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 0, 2));
    await consumer.deliver(batch('t', 0, 3, 5));
    await consumer.deliver(batch('t', 0, 6, 8));

    out.ackBatch(1); // the middle batch first: nothing may be committed yet
    await source.commit();
    expect(consumer.commits).toEqual([]);

    out.ackBatch(0);
    await source.commit();
    expect(consumer.commits).toEqual([[{ topic: 't', partition: 0, offset: '6' }]]);

    await source.commit(); // nothing new: no second commit of the same offset
    expect(consumer.commits).toHaveLength(1);

    out.ackBatch(2);
    await source.commit();
    expect(consumer.commits[1]).toEqual([{ topic: 't', partition: 0, offset: '9' }]);
  });

  it('commits past transaction markers at the end of a batch', async () => {
    const { consumer, source, out } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 0, 1, 2));
    out.ackBatch(0);
    await source.commit();
    expect(consumer.commits).toEqual([[{ topic: 't', partition: 0, offset: '3' }]]);
  });

  it('on losing a partition: tells the pipeline, and never commits it again, even when its batches complete later', async () => {
    const { consumer, source, out } = setup();
    await flush();
    consumer.handlers.onAssignment([
      { topic: 't', partition: 0 },
      { topic: 't', partition: 1 },
    ]);
    await consumer.deliver(batch('t', 0, 0, 1));
    await consumer.deliver(batch('t', 1, 0, 1));
    consumer.handlers.onAssignment([{ topic: 't', partition: 1 }]);
    expect(out.revoked).toEqual([['activities/t/0']]);
    out.ackBatch(0);
    out.ackBatch(1);
    await source.commit();
    expect(consumer.commits).toEqual([[{ topic: 't', partition: 1, offset: '2' }]]);
  });

  it('commits what completed when a rebalance starts', async () => {
    const { consumer, out } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 0, 4));
    out.ackBatch(0);
    consumer.handlers.onRebalancing();
    await flush();
    expect(consumer.commits).toEqual([[{ topic: 't', partition: 0, offset: '5' }]]);
  });

  it('keeps a partition it gets back after a rebalance, and does not hand re-fetched messages over twice', async () => {
    const { consumer, source, out } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 0, 2));
    // Rebalance; kafkajs restarts from the committed offset (none): 0..5 arrive again.
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    expect(out.revoked).toEqual([]);
    await consumer.deliver(batch('t', 0, 0, 5));
    expect(out.batches).toHaveLength(2);
    expect(out.batches[1]!.messages.map((m) => m.position.offset)).toEqual(['3', '4', '5']);
    out.ackBatch(0);
    out.ackBatch(1);
    await source.commit();
    expect(consumer.commits).toEqual([[{ topic: 't', partition: 0, offset: '6' }]]);
  });

  it('a partition lost and gained again starts afresh', async () => {
    const { consumer, out } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 0, 2));
    consumer.handlers.onAssignment([]);
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 0, 2));
    expect(out.batches[1]!.messages).toHaveLength(3);
  });

  it('hands a message over max_message_bytes on undecoded, for <source>.errors: value left out, its size and origin in headers, counted', async () => {
    const { consumer, source, out, metrics } = setup({ max_message_bytes: 100 });
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    const b = batch('t', 0, 0, 2);
    b.messages[1] = { ...b.messages[1]!, size: 5_000 };
    await consumer.deliver(b);
    const messages = out.batches[0]!.messages;
    expect(messages.map((m) => m.position.offset)).toEqual(['0', '1', '2']);
    expect(messages[1]!.value).toBeInstanceOf(RefusedValue);
    expect(() => jsonFormat.create({}, ctx()).decode(messages[1]!)).toThrow(
      'message of 5000 bytes is larger than max_message_bytes (100); its value is left out, read it at t partition 0 offset 1',
    );
    // What the dead-letter sink gets: no value, the key, the reason and where the original is.
    const dead = undecodableRecord(messages[1]!, 'activities', out.batches[0]!.ack, new RecordError('E_MESSAGE_TOO_LARGE', 'too large'));
    expect(dead).toMatchObject({ key: 'k', value: null });
    expect(dead.headers).toEqual({
      h: 'v',
      'sluice-error-size': '5000',
      'sluice-error-topic': 't',
      'sluice-error-partition': '0',
      'sluice-error-offset': '1',
      'sluice-error-node': 'activities',
      'sluice-error-message': 'too large',
    });
    expect(metrics.counter('sluice_kafka_oversized_total', { node: 'activities' })).toBe(1);
    out.ackBatch(0);
    await source.commit();
    expect(consumer.commits).toEqual([[{ topic: 't', partition: 0, offset: '3' }]]);
  });

  it('leaves out an oversized message\'s key too when it is more than an id (over 1 KiB)', async () => {
    const { consumer, out } = setup({ max_message_bytes: 100 });
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver({ topic: 't', partition: 0, messages: [{ ...msg(0), key: Buffer.alloc(2000), size: 2010 }], lastOffset: '0' });
    expect(out.batches[0]!.messages[0]!.key).toBeNull();
  });
});

describe('kafka source: flow control and lifecycle', () => {
  it('does not take the next batch while the pipeline is full, and heartbeats meanwhile', async () => {
    const { consumer, out } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    let open!: () => void;
    out.gate = new Promise((r) => (open = r));
    let returned = false;
    const delivering = consumer.deliver(batch('t', 0, 0, 0)).then(() => (returned = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(returned).toBe(false);
    expect(consumer.heartbeats).toBeGreaterThan(0);
    open();
    await delivering;
    expect(returned).toBe(true);
  });

  describe('heartbeats (fake timers)', () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    it('heartbeats within about the interval while each batch waits for room a little less than it (kafkajs sends only when due)', async () => {
      const interval = 3_000;
      /** kafkajs's rule: heartbeat() sends only once `interval` passed since the last sent; its runner asks after each batch too. */
      const sent: number[] = [0];
      const heartbeat = async () => {
        if (Date.now() >= sent[sent.length - 1]! + interval) sent.push(Date.now());
      };
      const { consumer, out } = await startedUnderFakeTimers(interval);
      vi.setSystemTime(0);
      // Twelve batches under a backlog, each waiting 2.9 s for the pipeline to take it.
      for (let b = 0; b < 12; b++) {
        let open!: () => void;
        out.gate = new Promise((r) => (open = r));
        const delivering = consumer.handlers.onBatch(batch('t', 0, b, b), { heartbeat, isStale: () => false });
        await vi.advanceTimersByTimeAsync(2_900);
        open();
        await delivering;
        await heartbeat();
      }
      const gaps = sent.slice(1).map((t, i) => t - sent[i]!);
      expect(gaps.length).toBeGreaterThan(8);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(interval + heartbeatCheckMs(interval));
    });

    it('heartbeats between batches too, as the heartbeat thread of the Java client does, but not while the group rebalances', async () => {
      const interval = 3_000;
      const sent: number[] = [];
      let last = 0;
      const heartbeat = async () => {
        if (Date.now() >= last + interval) sent.push((last = Date.now()));
      };
      const { consumer } = await startedUnderFakeTimers(interval);
      vi.setSystemTime(0);
      // One batch, then a fetch that takes 10 s (a backlog's decoding on a busy thread).
      await consumer.handlers.onBatch(batch('t', 0, 0, 0), { heartbeat, isStale: () => false });
      await vi.advanceTimersByTimeAsync(10_000);
      expect(sent).toEqual([3_000, 6_000, 9_000]);
      // kafkajs starts rejoining: the old generation's heartbeat is not asked for meanwhile.
      consumer.handlers.onRebalancing();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(sent).toHaveLength(3);
    });

    it('heartbeats while stopping (the member stays in the group until close leaves it), and not after close', async () => {
      const { consumer, source } = await startedUnderFakeTimers(600);
      let asked = 0;
      await consumer.handlers.onBatch(batch('t', 0, 0, 0), { heartbeat: async () => void asked++, isStale: () => false });
      await source.stop();
      await vi.advanceTimersByTimeAsync(1_000);
      expect(asked).toBeGreaterThanOrEqual(9);
      const closing = source.close();
      await vi.advanceTimersByTimeAsync(0);
      await closing;
      const before = asked;
      await vi.advanceTimersByTimeAsync(1_000);
      expect(asked).toBe(before);
    });

    it('a heartbeat between batches that finds the group rebalancing fails the next batch, once, so kafkajs rejoins; one from before an assignment does not', async () => {
      const { consumer, out } = await startedUnderFakeTimers(600);
      const rebalancing = new Error('The group is rebalancing, so a rejoin is needed');
      let failing = false;
      const control = { heartbeat: async () => (failing ? Promise.reject(rebalancing) : undefined), isStale: () => false };
      await consumer.handlers.onBatch(batch('t', 0, 0, 0), control);
      failing = true;
      await vi.advanceTimersByTimeAsync(150);
      failing = false;
      await expect(consumer.handlers.onBatch(batch('t', 0, 1, 1), control)).rejects.toBe(rebalancing);
      // Told once: kafkajs rejoins, and the batch after it goes through.
      await consumer.handlers.onBatch(batch('t', 0, 1, 1), control);
      expect(out.batches.map((b) => b.messages.map((m) => m.position.offset))).toEqual([['0'], ['1']]);
      // A failure heard before the next assignment is old news by then.
      failing = true;
      await vi.advanceTimersByTimeAsync(150);
      failing = false;
      consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
      await consumer.handlers.onBatch(batch('t', 0, 2, 2), control);
      expect(out.batches).toHaveLength(3);
    });
  });

  it('asks for a heartbeat every 500 ms at most, and at least six times an interval', () => {
    expect(heartbeatCheckMs(3_000)).toBe(500);
    expect(heartbeatCheckMs(60_000)).toBe(500);
    expect(heartbeatCheckMs(600)).toBe(100);
    expect(heartbeatCheckMs(5)).toBe(1);
  });

  it('stop pauses fetching and ends run; close commits what completed and leaves the group', async () => {
    const { consumer, source, out, running } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 0, 1));
    await source.stop();
    await running;
    expect(consumer.paused).toEqual([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 2, 3)); // in flight when stop came: not handed over
    expect(out.batches).toHaveLength(1);
    out.ackBatch(0);
    await source.close();
    expect(consumer.commits).toEqual([[{ topic: 't', partition: 0, offset: '2' }]]);
    expect(consumer.disconnected).toBe(true);
  });

  it('stop ends run while kafkajs restarts the consumer (it refuses to pause then), and hands nothing over after', async () => {
    // A stage that fails aborts the others by stopping their sources; a source whose run never
    // ended kept its stage, and so the run's restart, waiting for good (a broker restart).
    const { consumer, source, out, running } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    consumer.handlers.onCrash(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), true);
    consumer.pause = () => {
      throw new Error('Consumer group was not initialized, consumer#run must be called first');
    };
    await source.stop();
    await running;
    await consumer.deliver(batch('t', 0, 0, 1)); // the restarted consumer fetched again
    expect(out.batches).toHaveLength(0);
  });

  it('ends run with the error when the pipeline rejects a batch', async () => {
    const { consumer, out, running } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    out.failWith = new Error('sink gave up');
    await consumer.deliver(batch('t', 0, 0, 0));
    await expect(running).rejects.toThrow('sink gave up');
  });

  it('ends run with a ConnectionError when the consumer fails for good, and keeps running when it restarts', async () => {
    const { consumer, running } = setup();
    await flush();
    consumer.handlers.onCrash(new Error('coordinator moved'), true);
    consumer.handlers.onCrash(new Error('SASL authentication failed'), false);
    await expect(running).rejects.toBeInstanceOf(ConnectionError);
  });
});

describe('kafka source: config', () => {
  it('subscribes to exactly one of topic, topics, topic_pattern', () => {
    expect(subscriptionOf({ topic: 'a' }, 'x')).toEqual(['a']);
    expect(subscriptionOf({ topics: ['a', 'b'] }, 'x')).toEqual(['a', 'b']);
    const [re] = subscriptionOf({ topic_pattern: '^emp\\..*' }, 'x');
    expect(re).toBeInstanceOf(RegExp);
    expect((re as RegExp).test('emp.x')).toBe(true);
    expect(() => subscriptionOf({}, 'x')).toThrow(ConfigError);
    expect(() => subscriptionOf({ topic: 'a', topics: ['b'] }, 'x')).toThrow(/exactly one/);
    expect(() => subscriptionOf({ topic_pattern: '(' }, 'x')).toThrow(/regular expression/);
  });

  it('names partitions <source>/<topic>/<partition>', () => {
    expect(partitionId('activities', 'a.b', 3)).toBe('activities/a.b/3');
  });

  it('computes gained and lost partitions of an assignment', () => {
    expect(assignmentChange(new Set(['a', 'b']), ['b', 'c'])).toEqual({ gained: ['c'], lost: ['a'] });
    expect(assignmentChange(new Set(), [])).toEqual({ gained: [], lost: [] });
  });

  it('filters messages already handed over, comparing offsets as int64', () => {
    const ms = ['9007199254740993', '9007199254740994'].map((offset) => ({ offset }));
    expect(unseenMessages(ms, 9007199254740994n)).toEqual([{ offset: '9007199254740994' }]);
    expect(unseenMessages(ms, undefined)).toHaveLength(2);
  });

  it('starts from the earliest retained offset when the group has none and `start` is not given: a crash before the first commit loses no input', async () => {
    const options: ConsumerOptions[] = [];
    const { start: _start, ...withoutStart } = config;
    const source = new KafkaSource(withoutStart, { brokers: ['localhost:9092'], clientId: 'x' }, ctx(), (_conn, o) => {
      options.push(o);
      return new FakeConsumer();
    });
    void source.run(new FakeOutput());
    await flush();
    expect(options[0]).toMatchObject({ fromBeginning: true });
    expect(kafkaSource.describe(withoutStart)).toContain('from earliest when uncommitted');
    await source.stop();
  });

  it('asks for fetch_max_bytes per partition and waits max_wait; when not given, leaves both to the client (which adapts the size)', async () => {
    const options: ConsumerOptions[] = [];
    const factory = (_conn: unknown, o: ConsumerOptions) => {
      options.push(o);
      return new FakeConsumer();
    };
    for (const c of [config, { ...config, fetch_max_bytes: 4_194_304, max_wait: '100ms' }]) {
      const source = new KafkaSource(c, { brokers: ['localhost:9092'], clientId: 'x' }, ctx(), factory);
      void source.run(new FakeOutput());
      await flush();
      await source.stop();
    }
    expect(options[0]!.maxBytesPerPartition).toBeUndefined();
    expect(options[0]!.maxWaitMs).toBeUndefined();
    expect(options[1]).toMatchObject({ maxBytesPerPartition: 4_194_304, maxWaitMs: 100 });
  });

  it('describes itself without secrets', () => {
    const line = kafkaSource.describe({
      ...config,
      brokers: 'a:9092, b:9092',
      sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'hunter2' },
      tls: true,
    });
    expect(line).toContain('a:9092,b:9092');
    expect(line).toContain('scram-sha-512 as svc');
    expect(line).not.toContain('hunter2');
  });

  it('marks the SASL password and TLS key as secrets in its schema', () => {
    const props = kafkaSource.schema.properties as Record<string, { properties?: Record<string, Record<string, unknown>>; oneOf?: { properties?: Record<string, Record<string, unknown>> }[] }>;
    expect(props.sasl!.properties!.password!['x-secret']).toBe(true);
    expect(props.tls!.oneOf![1]!.properties!.key!['x-secret']).toBe(true);
  });

  it('refuses a bad broker list at create time, before connecting', () => {
    expect(() => kafkaSource.create({ ...config, brokers: 'localhost' }, ctx())).toThrow(/host:port/);
  });
});

describe('kafka source: consumer lag and health', () => {
  it('counts lag from the committed offset, or from where the group will start when it has none', () => {
    const offsets = { low: '100', high: '250' };
    expect(consumerLag(offsets, '200', 'earliest')).toBe(50);
    expect(consumerLag(offsets, '250', 'earliest')).toBe(0);
    expect(consumerLag(offsets, '-1', 'earliest')).toBe(150);
    expect(consumerLag(offsets, undefined, 'latest')).toBe(0);
    // A committed offset past a truncated log end is no negative lag.
    expect(consumerLag(offsets, '300', 'earliest')).toBe(0);
  });

  it('publishes the lag of the partitions it owns, at most every 2 s, and removes a revoked partition\'s series', async () => {
    const metrics = new Metrics();
    const calls: string[] = [];
    const committed = new Map([[0, '40'], [1, '-1']]);
    const admin = {
      connect: async () => {},
      close: async () => {},
      topicOffsets: async (topic: string) => {
        calls.push(topic);
        return new Map([[0, { low: '0', high: '100' }], [1, { low: '10', high: '30' }]]);
      },
      committedOffsets: async () => committed,
    } as Pick<KafkaAdmin, 'connect' | 'close' | 'topicOffsets' | 'committedOffsets'>;
    const consumer = new FakeConsumer();
    const source = new KafkaSource(config, { brokers: ['localhost:9092'], clientId: 'x' }, ctx(metrics), () => consumer, () => admin as KafkaAdmin);
    void source.run(new FakeOutput());
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    await metrics.collect();
    expect(metrics.gauge('sluice_kafka_consumer_lag_messages', { node: 'activities', topic: 't', partition: '0' })).toBe(60);
    expect(metrics.gauge('sluice_kafka_consumer_lag_messages', { node: 'activities', topic: 't', partition: '1' })).toBe(20);
    await metrics.collect();
    expect(calls).toHaveLength(1);
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    expect(metrics.gauge('sluice_kafka_consumer_lag_messages', { node: 'activities', topic: 't', partition: '1' })).toBeUndefined();
    await source.stop();
    await source.close();
    expect(metrics.series('sluice_kafka_consumer_lag_messages')).toEqual([]);
  });

  it('publishes what its fetches ask for per topic it reads, as its consumer says, and removes the series when it closes', async () => {
    const metrics = new Metrics();
    const admin = {
      connect: async () => {},
      close: async () => {},
      topicOffsets: async () => new Map([[0, { low: '0', high: '10' }]]),
      committedOffsets: async () => new Map([[0, '5']]),
    } as Pick<KafkaAdmin, 'connect' | 'close' | 'topicOffsets' | 'committedOffsets'>;
    const consumer = new FakeConsumer();
    const source = new KafkaSource(config, { brokers: ['localhost:9092'], clientId: 'x' }, ctx(metrics), () => consumer, () => admin as KafkaAdmin);
    void source.run(new FakeOutput());
    await flush();
    await metrics.collect();
    expect(metrics.series('sluice_kafka_fetch_bytes')).toEqual([]); // nothing owned yet
    consumer.handlers.onAssignment([{ topic: 'orders', partition: 0 }, { topic: 'orders', partition: 1 }, { topic: 'payments', partition: 0 }]);
    await metrics.collect();
    expect(metrics.gauge('sluice_kafka_fetch_bytes', { node: 'activities', topic: 'orders' })).toBe(6000);
    expect(metrics.gauge('sluice_kafka_fetch_bytes', { node: 'activities', topic: 'payments' })).toBe(8000);
    consumer.handlers.onAssignment([{ topic: 'orders', partition: 0 }]);
    await metrics.collect();
    expect(metrics.gauge('sluice_kafka_fetch_bytes', { node: 'activities', topic: 'payments' })).toBeUndefined();
    await source.stop();
    await source.close();
    expect(metrics.series('sluice_kafka_fetch_bytes')).toEqual([]);
  });

  it('is connected while the brokers answered within a few heartbeats, and not before it joined or after a long silence', async () => {
    const { consumer, source } = setup();
    await flush();
    expect(source.health()).toMatchObject({ connected: false });
    consumer.lastContact = Date.now();
    expect(source.health()).toEqual({ connected: true });
    consumer.lastContact = Date.now() - 60_000;
    expect(source.health()).toMatchObject({ connected: false, detail: expect.stringMatching(/no answer from localhost:9092 for 60 s/) });
    await source.stop();
  });
});

describe('kafka source: close', () => {
  it('disconnects its consumer even when the last offset commit never answers (brokers out of reach)', async () => {
    const { consumer, source, out } = setup();
    await flush();
    consumer.handlers.onAssignment([{ topic: 't', partition: 0 }]);
    await consumer.deliver(batch('t', 0, 0, 2));
    out.ackBatch(0);
    consumer.commit = () => new Promise<void>(() => {});
    const t0 = performance.now();
    await source.close();
    // A consumer left connected would rejoin its group when the brokers return and hold partitions nobody reads.
    expect(consumer.disconnected).toBe(true);
    expect(performance.now() - t0).toBeLessThan(5_000);
  }, 10_000);
});
