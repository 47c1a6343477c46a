import { describe, expect, it } from 'vitest';
import { isTimeZone, isoMillis, toEpochMillis, toIsoUtc, wallClock } from '../../src/engine/time.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

describe('toEpochMillis', () => {
  it('reads ISO 8601 with Z, offsets, and without a zone as UTC (never the local zone)', () => {
    expect(toEpochMillis('2025-01-02T10:30:00Z')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02T10:30:00')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02 10:30:00')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02T12:30:00+02:00')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02T05:00:00-0530')).toBe(Date.UTC(2025, 0, 2, 10, 30));
    expect(toEpochMillis('2025-01-02')).toBe(Date.UTC(2025, 0, 2));
  });

  it('keeps milliseconds and truncates finer fractions', () => {
    expect(toEpochMillis('2025-01-02T10:30:00.123456Z')).toBe(Date.UTC(2025, 0, 2, 10, 30, 0, 123));
    expect(toEpochMillis('2025-01-02T10:30:00.999999999Z')).toBe(Date.UTC(2025, 0, 2, 10, 30, 0, 999));
    expect(toEpochMillis('2025-01-02T10:30:00.5Z')).toBe(Date.UTC(2025, 0, 2, 10, 30, 0, 500));
  });

  it('takes numbers as epoch milliseconds and refuses everything else', () => {
    expect(toEpochMillis(0)).toBe(0);
    expect(toEpochMillis(1735813800123)).toBe(1735813800123);
    expect(toEpochMillis(Number.NaN)).toBeUndefined();
    expect(toEpochMillis('yesterday')).toBeUndefined();
    expect(toEpochMillis(null)).toBeUndefined();
    expect(toEpochMillis({})).toBeUndefined();
  });
});

describe('toEpochMillis, the UTC form read without a regex', () => {
  it('agrees with the general reader and with Date.parse on random times, and hands every other form to the general reader', () => {
    const random = mulberry32(99);
    const pad = (n: number, w: number) => String(n).padStart(w, '0');
    for (let i = 0; i < 5000; i++) {
      const ms = Math.floor(random() * 4e12) - 1e12;
      const d = new Date(ms);
      const digits = Math.floor(random() * 10);
      const fraction = digits === 0 ? '' : `.${pad(d.getUTCMilliseconds(), 3)}${pad(Math.floor(random() * 1e6), 6)}`.slice(0, digits + 1);
      const base = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}${random() < 0.8 ? 'T' : ' '}${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
      const text = `${base}${fraction}${random() < 0.9 ? 'Z' : 'z'}`;
      expect(toEpochMillis(text), text).toBe(isoMillis(text));
      if (d.getUTCFullYear() >= 1970 && d.getUTCFullYear() <= 9999) expect(toEpochMillis(text), text).toBe(Date.parse(text.replace(' ', 'T').toUpperCase()));
    }
    const others = ['2025-01-02T10:30:00+02:00', '2025-01-02 10:30', '2025-01-02', ' 2025-01-02T10:30:00Z ', '2025-01-02T10:30:00.Z', '2025-01-02T10:30:00.1234567890Z', '2025-13-40T25:61:61Z', '2025-01-02X10:30:00Z', '20250-01-02T10:30:00Z', '2025-01-02T10:30:00 Z'];
    for (const text of others) expect(toEpochMillis(text), text).toBe(isoMillis(text));
  });
});

describe('wallClock', () => {
  it('gives the UTC wall clock by default and the zone wall clock when asked', () => {
    const ms = Date.UTC(2025, 2, 30, 0, 30); // 01:30 CET -> clocks jump at 02:00 to 03:00 CEST
    expect(wallClock(ms)).toMatchObject({ year: 2025, month: 3, day: 30, hour: 0, minute: 30, weekday: 7 });
    expect(wallClock(ms, 'Europe/Berlin')).toMatchObject({ day: 30, hour: 1, minute: 30 });
    expect(wallClock(ms + 3_600_000, 'Europe/Berlin')).toMatchObject({ hour: 3, minute: 30 });
  });

  it('knows IANA zones', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });

  it('prints UTC with milliseconds', () => {
    expect(toIsoUtc(Date.UTC(2025, 0, 6, 9))).toBe('2025-01-06T09:00:00.000Z');
  });
});

describe('toIsoUtc against Date#toISOString', () => {
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
      for (const sub of ['', '456', '456789']) expect(toIsoUtc(ms, sub), `${ms}`).toBe(reference(ms, sub));
    }
    expect(() => toIsoUtc(8.64e15 + 1, '')).toThrow(RangeError);
    expect(() => toIsoUtc(Number.NaN, '')).toThrow(RangeError);
  });

  it('renders alternating hours, and hours that share a remembered slot, as Date#toISOString does', () => {
    const hour = 3_600_000;
    const samples: number[] = [];
    // A window's start and end, one hour apart, rendered in turn (before and after 1970), and
    // hours 16 and 32 apart, which a cache keyed by hour modulo 16 would confuse.
    for (const base of [Date.UTC(2025, 0, 6, 9, 0, 0, 1), Date.UTC(1969, 11, 31, 20, 59, 59, 999)]) {
      for (let h = 0; h < 40; h++) samples.push(base + h * hour, base + (h + 1) * hour - 1, base + (h + 16) * hour + 7, base - (h + 32) * hour, base + h * hour + 1);
    }
    for (const ms of samples) expect(toIsoUtc(ms), `${ms}`).toBe(new Date(ms).toISOString());
  });
});
