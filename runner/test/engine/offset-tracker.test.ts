import { describe, expect, it } from 'vitest';
import { OffsetTracker } from '../../src/engine/offset-tracker.ts';

describe('OffsetTracker', () => {
  it('has nothing committable before anything completed', () => {
    const t = new OffsetTracker();
    t.track('p', '0');
    expect(t.committable('p')).toBeUndefined();
    expect(t.committable('unknown')).toBeUndefined();
  });

  it('advances over a contiguous completed prefix only', () => {
    const t = new OffsetTracker();
    for (const o of ['10', '11', '12', '13']) t.track('p', o);
    t.complete('p', '12');
    expect(t.committable('p')).toBeUndefined();
    t.complete('p', '10');
    expect(t.committable('p')).toBe('10');
    t.complete('p', '11');
    expect(t.committable('p')).toBe('12');
    expect(t.pending('p')).toBe(1);
    t.complete('p', '13');
    expect(t.committable('p')).toBe('13');
    expect(t.pending('p')).toBe(0);
  });

  it('follows emit order, not numeric order, and allows gaps between offsets', () => {
    const t = new OffsetTracker();
    // Compacted topics and transaction markers leave gaps; LSNs are not small integers.
    t.track('p', '5');
    t.track('p', '9');
    t.track('p', '100');
    t.complete('p', '100');
    t.complete('p', '9');
    expect(t.committable('p')).toBeUndefined();
    t.complete('p', '5');
    expect(t.committable('p')).toBe('100');
  });

  it('keeps partitions independent', () => {
    const t = new OffsetTracker();
    t.track('a', '1');
    t.track('b', '1');
    t.track('b', '2');
    t.complete('b', '2');
    t.complete('b', '1');
    expect(t.committable('a')).toBeUndefined();
    expect(t.committable('b')).toBe('2');
  });

  it('keeps the last committable once everything tracked completed, and continues after new tracks', () => {
    const t = new OffsetTracker();
    t.track('p', '1');
    t.complete('p', '1');
    t.track('p', '2');
    expect(t.committable('p')).toBe('1');
    t.complete('p', '2');
    expect(t.committable('p')).toBe('2');
  });

  it('ignores completions of unknown offsets and of revoked partitions', () => {
    const t = new OffsetTracker();
    t.track('p', '1');
    expect(t.complete('p', '7')).toBe(false);
    t.revoke('p');
    expect(t.complete('p', '1')).toBe(false);
    expect(t.committable('p')).toBeUndefined();
    expect(t.trackedPartitions).toEqual([]);
    // Re-assigned after a revoke: starts afresh.
    t.track('p', '1');
    expect(t.complete('p', '1')).toBe(true);
    expect(t.committable('p')).toBe('1');
  });

  it('refuses to track the same offset twice', () => {
    const t = new OffsetTracker();
    t.track('p', '1');
    expect(() => t.track('p', '1')).toThrow(/already tracked/);
  });

  it('stays correct across compaction of a long completed prefix', () => {
    const t = new OffsetTracker();
    const n = 5000;
    for (let i = 0; i < n; i++) t.track('p', String(i));
    // Complete all but the last in reverse order of pairs, then the last.
    for (let i = 0; i < n - 1; i += 2) {
      t.complete('p', String(i + 1));
      t.complete('p', String(i));
      expect(t.committable('p')).toBe(String(i + 1));
    }
    t.complete('p', String(n - 1));
    expect(t.committable('p')).toBe(String(n - 1));
    expect(t.pending('p')).toBe(0);
  });
});
