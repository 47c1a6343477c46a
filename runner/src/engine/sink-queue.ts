/**
 * SinkQueue: the bounded buffer in front of one sink, and its single writer.
 *
 * The runtime pushes record arrays in as steps produce them; the writer takes whatever has
 * accumulated (up to `maxBatch` records), prepares and writes it as one batch, and only after
 * `write` resolved releases each written record's Ack reference. Batches are prepared and their
 * writes started one at a time, in order, so a sink sees its records in order. A sink that says so
 * (`Sink.maxInFlight`, as Benthos's `max_in_flight`) has that many writes outstanding at once: the
 * next batch is prepared and sent while earlier ones wait for the broker. Their outcomes are taken
 * in the order the writes started, so acknowledgements are released in order too. When more than
 * `capacity` records wait, `hasRoom()` turns false and the runtime stops feeding the graph until the
 * writer catches up: a slow sink slows the sources instead of growing memory.
 *
 * A record the sink cannot write for what it holds (`prepare` answers it with a PrepareFailure, or
 * `write` names its message as refused) is counted as failed and handed, with its Ack reference
 * and the reason, to `onUnwritten`: the runtime sends it to `<sink>.errors`, whose readers
 * acknowledge it once they wrote it, or drops it when nothing reads that port. A `prepare` that
 * throws, or a failing `write`, is an outage and final: the queue stops, nothing of the batch is
 * acknowledged, and `onFailure` tells the runtime, which fails the run. A record that could not be
 * written is never acknowledged, so its source position is never committed; nor is anything of the
 * writes started after the failed one.
 *
 * A checkpoint taken while processing goes on asks the queue for a cut (`cut`): a promise that
 * resolves once everything pushed before it is written. With `hold`, the records pushed after the
 * cut are not written until `resume`: a sink whose writes join the checkpoint's transaction must
 * not put later records into it.
 */
import { PrepareFailure, type OutboundMessage, type Prepared, type Sink, type WriteResult } from './component.ts';
import { SluiceError, errorMessage } from './errors.ts';
import type { StreamRecord } from './record.ts';
import { releaseRecords } from './record-acks.ts';

export interface SinkQueueOptions {
  /** Records waiting beyond which `hasRoom()` is false. */
  capacity: number;
  /** At most this many records per `prepare`/`write` call. */
  maxBatch: number;
  /** Told the duration of each successful write (prepare and write), in seconds: the latency histogram. */
  onWrite?: (seconds: number) => void;
}

export interface SinkQueueStats {
  /** Records waiting for a write. */
  queued: number;
  /** Records in the writes in flight. */
  writing: number;
  /** Writes in flight: prepared or being prepared, and not yet taken. */
  writes: number;
  /** Records written and acknowledged. */
  written: number;
  /** Records not written for what they hold: `prepare` failed for them or `write` refused them. */
  failed: number;
  /** `write` calls that succeeded. */
  batches: number;
  prepareNanos: number;
  writeNanos: number;
}

type Waiter = () => void;

/** A `cut` waiting for the records pushed before it: done once `doneTotal` reaches `upTo`. */
interface CutWaiter {
  upTo: number;
  resolve: Waiter;
}

/** A record the sink did not write for what it holds, and why. Its Ack reference goes with it. */
export interface UnwrittenRecord {
  record: StreamRecord;
  error: Error;
}

export interface SplitPrepared {
  /** The messages to write, in record order. */
  messages: OutboundMessage[];
  /** The record of each message (`records[i]` became `messages[i]`). */
  records: readonly StreamRecord[];
  /** The records `prepare` failed for. */
  failures: UnwrittenRecord[];
}

/**
 * Separates a prepare result into the messages to write and the records that failed. The result
 * must have one entry per record (else the sink has a bug: E_SINK_PREPARE). Without failures the
 * result array is used as is, not copied.
 */
