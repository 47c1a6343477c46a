import { describe, expect, it } from 'vitest';
import { insertionIndex, mergedBounds, overlappingSessions } from '../../../src/engine/window/session.ts';

const sessions = [
  { start: 0, last: 10 },
  { start: 50, last: 60 },
  { start: 100, last: 100 },
];

describe('overlappingSessions', () => {
  it('joins a record closer than the gap to a session', () => {
    expect(overlappingSessions(sessions, 15, 10)).toEqual([0]);
    expect(overlappingSessions(sessions, 45, 10)).toEqual([1]);
  });

  it('starts a new session after exactly the gap of inactivity', () => {
    expect(overlappingSessions(sessions, 20, 10)).toEqual([]);
    expect(overlappingSessions(sessions, 40, 10)).toEqual([]);
  });

  it('finds every session a record bridges', () => {
    expect(overlappingSessions(sessions, 30, 25)).toEqual([0, 1]);
    expect(overlappingSessions(sessions, 80, 45)).toEqual([1, 2]);
  });

  it('finds nothing in an empty list', () => {
    expect(overlappingSessions([], 5, 10)).toEqual([]);
  });
});

describe('mergedBounds', () => {
  it('spans the sessions and the new record', () => {
    expect(mergedBounds([sessions[0]!, sessions[1]!], 30)).toEqual({ start: 0, last: 60 });
    expect(mergedBounds([sessions[1]!], 45)).toEqual({ start: 45, last: 60 });
    expect(mergedBounds([sessions[1]!], 70)).toEqual({ start: 50, last: 70 });
  });
});

describe('insertionIndex', () => {
  it('keeps the list sorted by start', () => {
    expect(insertionIndex(sessions, -5)).toBe(0);
    expect(insertionIndex(sessions, 30)).toBe(1);
    expect(insertionIndex(sessions, 200)).toBe(3);
  });
});
