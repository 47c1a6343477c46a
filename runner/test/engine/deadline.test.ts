import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineError, settleWithin } from '../../src/engine/deadline.ts';

describe('settleWithin', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('settles as the work does when it settles in time, and clears its timer', async () => {
    await expect(settleWithin(Promise.resolve(7), 1_000, 'call')).resolves.toBe(7);
    await expect(settleWithin(Promise.reject(new Error('refused')), 1_000, 'call')).rejects.toThrow('refused');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with a DeadlineError naming the call once the bound passes, not before', async () => {
    const never = new Promise<number>(() => {});
    let outcome: unknown;
    void settleWithin(never, 60_000, 'kafkajs commit').catch((err: unknown) => (outcome = err));
    await vi.advanceTimersByTimeAsync(59_999);
    expect(outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toBeInstanceOf(DeadlineError);
    expect((outcome as DeadlineError).message).toBe('kafkajs commit: no answer within 60 s');
  });

  it('ignores work that settles after the bound (no unhandled rejection)', async () => {
    let fail!: (err: Error) => void;
    const late = new Promise<never>((_, reject) => (fail = reject));
    const bounded = expect(settleWithin(late, 500, 'call')).rejects.toThrow('call: no answer within 500 ms');
    await vi.advanceTimersByTimeAsync(500);
    await bounded;
    fail(new Error('too late'));
    await vi.advanceTimersByTimeAsync(0);
  });
});
