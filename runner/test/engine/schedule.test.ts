/**
 * Cron schedules (engine/schedule.ts over node-cron): what parsing refuses and why, next-fire
 * instants (also across Europe/Berlin's daylight-saving days, and with a seconds field), the same
 * instants node-cron's own scheduler computes, and firing on a ManualClock without real time.
 */
import { createTask } from 'node-cron';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/engine/clock.ts';
import { ConfigError } from '../../src/engine/errors.ts';
import { parseSchedule, ScheduleError, startSchedule } from '../../src/engine/schedule.ts';

const BERLIN = 'Europe/Berlin';
const utc = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
/** `2025-03-30 08:00` as a Berliner's wall clock shows an instant. */
const berlin = (ms: number) => new Date(ms).toLocaleString('sv-SE', { timeZone: BERLIN });

function refusal(expression: string, timeZone = 'UTC'): ScheduleError {
  try {
    parseSchedule(expression, timeZone);
  } catch (err) {
    if (err instanceof ScheduleError) return err;
    throw err;
  }
  throw new Error(`\`${expression}\` was accepted`);
}

/** `count` fire instants after `from`, each from the one before. */
function fires(expression: string, timeZone: string, from: number, count: number): number[] {
  const s = parseSchedule(expression, timeZone);
  const out: number[] = [];
  for (let t = from; out.length < count; ) out.push((t = s.nextAfter(t)));
  return out;
}

describe('parseSchedule', () => {
  it('takes 5 fields, 6 with seconds, and what else node-cron takes (names, L, #, ?, @daily)', () => {
    for (const e of ['0 3 * * *', '*/10 * * * * *', '0 9 * * mon-fri', '0 0 L * *', '0 9 * * 1#2', '0 3 ? * *', '@daily', '  0   3 * * *  ']) {
      expect(() => parseSchedule(e, BERLIN), e).not.toThrow();
    }
    expect(parseSchedule('0 3 * * *', BERLIN)).toMatchObject({ expression: '0 3 * * *', timeZone: BERLIN });
  });

  it('says which field is wrong, what it takes, and where it is in the expression', () => {
    const hour = refusal('0 25 * * *');
    expect(hour).toBeInstanceOf(ConfigError);
    expect(hour.code).toBe('E_SCHEDULE');
    expect(hour.message).toBe('`0 25 * * *` is not a cron schedule: the hour `25` is not valid (it takes 0-23)');
    expect(hour).toMatchObject({ problem: 'hour', index: 2, length: 2 });

    // With seconds, every field moves one to the right.
    expect(refusal('0 0 25 * * *')).toMatchObject({ problem: 'hour', index: 4, length: 2 });
    expect(refusal('61 * * * * *')).toMatchObject({ problem: 'second', index: 0, reason: 'is not a cron schedule: the second `61` is not valid (it takes 0-59)' });
    expect(refusal('0 3 * * mon-frii')).toMatchObject({ problem: 'dayOfWeek', index: 8, length: 8 });
    expect(refusal('0 3 * 13 *').reason).toBe('is not a cron schedule: the month `13` is not valid (it takes 1-12 or jan-dec)');
    expect(refusal('0 3 31 2 *')).toMatchObject({ problem: 'dayOfMonth', index: 4, reason: 'is not a cron schedule: the day of month `31` never falls in month `2`' });
    // Two bad fields: both named, the first one pointed at.
    expect(refusal('99 25 * * *')).toMatchObject({ problem: 'minute', index: 0, reason: 'is not a cron schedule: the minute `99` is not valid (it takes 0-59); the hour `25` is not valid (it takes 0-23)' });
  });

  it('refuses a wrong number of fields, a character no field takes, and an expression that never fires', () => {
    expect(refusal('* * *')).toMatchObject({ problem: 'expression', reason: 'is not a cron schedule: it has 3 fields, not 5 or 6' });
    expect(refusal('0 3 * * * * *').reason).toBe('is not a cron schedule: it has 7 fields, not 5 or 6');
    expect(refusal('0 3 * * %')).toMatchObject({ problem: 'expression', index: 8, length: 1, reason: 'is not a cron schedule: it contains "%", which no field takes' });
    expect(refusal('')).toMatchObject({ problem: 'expression' });
    expect(refusal('0 0 L-30 2 *').reason).toBe('never fires: no date has that day of month, month and day of week');
  });

  it('refuses a time zone the runtime does not know', () => {
    const err = refusal('0 3 * * *', 'Europe/Berln');
    expect(err).toMatchObject({ problem: 'timezone', message: '`Europe/Berln` is not an IANA time zone like Europe/Berlin or UTC' });
    expect(() => parseSchedule('0 3 * * *', 'America/New_York')).not.toThrow();
  });
});

