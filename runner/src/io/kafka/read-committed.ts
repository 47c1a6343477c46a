/**
 * A fix for kafkajs 2.2.4's read_committed filtering, installed before kafkajs loads (client.ts
 * imports this first). kafkajs drops the records of aborted transactions with a walk that assumes
 * the broker lists aborted transactions in order of their first offset, and that at most one
 * starts per record. The broker lists them in order of their abort markers, so when transactions
 * of several producers interleave in one partition and abort in another order than they began
 * (every upstream task writes into every partition of a repartition topic; a fenced task's open
 * transaction is aborted late), kafkajs shows an aborted record to a read_committed reader, or
 * hides a committed one. Measured here: a task restored a checkpoint record of an aborted
 * transaction while the same transaction's changelog record stayed hidden.
 *
 * This is the Java consumer's rule (Fetcher: abortedProducerIds): walk records in offset order;
 * every aborted transaction whose first offset is at or below the record's joins the aborted set;
 * an ABORT marker of a producer leaves it; a transactional record of a producer in the set is
 * dropped.
 */
import { replaceKafkajsModule } from './kafkajs-module.ts';

interface AbortedTransaction {
  firstOffset: string;
  producerId: string;
}

interface FetchedRecord {
  offset: string;
  key: Buffer | null;
  isControlRecord?: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}

/** The control record key of an ABORT marker (version 0, type 0). */
const ABORT_MARKER_KEY = Buffer.from([0, 0, 0, 0]);

function isAbortMarker(record: FetchedRecord): boolean {
  return record.key !== null && record.key !== undefined && Buffer.from(record.key).equals(ABORT_MARKER_KEY);
}

/** The records of `records` (in offset order) that no aborted transaction wrote. Control records pass (kafkajs drops them next). */
export function withoutAborted<R extends FetchedRecord>({ messages, abortedTransactions }: { messages: R[]; abortedTransactions?: AbortedTransaction[] }): R[] {
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const pending = [...abortedTransactions].sort((a, b) => compareOffsets(a.firstOffset, b.firstOffset));
  const aborted = new Set<string>();
  let next = 0;
  return messages.filter((record) => {
    while (next < pending.length && compareOffsets(pending[next]!.firstOffset, record.offset) <= 0) aborted.add(String(pending[next++]!.producerId));
    const producer = String(record.batchContext.producerId);
    if (record.isControlRecord) {
      if (isAbortMarker(record)) aborted.delete(producer);
      return true;
    }
    return !(record.batchContext.inTransaction && aborted.has(producer));
  });
}

function compareOffsets(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

replaceKafkajsModule({
  module: 'kafkajs/src/consumer/filterAbortedMessages.js',
  // kafkajs's Batch keeps the filter it found when it loaded.
  requiredBy: 'kafkajs/src/consumer/batch.js',
  replacement: withoutAborted,
  mark: Symbol.for('sluice.kafkajs.read-committed'),
  what: 'its read_committed filter',
});
