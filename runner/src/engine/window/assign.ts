/**
 * Window assignment: which `[start, end)` intervals an event time belongs to. Pure functions over
 * epoch milliseconds; negative times (before 1970) floor towards minus infinity like any other.
 */
import { calendarWindow } from './calendar.ts';

/** How a window step cuts time. Sessions are not assigned here: they depend on the group's history. */
export type WindowShape =
  | { kind: 'tumbling'; size: number }
  /** Whole-day tumbling windows aligned to local midnight in `timeZone` (weeks start Monday). */
  | { kind: 'calendar'; days: number; timeZone: string }
  | { kind: 'hopping'; size: number; advance: number }
  | { kind: 'session'; gap: number };

/** Start of the epoch-aligned tumbling window of `size` ms holding `t`. */
export function tumblingStart(t: number, size: number): number {
  return Math.floor(t / size) * size;
}

/**
 * Starts of every hopping window holding `t`, earliest first. Windows start at multiples of
 * `advance` and last `size`; when `size` is not a multiple of `advance` some instants belong to
 * fewer windows than others, and when `advance > size` some belong to none.
 */
export function hoppingStarts(t: number, size: number, advance: number): number[] {
  const last = Math.floor(t / advance) * advance;
  const starts: number[] = [];
  // The earliest window holding t starts after t - size.
  let first = last - Math.floor((size - 1) / advance) * advance;
  while (first + size <= t) first += advance;
  for (let s = first; s <= last; s += advance) starts.push(s);
  return starts;
}

/**
 * Remembers the last calendar window so consecutive records of one day skip the time-zone
 * arithmetic, which goes through Intl and costs microseconds.
 */
export class CalendarAssigner {
  private start = 0;
  private end = 0;

  constructor(
    readonly days: number,
    readonly timeZone: string,
  ) {}

  window(t: number): [number, number] {
    if (t >= this.start && t < this.end) return [this.start, this.end];
    const [start, end] = calendarWindow(t, this.days, this.timeZone);
    this.start = start;
    this.end = end;
    return [start, end];
  }
}
