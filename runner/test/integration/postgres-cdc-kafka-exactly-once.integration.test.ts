/**
 * postgres-cdc -> Kafka with `delivery: exactly-once` and the `kafka` state store, end to end
 * through `sluice run` (issue 9: "the same for postgres-cdc to Kafka, with exactly-once"). Rows are
 * inserted into a captured table in many small transactions (with some updates, which the filter
 * drops), their event time (`ts`) climbing across several hours, while the pipeline copies every
 * insert into one topic (keyed by id) and summarises them per group and hour ($count, $sum) into
 * another. The process is killed with
 * SIGKILL twice mid-stream, each time after it committed a checkpoint, and restarted; at last it
 * catches up and stops with SIGINT. Read with read_committed, the topics must hold every inserted
 * row exactly once (against `SELECT` over the table) and every closed hour's summary exactly once,
 * equal to a `GROUP BY` computed by PostgreSQL.
 *
 * The slot: after each kill, every row the table held is either in the output committed before the
 * kill or still unconfirmed in the slot (peeked, pgoutput decoded here): the slot was not confirmed
 * past what a committed checkpoint covers. Its confirmed_flush_lsn advances, and after the clean
 * stop nothing of ours is left unconfirmed.
 *
 * CDC_KAFKA_DELIVERY=at-least-once runs the same scenario under at-least-once, to see the check
 * fail: the kafka sinks then write outside the checkpoint's transaction, and what a killed run
 * wrote after its last checkpoint is written again (about a hundred duplicated rows in 3,000).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/engine/logger.ts';
import { createGroupConsumer, readTopicsToEnd, type GroupConsumer, type KafkaAdmin, type ReadRecord } from '../../src/io/kafka/client.ts';
import { runSluice, type SluiceProcess } from './sluice-process.ts';
import { openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';

const DELIVERY = (process.env.CDC_KAFKA_DELIVERY ?? 'exactly-once') as 'exactly-once' | 'at-least-once';
const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const run = `${process.pid}_${Date.now() % 100000}`;
const table = `eo_cdck_src_${run}`;
const slot = `eo_cdck_slot_${run}`;
const publication = `eo_cdck_pub_${run}`;
const app = uniqueName('eo-cdck');
const topics = { rows: `${app}-rows`, summaries: `${app}-summaries` };
const stateTopics = [`${app}-checkpoint`, `${app}-per-hour-changelog`];

const HOUR = 3_600_000;
const LATENESS = 60_000;
/** Event time of the n-th row written: 5 s apart from here, so a few thousand rows span hours. */
const BASE = Date.parse('2025-03-10T06:00:00Z');
const STEP_S = 5;
const ROWS_PER_TX = 20;
/** The writer stops here whatever happens. */
const MAX_ROWS = 20_000;

let admin: pg.Client;
let kafka: KafkaAdmin;
let dir: string;
const children: ChildProcess[] = [];

function specText(): string {
  const pgConn = `host: ${conn.host}, port: ${conn.port}, database: ${conn.database}, user: ${conn.user}`;
  const brokers = testBrokers().join(',');
  return `version: 1
name: cdc-kafka-exactly-once
delivery: ${DELIVERY}
checkpoint: { store: kafka, interval: 300ms, application_id: ${app} }
sources:
  items:
    postgres-cdc: { ${pgConn}, slot: ${slot}, publication: ${publication}, tables: [public.${table}], snapshot: never, heartbeat: 200ms }
    format: debezium
steps:
  inserts:
    from: items
    filter: $meta.op = "c"
  per-hour:
    from: inserts
    window: { tumbling: 1h, time: ts, lateness: 1m, emit: final }
    group_by: [grp]
    aggregate: { n: $count(), total: $sum(amount) }
sinks:
  rows:
    from: inserts
    kafka: { brokers: "${brokers}", topic: ${topics.rows}, key: $string(id), linger: 5ms }
  summaries:
    from: per-hour
    kafka: { brokers: "${brokers}", topic: ${topics.summaries}, key: '$string(grp) & "@" & window_start', linger: 5ms }
`;
}

