import { describe, expect, it } from 'vitest';
import { Ack } from '../../src/engine/ack.ts';

describe('Ack', () => {
  it('completes once, when sealed and every reference is released', () => {
    let done = 0;
    const ack = new Ack(() => done++);
    ack.retain(2);
    ack.release();
    ack.seal();
    expect(done).toBe(0);
    ack.release();
    expect(done).toBe(1);
    expect(ack.isComplete).toBe(true);
  });

  it('does not complete before it is sealed, even at zero', () => {
    let done = 0;
    const ack = new Ack(() => done++);
    ack.retain();
    ack.release();
    expect(done).toBe(0);
    ack.seal();
    expect(done).toBe(1);
  });

  it('refuses to be released more often than retained, or retained after completion', () => {
    const ack = new Ack(() => {});
    ack.seal();
    expect(() => ack.release()).toThrow(/more often/);
    expect(() => ack.retain()).toThrow(/after it was acknowledged/);
  });

  it('derived: completing releases the references held on each parent', () => {
    const completed: string[] = [];
    const a = new Ack(() => completed.push('a'));
    const b = new Ack(() => completed.push('b'));
    a.retain(2);
    b.retain(1);
    a.seal();
    b.seal();
    const derived = Ack.derived(new Map([[a, 2], [b, 1]]));
    derived.retain();
    derived.seal();
    expect(completed).toEqual([]);
    derived.release();
    expect(completed).toEqual(['a', 'b']);
  });
});
