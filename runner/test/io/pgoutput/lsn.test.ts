import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn, pgMicrosToUnixMicros, unixMicrosToPgMicros } from '../../../src/io/pgoutput/lsn.ts';

describe('LSN text form', () => {
  it('parses both halves as hex into one 64-bit position', () => {
    expect(parseLsn('0/21ED240')).toBe(0x21ed240n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
  });

  it('formats back to the server form', () => {
    expect(formatLsn(0n)).toBe('0/0');
    expect(formatLsn((0x16n << 32n) | 0xb374d848n)).toBe('16/B374D848');
  });

  it('rejects text that is not an LSN', () => {
    expect(() => parseLsn('21ED240')).toThrow(/not a PostgreSQL LSN/);
    expect(() => parseLsn('0/123456789')).toThrow(/not a PostgreSQL LSN/);
  });
});

describe('PostgreSQL epoch', () => {
  it('converts 2000-01-01 to Unix microseconds and back', () => {
    expect(pgMicrosToUnixMicros(0n)).toBe(BigInt(Date.UTC(2000, 0, 1)) * 1000n);
    expect(unixMicrosToPgMicros(pgMicrosToUnixMicros(123n))).toBe(123n);
  });
});
