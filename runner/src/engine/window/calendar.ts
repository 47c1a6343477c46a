/**
 * Calendar windows: whole-day sizes (`1d`, `7d`) that start at local midnight in a time zone, so a
 * "day" in Europe/Berlin is 23 hours on the spring daylight-saving change and 25 in autumn.
 * Weeks (`7d`, and any multiple of 7 days) start on Monday; other day counts are aligned to
 * 1970-01-01 in local dates. Everything here is pure and takes the zone as an argument.
 */
import { wallClock } from '../time.ts';

const DAY_MS = 86_400_000;
/** 1970-01-01 was a Thursday; the Monday before it is local day number -3. */
const MONDAY_EPOCH_DAY = -3;
/** Offsets from UTC lie within -12h..+14h; these bounds bracket any local day's first instant. */
const SEARCH_BEFORE_MS = 15 * 3_600_000;
const SEARCH_AFTER_MS = 13 * 3_600_000;

/** The local calendar date of an instant in a zone, as days since 1970-01-01 (negative before). */
export function localDayNumber(ms: number, timeZone: string): number {
  const w = wallClock(ms, timeZone);
  return Math.floor(Date.UTC(w.year, w.month - 1, w.day) / DAY_MS);
}

/** Milliseconds the zone's wall clock is ahead of UTC at an instant (whole seconds). */
function offsetAt(ms: number, timeZone: string): number {
  const w = wallClock(ms, timeZone);
  const wallAsUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return wallAsUtc - Math.floor(ms / 1000) * 1000;
}

/**
 * The first instant of a local date in a zone: usually local midnight, or the end of the
 * daylight-saving gap in zones whose clocks jump at midnight.
 */
export function startOfLocalDay(dayNumber: number, timeZone: string): number {
  const localMidnight = dayNumber * DAY_MS;
  // Two rounds of "midnight as if UTC, minus the offset there" settle on the right offset except
  // when midnight itself does not exist; the check below catches that and searches instead.
  let guess = localMidnight - offsetAt(localMidnight, timeZone);
  guess = localMidnight - offsetAt(guess, timeZone);
  if (localDayNumber(guess, timeZone) === dayNumber && localDayNumber(guess - 1, timeZone) < dayNumber) return guess;
  let lo = localMidnight - SEARCH_BEFORE_MS; // still on an earlier local date
  let hi = localMidnight + SEARCH_AFTER_MS; // already on this local date or later
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (localDayNumber(mid, timeZone) >= dayNumber) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The first local day number of the calendar window of `days` days that contains local day `day`. */
export function alignDay(day: number, days: number): number {
  const origin = days % 7 === 0 ? MONDAY_EPOCH_DAY : 0;
  return Math.floor((day - origin) / days) * days + origin;
}

/** `[start, end)` in epoch ms of the `days`-day calendar window holding `ms`, in `timeZone`. */
export function calendarWindow(ms: number, days: number, timeZone: string): [number, number] {
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`calendar window of ${days} days`);
  const first = alignDay(localDayNumber(ms, timeZone), days);
  return [startOfLocalDay(first, timeZone), startOfLocalDay(first + days, timeZone)];
}
