/**
 * Cron schedules; the one module that uses node-cron. node-cron validates the expression
 * (`validateDetailed`) and says whether an instant matches in a time zone (`ScheduledTask.match`).
 * Its next-run computation counts only from the system's `new Date()`, so `nextAfter` repeats its
 * walk (`TimeMatcher.getNextMatch`) from any instant, each candidate confirmed by node-cron's
 * `match`; a test checks both give the same instants. Firing uses timers from `nextAfter`, not
 * node-cron's runner: a ManualClock then drives the same code a live run uses, and a tick that
 * comes late (a busy event loop) still fires where node-cron's runner would drop it as missed.
 *
 * Daylight saving, as node-cron does it: a wall-clock time the clocks skip (02:30 in Europe/Berlin
 * on the last Sunday of March) does not fire that day; one they repeat fires once, at the instant
 * node-cron picks (in Berlin the second, 02:30 CET). A schedule inside the repeated hour (every 20 minutes)
 * fires there once too, so it leaves a gap of an hour.
 */
import { createTask, validateDetailed, type CronFieldError, type ParsedFields, type ScheduledTask } from 'node-cron';
import { ManualClock, type Clock } from './clock.ts';
import { ConfigError } from './errors.ts';
import { isTimeZone, wallClock, type WallClock } from './time.ts';

/** What a ScheduleError is about: the whole expression, one of its fields, or the time zone. */
export type ScheduleProblem = 'expression' | 'second' | 'minute' | 'hour' | 'dayOfMonth' | 'month' | 'dayOfWeek' | 'timezone';

/** A cron expression or time zone that cannot be scheduled. The message is the value and `reason`. */
export class ScheduleError extends ConfigError {
  /** Where in the expression the problem is (0-based) and how long, when it is one field or character: for `file:line:col` inside the string. */
  readonly index: number | undefined;
  readonly length: number | undefined;
  /** How to write it right. */
  readonly hint: string | undefined;

  constructor(
    readonly value: string,
    /** What is wrong, as a clause after the value: "is not a cron schedule: the hour `25` is not valid (it takes 0-23)". */
    readonly reason: string,
    readonly problem: ScheduleProblem,
    options: { index?: number; length?: number; hint?: string; where?: string } = {},
  ) {
    super('E_SCHEDULE', `\`${value}\` ${reason}`, options.where);
    this.index = options.index;
    this.length = options.length;
    this.hint = options.hint;
  }
}

export const CRON_HINT =
  'a cron schedule is `minute hour day-of-month month day-of-week`, with an optional `second` first: `0 3 * * *` is 03:00 every day, `*/10 * * * * *` every 10 seconds';

/** A validated schedule in its time zone. Instants are epoch ms; cron resolves to whole seconds. */
export interface Schedule {
  readonly expression: string;
  readonly timeZone: string;
  /** Whether the instant (to the second) matches, read as wall clock in the time zone. */
  matches(epochMs: number): boolean;
  /** The first instant after `epochMs` at which the schedule fires (a whole second). */
  nextAfter(epochMs: number): number;
}

/* ------------------------------------------------------------------ parsing */

