import { describe, expect, it } from 'vitest';
import { Ack } from '../../src/engine/ack.ts';
import type { SluiceError } from '../../src/engine/errors.ts';
import type { StreamRecord } from '../../src/engine/record.ts';
import { PrepareFailure, type OutboundMessage, type Prepared, type Sink } from '../../src/engine/component.ts';
import { RecordError } from '../../src/engine/errors.ts';
import { releaseRecords } from '../../src/engine/record-acks.ts';
import { SinkQueue, refusedRecords, splitPrepared, type UnwrittenRecord } from '../../src/engine/sink-queue.ts';
import { RecordingSink, settle } from './fake-components.ts';

function records(n: number, from = 0): { ack: Ack; records: StreamRecord[]; done: () => boolean } {
  let complete = false;
  const ack = new Ack(() => (complete = true));
  ack.retain(n);
  ack.seal();
  const list = Array.from({ length: n }, (_, i) => ({
    key: null,
    value: from + i,
    time: 0,
    headers: {},
    meta: {},
    position: { source: 's', partition: 'p', offset: String(from + i) },
    ack,
  }));
  return { ack, records: list, done: () => complete };
}

describe('SinkQueue', () => {
  it('writes in order, grouping what accumulated up to maxBatch, and acknowledges after each write', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const failures: SluiceError[] = [];
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 4 }, (e) => failures.push(e));
    const a = records(3, 0);
    const b = records(3, 3);
    const c = records(1, 6);
    q.push(a.records);
    q.push(b.records);
    q.push(c.records);
    await settle();
    expect(q.stats()).toMatchObject({ writing: 3, queued: 4 });
    expect(a.done()).toBe(false);
    sink.releaseHeld();
    await q.drain();
    expect(sink.writes.map((w) => w.map((m) => m.value))).toEqual([[0, 1, 2], [3, 4, 5, 6]]);
    expect(a.done() && b.done() && c.done()).toBe(true);
    expect(q.stats()).toMatchObject({ written: 7, batches: 2, queued: 0, writing: 0 });
    expect(failures).toEqual([]);
  });

  it('splits a pushed array larger than maxBatch', async () => {
    const sink = new RecordingSink();
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 4 }, () => {});
    const a = records(10);
    q.push(a.records);
    await q.drain();
    expect(sink.writes.map((w) => w.length)).toEqual([4, 4, 2]);
    expect(a.done()).toBe(true);
  });

  it('reports no room beyond capacity and wakes waiters as the writer catches up', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const q = new SinkQueue('out', sink, { capacity: 5, maxBatch: 5 }, () => {});
    q.push(records(5).records); // taken at once by the writer
    await settle();
    q.push(records(5).records);
    expect(q.hasRoom()).toBe(false);
    let woke = false;
    const waiting = q.waitForRoom().then(() => (woke = true));
    await settle();
    expect(woke).toBe(false);
    sink.releaseHeld();
    await waiting;
    expect(woke).toBe(true);
    await q.drain();
  });

  it('on a failed write stops, acknowledges nothing of it, and reports a SluiceError naming the sink', async () => {
    const sink = new RecordingSink();
    sink.failNext = new Error('disk full');
    const failures: SluiceError[] = [];
    const q = new SinkQueue('files', sink, { capacity: 100, maxBatch: 2 }, (e) => failures.push(e));
    const a = records(4);
    q.push(a.records);
    await q.drain();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ code: 'E_SINK_WRITE', where: 'sinks.files' });
    expect(failures[0]!.message).toMatch(/disk full/);
    expect(a.ack.outstanding).toBe(4);
    expect(a.done()).toBe(false);
    expect(q.hasRoom()).toBe(true);
    q.push(records(1).records);
    await q.drain();
    expect(sink.writes).toEqual([]);
  });

  it('reports a prepare failure as E_SINK_PREPARE', async () => {
    const sink = new RecordingSink();
    sink.prepare = () => {
      throw new Error('key expression failed');
    };
    const failures: SluiceError[] = [];
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 2 }, (e) => failures.push(e));
    q.push(records(1).records);
    await q.drain();
    expect(failures[0]).toMatchObject({ code: 'E_SINK_PREPARE' });
  });

  it('writes the records prepare could and hands the ones it failed, with their references, to onUnwritten: the batch completes once they are released', async () => {
    const sink = new RecordingSink();
    sink.unpreparable = (r) => r.value === 1 || r.value === 3;
    const failures: SluiceError[] = [];
    const unprepared: UnwrittenRecord[] = [];
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, (e) => failures.push(e), (u) => unprepared.push(...u));
    const a = records(4);
    q.push(a.records);
    await q.drain();
    expect(sink.writes.map((w) => w.map((m) => m.value))).toEqual([[0, 2]]);
    expect(unprepared.map((f) => f.record.position.offset)).toEqual(['1', '3']);
    expect(unprepared[0]!.error.message).toBe('cannot prepare 1');
    expect(q.stats()).toMatchObject({ written: 2, failed: 2, batches: 1 });
    // Their references moved on with them: the batch waits until whoever took them wrote them.
    expect(a.done()).toBe(false);
    releaseRecords(unprepared.map((u) => u.record));
    expect(a.done()).toBe(true);
    expect(failures).toEqual([]);
  });

  it('hands the messages write refused to onUnwritten with the reason, in batch order, and acknowledges the ones written', async () => {
    const sink = new RecordingSink();
    sink.unpreparable = (r) => r.value === 4;
    sink.refusing = (m) => m.value === 1 || m.value === 3;
    const unwritten: UnwrittenRecord[] = [];
    const failures: SluiceError[] = [];
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, (e) => failures.push(e), (u) => unwritten.push(...u));
    const single = records(1); // 0
    const mixed = records(4, 1); // 1, 2, 3, 4: 1 and 3 refused, 4 unpreparable
    q.push([...single.records, ...mixed.records]);
    await q.drain();
    expect(failures).toEqual([]);
    expect(sink.values).toEqual([0, 2]);
    expect(unwritten.map((u) => [u.record.value, u.error.message])).toEqual([
      [1, 'refused 1'],
      [3, 'refused 3'],
      [4, 'cannot prepare 4'],
    ]);
    expect(q.stats()).toMatchObject({ written: 2, failed: 3, batches: 1 });
    expect(single.done()).toBe(true);
    expect(mixed.done()).toBe(false);
    releaseRecords(unwritten.map((u) => u.record));
    expect(mixed.done()).toBe(true);
  });

  it('without onUnwritten, releases (drops) what it could not write, so the batch completes', async () => {
    const sink = new RecordingSink();
    sink.refusing = (m) => m.value === 0;
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, () => {});
    const a = records(2);
    q.push(a.records);
    await q.drain();
    expect(sink.values).toEqual([1]);
    expect(a.done()).toBe(true);
  });

  it('fails with E_SINK_WRITE, acknowledging nothing, when write refuses an index it was not given', async () => {
    const sink = new RecordingSink();
    sink.write = async () => ({ refused: [{ index: 2, error: new Error('no such message') }] });
    const failures: SluiceError[] = [];
    const unwritten: UnwrittenRecord[] = [];
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, (e) => failures.push(e), (u) => unwritten.push(...u));
    const a = records(2);
    q.push(a.records);
    await q.drain();
    expect(failures[0]).toMatchObject({ code: 'E_SINK_WRITE', where: 'sinks.out' });
    expect(failures[0]!.message).toMatch(/refused message 2 of a write of 2/);
    expect(unwritten).toEqual([]);
    expect(a.done()).toBe(false);
  });

  it('does not call write when prepare failed every record of a batch, yet acknowledges it', async () => {
    const sink = new RecordingSink();
    sink.unpreparable = () => true;
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, () => {});
    const a = records(2);
    q.push(a.records);
    await q.drain();
    expect(sink.writes).toEqual([]);
    expect(q.stats()).toMatchObject({ written: 0, failed: 2, batches: 0 });
    expect(a.done()).toBe(true);
  });

  it('fails with E_SINK_PREPARE when prepare does not give one entry per record', async () => {
    const sink = new RecordingSink();
    sink.prepare = () => [];
    const failures: SluiceError[] = [];
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 2 }, (e) => failures.push(e));
    const a = records(1);
    q.push(a.records);
    await q.drain();
    expect(failures[0]).toMatchObject({ code: 'E_SINK_PREPARE', where: 'sinks.out' });
    expect(failures[0]!.message).toMatch(/prepared 0 message\(s\) for 1 record\(s\)/);
    expect(a.done()).toBe(false);
  });

  it('abort abandons queued records unacknowledged and waits for the write in flight', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 2 }, () => {});
    const a = records(2);
    const b = records(2, 2);
    q.push(a.records);
    await settle();
    q.push(b.records);
    let aborted = false;
    const aborting = q.abort().then(() => (aborted = true));
    await settle();
    expect(aborted).toBe(false);
    sink.releaseHeld();
    await aborting;
    expect(a.done()).toBe(true);
    expect(b.done()).toBe(false);
    expect(sink.writes).toHaveLength(1);
  });
});