describe('Schedule.nextAfter and matches', () => {
  it('fires at the next matching instant in its time zone, strictly after the given one', () => {
    const s = parseSchedule('0 3 * * *', BERLIN);
    // 03:00 in Berlin in January is 02:00 UTC.
    expect(iso(s.nextAfter(utc('2025-01-10T00:00:00Z')))).toBe('2025-01-10T02:00:00.000Z');
    expect(iso(s.nextAfter(utc('2025-01-10T02:00:00Z')))).toBe('2025-01-11T02:00:00.000Z');
    expect(iso(s.nextAfter(utc('2025-01-10T01:59:59.999Z')))).toBe('2025-01-10T02:00:00.000Z');
    expect(s.matches(utc('2025-01-10T02:00:00Z'))).toBe(true);
    expect(s.matches(utc('2025-01-10T03:00:00Z'))).toBe(false);
    // The same expression in UTC.
    expect(iso(parseSchedule('0 3 * * *', 'UTC').nextAfter(utc('2025-01-10T00:00:00Z')))).toBe('2025-01-10T03:00:00.000Z');
  });

  it('with a seconds field: every 10 seconds, and second 30 of minutes 0 and 30', () => {
    expect(fires('*/10 * * * * *', BERLIN, utc('2025-01-10T08:59:41Z'), 4).map(iso)).toEqual([
      '2025-01-10T08:59:50.000Z',
      '2025-01-10T09:00:00.000Z',
      '2025-01-10T09:00:10.000Z',
      '2025-01-10T09:00:20.000Z',
    ]);
    expect(fires('30 0,30 * * * *', 'UTC', utc('2025-01-10T08:00:30Z'), 3).map(iso)).toEqual(['2025-01-10T08:30:30.000Z', '2025-01-10T09:00:30.000Z', '2025-01-10T09:30:30.000Z']);
    expect(parseSchedule('*/10 * * * * *', 'UTC').matches(utc('2025-01-10T09:00:10Z'))).toBe(true);
    expect(parseSchedule('*/10 * * * * *', 'UTC').matches(utc('2025-01-10T09:00:11Z'))).toBe(false);
  });

  it('node-cron day rules: last day of month, second Monday, weekdays by name', () => {
    expect(fires('0 0 L * *', 'UTC', utc('2024-01-15T00:00:00Z'), 3).map(iso)).toEqual(['2024-01-31T00:00:00.000Z', '2024-02-29T00:00:00.000Z', '2024-03-31T00:00:00.000Z']);
    expect(fires('0 9 * * 1#2', 'UTC', utc('2025-01-01T00:00:00Z'), 2).map(iso)).toEqual(['2025-01-13T09:00:00.000Z', '2025-02-10T09:00:00.000Z']);
    expect(fires('0 9 * * sat,sun', 'UTC', utc('2025-01-06T00:00:00Z'), 2).map(iso)).toEqual(['2025-01-11T09:00:00.000Z', '2025-01-12T09:00:00.000Z']);
  });

  describe('daylight saving in Europe/Berlin (2025: forward on 30 March at 02:00, back on 26 October at 03:00)', () => {
    it('a daily 08:00 fires once per local day across both changes, always at 08:00 local', () => {
      const spring = fires('0 8 * * *', BERLIN, utc('2025-03-28T12:00:00Z'), 4);
      expect(spring.map(berlin)).toEqual(['2025-03-29 08:00:00', '2025-03-30 08:00:00', '2025-03-31 08:00:00', '2025-04-01 08:00:00']);
      expect(spring.map(iso)).toEqual(['2025-03-29T07:00:00.000Z', '2025-03-30T06:00:00.000Z', '2025-03-31T06:00:00.000Z', '2025-04-01T06:00:00.000Z']);
      const autumn = fires('0 8 * * *', BERLIN, utc('2025-10-24T12:00:00Z'), 4);
      expect(autumn.map(berlin)).toEqual(['2025-10-25 08:00:00', '2025-10-26 08:00:00', '2025-10-27 08:00:00', '2025-10-28 08:00:00']);
      // The day the clocks go back has 25 hours.
      expect(autumn[1]! - autumn[0]!).toBe(25 * 3_600_000);
    });

    it('02:30 does not exist on 30 March: that day does not fire; 02:30 happens twice on 26 October: it fires once, at the second (CET)', () => {
      expect(fires('30 2 * * *', BERLIN, utc('2025-03-28T12:00:00Z'), 3).map(berlin)).toEqual(['2025-03-29 02:30:00', '2025-03-31 02:30:00', '2025-04-01 02:30:00']);
      const autumn = fires('30 2 * * *', BERLIN, utc('2025-10-24T12:00:00Z'), 3);
      expect(autumn.map(iso)).toEqual(['2025-10-25T00:30:00.000Z', '2025-10-26T01:30:00.000Z', '2025-10-27T01:30:00.000Z']);
      // Both instants read 02:30 in Berlin, so both match; the schedule fires at the later one only.
      const s = parseSchedule('30 2 * * *', BERLIN);
      expect([s.matches(utc('2025-10-26T00:30:00Z')), s.matches(utc('2025-10-26T01:30:00Z'))]).toEqual([true, true]);
      expect(iso(s.nextAfter(utc('2025-10-26T00:00:00Z')))).toBe('2025-10-26T01:30:00.000Z');
    });

    it('every 20 minutes: the missing hour is skipped; in the repeated hour node-cron walks the wall clock, so 02:00-02:40 fire once (CET)', () => {
      expect(fires('*/20 * * * *', BERLIN, utc('2025-03-30T00:30:00Z'), 3).map(berlin)).toEqual(['2025-03-30 01:40:00', '2025-03-30 03:00:00', '2025-03-30 03:20:00']);
      const back = fires('*/20 * * * *', BERLIN, utc('2025-10-25T23:30:00Z'), 4);
      expect(back.map(iso)).toEqual(['2025-10-25T23:40:00.000Z', '2025-10-26T01:00:00.000Z', '2025-10-26T01:20:00.000Z', '2025-10-26T01:40:00.000Z']);
    });
  });

  describe('the same instants as node-cron’s own scheduler', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    // node-cron's getNextRuns counts from `new Date()`: a faked Date puts "now" on each case.
    it.each([
      ['0 8 * * *', BERLIN, '2025-03-29T22:10:00Z'],
      ['30 2 * * *', BERLIN, '2025-10-25T12:00:00Z'],
      ['*/20 * * * *', BERLIN, '2025-10-25T23:30:00Z'],
      ['*/20 * * * *', BERLIN, '2025-03-30T00:30:00Z'],
      ['*/7 * * * * *', BERLIN, '2025-10-26T00:59:50Z'],
      ['5,50 * * * *', 'America/New_York', '2025-11-02T05:30:00Z'],
      ['0 0 L * *', 'Australia/Lord_Howe', '2025-04-05T10:00:00Z'],
      ['0 12 * * 5L', 'Asia/Kolkata', '2025-01-01T00:00:00Z'],
      ['15 3 29 2 *', 'UTC', '2025-01-01T00:00:00Z'],
    ])('%s in %s from %s', (expression, timeZone, from) => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(utc(from));
      const task = createTask(expression, () => {}, { timezone: timeZone });
      const theirs = task.getNextRuns(6).map((d) => d.getTime());
      void task.destroy();
      vi.useRealTimers();
      expect(fires(expression, timeZone, utc(from), 6).map(iso)).toEqual(theirs.map(iso));
    });
  });
});

