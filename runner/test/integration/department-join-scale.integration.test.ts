/**
 * `sluice run pipelines/department-hourly.yaml` (the spec as shipped; topics, group and, for the
 * scale-out, the source's session timeout and client id given with --set) on Debezium change
 * events produced straight into Kafka: the same envelopes Debezium 2.7's PostgreSQL connector
 * writes (JsonConverter with schemas), made by the code the postgres-cdc source encodes with, with
 * commit times (`source.ts_ms`, `source.ts_us`) chosen here, so the order of the database's commits
 * is known without a database.
 *
 * 1. New hires, live: after the employees topic has been quiet for longer than the join's default
 *    `idle` (10 s), 20 times a new employee's insert and, a few microseconds to ms later by commit
 *    time, that employee's first activity. Some of the activities are written to Kafka before the
 *    employee (acknowledged before the employee is even sent, or first in one produce request):
 *    Debezium's producer may deliver the two topics in either order within a short time. Every
 *    activity must find its new employee (the race that used to lose about 2 in 10), and the join
 *    must not log a table change that came after it had answered for its time.
 *
 * 2. Scale-out with a join: a 4-partition activities topic holding ~20,000 activities over five
 *    hours, ~50 employees of whom several move to another department mid-way (commit times
 *    interleaved with the activities', some within a millisecond of an activity of the same
 *    employee), one deleted and inserted again. Two processes in one group drain it (60% of it is
 *    there before they start, the rest is produced once both hold tasks and output appears); then
 *    one is killed (kill -9, its whole process group) and a third started. Compared,
 *    read_committed, with what a brute force over the employees' history says (no sluice code):
 *    every activity joined exactly once with the department it had at its commit time, and every
 *    (department, hour) summarised exactly once with the right count, distinct employees,
 *    downloads, total and average duration.
 *
 * DEPARTMENT_JOIN_SCALE_SET adds --set overrides to every run (comma-separated), e.g.
 * `steps.with-employee.join.mode=latest` to see both cases fail.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Before anything that could load kafkajs: client.ts fixes kafkajs's read_committed filter, which readValues relies on.
import { createProducer, type KafkaAdmin, type KafkaProducer, type ProducedMessage } from '../../src/io/kafka/client.ts';
import { employeeActivitiesTable } from '../../src/components/sources/generator/employee-activity.ts';
import { stringifyJson } from '../../src/engine/json.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';
import type { TableInfo } from '../../src/io/postgres/catalog.ts';
import { captureTable, encodeKey, encodeRow, encodeValue, type CapturedTable, type Row } from '../../src/io/postgres/change-events.ts';
import { timestampText } from '../../src/io/postgres/debezium-types.ts';
import { openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import { HOUR, LATENESS, TopicWatcher, readValues } from './department-join-scenario.ts';
import { exitWithin, jsonLogLines, runSluice, type SluiceProcess } from './sluice-process.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SPEC = join(repo, 'pipelines/department-hourly.yaml');
/** The join's default `idle` (the spec sets none). */
const JOIN_IDLE_MS = 10_000;
const EXTRA_SETS = (process.env.DEPARTMENT_JOIN_SCALE_SET ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '');

/* ------------------------------------------------------------------ Debezium's events */

const PREFIX = 'employee-server';

/** The employees table as PostgreSQL's catalog describes it (init-scripts), which is all Debezium's schemas derive from. */
const EMPLOYEES_TABLE: TableInfo = {
  oid: 0,
  schema: 'public',
  table: 'employees',
  replicaIdentity: 'd',
  primaryKey: ['id'],
  columns: [
    { name: 'id', typeOid: 23, typeMod: -1, typeName: 'integer', notNull: true, defaultExpr: "nextval('employees_id_seq'::regclass)" },
    { name: 'name', typeOid: 1043, typeMod: 104, typeName: 'character varying(100)', notNull: true, defaultExpr: null },
    { name: 'email', typeOid: 1043, typeMod: 104, typeName: 'character varying(100)', notNull: true, defaultExpr: null },
    { name: 'department', typeOid: 1043, typeMod: 54, typeName: 'character varying(50)', notNull: true, defaultExpr: null },
    { name: 'created_at', typeOid: 1114, typeMod: -1, typeName: 'timestamp without time zone', notNull: false, defaultExpr: 'CURRENT_TIMESTAMP' },
  ],
};

interface Employee {
  id: number;
  name: string;
  email: string;
  department: string;
}

interface Activity {
  id: number;
  employee_id: number;
  activity_type: string;
  page_url: string;
  duration_seconds: number | null;
  /** `activity_timestamp`, epoch µs (a timestamp without zone, read as UTC). */
  atMicros: number;
  /** The commit's `source.ts_us`. */
  commitMicros: number;
}

/**
 * One database's commits on both tables, encoded as Debezium writes them: a key and an envelope
 * with `op`, before/after images and the source block (`ts_ms`, `ts_us`: the commit time given),
 * a tombstone after each delete. Transaction ids and LSNs climb with the commits.
 */
