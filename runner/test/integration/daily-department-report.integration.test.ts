/**
 * pipelines/daily-department-report.yaml against a real PostgreSQL, through `sluice run`.
 *
 * A scratch database gets init-scripts/02-employee-activity.sql (employees, employee_activities,
 * department_daily_report) and employees in several departments with activities around yesterday
 * in Europe/Berlin: at the day's first and last instants (23:00Z/22:00Z of the UTC day before,
 * depending on daylight saving), one microsecond before and exactly at its end (both out), at the
 * UTC midnights either side (a report cut at UTC midnights would differ), downloads, NULL durations,
 * an activity of no employee, an employee who changed department since. The run is given a
 * schedule of every 2 seconds (6-field cron), so it reports several times; what it wrote to the
 * table and to the file is compared with a computation over the test's own rows in plain
 * JavaScript (not SQL). Midway the employees table is renamed away: that run fails, is logged, and
 * the next tick, after the table is back, succeeds in the same process. SIGINT then ends it with 0.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitWithin, jsonLogLines, poll, runSluice, type SluiceProcess, killLeftovers } from './sluice-process.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres' };
const database = `sluice_ddr_${randomBytes(4).toString('hex')}`;
const BERLIN = 'Europe/Berlin';
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

let admin: pg.Client;
let db: pg.Client;
let dir: string;
const runs: SluiceProcess[] = [];

/* ------------------------------------------------------------------ Berlin calendar, in JS only */

const berlinParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: BERLIN,
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

/** Berlin's wall clock at `ms`, as if it were UTC (epoch ms). */
function berlinWallClock(ms: number): number {
  const p = Object.fromEntries(berlinParts.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second)) + (ms % 1000);
}

/** `YYYY-MM-DD` of the Berlin calendar day `ms` falls on. */
function berlinDate(ms: number): string {
  return new Date(berlinWallClock(ms)).toISOString().slice(0, 10);
}

/** The instant (epoch ms) Berlin's clocks show 00:00 on `date` (no DST change happens at midnight in Berlin). */
function berlinMidnight(date: string): number {
  const wall = Date.parse(`${date}T00:00:00Z`);
  let guess = wall - (berlinWallClock(wall) - wall);
  guess = wall - (berlinWallClock(guess) - guess);
  if (berlinWallClock(guess) !== wall) throw new Error(`no Berlin midnight found for ${date}`);
  return guess;
}

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY).toISOString().slice(0, 10);
}

/* ------------------------------------------------------------------ the test's data */

/** An instant with microseconds: `ms` epoch milliseconds plus `us` (0..999). */
interface Instant {
  ms: number;
  us: number;
}

/** As activity_timestamp (timestamp without time zone) holds it: UTC wall-clock text, microseconds. */
function timestampText(t: Instant): string {
  return `${new Date(t.ms).toISOString().slice(0, 23).replace('T', ' ')}${String(t.us).padStart(3, '0')}`;
}

function micros(t: Instant): number {
  return t.ms * 1000 + t.us;
}

interface Employee {
  key: string;
  name: string;
  /** The department it is inserted with. */
  department: string;
  /** Where it is moved after its activities are written, if anywhere: the report uses the current one. */
  movesTo?: string;
  id?: number;
}

interface Activity {
  /** The employee's `key`, or null for an activity of nobody. */
  employee: string | null;
  type: 'login' | 'download' | 'page_view' | 'logout';
  duration: number | null;
  at: Instant;
  why: string;
}

interface ReportRow {
  day: string;
  department: string;
  activities: number;
  employees: number;
  downloads: number;
  total_duration: number;
  avg_duration: number | null;
}

const EMPLOYEES: Employee[] = [
  { key: 'ana', name: 'Ana Engineer', department: 'Engineering' },
  { key: 'ben', name: 'Ben Engineer', department: 'Engineering' },
  { key: 'cem', name: 'Cem Engineer', department: 'Engineering' },
  { key: 'dora', name: 'Dora Sales', department: 'Sales' },
  { key: 'emil', name: 'Emil Sales', department: 'Sales' },
  { key: 'fay', name: 'Fay Support', department: 'Support' },
  { key: 'gus', name: 'Gus Legal', department: 'Legal' },
  { key: 'hana', name: 'Hana Mover', department: 'Marketing', movesTo: 'Research' },
];

