/**
 * The `table` and `join` steps end to end on real change capture: employees and their activities
 * are written to PostgreSQL in separate commits (department-join-scenario.ts: inserts, a change of
 * department, a delete, activities of the deleted id, a re-insert under another department, an id
 * that never exists), and what sluice writes is compared, as exact sets, with what the order of the
 * commits alone says: each activity joined with the employee row as of the last employee commit
 * before its own (none: null, "Unknown"), and the hourly summaries per department of the hours the
 * last activity closed. Commits are 5 ms apart: the join compares commit times in milliseconds, and
 * two commits within one millisecond have no order for it.
 *
 *   a. native: one postgres-cdc source over both tables, split by `$meta.table`, through `sluice
 *      run` of a spec written here; once live (started before the changes), once over the backlog
 *      its own slot kept (started after them);
 *   b. Debezium 2.7.4 (Kafka Connect, scripts/connect.sh) capturing both tables, and `sluice run
 *      pipelines/department-hourly.yaml` itself, topics given with --set, live;
 *   c. the same pipeline again over the same topics with a fresh group: a replayed backlog, which
 *      must give the live run's answers;
 *   d. a postgres-query source feeding the table: its rows hold from the start of time, so
 *      activities of long ago (read from a file) all find the departments the query returned; both
 *      sources are bounded and the run ends by itself.
 *
 * The native spec sets the join's and the window's `idle` to 2s (defaults 10s and 1m) to keep the
 * run short: with one source over both tables, every partition of that source reaches the join
 * through both of its inputs and the window through the join, so the join's table side also counts
 * the activities' partition (it holds records back until it is idle, once, after the start) and the
 * window counts the employees' partition (it holds the watermark until it is idle: with the default
 * 1m the summaries come a minute after the start). The answers are the same either way. The
 * Debezium runs keep the spec's defaults, so each waits the join's 10s after the last employee
 * change before the last activities pass.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaAdmin } from '../../src/io/kafka/client.ts';
import { openAdmin, testBrokers, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import type { ConnectWorker } from './debezium-connect.ts';
import { deleteConnector, dropCapture, localConnector, registerConnector, repo, startConnect, stopConnect } from './debezium-connect.ts';
import {
  HOUR,
  SCENARIO,
  TopicWatcher,
  createScenarioTables,
  departments,
  expectedOutputs,
  joinedOutput,
  performScenario,
  readValues,
  summarise,
  summaryLines,
  type EmployeeRow,
  type ExpectedJoin,
  type WrittenActivity,
  type WrittenScenario,
} from './department-join-scenario.ts';
import { exitWithin, jsonLogLines, runSluice, type SluiceProcess, killLeftovers } from './sluice-process.ts';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const id = uniqueName('x').slice(2);

let admin: pg.Client;
let kafka: KafkaAdmin;
let dir: string;
const runs: SluiceProcess[] = [];
const created = { slots: [] as string[], publications: [] as string[], schemas: [] as string[], topics: [] as string[], applications: [] as string[] };

/** The departments of the scenario's activities in commit order, written out by hand: the expectation's own check. */
const HAND_WRITTEN = [
  'Engineering', 'Sales', 'Finance', // Alice, Bob, Dave
  'HR',
  'Sales', 'Marketing', // Bob before his move, Eve
  'Marketing', // Bob after it
  'Marketing', 'Engineering',
  'Finance', // Dave, before his delete
  null, // Dave deleted
  null, 'HR',
  'Engineering', // Dave re-inserted
  'Engineering', 'Marketing', 'Engineering',
  null, null, // 99
  'Engineering', // the pusher
];

async function createTopics(...topics: string[]): Promise<void> {
  created.topics.push(...topics);
  // Retention off: some records carry event times of long ago.
  await kafka.createTopics(topics.map((topic) => ({ topic, partitions: 1, configs: { 'retention.ms': '-1' } })));
}

function start(spec: string, options: { args?: string[]; env?: Record<string, string> } = {}): SluiceProcess {
  const run = runSluice(spec, { cwd: dir, args: options.args ?? [], env: { KAFKA_BROKERS: testBrokers().join(','), ...options.env } });
  runs.push(run);
  return run;
}

