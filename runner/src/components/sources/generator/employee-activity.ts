/**
 * The `employee-activity` scenario of the generator source: a simulated office whose employees log
 * in, browse department pages, click, download and log out, written to the seed's
 * `employee_activities` table and captured as Debezium 2.7 would capture it.
 *
 * Deterministic: everything derives from the seed (mulberry32) and the simulated clock, never from
 * the wall clock. Events come out in commit order, which is also activity-time order.
 */
import {
  encodeChange,
  encodeTombstone,
  tableSchemas,
  type EncodedEvent,
  type PgChange,
  type PgTable,
  type TableSchemas,
} from '../../../io/debezium/index.ts';

/** mulberry32: a tiny, fast, well-distributed 32-bit PRNG; the same seed gives the same stream. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed's table (pipeline-documentation.md, section 4), as Debezium's PostgreSQL connector describes it. */
export function employeeActivitiesTable(topicPrefix: string): PgTable {
  return {
    topicPrefix,
    schema: 'public',
    table: 'employee_activities',
    key: ['id'],
    columns: [
      // SERIAL: Debezium cannot evaluate nextval(), and writes the int default 0.
      { name: 'id', type: 'int4', optional: false, default: 0 },
      { name: 'employee_id', type: 'int4', optional: true },
      { name: 'activity_type', type: 'varchar', optional: false },
      { name: 'page_url', type: 'varchar', optional: true },
      { name: 'duration_seconds', type: 'int4', optional: true },
      { name: 'ip_address', type: 'inet', optional: true },
      { name: 'user_agent', type: 'text', optional: true },
      // DEFAULT CURRENT_TIMESTAMP: Debezium writes the default as epoch 0, so a NULL arrives as 0.
      { name: 'activity_timestamp', type: 'timestamp', optional: true, default: 0 },
    ],
  };
}

interface Department {
  name: string;
  pages: string[];
  files: string[];
  subnet: number;
}

const DEPARTMENTS: Department[] = [
  {
    name: 'Engineering',
    pages: ['/code/review', '/jira/board', '/docs/api', '/ci/pipelines', '/git/repositories', '/wiki/architecture', '/monitoring/grafana'],
    files: ['/files/design-doc.pdf', '/files/release-notes.md', '/files/build-logs.zip'],
    subnet: 10,
  },
  {
    name: 'Marketing',
    pages: ['/campaigns', '/analytics/dashboard', '/social/scheduler', '/brand/assets', '/crm/leads', '/seo/keywords'],
    files: ['/files/brand-guide.pdf', '/files/campaign-report.xlsx', '/files/logo-pack.zip'],
    subnet: 20,
  },
  {
    name: 'Sales',
    pages: ['/crm/opportunities', '/crm/accounts', '/quotes/new', '/reports/pipeline', '/contracts', '/pricing'],
    files: ['/files/price-list.xlsx', '/files/contract-template.docx', '/files/pitch-deck.pptx'],
    subnet: 30,
  },
  {
    name: 'HR',
    pages: ['/hr/employees', '/hr/recruiting', '/payroll', '/benefits', '/hr/reviews', '/hr/onboarding'],
    files: ['/files/handbook.pdf', '/files/payroll-export.csv', '/files/offer-letter.docx'],
    subnet: 40,
  },
  {
    name: 'Finance',
    pages: ['/finance/ledger', '/finance/invoices', '/expenses', '/reports/quarterly', '/budget', '/finance/audit'],
    files: ['/files/quarterly-report.xlsx', '/files/invoice-batch.pdf', '/files/budget-2025.xlsx'],
    subnet: 50,
  },
];

const COMMON_PAGES = ['/dashboard', '/email/inbox', '/calendar', '/intranet/news', '/search'];

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
];

export interface Employee {
  id: number;
  department: Department;
  userAgent: string;
  /** Last octet of the office workstation address. */
  host: number;
}

export interface EmployeeActivityOptions {
  seed: number;
  /** Simulated clock start, epoch ms. */
  startMs: number;
  employees: number;
  /** Debezium `topic.prefix`. */
  topicPrefix: string;
  /** Database name in the source block. */
  db: string;
  /** Share of inserts later corrected by an UPDATE (0..1). */
  updateRatio: number;
  /** Share of inserts later removed by a DELETE, each followed by a tombstone (0..1). */
  deleteRatio: number;
}

export const EMPLOYEE_ACTIVITY_DEFAULTS: Omit<EmployeeActivityOptions, 'seed' | 'startMs'> = {
  employees: 50,
  topicPrefix: 'employee-server',
  db: 'streaming_db',
  updateRatio: 0.02,
  deleteRatio: 0.005,
};