/** A sink whose every write waits until the test settles it, and which says how many may be outstanding. */
class PendingWritesSink implements Sink {
  readonly started: unknown[][] = [];
  private readonly settlers: { resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(
    readonly maxInFlight: number,
    /** How long prepare takes for a batch, by its first value (ms); synchronous when absent. */
    private readonly prepareMs?: (first: unknown) => number,
  ) {}

  async open(): Promise<void> {}

  prepare(records: readonly StreamRecord[]): Prepared[] | Promise<Prepared[]> {
    const messages = records.map((r) => ({ key: null, value: r.value }));
    const ms = this.prepareMs?.(records[0]!.value);
    return ms === undefined ? messages : new Promise((resolve) => setTimeout(() => resolve(messages), ms));
  }

  write(messages: OutboundMessage[]): Promise<void> {
    this.started.push(messages.map((m) => m.value));
    return new Promise((resolve, reject) => this.settlers.push({ resolve, reject }));
  }

  /** Settles the n-th write started (0-based). */
  succeed(n: number): void {
    this.settlers[n]!.resolve();
  }

  fail(n: number, message: string): void {
    this.settlers[n]!.reject(new Error(message));
  }

  async close(): Promise<void> {}
}

describe('SinkQueue with a sink that takes several writes at once (maxInFlight)', () => {
  it('starts that many writes in record order before any resolves, and acknowledges in that order when they resolve out of it', async () => {
    const sink = new PendingWritesSink(3);
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 2 }, () => {});
    const batches = [records(2, 0), records(2, 2), records(2, 4), records(2, 6)];
    for (const b of batches) q.push(b.records);
    await settle();
    expect(sink.started).toEqual([[0, 1], [2, 3], [4, 5]]);
    expect(q.stats()).toMatchObject({ writing: 6, writes: 3, queued: 2 });
    sink.succeed(2);
    sink.succeed(1);
    await settle();
    // The first write is still out: nothing after it is acknowledged, and no fourth write starts.
    expect(batches.map((b) => b.done())).toEqual([false, false, false, false]);
    expect(sink.started).toHaveLength(3);
    sink.succeed(0);
    await settle();
    expect(batches.map((b) => b.done())).toEqual([true, true, true, false]);
    expect(sink.started[3]).toEqual([6, 7]);
    sink.succeed(3);
    await q.drain();
    expect(batches.map((b) => b.done())).toEqual([true, true, true, true]);
    expect(q.stats()).toMatchObject({ written: 8, batches: 4, writing: 0, writes: 0, queued: 0 });
  });

