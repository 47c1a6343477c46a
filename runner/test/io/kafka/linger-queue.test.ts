import { describe, expect, it } from 'vitest';
import { LingerQueue } from '../../../src/io/kafka/linger-queue.ts';

/** A queue whose first flush stays on its way until `release()`; `flushes` lists what each carried. */
function firstFlushHeld(lingerMs: number, maxItems: number): { q: LingerQueue<number>; flushes: number[][]; release: () => void } {
  const flushes: number[][] = [];
  let release!: () => void;
  const first = new Promise<void>((r) => (release = r));
  const q = new LingerQueue<number>(async (items) => {
    flushes.push(items);
    if (flushes.length === 1) await first;
  }, lingerMs, maxItems);
  return { q, flushes, release };
}

describe('LingerQueue', () => {
  it('puts writes that arrive within the linger time into one flush, in order', async () => {
    const flushes: number[][] = [];
    const q = new LingerQueue<number>(async (items) => void flushes.push(items), 20, 100);
    await Promise.all([q.add([1, 2]), q.add([3]), q.add([4])]);
    expect(flushes).toEqual([[1, 2, 3, 4]]);
  });

  it('flushes at once when maxItems are waiting', async () => {
    const flushes: number[][] = [];
    const q = new LingerQueue<number>(async (items) => void flushes.push(items), 60_000, 3);
    await q.add([1, 2, 3]);
    expect(flushes).toEqual([[1, 2, 3]]);
  });

  it('rejects every write carried by a failed flush, and only those', async () => {
    let fail = true;
    const q = new LingerQueue<number>(async () => {
      if (fail) throw new Error('broker gone');
    }, 5, 100);
    const a = q.add([1]);
    const b = q.add([2]);
    await expect(a).rejects.toThrow('broker gone');
    await expect(b).rejects.toThrow('broker gone');
    fail = false;
    await expect(q.add([3])).resolves.toBeUndefined();
  });

  it('runs one flush at a time, in the order items were added', async () => {
    const events: string[] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    let n = 0;
    const q = new LingerQueue<number>(async (items) => {
      const i = n++;
      events.push(`start ${i}:${items.join(',')}`);
      if (i === 0) await first;
      events.push(`end ${i}`);
    }, 60_000, 1);
    const a = q.add([1]);
    const b = q.add([2]);
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual(['start 0:1']);
    release();
    await Promise.all([a, b]);
    expect(events).toEqual(['start 0:1', 'end 0', 'start 1:2', 'end 1']);
  });

  it('holds what lingered while a flush is on its way, and sends it all in the next one', async () => {
    const { q, flushes, release } = firstFlushHeld(5, 100);
    const a = q.add([1]);
    await new Promise((r) => setTimeout(r, 20));
    expect(flushes).toEqual([[1]]);
    const b = q.add([2]);
    await new Promise((r) => setTimeout(r, 20)); // 2's linger has ended: it waits for the flush ahead
    const c = q.add([3]);
    await new Promise((r) => setTimeout(r, 20));
    expect(flushes).toEqual([[1]]);
    expect(q.waiting).toBe(2);
    release();
    await Promise.all([a, b, c]);
    expect(flushes).toEqual([[1], [2, 3]]);
    // With nothing on its way, the linger alone decides again.
    await q.add([4]);
    expect(flushes).toEqual([[1], [2, 3], [4]]);
  });

  it('still flushes at maxItems while a flush is on its way, and drains what waits behind it', async () => {
    const { q, flushes, release } = firstFlushHeld(5, 2);
    const a = q.add([1, 2]);
    const b = q.add([3, 4]);
    const c = q.add([5]);
    const drained = q.drain();
    release();
    await Promise.all([a, b, c, drained]);
    expect(flushes).toEqual([[1, 2], [3, 4], [5]]);
    expect(q.waiting).toBe(0);
  });

  it('drain flushes what waits without waiting for the linger', async () => {
    const flushes: number[][] = [];
    const q = new LingerQueue<number>(async (items) => void flushes.push(items), 60_000, 100);
    const a = q.add([1]);
    await q.drain();
    await a;
    expect(flushes).toEqual([[1]]);
    expect(q.waiting).toBe(0);
  });

  it('runs an exclusive task after the flushes of what was added before it, and before the flushes of what is added while it runs', async () => {
    const events: string[] = [];
    let finishTask!: () => void;
    const taskMayEnd = new Promise<void>((r) => (finishTask = r));
    const q = new LingerQueue<number>(async (items) => {
      events.push(`flush ${items.join(',')}`);
    }, 5, 100);
    const before = q.add([1]);
    const task = q.exclusive(async () => {
      events.push('task start');
      await taskMayEnd;
      events.push('task end');
      return 'done';
    });
    await new Promise((r) => setTimeout(r, 1));
    const during = q.add([2]);
    // Past the linger: the flush of 2 is due, and must wait for the task.
    await new Promise((r) => setTimeout(r, 30));
    expect(events).toEqual(['flush 1', 'task start']);
    finishTask();
    await expect(task).resolves.toBe('done');
    await Promise.all([before, during]);
    expect(events).toEqual(['flush 1', 'task start', 'task end', 'flush 2']);
  });

  it('a failed exclusive task rejects its caller only: the flushes after it go on', async () => {
    const flushes: number[][] = [];
    const q = new LingerQueue<number>(async (items) => void flushes.push(items), 0, 100);
    await expect(q.exclusive(async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    await q.add([3]);
    expect(flushes).toEqual([[3]]);
  });
});
