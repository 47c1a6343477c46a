/**
 * The department-join scenario for runner/test/integration/department-join.integration.test.ts:
 * employees and their activities written to PostgreSQL in separate commits (inserts, a change of
 * department, a delete, a re-insert under another department, an id that never exists), what a
 * versioned join and an hourly window per department must make of them, computed from the order of
 * the commits alone without any sluice code, and a reader of the output topics.
 */
import type pg from 'pg';
import { silentLogger } from '../../src/engine/logger.ts';
import { createGroupConsumer, readTopicsToEnd, type GroupConsumer, type ReadRecord } from '../../src/io/kafka/client.ts';
import { testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';

export const HOUR = 3_600_000;
/** pipelines/department-hourly.yaml's window lateness (the test's own specs use the same). */
export const LATENESS = 10 * 60_000;
/** The day the activities' `activity_timestamp` fall on (a Monday), UTC wall clock. */
const DAY = '2025-02-03';

export interface EmployeeRow {
  id: number;
  name: string;
  email: string;
  department: string;
}

export interface ActivityRow {
  employee_id: number;
  activity_type: string;
  page_url: string;
  duration_seconds: number;
  /** `HH:MM` on DAY. */
  at: string;
}

/** One transaction of the scenario, in commit order. */
export type Commit =
  | { kind: 'insert-employees'; rows: EmployeeRow[] }
  | { kind: 'update-department'; id: number; department: string }
  | { kind: 'delete-employee'; id: number }
  | { kind: 'activities'; rows: ActivityRow[] };

const act = (employee_id: number, activity_type: string, at: string, duration_seconds: number): ActivityRow => ({
  employee_id,
  activity_type,
  page_url: activity_type === 'download' ? '/files/report.pdf' : '/wiki/home',
  duration_seconds,
  at,
});

/**
 * The scenario, one transaction per entry. `activity_timestamp` climbs with the commits, so the
 * hourly window (on activity_timestamp) never sees a record out of order, while the join looks each
 * activity up at its commit time. The last activity (12:30) pushes the window's watermark to 12:20:
 * the hours 09, 10 and 11 close, 12 stays open.
 */
export const SCENARIO: readonly Commit[] = [
  // Employees, in two commits.
  {
    kind: 'insert-employees',
    rows: [
      { id: 1, name: 'Alice', email: 'alice@company.example', department: 'Engineering' },
      { id: 2, name: 'Bob', email: 'bob@company.example', department: 'Sales' },
      { id: 3, name: 'Carol', email: 'carol@company.example', department: 'HR' },
    ],
  },
  {
    kind: 'insert-employees',
    rows: [
      { id: 4, name: 'Dave', email: 'dave@company.example', department: 'Finance' },
      { id: 5, name: 'Eve', email: 'eve@company.example', department: 'Marketing' },
    ],
  },
  // Activities.
  { kind: 'activities', rows: [act(1, 'login', '09:00', 5), act(2, 'page_view', '09:05', 30), act(4, 'download', '09:10', 12)] },
  { kind: 'activities', rows: [act(3, 'page_view', '09:15', 40)] },
  { kind: 'activities', rows: [act(2, 'download', '09:20', 8), act(5, 'page_view', '09:25', 60)] },
  // Bob moves to Marketing: his later activities, in the same hour, count there.
  { kind: 'update-department', id: 2, department: 'Marketing' },
  { kind: 'activities', rows: [act(2, 'page_view', '09:45', 25)] },
  { kind: 'activities', rows: [act(2, 'login', '09:55', 3), act(1, 'page_view', '10:00', 50)] },
  { kind: 'activities', rows: [act(4, 'page_view', '10:05', 20)] },
  // Dave is deleted: his activities meanwhile find no row.
  { kind: 'delete-employee', id: 4 },
  { kind: 'activities', rows: [act(4, 'page_view', '10:10', 15)] },
  { kind: 'activities', rows: [act(4, 'download', '10:20', 9), act(3, 'logout', '10:25', 1)] },
  // Dave comes back, in Engineering.
  { kind: 'insert-employees', rows: [{ id: 4, name: 'Dave', email: 'dave.again@company.example', department: 'Engineering' }] },
  { kind: 'activities', rows: [act(4, 'page_view', '10:40', 33)] },
  { kind: 'activities', rows: [act(4, 'login', '11:00', 2), act(5, 'download', '11:05', 7), act(1, 'page_view', '11:10', 70)] },
  // An employee id that never exists.
  { kind: 'activities', rows: [act(99, 'login', '11:20', 1), act(99, 'page_view', '11:30', 10)] },
  // The pusher: closes 09, 10 and 11; its own hour stays open.
  { kind: 'activities', rows: [act(1, 'logout', '12:30', 4)] },
];

/** The tables the scenario writes, in `schema`: the seed's columns, without the foreign key (activities of unknown employees must be possible). */
export async function createScenarioTables(admin: pg.Client, schema: string): Promise<void> {
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.query(`CREATE TABLE "${schema}".employees (
    id integer PRIMARY KEY,
    name varchar(100) NOT NULL,
    email varchar(100) NOT NULL,
    department varchar(50) NOT NULL,
    created_at timestamp DEFAULT CURRENT_TIMESTAMP)`);
  await admin.query(`CREATE TABLE "${schema}".employee_activities (
    id serial PRIMARY KEY,
    employee_id integer,
    activity_type varchar(50) NOT NULL,
    page_url varchar(200),
    duration_seconds integer,
    ip_address inet,
    user_agent text,
    activity_timestamp timestamp DEFAULT CURRENT_TIMESTAMP)`);
  await admin.query(`ALTER TABLE "${schema}".employees REPLICA IDENTITY DEFAULT`);
  await admin.query(`ALTER TABLE "${schema}".employee_activities REPLICA IDENTITY DEFAULT`);
}

/** An activity as written, with the id PostgreSQL gave it and the index of its commit. */
export interface WrittenActivity extends ActivityRow {
  id: number;
  commit: number;
  /** `activity_timestamp`, epoch ms (UTC wall clock, as sluice reads a timestamp without zone). */
  time: number;
}

export interface WrittenScenario {
  commits: readonly Commit[];
  activities: WrittenActivity[];
}

/**
 * Performs the scenario in PostgreSQL, each entry one transaction (autocommit), in order. Commits
 * are at least `gapMs` apart, so no two fall in the same millisecond: the join compares commit
 * times in milliseconds (Debezium's source.ts_ms), and the order of the commits must be the order
 * of their times for "the last employee commit before the activity's commit" to be well defined.
 */
export async function performScenario(client: pg.Client, schema: string, commits: readonly Commit[] = SCENARIO, gapMs = 5): Promise<WrittenScenario> {
  const activities: WrittenActivity[] = [];
  const emp = `"${schema}".employees`;
  for (const [index, c] of commits.entries()) {
    if (index > 0) await new Promise((r) => setTimeout(r, gapMs));
    switch (c.kind) {
      case 'insert-employees': {
        const values: unknown[] = [];
        const tuples = c.rows.map((r) => `($${values.push(r.id)}, $${values.push(r.name)}, $${values.push(r.email)}, $${values.push(r.department)})`);
        await client.query(`INSERT INTO ${emp} (id, name, email, department) VALUES ${tuples.join(', ')}`, values);
        break;
      }
      case 'update-department':
        expectOne(await client.query(`UPDATE ${emp} SET department = $2 WHERE id = $1`, [c.id, c.department]), c);
        break;
      case 'delete-employee':
        expectOne(await client.query(`DELETE FROM ${emp} WHERE id = $1`, [c.id]), c);
        break;
      case 'activities': {
        const values: unknown[] = [];
        const tuples = c.rows.map(
          (r) =>
            `($${values.push(r.employee_id)}, $${values.push(r.activity_type)}, $${values.push(r.page_url)}, $${values.push(r.duration_seconds)}, ` +
            `'10.20.0.1', 'Mozilla/5.0', $${values.push(`${DAY} ${r.at}:00`)}::timestamp)`,
        );
        const res = await client.query<{ id: number }>(
          `INSERT INTO "${schema}".employee_activities (employee_id, activity_type, page_url, duration_seconds, ip_address, user_agent, activity_timestamp)
           VALUES ${tuples.join(', ')} RETURNING id`,
          values,
        );
        // RETURNING gives the rows in VALUES order for a plain multi-row INSERT.
        c.rows.forEach((r, i) => activities.push({ ...r, id: res.rows[i]!.id, commit: index, time: Date.parse(`${DAY}T${r.at}:00Z`) }));
        break;
      }
    }
  }
  return { commits, activities };
}

function expectOne(res: pg.QueryResult, what: Commit): void {
  if (res.rowCount !== 1) throw new Error(`scenario step ${JSON.stringify(what)} changed ${res.rowCount} rows`);
}

/* ------------------------------------------------------------------ the expectation */

export interface ExpectedJoin {
  /** Activity id -> the employee row (id, name, email, department) as of the last employee commit before the activity's commit, or null. */
  employeeOf: Map<number, EmployeeRow | null>;
  /** `department@window_start: ...` of every hour closed by the last activity, sorted. */
  summaries: string[];
  /** Hours with activity that stay open (not summarised). */
  openHours: string[];
}

/** What the pipeline must write, from the order of the commits alone. */
export function expectedOutputs(written: WrittenScenario): ExpectedJoin {
  const table = new Map<number, EmployeeRow>();
  const employeeOf = new Map<number, EmployeeRow | null>();
  for (const [index, c] of written.commits.entries()) {
    if (c.kind === 'insert-employees') for (const r of c.rows) table.set(r.id, { ...r });
    else if (c.kind === 'update-department') table.set(c.id, { ...table.get(c.id)!, department: c.department });
    else if (c.kind === 'delete-employee') table.delete(c.id);
    else for (const a of written.activities.filter((x) => x.commit === index)) employeeOf.set(a.id, table.has(a.employee_id) ? { ...table.get(a.employee_id)! } : null);
  }
  const watermark = Math.max(...written.activities.map((a) => a.time)) - LATENESS;
  return { employeeOf, ...summarise(written.activities, employeeOf, watermark) };
}

/**
 * The hourly summaries per department of activities joined as `employeeOf` says (no row:
 * "Unknown"): those of the hours that end at or before `watermark`, and the others (still open).
 */
export function summarise(activities: readonly WrittenActivity[], employeeOf: ReadonlyMap<number, EmployeeRow | null>, watermark: number): { summaries: string[]; openHours: string[] } {
  const groups = new Map<string, { dept: string; start: number; n: number; employees: Set<number>; downloads: number; total: number }>();
  for (const a of activities) {
    const row = employeeOf.get(a.id);
    if (row === undefined) throw new Error(`no expectation for activity ${a.id}`);
    const dept = row?.department ?? 'Unknown';
    const start = Math.floor(a.time / HOUR) * HOUR;
    const k = `${dept}@${start}`;
    const g = groups.get(k) ?? { dept, start, n: 0, employees: new Set<number>(), downloads: 0, total: 0 };
    g.n++;
    g.employees.add(a.employee_id);
    if (a.activity_type === 'download') g.downloads++;
    g.total += a.duration_seconds;
    groups.set(k, g);
  }
  const summaries: string[] = [];
  const openHours: string[] = [];
  for (const g of groups.values()) {
    const line = summaryLine(g.dept, g.start, g.start + HOUR, g.n, g.employees.size, g.downloads, g.total, g.total / g.n);
    if (g.start + HOUR <= watermark) summaries.push(line);
    else openHours.push(line);
  }
  return { summaries: summaries.sort(), openHours: openHours.sort() };
}

export function summaryLine(dept: string, start: number, end: number, n: number, employees: number, downloads: number, total: number, avg: number): string {
  return `${dept}@${new Date(start).toISOString()}..${new Date(end).toISOString()}: activities=${n} employees=${employees} downloads=${downloads} total=${total} avg=${Math.round(avg * 1e6) / 1e6}`;
}

/* ------------------------------------------------------------------ what sluice wrote */

export interface JoinedOutput {
  /** Activity id -> employee as joined (the fields EmployeeRow has), or null. */
  employeeOf: Map<number, EmployeeRow | null>;
  /** Joined records read (duplicates show as records > employeeOf.size). */
  records: number;
}

/** The joined activities: values of the activities-with-employee output. */
export function joinedOutput(values: readonly Record<string, unknown>[]): JoinedOutput {
  const employeeOf = new Map<number, EmployeeRow | null>();
  for (const v of values) {
    const e = v.employee as Record<string, unknown> | null | undefined;
    if (e === undefined) throw new Error(`joined activity ${JSON.stringify(v)} has no \`employee\` field`);
    employeeOf.set(Number(v.id), e === null ? null : { id: e.id as number, name: e.name as string, email: e.email as string, department: e.department as string });
  }
  return { employeeOf, records: values.length };
}

/** The summaries as `summaryLine`s, sorted. */
export function summaryLines(values: readonly Record<string, unknown>[]): string[] {
  return values
    .map((v) =>
      summaryLine(
        String(v.department),
        Date.parse(String(v.window_start)),
        Date.parse(String(v.window_end)),
        Number(v.activities),
        Number(v.employees),
        Number(v.downloads),
        Number(v.total_duration),
        Number(v.avg_duration),
      ),
    )
    .sort();
}

/** Activity id -> department name (null when no row), for messages that say which ones differ. */
export function departments(employeeOf: ReadonlyMap<number, EmployeeRow | null>): Record<number, string | null> {
  return Object.fromEntries([...employeeOf].sort(([a], [b]) => a - b).map(([id, e]) => [id, e?.department ?? null]));
}

/* ------------------------------------------------------------------ reading the topics */

/** Counts what arrives on some topics (read_committed), so a test knows when a run has written enough. */
export class TopicWatcher {
  private readonly seen = new Set<string>();
  readonly counts = new Map<string, number>();
  private consumer: GroupConsumer | undefined;
  constructor(private readonly topics: string[]) {}

  async start(): Promise<void> {
    this.consumer = createGroupConsumer(testConnection('department-join-watcher'), { groupId: uniqueName('department-join-watcher'), topics: this.topics, fromBeginning: true, concurrency: 4 }, silentLogger);
    await this.consumer.start({
      onBatch: async (b) => {
        for (const m of b.messages) {
          const at = `${b.topic}/${b.partition}/${m.offset}`;
          if (this.seen.has(at)) continue;
          this.seen.add(at);
          this.counts.set(b.topic, (this.counts.get(b.topic) ?? 0) + 1);
        }
      },
      onRebalancing: () => {},
      onAssignment: () => {},
      onCrash: () => {},
    });
  }

  count(topic: string): number {
    return this.counts.get(topic) ?? 0;
  }

  /** Until each topic holds at least its number of records. */
  async until(wanted: Record<string, number>, timeoutMs: number, describe: () => string = () => ''): Promise<void> {
    try {
      await waitFor('the outputs', () => Object.entries(wanted).every(([t, n]) => this.count(t) >= n), timeoutMs);
    } catch (err) {
      const got = Object.keys(wanted).map((t) => `${t}: ${this.count(t)}/${wanted[t]}`).join(', ');
      throw new Error(`${(err as Error).message} (${got}) ${describe()}`);
    }
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

/** Whole topics to their current end, committed records only: JSON values per topic. */
export async function readValues(topics: string[]): Promise<Map<string, { key: string | null; value: Record<string, unknown> | null }[]>> {
  const read: ReadRecord[] = [];
  await readTopicsToEnd(testConnection('department-join-check'), topics, (r) => read.push(r), silentLogger);
  const out = new Map<string, { key: string | null; value: Record<string, unknown> | null }[]>(topics.map((t) => [t, []]));
  for (const r of read.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))) {
    let value: Record<string, unknown> | null = null;
    if (r.value !== null) {
      const text = r.value.toString('utf8');
      try {
        value = JSON.parse(text) as Record<string, unknown>;
      } catch {
        value = { raw: text };
      }
    }
    out.get(r.topic)!.push({ key: r.key?.toString('utf8') ?? null, value });
  }
  return out;
}