  it('acknowledges nothing of a failed write nor of the writes started after it, and reports the failure once', async () => {
    const sink = new PendingWritesSink(4);
    const failures: SluiceError[] = [];
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 2 }, (e) => failures.push(e));
    const batches = [records(2, 0), records(2, 2), records(2, 4), records(2, 6), records(2, 8)];
    for (const b of batches) q.push(b.records);
    await settle();
    sink.fail(1, 'broker gone');
    sink.succeed(2);
    sink.fail(3, 'still gone');
    sink.succeed(0);
    await q.drain();
    expect(batches.map((b) => b.done())).toEqual([true, false, false, false, false]);
    expect(sink.started).toHaveLength(4);
    expect(failures.map((f) => [f.code, f.message])).toEqual([['E_SINK_WRITE', 'sink `out` gave up writing: broker gone']]);
    expect(q.hasRoom()).toBe(true);
    q.push(records(1, 10).records);
    await settle();
    expect(sink.started).toHaveLength(4);
  });

  it('starts the writes in record order even when an earlier batch takes longer to prepare', async () => {
    // The first batch's prepare takes 30 ms, the second's none.
    const sink = new PendingWritesSink(2, (first) => (first === 0 ? 30 : 0));
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 2 }, () => {});
    q.push(records(2, 0).records);
    q.push(records(2, 2).records);
    await new Promise((r) => setTimeout(r, 60));
    expect(sink.started).toEqual([[0, 1], [2, 3]]);
    sink.succeed(0);
    sink.succeed(1);
    await q.drain();
  });

  it('abort waits for every write in flight and acknowledges those written, abandoning the queued ones', async () => {
    const sink = new PendingWritesSink(2);
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 2 }, () => {});
    const batches = [records(2, 0), records(2, 2), records(2, 4)];
    for (const b of batches) q.push(b.records);
    await settle();
    let aborted = false;
    const aborting = q.abort().then(() => (aborted = true));
    sink.succeed(0);
    await settle();
    expect(aborted).toBe(false);
    sink.succeed(1);
    await aborting;
    expect(batches.map((b) => b.done())).toEqual([true, true, false]);
    expect(sink.started).toHaveLength(2);
  });

  it('takes one write at a time from a sink that does not say, or says something unusable', async () => {
    for (const maxInFlight of [undefined, 0, 2.5]) {
      const sink = new PendingWritesSink(1);
      Object.defineProperty(sink, 'maxInFlight', { value: maxInFlight });
      const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 2 }, () => {});
      q.push(records(2, 0).records);
      q.push(records(2, 2).records);
      await settle();
      expect(sink.started, String(maxInFlight)).toEqual([[0, 1]]);
      sink.succeed(0);
      await settle();
      sink.succeed(1);
      await q.drain();
      expect(sink.started).toHaveLength(2);
    }
  });
});

