import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJson, stringifyJson } from '../../../src/engine/json.ts';
import { DebeziumDecoder, NotAnEnvelopeError, UNAVAILABLE_PLACEHOLDER, hintSchema } from '../../../src/io/debezium/decoder.ts';
import { encodeChange, encodeDecimal, tableSchemas, type PgChange, type PgTable } from '../../../src/io/debezium/index.ts';

const table: PgTable = {
  topicPrefix: 'shop',
  schema: 'public',
  table: 'orders',
  key: ['id'],
  columns: [
    { name: 'id', type: 'int8', optional: false },
    { name: 'placed_at', type: 'timestamp', optional: true, default: 0 },
    { name: 'placed_on', type: 'date', optional: true },
    { name: 'at_time', type: 'time', optional: true },
    { name: 'legacy_ms', type: 'timestamp', precision: 3, optional: true },
    { name: 'zoned', type: 'timestamptz', optional: true },
    { name: 'price', type: 'numeric', precision: 10, scale: 2, optional: true },
    { name: 'ratio', type: 'numeric', optional: true },
    { name: 'attrs', type: 'jsonb', optional: true },
    { name: 'note', type: 'text', optional: true },
    { name: 'tags', type: '_text', optional: true },
  ],
};
const schemas = tableSchemas(table);

function change(overrides: Partial<PgChange>): PgChange {
  return {
    op: 'c',
    before: null,
    after: null,
    commitMicros: 1735813800123456,
    processedNanos: 1735813800200123456n,
    db: 'shop',
    txId: 770,
    lsn: 24023128,
    lastCommitLsn: 24023000,
    ...overrides,
  };
}

const fullRow = {
  id: 9007199254740993n,
  placed_at: 1735813800123456,
  placed_on: 20090,
  at_time: 37800123456,
  legacy_ms: 1735813800123,
  zoned: '2025-01-02T10:30:00.5Z',
  price: encodeDecimal('1200.00', 2),
  ratio: { scale: 3, value: encodeDecimal('3.140', 3) },
  attrs: '{"gift":true,"n":12345678901234567890}',
  note: 'hello',
  tags: ['a', 'b'],
};

const decodedRow = {
  id: 9007199254740993n,
  placed_at: '2025-01-02T10:30:00.123456Z',
  placed_on: '2025-01-02',
  at_time: '10:30:00.123456',
  legacy_ms: '2025-01-02T10:30:00.123Z',
  zoned: '2025-01-02T10:30:00.5Z',
  price: 1200,
  ratio: 3.14,
  attrs: { gift: true, n: 12345678901234567890n },
  note: 'hello',
  tags: ['a', 'b'],
};

function valueText(c: PgChange): string {
  return stringifyJson(encodeChange(schemas, table, c).value);
}