/** One simulated change event, ready to hand to the engine. */
export interface SimulatedEvent extends EncodedEvent {
  /** The activity row's id (the Kafka key): the generator partitions by it. */
  id: number;
  /** Kafka record timestamp: when the connector produced it, epoch ms. */
  timestampMs: number;
}

type Task =
  | { kind: 'session-start'; at: number; seq: number; employee: Employee }
  | { kind: 'activity'; at: number; seq: number; session: Session }
  | { kind: 'update'; at: number; seq: number; row: ActivityRow }
  | { kind: 'delete'; at: number; seq: number; row: ActivityRow };

interface Session {
  employee: Employee;
  ip: string;
  remaining: number;
  loggedIn: boolean;
}

interface ActivityRow {
  id: number;
  employee_id: number;
  activity_type: string;
  page_url: string;
  duration_seconds: number | null;
  ip_address: string;
  user_agent: string;
  /** Epoch µs of the wall clock read as UTC. */
  activity_timestamp: number;
}

/** A binary min-heap on (at, seq): equal times keep insertion order, so runs are reproducible. */
class TaskQueue {
  private readonly heap: Task[] = [];

  push(task: Task): void {
    const h = this.heap;
    h.push(task);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  pop(): Task | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Task, b: Task): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The simulator. `next()` returns events forever (bounded runs stop asking); a delete is followed
 * by its tombstone, as Debezium sends them with `tombstones.on.delete=true`.
 */
export class EmployeeActivitySimulator {
  readonly table: PgTable;
  readonly schemas: TableSchemas;
  private readonly random: () => number;
  private readonly queue = new TaskQueue();
  private readonly pending: SimulatedEvent[] = [];
  private seq = 0;
  private nextId = 1;
  private txId = 760;
  private lsn = 24_023_128;
  private lastCommitLsn: number | null = null;
  private lastCommitMicros = 0;

  constructor(private readonly options: EmployeeActivityOptions) {
    this.random = mulberry32(options.seed);
    this.table = employeeActivitiesTable(options.topicPrefix);
    this.schemas = tableSchemas(this.table);
    for (const employee of this.makeEmployees()) {
      this.schedule({ kind: 'session-start', at: this.firstSessionStart(options.startMs), seq: 0, employee });
    }
  }

  next(): SimulatedEvent {
    for (;;) {
      const ready = this.pending.shift();
      if (ready) return ready;
      const task = this.queue.pop();
      if (!task) throw new Error('employee-activity simulator ran out of work'); // every task reschedules; cannot happen
      this.run(task);
    }
  }

  /* ---------------------------------------------------------- randomness */