/** SIGINT, and a clean exit 0. */
async function stop(run: SluiceProcess, what: string): Promise<void> {
  process.kill(-run.child.pid!, 'SIGINT');
  const exit = await exitWithin(run, 30_000, what);
  expect(exit, `${what} exit; its log ends:\n${run.stderr().slice(-3000)}`).toEqual({ code: 0, signal: null });
}

/** Warnings of the join that a table change came for a time it had already answered. */
function lateTableChanges(run: SluiceProcess): Record<string, unknown>[] {
  return jsonLogLines(run.stderr()).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('table changes arrived for a time the join has already answered'));
}

interface Outputs {
  joined: string;
  summaries: string;
  dead: string;
}

interface Observed {
  employeeOf: Map<number, EmployeeRow | null>;
  summaries: string[];
}

/**
 * Reads the three outputs to their end (read_committed) and compares them, as exact sets, with the
 * expectation: one joined record per activity with the employee row it must have, one summary per
 * closed hour and department with the right figures, keys as the spec writes them, no dead letter.
 */
async function checkOutputs(topics: Outputs, expected: ExpectedJoin, what: string): Promise<Observed> {
  const read = await readValues([topics.joined, topics.summaries, topics.dead]);
  const joinedRecords = read.get(topics.joined)!;
  const summaryRecords = read.get(topics.summaries)!;
  expect(read.get(topics.dead)!.map((r) => r.value), `${what}: dead letters`).toEqual([]);

  const joined = joinedOutput(joinedRecords.map((r) => r.value!));
  for (const r of joinedRecords) expect(r.key, `${what}: key of joined activity ${String(r.value!.id)}`).toBe(String(r.value!.employee_id));
  expect(joined.records, `${what}: joined records (one per activity)`).toBe(expected.employeeOf.size);
  expect(departments(joined.employeeOf), `${what}: department of each activity (by id)`).toEqual(departments(expected.employeeOf));
  expect(joined.employeeOf, `${what}: employee row of each activity`).toEqual(expected.employeeOf);

  const summaries = summaryLines(summaryRecords.map((r) => r.value!));
  for (const r of summaryRecords) expect(r.key, `${what}: summary key`).toBe(`${String(r.value!.department)}/${String(r.value!.window_start)}`);
  expect(summaries, `${what}: summaries of the closed hours`).toEqual(expected.summaries);
  return { employeeOf: joined.employeeOf, summaries };
}

/**
 * Waits for one joined record per activity, then for the expected number of summaries (or, when
 * they do not come, `settleMs` more: the comparison then says what differs), then a moment for
 * anything that should not come.
 */
async function awaitOutputs(watcher: TopicWatcher, topics: Outputs, expected: ExpectedJoin, run: SluiceProcess, timeoutMs: number, settleMs = 15_000): Promise<void> {
  await watcher.until({ [topics.joined]: expected.employeeOf.size }, timeoutMs, () => `; the run's log ends:\n${run.stderr().slice(-3000)}`);
  await watcher.until({ [topics.summaries]: expected.summaries.length }, settleMs).catch(() => {});
  await new Promise((r) => setTimeout(r, 1_500));
}

/**
 * Runs a started pipeline until its outputs are complete, checks them against the expected answer
 * and, when there is one, against an earlier run's (a backlog or replay must give the live answers);
 * the join must have received no table change after answering for its time. Stops the run.
 */
async function outputsOf(run: SluiceProcess, topics: Outputs, expected: ExpectedJoin, what: string, earlier?: Observed): Promise<Observed> {
  const watcher = new TopicWatcher([topics.joined, topics.summaries]);
  await watcher.start();
  try {
    await awaitOutputs(watcher, topics, expected, run, 60_000);
    const observed = await checkOutputs(topics, expected, what);
    if (earlier) {
      expect(departments(observed.employeeOf)).toEqual(departments(earlier.employeeOf));
      expect(observed.summaries).toEqual(earlier.summaries);
    }
    expect(lateTableChanges(run), 'table changes the join received after answering for their time').toEqual([]);
    await stop(run, `the ${what} run`);
    return observed;
  } finally {
    await watcher.stop();
  }
}

