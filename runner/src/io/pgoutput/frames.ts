/**
 * The streaming replication sub-protocol carried in CopyData messages once START_REPLICATION has
 * switched the connection to CopyBoth: XLogData and keepalives from the server, standby status
 * updates from us. Pure functions over bytes.
 *
 * Reference: https://www.postgresql.org/docs/15/protocol-replication.html
 */
import type { Lsn } from './lsn.ts';
import { pgMicrosToUnixMicros, unixMicrosToPgMicros } from './lsn.ts';
import { ProtocolError } from './protocol.ts';

export interface XLogDataFrame {
  type: 'xlogdata';
  /** WAL position of the record this payload was decoded from. */
  walStart: Lsn;
  /** The server's current end of WAL. */
  walEnd: Lsn;
  sendTimeMicros: bigint;
  /** One pgoutput message. */
  data: Buffer;
}

export interface KeepaliveFrame {
  type: 'keepalive';
  /** Everything before this position has been sent: safe to confirm once all of it is processed. */
  walEnd: Lsn;
  sendTimeMicros: bigint;
  /** The server wants a standby status update now, or it will time the connection out. */
  replyRequested: boolean;
}

export type ReplicationFrame = XLogDataFrame | KeepaliveFrame;

export function parseReplicationFrame(buf: Buffer): ReplicationFrame {
  const tag = buf.length > 0 ? String.fromCharCode(buf[0]!) : '';
  if (tag === 'w') {
    if (buf.length < 25) throw new ProtocolError(`XLogData frame too short: ${buf.length} bytes`);
    return {
      type: 'xlogdata',
      walStart: buf.readBigUInt64BE(1),
      walEnd: buf.readBigUInt64BE(9),
      sendTimeMicros: pgMicrosToUnixMicros(buf.readBigInt64BE(17)),
      data: buf.subarray(25),
    };
  }
  if (tag === 'k') {
    if (buf.length < 18) throw new ProtocolError(`keepalive frame too short: ${buf.length} bytes`);
    return {
      type: 'keepalive',
      walEnd: buf.readBigUInt64BE(1),
      sendTimeMicros: pgMicrosToUnixMicros(buf.readBigInt64BE(9)),
      replyRequested: buf[17] === 1,
    };
  }
  throw new ProtocolError(`unknown replication frame type '${tag}'`);
}

/**
 * A standby status update. `flush` (= apply) is the position we have durably processed: the slot's
 * confirmed_flush_lsn moves there and the server may recycle WAL before it. `write` is what we have
 * received; the server only uses it to see that the client caught up (e.g. before it shuts down),
 * never to move the slot.
 */
export function standbyStatusUpdate(positions: { write: Lsn; flush: Lsn }, nowMicros: bigint, replyRequested = false): Buffer {
  const buf = Buffer.alloc(34);
  buf.write('r', 0, 'latin1');
  buf.writeBigUInt64BE(positions.write > positions.flush ? positions.write : positions.flush, 1);
  buf.writeBigUInt64BE(positions.flush, 9);
  buf.writeBigUInt64BE(positions.flush, 17);
  buf.writeBigInt64BE(unixMicrosToPgMicros(nowMicros), 25);
  buf.writeUInt8(replyRequested ? 1 : 0, 33);
  return buf;
}