const FIELD_TEXT: Record<Exclude<ScheduleProblem, 'expression' | 'timezone'>, { name: string; takes: string }> = {
  second: { name: 'second', takes: '0-59' },
  minute: { name: 'minute', takes: '0-59' },
  hour: { name: 'hour', takes: '0-23' },
  dayOfMonth: { name: 'day of month', takes: '1-31, `L` (last day), `15W` (nearest weekday), `L-2`' },
  month: { name: 'month', takes: '1-12 or jan-dec' },
  dayOfWeek: { name: 'day of week', takes: '0-7 (0 and 7 are Sunday) or sun-sat, `5L` (last Friday), `1#2` (second Monday)' },
};
const FIELD_ORDER = ['second', 'minute', 'hour', 'dayOfMonth', 'month', 'dayOfWeek'] as const;
const ALLOWED_CHAR = /[a-zA-Z0-9\-*/,#? ]/;

/** The expression's fields with where each starts; undefined for a nickname (`@daily`), which has none. */
function fieldsOf(expression: string): { text: string; index: number }[] | undefined {
  if (expression.trim().startsWith('@')) return undefined;
  return [...expression.matchAll(/[^ ]+/g)].map((m) => ({ text: m[0], index: m.index }));
}

function fieldProblem(expression: string, errors: readonly CronFieldError[]): ScheduleError {
  const first = errors[0];
  const tokens = fieldsOf(expression);
  if (!first || first.field === 'expression' || !(first.field in FIELD_TEXT)) {
    const bad = [...expression].findIndex((c) => !ALLOWED_CHAR.test(c));
    if (bad >= 0) {
      return new ScheduleError(expression, `is not a cron schedule: it contains ${JSON.stringify(expression[bad])}, which no field takes`, 'expression', { index: bad, length: 1, hint: CRON_HINT });
    }
    if (tokens && tokens.length !== 5 && tokens.length !== 6) {
      return new ScheduleError(expression, `is not a cron schedule: it has ${tokens.length} field${tokens.length === 1 ? '' : 's'}, not 5 or 6`, 'expression', { hint: CRON_HINT });
    }
    return new ScheduleError(expression, `is not a cron schedule: ${first?.message ?? 'node-cron refuses it'}`, 'expression', { hint: CRON_HINT });
  }
  // node-cron reports fields as if there were always six; a 5-field expression has no second.
  const at = (field: string) => {
    const i = (FIELD_ORDER as readonly string[]).indexOf(field) - (tokens?.length === 5 ? 1 : 0);
    return tokens?.[i];
  };
  const parts = errors.map((e) => {
    const f = FIELD_TEXT[e.field as keyof typeof FIELD_TEXT];
    if (/impossible day of month/.test(e.message)) return `the day of month \`${at('dayOfMonth')?.text ?? e.value}\` never falls in month \`${at('month')?.text ?? '?'}\``;
    return f ? `the ${f.name} \`${at(e.field)?.text ?? e.value}\` is not valid (it takes ${f.takes})` : e.message;
  });
  const token = at(first.field);
  return new ScheduleError(expression, `is not a cron schedule: ${parts.join('; ')}`, first.field as ScheduleProblem, { index: token?.index, length: token?.text.length, hint: CRON_HINT });
}

/**
 * Validates a cron expression (5 fields, or 6 with seconds first, as node-cron takes them) and an
 * IANA time zone; throws a ScheduleError saying which part is wrong, also for an expression that
 * never fires (`0 0 L-30 2 *`).
 */
export function parseSchedule(expression: string, timeZone: string): Schedule {
  let result: ReturnType<typeof validateDetailed>;
  try {
    result = validateDetailed(expression);
  } catch (err) {
    // Defensive: node-cron reports, it should not throw; a throw still means the expression is bad.
    result = { valid: false, errors: [{ field: 'expression', message: err instanceof Error ? err.message : String(err) }] };
  }
  if (!result.valid || !result.fields) throw fieldProblem(expression, result.errors);
  if (!isTimeZone(timeZone)) {
    throw new ScheduleError(timeZone, `is not an IANA time zone like Europe/Berlin or UTC`, 'timezone', { hint: 'time zones are named as in the tz database: Region/City, or UTC' });
  }
  const schedule = new CronSchedule(expression, timeZone, result.fields);
  try {
    // Any expression that fires at all fires within 100 years of any date: cron has no year.
    schedule.nextAfter(Date.UTC(2000, 0, 1));
  } catch {
    throw new ScheduleError(expression, `never fires: no date has that day of month, month and day of week`, 'dayOfMonth', { hint: CRON_HINT });
  }
  return schedule;
}

/* ------------------------------------------------------------------ matching */

const MAX_DAYS = 366 * 100;
const noop = (): void => {};

/** A node-cron task used only for its matcher: destroyed at once, so it never runs and leaves node-cron's task registry. */
function matcher(expression: string, timeZone: string): ScheduledTask {
  const task = createTask(expression, noop, { timezone: timeZone });
  void task.destroy();
  return task;
}

function utcOfWall(w: Pick<WallClock, 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second'>): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
}

/** The zone's offset from UTC at an instant, in ms (Berlin in winter: 3,600,000). */
function offsetAt(epochMs: number, timeZone: string): number {
  return utcOfWall(wallClock(epochMs, timeZone)) - Math.floor(epochMs / 1000) * 1000;
}

/**
 * The instant of a wall-clock time in a zone, chosen as node-cron chooses it (its
 * `localTimeToTimestamp`): for a time that exists twice, the candidate from the offset in force at
 * the wall time read as UTC; for one that does not exist, the later candidate (which `match` then refuses).
 */
function instantOf(year: number, month: number, day: number, hour: number, minute: number, second: number, timeZone: string): number {
  const wall = { year, month, day, hour, minute, second };
  const guess = utcOfWall(wall);
  const first = offsetAt(guess, timeZone);
  const c1 = guess - first;
  const then = offsetAt(c1, timeZone);
  if (then === first) return c1;
  const c2 = guess - then;
  const readsBack = (t: number) => utcOfWall(wallClock(t, timeZone)) === guess;
  if (readsBack(c1)) return c1;
  if (readsBack(c2)) return c2;
  return Math.max(c1, c2);
}

class CronSchedule implements Schedule {
  private readonly seconds: number[];
  private readonly minutes: number[];
  private readonly hours: number[];
  /** The expression's own matcher, in its time zone. */
  private readonly task: ScheduledTask;
  /** The same days, months and weekdays at noon UTC: node-cron's calendar logic (`L`, `W`, `#`) for a whole date. */
  private readonly days: ScheduledTask;
  /** Plain numbers of the date fields (undefined when a field has `L`, `W` or `#`): a cheap first test before `days`. */
  private readonly months: ReadonlySet<number>;
  private readonly monthDays: ReadonlySet<number> | undefined;
  private readonly weekdays: ReadonlySet<number> | undefined;

  constructor(
    readonly expression: string,
    readonly timeZone: string,
    fields: ParsedFields,
  ) {
    const asc = (v: number[]) => [...new Set(v)].sort((a, b) => a - b);
    this.seconds = asc(fields.second);
    this.minutes = asc(fields.minute);
    this.hours = asc(fields.hour);
    this.task = matcher(expression, timeZone);
    this.days = matcher(`0 0 12 ${fields.dayOfMonth.join(',')} ${fields.month.join(',')} ${fields.dayOfWeek.join(',')}`, 'UTC');
    const numbers = (v: (number | string)[]) => (v.every((x) => typeof x === 'number') ? new Set(v as number[]) : undefined);
    this.months = new Set(fields.month);
    this.monthDays = numbers(fields.dayOfMonth);
    this.weekdays = numbers(fields.dayOfWeek);
  }

  /** Whether a date (noon UTC) can match: node-cron's calendar test, after the plain-number ones that rule most days out (its match costs a formatter call). */
  private dayMatches(noon: Date): boolean {
    if (!this.months.has(noon.getUTCMonth() + 1)) return false;
    if (this.monthDays && !this.monthDays.has(noon.getUTCDate())) return false;
    if (this.weekdays && !this.weekdays.has(noon.getUTCDay())) return false;
    return this.days.match(noon);
  }

  matches(epochMs: number): boolean {
    return this.task.match(new Date(epochMs));
  }

  /** node-cron's walk: day by day from `after`'s local date, the day's times in order (later than `after`'s wall clock on its own day). */
  nextAfter(epochMs: number): number {
    const base = Math.floor(epochMs / 1000) * 1000;
    const from = wallClock(base, this.timeZone);
    let date = new Date(Date.UTC(from.year, from.month - 1, from.day, 12));
    for (let i = 0; i < MAX_DAYS; i++, date = new Date(date.getTime() + 86_400_000)) {
      if (!this.dayMatches(date)) continue;
      const found = this.firstOnDay(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), i === 0 ? from : undefined, base);
      if (found !== undefined) return found;
    }
    throw new ScheduleError(this.expression, 'does not fire within 100 years', 'expression');
  }

  private firstOnDay(year: number, month: number, day: number, lower: WallClock | undefined, base: number): number | undefined {
    const floor = lower ? lower.hour * 3600 + lower.minute * 60 + lower.second : -1;
    for (const hour of this.hours) {
      if (lower && hour < lower.hour) continue;
      for (const minute of this.minutes) {
        for (const second of this.seconds) {
          if (hour * 3600 + minute * 60 + second <= floor) continue;
          const t = instantOf(year, month, day, hour, minute, second, this.timeZone);
          if (t > base && this.task.match(new Date(t))) return t;
        }
      }
    }
    return undefined;
  }
}