export function splitPrepared(sink: string, records: readonly StreamRecord[], prepared: readonly Prepared[]): SplitPrepared {
  if (prepared.length !== records.length) {
    throw new SluiceError(
      'E_SINK_PREPARE',
      `sink \`${sink}\` prepared ${prepared.length} message(s) for ${records.length} record(s); it must give one per record`,
      `sinks.${sink}`,
    );
  }
  let first = -1;
  for (let i = 0; i < prepared.length; i++) {
    if (prepared[i] instanceof PrepareFailure) {
      first = i;
      break;
    }
  }
  if (first < 0) return { messages: prepared as OutboundMessage[], records, failures: [] };
  const messages = prepared.slice(0, first) as OutboundMessage[];
  const written = records.slice(0, first);
  const failures: UnwrittenRecord[] = [];
  for (let i = first; i < prepared.length; i++) {
    const p = prepared[i]!;
    if (p instanceof PrepareFailure) failures.push({ record: records[i]!, error: p.error });
    else {
      messages.push(p);
      written.push(records[i]!);
    }
  }
  return { messages, records: written, failures };
}

/**
 * The records of a write's refused messages, checked: an index outside the messages or named twice
 * is a bug of the sink (E_SINK_WRITE), which must not acknowledge or route the wrong record.
 */
export function refusedRecords(sink: string, records: readonly StreamRecord[], result: WriteResult | void): UnwrittenRecord[] {
  const refused = result?.refused;
  if (!refused || refused.length === 0) return [];
  const seen = new Set<number>();
  const out: UnwrittenRecord[] = [];
  for (const r of refused) {
    if (!Number.isInteger(r.index) || r.index < 0 || r.index >= records.length || seen.has(r.index)) {
      throw new SluiceError(
        'E_SINK_WRITE',
        `sink \`${sink}\` refused message ${r.index} of a write of ${records.length}; it must name each refused message once, by its index`,
        `sinks.${sink}`,
      );
    }
    seen.add(r.index);
    out.push({ record: records[r.index]!, error: r.error });
  }
  return out;
}

/** Unwritten records in the order their batch had them, so an errors port keeps each partition's order. */
function inBatchOrder(batch: readonly StreamRecord[], unwritten: UnwrittenRecord[]): UnwrittenRecord[] {
  const position = new Map(batch.map((r, i) => [r, i]));
  return unwritten.sort((a, b) => position.get(a.record)! - position.get(b.record)!);
}

/** What one batch came to: the records written, and those not written for what they hold. */
interface BatchOutcome {
  written: readonly StreamRecord[];
  unwritten: UnwrittenRecord[];
}

/** The batch without the unwritten records, keeping order; the batch itself when all were written. */
function writtenOf(batch: readonly StreamRecord[], unwritten: readonly UnwrittenRecord[]): readonly StreamRecord[] {
  if (unwritten.length === 0) return batch;
  const out = new Set(unwritten.map((u) => u.record));
  return batch.filter((r) => !out.has(r));
}

function sinkError(code: string, sink: string, what: string, err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  return new SluiceError(code, `sink \`${sink}\` ${what}: ${errorMessage(err)}`, `sinks.${sink}`, { cause: err });
}

export class SinkQueue {
  private chunks: StreamRecord[][] = [];
  private queued = 0;
  private writing = 0;
  private writes = 0;
  private written = 0;
  private failed = 0;
  private batches = 0;
  private prepareNanos = 0;
  private writeNanos = 0;
  private writer: Promise<void> | undefined;
  private stopped = false;
  /** Whether a failure was reported: the writes outstanding beside a failed one are not reported again. */
  private failureReported = false;
  private readonly maxInFlight: number;
  private roomWaiters: Waiter[] = [];
  private idleWaiters: Waiter[] = [];
  /** Records ever pushed, ever taken into a write, and ever done with (their write's outcome taken). */
  private pushedTotal = 0;
  private takenTotal = 0;
  private doneTotal = 0;
  private cutWaiters: CutWaiter[] = [];
  /** While a cut holds: records from this count on are not taken until `resume`. */
  private holdAt: number | undefined;
  /** The writer, idle because of the hold, waits here. */
  private holdWaiter: Waiter | undefined;

  constructor(
    readonly name: string,
    private readonly sink: Sink,
    private readonly options: SinkQueueOptions,
    private readonly onFailure: (error: SluiceError) => void,
    /**
     * Takes the records not written for what they hold, with their Ack references: the runtime
     * routes them to `<sink>.errors`. Without it they are released (dropped).
     */
    private readonly onUnwritten: (unwritten: UnwrittenRecord[]) => void = (unwritten) => releaseRecords(unwritten.map((u) => u.record)),
  ) {
    const limit = sink.maxInFlight ?? 1;
    this.maxInFlight = Number.isInteger(limit) && limit >= 1 ? limit : 1;
  }

