import { describe, expect, it } from 'vitest';
import { CalendarAssigner, hoppingStarts, tumblingStart } from '../../../src/engine/window/assign.ts';

describe('tumblingStart', () => {
  it('puts the start in its own window and the end in the next', () => {
    expect(tumblingStart(0, 1000)).toBe(0);
    expect(tumblingStart(999, 1000)).toBe(0);
    expect(tumblingStart(1000, 1000)).toBe(1000);
  });

  it('floors negative times towards minus infinity', () => {
    expect(tumblingStart(-1, 1000)).toBe(-1000);
    expect(tumblingStart(-1000, 1000)).toBe(-1000);
    expect(tumblingStart(-1001, 1000)).toBe(-2000);
  });
});

describe('hoppingStarts', () => {
  it('returns every window holding the time, earliest first', () => {
    expect(hoppingStarts(100, 60, 15)).toEqual([45, 60, 75, 90]);
  });

  it('excludes a window that ends exactly at the time and includes one that starts there', () => {
    expect(hoppingStarts(60, 60, 15)).toEqual([15, 30, 45, 60]);
  });

  it('handles negative times', () => {
    expect(hoppingStarts(-1, 60, 15)).toEqual([-60, -45, -30, -15]);
  });

  it('gives fewer windows to some instants when size is not a multiple of advance', () => {
    expect(hoppingStarts(10, 25, 10)).toEqual([-10, 0, 10]);
    expect(hoppingStarts(19, 25, 10)).toEqual([0, 10]);
  });

  it('gives no window to instants between windows when advance exceeds size', () => {
    expect(hoppingStarts(12, 10, 15)).toEqual([]);
    expect(hoppingStarts(16, 10, 15)).toEqual([15]);
  });

  it('equals tumbling when advance equals size', () => {
    for (const t of [-7, 0, 5, 9, 10, 123]) expect(hoppingStarts(t, 10, 10)).toEqual([tumblingStart(t, 10)]);
  });
});

describe('CalendarAssigner', () => {
  it('gives the same answers as calendarWindow, cached or not', () => {
    const a = new CalendarAssigner(1, 'Europe/Berlin');
    const t1 = Date.parse('2025-03-30T10:00:00Z');
    const first = a.window(t1);
    expect(a.window(t1 + 1000)).toEqual(first);
    expect(a.window(first[1])[0]).toBe(first[1]);
    expect(a.window(t1)).toEqual(first);
  });
});
