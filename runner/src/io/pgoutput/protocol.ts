/**
 * The pgoutput logical decoding protocol (version 1), parsed from the payload of XLogData frames.
 * Pure functions over bytes: no connection, no state. Values stay in PostgreSQL's text format; turning
 * them into typed values is the caller's business (it knows the column types from Relation messages).
 *
 * Reference: https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
 */
import type { Lsn } from './lsn.ts';
import { pgMicrosToUnixMicros } from './lsn.ts';

/** One column value of a tuple: SQL NULL, an unchanged TOASTed value (not sent), or its text form. */
export type TupleValue = { kind: 'null' } | { kind: 'unchanged' } | { kind: 'text'; text: string };

export interface RelationColumn {
  /** Part of the replica identity (the key sent with UPDATE/DELETE). */
  isKey: boolean;
  name: string;
  typeOid: number;
  /** Type modifier: for varchar(n) n+4, for numeric(p,s) ((p<<16)|s)+4, for timestamp(p) p; -1 if none. */
  typeMod: number;
}

/** d = default (primary key), n = nothing, f = full, i = index. */
export type ReplicaIdentity = 'd' | 'n' | 'f' | 'i';

export interface BeginMessage {
  tag: 'begin';
  /** LSN of the transaction's commit record. */
  finalLsn: Lsn;
  /** Commit time, microseconds since the Unix epoch. */
  commitTimeMicros: bigint;
  xid: number;
}

export interface CommitMessage {
  tag: 'commit';
  flags: number;
  commitLsn: Lsn;
  /** End of the commit record: the position to confirm once the transaction is processed. */
  endLsn: Lsn;
  commitTimeMicros: bigint;
}

export interface OriginMessage {
  tag: 'origin';
  originLsn: Lsn;
  name: string;
}

export interface RelationMessage {
  tag: 'relation';
  relationOid: number;
  namespace: string;
  name: string;
  replicaIdentity: ReplicaIdentity;
  columns: RelationColumn[];
}

export interface TypeMessage {
  tag: 'type';
  typeOid: number;
  namespace: string;
  name: string;
}

export interface InsertMessage {
  tag: 'insert';
  relationOid: number;
  newTuple: TupleValue[];
}

export interface UpdateMessage {
  tag: 'update';
  relationOid: number;
  /** `K`: only the replica identity columns changed/are sent; `O`: the whole old row (REPLICA IDENTITY FULL). */
  oldKind?: 'key' | 'old';
  oldTuple?: TupleValue[];
  newTuple: TupleValue[];
}

export interface DeleteMessage {
  tag: 'delete';
  relationOid: number;
  oldKind: 'key' | 'old';
  oldTuple: TupleValue[];
}

export interface TruncateMessage {
  tag: 'truncate';
  cascade: boolean;
  restartIdentity: boolean;
  relationOids: number[];
}

export interface LogicalMessage {
  tag: 'message';
  transactional: boolean;
  lsn: Lsn;
  prefix: string;
  content: Buffer;
}

