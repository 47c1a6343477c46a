import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../../src/io/pgoutput/lsn.ts';
import type { PgOutputMessage } from '../../../src/io/pgoutput/protocol.ts';
import { parsePgOutputMessage, ProtocolError } from '../../../src/io/pgoutput/protocol.ts';

/** Real pgoutput bytes captured from PostgreSQL 15 (see the fixture's header for the statements). */
function fixture(): { lsn: bigint; xid: number; message: PgOutputMessage }[] {
  const text = readFileSync(new URL('./fixtures/pgoutput-v1.txt', import.meta.url), 'utf8');
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => {
      const [lsn, xid, hex] = line.split(' ');
      return { lsn: parseLsn(lsn!), xid: Number(xid), message: parsePgOutputMessage(Buffer.from(hex!, 'hex')) };
    });
}

const messages = fixture();
const tags = messages.map((m) => m.message.tag);

describe('parsePgOutputMessage on captured PostgreSQL output', () => {
  it('sees every transaction framed by begin and commit', () => {
    expect(tags).toEqual([
      'begin', 'relation', 'insert', 'commit',
      'begin', 'update', 'commit',
      'begin', 'update', 'commit',
      'begin', 'relation', 'update', 'commit',
      'begin', 'delete', 'commit',
      'begin', 'message', 'commit',
      'begin', 'relation', 'truncate', 'commit',
    ]);
  });

  it('parses Begin and Commit with LSNs, xid and commit time', () => {
    const begin = messages[0]!.message;
    const commit = messages[3]!.message;
    if (begin.tag !== 'begin' || commit.tag !== 'commit') throw new Error('fixture order changed');
    expect(begin.xid).toBe(messages[0]!.xid);
    expect(commit.commitLsn).toBe(begin.finalLsn);
    // The commit message is reported at the end of the commit record.
    expect(commit.endLsn).toBe(messages[3]!.lsn);
    expect(commit.commitTimeMicros).toBe(begin.commitTimeMicros);
    // Captured on 2026-11-25: the PostgreSQL epoch offset is applied.
    expect(new Date(Number(commit.commitTimeMicros / 1000n)).toISOString().slice(0, 10)).toBe('2026-11-25');
  });

  it('parses a Relation with key flags, type oids and modifiers', () => {
    const rel = messages[1]!.message;
    if (rel.tag !== 'relation') throw new Error('fixture order changed');
    expect(rel).toMatchObject({ namespace: 'public', name: 'pgoutput_fixture', replicaIdentity: 'd' });
    expect(rel.columns).toEqual([
      { isKey: true, name: 'id', typeOid: 23, typeMod: -1 },
      { isKey: false, name: 'name', typeOid: 25, typeMod: -1 },
      { isKey: false, name: 'big', typeOid: 25, typeMod: -1 },
      { isKey: false, name: 'note', typeOid: 1043, typeMod: 24 },
    ]);
    const full = messages[11]!.message;
    if (full.tag !== 'relation') throw new Error('fixture order changed');
    expect(full.replicaIdentity).toBe('f');
    // With REPLICA IDENTITY FULL every column is part of the identity.
    expect(full.columns.every((c) => c.isKey)).toBe(true);
  });

  it('decodes text values as UTF-8 and NULL as null', () => {
    const ins = messages[2]!.message;
    if (ins.tag !== 'insert') throw new Error('fixture order changed');
    expect(ins.newTuple[0]).toEqual({ kind: 'text', text: '1' });
    expect(ins.newTuple[1]).toEqual({ kind: 'text', text: 'héllo' });
    expect(ins.newTuple[2]).toEqual({ kind: 'text', text: 'x'.repeat(5000) });
    expect(ins.newTuple[3]).toEqual({ kind: 'null' });
  });

  it('marks an unchanged TOASTed value as unchanged, not null', () => {
    const upd = messages[5]!.message;
    if (upd.tag !== 'update') throw new Error('fixture order changed');
    expect(upd.oldTuple).toBeUndefined();
    expect(upd.newTuple[1]).toEqual({ kind: 'text', text: 'world' });
    expect(upd.newTuple[2]).toEqual({ kind: 'unchanged' });
  });

  it('carries the old key (K) when an update changes the primary key', () => {
    const upd = messages[8]!.message;
    if (upd.tag !== 'update') throw new Error('fixture order changed');
    expect(upd.oldKind).toBe('key');
    expect(upd.oldTuple).toEqual([{ kind: 'text', text: '1' }, { kind: 'null' }, { kind: 'null' }, { kind: 'null' }]);
    expect(upd.newTuple[0]).toEqual({ kind: 'text', text: '2' });
  });

  it('carries the whole old row (O) under REPLICA IDENTITY FULL, for updates and deletes', () => {
    const upd = messages[12]!.message;
    const del = messages[15]!.message;
    if (upd.tag !== 'update' || del.tag !== 'delete') throw new Error('fixture order changed');
    expect(upd.oldKind).toBe('old');
    expect(upd.oldTuple?.[1]).toEqual({ kind: 'text', text: 'world' });
    expect(upd.newTuple[3]).toEqual({ kind: 'text', text: 'n' });
    expect(del.oldKind).toBe('old');
    expect(del.oldTuple[3]).toEqual({ kind: 'text', text: 'n' });
  });

  it('parses a transactional logical message and a truncate', () => {
    const msg = messages[18]!.message;
    const trunc = messages[22]!.message;
    if (msg.tag !== 'message' || trunc.tag !== 'truncate') throw new Error('fixture order changed');
    expect(msg).toMatchObject({ transactional: true, prefix: 'sluice' });
    expect(msg.content.toString()).toBe('hello');
    expect(trunc).toMatchObject({ cascade: false, restartIdentity: false });
    expect(trunc.relationOids).toHaveLength(1);
  });
});

