import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ColumnInfo, ConnectField } from '../../../src/io/postgres/debezium-types.ts';
import {
  bitsBase64,
  columnCodec,
  daysFromCivil,
  defaultValue,
  intervalMicros,
  parseTimestampMicros,
  timestampText,
  unscaledAt,
  unscaledBase64,
  UnsupportedColumnTypeError,
  variableScaleDecimal,
  zonedTimestampText,
  zonedTimeText,
} from '../../../src/io/postgres/debezium-types.ts';

/**
 * Fixtures: the text form of rows of a table with one column per type (type-probe-text.json, read
 * with the source's session settings) and what real Debezium 2.7.4 emitted for the same rows
 * through Kafka Connect's JsonConverter (debezium-2.7.4-type-probe.json).
 */
interface TextFixture {
  columns: ColumnInfo[];
  rows: Record<string, string | null>[];
}
interface DebeziumMessage {
  key: { payload: Record<string, unknown> } | null;
  value: { schema: { fields: { field: string; fields: ConnectField[] }[] }; payload: { op: string; after: Record<string, unknown> | null } } | null;
}

const text: TextFixture = JSON.parse(readFileSync(new URL('./fixtures/type-probe-text.json', import.meta.url), 'utf8'));
const debezium: DebeziumMessage[] = JSON.parse(readFileSync(new URL('./fixtures/debezium-2.7.4-type-probe.json', import.meta.url), 'utf8'));
const UNSUPPORTED = new Set(['arr', 'pt']);

/** The last event Debezium emitted for a row id (creates and snapshot reads carry the after image). */
function debeziumAfter(id: string): { after: Record<string, unknown>; fields: ConnectField[] } {
  const events = debezium.filter((m) => m.value && String(m.key?.payload.id) === id && m.value.payload.after);
  const last = events.at(-1);
  if (!last?.value?.payload.after) throw new Error(`no Debezium event for id ${id}`);
  return { after: last.value.payload.after, fields: last.value.schema.fields.find((f) => f.field === 'after')!.fields };
}

function encode(col: ColumnInfo, value: string | null): unknown {
  const codec = columnCodec('public.type_probe', col);
  return value === null ? codec.absent : codec.decode(value);
}

describe('column codecs against real Debezium 2.7.4 output', () => {
  for (const row of text.rows) {
    const id = row.id!;
    it(`row ${id}: every supported column has Debezium's value and field schema`, () => {
      const { after, fields } = debeziumAfter(id);
      let compared = 0;
      for (const col of text.columns) {
        if (UNSUPPORTED.has(col.name) || !(col.name in after)) continue;
        expect({ column: col.name, value: encode(col, row[col.name] ?? null) }).toEqual({ column: col.name, value: after[col.name] });
        const field = fields.find((f) => f.field === col.name);
        expect(columnCodec('public.type_probe', col).schema).toEqual(field);
        compared++;
      }
      expect(compared).toBeGreaterThan(25);
    });
  }

  it('refuses a type it cannot encode, naming table, column and type', () => {
    const pt = text.columns.find((c) => c.name === 'pt')!;
    expect(() => columnCodec('public.type_probe', pt)).toThrow(UnsupportedColumnTypeError);
    expect(() => columnCodec('public.type_probe', pt)).toThrow(/table public.type_probe column "pt" has type point \(oid 600\)/);
  });
});

