import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../../src/io/kafka/client.ts';
import { withoutAborted } from '../../../src/io/kafka/read-committed.ts';

const ABORT = Buffer.from([0, 0, 0, 0]);
const COMMIT = Buffer.from([0, 0, 0, 1]);

function record(offset: number, producerId: string, opts: { control?: Buffer; inTransaction?: boolean } = {}) {
  return {
    offset: String(offset),
    key: opts.control ?? Buffer.from(`k${offset}`),
    value: Buffer.from('v'),
    isControlRecord: opts.control !== undefined,
    batchContext: { producerId, inTransaction: opts.inTransaction ?? true },
  };
}

/**
 * One partition, three transactional producers interleaved: A (pid 1) commits, B (pid 2) and C
 * (pid 3) abort, C's abort marker coming BEFORE B's although B began first. The broker lists
 * aborted transactions in marker order: C first.
 */
const partition = [
  record(0, '1'),
  record(1, '2'), // B, aborted
  record(2, '3'), // C, aborted
  record(3, '1'),
  record(4, '3', { control: ABORT }),
  record(5, '1', { control: COMMIT }),
  record(6, '2', { control: ABORT }),
  record(7, '2'), // B's next transaction: committed
  record(8, '2', { control: COMMIT }),
];
const aborted = [
  { producerId: '3', firstOffset: '2' },
  { producerId: '2', firstOffset: '1' },
];

describe('read_committed filtering', () => {
  it('drops exactly the records of aborted transactions, whatever order the broker lists them in', () => {
    const kept = withoutAborted({ messages: partition, abortedTransactions: aborted }).filter((r) => !r.isControlRecord);
    expect(kept.map((r) => r.offset)).toEqual(['0', '3', '7']);
  });

  it('handles aborted transactions that began before the fetched offset', () => {
    const fromFour = partition.filter((r) => Number(r.offset) >= 3);
    const kept = withoutAborted({ messages: fromFour, abortedTransactions: aborted }).filter((r) => !r.isControlRecord);
    expect(kept.map((r) => r.offset)).toEqual(['3', '7']);
  });

  it("is what kafkajs's own Batch uses once client.ts is loaded (kafkajs 2.2.4 alone shows offset 1 here)", () => {
    const require = createRequire(import.meta.url);
    const Batch = require('kafkajs/src/consumer/batch.js') as new (topic: string, fetchedOffset: string, data: unknown) => { messages: { offset: string }[] };
    const batch = new Batch('t', '0', { partition: 0, highWatermark: '9', messages: partition, abortedTransactions: aborted });
    expect(batch.messages.map((m) => m.offset)).toEqual(['0', '3', '7']);
  });
});
