import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/engine/seeded-random.ts';
import { TimedQueue } from '../../src/engine/timed-queue.ts';

describe('TimedQueue', () => {
  it('drains by time, equal times in the order added, as a sort of the same items does', () => {
    const random = mulberry32(3);
    const q = new TimedQueue<{ at: number; seq: number }>();
    const items = Array.from({ length: 2000 }, (_, seq) => ({ at: Math.floor(random() * 50), seq }));
    for (const item of items) q.push(item);
    expect(q.size).toBe(2000);
    const drained: { at: number; seq: number }[] = [];
    for (let item = q.pop(); item; item = q.pop()) drained.push(item);
    expect(drained).toEqual([...items].sort((a, b) => a.at - b.at || a.seq - b.seq));
    expect(q.peek()).toBeUndefined();
  });
});
