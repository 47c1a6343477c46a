/**
 * The `employee-activity` scenario of the generator source: a simulated office whose employees log
 * in, browse department pages, click, download and log out, written to the seed's
 * `employee_activities` table and captured as Debezium 2.7 would capture it.
 *
 * Rows are made as PostgreSQL would send them (text values, via pgoutput) and encoded by the same
 * code as the postgres-cdc source, so the generator's events are the ones a real capture gives.
 *
 * Deterministic: everything derives from the seed (mulberry32) and the simulated clock, never from
 * the wall clock. Events come out in commit order, which is also activity-time order.
 */
import type { TableInfo } from '../../../io/postgres/catalog.ts';
import { mulberry32 } from '../../../engine/seeded-random.ts';
import { TimedQueue } from '../../../engine/timed-queue.ts';
import {
  captureTable,
  encodeKey,
  encodeRow,
  encodeValue,
  type CapturedTable,
  type ChangeFacts,
  type SchemaAndPayload,
  type TextRow,
} from '../../../io/postgres/change-events.ts';
import { timestampText } from '../../../io/postgres/debezium-types.ts';

/**
 * The seed's table (init-scripts/02-employee-activity.sql) exactly as PostgreSQL's catalog describes
 * it (type oids, typmods, NOT NULL, default expressions), which is all Debezium's schemas derive from.
 */
export function employeeActivitiesTable(): TableInfo {
  const int4 = { typeOid: 23, typeMod: -1, typeName: 'integer' };
  return {
    oid: 0, // no database, no relation oid (0 is PostgreSQL's InvalidOid)
    schema: 'public',
    table: 'employee_activities',
    replicaIdentity: 'd',
    primaryKey: ['id'],
    columns: [
      { name: 'id', ...int4, notNull: true, defaultExpr: "nextval('employee_activities_id_seq'::regclass)" },
      { name: 'employee_id', ...int4, notNull: false, defaultExpr: null },
      { name: 'activity_type', typeOid: 1043, typeMod: 54, typeName: 'character varying(50)', notNull: true, defaultExpr: null },
      { name: 'page_url', typeOid: 1043, typeMod: 204, typeName: 'character varying(200)', notNull: false, defaultExpr: null },
      { name: 'duration_seconds', ...int4, notNull: false, defaultExpr: null },
      { name: 'ip_address', typeOid: 869, typeMod: -1, typeName: 'inet', notNull: false, defaultExpr: null },
      { name: 'user_agent', typeOid: 25, typeMod: -1, typeName: 'text', notNull: false, defaultExpr: null },
      { name: 'activity_timestamp', typeOid: 1114, typeMod: -1, typeName: 'timestamp without time zone', notNull: false, defaultExpr: 'CURRENT_TIMESTAMP' },
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
export interface SimulatedEvent {
  key: SchemaAndPayload;
  /** Null for a tombstone. */
  value: SchemaAndPayload | null;
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

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The simulator. `next()` returns events forever (bounded runs stop asking); a delete is followed
 * by its tombstone, as Debezium sends them with `tombstones.on.delete=true`.
 */
export class EmployeeActivitySimulator {
  /** The captured table: its topic, Connect schemas and column codecs. */
  readonly table: CapturedTable;
  private readonly random: () => number;
  /** Equal times keep insertion order, so runs are reproducible. */
  private readonly queue = new TimedQueue<Task>();
  private readonly pending: SimulatedEvent[] = [];
  private seq = 0;
  private nextId = 1;
  private txId = 760;
  private lsn = 24_023_128;
  private lastCommitLsn: number | null = null;
  private lastCommitMicros = 0;

  constructor(private readonly options: EmployeeActivityOptions) {
    this.random = mulberry32(options.seed);
    const info = employeeActivitiesTable();
    this.table = captureTable(info, info.columns.map((c) => c.name), options.topicPrefix);
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
      case 'delete': {
        // The delete's tombstone (tombstones.on.delete=true): the same key, a null value.
        const { key, id, timestampMs } = this.emitChange('d', { id: task.row.id }, null, task.at);
        this.pending.push({ key, value: null, id, timestampMs });
        return;
      }
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

  /** The key of an encoded row; the table has a primary key, so there always is one. */
  private key(row: Record<string, unknown>): SchemaAndPayload {
    const key = encodeKey(this.table, row);
    if (!key) throw new Error(`${this.table.topic} has no primary key`); // employeeActivitiesTable() declares one
    return key;
  }

  /** A row as pgoutput sends it: text values in the table's column order, columns not given as NULL. */
  private textRow(values: Partial<Record<string, string | null>>): TextRow {
    return this.table.codecs.map((c) => values[c.column] ?? null);
  }

  private activityText(row: ActivityRow): TextRow {
    return this.textRow({
      id: String(row.id),
      employee_id: String(row.employee_id),
      activity_type: row.activity_type,
      page_url: row.page_url,
      duration_seconds: row.duration_seconds === null ? null : String(row.duration_seconds),
      ip_address: row.ip_address,
      user_agent: row.user_agent,
      activity_timestamp: timestampText(BigInt(row.activity_timestamp)),
    });
  }

  /**
   * Encodes one change and queues it. A delete's before image is the key alone, as under REPLICA
   * IDENTITY DEFAULT (pgoutput sends the other columns as NULL).
   */
  private emitChange(op: 'c' | 'u' | 'd', before: { id: number } | null, after: ActivityRow | null, atMs: number): SimulatedEvent {
    // Commit a few ms after the statement; the connector sees it a little later still.
    const commitMicros = Math.max(this.lastCommitMicros + 1, atMs * 1000 + this.between(300, 40_000));
    this.lastCommitMicros = commitMicros;
    const processedNanos = BigInt(commitMicros) * 1000n + BigInt(this.between(2_000_000, 250_000_000));
    this.txId += this.between(1, 3);
    const lsn = this.lsn + this.between(26, 80) * 8;
    const facts: ChangeFacts = {
      op,
      snapshot: 'false',
      db: this.options.db,
      topicPrefix: this.options.topicPrefix,
      txId: this.txId,
      lsn: BigInt(lsn),
      lastCommitLsn: this.lastCommitLsn === null ? null : BigInt(lsn),
      commitMicros: BigInt(commitMicros),
      processedNanos,
    };
    // Real 2.7 output: `sequence` is [null, lsn] for the first event streamed, then [lsn, lsn] for
    // single-statement transactions (see the real Debezium fixture in the io/postgres tests).
    this.lastCommitLsn = lsn;
    this.lsn = lsn + 56;
    const beforeRow = before === null ? null : encodeRow(this.table, this.textRow({ id: String(before.id) }));
    const afterRow = after === null ? null : encodeRow(this.table, this.activityText(after));
    const id = (after ?? before)!.id;
    const event: SimulatedEvent = {
      key: this.key((afterRow ?? beforeRow)!),
      value: encodeValue(this.table, facts, beforeRow, afterRow),
      id,
      timestampMs: Number(processedNanos / 1_000_000n),
    };
    this.pending.push(event);
    return event;
  }
}
