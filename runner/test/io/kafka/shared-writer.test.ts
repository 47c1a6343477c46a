import { describe, expect, it } from 'vitest';
import type { KafkaProducer, ProducedMessage } from '../../../src/io/kafka/client.ts';
import { SharedWriters, sharedWritersOf } from '../../../src/io/kafka/shared-writer.ts';

/** A producer that records each send's message values and its connects and closes. */
function fakeProducer(options: { failConnect?: Error; failSend?: () => Error | undefined } = {}) {
  const log = { sends: [] as string[][], connects: 0, closes: 0 };
  const producer: KafkaProducer = {
    async connect() {
      log.connects++;
      if (options.failConnect) throw options.failConnect;
    },
    async send(messages: readonly ProducedMessage[]) {
      const err = options.failSend?.();
      if (err) throw err;
      log.sends.push(messages.map((m) => String(m.value)));
    },
    async close() {
      log.closes++;
    },
  };
  return { producer, log };
}

const msg = (value: string): ProducedMessage => ({ topic: 't', key: null, value });

describe('SharedWriters', () => {
  it('gives the holders of one key one producer, connected once, and one request for what they wrote meanwhile, in order', async () => {
    const { producer, log } = fakeProducer();
    let made = 0;
    const writers = new SharedWriters();
    const make = () => (made++, producer);
    const [a, b] = await Promise.all([writers.acquire('k', make, 20, 100), writers.acquire('k', make, 20, 100)]);
    expect(made).toBe(1);
    expect(log.connects).toBe(1);
    await Promise.all([a.add([msg('a1'), msg('a2')]), b.add([msg('b1')]), a.add([msg('a3')])]);
    expect(log.sends).toEqual([['a1', 'a2', 'b1', 'a3']]);
  });

  it('keeps keys apart', async () => {
    const one = fakeProducer();
    const two = fakeProducer();
    const writers = new SharedWriters();
    const a = await writers.acquire('processed', () => one.producer, 0, 100);
    const b = await writers.acquire('summaries', () => two.producer, 0, 100);
    await Promise.all([a.add([msg('p')]), b.add([msg('s')])]);
    expect(one.log.sends).toEqual([['p']]);
    expect(two.log.sends).toEqual([['s']]);
  });

  it('closes the producer when its last holder releases, after what was added is sent; a later acquire makes a new one', async () => {
    const first = fakeProducer();
    const writers = new SharedWriters();
    const a = await writers.acquire('k', () => first.producer, 60_000, 100);
    const b = await writers.acquire('k', () => first.producer, 60_000, 100);
    const written = b.add([msg('b1')]);
    await a.release();
    // Releasing waits for what was waiting (the linger is long: only the release sent it).
    await written;
    expect(first.log.sends).toEqual([['b1']]);
    expect(first.log.closes).toBe(0);
    await a.release(); // twice by the same holder counts once
    expect(first.log.closes).toBe(0);
    await b.release();
    expect(first.log.closes).toBe(1);
    expect(writers.size).toBe(0);
    const second = fakeProducer();
    const c = await writers.acquire('k', () => second.producer, 0, 100);
    await c.add([msg('c1')]);
    expect(second.log.sends).toEqual([['c1']]);
  });

  it('fails every holder whose messages rode in a failed request, and only those', async () => {
    let failing = true;
    const { producer, log } = fakeProducer({ failSend: () => (failing ? new Error('broker gone') : undefined) });
    const writers = new SharedWriters();
    const a = await writers.acquire('k', () => producer, 10, 100);
    const b = await writers.acquire('k', () => producer, 10, 100);
    const wa = a.add([msg('a1')]);
    const wb = b.add([msg('b1')]);
    await expect(wa).rejects.toThrow('broker gone');
    await expect(wb).rejects.toThrow('broker gone');
    failing = false;
    await b.add([msg('b2')]);
    expect(log.sends).toEqual([['b2']]);
  });

  it('fails every holder waiting for a connect that failed, and the next acquire tries afresh', async () => {
    const broken = fakeProducer({ failConnect: new Error('no brokers') });
    const writers = new SharedWriters();
    const attempts = [writers.acquire('k', () => broken.producer, 0, 100), writers.acquire('k', () => broken.producer, 0, 100)];
    await expect(attempts[0]).rejects.toThrow('no brokers');
    await expect(attempts[1]).rejects.toThrow('no brokers');
    expect(broken.log.connects).toBe(1);
    const working = fakeProducer();
    const w = await writers.acquire('k', () => working.producer, 0, 100);
    await w.add([msg('x')]);
    expect(working.log.sends).toEqual([['x']]);
  });
});

describe('sharedWritersOf', () => {
  it('is one registry per run and producer factory', () => {
    const run = {};
    const factory = () => undefined;
    expect(sharedWritersOf(run, factory)).toBe(sharedWritersOf(run, factory));
    expect(sharedWritersOf({}, factory)).not.toBe(sharedWritersOf(run, factory));
    expect(sharedWritersOf(run, () => undefined)).not.toBe(sharedWritersOf(run, factory));
  });
});
