import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJson, stringifyJson } from '../../../src/engine/json.ts';
import type { ConnectSchema } from '../../../src/io/debezium/connect-schema.ts';
import { compileRowDecoder, DebeziumDecoder, NotAnEnvelopeError, UNAVAILABLE_PLACEHOLDER, hintSchema } from '../../../src/io/debezium/decoder.ts';
import type { TableInfo } from '../../../src/io/postgres/catalog.ts';
import { captureTable, encodeKey, encodeRow, encodeValue, type ChangeFacts, type Row, type TextRow } from '../../../src/io/postgres/change-events.ts';

/** Inputs are made by the postgres-cdc encoder (checked against real Debezium) from a table as the catalog describes it. */
const info: TableInfo = {
  oid: 16400,
  schema: 'public',
  table: 'orders',
  replicaIdentity: 'd',
  primaryKey: ['id'],
  columns: [
    { name: 'id', typeOid: 20, typeMod: -1, typeName: 'bigint', notNull: true, defaultExpr: null },
    { name: 'placed_at', typeOid: 1114, typeMod: -1, typeName: 'timestamp without time zone', notNull: false, defaultExpr: 'CURRENT_TIMESTAMP' },
    { name: 'placed_on', typeOid: 1082, typeMod: -1, typeName: 'date', notNull: false, defaultExpr: null },
    { name: 'at_time', typeOid: 1083, typeMod: -1, typeName: 'time without time zone', notNull: false, defaultExpr: null },
    { name: 'legacy_ms', typeOid: 1114, typeMod: 3, typeName: 'timestamp(3) without time zone', notNull: false, defaultExpr: null },
    { name: 'zoned', typeOid: 1184, typeMod: -1, typeName: 'timestamp with time zone', notNull: false, defaultExpr: null },
    { name: 'price', typeOid: 1700, typeMod: ((10 << 16) | 2) + 4, typeName: 'numeric(10,2)', notNull: false, defaultExpr: null },
    { name: 'ratio', typeOid: 1700, typeMod: -1, typeName: 'numeric', notNull: false, defaultExpr: null },
    { name: 'attrs', typeOid: 3802, typeMod: -1, typeName: 'jsonb', notNull: false, defaultExpr: null },
    { name: 'note', typeOid: 25, typeMod: -1, typeName: 'text', notNull: false, defaultExpr: null },
  ],
};
const table = captureTable(info, info.columns.map((c) => c.name), 'shop');

/**
 * postgres-cdc refuses array columns, so a text[] column `tags` is added by hand, as Debezium 2.7
 * declares one: an optional array of optional strings.
 */
const TAGS_FIELD: ConnectSchema = { type: 'array', items: { type: 'string', optional: true }, optional: true, field: 'tags' };
const envelopeSchema: ConnectSchema = {
  ...table.envelopeSchema,
  fields: table.envelopeSchema.fields!.map((f) => (f.field === 'before' || f.field === 'after' ? { ...f, fields: [...f.fields!, TAGS_FIELD] } : f)),
};

const facts: ChangeFacts = {
  op: 'c',
  snapshot: 'false',
  db: 'shop',
  topicPrefix: 'shop',
  txId: 770,
  lsn: 24023128n,
  lastCommitLsn: 24023000n,
  commitMicros: 1735813800123456n,
  processedNanos: 1735813800200123456n,
};

/** A row as pgoutput sends it (PostgreSQL's text output); `undefined` marks an unchanged TOASTed value. */
const fullText: TextRow = [
  '9007199254740993',
  '2025-01-02 10:30:00.123456',
  '2025-01-02',
  '10:30:00.123456',
  '2025-01-02 10:30:00.123',
  '2025-01-02 10:30:00.5+00',
  '1200.00',
  '3.140',
  '{"n": 12345678901234567890, "gift": true}',
  'hello',
];
const fullRow: Row = { ...encodeRow(table, fullText), tags: ['a', 'b'] };

const decodedRow = {
  id: 9007199254740993n,
  placed_at: '2025-01-02T10:30:00.123456Z',
  placed_on: '2025-01-02',
  at_time: '10:30:00.123456',
  legacy_ms: '2025-01-02T10:30:00.123Z',
  zoned: '2025-01-02T10:30:00.500000Z',
  price: 1200,
  ratio: 3.14,
  attrs: { gift: true, n: 12345678901234567890n },
  note: 'hello',
  tags: ['a', 'b'],
};

interface Change {
  op?: ChangeFacts['op'];
  before?: Row | null;
  after?: Row | null;
}

/** The change event's value as an object ({schema, payload}). */
function value(c: Change): { schema: ConnectSchema; payload: Row } {
  const { payload } = encodeValue(table, { ...facts, op: c.op ?? 'c' }, c.before ?? null, c.after ?? null);
  return { schema: envelopeSchema, payload };
}

