/**
 * The native postgres-cdc source against the local PostgreSQL (wal_level=logical, see
 * scripts/postgres-setup.sh): snapshot then stream, before images under both replica identities,
 * slot confirmation after acknowledgement only, a PostgreSQL restart, and its clear failures.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/engine/clock.ts';
import type { RawBatch, Source, SourceOutput } from '../../src/engine/component.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import type { RawMessage } from '../../src/engine/record.ts';
import { parseLsn } from '../../src/io/pgoutput/lsn.ts';
import { ReplicationSession } from '../../src/io/pgoutput/replication-stream.ts';
import type { PostgresCdcConfig } from '../../src/components/sources/postgres-cdc.ts';
import { postgresCdcSource } from '../../src/components/sources/postgres-cdc.ts';

const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const run = `${process.pid}_${Date.now() % 100000}`;
const table = `cdc_items_${run}`;
const created: { slots: string[]; publications: string[]; tables: string[] } = { slots: [], publications: [], tables: [] };

let admin: pg.Client;

/** Collects batches like the engine: one reference per message, sealed; the test releases them. */
class Collector implements SourceOutput {
  readonly batches: RawBatch[] = [];
  partitions: string[] = [];
  autoAck = true;
  async emit(batch: RawBatch): Promise<void> {
    batch.ack.retain(batch.messages.length);
    batch.ack.seal();
    this.batches.push(batch);
    if (this.autoAck) batch.ack.release(batch.messages.length);
  }
  assign(partitions: string[]): void {
    this.partitions.push(...partitions);
  }
  revoke(): void {}
  get messages(): RawMessage[] {
    return this.batches.flatMap((b) => b.messages);
  }
  releaseAll(): void {
    for (const b of this.batches) if (!b.ack.isComplete) b.ack.release(b.ack.outstanding);
  }
}