class Capture {
  private readonly employees: CapturedTable = captureTable(EMPLOYEES_TABLE, EMPLOYEES_TABLE.columns.map((c) => c.name), PREFIX);
  private readonly activities: CapturedTable;
  private txId = 900;
  private lsn = 30_000_000n;
  private lastCommitLsn: bigint | null = null;

  constructor(private readonly topics: { employees: string; activities: string }) {
    const info = employeeActivitiesTable();
    this.activities = captureTable(info, info.columns.map((c) => c.name), PREFIX);
  }

  /** A snapshot read (`op: r`; its commit time is the snapshot's), an insert, an update (to `e`), or a delete (of `e.id`). */
  employee(op: 'r' | 'c' | 'u' | 'd', e: Employee, commitMicros: number, snapshot = 'false'): ProducedMessage[] {
    const text = (values: Record<string, string | null>) => this.employees.codecs.map((c) => values[c.column] ?? null);
    const full = text({ id: String(e.id), name: e.name, email: e.email, department: e.department, created_at: timestampText(BigInt(Date.parse('2024-03-01T09:00:00Z')) * 1000n) });
    const row = encodeRow(this.employees, full);
    // REPLICA IDENTITY DEFAULT: an update has no before image, a delete's holds the key alone.
    const before = op === 'd' ? encodeRow(this.employees, text({ id: String(e.id) })) : null;
    return this.change(this.employees, this.topics.employees, op, snapshot, before, op === 'd' ? null : row, commitMicros);
  }

  activity(op: 'c' | 'u' | 'd', a: Activity, commitMicros: number, partition: number): ProducedMessage[] {
    const text = (values: Record<string, string | null>) => this.activities.codecs.map((c) => values[c.column] ?? null);
    const row = encodeRow(
      this.activities,
      text({
        id: String(a.id),
        employee_id: String(a.employee_id),
        activity_type: a.activity_type,
        page_url: a.page_url,
        duration_seconds: a.duration_seconds === null ? null : String(a.duration_seconds),
        ip_address: `10.20.${10 + (a.employee_id % 50)}.${10 + (a.employee_id % 200)}`,
        user_agent: 'Mozilla/5.0',
        activity_timestamp: timestampText(BigInt(a.atMicros)),
      }),
    );
    const before = op === 'd' ? encodeRow(this.activities, text({ id: String(a.id) })) : null;
    return this.change(this.activities, this.topics.activities, op, 'false', before, op === 'd' ? null : row, commitMicros).map((m) => ({ ...m, partition }));
  }

  private change(table: CapturedTable, topic: string, op: 'r' | 'c' | 'u' | 'd', snapshot: string, before: Row | null, after: Row | null, commitMicros: number): ProducedMessage[] {
    this.txId += 1;
    const lsn = this.lsn + 312n;
    this.lsn = lsn + 56n;
    const value = encodeValue(
      table,
      {
        op,
        snapshot,
        db: 'streaming_db',
        topicPrefix: PREFIX,
        txId: this.txId,
        lsn,
        lastCommitLsn: this.lastCommitLsn,
        commitMicros: BigInt(commitMicros),
        // The connector sees the commit a few ms later.
        processedNanos: BigInt(commitMicros) * 1000n + 7_000_000n,
      },
      before,
      after,
    );
    this.lastCommitLsn = lsn;
    const key = stringifyJson(encodeKey(table, (after ?? before)!));
    const out: ProducedMessage[] = [{ topic, key, value: stringifyJson(value) }];
    if (op === 'd') out.push({ topic, key, value: null }); // tombstones.on.delete
    return out;
  }
}

/* ------------------------------------------------------------------ runs and topics */

let kafka: KafkaAdmin;
let dir: string;
const runs: SluiceProcess[] = [];
const createdTopics: string[] = [];
const groups: string[] = [];

interface Topics {
  activities: string;
  employees: string;
  joined: string;
  summaries: string;
  dead: string;
}

async function makeTopics(label: string, activityPartitions: number): Promise<Topics> {
  const t = {
    activities: uniqueName(`djs-${label}-activities`),
    employees: uniqueName(`djs-${label}-employees`),
    joined: uniqueName(`djs-${label}-joined`),
    summaries: uniqueName(`djs-${label}-summaries`),
    dead: uniqueName(`djs-${label}-dead`),
  };
  createdTopics.push(...Object.values(t));
  // Retention off: the events carry commit times of long ago.
  await kafka.createTopics(Object.values(t).map((topic) => ({ topic, partitions: topic === t.activities ? activityPartitions : 1, configs: { 'retention.ms': '-1' } })));
  return t;
}

