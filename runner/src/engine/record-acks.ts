/**
 * Ack bookkeeping over record arrays. Records of one source batch sit next to each other and
 * share one Ack, so runs of the same Ack are retained or released with one call.
 */
import type { Ack } from './ack.ts';
import type { StreamRecord } from './record.ts';

/** Calls `f(ack, run)` once per run of consecutive records sharing an Ack. */
function forEachAckRun(records: readonly StreamRecord[], f: (ack: Ack, run: number) => void): void {
  const n = records.length;
  if (n === 0) return;
  let ack = records[0]!.ack;
  let run = 1;
  for (let i = 1; i < n; i++) {
    const next = records[i]!.ack;
    if (next === ack) {
      run++;
    } else {
      f(ack, run);
      ack = next;
      run = 1;
    }
  }
  f(ack, run);
}

/** Releases one reference per record. */
export function releaseRecords(records: readonly StreamRecord[]): void {
  forEachAckRun(records, (ack, run) => ack.release(run));
}

/** Retains `times` more references per record (fan-out to `times` extra readers). */
export function retainRecords(records: readonly StreamRecord[], times: number): void {
  if (times === 0) return;
  forEachAckRun(records, (ack, run) => ack.retain(run * times));
}
