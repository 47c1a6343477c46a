import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { employeeActivitiesTable } from '../../../src/components/sources/generator/employee-activity.ts';
import { parseJson, stringifyJson } from '../../../src/engine/json.ts';
import {
  encodeChange,
  encodeTombstone,
  pgColumnSchema,
  pgTextToConnect,
  tableSchemas,
  type PgTable,
} from '../../../src/io/debezium/index.ts';

const table: PgTable = {
  topicPrefix: 'employee-server',
  schema: 'public',
  table: 'employee_activities',
  key: ['id'],
  columns: [
    { name: 'id', type: 'int4', optional: false, default: 0 },
    { name: 'activity_type', type: 'varchar', optional: false },
    { name: 'duration_seconds', type: 'int4', optional: true },
    { name: 'activity_timestamp', type: 'timestamp', optional: true, default: 0 },
  ],
};
const schemas = tableSchemas(table);
const employeeTable = employeeActivitiesTable('employee-server');
const base = {
  commitMicros: 1735813800123456,
  processedNanos: 1735813800200123456n,
  db: 'streaming_db',
  txId: 770,
  lsn: 24023128,
  lastCommitLsn: 24023000,
};

describe('encodeChange (Debezium 2.7 PostgreSQL, JsonConverter with schemas)', () => {
  it('writes the key exactly as Debezium does', () => {
    const event = encodeChange(schemas, table, { ...base, op: 'c', before: null, after: { id: 15, activity_type: 'login' } });
    expect(stringifyJson(event.key)).toBe(
      '{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"default":0,"field":"id"}],"optional":false,' +
        '"name":"employee-server.public.employee_activities.Key"},"payload":{"id":15}}',
    );
  });

  it('writes the payload fields in Debezium order, with the PostgreSQL source block', () => {
    const event = encodeChange(schemas, table, {
      ...base,
      op: 'c',
      before: null,
      after: { id: 15, activity_type: 'page_view', duration_seconds: 45, activity_timestamp: 1735813800123456 },
    });
    expect(stringifyJson(event.value?.payload)).toBe(
      '{"before":null,"after":{"id":15,"activity_type":"page_view","duration_seconds":45,"activity_timestamp":1735813800123456},' +
        '"source":{"version":"2.7.4.Final","connector":"postgresql","name":"employee-server","ts_ms":1735813800123,"snapshot":"false",' +
        '"db":"streaming_db","sequence":"[\\"24023000\\",\\"24023128\\"]","ts_us":1735813800123456,"ts_ns":1735813800123456000,' +
        '"schema":"public","table":"employee_activities","txId":770,"lsn":24023128,"xmin":null},' +
        '"transaction":null,"op":"c","ts_ms":1735813800200,"ts_us":1735813800200123,"ts_ns":1735813800200123456}',
    );
  });

  it('builds the envelope schema: version 2, fields before, after, source, transaction, op, ts_ms, ts_us, ts_ns', () => {
    const envelope = schemas.envelope;
    expect(envelope.name).toBe('employee-server.public.employee_activities.Envelope');
    expect(envelope.version).toBe(2);
    expect(envelope.fields?.map((f) => f.field)).toEqual(['before', 'after', 'source', 'transaction', 'op', 'ts_ms', 'ts_us', 'ts_ns']);
    const timestamp = stringifyJson(schemas.columns.get('activity_timestamp'));
    expect(timestamp).toBe('{"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1,"default":0,"field":"activity_timestamp"}');
    const snapshot = envelope.fields?.[2]?.fields?.[4];
    expect(stringifyJson(snapshot)).toBe(
      '{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":' +
        '{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"}',
    );
  });

  it('writes a NULL column with a default as the default (replace.null.with.default)', () => {
    const event = encodeChange(schemas, table, { ...base, op: 'c', before: null, after: { id: 1, activity_type: 'login', activity_timestamp: null } });
    expect((event.value?.payload.after as Record<string, unknown>).activity_timestamp).toBe(0);
    expect((event.value?.payload.after as Record<string, unknown>).duration_seconds).toBeNull();
  });

  it('fills NOT NULL columns missing from a delete’s key-only before image with Debezium’s fallbacks', () => {
    const event = encodeChange(schemas, table, { ...base, op: 'd', before: { id: 7 }, after: null });
    expect(event.value?.payload.before).toEqual({ id: 7, activity_type: '', duration_seconds: null, activity_timestamp: 0 });
    expect(event.key.payload).toEqual({ id: 7 });
  });

  it('writes tombstones as the key with a null value', () => {
    const tombstone = encodeTombstone(schemas, { id: 7 });
    expect(tombstone.value).toBeNull();
    expect(tombstone.key.payload).toEqual({ id: 7 });
  });
});

