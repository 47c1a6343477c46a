/**
 * Ack bookkeeping over record arrays. Records of one source batch sit next to each other and
 * share one Ack, so runs of the same Ack are retained or released with one call.
 */
import type { StreamRecord } from './record.ts';

/** Releases one reference per record. */
export function releaseRecords(records: readonly StreamRecord[]): void {
  const n = records.length;
  if (n === 0) return;
  let ack = records[0]!.ack;
  let run = 1;
  for (let i = 1; i < n; i++) {
    const next = records[i]!.ack;
    if (next === ack) {
      run++;
    } else {
      ack.release(run);
      ack = next;
      run = 1;
    }
  }
  ack.release(run);
}

/** Retains `times` more references per record (fan-out to `times` extra readers). */
export function retainRecords(records: readonly StreamRecord[], times: number): void {
  const n = records.length;
  if (n === 0 || times === 0) return;
  let ack = records[0]!.ack;
  let run = 1;
  for (let i = 1; i < n; i++) {
    const next = records[i]!.ack;
    if (next === ack) {
      run++;
    } else {
      ack.retain(run * times);
      ack = next;
      run = 1;
    }
  }
  ack.retain(run * times);
}