describe('encodings', () => {
  it('writes decimals as minimal two’s complement bytes', () => {
    expect(unscaledBase64(0n)).toBe('AA==');
    expect(unscaledBase64(150n)).toBe('AJY=');
    expect(unscaledBase64(127n)).toBe('fw==');
    expect(unscaledBase64(-128n)).toBe('gA==');
    expect(unscaledBase64(-129n)).toBe('/38=');
    expect(unscaledBase64(-1234567n)).toBe('7Sl5');
  });

  it('rescales decimal text half-up', () => {
    expect(unscaledAt('123.456', 2)).toBe(12346n);
    expect(unscaledAt('123.454', 2)).toBe(12345n);
    expect(unscaledAt('-1.5', 0)).toBe(-2n);
    expect(unscaledAt('1.5', 3)).toBe(1500n);
    expect(() => unscaledAt('abc', 2)).toThrow(/cannot read/);
  });

  it('gives variable scale decimals the scale of their text without trailing zeros', () => {
    expect(variableScaleDecimal('3.14159')).toEqual({ scale: 5, value: 'BMsv' });
    expect(variableScaleDecimal('-0.001200')).toEqual({ scale: 4, value: '9A==' });
    expect(variableScaleDecimal('12')).toEqual({ scale: 0, value: 'DA==' });
  });

  it('reads timestamps as UTC wall clocks, before 1970 and before year 100 too', () => {
    expect(parseTimestampMicros('1970-01-01 00:00:00')).toBe(0n);
    expect(parseTimestampMicros('1969-12-31 23:59:59.5')).toBe(-500_000n);
    expect(parseTimestampMicros('2025-01-02 10:30:00+02')).toBe(BigInt(Date.UTC(2025, 0, 2, 8, 30)) * 1000n);
    expect(parseTimestampMicros('0050-01-01 00:00:00')).toBe(BigInt(daysFromCivil(50, 1, 1)) * 86_400_000_000n);
    expect(() => parseTimestampMicros('Jan 2 2025')).toThrow(/cannot read/);
  });

  it('writes timestamps as PostgreSQL outputs them, and reads them back', () => {
    // Expected texts are PostgreSQL 15's own `::text` output of these values.
    expect(timestampText(1736154312345600n)).toBe('2025-01-06 09:05:12.3456');
    expect(timestampText(1736154312000000n)).toBe('2025-01-06 09:05:12');
    expect(timestampText(-1n)).toBe('1969-12-31 23:59:59.999999');
    expect(timestampText(BigInt(daysFromCivil(0, 1, 1)) * 86_400_000_000n)).toBe('0001-01-01 00:00:00 BC');
    for (const micros of [0n, 1735813800123456n, -62135596800000001n, 253402300799999999n]) {
      expect(parseTimestampMicros(timestampText(micros))).toBe(micros);
    }
  });

  it('formats zoned timestamps with the column precision and zoned times with the digits needed', () => {
    expect(zonedTimestampText(0n, 6)).toBe('1970-01-01T00:00:00.000000Z');
    expect(zonedTimestampText(1_500_000n, 0)).toBe('1970-01-01T00:00:01Z');
    expect(zonedTimestampText(-1n, 3)).toBe('1969-12-31T23:59:59.999Z');
    expect(zonedTimeText('10:30:00.25-01:30')).toBe('12:00:00.25Z');
    expect(zonedTimeText('00:30:00+02')).toBe('22:30:00Z');
  });

  it('counts interval months as 365.25/12 days', () => {
    expect(intervalMicros('1 year 2 mons 3 days -04:05:06.5')).toBe(37061693500000);
    expect(intervalMicros('00:00:01')).toBe(1_000_000);
    expect(() => intervalMicros('P1D')).toThrow(/interval/);
  });

  it('packs bit strings little-endian', () => {
    expect(bitsBase64('101')).toBe('BQ==');
    expect(bitsBase64('100000000')).toBe(Buffer.from([0, 1]).toString('base64'));
  });

  it('derives schema defaults from constants, sequences and clock functions', () => {
    const int = { decode: (t: string) => Number(t), zero: 0 };
    expect(defaultValue("nextval('x_seq'::regclass)", int)).toEqual({ value: 0 });
    expect(defaultValue('CURRENT_TIMESTAMP', int)).toEqual({ value: 0 });
    expect(defaultValue('(-1)', int)).toEqual({ value: -1 });
    expect(defaultValue("'zz'::character varying", { decode: (t) => t, zero: '' })).toEqual({ value: 'zz' });
    expect(defaultValue("'it''s'::text", { decode: (t) => t, zero: '' })).toEqual({ value: "it's" });
    expect(defaultValue('gen_random_uuid()', { decode: (t) => t, zero: '' })).toBeUndefined();
    expect(defaultValue(null, int)).toBeUndefined();
  });
});