function source(name: string, overrides: Partial<PostgresCdcConfig> = {}, metrics = new Metrics()): Source {
  const cfg: PostgresCdcConfig = {
    ...conn,
    slot: `cdc_slot_${name}_${run}`,
    publication: `cdc_pub_${name}_${run}`,
    tables: [`public.${table}`],
    topic_prefix: 'test-server',
    heartbeat: '200ms',
    ...overrides,
  };
  if (!created.slots.includes(cfg.slot)) created.slots.push(cfg.slot);
  if (!created.publications.includes(cfg.publication)) created.publications.push(cfg.publication);
  return postgresCdcSource.create(cfg, { name, logger: silentLogger, clock: systemClock, metrics, mode: 'run' });
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Envelope {
  payload: { op: string; before: Record<string, unknown> | null; after: Record<string, unknown> | null; source: Record<string, unknown> };
}
const env = (m: RawMessage) => m.value as Envelope;
const ops = (ms: RawMessage[]) => ms.map((m) => (m.value === null ? 'tombstone' : env(m).payload.op));

async function confirmedFlush(slot: string): Promise<bigint | undefined> {
  const res = await admin.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  const lsn: unknown = res.rows[0]?.lsn;
  return typeof lsn === 'string' ? parseLsn(lsn) : undefined;
}

let running: { source: Source; done: Promise<unknown> }[] = [];

function start(src: Source, out: SourceOutput): Promise<void> {
  const done = src.run(out);
  running.push({ source: src, done: done.catch(() => {}) });
  return done;
}

beforeAll(async () => {
  admin = new pg.Client(conn);
  await admin.connect();
  const level = await admin.query('SHOW wal_level');
  if (level.rows[0].wal_level !== 'logical') throw new Error('wal_level must be logical: run scripts/postgres-setup.sh first');
  await admin.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), seen timestamp, note text DEFAULT 'none')`);
  created.tables.push(table);
});

afterEach(async () => {
  for (const r of running) {
    await r.source.stop();
    await r.done;
    await r.source.close();
  }
  running = [];
});

afterAll(async () => {
  for (const slot of created.slots) {
    await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const slot of created.slots) await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  for (const p of created.publications) await admin.query(`DROP PUBLICATION IF EXISTS "${p}"`);
  for (const t of created.tables) await admin.query(`DROP TABLE IF EXISTS ${t}`);
  await admin.end();
});

describe('postgres-cdc source', () => {
  it('publishes its slot\'s WAL lag, which grows while changes wait for acknowledgement and falls once they are confirmed; connected while streaming', async () => {
    // A table of its own: the tests after this one expect the shared table as they left it.
    const lagTable = `${table}_lag`;
    await admin.query(`CREATE TABLE ${lagTable} (id serial PRIMARY KEY, name text NOT NULL, note text)`);
    created.tables.push(lagTable);
    const metrics = new Metrics();
    const out = new Collector();
    out.autoAck = false;
    const src = source('lag', { tables: [`public.${lagTable}`] }, metrics);
    expect(src.health?.()).toMatchObject({ connected: false });
    void start(src, out);
    await until('streaming', () => src.health?.().connected === true && !src.health?.().detail);
    const lag = async () => {
      // Past the 2 s between two reads of the slot.
      await new Promise((r) => setTimeout(r, 2_100));
      await metrics.collect();
      return metrics.gauge('sluice_cdc_slot_lag_bytes', { node: 'lag', slot: `cdc_slot_lag_${run}` });
    };
    const before = out.messages.length;
    // Notes of 1,920 random hex digits: WAL that compression cannot shrink.
    await admin.query(`INSERT INTO ${lagTable} (name, note) SELECT 'lag', (SELECT string_agg(md5(random()::text || j), '') FROM generate_series(1, 60) AS j) FROM generate_series(1, 200) AS i`);
    await until('the inserts', () => out.messages.length >= before + 200);
    const held = await lag();
    // 200 rows of about 2 kB that nobody acknowledged: the slot holds at least their WAL.
    expect(held).toBeGreaterThan(200 * 1920);
    out.releaseAll();
    await until('the slot to be confirmed', async () => ((await lag()) ?? Infinity) < held! - 200 * 1920, 30_000);
  });

  it('snapshots existing rows, then streams inserts, updates and deletes with no gap and no overlap', async () => {
    await admin.query(`INSERT INTO ${table} (name, price, seen) VALUES ('a', 1.50, '2025-01-02 10:30:00.123456'), ('b', 2, NULL), ('c', NULL, NULL)`);
    const out = new Collector();
    const src = source('stream');
    const done = start(src, out);
    await until('snapshot', () => out.messages.length === 3);
    expect(ops(out.messages)).toEqual(['r', 'r', 'r']);
    expect(out.messages.map((m) => env(m).payload.source.snapshot)).toEqual(['first', 'true', 'last']);
    expect(env(out.messages[0]!).payload.after).toEqual({ id: 1, name: 'a', price: 'AJY=', seen: 1735813800123456, note: 'none' });
    expect(out.partitions).toEqual([`stream/test-server.public.${table}`]);

    // Written after the snapshot: streamed only, never also as a snapshot row.
    await admin.query(`INSERT INTO ${table} (name) VALUES ('d')`);
    await admin.query(`UPDATE ${table} SET name = 'b2' WHERE id = 2`);
    await admin.query(`DELETE FROM ${table} WHERE id = 3`);
    await until('stream', () => out.messages.length === 7);
    const streamed = out.messages.slice(3);
    expect(ops(streamed)).toEqual(['c', 'u', 'd', 'tombstone']);
    expect(env(streamed[0]!).payload.after).toMatchObject({ id: 4, name: 'd', note: 'none' });
    // REPLICA IDENTITY DEFAULT: no before image for an update, the key only for a delete (NOT NULL columns fall back to "").
    expect(env(streamed[1]!).payload.before).toBeNull();
    expect(env(streamed[2]!).payload.before).toEqual({ id: 3, name: '', price: null, seen: null, note: 'none' });
    expect(streamed[3]!.key).toEqual(streamed[2]!.key);
    const source0 = env(streamed[0]!).payload.source;
    expect(source0).toMatchObject({ connector: 'postgresql', name: 'test-server', db: 'streaming_db', schema: 'public', table, snapshot: 'false' });
    expect(typeof source0.txId).toBe('number');
    expect(typeof source0.lsn).toBe('number');
    await src.stop();
    await done;
  });

  it('gives whole before images under REPLICA IDENTITY FULL', async () => {
    await admin.query(`ALTER TABLE ${table} REPLICA IDENTITY FULL`);
    try {
      const out = new Collector();
      const src = source('stream'); // reuses the slot: no snapshot, continues after the last test
      const done = start(src, out);
      await new Promise((r) => setTimeout(r, 300));
      await admin.query(`UPDATE ${table} SET price = 9.99 WHERE id = 1`);
      await admin.query(`DELETE FROM ${table} WHERE id = 1`);
      await until('changes', () => out.messages.length === 3);
      expect(ops(out.messages)).toEqual(['u', 'd', 'tombstone']);
      expect(env(out.messages[0]!).payload.before).toEqual({ id: 1, name: 'a', price: 'AJY=', seen: 1735813800123456, note: 'none' });
      expect(env(out.messages[0]!).payload.after).toMatchObject({ price: 'A+c=' });
      expect(env(out.messages[1]!).payload.before).toMatchObject({ id: 1, name: 'a', price: 'A+c=' });
      await src.stop();
      await done;
    } finally {
      await admin.query(`ALTER TABLE ${table} REPLICA IDENTITY DEFAULT`);
    }
  });

  it('confirms the slot only after the records are acknowledged, and re-delivers what was not', async () => {
    const slot = `cdc_slot_acks_${run}`;
    const out = new Collector();
    out.autoAck = false;
    const src = source('acks', { snapshot: 'never' });
    const done = start(src, out);
    await until('slot', async () => (await confirmedFlush(slot)) !== undefined);
    const startLsn = (await confirmedFlush(slot))!;
    await admin.query(`INSERT INTO ${table} (name) VALUES ('x1')`);
    await until('insert', () => out.messages.length === 1);
    await new Promise((r) => setTimeout(r, 600)); // several status updates and heartbeats
    expect(await confirmedFlush(slot)).toBe(startLsn);

    // Stop without acknowledging: the next run gets the same change again, same txId and lsn.
    await src.stop();
    await done;
    const first = env(out.messages[0]!).payload.source;
    const again = new Collector();
    const src2 = source('acks', { snapshot: 'never' });
    const done2 = start(src2, again);
    await until('re-delivery', () => again.messages.length === 1);
    const second = env(again.messages[0]!).payload.source;
    expect([second.txId, second.lsn, second.table]).toEqual([first.txId, first.lsn, first.table]);
    expect(again.messages[0]!.key).toEqual(out.messages[0]!.key);
    await until('confirmed after ack', async () => ((await confirmedFlush(slot)) ?? 0n) > startLsn);
    await src2.stop();
    await done2;
  });

  it('resumes from the slot after PostgreSQL restarts, losing nothing', async () => {
    const out = new Collector();
    const src = source('restart', { snapshot: 'never', reconnect_timeout: '60s' });
    const done = start(src, out);
    await until('slot', async () => (await confirmedFlush(`cdc_slot_restart_${run}`)) !== undefined);
    await admin.query(`INSERT INTO ${table} (name) SELECT 'before-' || g FROM generate_series(1, 50) g`);
    await until('first rows', () => out.messages.length === 50);
    await admin.end();
    // Asynchronously: the source must keep answering the server while it shuts down.
    await promisify(execFile)('pg_ctlcluster', ['--skip-systemctl-redirect', '15', 'main', 'restart']);
    admin = new pg.Client(conn);
    await until('server back', async () => {
      try {
        await admin.connect();
        return true;
      } catch {
        admin = new pg.Client(conn);
        return false;
      }
    });
    await admin.query(`INSERT INTO ${table} (name) SELECT 'after-' || g FROM generate_series(1, 50) g`);
    await until('rows after the restart', () => out.messages.filter((m) => String(env(m).payload.after?.name).startsWith('after-')).length === 50, 40_000);
    const names = out.messages.map((m) => String(env(m).payload.after?.name));
    for (let g = 1; g <= 50; g++) {
      expect(names).toContain(`before-${g}`);
      expect(names).toContain(`after-${g}`);
    }
    await src.stop();
    await done;
  });

  it('delivers a large transaction whole and intact, while the pipeline is slow to take it', async () => {
    const out = new Collector();
    const slow: SourceOutput = {
      // A slow pipeline: the socket is paused while frames queue, and pg keeps reading into its buffer.
      emit: async (batch) => {
        await new Promise((r) => setTimeout(r, 20));
        await out.emit(batch);
      },
      assign: (p) => out.assign(p),
      revoke: () => {},
    };
    const src = source('large', { snapshot: 'never', batch_size: 500 });
    const done = start(src, slow);
    await until('slot', async () => (await confirmedFlush(`cdc_slot_large_${run}`)) !== undefined);
    await admin.query(`INSERT INTO ${table} (name, price) SELECT 'bulk-' || g, g / 100.0 FROM generate_series(1, 20000) g`);
    await until('all rows', () => out.messages.length === 20000, 60_000);
    const names = new Set(out.messages.map((m) => String(env(m).payload.after?.name)));
    expect(names.size).toBe(20000);
    for (const g of [1, 7777, 20000]) expect(names.has(`bulk-${g}`)).toBe(true);
    expect(new Set(out.messages.map((m) => env(m).payload.source.txId)).size).toBe(1);
    await src.stop();
    await done;
  });

  it('keeps the slot moving on a quiet table while other tables write WAL (heartbeat)', async () => {
    const slot = `cdc_slot_quiet_${run}`;
    const busy = `cdc_busy_${run}`;
    await admin.query(`CREATE TABLE ${busy} (id serial PRIMARY KEY, payload text)`);
    created.tables.push(busy);
    const out = new Collector();
    const src = source('quiet', { snapshot: 'never', heartbeat: '200ms' });
    const done = start(src, out);
    await until('slot', async () => (await confirmedFlush(slot)) !== undefined);
    const before = (await confirmedFlush(slot))!;
    const walBefore = parseLsn(String((await admin.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l));
    await admin.query(`INSERT INTO ${busy} (payload) SELECT repeat('x', 200) FROM generate_series(1, 2000)`);
    await until('slot past the other table\'s writes', async () => ((await confirmedFlush(slot)) ?? 0n) > walBefore, 20_000);
    expect(out.messages).toHaveLength(0);
    expect((await confirmedFlush(slot))! > before).toBe(true);
    await src.stop();
    await done;
  });

  it('fails with what to run when the publication is dropped while streaming', async () => {
    const publication = `cdc_pub_vanishing_${run}`;
    const out = new Collector();
    const src = source('vanishing', { snapshot: 'never', publication });
    const done = start(src, out);
    await until('slot', async () => (await confirmedFlush(`cdc_slot_vanishing_${run}`)) !== undefined);
    await admin.query(`INSERT INTO ${table} (name) VALUES ('seen')`);
    await until('streaming', () => out.messages.length === 1);
    await admin.query(`DROP PUBLICATION "${publication}"`);
    await admin.query(`INSERT INTO ${table} (name) VALUES ('unseen')`);
    await expect(done).rejects.toMatchObject({ code: 'E_CDC_PUBLICATION_MISSING' });
    await expect(done).rejects.toThrow(/CREATE PUBLICATION/);
  });

  it('fails with what to run when the slot was dropped', async () => {
    const out = new Collector();
    const slot = `cdc_slot_dropped_${run}`;
    const src = source('dropped', { snapshot: 'never' });
    const done = start(src, out);
    // Streaming for sure (an active slot may still be in creation): a change has come through.
    await until('slot created', async () => (await confirmedFlush(slot)) !== undefined);
    await admin.query(`INSERT INTO ${table} (name) VALUES ('marker')`);
    await until('streaming', () => out.messages.length === 1);
    // Kill the source's walsender and drop the slot as soon as it is free (before the source reconnects).
    const dropper = await ReplicationSession.connect(conn, 'sluice-test-dropper');
    await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    await dropper.command(`DROP_REPLICATION_SLOT "${slot}" WAIT`);
    await dropper.close();
    await expect(done).rejects.toThrow(/replication slot "cdc_slot_dropped_.*" does not exist.*pg_create_logical_replication_slot/);
    await expect(done).rejects.toMatchObject({ code: 'E_CDC_SLOT_MISSING' });

    const strict = source('dropped', { create: false });
    await expect(strict.run(new Collector())).rejects.toMatchObject({ code: 'E_CDC_SLOT_MISSING' });
    await strict.close();
  });

  it('fails with what to run when the publication is missing', async () => {
    const src = source('nopub', { create: false, publication: `cdc_pub_absent_${run}` });
    const err = await src.run(new Collector()).catch((e: unknown) => e);
    await src.close();
    expect(err).toMatchObject({ code: 'E_CDC_PUBLICATION_MISSING' });
    expect(String(err)).toMatch(new RegExp(`CREATE PUBLICATION "cdc_pub_absent_${run}" FOR TABLE "public"."${table}"`));
  });

  it('refuses a column type it cannot decode, naming table, column and type', async () => {
    const odd = `cdc_odd_${run}`;
    await admin.query(`CREATE TABLE ${odd} (id int PRIMARY KEY, location point)`);
    created.tables.push(odd);
    const src = source('odd', { tables: [`public.${odd}`] });
    const err = await src.run(new Collector()).catch((e: unknown) => e);
    await src.close();
    expect(err).toMatchObject({ code: 'E_CDC_UNSUPPORTED_TYPE' });
    expect(String(err)).toMatch(new RegExp(`table public.${odd} column "location" has type point`));
    // Nothing was created for a capture that cannot run.
    expect((await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [`cdc_slot_odd_${run}`])).rowCount).toBe(0);
  });
});