describe('splitPrepared', () => {
  const recs = records(3).records;
  const msg = (v: number) => ({ key: null, value: v });

  it('uses the prepared array as is when nothing failed', () => {
    const prepared = [msg(0), msg(1), msg(2)];
    const split = splitPrepared('out', recs, prepared);
    expect(split.messages).toBe(prepared);
    expect(split.failures).toEqual([]);
  });

  it('keeps the messages in order and pairs each failure with its own record', () => {
    const boom = new RecordError('E_X', 'boom', 'sinks.out');
    const split = splitPrepared('out', recs, [msg(0), new PrepareFailure(boom), msg(2)]);
    expect(split.messages).toEqual([msg(0), msg(2)]);
    expect(split.failures).toEqual([{ record: recs[1], error: boom }]);
  });

  it('refuses a result that does not have one entry per record', () => {
    expect(() => splitPrepared('out', recs, [msg(0)])).toThrow(/sink `out` prepared 1 message\(s\) for 3 record\(s\)/);
  });

  it('names the record of each message, so a refusal by index finds its record', () => {
    const boom = new RecordError('E_X', 'boom', 'sinks.out');
    const split = splitPrepared('out', recs, [new PrepareFailure(boom), msg(1), msg(2)]);
    expect(split.records).toEqual([recs[1], recs[2]]);
    expect(refusedRecords('out', split.records, { refused: [{ index: 1, error: boom }] })).toEqual([{ record: recs[2], error: boom }]);
  });
});