function start(): SluiceProcess {
  const spec = join(dir, 'cdc-kafka.yaml');
  writeFileSync(spec, specText());
  const run = runSluice(spec, { cwd: dir });
  children.push(run.child);
  return run;
}

/** The ids seen so far on the rows topic (read_committed), as the pipeline runs. */
class ProgressReader {
  readonly ids = new Set<number>();
  private consumer: GroupConsumer | undefined;
  async start(): Promise<void> {
    this.consumer = createGroupConsumer(testConnection('cdc-kafka-progress'), { groupId: uniqueName('cdc-kafka-progress'), topics: [topics.rows], fromBeginning: true, concurrency: 2 }, silentLogger);
    await this.consumer.start({
      onBatch: async (b) => {
        for (const m of b.messages) this.ids.add(Number((JSON.parse(m.value!.toString('utf8')) as { id: number }).id));
      },
      onRebalancing: () => {},
      onAssignment: () => {},
      onCrash: () => {},
    });
  }
  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

async function checkpointTopicEnd(): Promise<bigint> {
  if (!(await kafka.listTopics()).includes(`${app}-checkpoint`)) return 0n;
  let sum = 0n;
  for (const high of (await kafka.endOffsets(`${app}-checkpoint`)).values()) sum += BigInt(high);
  return sum;
}

async function endOffsets(topic: string): Promise<Map<number, bigint>> {
  return new Map([...(await kafka.endOffsets(topic))].map(([p, o]) => [p, BigInt(o)]));
}

async function tableIds(): Promise<number[]> {
  return (await admin.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);
}

async function confirmedFlush(): Promise<bigint> {
  const res = await admin.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  const [hi, lo] = res.rows[0]!.lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/**
 * The ids of the inserts the slot still holds past its confirmed position, decoded from pgoutput
 * (protocol 1: 'I', relation oid, 'N', column count, then per column 't' + length + text; id is the
 * first column). The slot must be inactive.
 */
async function unconfirmedIds(): Promise<Set<number>> {
  await waitFor('the slot released', async () => {
    const res = await admin.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    return res.rows[0]?.active === false;
  }, 20_000);
  const res = await admin.query<{ data: Buffer }>(
    `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2) WHERE get_byte(data, 0) = 73`,
    [slot, publication],
  );
  const ids = new Set<number>();
  for (const { data } of res.rows) {
    expect(String.fromCharCode(data[5]!), 'a new tuple').toBe('N');
    expect(String.fromCharCode(data[8]!), 'id as text').toBe('t');
    const len = data.readInt32BE(9);
    ids.add(Number(data.subarray(13, 13 + len).toString('utf8')));
  }
  return ids;
}

/** Inserts rows in transactions of ROWS_PER_TX, their `ts` climbing, until told to stop (and at least `min`); updates some now and then. */
function startWriter(min: number) {
  let stop = false;
  let written = 0;
  const done = (async () => {
    const writer = new pg.Client(conn);
    await writer.connect();
    try {
      while ((!stop || written < min) && written < MAX_ROWS) {
        await writer.query(
          `INSERT INTO ${table} (grp, amount, ts)
           SELECT (random() * 5)::int, (random() * 100)::int, to_timestamp($1::bigint / 1000.0) AT TIME ZONE 'UTC' + (($2::int + g) * ${STEP_S}) * interval '1 second'
           FROM generate_series(0, ${ROWS_PER_TX - 1}) g`,
          [BASE, written],
        );
        written += ROWS_PER_TX;
        // Updates too, which the filter must keep out of both outputs (they change no summed column).
        if ((written / ROWS_PER_TX) % 5 === 0) await writer.query(`UPDATE ${table} SET note = 'updated' WHERE id % 3 = 0 AND id > (SELECT max(id) - 40 FROM ${table})`);
        await new Promise((r) => setTimeout(r, 40));
      }
    } finally {
      await writer.end();
    }
    return written;
  })();
  return { done, stop: () => (stop = true), written: () => written };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cdc-kafka-eo-'));
  admin = new pg.Client(conn);
  await admin.connect();
  await admin.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, grp int NOT NULL, amount int NOT NULL, ts timestamp NOT NULL, note text)`);
  kafka = await openAdmin();
  // Retention off: the broker's default 7 days would delete records stamped with an old time at once.
  await kafka.createTopics([
    { topic: topics.rows, partitions: 2, configs: { 'retention.ms': '-1' } },
    { topic: topics.summaries, partitions: 1, configs: { 'retention.ms': '-1' } },
  ]);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
  await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
  await new Promise((r) => setTimeout(r, 200));
  await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => {});
  await admin.query(`DROP PUBLICATION IF EXISTS ${publication}`);
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.end();
  await kafka.deleteTopics([...Object.values(topics), ...stateTopics]).catch(() => {});
  await kafka.close();
});

describe(`postgres-cdc -> kafka, ${DELIVERY}, kafka state store, through \`sluice run\``, () => {
  it('killed with SIGKILL twice while rows are inserted, the topics hold every row once and every closed hour once, equal to a GROUP BY', async () => {
    const progress = new ProgressReader();
    await progress.start();
    try {
      let r = start();
      // Created, not only listed: a slot still being created has no confirmed position yet.
      await waitFor('the slot', async () => ((await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL', [slot])).rowCount ?? 0) > 0, 60_000);
      const lsnAtStart = await confirmedFlush();
      const writer = startWriter(3_000);

      const kills: { tableIds: number[]; committedEnd: Map<number, bigint>; unconfirmed: Set<number>; confirmed: bigint }[] = [];
      for (let k = 0; k < 2; k++) {
        // This run committed a checkpoint of its own, with output: its transaction's records are visible.
        const seenAtStart = progress.ids.size;
        const checkpointsAtStart = await checkpointTopicEnd();
        await waitFor('a checkpoint with output', async () => progress.ids.size > seenAtStart && (await checkpointTopicEnd()) >= checkpointsAtStart + 2n, 90_000);
        await new Promise((res) => setTimeout(res, 200 + Math.floor(Math.random() * 400)));
        process.kill(-r.child.pid!, 'SIGKILL');
        expect((await r.exit).signal).toBe('SIGKILL');
        // What was committed before the kill lies below these offsets; the killed run's open transaction (above) is aborted later.
        const committedEnd = await endOffsets(topics.rows);
        const ids = await tableIds();
        kills.push({ tableIds: ids, committedEnd, unconfirmed: await unconfirmedIds(), confirmed: await confirmedFlush() });
        r = start();
      }
      writer.stop();
      const written = await writer.done;
      const total = (await tableIds()).length;
      expect(total).toBe(written);
      // Both kills landed while rows were still coming.
      for (const kill of kills) expect(kill.tableIds.length).toBeLessThan(total);

      // Until every row is out, or nothing new came for 15 s (then the checks below say what is missing).
      let seen = progress.ids.size;
      let lastNews = Date.now();
      await waitFor('every row out, or no progress', () => {
        if (progress.ids.size > seen) [seen, lastNews] = [progress.ids.size, Date.now()];
        return seen >= total || Date.now() - lastNews > 15_000;
      }, 120_000);
      // A moment for anything that should not come (a change delivered twice) to show, then a clean stop.
      await new Promise((res) => setTimeout(res, 1_500));
      process.kill(-r.child.pid!, 'SIGINT');
      expect(await r.exit, r.stderr()).toEqual({ code: 0, signal: null });
      expect(r.stderr()).toContain('state restored from the last checkpoint');

      // Both topics to their end, committed records only.
      const read: ReadRecord[] = [];
      await readTopicsToEnd(testConnection('cdc-kafka-check'), [topics.rows, topics.summaries], (rec) => read.push(rec), silentLogger);
      const value = (rec: ReadRecord) => JSON.parse(rec.value!.toString('utf8')) as Record<string, unknown>;
      const rowRecords = read.filter((rec) => rec.topic === topics.rows);
      const summaryRecords = read.filter((rec) => rec.topic === topics.summaries);

      // Every inserted row, exactly once, with its values and its key.
      const captured = await admin.query<{ id: number; grp: number; amount: number; ts: string }>(
        `SELECT id, grp, amount, (extract(epoch FROM ts) * 1000)::bigint::text AS ts FROM ${table} ORDER BY id`,
      );
      const outRows = rowRecords
        .map((rec) => {
          const v = value(rec);
          expect(rec.key?.toString('utf8')).toBe(String(v.id));
          return { id: v.id as number, grp: v.grp as number, amount: v.amount as number, ts: String(Date.parse(v.ts as string)) };
        })
        .sort((a, b) => a.id - b.id);
      const rowDuplicates = outRows.length - new Set(outRows.map((o) => o.id)).size;

      // Every closed hour, exactly once, equal to PostgreSQL's GROUP BY.
      const grouped = await admin.query<{ grp: number; start: string; n: number; total: number }>(
        `SELECT grp, (extract(epoch FROM date_trunc('hour', ts)) * 1000)::bigint::text AS start, count(*)::int AS n, sum(amount)::int AS total
         FROM ${table} GROUP BY 1, 2 ORDER BY 2, 1`,
      );
      const maxTs = Number((await admin.query<{ m: string }>(`SELECT (extract(epoch FROM max(ts)) * 1000)::bigint::text AS m FROM ${table}`)).rows[0]!.m);
      const watermark = maxTs - LATENESS;
      // The watermark falls inside an hour: no hour sits on the edge of closing.
      expect(watermark % HOUR).not.toBe(0);
      const closed = grouped.rows.filter((g) => Number(g.start) + HOUR <= watermark).map((g) => `${g.grp}@${new Date(Number(g.start)).toISOString()}: n=${g.n} total=${g.total}`);
      const summaries = summaryRecords
        .map((rec) => {
          const v = value(rec);
          expect(rec.key?.toString('utf8')).toBe(`${v.grp}@${v.window_start}`);
          expect(Date.parse(v.window_end as string) - Date.parse(v.window_start as string)).toBe(HOUR);
          return `${v.grp}@${new Date(Date.parse(v.window_start as string)).toISOString()}: n=${v.n} total=${v.total}`;
        })
        .sort();
      const summaryDuplicates = summaries.length - new Set(summaries.map((s) => s.slice(0, s.indexOf(':')))).size;
      console.info(
        `postgres-cdc -> kafka, ${DELIVERY}: ${total} rows in ${total / ROWS_PER_TX} transactions, ${closed.length} closed hour summaries; ` +
          `read ${outRows.length} rows (${rowDuplicates} duplicates), ${summaries.length} summaries (${summaryDuplicates} duplicates); kills at ${kills.map((k) => `${k.tableIds.length} rows (${k.unconfirmed.size} unconfirmed in the slot)`).join(', ')}`,
      );
      expect(closed.length).toBeGreaterThanOrEqual(5 * 4);
      expect(rowDuplicates, 'rows written more than once').toBe(0);
      expect(summaryDuplicates, 'summaries written more than once').toBe(0);
      // The slot: at each kill, nothing the table held was confirmed without being in the committed output.
      for (const kill of kills) {
        const committedIds = new Set(rowRecords.filter((rec) => BigInt(rec.offset) < kill.committedEnd.get(rec.partition)!).map((rec) => value(rec).id as number));
        const lost = kill.tableIds.filter((id) => !committedIds.has(id) && !kill.unconfirmed.has(id));
        expect(lost.slice(0, 10), `rows neither committed to Kafka nor left in the slot at a kill (${lost.length})`).toEqual([]);
      }
      expect(outRows).toEqual(captured.rows);
      expect(summaries).toEqual([...closed].sort());

      // The slot's confirmed_flush_lsn advanced: past its start by each kill, and further by the clean stop, which left nothing of ours unconfirmed.
      expect(kills[0]!.confirmed).toBeGreaterThan(lsnAtStart);
      expect(kills[1]!.confirmed).toBeGreaterThan(kills[0]!.confirmed);
      const unconfirmedAtEnd = await unconfirmedIds();
      expect(await confirmedFlush()).toBeGreaterThan(kills[1]!.confirmed);
      expect([...unconfirmedAtEnd].slice(0, 10), `${unconfirmedAtEnd.size} rows still unconfirmed after the clean stop`).toEqual([]);
    } finally {
      await progress.stop();
    }
  }, 300_000);
});