describe('parsePgOutputMessage on hand-built bytes', () => {
  it('parses Type and Origin messages', () => {
    const type = Buffer.concat([Buffer.from('Y'), u32(16400), Buffer.from('public\0mood\0')]);
    expect(parsePgOutputMessage(type)).toEqual({ tag: 'type', typeOid: 16400, namespace: 'public', name: 'mood' });
    const origin = Buffer.concat([Buffer.from('O'), u64(0x1234n), Buffer.from('node_a\0')]);
    expect(parsePgOutputMessage(origin)).toEqual({ tag: 'origin', originLsn: 0x1234n, name: 'node_a' });
  });

  it('parses truncate options', () => {
    const buf = Buffer.concat([Buffer.from('T'), u32(2), Buffer.from([3]), u32(10), u32(11)]);
    expect(parsePgOutputMessage(buf)).toEqual({ tag: 'truncate', cascade: true, restartIdentity: true, relationOids: [10, 11] });
  });

  it('rejects a truncated message with the offset it stopped at', () => {
    const buf = Buffer.concat([Buffer.from('I'), u32(1), Buffer.from('N'), Buffer.from([0, 1]), Buffer.from('t'), u32(10), Buffer.from('abc')]);
    expect(() => parsePgOutputMessage(buf)).toThrow(ProtocolError);
    expect(() => parsePgOutputMessage(buf)).toThrow(/truncated: needed 10 bytes/);
  });

  it('rejects unknown message types and binary tuple values', () => {
    expect(() => parsePgOutputMessage(Buffer.from('Z'))).toThrow(/unknown pgoutput message type 'Z'/);
    const bin = Buffer.concat([Buffer.from('I'), u32(1), Buffer.from('N'), Buffer.from([0, 1]), Buffer.from('b'), u32(0)]);
    expect(() => parsePgOutputMessage(bin)).toThrow(/unsupported tuple value kind 'b'/);
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}