function outputTopics(label: string): Outputs {
  return { joined: `dj-${label}-joined-${id}`, summaries: `dj-${label}-summaries-${id}`, dead: `dj-${label}-dead-${id}` };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-department-join-'));
  admin = new pg.Client(conn);
  await admin.connect();
  const level = await admin.query('SHOW wal_level');
  if (level.rows[0].wal_level !== 'logical') throw new Error('wal_level must be logical: run scripts/postgres-setup.sh first');
  kafka = await openAdmin();
});

afterAll(async () => {
  killLeftovers(runs);
  if (admin) {
    await dropCapture(admin, { slots: created.slots, publications: created.publications });
    for (const schema of created.schemas) await dropCapture(admin, { slots: [], publications: [], schema });
    await admin.end();
  }
  if (kafka) {
    // The outputs, the inputs made here, and the state topics of each application id (checkpoint, changelogs).
    const all = await kafka.listTopics();
    const state = all.filter((t) => created.applications.some((app) => t.startsWith(`${app}-`)));
    await kafka.deleteTopics([...created.topics, ...state]).catch(() => {});
    await kafka.close();
  }
});

/* ------------------------------------------------------------------ a. native postgres-cdc */

describe('native postgres-cdc: one source over both tables, a table, a versioned join and a window per department and hour', () => {
  const schema = `dj_native_${id}`;
  const prefix = `dj-native-${id}`;
  let written: WrittenScenario | undefined;
  let expected: ExpectedJoin | undefined;
  let live: Observed | undefined;

  function specText(o: { slot: string; publication: string; app: string; topics: Outputs }): string {
    const pgConn = `host: ${conn.host}, port: ${conn.port}, database: ${conn.database}, user: ${conn.user}`;
    const brokers = testBrokers().join(',');
    return `version: 1
name: department-join-native
delivery: exactly-once
checkpoint: { store: kafka, interval: 300ms, application_id: ${o.app} }
sources:
  cdc:
    postgres-cdc: { ${pgConn}, slot: ${o.slot}, publication: ${o.publication}, tables: [${schema}.employees, ${schema}.employee_activities], topic_prefix: ${prefix}, heartbeat: 200ms }
    format: debezium
steps:
  inserts:
    from: cdc
    filter: $meta.table = "employee_activities" and $meta.op = "c"
  employee-changes:
    from: cdc
    filter: $meta.table = "employees"
  employees:
    from: employee-changes
    table: { key: id }
  with-employee:
    from: inserts
    join: { table: employees, on: employee_id, as: employee, type: left, idle: 2s }
  hourly:
    from: with-employee
    window: { tumbling: 1h, time: activity_timestamp, lateness: 10m, idle: 2s }
    group_by:
      department: '$exists(employee.department) ? employee.department : "Unknown"'
    aggregate:
      activities: $count()
      employees: $countDistinct(employee_id)
      downloads: '$sum(activity_type = "download" ? 1 : 0)'
      total_duration: $sum(duration_seconds)
      avg_duration: $average(duration_seconds)
sinks:
  joined:
    from: with-employee
    kafka: { brokers: "${brokers}", topic: ${o.topics.joined}, key: $string(employee_id), linger: 5ms }
  summaries:
    from: hourly
    kafka: { brokers: "${brokers}", topic: ${o.topics.summaries}, key: 'department & "/" & window_start', linger: 5ms }
  dead-letters:
    from: [cdc.errors, inserts.errors, employee-changes.errors, employees.errors, with-employee.errors, with-employee.late, hourly.errors, hourly.late, joined.errors, summaries.errors]
    kafka: { brokers: "${brokers}", topic: ${o.topics.dead}, value_format: raw }
`;
  }

  const liveRun = { slot: `dj_live_slot_${id}`, publication: `dj_live_pub_${id}`, app: `dj-live-${id}`, topics: outputTopics('live') };
  const backlogRun = { slot: `dj_backlog_slot_${id}`, publication: `dj_backlog_pub_${id}`, app: `dj-backlog-${id}`, topics: outputTopics('backlog') };

  beforeAll(async () => {
    created.schemas.push(schema);
    created.slots.push(liveRun.slot, backlogRun.slot);
    created.publications.push(liveRun.publication, backlogRun.publication);
    created.applications.push(liveRun.app, backlogRun.app);
    await createScenarioTables(admin, schema);
    await createTopics(...Object.values(liveRun.topics), ...Object.values(backlogRun.topics));
    // The backlog run's publication and slot, made before any change: its run, started after them
    // all, reads the whole history from the slot (no snapshot: the slot exists).
    await admin.query(`CREATE PUBLICATION "${backlogRun.publication}" FOR TABLE "${schema}".employees, "${schema}".employee_activities`);
    await admin.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [backlogRun.slot]);
  });

  it('live: started before the changes, every activity gets the employee row of its commit time, and the closed hours are summarised per department', async () => {
    const started = Date.now();
    const spec = join(dir, 'native-live.yaml');
    writeFileSync(spec, specText(liveRun));
    const run = start(spec);
    const watcher = new TopicWatcher([liveRun.topics.joined, liveRun.topics.summaries]);
    await watcher.start();
    try {
      await waitFor('the live run\'s slot, active', async () => (await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [liveRun.slot])).rowCount === 1, 60_000);
      written = await performScenario(admin, schema);
      expected = expectedOutputs(written);
      // The expectation itself, against the scenario read by hand.
      expect(Object.values(departments(expected.employeeOf))).toEqual(HAND_WRITTEN);
      expect(expected.summaries).toHaveLength(12);
      expect(expected.openHours).toEqual([expect.stringMatching(/^Engineering@2025-02-03T12:00/)]);

      await awaitOutputs(watcher, liveRun.topics, expected, run, 60_000);
      live = await checkOutputs(liveRun.topics, expected, 'native live');
      expect(lateTableChanges(run), 'table changes the join received after answering for their time').toEqual([]);
      await stop(run, 'the native live run');
    } finally {
      await watcher.stop();
    }
    console.info(`native live: ${written.activities.length} activities, ${expected.summaries.length} summaries, ${Date.now() - started} ms`);
  });

  it('backlog: started after the changes on a slot that kept them, it gives the same answers as the live run', async () => {
    if (!written || !expected) throw new Error('the live case did not write the scenario');
    const started = Date.now();
    const spec = join(dir, 'native-backlog.yaml');
    writeFileSync(spec, specText(backlogRun));
    // The slot holds every change, not yet read by anyone.
    const pending = await admin.query(`SELECT count(*)::int AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2) WHERE get_byte(data, 0) = 67`, [
      backlogRun.slot,
      backlogRun.publication,
    ]);
    expect(pending.rows[0].n, 'commits waiting in the backlog slot').toBe(SCENARIO.length);
    await outputsOf(start(spec), backlogRun.topics, expected, 'native backlog', live);
    console.info(`native backlog: ${Date.now() - started} ms`);
  });
});

