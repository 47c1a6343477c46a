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
 * A failing `prepare` or `write` is final: the queue stops, nothing of it is acknowledged, and
 * `onFailure` tells the runtime, which fails the run. A record that cannot be written is never
 * acknowledged, so its source position is never committed.
 */
import type { Sink } from './component.ts';
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
  /** `write` calls that succeeded. */
  batches: number;
  prepareNanos: number;
  writeNanos: number;
}

type Waiter = () => void;

function sinkError(code: string, sink: string, what: string, err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  return new SluiceError(code, `sink \`${sink}\` ${what}: ${errorMessage(err)}`, `sinks.${sink}`, { cause: err });
}

export class SinkQueue {
  private chunks: StreamRecord[][] = [];
  private queued = 0;
  private writing = 0;
  private written = 0;
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
    this.stopped = true;
    this.chunks = [];
    this.queued = 0;
    this.wake(this.roomWaiters);
    return this.drain();
  }

  stats(): SinkQueueStats {
    return {
      queued: this.queued,
      writing: this.writing,
      written: this.written,
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
        if (!(await this.writeBatch(batch))) return;
        this.writing = 0;
        this.written += batch.length;
        this.batches++;
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

  /** Prepares and writes one batch; false (after reporting) when the sink failed. */
  private async writeBatch(batch: StreamRecord[]): Promise<boolean> {
    let stage = 'prepare';
    try {
      const t0 = process.hrtime.bigint();
      const prepared = this.sink.prepare(batch);
      const messages = prepared instanceof Promise ? await prepared : prepared;
      const t1 = process.hrtime.bigint();
      this.prepareNanos += Number(t1 - t0);
      stage = 'write';
      await this.sink.write(messages);
      this.writeNanos += Number(process.hrtime.bigint() - t1);
      return true;
    } catch (err) {
      this.stopWith(
        stage === 'prepare'
          ? sinkError('E_SINK_PREPARE', this.name, 'could not prepare records', err)
          : sinkError('E_SINK_WRITE', this.name, 'gave up writing', err),
      );
      return false;
    }
  }

  private stopWith(error: SluiceError): void {
    this.stopped = true;
    this.chunks = [];
    this.queued = 0;
    this.wake(this.roomWaiters);
    this.onFailure(error);
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
