/**
 * The replication session against the local PostgreSQL (wal_level=logical: scripts/postgres-setup.sh).
 * It must confirm only what its owner acknowledged, whatever the server asks.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { XLogDataFrame } from '../../src/io/pgoutput/frames.ts';
import { parseLsn } from '../../src/io/pgoutput/lsn.ts';
import { parsePgOutputMessage } from '../../src/io/pgoutput/protocol.ts';
import type { PgOutputMessage } from '../../src/io/pgoutput/protocol.ts';
import { ReplicationSession } from '../../src/io/pgoutput/replication-stream.ts';

const cfg = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), database: 'streaming_db', user: process.env.PGUSER ?? 'postgres' };
const suffix = `${process.pid}_${Date.now() % 100000}`;
const table = `repl_test_${suffix}`;
const slot = `repl_test_slot_${suffix}`;
const publication = `repl_test_pub_${suffix}`;

let admin: pg.Client;

async function confirmedFlush(): Promise<bigint> {
  const res = await admin.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return parseLsn(String(res.rows[0].lsn));
}

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  admin = new pg.Client(cfg);
  await admin.connect();
  await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text)`);
  await admin.query(`CREATE PUBLICATION ${publication} FOR TABLE ${table}`);
});

afterAll(async () => {
  await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  await admin.query(`DROP PUBLICATION IF EXISTS ${publication}`);
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.end();
});

describe('ReplicationSession', () => {
  it('streams pgoutput changes and confirms only the acknowledged LSN', async () => {
    const session = await ReplicationSession.connect(cfg, 'sluice-test');
    const created = await session.createSlot(slot, false);
    expect(created.snapshotName).toBeNull();
    const frames: XLogDataFrame[] = [];
    const messages: PgOutputMessage[] = [];
    const streaming = session.start({ slot, publications: [publication], startLsn: 0n, statusIntervalMs: 100 }, {
      onData(frame) {
        frames.push(frame);
        messages.push(parsePgOutputMessage(frame.data));
      },
    });
    await admin.query(`INSERT INTO ${table} VALUES (1, 'a'), (2, 'b')`);
    await admin.query(`UPDATE ${table} SET name = 'c' WHERE id = 2`);
    await until(() => messages.filter((m) => m.tag === 'commit').length === 2);
    expect(messages.map((m) => m.tag)).toEqual(['begin', 'relation', 'insert', 'insert', 'commit', 'begin', 'update', 'commit']);

    // Nothing acknowledged yet: status updates keep reporting the start, so the slot stays put.
    await new Promise((r) => setTimeout(r, 400));
    expect(await confirmedFlush()).toBe(created.consistentPoint);

    const firstCommit = messages[4]!;
    if (firstCommit.tag !== 'commit') throw new Error('expected commit');
    session.acknowledge(firstCommit.endLsn, true);
    await until(async () => (await confirmedFlush()) === firstCommit.endLsn);

    await session.close();
    await streaming;
  });

  it('resumes from the confirmed position after a reconnect: the unacknowledged transaction comes again', async () => {
    const session = await ReplicationSession.connect(cfg, 'sluice-test');
    const messages: PgOutputMessage[] = [];
    const streaming = session.start({ slot, publications: [publication], startLsn: 0n }, {
      onData: (frame) => messages.push(parsePgOutputMessage(frame.data)),
    });
    await until(() => messages.some((m) => m.tag === 'commit'));
    expect(messages.map((m) => m.tag)).toEqual(['begin', 'relation', 'update', 'commit']);
    await session.close();
    await streaming;
  });

  it('rejects with the server error when the slot does not exist', async () => {
    const session = await ReplicationSession.connect(cfg, 'sluice-test');
    await expect(session.start({ slot: `missing_${suffix}`, publications: [publication], startLsn: 0n }, { onData: () => {} })).rejects.toThrow(/does not exist/);
    await session.close();
  });
});