/** The change event's value as JsonConverter puts it on the topic. */
function valueText(c: Change): string {
  return stringifyJson(value(c));
}

describe('DebeziumDecoder with schemas', () => {
  it('decodes every default encoding driven by the schema, bigints exact', () => {
    const decoded = new DebeziumDecoder().decodeValue(valueText({ after: fullRow }));
    expect(decoded?.after).toEqual(decodedRow);
    expect(decoded?.payload.op).toBe('c');
    expect(decoded?.payload.ts_ns).toBe(1735813800200123456n);
    expect(decoded?.payload.source?.ts_ns).toBe(1735813800123456000n);
    expect(decoded?.payload.source?.snapshot).toBe('false');
  });

  it('decodes the same schema again from its cached prefix, from strings and from bytes', () => {
    const decoder = new DebeziumDecoder();
    const first = valueText({ after: fullRow });
    const second = valueText({ after: { ...fullRow, id: 2, note: 'second' } });
    expect(decoder.decodeValue(first)?.after).toEqual(decodedRow);
    expect(decoder.decodeValue(second)?.after).toEqual({ ...decodedRow, id: 2, note: 'second' });
    expect(decoder.decodeValue(Buffer.from(second))?.after).toEqual({ ...decodedRow, id: 2, note: 'second' });
  });

  it('decodes messages not laid out as the JsonConverter writes them (pretty, payload first)', () => {
    const decoder = new DebeziumDecoder();
    const event = value({ after: fullRow });
    const pretty = stringifyJson(event, 2);
    const payloadFirst = `{"payload":${stringifyJson(event.payload)},"schema":${stringifyJson(event.schema)}}`;
    for (const text of [pretty, pretty, payloadFirst, payloadFirst]) expect(decoder.decodeValue(text)?.after).toEqual(decodedRow);
  });

  it('decodes already structured values (generator, postgres-cdc)', () => {
    expect(new DebeziumDecoder().decodeValue(value({ after: fullRow }))?.after).toEqual(decodedRow);
  });

  it('keeps before null on an update under REPLICA IDENTITY DEFAULT', () => {
    const decoded = new DebeziumDecoder().decodeValue(valueText({ op: 'u', after: fullRow }));
    expect(decoded?.before).toBeNull();
    expect(decoded?.after).toEqual(decodedRow);
  });

  it('decodes a delete: after null, before the key with defaults where NULL had one', () => {
    const decoded = new DebeziumDecoder().decodeValue(valueText({ op: 'd', before: { ...encodeRow(table, ['5']), tags: null } }));
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
      valueText({ op: 'u', after: { ...encodeRow(table, [...fullText.slice(0, 9), undefined]), tags: [UNAVAILABLE_PLACEHOLDER] } }),
    );
    expect(decoded?.after).not.toHaveProperty('note');
    expect(decoded?.after).not.toHaveProperty('tags');
    expect(decoded?.unavailable).toEqual(['note', 'tags']);
  });

  it('recognises the placeholder in bytes columns too (base64 of its UTF-8), before any decimal decoding', () => {
    const placeholderBytes = Buffer.from(UNAVAILABLE_PLACEHOLDER).toString('base64');
    const decoded = new DebeziumDecoder().decodeValue(valueText({ op: 'u', after: { ...fullRow, price: placeholderBytes } }));
    expect(decoded?.after).not.toHaveProperty('price');
    expect(decoded?.unavailable).toEqual(['price']);
  });

  it('says which column holds a value of the wrong type', () => {
    const bad = valueText({ after: { ...fullRow, placed_at: 'yesterday' } });
    expect(() => new DebeziumDecoder().decodeValue(bad)).toThrow(/column `placed_at`: expected epoch microseconds/);
  });

  it('never copies the column value into the message: it goes to headers and logs, and is personal data of any size', () => {
    const secret = `jane.doe@example.com ${'x'.repeat(100_000)}`;
    const bad = valueText({ after: { ...fullRow, placed_at: secret } });
    expect(() => new DebeziumDecoder().decodeValue(bad)).toThrow(
      'column `placed_at`: expected epoch microseconds as an integer, got a string of 100021 characters',
    );
  });
});

