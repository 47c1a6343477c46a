/**
 * The producers' calls into kafkajs are bounded: after a broker restart kafkajs can leave a
 * request's promise pending for good, and a run waiting on it stalled without a word (the restart
 * matrix's broker restart once waited 240 s with no checkpoint and no error). Here kafkajs's
 * producer is replaced by one whose calls never answer; the bounds turn that into errors.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/engine/logger.ts';
import { createProducer, createTransactionalProducer } from '../../../src/io/kafka/client.ts';
// After client.ts, which patches kafkajs's modules before kafkajs loads them.
import { Kafka, type Producer } from 'kafkajs';

const never = (): Promise<never> => new Promise(() => {});

/** A kafkajs producer that connects and begins transactions, and whose requests then never answer (a transaction's sends do, when `sendsAnswer`). */
function unansweringProducer(sendsAnswer = false) {
  const calls: string[] = [];
  const transaction = {
    sendBatch: () => (calls.push('sendBatch'), sendsAnswer ? Promise.resolve([]) : never()),
    sendOffsets: () => (calls.push('sendOffsets'), never()),
    commit: () => (calls.push('commit'), never()),
    abort: () => (calls.push('abort'), Promise.resolve()),
  };
  const producer = {
    connect: () => Promise.resolve(),
    transaction: () => Promise.resolve(transaction),
    sendBatch: () => (calls.push('sendBatch'), never()),
    disconnect: () => (calls.push('disconnect'), never()),
  };
  return { calls, producer: producer as unknown as Producer };
}

const conn = { brokers: ['127.0.0.1:1'], clientId: 'deadline-test' };
const message = { topic: 't', key: 'k', value: 'v' };

describe('kafka producers whose calls kafkajs never answers', () => {
  let fake: ReturnType<typeof unansweringProducer>;
  beforeEach(() => {
    vi.useFakeTimers();
    fake = unansweringProducer();
    vi.spyOn(Kafka.prototype, 'producer').mockReturnValue(fake.producer);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it('transactional: a commit whose send never answers fails after the transaction timeout, later calls fail at once, close gives up after 2 s', async () => {
    const producer = createTransactionalProducer(conn, { transactionalId: 'tx-1', transactionTimeoutMs: 10_000 }, silentLogger);
    await producer.connect();
    await producer.send([message]);
    let failed: unknown;
    void producer.commit([]).catch((err: unknown) => (failed = err));
    await vi.advanceTimersByTimeAsync(9_999);
    expect(failed).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(failed).toMatchObject({ code: 'E_KAFKA_TRANSACTION' });
    // The held send went first, and its failure is the commit's.
    expect((failed as Error).message).toBe('kafka transaction send failed for `tx-1`: kafkajs send: no answer within 10 s');

    // The store aborts a failed checkpoint's transaction (which drops what was held and its
    // failure); the producer stays given up on: no second wait of 10 s on the same silent connection.
    await producer.abort();
    const again = producer.send([message]).then(() => producer.commit([{ groupId: 'g', offsets: [{ topic: 't', partition: 0, offset: '1' }] }]));
    const refused = expect(again).rejects.toThrow('kafkajs send: no answer within 10 s');
    await vi.advanceTimersByTimeAsync(200);
    await refused;
    expect(fake.calls.filter((c) => c === 'sendBatch')).toHaveLength(1);

    const closed = expect(producer.close()).rejects.toThrow('kafkajs disconnect: no answer within 2 s');
    await vi.advanceTimersByTimeAsync(2_000);
    await closed;
  });

  it('transactional: the commit itself never answers; it fails after the transaction timeout', async () => {
    fake = unansweringProducer(true);
    vi.spyOn(Kafka.prototype, 'producer').mockReturnValue(fake.producer);
    const producer = createTransactionalProducer(conn, { transactionalId: 'tx-2', transactionTimeoutMs: 10_000 }, silentLogger);
    await producer.connect();
    await producer.send([message]);
    const failed = expect(producer.commit([{ groupId: 'g', offsets: [{ topic: 't', partition: 0, offset: '1' }] }])).rejects.toThrow(
      'kafka transaction commit failed for `tx-2`: kafkajs sendOffsets: no answer within 10 s',
    );
    await vi.advanceTimersByTimeAsync(10_000);
    await failed;
    // The first abort is the registration's empty transaction; the commit never came.
    expect(fake.calls).toEqual(['abort', 'sendBatch', 'sendOffsets']);
  });

  it('plain: a send that never answers fails as a produce error once retry_for has passed', async () => {
    const producer = createProducer(conn, { retryForMs: 5_000 }, silentLogger);
    await producer.connect();
    let failed: unknown;
    void producer.send([message]).catch((err: unknown) => (failed = err));
    await vi.advanceTimersByTimeAsync(4_999);
    expect(failed).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(failed).toMatchObject({ code: 'E_KAFKA_PRODUCE' });
    expect((failed as Error).message).toBe('cannot write 1 message(s) to t: kafkajs send: no answer within 5 s');
  });
});
