import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import { chunk, isKafkaOutage, isPermanentKafkaError, produceChunks, producedBytes, retryDelayMs, retryWhileLeaderless, sanitizeLogFields, toKafkaMessages, type ProducedMessage } from '../../../src/io/kafka/client.ts';
// After client.ts, which patches kafkajs's modules before kafkajs loads them.
import { KafkaJSConnectionError, KafkaJSError, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs';

describe('chunk', () => {
  it('splits into consecutive parts of at most the size', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([], 3)).toEqual([]);
    expect(() => chunk([1], 0)).toThrow();
  });
});

describe('produceChunks', () => {
  const row = (i: number, bytes: number): ProducedMessage => ({ topic: 't', key: String(i).padStart(4, '0'), value: 'x'.repeat(bytes - 4) });

  it('cuts uncompressed chunks below a record batch the brokers take (1 MB), and keeps every message once, in order', () => {
    const rows = Array.from({ length: 2_000 }, (_, i) => row(i, 2_500));
    const parts = produceChunks(rows, 2_000, 'none');
    expect(parts.flat()).toEqual(rows);
    for (const p of parts) expect(p.reduce((n, m) => n + producedBytes(m), 0)).toBeLessThanOrEqual(1_000_000);
    // 5 MB in all: at least 6 chunks of at most 900 KB.
    expect(parts.length).toBeGreaterThanOrEqual(6);
  });

  it('keeps the count-only chunks for gzip, and a message larger than the bound alone in its chunk', () => {
    const rows = Array.from({ length: 5 }, (_, i) => row(i, 2_500));
    expect(produceChunks(rows, 2, 'gzip')).toEqual(chunk(rows, 2));
    const big = [row(0, 10), row(1, 2_000_000), row(2, 10)];
    expect(produceChunks(big, 100, 'lz4').map((p) => p.length)).toEqual([1, 1, 1]);
  });

  it('counts headers in a message\'s bytes', () => {
    expect(producedBytes({ topic: 't', key: 'ab', value: Buffer.alloc(3), headers: { h: 'vv' } })).toBe(2 + 3 + 1 + 2);
    expect(producedBytes({ topic: 't', key: null, value: null })).toBe(0);
  });
});

describe('retryDelayMs', () => {
  it('doubles from 250 ms and stays at 10 s', () => {
    expect([0, 1, 2, 3].map(retryDelayMs)).toEqual([250, 500, 1000, 2000]);
    expect(retryDelayMs(6)).toBe(10_000);
    expect(retryDelayMs(50)).toBe(10_000);
  });
});

describe('isPermanentKafkaError', () => {
  it('finds a permanent error type anywhere in the cause chain', () => {
    const protocol = Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' });
    const wrapped = Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: protocol });
    expect(isPermanentKafkaError(wrapped)).toBe(true);
    expect(isPermanentKafkaError(Object.assign(new Error('x'), { name: 'KafkaJSSASLAuthenticationError' }))).toBe(true);
  });

  it('treats connection trouble as worth retrying', () => {
    expect(isPermanentKafkaError(Object.assign(new Error('Connection error: ECONNREFUSED'), { name: 'KafkaJSConnectionError' }))).toBe(false);
    expect(isPermanentKafkaError(Object.assign(new Error('leader moved'), { type: 'NOT_LEADER_FOR_PARTITION' }))).toBe(false);
  });
});

describe('isKafkaOutage', () => {
  // kafkajs's own error classes, built as its connection and retrier build them.
  const refused = () => new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:19192', { broker: '127.0.0.1:19192', code: 'ECONNREFUSED' });
  const protocol = (type: string, retriable: boolean) => new KafkaJSProtocolError(Object.assign(new Error(type), { type, code: 0, retriable }));

  it('is a refused connection, also once kafkajs gave up retrying it, and a leader or coordinator not there yet', () => {
    expect(isKafkaOutage(refused())).toBe(true);
    expect(isKafkaOutage(new KafkaJSNumberOfRetriesExceeded(refused(), { retryCount: 8, retryTime: 10_000 }))).toBe(true);
    expect(isKafkaOutage(protocol('COORDINATOR_NOT_AVAILABLE', true))).toBe(true);
  });

  it('is not a message or a permission no retry fixes, a non-retriable kafkajs error, nor an error of anything but kafkajs', () => {
    expect(isKafkaOutage(protocol('MESSAGE_TOO_LARGE', false))).toBe(false);
    expect(isKafkaOutage(new KafkaJSNumberOfRetriesExceeded(protocol('TOPIC_AUTHORIZATION_FAILED', true), { retryCount: 8, retryTime: 10_000 }))).toBe(false);
    expect(isKafkaOutage(new KafkaJSNonRetriableError('the consumer was stopped'))).toBe(false);
    expect(isKafkaOutage(new Error('Connection error: connect ECONNREFUSED'))).toBe(false);
    expect(isKafkaOutage(new KafkaJSError('something went wrong', { retriable: false }))).toBe(false);
  });
});