describe('DebeziumDecoder with schemas', () => {
  it('decodes every default encoding driven by the schema, bigints exact', () => {
    const decoded = new DebeziumDecoder().decodeValue(valueText(change({ after: fullRow })));
    expect(decoded?.after).toEqual(decodedRow);
    expect(decoded?.payload.op).toBe('c');
    expect(decoded?.payload.ts_ns).toBe(1735813800200123456n);
    expect(decoded?.payload.source?.ts_ns).toBe(1735813800123456000n);
    expect(decoded?.payload.source?.snapshot).toBe('false');
  });

  it('decodes the same schema again from its cached prefix, from strings and from bytes', () => {
    const decoder = new DebeziumDecoder();
    const first = valueText(change({ after: fullRow }));
    const second = valueText(change({ after: { ...fullRow, id: 2, note: 'second' } }));
    expect(decoder.decodeValue(first)?.after).toEqual(decodedRow);
    expect(decoder.decodeValue(second)?.after).toEqual({ ...decodedRow, id: 2, note: 'second' });
    expect(decoder.decodeValue(Buffer.from(second))?.after).toEqual({ ...decodedRow, id: 2, note: 'second' });
  });

  it('decodes messages not laid out as the JsonConverter writes them (pretty, payload first)', () => {
    const decoder = new DebeziumDecoder();
    const event = encodeChange(schemas, table, change({ after: fullRow }));
    const pretty = stringifyJson(event.value, 2);
    const payloadFirst = `{"payload":${stringifyJson(event.value?.payload)},"schema":${stringifyJson(event.value?.schema)}}`;
    for (const text of [pretty, pretty, payloadFirst, payloadFirst]) expect(decoder.decodeValue(text)?.after).toEqual(decodedRow);
  });

  it('decodes already structured values (generator, postgres-cdc)', () => {
    const event = encodeChange(schemas, table, change({ after: fullRow }));
    expect(new DebeziumDecoder().decodeValue(event.value)?.after).toEqual(decodedRow);
  });

  it('keeps before null on an update under REPLICA IDENTITY DEFAULT', () => {
    const decoded = new DebeziumDecoder().decodeValue(valueText(change({ op: 'u', after: fullRow })));
    expect(decoded?.before).toBeNull();
    expect(decoded?.after).toEqual(decodedRow);
  });

  it('decodes a delete: after null, before the key with defaults where NULL had one', () => {
    const decoded = new DebeziumDecoder().decodeValue(valueText(change({ op: 'd', before: { id: 5 } })));
    expect(decoded?.after).toBeNull();
    expect(decoded?.before).toMatchObject({ id: 5, placed_at: '1970-01-01T00:00:00.000000Z', note: null });
  });

  it('returns null for tombstones in every form', () => {
    const decoder = new DebeziumDecoder();
    expect(decoder.decodeValue(null)).toBeNull();
    expect(decoder.decodeValue('null')).toBeNull();
    expect(decoder.decodeValue('{"schema":null,"payload":null}')).toBeNull();
  });

  it('drops unchanged TOASTed values from the image and lists them', () => {
    const decoded = new DebeziumDecoder().decodeValue(
      valueText(change({ op: 'u', after: { ...fullRow, note: UNAVAILABLE_PLACEHOLDER, tags: [UNAVAILABLE_PLACEHOLDER] } })),
    );
    expect(decoded?.after).not.toHaveProperty('note');
    expect(decoded?.after).not.toHaveProperty('tags');
    expect(decoded?.unavailable).toEqual(['note', 'tags']);
  });

  it('recognises the placeholder in bytes columns too (base64 of its UTF-8), before any decimal decoding', () => {
    const placeholderBytes = Buffer.from(UNAVAILABLE_PLACEHOLDER).toString('base64');
    const decoded = new DebeziumDecoder().decodeValue(valueText(change({ op: 'u', after: { ...fullRow, price: placeholderBytes } })));
    expect(decoded?.after).not.toHaveProperty('price');
    expect(decoded?.unavailable).toEqual(['price']);
  });

  it('says which column holds a value of the wrong type', () => {
    const bad = valueText(change({ after: { ...fullRow, placed_at: 'yesterday' } }));
    expect(() => new DebeziumDecoder().decodeValue(bad)).toThrow(/column `placed_at`: expected epoch microseconds/);
  });
});

describe('DebeziumDecoder without schemas', () => {
  const bare = {
    before: null,
    after: { id: 15, activity_timestamp: 1735813800123456, price: 'AdTA', note: UNAVAILABLE_PLACEHOLDER },
    source: { ts_ms: 1735813800123, snapshot: 'false', table: 'employee_activities' },
    op: 'c',
    ts_ms: 1735813800200,
  };

  it('leaves values as sent when no hint names them, but never passes the placeholder on', () => {
    const decoded = new DebeziumDecoder().decodeValue(JSON.stringify(bare));
    expect(decoded?.after).toEqual({ id: 15, activity_timestamp: 1735813800123456, price: 'AdTA' });
    expect(decoded?.unavailable).toEqual(['note']);
  });

  it('applies column hints, short or full names, Decimal with a scale', () => {
    const decoder = new DebeziumDecoder({
      columns: { activity_timestamp: 'MicroTimestamp', price: { type: 'org.apache.kafka.connect.data.Decimal', scale: 2 } },
    });
    expect(decoder.decodeValue(JSON.stringify({ payload: bare }))?.after).toEqual({
      id: 15,
      activity_timestamp: '2025-01-02T10:30:00.123456Z',
      price: 1200,
    });
  });

  it('refuses an unknown hint type', () => {
    expect(() => hintSchema('x', 'MicroTimestamps')).toThrow(/unknown Debezium type `MicroTimestamps`/);
  });
});