/** The activities, around the Berlin day [start, end). */
function activitiesAround(start: number, end: number, now: number): Activity[] {
  const at = (ms: number, us = 0): Instant => ({ ms, us });
  const utcMidnightAfterStart = Math.ceil(start / DAY) * DAY; // 00:00Z of the day, inside it (01:00 or 02:00 Berlin)
  return [
    { employee: 'ana', type: 'login', duration: 5, at: at(start), why: 'the first instant of the day' },
    { employee: 'ana', type: 'download', duration: 120, at: at(start + 30_000), why: 'in the first minute' },
    { employee: 'ben', type: 'download', duration: null, at: at(start + 59_999, 999), why: 'the last microsecond of the first minute, NULL duration' },
    { employee: 'cem', type: 'page_view', duration: 301, at: at(start + 12 * 60 * MINUTE), why: 'midday' },
    { employee: 'ben', type: 'download', duration: 45, at: at(end - MINUTE), why: 'the start of the last minute' },
    { employee: 'dora', type: 'download', duration: 7, at: at(end - 1, 999), why: 'the last microsecond of the day' },
    { employee: 'emil', type: 'login', duration: 1, at: at(utcMidnightAfterStart), why: 'UTC midnight, inside the Berlin day' },
    { employee: 'emil', type: 'download', duration: 12, at: at(start + 30 * MINUTE), why: 'before UTC midnight, the UTC day before (a cut at UTC midnights would miss it)' },
    { employee: 'dora', type: 'page_view', duration: 1000, at: at(start - 1, 999), why: 'one microsecond before the day (out)' },
    { employee: 'emil', type: 'download', duration: 2000, at: at(end), why: 'the first instant of the next day (out)' },
    { employee: 'ana', type: 'download', duration: 3000, at: at(end + 30 * MINUTE), why: 'the next Berlin day, still the same UTC day (out)' },
    { employee: 'fay', type: 'page_view', duration: null, at: at(start + 9 * 60 * MINUTE), why: 'NULL duration' },
    { employee: 'fay', type: 'download', duration: null, at: at(start + 10 * 60 * MINUTE), why: 'NULL duration: Support has no duration at all' },
    { employee: 'gus', type: 'download', duration: 9, at: at(start - 2 * DAY), why: 'two days before (out): Legal has nothing that day' },
    { employee: 'gus', type: 'login', duration: 9, at: at(now - MINUTE), why: 'today (out)' },
    { employee: 'hana', type: 'download', duration: 33, at: at(start + 15 * 60 * MINUTE), why: 'counted for her current department' },
    { employee: 'hana', type: 'logout', duration: 2, at: at(start + 16 * 60 * MINUTE), why: 'counted for her current department' },
    { employee: null, type: 'download', duration: 50, at: at(start + 11 * 60 * MINUTE), why: 'no employee: no department (the join drops it)' },
  ];
}

/** PostgreSQL's round(numeric, 1) of a positive mean (half away from zero), in integers. */
function roundedMean(sum: number, count: number): number {
  return Math.floor((20 * sum + count) / (2 * count)) / 10;
}

/** What the report must say, from the test's own rows: per current department of the employee, the activities of [start, end). */
function expectedReport(day: string, start: number, end: number, employees: Employee[], activities: Activity[]): ReportRow[] {
  const byKey = new Map(employees.map((e) => [e.key, e]));
  const groups = new Map<string, { count: number; who: Set<string>; downloads: number; sum: number; durations: number[] }>();
  for (const a of activities) {
    if (a.employee === null) continue;
    if (micros(a.at) < start * 1000 || micros(a.at) >= end * 1000) continue;
    const e = byKey.get(a.employee)!;
    const department = e.movesTo ?? e.department;
    const g = groups.get(department) ?? { count: 0, who: new Set<string>(), downloads: 0, sum: 0, durations: [] };
    g.count++;
    g.who.add(e.key);
    if (a.type === 'download') g.downloads++;
    if (a.duration !== null) {
      g.sum += a.duration;
      g.durations.push(a.duration);
    }
    groups.set(department, g);
  }
  return [...groups]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([department, g]) => ({
      day,
      department,
      activities: g.count,
      employees: g.who.size,
      downloads: g.downloads,
      total_duration: g.sum,
      avg_duration: g.durations.length === 0 ? null : roundedMean(g.sum, g.durations.length),
    }));
}

