import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HeldSends } from '../../../src/io/kafka/held-sends.ts';

type Codec = 'gzip' | 'none';

/** A HeldSends whose sends are recorded, and held open until `finish()` when `gate` is set. */
function recording(lingerMs: number, maxMessages: number) {
  const sent: [Codec, number[]][] = [];
  let gate: Promise<void> | undefined;
  let fail: Error | undefined;
  const hold = new HeldSends<number, Codec>(async (messages, codec) => {
    sent.push([codec, [...messages]]);
    if (gate) await gate;
    if (fail) throw fail;
  }, lingerMs, maxMessages);
  return {
    hold,
    sent,
    gateSends(): () => void {
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      return () => {
        gate = undefined;
        open();
      };
    },
    failWith(err: Error | undefined) {
      fail = err;
    },
  };
}

describe('HeldSends', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('resolves a send at once and holds it for the linger time, sharing one send per codec, in order', async () => {
    const { hold, sent } = recording(100, 1_000);
    await hold.add([1, 2], 'none');
    await hold.add([10], 'gzip');
    await hold.add([3], 'none');
    expect(sent).toEqual([]);
    expect(hold.waiting).toBe(4);
    await vi.advanceTimersByTimeAsync(99);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([
      ['none', [1, 2, 3]],
      ['gzip', [10]],
    ]);
    expect(hold.waiting).toBe(0);
  });

  it('sends a full hold at once, and its writer waits for that send', async () => {
    const { hold, sent, gateSends } = recording(60_000, 3);
    await hold.add([1], 'none');
    const finish = gateSends();
    let done = false;
    const full = hold.add([2, 3], 'none').then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([['none', [1, 2, 3]]]);
    expect(done).toBe(false);
    finish();
    await full;
    expect(done).toBe(true);
  });

  it('release sends what is held after the releases before it have finished', async () => {
    const { hold, sent, gateSends } = recording(60_000, 1_000);
    await hold.add([1], 'none');
    const finish = gateSends();
    const first = hold.release();
    await hold.add([2], 'none');
    const second = hold.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([['none', [1]]]);
    finish();
    await Promise.all([first, second]);
    expect(sent).toEqual([
      ['none', [1]],
      ['none', [2]],
    ]);
  });

  it('after a held send failed, fails every later send and release with its error until discarded', async () => {
    const { hold, sent, failWith } = recording(100, 1_000);
    failWith(new Error('fenced'));
    await hold.add([1], 'none');
    await vi.advanceTimersByTimeAsync(100);
    expect(sent).toEqual([['none', [1]]]);
    failWith(undefined);
    await expect(hold.add([2], 'none')).rejects.toThrow('fenced');
    await expect(hold.release()).rejects.toThrow('fenced');
    expect(sent).toHaveLength(1);
    hold.discard();
    await hold.add([3], 'none');
    await hold.release();
    expect(sent).toEqual([
      ['none', [1]],
      ['none', [3]],
    ]);
  });

  it('drops what is held at discard, and a release that fails after the discard does not fail the next transaction', async () => {
    const { hold, sent, gateSends, failWith } = recording(100, 1_000);
    await hold.add([1], 'none');
    const finish = gateSends();
    const inFlight = hold.release();
    await hold.add([2], 'none');
    hold.discard();
    failWith(new Error('broker gone'));
    finish();
    await expect(inFlight).rejects.toThrow('broker gone');
    failWith(undefined);
    await hold.add([4], 'none');
    await hold.release();
    expect(sent).toEqual([
      ['none', [1]],
      ['none', [4]],
    ]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sent).toHaveLength(2);
  });
});
