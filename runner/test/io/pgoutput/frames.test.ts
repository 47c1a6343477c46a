import { describe, expect, it } from 'vitest';
import { parseReplicationFrame, standbyStatusUpdate } from '../../../src/io/pgoutput/frames.ts';
import { pgMicrosToUnixMicros } from '../../../src/io/pgoutput/lsn.ts';
import { ProtocolError } from '../../../src/io/pgoutput/protocol.ts';

function header(tag: string, ...fields: bigint[]): Buffer {
  const b = Buffer.alloc(1 + 8 * fields.length);
  b.write(tag, 0, 'latin1');
  fields.forEach((f, i) => b.writeBigUInt64BE(f, 1 + 8 * i));
  return b;
}

describe('parseReplicationFrame', () => {
  it('splits XLogData into positions, send time and the pgoutput payload', () => {
    const buf = Buffer.concat([header('w', 0x100n, 0x200n, 5n), Buffer.from('B...')]);
    const frame = parseReplicationFrame(buf);
    expect(frame).toMatchObject({ type: 'xlogdata', walStart: 0x100n, walEnd: 0x200n, sendTimeMicros: pgMicrosToUnixMicros(5n) });
    if (frame.type !== 'xlogdata') throw new Error('expected xlogdata');
    expect(frame.data.toString()).toBe('B...');
  });

  it('reads whether a keepalive asks for a reply', () => {
    const ask = Buffer.concat([header('k', 0x300n, 7n), Buffer.from([1])]);
    const quiet = Buffer.concat([header('k', 0x300n, 7n), Buffer.from([0])]);
    expect(parseReplicationFrame(ask)).toEqual({ type: 'keepalive', walEnd: 0x300n, sendTimeMicros: pgMicrosToUnixMicros(7n), replyRequested: true });
    expect(parseReplicationFrame(quiet)).toMatchObject({ replyRequested: false });
  });

  it('rejects short and unknown frames', () => {
    expect(() => parseReplicationFrame(Buffer.from('w123'))).toThrow(ProtocolError);
    expect(() => parseReplicationFrame(Buffer.from('k1'))).toThrow(/keepalive frame too short/);
    expect(() => parseReplicationFrame(Buffer.from('x'))).toThrow(/unknown replication frame type 'x'/);
  });
});

describe('standbyStatusUpdate', () => {
  it('reports the acknowledged LSN as flushed and applied, what was received as written, with the clock in PostgreSQL time', () => {
    const nowMicros = 1_700_000_000_000_000n;
    const buf = standbyStatusUpdate({ write: 0xbeefn, flush: 0xabcdn }, nowMicros);
    expect(buf.length).toBe(34);
    expect(buf.toString('latin1', 0, 1)).toBe('r');
    expect(buf.readBigUInt64BE(1)).toBe(0xbeefn);
    expect(buf.readBigUInt64BE(9)).toBe(0xabcdn);
    expect(buf.readBigUInt64BE(17)).toBe(0xabcdn);
    expect(pgMicrosToUnixMicros(buf.readBigInt64BE(25))).toBe(nowMicros);
    expect(buf[33]).toBe(0);
  });

  it('never reports a write position behind the flush position', () => {
    const buf = standbyStatusUpdate({ write: 0n, flush: 0x10n }, 0n);
    expect(buf.readBigUInt64BE(1)).toBe(0x10n);
  });
});