describe('envelope errors', () => {
  const decoder = new DebeziumDecoder();
  it.each([
    ['[1,2]', /not a JSON object/],
    ['{"after":{"id":1}}', /`op` is missing/],
    ['{"op":"x","after":{}}', /unknown Debezium op "x"/],
    ['{"op":"c","after":null}', /without an `after` image/],
    ['{"op":"c","after":5}', /`after` is neither an object nor null/],
    ['{"schema":{"type":"nope"},"payload":{"op":"c","after":{}}}', /not a Connect type/],
    ['{"schema":{"type":"struct","fields":[]},"payload":{"op":"c","after":{}}}', /schema has no `op` field/],
  ])('%s', (text, message) => {
    expect(() => decoder.decodeValue(text)).toThrow(NotAnEnvelopeError);
    expect(() => decoder.decodeValue(text)).toThrow(message);
  });
});

describe('keys', () => {
  it('decodes {schema, payload} keys to their payload, bare keys as they are, non-JSON as text', () => {
    const decoder = new DebeziumDecoder();
    const key = stringifyJson(encodeChange(schemas, table, change({ after: fullRow })).key);
    expect(decoder.decodeKey(key)).toEqual({ id: 9007199254740993n });
    expect(decoder.decodeKey(Buffer.from(key))).toEqual({ id: 9007199254740993n });
    expect(decoder.decodeKey('{"id":15}')).toEqual({ id: 15 });
    expect(decoder.decodeKey('plain-key')).toBe('plain-key');
    expect(decoder.decodeKey(null)).toBeNull();
  });
});

describe('real Debezium 2.7.4 messages (employee_activities: insert, update, delete, tombstone)', () => {
  const fixture = parseJson(readFileSync(new URL('./fixtures/debezium-2.7.4-employee-activities.json', import.meta.url), 'utf8')) as unknown as {
    key: unknown;
    value: unknown;
  }[];
  // As they were on the topic: compact JsonConverter text.
  const values = fixture.map((m) => (m.value === null ? null : Buffer.from(stringifyJson(m.value))));

  it('decodes each into the row image and envelope facts', () => {
    const decoder = new DebeziumDecoder();
    const [insert, update, del, tombstone] = values.map((v) => decoder.decodeValue(v));
    expect(insert?.after).toEqual({
      id: 1,
      employee_id: 1,
      activity_type: 'login',
      page_url: '/dashboard',
      duration_seconds: 45,
      ip_address: '192.168.1.100',
      user_agent: 'Mozilla/5.0',
      activity_timestamp: '2025-01-02T10:30:00.123456Z',
    });
    expect(insert?.payload.ts_ns).toBe(1795592017644052700n);
    expect(update?.payload.op).toBe('u');
    expect(update?.before).toBeNull();
    expect(update?.after).toMatchObject({ duration_seconds: 50 });
    expect(del?.payload.op).toBe('d');
    expect(del?.before).toMatchObject({ id: 1, activity_type: '', activity_timestamp: '1970-01-01T00:00:00.000000Z' });
    expect(tombstone).toBeNull();
    expect(fixture.map((m) => decoder.decodeKey(Buffer.from(stringifyJson(m.key))))).toEqual([{ id: 1 }, { id: 1 }, { id: 1 }, { id: 1 }]);
  });
});