describe('retryWhileLeaderless', () => {
  const notLeader = () => new KafkaJSProtocolError(Object.assign(new Error('This server is not the leader for that topic-partition'), { type: 'NOT_LEADER_FOR_PARTITION', code: 6, retriable: true }));

  it('calls again while a partition has no leader, and returns what the call then gives', async () => {
    let calls = 0;
    const answer = await retryWhileLeaderless(async () => {
      if (++calls < 3) throw notLeader();
      return 'offsets';
    }, 5, 1);
    expect(answer).toBe('offsets');
    expect(calls).toBe(3);
  });

  it('gives up after the attempts with the last error, and at once on any other error', async () => {
    let calls = 0;
    await expect(retryWhileLeaderless(async () => {
      calls++;
      throw notLeader();
    }, 4, 1)).rejects.toThrow(/not the leader/);
    expect(calls).toBe(4);
    calls = 0;
    await expect(retryWhileLeaderless(async () => {
      calls++;
      throw new KafkaJSConnectionError('Connection error: connect ECONNREFUSED');
    }, 4, 1)).rejects.toThrow(/ECONNREFUSED/);
    expect(calls).toBe(1);
  });
});

describe('toKafkaMessages', () => {
  const require = createRequire(import.meta.url);
  const produceRequest = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (r: object) => { encode(): Promise<{ buffer: Buffer }> };
  const frame = async (messages: object[], compression: number) =>
    (await produceRequest({ acks: -1, timeout: 30_000, compression, topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages }] }] }).encode()).buffer;

  it('gives the produce request kafkajs encodes from messages written as its docs show them (absent fields left out), compressed or not', async () => {
    const produced: ProducedMessage[] = [
      { topic: 't', key: 'a', value: '{"n":1}', timestamp: 1_700_000_000_123 },
      { topic: 't', key: null, value: Buffer.from('raw'), headers: { 'sluice-error': 'x' }, timestamp: 1_700_000_000_100 },
      { topic: 't', key: 'c', value: null, partition: 0, timestamp: 1_700_000_000_200 },
    ];
    const documented = [
      { key: 'a', value: '{"n":1}', timestamp: '1700000000123' },
      { key: null, value: Buffer.from('raw'), headers: { 'sluice-error': 'x' }, timestamp: '1700000000100' },
      { key: 'c', value: null, partition: 0, timestamp: '1700000000200' },
    ];
    for (const compression of [0, 1]) expect(Buffer.compare(await frame(toKafkaMessages(produced), compression), await frame(documented, compression))).toBe(0);
  });

  it('leaves the timestamp to kafkajs (the write time) when none is given', async () => {
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000);
    try {
      const ours = await frame(toKafkaMessages([{ topic: 't', key: 'a', value: 'v' }]), 0);
      expect(Buffer.compare(ours, await frame([{ key: 'a', value: 'v' }], 0))).toBe(0);
      expect(Buffer.compare(ours, await frame([{ key: 'a', value: 'v', timestamp: '1600000000000' }], 0))).not.toBe(0);
    } finally {
      now.mockRestore();
    }
  });
});

describe('sanitizeLogFields', () => {
  it('drops credentials, stacks and objects; shortens long strings', () => {
    const out = sanitizeLogFields({ broker: 'a:1', password: 'x', saslMechanism: 'plain', stack: 'at ...', retry: 3, obj: { a: 1 }, long: 'y'.repeat(600) });
    expect(out).toMatchObject({ broker: 'a:1', retry: 3 });
    expect(out).not.toHaveProperty('password');
    expect(out).not.toHaveProperty('saslMechanism');
    expect(out).not.toHaveProperty('stack');
    expect(out).not.toHaveProperty('obj');
    expect((out.long as string).length).toBe(503);
  });
});

describe('the kafkajs boundary', () => {
  it('no module outside runner/src/io/kafka imports kafkajs', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { dirname, join, relative, resolve } = await import('node:path');
    const { fileURLToPath } = await import('node:url');
    const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.ts$/.test(entry.name) && /from ['"]kafkajs['"]|require\(['"]kafkajs['"]\)|import\(['"]kafkajs['"]\)/.test(readFileSync(path, 'utf8'))) {
          offenders.push(relative(repo, path));
        }
      }
    };
    for (const top of ['runner/src', 'runner/bench', 'scripts']) walk(join(repo, top));
    // The bench's yardstick is kafkajs with no sluice at all, by definition.
    const yardstick = 'runner/bench/pass-through.ts';
    expect(offenders.filter((p) => !p.startsWith('runner/src/io/kafka/') && p !== yardstick)).toEqual([]);
    expect(offenders).toContain('runner/src/io/kafka/client.ts');
  });
});
