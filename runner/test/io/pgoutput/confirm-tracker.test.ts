import { describe, expect, it } from 'vitest';
import { ConfirmTracker } from '../../../src/io/pgoutput/confirm-tracker.ts';

describe('ConfirmTracker', () => {
  it('confirms a transaction end only once every unit up to it completed, in any completion order', () => {
    const t = new ConfirmTracker(100n);
    const a = t.open(200n);
    const b = t.open(300n);
    const c = t.open(400n);
    expect(t.complete(c)).toBe(false);
    expect(t.confirmed).toBe(100n);
    expect(t.complete(a)).toBe(true);
    expect(t.confirmed).toBe(200n);
    expect(t.complete(b)).toBe(true);
    expect(t.confirmed).toBe(400n);
    expect(t.inFlight).toBe(0);
  });

  it('does not confirm a unit that ends inside a transaction', () => {
    const t = new ConfirmTracker(100n);
    const firstHalf = t.open(undefined);
    const secondHalf = t.open(250n);
    t.complete(firstHalf);
    expect(t.confirmed).toBe(100n);
    t.complete(secondHalf);
    expect(t.confirmed).toBe(250n);
  });

  it('ignores unknown and repeated completions', () => {
    const t = new ConfirmTracker(0n);
    const a = t.open(10n);
    expect(t.complete(a)).toBe(true);
    expect(t.complete(a)).toBe(false);
    expect(t.complete(99)).toBe(false);
  });

  it('moves to the keepalive position only when nothing is in flight', () => {
    const t = new ConfirmTracker(100n);
    const a = t.open(150n);
    expect(t.advanceIdle(500n)).toBe(false);
    t.complete(a);
    expect(t.advanceIdle(500n)).toBe(true);
    expect(t.confirmed).toBe(500n);
    expect(t.advanceIdle(400n)).toBe(false);
    expect(t.confirmed).toBe(500n);
  });
});