  /** Queues records for writing; their Ack references now belong to this queue. Ignored once stopped. */
  push(records: StreamRecord[]): void {
    if (this.stopped || records.length === 0) return;
    this.chunks.push(records);
    this.queued += records.length;
    this.pushedTotal += records.length;
    this.writer ??= this.writeLoop();
  }

  /**
   * Resolves when every record pushed so far is written or handed to `onUnwritten` (or the queue
   * stopped after a failure). With `hold`, records pushed from now on wait, unwritten, for `resume`.
   */
  cut(hold = false): Promise<void> {
    const upTo = this.pushedTotal;
    if (hold) this.holdAt = upTo;
    if (this.stopped || this.doneTotal >= upTo) return Promise.resolve();
    return new Promise((resolve) => this.cutWaiters.push({ upTo, resolve }));
  }

  /** Ends the hold of the last `cut`: the records pushed since are written. */
  resume(): void {
    this.holdAt = undefined;
    this.wakeHeld();
  }

  hasRoom(): boolean {
    return this.stopped || this.queued < this.options.capacity;
  }

  /** Resolves once `hasRoom()` (or the queue stopped). */
  waitForRoom(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Resolves when everything pushed so far is written (or the queue stopped after a failure). */
  drain(): Promise<void> {
    if (!this.writer) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops writing: queued records are abandoned unacknowledged. Resolves when the writes in flight
   * end, or once one of them failed: the writes started after a failed one are not waited for (each
   * could retry for as long again), and are never acknowledged.
   */
  abort(): Promise<void> {
    this.stop();
    return this.drain();
  }

  stats(): SinkQueueStats {
    return {
      queued: this.queued,
      writing: this.writing,
      writes: this.writes,
      written: this.written,
      failed: this.failed,
      batches: this.batches,
      prepareNanos: this.prepareNanos,
      writeNanos: this.writeNanos,
    };
  }

  private async writeLoop(): Promise<void> {
    // Writes started and not yet taken, oldest first.
    const started: { size: number; outcome: Promise<BatchOutcome | undefined> }[] = [];
    try {
      while (started.length > 0 || (!this.stopped && this.chunks.length > 0)) {
        const held = this.holdAt !== undefined && this.takenTotal >= this.holdAt;
        if (!this.stopped && this.chunks.length > 0 && started.length < this.maxInFlight && !held) {
          const batch = this.take();
          this.writing += batch.length;
          this.writes++;
          if (this.queued < this.options.capacity) this.wake(this.roomWaiters);
          const write = await this.startBatch(batch);
          if (write === undefined) return;
          started.push({ size: batch.length, outcome: write.outcome });
          continue;
        }
        if (started.length === 0) {
          // Held by a cut with nothing in flight: wait for `resume` (or a stop).
          await new Promise<void>((resolve) => (this.holdWaiter = resolve));
          continue;
        }
        const { size, outcome: pending } = started.shift()!;
        const outcome = await pending;
        // A failed write was reported; neither it nor any write started after it is acknowledged.
        if (outcome === undefined) return;
        this.writing -= size;
        this.writes--;
        this.doneTotal += size;
        this.written += outcome.written.length;
        releaseRecords(outcome.written);
        if (outcome.unwritten.length > 0) {
          this.failed += outcome.unwritten.length;
          // Their references move on: released only once the errors port's readers wrote them.
          this.onUnwritten(outcome.unwritten);
        }
        this.wakeCuts();
      }
    } catch (err) {
      // Releasing threw: an Ack bookkeeping bug or a source's completion callback failed.
      this.stopWith(sinkError('E_SINK_ACK', this.name, 'could not acknowledge written records', err));
    } finally {
      this.writing = 0;
      this.writes = 0;
      this.writer = undefined;
      this.wake(this.idleWaiters);
      // Everything was written, or the queue stopped: no cut waits for more.
      this.wake(this.cutWaiters.splice(0).map((c) => c.resolve));
    }
  }

  private wakeCuts(): void {
    if (this.cutWaiters.length === 0) return;
    const done = this.doneTotal;
    const waiting = this.cutWaiters;
    this.cutWaiters = waiting.filter((c) => c.upTo > done);
    for (const c of waiting) if (c.upTo <= done) c.resolve();
  }

  private wakeHeld(): void {
    const w = this.holdWaiter;
    this.holdWaiter = undefined;
    w?.();
  }

  /**
   * Prepares one batch and starts its write; the outcome says which records were written and which
   * not (prepare failed for them, or write refused them), or undefined (after reporting) when the
   * sink failed. Undefined when prepare failed. The write is only started here, not awaited: the
   * outcome is in an object because an async function would wait for a promise it returns.
   */
  private async startBatch(batch: StreamRecord[]): Promise<{ outcome: Promise<BatchOutcome | undefined> } | undefined> {
    const t0 = process.hrtime.bigint();
    let split: SplitPrepared;
    try {
      const prepared = this.sink.prepare(batch);
      split = splitPrepared(this.name, batch, prepared instanceof Promise ? await prepared : prepared);
    } catch (err) {
      this.stopWith(sinkError('E_SINK_PREPARE', this.name, 'could not prepare records', err));
      return undefined;
    }
    const t1 = process.hrtime.bigint();
    this.prepareNanos += Number(t1 - t0);
    if (split.messages.length === 0) return { outcome: Promise.resolve({ written: [], unwritten: split.failures }) };
    return { outcome: this.finishWrite(batch, split, t0, t1) };
  }

  /** Writes a prepared batch: see startBatch. Never rejects. */
  private async finishWrite(batch: StreamRecord[], split: SplitPrepared, t0: bigint, t1: bigint): Promise<BatchOutcome | undefined> {
    try {
      const result = await this.sink.write(split.messages);
      const t2 = process.hrtime.bigint();
      this.writeNanos += Number(t2 - t1);
      this.batches++;
      this.options.onWrite?.(Number(t2 - t0) / 1e9);
      const refused = refusedRecords(this.name, split.records, result);
      const unwritten = refused.length === 0 ? split.failures : inBatchOrder(batch, [...split.failures, ...refused]);
      return { written: writtenOf(batch, unwritten), unwritten };
    } catch (err) {
      this.stopWith(sinkError('E_SINK_WRITE', this.name, 'gave up writing', err));
      return undefined;
    }
  }

  private stopWith(error: SluiceError): void {
    this.stop();
    if (this.failureReported) return;
    this.failureReported = true;
    this.onFailure(error);
  }

  /** Abandons what waits (never acknowledged) and frees whoever waits for room. */
  private stop(): void {
    this.stopped = true;
    this.chunks = [];
    this.queued = 0;
    this.wake(this.roomWaiters);
    this.wakeHeld();
  }

  /** Takes up to `maxBatch` queued records, without copying when one pushed array fits as is. */
  private take(): StreamRecord[] {
    // Under a hold, a batch never reaches past the cut.
    const max = this.holdAt === undefined ? this.options.maxBatch : Math.min(this.options.maxBatch, this.holdAt - this.takenTotal);
    const first = this.chunks[0]!;
    let batch: StreamRecord[];
    if (first.length >= max) {
      if (first.length === max) {
        this.chunks.shift();
        batch = first;
      } else {
        batch = first.slice(0, max);
        this.chunks[0] = first.slice(max);
      }
    } else {
      this.chunks.shift();
      batch = first;
      let copied = false;
      while (this.chunks.length > 0 && batch.length < max) {
        const next = this.chunks[0]!;
        const room = max - batch.length;
        if (!copied) {
          batch = batch.slice();
          copied = true;
        }
        if (next.length <= room) {
          this.chunks.shift();
          for (let i = 0; i < next.length; i++) batch.push(next[i]!);
        } else {
          for (let i = 0; i < room; i++) batch.push(next[i]!);
          this.chunks[0] = next.slice(room);
        }
      }
    }
    this.queued -= batch.length;
    this.takenTotal += batch.length;
    return batch;
  }

  private wake(waiters: Waiter[]): void {
    if (waiters.length === 0) return;
    const all = waiters.splice(0);
    for (const w of all) w();
  }
}