/* ------------------------------------------------------------------ b, c. Debezium and pipelines/department-hourly.yaml */

describe('real Debezium capturing both tables, and `sluice run pipelines/department-hourly.yaml`', () => {
  const schema = `dj_dbz_${id}`;
  const prefix = `dj-dbz-${id}`;
  const slot = `dj_dbz_slot_${id}`;
  const publication = `dj_dbz_pub_${id}`;
  const connector = `sluice-dj-${id}`;
  const inputs = { activities: `${prefix}.${schema}.employee_activities`, employees: `${prefix}.${schema}.employees` };
  const liveRun = { group: `dj-hourly-live-${id}`, topics: outputTopics('hourly-live') };
  const replayRun = { group: `dj-hourly-replay-${id}`, topics: outputTopics('hourly-replay') };
  let worker: ConnectWorker | undefined;
  let written: WrittenScenario | undefined;
  let expected: ExpectedJoin | undefined;
  let live: Observed | undefined;

  function startPipeline(o: { group: string; topics: Outputs }): SluiceProcess {
    const sets = [
      `sources.activities.kafka.topic=${inputs.activities}`,
      `sources.employee-changes.kafka.topic=${inputs.employees}`,
      `sinks.activities-with-employee.kafka.topic=${o.topics.joined}`,
      `sinks.department-hourly.kafka.topic=${o.topics.summaries}`,
      `sinks.dead-letters.kafka.topic=${o.topics.dead}`,
    ].flatMap((s) => ['--set', s]);
    return start(join(repo, 'pipelines/department-hourly.yaml'), { args: sets, env: { SLUICE_GROUP: o.group } });
  }

  /** Both of the spec's kafka sources have their partitions. */
  async function assigned(run: SluiceProcess): Promise<void> {
    const nodes = () => new Set(jsonLogLines(run.stderr()).filter((l) => l.msg === 'kafka partitions assigned' && Number(l.assigned) > 0).map((l) => l.node));
    await waitFor('both sources assigned', () => nodes().has('activities') && nodes().has('employee-changes'), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}; the run's log ends:\n${run.stderr().slice(-3000)}`);
    });
  }

  beforeAll(async () => {
    created.schemas.push(schema);
    created.slots.push(slot);
    created.publications.push(publication);
    created.applications.push(liveRun.group, replayRun.group);
    await createScenarioTables(admin, schema);
    // Debezium's topics made here (it would create them with the broker's default retention).
    await createTopics(inputs.activities, inputs.employees, ...Object.values(liveRun.topics), ...Object.values(replayRun.topics));
    // The first run on a machine fetches Connect and the Debezium plugin from Maven Central.
    worker = await startConnect(testBrokers().join(','));
    await registerConnector(worker, localConnector({ name: connector, prefix, slot, publication, tables: [`${schema}.employees`, `${schema}.employee_activities`] }));
  }, 600_000);

  afterAll(async () => {
    if (worker) {
      await deleteConnector(worker, connector);
      await stopConnect(worker);
    }
  });

  it('live: the spec as shipped, started before the changes, joins each activity with its employee as of its commit and summarises the closed hours', async () => {
    const started = Date.now();
    const run = startPipeline(liveRun);
    const watcher = new TopicWatcher([liveRun.topics.joined, liveRun.topics.summaries, inputs.activities, inputs.employees]);
    await watcher.start();
    try {
      await assigned(run);
      written = await performScenario(admin, schema);
      expected = expectedOutputs(written);
      expect(Object.values(departments(expected.employeeOf))).toEqual(HAND_WRITTEN);
      // Debezium wrote every change: 20 activity inserts; 6 employee inserts, an update, a delete and its tombstone.
      await watcher.until({ [inputs.activities]: written.activities.length, [inputs.employees]: 9 }, 60_000);
      await awaitOutputs(watcher, liveRun.topics, expected, run, 60_000);
      live = await checkOutputs(liveRun.topics, expected, 'department-hourly live');
      expect(lateTableChanges(run), 'table changes the join received after answering for their time').toEqual([]);
      await stop(run, 'the live department-hourly run');
    } finally {
      await watcher.stop();
    }
    console.info(`debezium live: ${Date.now() - started} ms`);
  });

  it('replay: a fresh group over the same topics (a backlog) gives the live run\'s answers', async () => {
    if (!written || !expected) throw new Error('the live case did not write the scenario');
    const started = Date.now();
    await outputsOf(startPipeline(replayRun), replayRun.topics, expected, 'department-hourly replay', live);
    console.info(`debezium replay: ${Date.now() - started} ms`);
  });
});