export type PgOutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalMessage;

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** A cursor over one message's bytes; every read checks bounds so a short message fails clearly. */
class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new ProtocolError(`pgoutput message truncated: needed ${n} bytes at offset ${this.pos} of ${this.buf.length}`);
    }
  }
  byte(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  char(): string {
    return String.fromCharCode(this.byte());
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  int64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolError(`pgoutput message truncated: unterminated string at offset ${this.pos}`);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  text(n: number): string {
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function readTuple(r: Reader): TupleValue[] {
  const n = r.int16();
  const values: TupleValue[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r.char();
    switch (kind) {
      case 'n':
        values[i] = { kind: 'null' };
        break;
      case 'u':
        values[i] = { kind: 'unchanged' };
        break;
      case 't':
        values[i] = { kind: 'text', text: r.text(r.int32()) };
        break;
      default:
        // 'b' (binary) only appears when the `binary` option is on, which this client never asks for.
        throw new ProtocolError(`unsupported tuple value kind '${kind}' in column ${i}`);
    }
  }
  return values;
}

function readOldKind(r: Reader, marker: string): 'key' | 'old' {
  if (marker === 'K') return 'key';
  if (marker === 'O') return 'old';
  throw new ProtocolError(`expected K or O before the old tuple, got '${marker}'`);
}

function readReplicaIdentity(code: number): ReplicaIdentity {
  const c = String.fromCharCode(code);
  if (c === 'd' || c === 'n' || c === 'f' || c === 'i') return c;
  throw new ProtocolError(`unknown replica identity setting '${c}'`);
}

/** Parses one pgoutput message (the payload of one XLogData frame). */
export function parsePgOutputMessage(buf: Buffer): PgOutputMessage {
  const r = new Reader(buf);
  const tag = r.char();
  switch (tag) {
    case 'B': {
      const finalLsn = r.uint64();
      const commitTimeMicros = pgMicrosToUnixMicros(r.int64());
      const xid = r.uint32();
      return { tag: 'begin', finalLsn, commitTimeMicros, xid };
    }
    case 'C': {
      const flags = r.byte();
      const commitLsn = r.uint64();
      const endLsn = r.uint64();
      const commitTimeMicros = pgMicrosToUnixMicros(r.int64());
      return { tag: 'commit', flags, commitLsn, endLsn, commitTimeMicros };
    }
    case 'O':
      return { tag: 'origin', originLsn: r.uint64(), name: r.cstring() };
    case 'R': {
      const relationOid = r.uint32();
      const namespace = r.cstring();
      const name = r.cstring();
      const replicaIdentity = readReplicaIdentity(r.byte());
      const n = r.int16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) {
        const flags = r.byte();
        columns.push({ isKey: (flags & 1) === 1, name: r.cstring(), typeOid: r.uint32(), typeMod: r.int32() });
      }
      return { tag: 'relation', relationOid, namespace, name, replicaIdentity, columns };
    }
    case 'Y':
      return { tag: 'type', typeOid: r.uint32(), namespace: r.cstring(), name: r.cstring() };
    case 'I': {
      const relationOid = r.uint32();
      const marker = r.char();
      if (marker !== 'N') throw new ProtocolError(`expected N before the new tuple of an insert, got '${marker}'`);
      return { tag: 'insert', relationOid, newTuple: readTuple(r) };
    }
    case 'U': {
      const relationOid = r.uint32();
      let marker = r.char();
      let oldKind: 'key' | 'old' | undefined;
      let oldTuple: TupleValue[] | undefined;
      if (marker === 'K' || marker === 'O') {
        oldKind = readOldKind(r, marker);
        oldTuple = readTuple(r);
        marker = r.char();
      }
      if (marker !== 'N') throw new ProtocolError(`expected N before the new tuple of an update, got '${marker}'`);
      const newTuple = readTuple(r);
      return oldKind && oldTuple
        ? { tag: 'update', relationOid, oldKind, oldTuple, newTuple }
        : { tag: 'update', relationOid, newTuple };
    }
    case 'D': {
      const relationOid = r.uint32();
      const oldKind = readOldKind(r, r.char());
      return { tag: 'delete', relationOid, oldKind, oldTuple: readTuple(r) };
    }
    case 'T': {
      const count = r.int32();
      const options = r.byte();
      const relationOids: number[] = [];
      for (let i = 0; i < count; i++) relationOids.push(r.uint32());
      return { tag: 'truncate', cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0, relationOids };
    }
    case 'M': {
      const flags = r.byte();
      const lsn = r.uint64();
      const prefix = r.cstring();
      const content = Buffer.from(r.bytes(r.int32()));
      return { tag: 'message', transactional: (flags & 1) === 1, lsn, prefix, content };
    }
    default:
      throw new ProtocolError(`unknown pgoutput message type '${tag}' (0x${buf[0]?.toString(16) ?? '??'})`);
  }
}
