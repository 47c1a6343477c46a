import { describe, expect, it } from 'vitest';
import {
  decimalText,
  decodeDecimal,
  decodeVariableScaleDecimal,
  epochDaysToDate,
  epochMicrosToIso,
  epochMillisToIso,
  epochNanosToIso,
  exactDecimal,
  isoWithFraction,
  microsOfDayToTime,
  millisOfDayToTime,
  nanosOfDayToTime,
  twosComplementToBigInt,
} from '../../../src/io/debezium/logical-types.ts';
// The one encoder of these values (PostgreSQL text -> Debezium), for round trips.
import { unscaledBase64, variableScaleDecimal } from '../../../src/io/postgres/debezium-types.ts';

describe('temporal decoding', () => {
  it('reads MicroTimestamp as the UTC wall clock with microseconds', () => {
    expect(epochMicrosToIso(1735813800123456)).toBe('2025-01-02T10:30:00.123456Z');
    expect(epochMicrosToIso(1735813800000000)).toBe('2025-01-02T10:30:00.000000Z');
    expect(epochMicrosToIso(-1)).toBe('1969-12-31T23:59:59.999999Z');
    expect(epochMicrosToIso(1735813800123456n)).toBe('2025-01-02T10:30:00.123456Z');
  });

  it('reads a NULL-turned-default 0 as the epoch, not as now', () => {
    expect(epochMicrosToIso(0)).toBe('1970-01-01T00:00:00.000000Z');
  });

  it('reads NanoTimestamp and Timestamp keeping their precision', () => {
    expect(epochNanosToIso(1735813800123456789n)).toBe('2025-01-02T10:30:00.123456789Z');
    expect(epochNanosToIso(-1n)).toBe('1969-12-31T23:59:59.999999999Z');
    expect(epochMillisToIso(1735813800123)).toBe('2025-01-02T10:30:00.123Z');
  });

  it('renders every epoch as Date#toISOString does, whichever hour came before', () => {
    const reference = (ms: number, subMilli: string) => {
      const iso = new Date(ms).toISOString();
      return subMilli ? `${iso.slice(0, -1)}${subMilli}Z` : iso;
    };
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const edges = [0, -1, 1, 1.5, -0.5, 3_599_999, 3_600_000, -3_600_000, -3_600_001, Date.parse('0000-01-01T00:00:00Z'), Date.parse('0000-01-01T00:00:00Z') - 1];
    edges.push(Date.parse('9999-12-31T23:59:59.999Z'), Date.parse('+010000-01-01T00:00:00Z'), Date.parse('2024-02-29T23:59:59.999Z'), Date.parse('2025-01-01T00:00:00Z'));
    const samples = [...edges];
    // Runs within one hour (the rendered date is reused) and jumps across centuries (it is not).
    for (let i = 0; i < 3000; i++) {
      const base = i % 3 === 0 ? samples[samples.length - 1]! + Math.floor(random() * 90_000) : Math.floor((random() - 0.3) * 4e14);
      samples.push(base);
    }
    for (const ms of samples) {
      for (const sub of ['', '456', '456789']) expect(isoWithFraction(ms, sub), `${ms}`).toBe(reference(ms, sub));
    }
    expect(() => isoWithFraction(8.64e15 + 1, '')).toThrow(RangeError);
    expect(() => isoWithFraction(Number.NaN, '')).toThrow(RangeError);
  });

  it('reads Date, Time, MicroTime and NanoTime', () => {
    expect(epochDaysToDate(20090)).toBe('2025-01-02');
    expect(epochDaysToDate(-1)).toBe('1969-12-31');
    expect(millisOfDayToTime(37800123)).toBe('10:30:00.123');
    expect(microsOfDayToTime(37800123456)).toBe('10:30:00.123456');
    expect(nanosOfDayToTime(37800123456789n)).toBe('10:30:00.123456789');
    expect(microsOfDayToTime(0)).toBe('00:00:00.000000');
  });
});

describe('decimals', () => {
  it('decodes Debezium examples: AdTA at scale 2 is 1200.00', () => {
    expect(decodeDecimal('AdTA', 2)).toBe(1200);
    expect(decodeDecimal('CfY=', 2)).toBe(25.5);
  });

  it('reads two’s complement negatives', () => {
    expect(twosComplementToBigInt(Uint8Array.from([0xff]))).toBe(-1n);
    expect(twosComplementToBigInt(Uint8Array.from([0x80, 0x00]))).toBe(-32768n);
    expect(twosComplementToBigInt(Uint8Array.from([0x00, 0x80]))).toBe(128n);
    expect(decodeDecimal(unscaledBase64(-5n), 3)).toBe(-0.005);
  });

  it('returns a string when a double cannot hold the decimal exactly', () => {
    expect(decodeDecimal(unscaledBase64(1234567890123456789012n), 2)).toBe('12345678901234567890.12');
    expect(exactDecimal('0.1')).toBe(0.1);
    expect(exactDecimal('12.50')).toBe(12.5);
    expect(exactDecimal('9007199254740993')).toBe('9007199254740993');
  });

  it('formats unscaled values at any scale', () => {
    expect(decimalText(12345n, 2)).toBe('123.45');
    expect(decimalText(-5n, 3)).toBe('-0.005');
    expect(decimalText(7n, 0)).toBe('7');
    expect(decimalText(7n, -2)).toBe('700');
  });

  it('handles VariableScaleDecimal both ways', () => {
    const encoded = variableScaleDecimal('3.140');
    expect(encoded.scale).toBe(2); // Debezium drops trailing fraction zeros
    expect(decodeVariableScaleDecimal(encoded)).toBe(3.14);
  });
});