describe('pgColumnSchema and pgTextToConnect', () => {
  it('maps PostgreSQL types to Debezium’s default encodings', () => {
    expect(pgColumnSchema({ type: 'numeric', precision: 10, scale: 2, optional: false })).toEqual({
      type: 'bytes',
      optional: false,
      name: 'org.apache.kafka.connect.data.Decimal',
      version: 1,
      parameters: { scale: '2', 'connect.decimal.precision': '10' },
    });
    expect(pgColumnSchema({ type: 'numeric', optional: true }).name).toBe('io.debezium.data.VariableScaleDecimal');
    expect(pgColumnSchema({ type: 'timestamp', precision: 3, optional: true }).name).toBe('io.debezium.time.Timestamp');
    expect(pgColumnSchema({ type: 'timestamptz', optional: true }).name).toBe('io.debezium.time.ZonedTimestamp');
    expect(pgColumnSchema({ type: 'jsonb', optional: true }).name).toBe('io.debezium.data.Json');
    expect(pgColumnSchema({ type: 'date', optional: true }).type).toBe('int32');
    expect(pgColumnSchema({ type: 'inet', optional: true })).toEqual({ type: 'string', optional: true });
  });

  it('converts pgoutput text values', () => {
    expect(pgTextToConnect({ type: 'timestamp', optional: true }, '2025-01-02 10:30:00.123456')).toBe(1735813800123456);
    expect(pgTextToConnect({ type: 'int8', optional: true }, '9007199254740993')).toBe(9007199254740993n);
    expect(pgTextToConnect({ type: 'int8', optional: true }, '42')).toBe(42);
    expect(pgTextToConnect({ type: 'bool', optional: true }, 't')).toBe(true);
    expect(pgTextToConnect({ type: 'numeric', precision: 6, scale: 2, optional: true }, '1200.00')).toBe('AdTA');
    expect(pgTextToConnect({ type: 'date', optional: true }, '2025-01-02')).toBe(20090);
    expect(pgTextToConnect({ type: 'bytea', optional: true }, '\\x0102')).toBe('AQI=');
    expect(pgTextToConnect({ type: 'text', optional: true }, null)).toBeNull();
  });
});

describe('against real Debezium 2.7.4 output (employee_activities, captured by the postgres-cdc work)', () => {
  type Message = { key: { payload: Record<string, unknown> }; value: { payload: Record<string, unknown> } | null };
  const fixtureText = readFileSync(new URL('./fixtures/debezium-2.7.4-employee-activities.json', import.meta.url), 'utf8');
  const messages = parseJson(fixtureText) as unknown as Message[];
  const probe: PgTable = { ...employeeTable, topicPrefix: 'probe' };
  const probeSchemas = tableSchemas(probe);

  it('builds the same key and envelope schemas, byte for byte', () => {
    const first = parseJson(fixtureText) as unknown as { key: { schema: unknown }; value: { schema: unknown } }[];
    expect(stringifyJson(probeSchemas.key)).toBe(stringifyJson(first[0]!.key.schema));
    expect(stringifyJson(probeSchemas.envelope)).toBe(stringifyJson(first[0]!.value.schema));
  });

  it('encodes the insert, the update and the delete exactly as Debezium did', () => {
    for (const message of messages.filter((m) => m.value !== null)) {
      const payload = message.value!.payload;
      const source = payload.source as Record<string, unknown>;
      const [lastCommit, lsn] = JSON.parse(source.sequence as string) as [string | null, string];
      const encoded = encodeChange(probeSchemas, probe, {
        op: payload.op as 'c' | 'u' | 'd',
        before: payload.op === 'd' ? { id: message.key.payload.id } : null,
        after: payload.after as Record<string, unknown> | null,
        commitMicros: Number(source.ts_us),
        processedNanos: BigInt(payload.ts_ns as bigint | number),
        db: source.db as string,
        txId: source.txId as number,
        lsn: Number(lsn),
        lastCommitLsn: lastCommit === null ? null : Number(lastCommit),
      });
      expect(stringifyJson(encoded.value)).toBe(stringifyJson(message.value));
      expect(stringifyJson(encoded.key)).toBe(stringifyJson(message.key));
    }
  });

  it('follows a delete with a tombstone carrying the same key', () => {
    const last = messages.at(-1)!;
    expect(last.value).toBeNull();
    expect(stringifyJson(encodeTombstone(probeSchemas, { id: 1 }).key)).toBe(stringifyJson(last.key));
  });
});
