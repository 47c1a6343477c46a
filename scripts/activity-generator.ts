/**
 * Inserts realistic employee activity into PostgreSQL (`employee_activities` of streaming_db), at a
 * chosen rate: the TypeScript port of the seed's employee-activity-generator.
 *
 *   npx tsx scripts/activity-generator.ts                       # 5 rows/s until Ctrl-C
 *   npx tsx scripts/activity-generator.ts --rate 200 --count 10000 --seed 42
 *   npx tsx scripts/activity-generator.ts --schema bench_x --rate 0 --count 50000   # as fast as possible
 *
 * Each employee works in sessions: a login, then page views, clicks and downloads on the pages of
 * their department, then a logout. Durations follow the activity (page views seconds to minutes,
 * clicks a few seconds); the office IP is stable per employee, with some VPN addresses; timestamps
 * are the current UTC wall clock. Connection: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres),
 * PGPASSWORD, PGDATABASE (streaming_db). Employees are read from the table `employees`.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { mulberry32 } from '../runner/src/engine/seeded-random.ts';

export interface Employee {
  id: number;
  department: string;
}

export interface ActivityRow {
  employee_id: number;
  activity_type: 'login' | 'logout' | 'page_view' | 'click' | 'download';
  page_url: string;
  duration_seconds: number;
  ip_address: string;
  user_agent: string;
  /** UTC wall clock, `YYYY-MM-DD HH:MM:SS.ffffff`. */
  activity_timestamp: string;
}

const PAGES: Record<string, string[]> = {
  Engineering: ['/code-review', '/ci/pipelines', '/docs/architecture', '/jira/board', '/wiki/runbooks', '/grafana'],
  Marketing: ['/campaigns', '/analytics/traffic', '/cms/blog', '/social/schedule', '/brand/assets'],
  Sales: ['/crm/leads', '/crm/opportunities', '/quotes', '/reports/pipeline', '/calendar'],
  HR: ['/hr/candidates', '/hr/onboarding', '/hr/policies', '/payroll', '/calendar'],
  Finance: ['/finance/ledger', '/finance/invoices', '/reports/quarterly', '/expenses', '/payroll'],
};
const COMMON_PAGES = ['/dashboard', '/email', '/intranet/news', '/profile', '/search'];
const DOWNLOADS = ['/files/report.pdf', '/files/slides.pptx', '/files/data.csv', '/files/contract.docx'];
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
];

function wallClock(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '000');
}

interface Session {
  employee: Employee;
  remaining: number;
  ip: string;
  userAgent: string;
}

/**
 * An endless stream of activity rows: sessions of several employees interleave, each from login
 * to logout. Pure but for the random source and the clock it is given.
 */
export function activityStream(employees: readonly Employee[], random: () => number, sessions = 8): (nowMs: number) => ActivityRow {
  if (employees.length === 0) throw new Error('no employees: load init-scripts/02-employee-activity.sql first');
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const open: Session[] = [];
  const officeIp = (e: Employee) => `192.168.${(e.department.length * 7) % 250}.${(e.id % 250) + 2}`;
  const vpnIp = () => `10.${Math.floor(random() * 250)}.${Math.floor(random() * 250)}.${Math.floor(random() * 250) + 2}`;
  return (nowMs) => {
    const fresh = open.length < sessions && (open.length === 0 || random() < 0.2);
    if (fresh) {
      const employee = pick(employees);
      const session: Session = { employee, remaining: 3 + Math.floor(random() * 12), ip: random() < 0.85 ? officeIp(employee) : vpnIp(), userAgent: pick(USER_AGENTS) };
      open.push(session);
      return row(session, 'login', '/login', Math.floor(random() * 4), nowMs);
    }
    const index = Math.floor(random() * open.length);
    const s = open[index]!;
    if (s.remaining <= 0) {
      open.splice(index, 1);
      return row(s, 'logout', '/logout', Math.floor(random() * 3), nowMs);
    }
    s.remaining--;
    const r = random();
    const pages = PAGES[s.employee.department] ?? COMMON_PAGES;
    if (r < 0.55) {
      // Most views are short; a few are long reads (a long tail, as real dwell times have).
      const duration = random() < 0.7 ? 5 + Math.floor(random() * 60) : 60 + Math.floor(random() * 900);
      return row(s, 'page_view', random() < 0.7 ? pick(pages) : pick(COMMON_PAGES), duration, nowMs);
    }
    if (r < 0.9) return row(s, 'click', pick(pages), 1 + Math.floor(random() * 9), nowMs);
    return row(s, 'download', pick(DOWNLOADS), 5 + Math.floor(random() * 55), nowMs);
  };
}