  private between(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  /** Log-normal-ish durations: most short, a long tail (median around `median` seconds). */
  private skewed(median: number, min: number, max: number): number {
    const u = Math.max(1e-9, this.random());
    const v = this.random();
    const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return Math.min(max, Math.max(min, Math.round(median * Math.exp(0.9 * normal))));
  }

  private makeEmployees(): Employee[] {
    const out: Employee[] = [];
    for (let id = 1; id <= this.options.employees; id++) {
      out.push({ id, department: this.pick(DEPARTMENTS), userAgent: this.pick(USER_AGENTS), host: this.between(10, 250) });
    }
    return out;
  }

  /* ---------------------------------------------------------- schedule */

  private schedule(task: Task): void {
    task.seq = this.seq++;
    this.queue.push(task);
  }

  private firstSessionStart(startMs: number): number {
    // Spread first logins over the first two hours so the stream starts busy but not all at once.
    return startMs + this.between(0, 2 * HOUR);
  }

  /** After a logout: a break within the working day, or tomorrow morning (weekends mostly off). */
  private nextSessionStart(after: number): number {
    const hour = new Date(after).getUTCHours();
    if (hour < 17 && this.random() < 0.8) return after + this.between(15 * 60_000, 2 * HOUR);
    let day = Math.floor(after / DAY) * DAY + DAY;
    while ([0, 6].includes(new Date(day).getUTCDay()) && this.random() < 0.9) day += DAY;
    const late = this.random() < 0.05 ? 10 * HOUR : 0; // a few start late and work into the evening
    return day + 8 * HOUR + late + this.between(0, 2 * HOUR);
  }

  private run(task: Task): void {
    switch (task.kind) {
      case 'session-start': {
        const remote = this.random() < 0.25;
        const e = task.employee;
        const ip = remote ? `172.16.${this.between(0, 31)}.${this.between(2, 254)}` : `10.20.${e.department.subnet}.${e.host}`;
        const session: Session = { employee: e, ip, remaining: this.between(4, 30), loggedIn: false };
        this.schedule({ kind: 'activity', at: task.at, seq: 0, session });
        return;
      }
      case 'activity':
        this.runActivity(task.at, task.session);
        return;
      case 'update': {
        // The page view's duration is corrected once the browser reports the real time on page.
        const row = { ...task.row, duration_seconds: (task.row.duration_seconds ?? 0) + this.between(5, 400) };
        this.emitChange('u', null, row, task.at);
        return;
      }
      case 'delete':
        this.emitChange('d', { id: task.row.id }, null, task.at);
        this.pending.push({ ...encodeTombstone(this.schemas, { id: task.row.id }), id: task.row.id, timestampMs: this.pending.at(-1)!.timestampMs });
        return;
    }
  }

  private runActivity(at: number, session: Session): void {
    const e = session.employee;
    let type: string;
    let url: string;
    let duration: number | null;
    if (!session.loggedIn) {
      session.loggedIn = true;
      type = 'login';
      url = '/login';
      duration = this.between(0, 4);
    } else if (session.remaining <= 0) {
      type = 'logout';
      url = '/logout';
      duration = 0;
    } else {
      session.remaining--;
      const r = this.random();
      if (r < 0.6) {
        type = 'page_view';
        url = this.random() < 0.7 ? this.pick(e.department.pages) : this.pick(COMMON_PAGES);
        duration = this.skewed(60, 2, 3600);
      } else if (r < 0.9) {
        type = 'click';
        url = this.pick(e.department.pages);
        duration = this.skewed(4, 0, 120);
      } else {
        type = 'download';
        url = this.pick(e.department.files);
        duration = this.skewed(20, 1, 900);
      }
      // Some clients never report a duration.
      if (this.random() < 0.01) duration = null;
    }
    const row: ActivityRow = {
      id: this.nextId++,
      employee_id: e.id,
      activity_type: type,
      page_url: url,
      duration_seconds: duration,
      ip_address: session.ip,
      user_agent: e.userAgent,
      activity_timestamp: at * 1000 + this.between(0, 999),
    };
    this.emitChange('c', null, row, at);
    if (type === 'page_view' && this.random() < this.options.updateRatio) {
      this.schedule({ kind: 'update', at: at + (duration ?? 30) * 1000 + this.between(100, 5000), seq: 0, row });
    }
    if (type !== 'login' && type !== 'logout' && this.random() < this.options.deleteRatio) {
      this.schedule({ kind: 'delete', at: at + this.between(60_000, 30 * 60_000), seq: 0, row });
    }
    if (type === 'logout') {
      this.schedule({ kind: 'session-start', at: this.nextSessionStart(at), seq: 0, employee: e });
    } else {
      const think = this.between(1, 25) * 1000 + this.between(0, 999);
      this.schedule({ kind: 'activity', at: at + (duration ?? 10) * 1000 + think, seq: 0, session });
    }
  }

  private emitChange(op: 'c' | 'u' | 'd', before: ActivityRow | { id: number } | null, after: ActivityRow | null, atMs: number): void {
    // Commit a few ms after the statement; the connector sees it a little later still.
    const commitMicros = Math.max(this.lastCommitMicros + 1, atMs * 1000 + this.between(300, 40_000));
    this.lastCommitMicros = commitMicros;
    const processedNanos = BigInt(commitMicros) * 1000n + BigInt(this.between(2_000_000, 250_000_000));
    this.txId += this.between(1, 3);
    const lsn = this.lsn + this.between(26, 80) * 8;
    const change: PgChange = {
      op,
      before: before as Record<string, unknown> | null,
      after: after as unknown as Record<string, unknown> | null,
      commitMicros,
      processedNanos,
      db: this.options.db,
      txId: this.txId,
      lsn,
      lastCommitLsn: this.lastCommitLsn === null ? null : lsn,
    };
    // Real 2.7 output: `sequence` is [null, lsn] for the first event streamed, then [lsn, lsn] for
    // single-statement transactions (see the probe fixture in the debezium encoder tests).
    this.lastCommitLsn = lsn;
    this.lsn = lsn + 56;
    const encoded = encodeChange(this.schemas, this.table, change);
    const id = (after ?? before)!.id;
    this.pending.push({ ...encoded, id, timestampMs: Number(processedNanos / 1_000_000n) });
  }
}
