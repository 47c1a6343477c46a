import { describe, expect, it } from 'vitest';
import { isTimeZone, toEpochMillis, toIsoUtc, wallClock } from '../../src/engine/time.ts';

describe('toEpochMillis', () => {
  it('reads ISO 8601 with Z, offsets, and without a zone as UTC (never the local zone)', () => {
    expect(toEpochMillis('2025-01-02T10:30:00Z')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02T10:30:00')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02 10:30:00')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02T12:30:00+02:00')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02T05:00:00-0530')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02')).toBe(Date.UTC(2025, 0, 2));
  });

  it('keeps milliseconds and truncates finer fractions', () => {
    expect(toEpochMillis('2025-01-02T10:30:00.123456Z')).toBe(Date.UTC(2025, 0, 2, 10, 30, 0, 123));
    expect(toEpochMillis('2025-01-02T10:30:00.999999999Z')).toBe(Date.UTC(2025, 0, 2, 10, 30, 0, 999));
    expect(toEpochMillis('2025-01-02T10:30:00.5Z')).toBe(Date.UTC(2025, 0, 2, 10, 30, 0, 500));
  });

  it('takes numbers as epoch milliseconds and refuses everything else', () => {
    expect(toEpochMillis(0)).toBe(0);
    expect(toEpochMillis(1735813800123)).toBe(1735813800123);
    expect(toEpochMillis(Number.NaN)).toBeUndefined();
    expect(toEpochMillis('yesterday')).toBeUndefined();
    expect(toEpochMillis(null)).toBeUndefined();
    expect(toEpochMillis({})).toBeUndefined();
  });
});

describe('wallClock', () => {
  it('gives the UTC wall clock by default and the zone wall clock when asked', () => {
    const ms = Date.UTC(2025, 2, 30, 0, 30); // 01:30 CET -> clocks jump at 02:00 to 03:00 CEST
    expect(wallClock(ms)).toMatchObject({ year: 2025, month: 3, day: 30, hour: 0, minute: 30, weekday: 7 });
    expect(wallClock(ms, 'Europe/Berlin')).toMatchObject({ day: 30, hour: 1, minute: 30 });
    expect(wallClock(ms + 3_600_000, 'Europe/Berlin')).toMatchObject({ hour: 3, minute: 30 });
  });

  it('knows IANA zones', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });

  it('prints UTC with milliseconds', () => {
    expect(toIsoUtc(Date.UTC(2025, 0, 6, 9))).toBe('2025-01-06T09:00:00.000Z');
  });
});
