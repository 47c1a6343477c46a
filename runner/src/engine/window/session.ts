/**
 * Session windows: per group, records closer than `gap` to each other form one session
 * `[first event, last event + gap)`. A record may bridge two sessions, which then merge. These
 * helpers work on a group's sessions kept sorted by start and disjoint.
 */

export interface SessionBounds {
  /** Event time of the session's first record. */
  start: number;
  /** Event time of its last record; the session window ends at `last + gap`. */
  last: number;
}

/**
 * Indices (contiguous, ascending) of the sessions a record at `t` joins: those with an event
 * strictly closer than `gap` to `t`. Exactly `gap` of inactivity separates sessions.
 */
export function overlappingSessions(sessions: readonly SessionBounds[], t: number, gap: number): number[] {
  const hits: number[] = [];
  for (let i = 0; i < sessions.length; i++) {
    const s = sessions[i]!;
    if (s.start >= t + gap) break; // sorted by start: later ones start even further away
    if (t < s.last + gap) hits.push(i);
  }
  return hits;
}

/** The bounds of the session that results from a record at `t` joining `sessions` (non-empty). */
export function mergedBounds(sessions: readonly SessionBounds[], t: number): SessionBounds {
  let start = t;
  let last = t;
  for (const s of sessions) {
    if (s.start < start) start = s.start;
    if (s.last > last) last = s.last;
  }
  return { start, last };
}

/** Where a session starting at `start` goes in a list sorted by start. */
export function insertionIndex(sessions: readonly SessionBounds[], start: number): number {
  let i = 0;
  while (i < sessions.length && sessions[i]!.start <= start) i++;
  return i;
}