describe('startSchedule on a ManualClock', () => {
  it('fires when the clock reaches each instant, with the scheduled instant, and not before', () => {
    const clock = new ManualClock(utc('2025-01-10T08:59:45Z'));
    const fired: string[] = [];
    const handle = startSchedule(parseSchedule('*/10 * * * * *', 'UTC'), clock, (at) => fired.push(iso(at)));
    clock.advance(4_000); // 08:59:49
    expect(fired).toEqual([]);
    clock.advance(1_000); // 08:59:50
    expect(fired).toEqual(['2025-01-10T08:59:50.000Z']);
    clock.advance(9_999);
    expect(fired).toHaveLength(1);
    clock.advance(1); // 09:00:00
    clock.advance(10_500); // 09:00:10.5
    expect(fired).toEqual(['2025-01-10T08:59:50.000Z', '2025-01-10T09:00:00.000Z', '2025-01-10T09:00:10.000Z']);
    handle.stop();
  });

  it('fires once for a jump over several instants (no catch-up burst), for the first of them', () => {
    const clock = new ManualClock(utc('2025-01-10T09:00:01Z'));
    const fired: number[] = [];
    startSchedule(parseSchedule('*/10 * * * * *', 'UTC'), clock, (at) => fired.push(at));
    clock.advance(60_000); // past six instants
    expect(fired.map(iso)).toEqual(['2025-01-10T09:00:10.000Z']);
    clock.advance(9_000); // 09:01:10
    expect(fired.map(iso)).toEqual(['2025-01-10T09:00:10.000Z', '2025-01-10T09:01:10.000Z']);
  });

  it('a daily 08:00 in Berlin fires once per local day over a week that crosses the spring change, hour by hour', () => {
    const clock = new ManualClock(utc('2025-03-27T00:00:00Z'));
    const fired: number[] = [];
    const handle = startSchedule(parseSchedule('0 8 * * *', BERLIN), clock, (at) => fired.push(at));
    for (let h = 0; h < 7 * 24; h++) clock.advance(3_600_000);
    handle.stop();
    expect(fired.map(berlin)).toEqual(['2025-03-27 08:00:00', '2025-03-28 08:00:00', '2025-03-29 08:00:00', '2025-03-30 08:00:00', '2025-03-31 08:00:00', '2025-04-01 08:00:00', '2025-04-02 08:00:00']);
  });

  it('stop: no fires after it, and other listeners of the clock are not affected', () => {
    const clock = new ManualClock(utc('2025-01-10T09:00:00Z'));
    const a: number[] = [];
    const b: number[] = [];
    const s = parseSchedule('* * * * * *', 'UTC');
    const ha = startSchedule(s, clock, (at) => a.push(at));
    startSchedule(s, clock, (at) => b.push(at));
    clock.advance(1_000);
    ha.stop();
    ha.stop(); // twice is harmless
    clock.advance(1_000);
    expect([a.length, b.length]).toEqual([1, 2]);
  });

  it('a clock set back fires at the instant after the new time', () => {
    const clock = new ManualClock(utc('2025-01-10T09:00:00Z'));
    const fired: string[] = [];
    startSchedule(parseSchedule('0 * * * *', 'UTC'), clock, (at) => fired.push(iso(at)));
    clock.set(utc('2025-01-10T07:30:00Z'));
    clock.set(utc('2025-01-10T08:00:00Z'));
    expect(fired).toEqual(['2025-01-10T08:00:00.000Z']);
  });
});

