/**
 * PostgreSQL log sequence numbers. The server writes them as `X/Y` (two hex halves of a 64-bit
 * position); we keep them as bigint so that comparisons and Debezium's decimal `lsn` are exact.
 */
export type Lsn = bigint;

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): Lsn {
  const m = LSN_RE.exec(text.trim());
  if (!m) throw new Error(`not a PostgreSQL LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  const hi = lsn >> 32n;
  const lo = lsn & 0xffffffffn;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01T00:00:00Z). */
export const PG_EPOCH_OFFSET_MICROS = 946_684_800_000_000n;

/** PostgreSQL timestamps in replication messages are microseconds since 2000-01-01 UTC. */
export function pgMicrosToUnixMicros(pgMicros: bigint): bigint {
  return pgMicros + PG_EPOCH_OFFSET_MICROS;
}

export function unixMicrosToPgMicros(unixMicros: bigint): bigint {
  return unixMicros - PG_EPOCH_OFFSET_MICROS;
}