/* ------------------------------------------------------------------ firing */

export interface ScheduleHandle {
  /** No more fires after this returns. */
  stop(): void;
}

/** Longest single wait: timers run on a monotonic clock, so a wall clock that jumps (or a machine that slept) is noticed within this. */
const MAX_WAIT_MS = 60_000;

/**
 * Calls `onFire(firedAt)` at each of the schedule's instants on `clock`: on a ManualClock when a
 * test moves it past one (no timers), otherwise from timers. `firedAt` is the scheduled instant,
 * not when the callback ran. When the clock passes several instants at once (a jump, a machine
 * that slept) it fires once, for the first of them: no burst of catch-up runs. `onFire` must not
 * throw.
 */
export function startSchedule(schedule: Schedule, clock: Clock, onFire: (firedAt: number) => void): ScheduleHandle {
  let next = schedule.nextAfter(clock.now());
  /** Fires if `now` reached the next instant; then the one after `now` is next. */
  const due = (now: number): void => {
    if (now < next) return;
    const firedAt = next;
    next = schedule.nextAfter(now);
    onFire(firedAt);
  };

  if (clock instanceof ManualClock) {
    let last = clock.now();
    const unsubscribe = clock.onChange((now) => {
      // Set back: the next instant is the one after the new time, not the one after the old.
      if (now < last) next = schedule.nextAfter(now);
      last = now;
      due(now);
    });
    return { stop: unsubscribe };
  }

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const arm = (): void => {
    if (stopped) return;
    timer = setTimeout(beat, Math.min(MAX_WAIT_MS, Math.max(0, next - clock.now())));
  };
  const beat = (): void => {
    timer = undefined;
    due(clock.now());
    arm();
  };
  arm();
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
