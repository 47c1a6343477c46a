import { describe, expect, it } from 'vitest';
import { alignDay, calendarWindow, localDayNumber, startOfLocalDay } from '../../../src/engine/window/calendar.ts';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();
const HOUR = 3_600_000;

describe('calendarWindow in UTC', () => {
  it('aligns a day to UTC midnight', () => {
    const [s, e] = calendarWindow(ms('2025-06-15T13:45:00Z'), 1, 'UTC');
    expect([iso(s), iso(e)]).toEqual(['2025-06-15T00:00:00.000Z', '2025-06-16T00:00:00.000Z']);
  });

  it('puts midnight itself in the day it starts and the last millisecond in the day before', () => {
    expect(iso(calendarWindow(ms('2025-06-15T00:00:00Z'), 1, 'UTC')[0])).toBe('2025-06-15T00:00:00.000Z');
    expect(iso(calendarWindow(ms('2025-06-14T23:59:59.999Z'), 1, 'UTC')[0])).toBe('2025-06-14T00:00:00.000Z');
  });

  it('starts weeks on Monday', () => {
    // 2025-06-15 is a Sunday: its week began Monday 2025-06-09.
    const [s, e] = calendarWindow(ms('2025-06-15T23:00:00Z'), 7, 'UTC');
    expect([iso(s), iso(e)]).toEqual(['2025-06-09T00:00:00.000Z', '2025-06-16T00:00:00.000Z']);
    expect(iso(calendarWindow(ms('2025-06-16T00:00:00Z'), 7, 'UTC')[0])).toBe('2025-06-16T00:00:00.000Z');
  });

  it('handles instants before 1970', () => {
    const [s, e] = calendarWindow(ms('1969-12-31T12:00:00Z'), 1, 'UTC');
    expect([iso(s), iso(e)]).toEqual(['1969-12-31T00:00:00.000Z', '1970-01-01T00:00:00.000Z']);
    // 1970-01-01 was a Thursday; its week started Monday 1969-12-29.
    expect(iso(calendarWindow(0, 7, 'UTC')[0])).toBe('1969-12-29T00:00:00.000Z');
  });
});

