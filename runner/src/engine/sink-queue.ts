/**
 * SinkQueue: the bounded buffer in front of one sink, and its single writer.
 *
 * The runtime pushes record arrays in as steps produce them; the writer takes whatever has
 * accumulated (up to `maxBatch` records), prepares and writes it as one batch, and only after
 * `write` resolved releases each record's Ack reference. One write is in flight at a time, so a
 * sink sees its records in order. When more than `capacity` records wait, `hasRoom()` turns false
 * and the runtime stops feeding the graph until the writer catches up: a slow sink slows the
 * sources instead of growing memory.
 *
 * A record `prepare` answers with a PrepareFailure is dropped: counted as failed, reported through
 * `onRecordFailure`, and released with its batch (it can never be written; holding it would stall
 * commits). A `prepare` that throws, or a failing `write`, is final: the queue stops, nothing of
 * the batch is acknowledged, and `onFailure` tells the runtime, which fails the run. A record that
 * could not be written is never acknowledged, so its source position is never committed.
 */
import { PrepareFailure, type OutboundMessage, type Prepared, type Sink } from './component.ts';
import { SluiceError, errorMessage } from './errors.ts';
import type { StreamRecord } from './record.ts';
import { releaseRecords } from './record-acks.ts';

export interface SinkQueueOptions {
  /** Records waiting beyond which `hasRoom()` is false. */
  capacity: number;
  /** At most this many records per `prepare`/`write` call. */
  maxBatch: number;
}

export interface SinkQueueStats {
  /** Records waiting for a write. */
  queued: number;
  /** Records in the write in flight. */
  writing: number;
  /** Records written and acknowledged. */
  written: number;
  /** Records `prepare` could not turn into messages, dropped. */
  failed: number;
  /** `write` calls that succeeded. */
  batches: number;
  prepareNanos: number;
  writeNanos: number;
}

type Waiter = () => void;

/** A record `prepare` answered with a failure, and why. */
export interface UnpreparedRecord {
  record: StreamRecord;
  error: Error;
}

export interface SplitPrepared {
  /** The messages to write, in record order. */
  messages: OutboundMessage[];
  failures: UnpreparedRecord[];
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
  if (first < 0) return { messages: prepared as OutboundMessage[], failures: [] };
  const messages = prepared.slice(0, first) as OutboundMessage[];
  const failures: UnpreparedRecord[] = [];
  for (let i = first; i < prepared.length; i++) {
    const p = prepared[i]!;
    if (p instanceof PrepareFailure) failures.push({ record: records[i]!, error: p.error });
    else messages.push(p);
  }
  return { messages, failures };
}

function sinkError(code: string, sink: string, what: string, err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  return new SluiceError(code, `sink \`${sink}\` ${what}: ${errorMessage(err)}`, `sinks.${sink}`, { cause: err });
}

export class SinkQueue {
  private chunks: StreamRecord[][] = [];
  private queued = 0;
  private writing = 0;
  private written = 0;
  private failed = 0;
  private batches = 0;
  private prepareNanos = 0;
  private writeNanos = 0;
  private writer: Promise<void> | undefined;
  private stopped = false;
  private roomWaiters: Waiter[] = [];
  private idleWaiters: Waiter[] = [];

  constructor(
    readonly name: string,
    private readonly sink: Sink,
    private readonly options: SinkQueueOptions,
    private readonly onFailure: (error: SluiceError) => void,
    /** Told about each record dropped because `prepare` failed for it (the runtime logs it, rate-limited). */
    private readonly onRecordFailure: (failure: UnpreparedRecord) => void = () => {},
  ) {}

  /** Queues records for writing; their Ack references now belong to this queue. Ignored once stopped. */
  push(records: StreamRecord[]): void {
    if (this.stopped || records.length === 0) return;
    this.chunks.push(records);
    this.queued += records.length;
    this.writer ??= this.writeLoop();
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

  /** Stops writing: queued records are abandoned unacknowledged. Resolves when the write in flight ends. */
  abort(): Promise<void> {
    this.stop();
    return this.drain();
  }

  stats(): SinkQueueStats {
    return {
      queued: this.queued,
      writing: this.writing,
      written: this.written,
      failed: this.failed,
      batches: this.batches,
      prepareNanos: this.prepareNanos,
      writeNanos: this.writeNanos,
    };
  }

  private async writeLoop(): Promise<void> {
    try {
      while (!this.stopped && this.chunks.length > 0) {
        const batch = this.take();
        this.writing = batch.length;
        if (this.queued < this.options.capacity) this.wake(this.roomWaiters);
        const written = await this.writeBatch(batch);
        if (written === undefined) return;
        this.writing = 0;
        this.written += written;
        // Failed records too: dropped on purpose, they must not hold their batch's commit back.
        releaseRecords(batch);
      }
    } catch (err) {
      // Releasing threw: an Ack bookkeeping bug or a source's completion callback failed.
      this.stopWith(sinkError('E_SINK_ACK', this.name, 'could not acknowledge written records', err));
    } finally {
      this.writing = 0;
      this.writer = undefined;
      this.wake(this.idleWaiters);
    }
  }

  /**
   * Prepares and writes one batch: the number of records written, or undefined (after reporting)
   * when the sink failed. Records prepare failed for are counted and reported, not written.
   */
  private async writeBatch(batch: StreamRecord[]): Promise<number | undefined> {
    let stage = 'prepare';
    try {
      const t0 = process.hrtime.bigint();
      const prepared = this.sink.prepare(batch);
      const { messages, failures } = splitPrepared(this.name, batch, prepared instanceof Promise ? await prepared : prepared);
      const t1 = process.hrtime.bigint();
      this.prepareNanos += Number(t1 - t0);
      if (failures.length > 0) {
        this.failed += failures.length;
        for (const f of failures) this.onRecordFailure(f);
      }
      if (messages.length === 0) return 0;
      stage = 'write';
      await this.sink.write(messages);
      this.writeNanos += Number(process.hrtime.bigint() - t1);
      this.batches++;
      return messages.length;
    } catch (err) {
      this.stopWith(
        stage === 'prepare'
          ? sinkError('E_SINK_PREPARE', this.name, 'could not prepare records', err)
          : sinkError('E_SINK_WRITE', this.name, 'gave up writing', err),
      );
      return undefined;
    }
  }

  private stopWith(error: SluiceError): void {
    this.stop();
    this.onFailure(error);
  }

  /** Abandons what waits (never acknowledged) and frees whoever waits for room. */
  private stop(): void {
    this.stopped = true;
    this.chunks = [];
    this.queued = 0;
    this.wake(this.roomWaiters);
  }

  /** Takes up to `maxBatch` queued records, without copying when one pushed array fits as is. */
  private take(): StreamRecord[] {
    const max = this.options.maxBatch;
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
    return batch;
  }

  private wake(waiters: Waiter[]): void {
    if (waiters.length === 0) return;
    const all = waiters.splice(0);
    for (const w of all) w();
  }
}