describe('DebeziumDecoder with exactMeta: false (nothing reads the envelope\'s ts_ns)', () => {
  const safeRow: Row = { ...fullRow, id: 42, attrs: '{"gift":true}' };
  const decodedSafe = { ...decodedRow, id: 42, attrs: { gift: true } };

  it('keeps the row exact and leaves ts_ns the double JSON.parse makes of it, once the schema is known', () => {
    const decoder = new DebeziumDecoder({ exactMeta: false });
    const text = valueText({ after: safeRow });
    decoder.decodeValue(text); // the first message of a schema is parsed whole, exactly, to learn it
    for (const message of [text, Buffer.from(text)]) {
      const decoded = decoder.decodeValue(message)!;
      expect(decoded.after).toEqual(decodedSafe);
      expect(decoded.payload.ts_ns).toBe(Number('1735813800200123456'));
      expect(decoded.payload.source?.ts_ns).toBe(Number('1735813800123456000'));
      expect(decoded.payload.source?.lsn).toBe(24023128);
    }
  });

  it('parses the whole payload exactly when a row holds an integer beyond 2^53', () => {
    const decoder = new DebeziumDecoder({ exactMeta: false });
    const text = valueText({ after: fullRow, before: { ...fullRow, id: 1, attrs: null } });
    decoder.decodeValue(text);
    const decoded = decoder.decodeValue(text)!;
    expect(decoded.after).toEqual(decodedRow);
    expect(decoded.before?.id).toBe(1);
    expect(decoded.payload.ts_ns).toBe(1735813800200123456n);
  });

  it('decodes what the exact decoder decodes, but for the envelope integers a double cannot hold', () => {
    const exact = new DebeziumDecoder();
    const inexact = new DebeziumDecoder({ exactMeta: false });
    // The exact payload as JSON.parse reads it: every integer a double of its own.
    const asDoubles = (v: unknown): unknown => JSON.parse(stringifyJson(v)) as unknown;
    for (let id = 1; id <= 5; id++) {
      const text = valueText({ op: id === 5 ? 'u' : 'c', before: id === 5 ? { ...safeRow, id } : null, after: { ...safeRow, id, note: `n${id}` } });
      const a = exact.decodeValue(text)!;
      const b = inexact.decodeValue(text)!;
      expect(b.after).toEqual(a.after);
      expect(b.before).toEqual(a.before);
      expect(b.payload).toEqual(id === 1 ? a.payload : asDoubles(a.payload));
    }
  });

  it('still refuses a 19-digit value in an int32 column, though it parsed as a double', () => {
    const decoder = new DebeziumDecoder({ exactMeta: false });
    const event = value({ after: safeRow });
    const int32Schema: ConnectSchema = {
      ...event.schema,
      fields: event.schema.fields!.map((f) => (f.field === 'after' ? { ...f, fields: [...f.fields!, { type: 'int32', optional: true, field: 'small' }] } : f)),
    };
    const text = (small: string) => `{"schema":${stringifyJson(int32Schema)},"payload":${stringifyJson({ ...event.payload, after: { ...event.payload.after as Row } }).replace('"note":', `"small":${small},"note":`)}}`;
    expect(decoder.decodeValue(text('5'))?.after?.small).toBe(5);
    expect(() => decoder.decodeValue(text('12345678901234567891'))).toThrow(/column `small`: expected an int32/);
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
    const key = stringifyJson(encodeKey(table, fullRow));
    expect(decoder.decodeKey(key)).toEqual({ id: 9007199254740993n });
    expect(decoder.decodeKey(Buffer.from(key))).toEqual({ id: 9007199254740993n });
    expect(decoder.decodeKey('{"id":15}')).toEqual({ id: 15 });
    expect(decoder.decodeKey('plain-key')).toBe('plain-key');
    expect(decoder.decodeKey(null)).toBeNull();
  });
});

describe('real Debezium 2.7.4 messages (employee_activities: insert, update, delete, tombstone)', () => {
  const fixture = parseJson(readFileSync(new URL('../postgres/fixtures/debezium-2.7.4-employee-activities.json', import.meta.url), 'utf8')) as unknown as {
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

describe('column types', () => {
  it('refuses a value that is not of its column declared Connect type', () => {
    const schema = {
      type: 'struct',
      fields: [
        { type: 'int32', optional: true, field: 'n' },
        { type: 'string', optional: true, field: 's' },
        { type: 'boolean', optional: true, field: 'b' },
        { type: 'double', optional: true, field: 'd' },
      ],
    } as const;
    const decode = compileRowDecoder(schema as unknown as ConnectSchema);
    expect(decode({ n: 1, s: 'x', b: true, d: 'NaN' }, [])).toEqual({ n: 1, s: 'x', b: true, d: 'NaN' });
    expect(() => decode({ n: 'twelve' }, [])).toThrow('column `n`: expected an int32, got a string of 6 characters');
    expect(() => decode({ n: 1.5 }, [])).toThrow('column `n`: expected an int32, got a number');
    expect(() => decode({ s: 5 }, [])).toThrow('column `s`: expected a string, got an integer');
    expect(() => decode({ b: 'true' }, [])).toThrow(/expected a boolean/);
    expect(decode({ n: null }, [])).toEqual({ n: null });
  });
});