/* ------------------------------------------------------------------ helpers */

function logs(run: SluiceProcess): Record<string, unknown>[] {
  return jsonLogLines(run.stderr());
}

function doneRuns(run: SluiceProcess): Record<string, unknown>[] {
  return logs(run).filter((l) => l.msg === 'query done');
}

function failedRuns(run: SluiceProcess): Record<string, unknown>[] {
  return logs(run).filter((l) => l.msg === 'query run failed; the next tick runs it again');
}

function tail(run: SluiceProcess): string {
  return `; the run's log ends:\n${run.stderr().slice(-3000)}`;
}

async function waitForLog(run: SluiceProcess, what: string, found: () => Record<string, unknown> | undefined, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return poll(what, async () => {
    if (run.child.exitCode !== null || run.child.signalCode !== null) throw new Error(`the run ended while waiting for ${what}${tail(run)}`);
    return found();
  }, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}${tail(run)}`);
  });
}

async function tableRows(): Promise<(ReportRow & { reported_at: string })[]> {
  const res = await db.query<{ day: string; department: string; activities: string; employees: string; downloads: string; total_duration: string; avg_duration: number | null; reported_at: Date }>(
    `SELECT day::text AS day, department, activities, employees, downloads, total_duration, avg_duration, reported_at FROM department_daily_report ORDER BY day, department`,
  );
  return res.rows.map((r) => ({
    day: r.day,
    department: r.department,
    activities: Number(r.activities),
    employees: Number(r.employees),
    downloads: Number(r.downloads),
    total_duration: Number(r.total_duration),
    avg_duration: r.avg_duration,
    reported_at: r.reported_at.toISOString(),
  }));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-daily-report-'));
  admin = new pg.Client({ ...conn, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${database}"`);
  db = new pg.Client({ ...conn, database });
  await db.connect();
  // The script connects to streaming_db with psql's \connect: here its statements go to the scratch database.
  const script = readFileSync(join(repo, 'init-scripts/02-employee-activity.sql'), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('\\'))
    .join('\n');
  await db.query(script);
});

afterAll(async () => {
  killLeftovers(runs);
  await db?.end().catch(() => {});
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
});