/** `sluice run pipelines/department-hourly.yaml` on `topics`, in consumer group (and application id) `group`. */
function startPipeline(topics: Topics, group: string, extra: string[] = []): SluiceProcess {
  const sets = [
    `sources.activities.kafka.topic=${topics.activities}`,
    `sources.employee-changes.kafka.topic=${topics.employees}`,
    `sinks.activities-with-employee.kafka.topic=${topics.joined}`,
    `sinks.department-hourly.kafka.topic=${topics.summaries}`,
    `sinks.dead-letters.kafka.topic=${topics.dead}`,
    ...extra,
    ...EXTRA_SETS,
  ].flatMap((s) => ['--set', s]);
  const run = runSluice(SPEC, { cwd: dir, args: sets, env: { KAFKA_BROKERS: testBrokers().join(','), SLUICE_GROUP: group } });
  runs.push(run);
  return run;
}

function alive(run: SluiceProcess): boolean {
  return run.child.exitCode === null && run.child.signalCode === null;
}

function killGroup(run: SluiceProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-run.child.pid!, signal);
  } catch {
    // Gone meanwhile.
  }
}

/** SIGINT, and a clean exit 0. */
async function stop(run: SluiceProcess, what: string): Promise<void> {
  killGroup(run, 'SIGINT');
  const exit = await exitWithin(run, 60_000, what);
  expect(exit, `${what} exit; its log ends:\n${run.stderr().slice(-3000)}`).toEqual({ code: 0, signal: null });
}

/** Throws, with its log, when a process exited on its own. */
function assertRunning(list: readonly SluiceProcess[]): void {
  for (const [i, r] of list.entries()) {
    if (!alive(r)) throw new Error(`process #${i + 1} exited (${r.child.exitCode ?? r.child.signalCode}); its log ends:\n${r.stderr().slice(-3000)}`);
  }
}

/** The join's warnings that a table change came for a time it had already answered. */
function lateTableChanges(run: SluiceProcess): Record<string, unknown>[] {
  return jsonLogLines(run.stderr()).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('table changes arrived for a time the join has already answered'));
}

/** The tasks a process holds now at `stage`: its last `tasks assigned` or `tasks revoked` line lists them. */
function tasksHeld(run: SluiceProcess, stage: string): string[] {
  const last = jsonLogLines(run.stderr())
    .filter((l) => (l.msg === 'tasks assigned' || l.msg === 'tasks revoked') && String(l.stage) === stage)
    .at(-1);
  return Array.isArray(last?.tasks) ? last.tasks.map(String) : [];
}

