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
