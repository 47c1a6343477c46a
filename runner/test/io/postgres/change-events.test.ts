import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { employeeActivitiesTable } from '../../../src/components/sources/generator/employee-activity.ts';
import { parseJson, stringifyJson } from '../../../src/engine/json.ts';
import { captureTable, encodeKey, encodeRow, encodeValue, sameKey, type ChangeFacts, type Row } from '../../../src/io/postgres/change-events.ts';

/**
 * Fixture: what real Debezium 2.7.4 (topic.prefix `probe`) put on Kafka, through JsonConverter, for
 * this on the seed's employee_activities table:
 *   INSERT (1, 1, 'login', '/dashboard', 45, '192.168.1.100', 'Mozilla/5.0', '2025-01-02 10:30:00.123456');
 *   UPDATE ... SET duration_seconds = 50 WHERE id = 1;  DELETE ... WHERE id = 1;
 * i.e. a create, an update, a delete and the tombstone.
 */
interface Message {
  key: { schema: unknown; payload: Row };
  value: { schema: unknown; payload: Row & { op: ChangeFacts['op']; ts_ns: bigint | number; source: Row } } | null;
}
const fixtureText = readFileSync(new URL('./fixtures/debezium-2.7.4-employee-activities.json', import.meta.url), 'utf8');
const messages = parseJson(fixtureText) as unknown as Message[];

const info = employeeActivitiesTable();
const table = captureTable(info, info.columns.map((c) => c.name), 'probe');
const inserted = ['1', '1', 'login', '/dashboard', '45', '192.168.1.100', 'Mozilla/5.0', '2025-01-02 10:30:00.123456'];
/** The text rows pgoutput sent for each change: the new tuple, or the key-only old tuple of the delete. */
const sent: Record<string, { before: (string | null)[] | null; after: (string | null)[] | null }> = {
  c: { before: null, after: inserted },
  u: { before: null, after: inserted.map((v, i) => (i === 4 ? '50' : v)) },
  d: { before: ['1', null, null, null, null, null, null, null], after: null },
};

/** The facts of a fixture event, read back from its source block and envelope timestamps. */
function factsOf(payload: NonNullable<Message['value']>['payload']): ChangeFacts {
  const source = payload.source;
  const [lastCommit, lsn] = JSON.parse(String(source.sequence)) as [string | null, string];
  return {
    op: payload.op,
    snapshot: String(source.snapshot),
    db: String(source.db),
    topicPrefix: String(source.name),
    txId: Number(source.txId),
    lsn: BigInt(lsn),
    lastCommitLsn: lastCommit === null ? null : BigInt(lastCommit),
    commitMicros: BigInt(source.ts_us as number),
    processedNanos: BigInt(payload.ts_ns),
  };
}

describe('change events against real Debezium 2.7.4 output (employee_activities, as the catalog describes it)', () => {
  it('builds the same key and envelope schemas, byte for byte', () => {
    const first = messages[0]!;
    expect(stringifyJson(table.keySchema)).toBe(stringifyJson(first.key.schema));
    expect(stringifyJson(table.envelopeSchema)).toBe(stringifyJson(first.value!.schema));
  });

  it('encodes the insert, the update and the delete exactly as Debezium did, key and value', () => {
    const changes = messages.filter((m) => m.value !== null);
    expect(changes.map((m) => m.value!.payload.op)).toEqual(['c', 'u', 'd']);
    for (const message of changes) {
      const payload = message.value!.payload;
      const rows = sent[payload.op]!;
      const before = rows.before && encodeRow(table, rows.before);
      const after = rows.after && encodeRow(table, rows.after);
      expect(stringifyJson(encodeValue(table, factsOf(payload), before, after))).toBe(stringifyJson(message.value));
      expect(stringifyJson(encodeKey(table, (after ?? before)!))).toBe(stringifyJson(message.key));
    }
  });

  it('follows the delete with a tombstone: the same key, a null value', () => {
    const tombstone = messages.at(-1)!;
    expect(tombstone.value).toBeNull();
    expect(stringifyJson(encodeKey(table, encodeRow(table, sent.d!.before!)))).toBe(stringifyJson(tombstone.key));
  });
});

describe('encodeRow', () => {
  it('writes SQL NULL as the column default when there is one (replace.null.with.default), else null', () => {
    const row = encodeRow(table, ['7', null, 'login', null, null, null, null, null]);
    expect(row).toEqual({
      id: 7,
      employee_id: null,
      activity_type: 'login',
      page_url: null,
      duration_seconds: null,
      ip_address: null,
      user_agent: null,
      activity_timestamp: 0,
    });
  });

  it('treats columns a short tuple does not carry as absent, and marks unchanged TOASTed values', () => {
    expect(encodeRow(table, ['7'])).toMatchObject({ id: 7, activity_type: '', activity_timestamp: 0, user_agent: null });
    const toasted = [...inserted.slice(0, 6), undefined, inserted[7]!];
    expect(encodeRow(table, toasted).user_agent).toBe('__debezium_unavailable_value');
  });

  it('names the table and column of a value it cannot read', () => {
    expect(() => encodeRow(table, ['7', 'seven'])).toThrow('public.employee_activities column "employee_id": cannot read a string of 5 characters as an integer');
  });
});

describe('encodeKey', () => {
  it('is null for a table without a primary key', () => {
    const keyless = captureTable({ ...info, primaryKey: [] }, info.columns.map((c) => c.name), 'probe');
    expect(encodeKey(keyless, encodeRow(keyless, inserted))).toBeNull();
  });
});

describe('sameKey', () => {
  it('compares int8 keys beyond 2^53 (bigints) exactly, without throwing', () => {
    const big = 2n ** 60n;
    expect(sameKey(table, { id: big }, { id: big })).toBe(true);
    expect(sameKey(table, { id: big }, { id: big + 1n })).toBe(false);
    expect(sameKey(table, { id: 15 }, { id: 15 })).toBe(true);
  });
});