describe('startSchedule on the system clock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires from timers (driven here by fake timers), and stop clears them', () => {
    vi.useFakeTimers();
    vi.setSystemTime(utc('2025-01-10T09:00:00.250Z'));
    const fired: string[] = [];
    const handle = startSchedule(parseSchedule('* * * * * *', 'UTC'), { now: () => Date.now() }, (at) => fired.push(iso(at)));
    vi.advanceTimersByTime(749);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    vi.advanceTimersByTime(2_000);
    expect(fired).toEqual(['2025-01-10T09:00:01.000Z', '2025-01-10T09:00:02.000Z', '2025-01-10T09:00:03.000Z']);
    handle.stop();
    vi.advanceTimersByTime(5_000);
    expect(fired).toHaveLength(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('waits at most a minute at a time, so a far instant is still met after the wall clock jumps', () => {
    vi.useFakeTimers();
    vi.setSystemTime(utc('2025-01-10T09:00:00Z'));
    const fired: string[] = [];
    startSchedule(parseSchedule('0 3 * * *', 'UTC'), { now: () => Date.now() }, (at) => fired.push(iso(at)));
    // The wall clock jumps (NTP, a machine that slept): timers do not see it, the next wait does.
    vi.setSystemTime(utc('2025-01-11T03:00:00Z'));
    vi.advanceTimersByTime(60_000);
    expect(fired).toEqual(['2025-01-11T03:00:00.000Z']);
  });
});