describe('calendarWindow in Europe/Berlin', () => {
  it('aligns to local midnight (UTC+1 in winter, UTC+2 in summer)', () => {
    expect(calendarWindow(ms('2025-01-10T12:00:00Z'), 1, 'Europe/Berlin').map(iso)).toEqual(['2025-01-09T23:00:00.000Z', '2025-01-10T23:00:00.000Z']);
    expect(calendarWindow(ms('2025-07-10T12:00:00Z'), 1, 'Europe/Berlin').map(iso)).toEqual(['2025-07-09T22:00:00.000Z', '2025-07-10T22:00:00.000Z']);
  });

  it('gives the spring-forward day 2025-03-30 23 hours', () => {
    const [s, e] = calendarWindow(ms('2025-03-30T10:00:00Z'), 1, 'Europe/Berlin');
    expect([iso(s), iso(e)]).toEqual(['2025-03-29T23:00:00.000Z', '2025-03-30T22:00:00.000Z']);
    expect(e - s).toBe(23 * HOUR);
  });

  it('gives the fall-back day 2025-10-26 25 hours', () => {
    const [s, e] = calendarWindow(ms('2025-10-26T10:00:00Z'), 1, 'Europe/Berlin');
    expect([iso(s), iso(e)]).toEqual(['2025-10-25T22:00:00.000Z', '2025-10-26T23:00:00.000Z']);
    expect(e - s).toBe(25 * HOUR);
  });

  it('keeps both 02:xx hours of the fall-back night in the same day', () => {
    const firstTwoThirty = ms('2025-10-26T00:30:00Z'); // 02:30 CEST
    const secondTwoThirty = ms('2025-10-26T01:30:00Z'); // 02:30 CET
    expect(calendarWindow(firstTwoThirty, 1, 'Europe/Berlin')).toEqual(calendarWindow(secondTwoThirty, 1, 'Europe/Berlin'));
  });

  it('assigns the instants around local midnight to the right days', () => {
    // 2025-03-30 00:00 local = 2025-03-29T23:00Z (still UTC+1)
    expect(iso(calendarWindow(ms('2025-03-29T22:59:59.999Z'), 1, 'Europe/Berlin')[0])).toBe('2025-03-28T23:00:00.000Z');
    expect(iso(calendarWindow(ms('2025-03-29T23:00:00Z'), 1, 'Europe/Berlin')[0])).toBe('2025-03-29T23:00:00.000Z');
    // 2025-10-27 00:00 local = 2025-10-26T23:00Z (UTC+1 again)
    expect(iso(calendarWindow(ms('2025-10-26T22:59:59.999Z'), 1, 'Europe/Berlin')[0])).toBe('2025-10-25T22:00:00.000Z');
    expect(iso(calendarWindow(ms('2025-10-26T23:00:00Z'), 1, 'Europe/Berlin')[0])).toBe('2025-10-26T23:00:00.000Z');
  });

  it('makes weeks holding a daylight-saving change 167 and 169 hours long, starting Monday', () => {
    const [s1, e1] = calendarWindow(ms('2025-03-30T10:00:00Z'), 7, 'Europe/Berlin');
    expect([iso(s1), iso(e1)]).toEqual(['2025-03-23T23:00:00.000Z', '2025-03-30T22:00:00.000Z']);
    expect(e1 - s1).toBe(167 * HOUR);
    const [s2, e2] = calendarWindow(ms('2025-10-22T10:00:00Z'), 7, 'Europe/Berlin');
    expect([iso(s2), iso(e2)]).toEqual(['2025-10-19T22:00:00.000Z', '2025-10-26T23:00:00.000Z']);
    expect(e2 - s2).toBe(169 * HOUR);
  });

  it('chains days without gaps or overlaps across a whole year', () => {
    let t = ms('2025-01-01T00:00:00Z');
    let [, end] = calendarWindow(t, 1, 'Europe/Berlin');
    for (let i = 0; i < 366; i++) {
      const [s, e] = calendarWindow(end, 1, 'Europe/Berlin');
      expect(s).toBe(end);
      expect([23, 24, 25]).toContain((e - s) / HOUR);
      t = end;
      end = e;
    }
  });
});

describe('startOfLocalDay', () => {
  it('finds the first instant of a day whose midnight does not exist', () => {
    // America/Santiago skips 00:00-01:00 on 2025-09-07: the day starts at 01:00 local (-03) = 04:00Z.
    const day = Math.floor(Date.UTC(2025, 8, 7) / 86_400_000);
    expect(iso(startOfLocalDay(day, 'America/Santiago'))).toBe('2025-09-07T04:00:00.000Z');
  });

  it('handles zones east of UTC with half-hour offsets', () => {
    const day = Math.floor(Date.UTC(2025, 0, 1) / 86_400_000);
    expect(iso(startOfLocalDay(day, 'Asia/Kolkata'))).toBe('2024-12-31T18:30:00.000Z');
  });
});

describe('alignDay and localDayNumber', () => {
  it('aligns weeks to Mondays and other day counts to 1970-01-01', () => {
    expect(alignDay(0, 7)).toBe(-3);
    expect(alignDay(4, 7)).toBe(4);
    expect(alignDay(3, 7)).toBe(-3);
    expect(alignDay(5, 2)).toBe(4);
    expect(alignDay(-1, 2)).toBe(-2);
  });

  it('reads the local date, not the UTC one', () => {
    const t = ms('2025-06-15T23:30:00Z');
    expect(localDayNumber(t, 'UTC')).toBe(Math.floor(Date.UTC(2025, 5, 15) / 86_400_000));
    expect(localDayNumber(t, 'Europe/Berlin')).toBe(Math.floor(Date.UTC(2025, 5, 16) / 86_400_000));
  });
});