describe('pipelines/daily-department-report.yaml on a schedule, against PostgreSQL', () => {
  it('reports yesterday (Berlin) per department at every tick, upserting one row per day and department and appending to the file; a failed run is logged and the next tick succeeds', async () => {
    const began = Date.now();

    // Yesterday in Berlin, from the database's clock, and its bounds, in JS. Within 2 minutes of
    // Berlin's midnight, yesterday could change during the run: the test waits until it is past.
    const dbClock = async () => (await db.query<{ now: Date }>('SELECT now() AS now')).rows[0]!.now.getTime();
    const nearMidnight = (ms: number) => berlinDate(ms + 2 * MINUTE) !== berlinDate(ms) || berlinDate(ms - 2 * MINUTE) !== berlinDate(ms);
    let dbNow = await dbClock();
    while (nearMidnight(dbNow)) {
      await new Promise((r) => setTimeout(r, 5_000));
      dbNow = await dbClock();
    }
    const day = addDays(berlinDate(dbNow), -1);
    const start = berlinMidnight(day);
    const end = berlinMidnight(addDays(day, 1));
    // The day is 23, 24 or 25 hours long, and starts at 23:00Z or 22:00Z of the UTC day before.
    expect([23, 24, 25]).toContain((end - start) / (60 * MINUTE));
    expect(new Date(start).toISOString()).toMatch(new RegExp(`^${addDays(day, -1)}T2[23]:00:00\\.000Z$`));

    // The employees and their activities.
    for (const e of EMPLOYEES) {
      const res = await db.query<{ id: number }>('INSERT INTO employees (name, email, department) VALUES ($1, $2, $3) RETURNING id', [e.name, `${e.key}@ddr.test`, e.department]);
      e.id = res.rows[0]!.id;
    }
    const activities = activitiesAround(start, end, dbNow);
    const ids = new Map(EMPLOYEES.map((e) => [e.key, e.id!]));
    for (const a of activities) {
      await db.query('INSERT INTO employee_activities (employee_id, activity_type, page_url, duration_seconds, activity_timestamp) VALUES ($1, $2, $3, $4, $5)', [
        a.employee === null ? null : ids.get(a.employee),
        a.type,
        `/ddr/${a.type}`,
        a.duration,
        timestampText(a.at),
      ]);
    }
    // The stored timestamps are the test's instants (no time zone conversion on the way in).
    const stored = (await db.query<{ t: string }>(`SELECT to_char(activity_timestamp, 'YYYY-MM-DD HH24:MI:SS.US') AS t FROM employee_activities ORDER BY id`)).rows.map((r) => r.t);
    expect(stored).toEqual(activities.map((a) => timestampText(a.at)));
    for (const e of EMPLOYEES.filter((x) => x.movesTo)) await db.query('UPDATE employees SET department = $1 WHERE id = $2', [e.movesTo, e.id]);

    const expected = expectedReport(day, start, end, EMPLOYEES, activities);
    // The expectation, checked by hand: which departments, and the edge cases' effect.
    expect(expected.map((r) => r.department)).toEqual(['Engineering', 'Research', 'Sales', 'Support']);
    expect(expected.find((r) => r.department === 'Engineering')).toEqual({ day, department: 'Engineering', activities: 5, employees: 3, downloads: 3, total_duration: 471, avg_duration: 117.8 });
    expect(expected.find((r) => r.department === 'Sales')).toEqual({ day, department: 'Sales', activities: 3, employees: 2, downloads: 2, total_duration: 20, avg_duration: 6.7 });
    expect(expected.find((r) => r.department === 'Support')).toEqual({ day, department: 'Support', activities: 2, employees: 1, downloads: 1, total_duration: 0, avg_duration: null });

    // A stale row of the same day (a run of long ago) that the upsert must overwrite; one of the day before, to stay.
    await db.query(`INSERT INTO department_daily_report VALUES ($1, 'Engineering', 99, 99, 99, 99, 9.9, '2000-01-01T00:00:00Z'), ($2, 'Engineering', 1, 1, 1, 1, 1, '2000-01-02T00:00:00Z')`, [day, addDays(day, -1)]);
    // A line already in the file: `mode: append` keeps it.
    const file = join(dir, 'daily-department-report.jsonl');
    writeFileSync(file, '{"earlier":"line"}\n');

    const args = [
      `sources.yesterday.postgres-query.database=${database}`,
      `sinks.report-table.postgres.database=${database}`,
      'sources.yesterday.postgres-query.schedule="*/2 * * * * *"',
    ].flatMap((s) => ['--set', s]);
    const run = runSluice(join(repo, 'pipelines/daily-department-report.yaml'), { cwd: dir, args, env: { REPORT_DIR: dir, PGHOST: conn.host, PGPORT: String(conn.port), PGUSER: conn.user } });
    runs.push(run);

    // Two runs that succeed.
    await waitForLog(run, 'two successful runs', () => doneRuns(run)[1]);
    // Neither ran at start (run_at_start: false): the first run is a tick's, numbered 1.
    expect(doneRuns(run).map((l) => l.run).slice(0, 2)).toEqual([1, 2]);

    // A run that waits 800 ms for a lock before it reads: its reported_at is still the tick's time,
    // when it started, not when its rows were made (the lock holds until 800 ms past the next tick).
    const nextTick = Math.ceil((Date.now() + 300) / 2000) * 2000;
    await db.query('BEGIN');
    await db.query('LOCK TABLE employee_activities IN ACCESS EXCLUSIVE MODE');
    await new Promise((r) => setTimeout(r, nextTick + 800 - Date.now()));
    await db.query('COMMIT');
    const slow = await waitForLog(run, 'the run that waited for the lock', () => doneRuns(run).find((l) => Number(l.ms) >= 600));
    expect(Math.abs(Number(slow.time) - Number(slow.ms) - nextTick), `the slow run started at its tick, ${new Date(nextTick).toISOString()}`).toBeLessThan(300);

    // The employees table goes away: the next run fails, the process goes on.
    await db.query('ALTER TABLE employees RENAME TO employees_away');
    const failure = await waitForLog(run, 'a failed run', () => failedRuns(run)[0]);
    expect(failure.sqlstate, `the failure logged${tail(run)}`).toBe('42P01');
    expect(String(failure.err)).toMatch(/relation "employees" does not exist/);
    const failedRun = Number(failure.run);
    await db.query('ALTER TABLE employees_away RENAME TO employees');
    // The next ticks succeed again: two more runs after the failed one.
    await waitForLog(run, 'two successful runs after the failed one', () => doneRuns(run).filter((l) => Number(l.run) > failedRun)[1]);
    expect(run.child.exitCode, 'still running after the failed run').toBeNull();

    // SIGINT right after a run (the next tick is 2 s away): a clean exit.
    process.kill(-run.child.pid!, 'SIGINT');
    const exit = await exitWithin(run, 30_000, 'the daily report run');
    expect(exit, `exit${tail(run)}`).toEqual({ code: 0, signal: null });

    const done = doneRuns(run);
    const failed = failedRuns(run);
    expect(done.length + failed.length, 'runs, each succeeded or failed').toBe(Math.max(...[...done, ...failed].map((l) => Number(l.run))));
    expect(failed.length, 'failed runs').toBeGreaterThanOrEqual(1);
    expect(failed.every((l) => l.sqlstate === '42P01')).toBe(true);
    expect(done.length, 'successful runs').toBeGreaterThanOrEqual(5);
    expect(done.filter((l) => Number(l.ms) >= 600), 'runs that waited for the lock').toEqual([slow]);
    for (const l of done) expect(l.rows, `rows of run ${String(l.run)}`).toBe(expected.length);
    // Every run a tick's: no run was skipped for overlapping.
    expect(logs(run).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('query run still going'))).toEqual([]);

    // The file: the earlier line, then one line per department per successful run, in runs' order.
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({ earlier: 'line' });
    const reported = lines.slice(1);
    expect(reported).toHaveLength(done.length * expected.length);
    const perRun: Record<string, unknown>[][] = [];
    for (let i = 0; i < reported.length; i += expected.length) perRun.push(reported.slice(i, i + expected.length));
    for (const [i, group] of perRun.entries()) {
      const at = group[0]!.reported_at as string;
      expect(group.map((l) => l.reported_at), `run ${i + 1}: one reported_at`).toEqual(expected.map(() => at));
      expect(
        group.map(({ reported_at: _, ...rest }) => rest),
        `run ${i + 1}: the file's lines`,
      ).toEqual(expected);
      // reported_at is when that run started: the run's log says when it ended and how long it took.
      const log = done[i]!;
      const startedAt = Number(log.time) - Number(log.ms);
      expect(Math.abs(Date.parse(at) - startedAt), `run ${String(log.run)}: reported_at ${at} vs started ~${new Date(startedAt).toISOString()}`).toBeLessThanOrEqual(25);
      if (i > 0) expect(Date.parse(at), 'runs in order, each its own start').toBeGreaterThan(Date.parse(perRun[i - 1]![0]!.reported_at as string));
      if (log.run === slow.run) expect(Date.parse(at), 'the slow run: reported_at is its start, not when its rows came').toBeLessThanOrEqual(Number(log.time) - 600);
    }

    // The table: one row per department for the day (the stale one overwritten), each with the
    // latest run's start; the day before untouched.
    const latest = perRun[perRun.length - 1]![0]!.reported_at as string;
    const rows = await tableRows();
    expect(rows.filter((r) => r.day !== day)).toEqual([{ day: addDays(day, -1), department: 'Engineering', activities: 1, employees: 1, downloads: 1, total_duration: 1, avg_duration: 1, reported_at: '2000-01-02T00:00:00.000Z' }]);
    expect(rows.filter((r) => r.day === day)).toEqual(expected.map((r) => ({ ...r, reported_at: latest })));

    console.info(`daily-department-report: ${done.length} runs, ${failed.length} failed, ${Date.now() - began} ms`);
    // The suite's 120 s, and up to 4 minutes of waiting out Berlin's midnight.
  }, 360_000);
});