describe('refusedRecords', () => {
  const recs = records(2).records;
  const err = new Error('refused');

  it('is empty when write resolved with nothing', () => {
    expect(refusedRecords('out', recs, undefined)).toEqual([]);
  });

  it('refuses an index named twice or outside the write', () => {
    expect(() => refusedRecords('out', recs, { refused: [{ index: 0, error: err }, { index: 0, error: err }] })).toThrow(/refused message 0 of a write of 2/);
    expect(() => refusedRecords('out', recs, { refused: [{ index: -1, error: err }] })).toThrow(/E_SINK_WRITE|refused message -1/);
  });
});

describe('SinkQueue cuts (a checkpoint that completes while processing goes on)', () => {
  it('resolves a cut once everything pushed before it is written, not waiting for what came after', async () => {
    const sink = new PendingWritesSink(1);
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, () => {});
    const a = records(3);
    q.push(a.records);
    let cutDone = false;
    const cut = q.cut().then(() => (cutDone = true));
    const b = records(2, 3);
    q.push(b.records);
    await settle();
    expect(sink.started).toEqual([[0, 1, 2]]);
    expect(cutDone).toBe(false);
    sink.succeed(0);
    await cut;
    expect(a.done()).toBe(true);
    // Not held: the records after the cut are written as usual.
    await settle();
    expect(sink.started).toEqual([[0, 1, 2], [3, 4]]);
    expect(b.done()).toBe(false);
    sink.succeed(1);
    await q.drain();
    expect(b.done()).toBe(true);
  });

  it('resolves at once when everything pushed was already written', async () => {
    const sink = new RecordingSink();
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, () => {});
    q.push(records(2).records);
    await q.drain();
    let cutDone = false;
    await q.cut().then(() => (cutDone = true));
    expect(cutDone).toBe(true);
  });

  it('with hold, writes nothing pushed after the cut until resume, and never puts both sides of the cut in one batch', async () => {
    const sink = new PendingWritesSink(1);
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, () => {});
    q.push(records(1, -1).records);
    await settle();
    // While that write is out, records gather on both sides of the cut.
    const a = records(3);
    q.push(a.records);
    const cut = q.cut(true);
    const b = records(2, 3);
    q.push(b.records);
    sink.succeed(0);
    await settle();
    expect(sink.started).toEqual([[-1], [0, 1, 2]]);
    sink.succeed(1);
    await cut;
    await settle();
    expect(sink.started).toHaveLength(2);
    q.push(records(1, 5).records);
    await settle();
    expect(sink.started).toHaveLength(2);
    q.resume();
    await settle();
    expect(sink.started).toEqual([[-1], [0, 1, 2], [3, 4, 5]]);
    sink.succeed(2);
    await q.drain();
    expect(b.done()).toBe(true);
  });

  it('a held queue still stops: abort abandons the held records unacknowledged and resolves', async () => {
    const sink = new PendingWritesSink(1);
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, () => {});
    const a = records(1);
    q.push(a.records);
    const cut = q.cut(true);
    const b = records(1, 1);
    q.push(b.records);
    sink.succeed(0);
    await cut;
    await q.abort();
    expect(sink.started).toEqual([[0]]);
    expect(b.done()).toBe(false);
  });

  it('a cut waiting on a write that fails resolves once the queue stopped', async () => {
    const sink = new PendingWritesSink(1);
    const failures: SluiceError[] = [];
    const q = new SinkQueue('out', sink, { capacity: 100, maxBatch: 10 }, (e) => failures.push(e));
    const a = records(2);
    q.push(a.records);
    const cut = q.cut();
    await settle();
    sink.fail(0, 'broker gone');
    await cut;
    expect(failures).toHaveLength(1);
    expect(a.done()).toBe(false);
  });
});