function row(s: Session, type: ActivityRow['activity_type'], page: string, duration: number, nowMs: number): ActivityRow {
  return {
    employee_id: s.employee.id,
    activity_type: type,
    page_url: page,
    duration_seconds: duration,
    ip_address: s.ip,
    user_agent: s.userAgent,
    activity_timestamp: wallClock(nowMs),
  };
}

const COLUMNS: (keyof ActivityRow)[] = ['employee_id', 'activity_type', 'page_url', 'duration_seconds', 'ip_address', 'user_agent', 'activity_timestamp'];

/** Inserts rows with one multi-row INSERT (one transaction). */
export async function insertActivityRows(db: pg.Client, schema: string, rows: readonly ActivityRow[]): Promise<void> {
  if (rows.length === 0) return;
  const values: unknown[] = [];
  const tuples = rows.map((r) => `(${COLUMNS.map((c) => `$${values.push(r[c])}`).join(', ')})`);
  await db.query(`INSERT INTO "${schema.replace(/"/g, '""')}".employee_activities (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`, values);
}

export async function loadEmployees(db: pg.Client, schema: string): Promise<Employee[]> {
  const res = await db.query(`SELECT id, department FROM "${schema.replace(/"/g, '""')}".employees ORDER BY id`);
  return res.rows.map((r: { id: number; department: string }) => ({ id: Number(r.id), department: String(r.department) }));
}

export interface GeneratorOptions {
  /** Rows per second; 0 = as fast as the database takes them. */
  rate: number;
  /** Stop after this many rows (undefined: until stopped). */
  count?: number;
  seed: number;
  schema: string;
  /** Most rows per INSERT statement. */
  batch: number;
  signal?: AbortSignal;
}

/** Inserts activity until `count` rows or the signal; returns how many rows were inserted. */
export async function generateActivity(db: pg.Client, options: GeneratorOptions, onProgress?: (inserted: number) => void): Promise<number> {
  const next = activityStream(await loadEmployees(db, options.schema), mulberry32(options.seed));
  const started = Date.now();
  let inserted = 0;
  while (!options.signal?.aborted && (options.count === undefined || inserted < options.count)) {
    const left = options.count === undefined ? options.batch : Math.min(options.batch, options.count - inserted);
    // At a fixed rate, insert what is due now (at most a batch), then sleep until the next row is.
    const due = options.rate > 0 ? Math.min(left, Math.floor(((Date.now() - started) / 1000) * options.rate) - inserted) : left;
    if (due <= 0) {
      await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(1000 / options.rate))));
      continue;
    }
    const now = Date.now();
    await insertActivityRows(db, options.schema, Array.from({ length: due }, () => next(now)));
    inserted += due;
    onProgress?.(inserted);
  }
  return inserted;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '5' },
      count: { type: 'string' },
      seed: { type: 'string', default: String(Date.now() % 100000) },
      schema: { type: 'string', default: 'public' },
      batch: { type: 'string', default: '500' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npx tsx scripts/activity-generator.ts [--rate N/s (0 = max)] [--count N] [--seed N] [--schema public] [--batch 500]\n');
    return;
  }
  const db = new pg.Client({
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? 'postgres',
    password: process.env.PGPASSWORD,
    database: process.env.PGDATABASE ?? 'streaming_db',
  });
  await db.connect();
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const started = Date.now();
  let lastReport = 0;
  const options: GeneratorOptions = { rate: Number(values.rate), seed: Number(values.seed), schema: values.schema!, batch: Number(values.batch), signal: abort.signal };
  if (values.count !== undefined) options.count = Number(values.count);
  const total = await generateActivity(db, options, (n) => {
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      process.stderr.write(`activity-generator: ${n} rows inserted\n`);
    }
  });
  await db.end();
  const seconds = (Date.now() - started) / 1000;
  process.stderr.write(`activity-generator: ${total} rows in ${seconds.toFixed(1)} s (${Math.round(total / Math.max(seconds, 0.001))} rows/s)\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`activity-generator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