function keepLogs(name: string, list: readonly SluiceProcess[]): string {
  return list
    .map((r, i) => {
      const file = join(dir, `${name}-${i + 1}.log`);
      writeFileSync(file, r.stderr());
      return file;
    })
    .join(', ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A joined record's employee, as the comparison sees it. */
function employeeOf(v: Record<string, unknown>): Employee | null {
  const e = v.employee as Record<string, unknown> | null | undefined;
  if (e === undefined) throw new Error(`joined activity ${JSON.stringify(v)} has no \`employee\` field`);
  return e === null ? null : { id: e.id as number, name: e.name as string, email: e.email as string, department: e.department as string };
}

beforeAll(async () => {
  kafka = await openAdmin();
  dir = mkdtempSync(join(tmpdir(), 'sluice-department-join-scale-'));
});

afterAll(async () => {
  for (const r of runs) if (alive(r)) killGroup(r, 'SIGKILL');
  if (kafka) {
    // The topics made here and each application's state topics (checkpoints, changelogs, repartition).
    const state = (await kafka.listTopics().catch(() => [] as string[])).filter((t) => groups.some((g) => t.startsWith(`${g}-`)));
    await kafka.deleteTopics([...createdTopics, ...state]).catch(() => {});
    await kafka.close();
  }
});

/* ------------------------------------------------------------------ 1. new hires, live */

describe('new hires, live: an activity committed just after its new employee finds the employee, in whichever order the two topics got them', () => {
  const HIRES = 20;
  /** Iterations that come after another quiet period longer than the join's default idle (the first one after the initial quiet). */
  const LONG_QUIET_BEFORE = new Set([0, 9]);
  type Order = 'activity acknowledged first' | 'employee first' | 'one request, activity first';
  const orderOf = (i: number): Order => (['activity acknowledged first', 'employee first', 'one request, activity first'] as const)[i % 3]!;

  it('every one of 20 new employees\' first activities gets the new department; no late table change', async () => {
    const started = Date.now();
    const topics = await makeTopics('hires', 1);
    const group = uniqueName('djs-hires');
    groups.push(group);
    const capture = new Capture(topics);
    const producer: KafkaProducer = createProducer(testConnection('djs-hires-producer'), {}, silentLogger);
    const random = mulberry32(7);
    let lastCommit = 0;
    /** A commit time (µs) after every earlier one, at least `minGap` µs later, and not before now. */
    const commitAfter = (minGap: number, spread: number) => (lastCommit = Math.max(lastCommit + minGap, Date.now() * 1000) + Math.floor(random() * spread));
    let activityId = 0;
    const activity = (employee: number, commitMicros: number): Activity => ({
      id: ++activityId,
      employee_id: employee,
      activity_type: 'login',
      page_url: '/login',
      duration_seconds: 1 + (activityId % 5),
      atMicros: commitMicros - 150, // the statement ran a moment before its commit
      commitMicros,
    });

    const snapshot: Employee[] = ['Engineering', 'Sales', 'HR', 'Finance'].map((department, i) => ({ id: i + 1, name: `Staff ${i + 1}`, email: `staff${i + 1}@company.example`, department }));
    const snapshotAt = commitAfter(1, 1);
    const expected = new Map<number, { department: string; employee: number; order: Order | 'warm-up' }>();
    const produced: Order[] = [];

    const run = startPipeline(topics, group);
    const watcher = new TopicWatcher([topics.joined]);
    await watcher.start();
    try {
      // The initial snapshot of the employees, then one activity to see the run join at all.
      await producer.send(snapshot.flatMap((e, i) => capture.employee('r', e, snapshotAt, i === 0 ? 'first' : i === snapshot.length - 1 ? 'last' : 'true')));
      const warm = activity(1, commitAfter(1_000, 1_000));
      await producer.send(capture.activity('c', warm, warm.commitMicros, 0));
      expected.set(warm.id, { department: 'Engineering', employee: 1, order: 'warm-up' });
      await watcher.until({ [topics.joined]: 1 }, 90_000, () => `; the run's log ends:\n${run.stderr().slice(-3000)}`);
      assertRunning([run]);

      for (let i = 0; i < HIRES; i++) {
        // Quiet: the employees topic gets nothing for longer than the join's idle (before the first
        // hire, since the snapshot was read), or a short while (0.3-1.5 s, so the hires fall at
        // every phase of the source's end-offset polls, every 500 ms).
        await sleep(LONG_QUIET_BEFORE.has(i) ? JOIN_IDLE_MS + 1_500 : 300 + Math.floor(random() * 1_200));
        const hire: Employee = { id: 100 + i, name: `New Hire ${i + 1}`, email: `hire${i + 1}@company.example`, department: `Onboarding-${String(i + 1).padStart(2, '0')}` };
        const employeeCommit = commitAfter(1, 1);
        // Committed after the employee: in the same millisecond, or up to 3 ms later.
        const first = activity(hire.id, commitAfter(1, 3_000));
        const employeeMessages = capture.employee('c', hire, employeeCommit);
        const activityMessages = capture.activity('c', first, first.commitMicros, 0);
        const order = orderOf(i);
        expected.set(first.id, { department: hire.department, employee: hire.id, order });
        produced.push(order);
        if (order === 'activity acknowledged first') {
          await producer.send(activityMessages);
          await producer.send(employeeMessages);
        } else if (order === 'employee first') {
          await producer.send(employeeMessages);
          await producer.send(activityMessages);
        } else {
          await producer.send([...activityMessages, ...employeeMessages]);
        }
      }
      const lastProduced = Date.now();
      await watcher.until({ [topics.joined]: expected.size }, 60_000, () => `; the run's log ends:\n${run.stderr().slice(-3000)}`);
      const allJoinedAfter = Date.now() - lastProduced;
      // A moment for anything that should not come (a record written twice).
      await sleep(2_000);
      assertRunning([run]);

      const read = await readValues([topics.joined, topics.dead]);
      expect(read.get(topics.dead)!.map((r) => r.value), 'dead letters (errors and late records of every step)').toEqual([]);
      const joined = read.get(topics.joined)!;
      const got = new Map<number, Employee | null>();
      for (const r of joined) {
        const v = r.value!;
        expect(r.key, `key of joined activity ${String(v.id)}`).toBe(String(v.employee_id));
        expect(got.has(Number(v.id)), `activity ${String(v.id)} joined twice`).toBe(false);
        got.set(Number(v.id), employeeOf(v));
      }
      const wrong = [...expected]
        .filter(([id, want]) => got.get(id)?.department !== want.department || got.get(id)?.id !== want.employee)
        .map(([id, want]) => `activity ${id} of employee ${want.employee} (${want.order}): got ${got.has(id) ? JSON.stringify(got.get(id)) : 'nothing'}, want ${want.department}`);
      expect.soft(wrong, `${wrong.length} of ${HIRES} new employees' first activities without their department`).toEqual([]);
      expect.soft(joined.length, 'joined records (one per activity)').toBe(expected.size);
      expect.soft(lateTableChanges(run), 'table changes the join received after answering for their time').toEqual([]);
      await stop(run, 'the new-hires run');
      console.info(
        `new hires: ${HIRES} new employees (${[...new Set(produced)].map((o) => `${produced.filter((p) => p === o).length} ${o}`).join(', ')}), ` +
          `${expected.size - wrong.length} of ${expected.size} activities joined with their department; the last ${allJoinedAfter} ms after it was produced; ${Date.now() - started} ms in all`,
      );
    } finally {
      await watcher.stop();
      await producer.close();
      if (alive(run)) killGroup(run, 'SIGKILL');
    }
  }, 240_000);
});

/* ------------------------------------------------------------------ 2. scale-out with a join */

describe('scale-out with a join: two processes drain a 4-partition backlog, one is killed -9 and a third joins', () => {
  const PARTITIONS = 4;
  const ACTIVITIES = Number(process.env.DEPARTMENT_JOIN_SCALE_ACTIVITIES ?? 20_000);
  const EMPLOYEES = 50;
  const START = Date.parse('2025-04-07T08:00:00Z'); // a Monday
  const SPAN = 5 * HOUR;
  const DEPARTMENTS = ['Engineering', 'Marketing', 'Sales', 'HR', 'Finance'];

  /** The employees' history: every version, from its commit time (µs; a snapshot read from 0). */
  interface Version {
    id: number;
    from: number;
    row: Employee | null;
  }

  interface Backlog {
    activityMessages: ProducedMessage[];
    employeeMessages: ProducedMessage[];
    /** The inserts (what the pipeline joins). */
    inserts: Activity[];
    history: Version[];
    /** Changes after the snapshot, for the report. */
    changes: string[];
    capture: Capture;
    lastCommit: number;
    nextId: number;
  }

  /**
   * The backlog, in commit order: the employees' snapshot, then activities spread evenly over
   * SPAN (a few corrected by an update, a few deleted, as the pipeline's filter must skip), and
   * at set points a change of an employee, each between an activity of that employee committed a
   * fraction of a millisecond before it and one a fraction after.
   */
  function makeBacklog(topics: Topics): Backlog {
    const random = mulberry32(2025);
    const capture = new Capture(topics);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const employees = new Map<number, Employee>();
    const history: Version[] = [];
    const employeeMessages: ProducedMessage[] = [];
    const activityMessages: ProducedMessage[] = [];
    const inserts: Activity[] = [];
    const changes: string[] = [];
    const snapshotAt = (START - HOUR) * 1000;
    for (let id = 1; id <= EMPLOYEES; id++) {
      const e = { id, name: `Employee ${id}`, email: `employee${id}@company.example`, department: pick(DEPARTMENTS) };
      employees.set(id, e);
      history.push({ id, from: 0, row: { ...e } });
      employeeMessages.push(...capture.employee('r', e, snapshotAt, id === 1 ? 'first' : id === EMPLOYEES ? 'last' : 'true'));
    }
    const moveTo = (e: Employee) => DEPARTMENTS[(DEPARTMENTS.indexOf(e.department) + 1 + (e.id % 4)) % DEPARTMENTS.length]!;
    // At a fraction of the activities: what happens to whom. Employee 3 and 11 move twice, 7 is deleted and comes back.
    const plan: { at: number; id: number; kind: 'move' | 'delete' | 'reinsert' }[] = [
      { at: 0.08, id: 3, kind: 'move' },
      { at: 0.17, id: 11, kind: 'move' },
      { at: 0.26, id: 17, kind: 'move' },
      { at: 0.34, id: 7, kind: 'delete' },
      { at: 0.41, id: 3, kind: 'move' },
      { at: 0.5, id: 23, kind: 'move' },
      { at: 0.58, id: 7, kind: 'reinsert' },
      { at: 0.66, id: 31, kind: 'move' },
      { at: 0.75, id: 42, kind: 'move' },
      { at: 0.83, id: 11, kind: 'move' },
      { at: 0.92, id: 5, kind: 'move' },
    ];
    const planAt = new Map(plan.map((p) => [Math.floor(p.at * ACTIVITIES), p]));
    let lastCommit = snapshotAt;
    let nextId = 1;
    let nextAt = 0;
    const insert = (employee: number, atMicros: number, commitMicros: number) => {
      const r = random();
      const [type, url] = r < 0.55 ? ['page_view', '/wiki/home'] : r < 0.8 ? ['click', '/wiki/search'] : r < 0.92 ? ['download', '/files/report.pdf'] : r < 0.96 ? ['login', '/login'] : ['logout', '/logout'];
      const a: Activity = {
        id: nextId++,
        employee_id: employee,
        activity_type: type,
        page_url: url,
        duration_seconds: random() < 0.01 ? null : type === 'logout' ? 0 : 1 + Math.floor(random() * random() * 600),
        atMicros,
        commitMicros,
      };
      inserts.push(a);
      activityMessages.push(...capture.activity('c', a, commitMicros, a.id % PARTITIONS));
      // Later changes of the row, which the pipeline's filter skips.
      const later = random();
      if (later < 0.02) activityMessages.push(...capture.activity('u', { ...a, duration_seconds: (a.duration_seconds ?? 0) + 30 }, (lastCommit += 1 + Math.floor(random() * 200)), a.id % PARTITIONS));
      else if (later < 0.025) activityMessages.push(...capture.activity('d', a, (lastCommit += 1 + Math.floor(random() * 200)), a.id % PARTITIONS));
      return a;
    };
    for (let i = 0; i < ACTIVITIES; i++) {
      // Activity times spread evenly over SPAN, each committed 0.3-40 ms after its statement, in order.
      const atMicros = Math.max(nextAt, Math.floor((START + ((i + random()) * SPAN) / ACTIVITIES) * 1000));
      nextAt = atMicros;
      const change = planAt.get(i);
      if (change) {
        const e = employees.get(change.id)!;
        // An activity of this employee a fraction of a millisecond before the change, and one after.
        insert(e.id, atMicros, (lastCommit = Math.max(lastCommit + 1, atMicros + 300) + Math.floor(random() * 400)));
        const at = (lastCommit += 1 + Math.floor(random() * 600));
        if (change.kind === 'move') {
          const moved = { ...e, department: moveTo(e) };
          employees.set(e.id, moved);
          employeeMessages.push(...capture.employee('u', moved, at));
          history.push({ id: e.id, from: at, row: { ...moved } });
          changes.push(`${e.id}: ${e.department} -> ${moved.department}`);
        } else if (change.kind === 'delete') {
          employeeMessages.push(...capture.employee('d', e, at));
          history.push({ id: e.id, from: at, row: null });
          changes.push(`${e.id}: deleted`);
        } else {
          const back = { ...e, email: `employee${e.id}.again@company.example`, department: moveTo(e) };
          employees.set(e.id, back);
          employeeMessages.push(...capture.employee('c', back, at));
          history.push({ id: e.id, from: at, row: { ...back } });
          changes.push(`${e.id}: inserted again in ${back.department}`);
        }
        insert(e.id, atMicros, (lastCommit += 1 + Math.floor(random() * 600)));
      }
      insert(1 + Math.floor(random() * EMPLOYEES), atMicros, (lastCommit = Math.max(lastCommit + 1, atMicros + 300 + Math.floor(random() * 39_700))));
    }
    return { activityMessages, employeeMessages, inserts, history, changes, capture, lastCommit, nextId };
  }

  /** The employee row an activity committed at `commit` must get: the employee's last version committed at or before it (brute force). */
  function rowAt(history: readonly Version[], employee: number, commit: number): Employee | null {
    let row: Employee | null = null;
    let from = Number.NEGATIVE_INFINITY;
    for (const v of history) {
      if (v.id === employee && v.from <= commit && v.from >= from) {
        row = v.row;
        from = v.from;
      }
    }
    return row;
  }

  /** `department@start..end: figures`, durations summed and averaged over the activities that have one (SQL's way, and sluice's). */
  function line(department: string, start: string, end: string, f: { activities: unknown; employees: unknown; downloads: unknown; total: unknown; avg: unknown }): string {
    const avg = f.avg === null || f.avg === undefined ? 'null' : String(Math.round(Number(f.avg) * 1e9) / 1e9);
    return `${department}@${start}..${end}: activities=${String(f.activities)} employees=${String(f.employees)} downloads=${String(f.downloads)} total=${String(f.total ?? 'null')} avg=${avg}`;
  }

  /** The summaries of every hour, computed here from the activities and the departments they must get. */
  function expectedSummaries(activities: readonly Activity[], departmentOf: ReadonlyMap<number, string>, closedBy: number): { closed: string[]; open: number } {
    const groups = new Map<string, { department: string; start: number; n: number; employees: Set<number>; downloads: number; total: number; durations: number }>();
    for (const a of activities) {
      const department = departmentOf.get(a.id)!;
      const start = Math.floor(a.atMicros / 1000 / HOUR) * HOUR;
      const k = `${department}/${start}`;
      const g = groups.get(k) ?? { department, start, n: 0, employees: new Set<number>(), downloads: 0, total: 0, durations: 0 };
      g.n++;
      g.employees.add(a.employee_id);
      if (a.activity_type === 'download') g.downloads++;
      if (a.duration_seconds !== null) {
        g.total += a.duration_seconds;
        g.durations++;
      }
      groups.set(k, g);
    }
    const closed: string[] = [];
    let open = 0;
    for (const g of groups.values()) {
      if (g.start + HOUR > closedBy) {
        open++;
        continue;
      }
      const iso = (ms: number) => new Date(ms).toISOString();
      closed.push(line(g.department, iso(g.start), iso(g.start + HOUR), { activities: g.n, employees: g.employees.size, downloads: g.downloads, total: g.durations ? g.total : null, avg: g.durations ? g.total / g.durations : null }));
    }
    return { closed: closed.sort(), open };
  }

  it('every activity joined exactly once with its department at its commit time, every (department, hour) summarised exactly once and right', async () => {
    const t0 = Date.now();
    const topics = await makeTopics('scale', PARTITIONS);
    const group = uniqueName('djs-scale');
    groups.push(group);
    const backlog = makeBacklog(topics);
    const producer = createProducer(testConnection('djs-scale-producer'), {}, silentLogger);
    // The employees, and the first 60% of the activity events, before any process starts; the
    // rest once both hold tasks, right before the kill, so it always lands in the middle of the drain.
    const send = async (messages: readonly ProducedMessage[]) => {
      for (let i = 0; i < messages.length; i += 5_000) await producer.send(messages.slice(i, i + 5_000));
    };
    const cut = Math.floor(backlog.activityMessages.length * 0.6);
    await producer.send(backlog.employeeMessages);
    await send(backlog.activityMessages.slice(0, cut));
    const producedMs = Date.now() - t0;

    // The expectation, brute force over the employees' history.
    const wantRow = new Map<number, Employee | null>(backlog.inserts.map((a) => [a.id, rowAt(backlog.history, a.employee_id, a.commitMicros)]));
    const inserts = backlog.inserts.length;
    // The fixture is what it claims: departments change under activities of the same employee,
    // within a millisecond of them, and some activities find no row.
    const byEmployee = (id: number) => backlog.inserts.filter((a) => a.employee_id === id).map((a) => wantRow.get(a.id)?.department ?? 'Unknown');
    expect(new Set(byEmployee(3)).size, 'employee 3 counts for three departments').toBe(3);
    expect(byEmployee(7), 'employee 7 counts as Unknown while deleted').toContain('Unknown');
    expect(new Set(byEmployee(7)).size, 'employee 7: a department before the delete, Unknown, another after').toBe(3);
    for (const v of backlog.history.filter((h) => h.from > 0)) {
      const near = backlog.inserts.filter((a) => a.employee_id === v.id && Math.abs(a.commitMicros - v.from) < 1_000);
      expect(near.map((a) => (a.commitMicros < v.from ? 'before' : 'after')), `activities of employee ${v.id} within 1 ms of its change`).toEqual(['before', 'after']);
      expect(new Set(near.map((a) => wantRow.get(a.id)?.department ?? null)).size).toBe(2);
    }

    const client = (n: number) => `${group}-p${n}`;
    const start = (n: number) => startPipeline(topics, group, [`sources.activities.kafka.client_id=${client(n)}`, 'sources.activities.kafka.session_timeout=6s']);
    const watcher = new TopicWatcher([topics.joined, topics.summaries]);
    await watcher.start();
    const first = [start(1), start(2)];
    const all = [...first];
    const failure = (err: unknown) => new Error(`${(err as Error).message}; logs: ${keepLogs('scale', all)}`);
    try {
      // Some output, with both processes holding activities tasks (stage 0).
      await waitFor(
        'both processes holding tasks of stage 0 and the first joined activities',
        () => (assertRunning(all), first.every((r) => tasksHeld(r, '0').length > 0) && watcher.count(topics.joined) >= Math.min(1_000, inserts / 10)),
        120_000,
      ).catch((err: unknown) => {
        throw failure(err);
      });
      const atRest = watcher.count(topics.joined);
      await send(backlog.activityMessages.slice(cut));
      const victim = first[1]!;
      const victimHeld = { stage0: tasksHeld(victim, '0'), stage1: tasksHeld(victim, '1') };
      const atKill = watcher.count(topics.joined);
      killGroup(victim, 'SIGKILL');
      expect((await exitWithin(victim, 10_000, 'the killed process')).signal).toBe('SIGKILL');
      const killedMs = Date.now() - t0;
      expect(atKill, 'killed before every activity was joined').toBeLessThan(inserts);
      expect(victimHeld.stage0.length, `activities tasks the killed process held: ${JSON.stringify(victimHeld)}`).toBeGreaterThan(0);

      await sleep(2_000);
      const third = start(3);
      all.push(third);
      const survivors = [first[0]!, third];
      await watcher.until({ [topics.joined]: inserts }, 240_000, () => `; logs: ${keepLogs('scale', all)}`);
      assertRunning(survivors);
      const drainedMs = Date.now() - t0;

      // Far later, one activity in each partition: every hour of the backlog closes (its own hour stays open).
      const closers: Activity[] = [];
      let commit = backlog.lastCommit;
      for (let p = 0; p < PARTITIONS; p++) {
        // Consecutive ids: one to each partition (id % PARTITIONS).
        const atMicros = (START + 24 * HOUR + p * 60_000) * 1000;
        commit = Math.max(commit + 1, atMicros + 500);
        closers.push({ id: backlog.nextId + p, employee_id: 1, activity_type: 'logout', page_url: '/logout', duration_seconds: 0, atMicros, commitMicros: commit });
      }
      await producer.send(closers.flatMap((c) => backlog.capture.activity('c', c, c.commitMicros, c.id % PARTITIONS)));
      for (const c of closers) wantRow.set(c.id, rowAt(backlog.history, 1, c.commitMicros));
      const closedBy = Math.min(...closers.map((c) => c.atMicros / 1000)) - LATENESS;
      const departmentOf = new Map([...wantRow].map(([id, row]) => [id, row?.department ?? 'Unknown']));
      const expected = expectedSummaries([...backlog.inserts, ...closers], departmentOf, closedBy);
      expect(expected.open, 'only the closers\' hour stays open').toBe(1);
      expect(expected.closed.filter((l) => l.startsWith('Unknown@')).length, 'hours with activities of the deleted employee').toBeGreaterThan(0);
      await watcher.until({ [topics.joined]: wantRow.size }, 60_000, () => `; logs: ${keepLogs('scale', all)}`);
      // The summaries; when they do not all come, the comparison below says what differs.
      await watcher.until({ [topics.summaries]: expected.closed.length }, 60_000).catch(() => {});
      // A moment for anything that should not come (a checkpoint's epoch written twice).
      await sleep(3_000);
      assertRunning(survivors);
      const doneMs = Date.now() - t0;

      const read = await readValues([topics.joined, topics.summaries, topics.dead]);
      expect(read.get(topics.dead)!.slice(0, 5).map((r) => r.value), 'dead letters (errors and late records of every step)').toEqual([]);

      // (a) Every activity joined exactly once, with the employee row of its commit time.
      const joined = read.get(topics.joined)!;
      const got = new Map<number, Employee | null>();
      const twice: number[] = [];
      for (const r of joined) {
        const v = r.value!;
        if (r.key !== String(v.employee_id)) throw new Error(`joined activity ${String(v.id)} keyed ${r.key}`);
        if (got.has(Number(v.id))) twice.push(Number(v.id));
        got.set(Number(v.id), employeeOf(v));
      }
      const missing = [...wantRow.keys()].filter((id) => !got.has(id));
      const unknown = [...got.keys()].filter((id) => !wantRow.has(id));
      const wrong = [...wantRow]
        .filter(([id, want]) => got.has(id) && JSON.stringify(got.get(id)) !== JSON.stringify(want))
        .map(([id, want]) => {
          const a = backlog.inserts.find((x) => x.id === id);
          return `activity ${id} of employee ${a?.employee_id} committed ${a ? new Date(a.commitMicros / 1000).toISOString() : '?'}: got ${got.get(id)?.department ?? 'no row'}, want ${want?.department ?? 'no row'}`;
        });
      expect.soft(missing.slice(0, 10), `${missing.length} of ${wantRow.size} activities never joined`).toEqual([]);
      expect.soft(twice.slice(0, 10), `${twice.length} activities joined more than once`).toEqual([]);
      expect.soft(unknown.slice(0, 10), 'joined activities that were never produced').toEqual([]);
      expect.soft(wrong.slice(0, 10), `${wrong.length} of ${wantRow.size} activities joined with the wrong employee row`).toEqual([]);
      expect.soft(joined.length).toBe(wantRow.size);

      // (b) Every (department, hour) once, with the figures computed here.
      const summaries = read.get(topics.summaries)!;
      const keys = summaries.map((r) => r.key!);
      const repeated = [...new Set(keys.filter((k, i) => keys.indexOf(k) !== i))];
      expect.soft(repeated, '(department, hour) summarised more than once').toEqual([]);
      for (const r of summaries) expect(r.key, 'summary key').toBe(`${String(r.value!.department)}/${String(r.value!.window_start)}`);
      const lines = summaries
        .map((r) => r.value!)
        .map((v) =>
          line(String(v.department), String(v.window_start), String(v.window_end), { activities: v.activities, employees: v.employees, downloads: v.downloads, total: v.total_duration, avg: v.avg_duration }),
        )
        .sort();
      expect.soft(lines, 'the hourly summaries per department').toEqual(expected.closed);

      for (const [i, r] of all.entries()) expect(lateTableChanges(r), `process #${i + 1}: table changes the join received after answering for their time`).toEqual([]);
      const thirdHeld = tasksHeld(third, '0');
      expect(thirdHeld.length, 'activities tasks the third process holds').toBeGreaterThan(0);
      await Promise.all(survivors.map((r, i) => stop(r, `surviving process #${i + 1}`)));
      console.info(
        `scale-out with a join: ${inserts} activities (+${PARTITIONS} closers, ${backlog.activityMessages.length} activity events) over ${SPAN / HOUR} h, ${EMPLOYEES} employees, changes ${backlog.changes.join('; ')}; ` +
          `${expected.closed.length} summaries expected; 60% produced in ${producedMs} ms, the rest at ${atRest} joined; killed #2 at ${killedMs} ms with ${atKill} joined, holding ${JSON.stringify(victimHeld)}; ` +
          `all joined at ${drainedMs} ms, summaries at ${doneMs} ms; the third holds ${JSON.stringify(thirdHeld)}; ${Date.now() - t0} ms in all`,
      );
    } finally {
      await watcher.stop();
      await producer.close();
      for (const r of all) if (alive(r)) killGroup(r, 'SIGKILL');
    }
  }, 480_000);
});
