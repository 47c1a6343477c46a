import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { debeziumFormat } from '../../../src/components/formats/debezium.ts';
import { EMPLOYEE_ACTIVITY_DEFAULTS, EmployeeActivitySimulator } from '../../../src/components/sources/generator/employee-activity.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { RecordError } from '../../../src/engine/errors.ts';
import { parseJson, stringifyJson } from '../../../src/engine/json.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { RefusedValue, type RawMessage } from '../../../src/engine/record.ts';

const ctx = { name: 'activities', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' as const };
const position = { source: 'activities', partition: 'activities/t/0', offset: '0' };

function message(value: unknown, key: unknown = null): RawMessage {
  return { key, value, headers: {}, timestamp: 5, position };
}

/** The seed's example insert, as Debezium 2.x really sends it: epoch µs, schema-less here. */
const seedInsert = {
  before: null,
  after: { id: 15, employee_id: 1, activity_type: 'page_view', page_url: '/dashboard', duration_seconds: 45, activity_timestamp: 1735813800123456 },
  source: {
    version: '2.7.3.Final',
    connector: 'postgresql',
    name: 'employee-server',
    ts_ms: 1735813800200,
    snapshot: 'false',
    db: 'streaming_db',
    schema: 'public',
    table: 'employee_activities',
    txId: 771,
    lsn: 24023128,
    ts_ns: 0,
  },
  op: 'c',
  ts_ms: 1735813800300,
};

describe('debezium format', () => {
  it('makes the row image the value and puts the envelope in meta', () => {
    const format = debeziumFormat.create({ columns: { activity_timestamp: 'MicroTimestamp' } }, ctx);
    const text = JSON.stringify(seedInsert).replace('"ts_ns":0', '"ts_ns":1735813800200123457'); // beyond 2^53: JSON.parse would round it
    const decoded = format.decode(message(text, '{"id":15}'));
    expect(decoded.value).toEqual({ ...seedInsert.after, activity_timestamp: '2025-01-02T10:30:00.123456Z' });
    expect(decoded.key).toEqual({ id: 15 });
    expect(decoded.time).toBe(1735813800200);
    expect(decoded.meta).toMatchObject({ op: 'c', before: null, ts_ms: 1735813800300, table: 'employee_activities', db: 'streaming_db', lsn: 24023128, txId: 771, snapshot: 'false' });
    expect((decoded.meta.source as Record<string, unknown>).ts_ns).toBe(1735813800200123457n);
    expect(decoded.meta).not.toHaveProperty('unavailable');
  });

  it('uses the before image for deletes and marks tombstones', () => {
    const format = debeziumFormat.create({}, ctx);
    const del = format.decode(message(JSON.stringify({ ...seedInsert, op: 'd', before: { id: 15 }, after: null })));
    expect(del.value).toEqual({ id: 15 });
    expect(del.meta.op).toBe('d');
    const tombstone = format.decode(message(null, '{"id":15}'));
    expect(tombstone).toEqual({ key: { id: 15 }, value: null, meta: { tombstone: true } });
  });

  it('lists unavailable TOASTed columns in meta instead of passing the placeholder on', () => {
    const format = debeziumFormat.create({}, ctx);
    const update = { ...seedInsert, op: 'u', after: { ...seedInsert.after, user_agent: '__debezium_unavailable_value' } };
    const decoded = format.decode(message(JSON.stringify(update)));
    expect(decoded.value).not.toHaveProperty('user_agent');
    expect(decoded.meta.unavailable).toEqual(['user_agent']);
  });

  it('decodes generator events (schema envelopes) as text and as objects alike', () => {
    const sim = new EmployeeActivitySimulator({ ...EMPLOYEE_ACTIVITY_DEFAULTS, seed: 3, startMs: Date.UTC(2025, 0, 6, 8) });
    const event = sim.next();
    const format = debeziumFormat.create({}, ctx);
    const fromText = format.decode(message(stringifyJson(event.value), stringifyJson(event.key)));
    const fromObject = format.decode(message(event.value, event.key));
    expect(fromText).toEqual(fromObject);
    expect((fromText.value as Record<string, unknown>).activity_timestamp).toMatch(/^2025-01-06T0[89]:\d{2}:\d{2}\.\d{6}Z$/);
    expect(fromText.key).toEqual({ id: 1 });
  });

  it('raises RecordErrors that say what is wrong', () => {
    const format = debeziumFormat.create({ max_bytes: 2000 }, ctx);
    const cases: [unknown, RegExp][] = [
      ['{"op":', /not JSON|unexpected end of JSON at line 1 column 7/],
      ['{"after":{"id":1}}', /`op` is missing/],
      ['{"op":"z","after":{}}', /unknown Debezium op "z"/],
      ['x'.repeat(2001), /value too large: 2001 bytes, max_bytes is 2000/],
    ];
    for (const [value, error] of cases) {
      expect(() => format.decode(message(value))).toThrow(RecordError);
      expect(() => format.decode(message(value))).toThrow(error);
    }
  });

  it('refuses unknown column hints when created', () => {
    expect(() => debeziumFormat.create({ columns: { t: 'Microtimestamp' } }, ctx)).toThrow(/unknown Debezium type `Microtimestamp`/);
  });
  it('sends a line its source refused (too long) to the errors port with the source\'s reason', () => {
    const refusal = new RecordError('E_LINE_TOO_LONG', 'line 2 of in.jsonl is longer than 10 characters (max_line_length): skipped to its end', 'sources.in');
    const refused = { key: null, value: new RefusedValue(refusal), headers: {}, timestamp: 0, position: { source: 'in', partition: 'in/p', offset: '2' } };
    expect(() => debeziumFormat.create({}, ctx).decode(refused)).toThrow(refusal);
  });
});

describe('debezium format: exact envelope integers only where a node reads them', () => {
  // Real Debezium 2.7.4 messages, as they were on the topic (compact JsonConverter text).
  const fixture = parseJson(readFileSync(new URL('../../io/postgres/fixtures/debezium-2.7.4-employee-activities.json', import.meta.url), 'utf8')) as unknown as { value: unknown }[];
  const insertText = stringifyJson(fixture[0]!.value);
  // The digits Debezium wrote, read off the text, not by the code under test.
  const tsNsDigits = /"ts_ns":(\d+)\}$/.exec(insertText.slice(0, -1))![1]!;
  const sourceTsNsDigits = /"source":\{[^}]*"ts_ns":(\d+)/.exec(insertText)![1]!;

  function metaOfSecondDecode(readsMeta?: (member: string) => boolean): Record<string, unknown> {
    const format = debeziumFormat.create({}, { ...ctx, ...(readsMeta ? { readsMeta } : {}) });
    format.decode(message(insertText)); // the first message of a schema is parsed whole, to learn it
    return format.decode(message(Buffer.from(insertText))).meta;
  }

  it('keeps ts_ns exact when a node reads it, or when nothing says what is read', () => {
    expect(BigInt(tsNsDigits) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    for (const readsMeta of [undefined, (m: string) => m === 'ts_ns', (m: string) => m === 'source']) {
      const meta = metaOfSecondDecode(readsMeta);
      expect(meta.ts_ns).toBe(BigInt(tsNsDigits));
      expect((meta.source as Record<string, unknown>).ts_ns).toBe(BigInt(sourceTsNsDigits));
    }
  });

  it('leaves them doubles when only op is read, the row and the rest of $meta unchanged', () => {
    const exact = metaOfSecondDecode();
    const meta = metaOfSecondDecode((m) => m === 'op');
    expect(meta.ts_ns).toBe(Number(tsNsDigits));
    expect((meta.source as Record<string, unknown>).ts_ns).toBe(Number(sourceTsNsDigits));
    expect(JSON.parse(stringifyJson(meta))).toEqual(JSON.parse(stringifyJson(exact)));
  });
});