/* ------------------------------------------------------------------ d. postgres-query as the table's source */

describe('postgres-query feeding the table', () => {
  const schema = `dj_query_${id}`;

  it('every activity, however old, gets the department the query returned, and the bounded run ends by itself', async () => {
    const started = Date.now();
    created.schemas.push(schema);
    await createScenarioTables(admin, schema);
    // The employees' whole history (insert, move, delete, re-insert); the query sees only where it ended.
    await performScenario(admin, schema, SCENARIO.filter((c) => c.kind !== 'activities'));
    const rows = (await admin.query<{ id: number; name: string; department: string }>(`SELECT id, name, department FROM "${schema}".employees ORDER BY id`)).rows;
    expect(rows.map((r) => `${r.id}:${r.department}`)).toEqual(['1:Engineering', '2:Marketing', '3:HR', '4:Engineering', '5:Marketing']);

    // The scenario's activities, in a file, with ids of their own; their times are a year and more before the query runs.
    const activities: WrittenActivity[] = SCENARIO.flatMap((c) => (c.kind === 'activities' ? c.rows : [])).map((a, i) => ({
      ...a,
      id: i + 1,
      commit: 0,
      time: Date.parse(`2025-02-03T${a.at}:00Z`),
    }));
    const input = join(dir, 'query-activities.jsonl');
    writeFileSync(input, activities.map((a) => JSON.stringify({ id: a.id, employee_id: a.employee_id, activity_type: a.activity_type, page_url: a.page_url, duration_seconds: a.duration_seconds, activity_timestamp: new Date(a.time).toISOString() })).join('\n') + '\n');
    const byId = new Map(rows.map((r) => [r.id, r]));
    const employeeOf = new Map<number, EmployeeRow | null>(activities.map((a) => [a.id, (byId.get(a.employee_id) as EmployeeRow | undefined) ?? null]));
    // A bounded run flushes every window, the last hour's too.
    const expectedSummaries = summarise(activities, employeeOf, Number.POSITIVE_INFINITY).summaries;
    expect(expectedSummaries.length).toBeGreaterThan(8);

    const out = (name: string) => join(dir, `query-${name}.jsonl`);
    const spec = join(dir, 'query.yaml');
    writeFileSync(
      spec,
      `version: 1
name: department-join-query
checkpoint: { store: none }
sources:
  employee-rows:
    postgres-query:
      host: ${conn.host}
      port: ${conn.port}
      database: ${conn.database}
      user: ${conn.user}
      query: SELECT id, name, department FROM "${schema}".employees
  activities:
    file: { path: ${input} }
steps:
  employees:
    from: employee-rows
    table: { key: id }
  with-employee:
    from: activities
    join: { table: employees, on: employee_id, as: employee, type: left, time: activity_timestamp }
  hourly:
    from: with-employee
    window: { tumbling: 1h, time: activity_timestamp, lateness: 10m }
    group_by:
      department: '$exists(employee.department) ? employee.department : "Unknown"'
    aggregate:
      activities: $count()
      employees: $countDistinct(employee_id)
      downloads: '$sum(activity_type = "download" ? 1 : 0)'
      total_duration: $sum(duration_seconds)
      avg_duration: $average(duration_seconds)
sinks:
  joined:
    from: with-employee
    file: { path: ${out('joined')} }
  summaries:
    from: hourly
    file: { path: ${out('summaries')} }
  dead-letters:
    from: [employee-rows.errors, activities.errors, employees.errors, with-employee.errors, with-employee.late, hourly.errors, hourly.late]
    file: { path: ${out('dead')}, with_headers: true }
`,
    );
    const run = start(spec);
    const exit = await exitWithin(run, 60_000, 'the postgres-query run');
    expect(exit, run.stderr().slice(-3000)).toEqual({ code: 0, signal: null });

    const lines = (name: string) =>
      readFileSync(out(name), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines('dead'), 'dead letters').toEqual([]);
    const joined = joinedOutput(lines('joined'));
    expect(joined.records, 'joined records (one per activity)').toBe(activities.length);
    expect(departments(joined.employeeOf), 'department of each activity (by id)').toEqual(departments(employeeOf));
    expect(joined.employeeOf, 'employee row of each activity').toEqual(employeeOf);
    expect(summaryLines(lines('summaries')), 'summaries of every hour').toEqual(expectedSummaries);
    // Not one activity was found unknown for want of a row that held then (all of them predate the query).
    expect([...joined.employeeOf].filter(([, e]) => e === null).map(([a]) => activities[a - 1]!.employee_id)).toEqual([99, 99]);
    expect(Math.min(...activities.map((a) => a.time))).toBeLessThan(Date.now() - 365 * 24 * HOUR);
    console.info(`postgres-query: ${Date.now() - started} ms`);
  });
});
