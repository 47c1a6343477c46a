import { describe, expect, it } from 'vitest';
import type { PostgresQueryConfig } from '../../../src/components/sources/postgres-query.ts';
import {
  columnReader,
  numericValue,
  parseArrayText,
  postgresQuerySource,
  queryError,
  queryHeadline,
  queryPartition,
  rowReader,
} from '../../../src/components/sources/postgres-query.ts';
import { ConfigError, ConnectionError } from '../../../src/engine/errors.ts';
import { stringifyJson } from '../../../src/engine/json.ts';
import { sourceContext } from './source-harness.ts';

const cfg: PostgresQueryConfig = {
  host: '127.0.0.1',
  database: 'company',
  user: 'postgres',
  password: 'hunter2',
  query: 'SELECT id, name FROM employees WHERE active = $1',
  params: [true],
};
const where = 'sources.employees.postgres-query.query';
const serverError = (message: string, code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), { code, severity: 'ERROR', ...extra });

/** Reads one value of a type, given its oid and typmod, from the text PostgreSQL prints. */
const read = (oid: number, textValue: string, typeMod = -1) => columnReader(oid, typeMod)(textValue);

describe('numericValue', () => {
  it('gives whole values as int8 does: a number when exact, else a bigint', () => {
    expect(numericValue('12')).toBe(12);
    expect(numericValue('12.000')).toBe(12);
    expect(numericValue('-9007199254740991')).toBe(-9007199254740991);
    expect(numericValue('9007199254740993')).toBe(9007199254740993n);
    expect(numericValue('123456789012345678901234567890.00')).toBe(123456789012345678901234567890n);
  });

  it('gives fractions with at most 15 significant digits as numbers, longer ones as the exact text', () => {
    expect(numericValue('12.50')).toBe(12.5);
    expect(numericValue('-0.000123')).toBe(-0.000123);
    expect(numericValue('1234567890.12345')).toBe(1234567890.12345);
    expect(numericValue('1234567890.123456')).toBe('1234567890.123456');
    expect(numericValue('0.1234567890123456789')).toBe('0.1234567890123456789');
  });

  it('keeps NaN and the infinities as text, since JSON has no number for them', () => {
    expect(numericValue('NaN')).toBe('NaN');
    expect(numericValue('Infinity')).toBe('Infinity');
    expect(numericValue('-Infinity')).toBe('-Infinity');
  });
});

describe('columnReader', () => {
  it('reads booleans and integers as JSON values, int8 beyond 2^53 as an exact bigint', () => {
    expect(read(16, 't')).toBe(true);
    expect(read(16, 'f')).toBe(false);
    expect(read(21, '-7')).toBe(-7);
    expect(read(23, '2147483647')).toBe(2147483647);
    expect(read(26, '4294967295')).toBe(4294967295);
    expect(read(20, '9007199254740991')).toBe(9007199254740991);
    expect(read(20, '-9223372036854775808')).toBe(-9223372036854775808n);
    // Written as plain digits by sluice's JSON writer.
    expect(stringifyJson({ v: read(20, '9223372036854775807') })).toBe('{"v":9223372036854775807}');
  });

  it('reads floats as numbers, NaN and the infinities as text', () => {
    expect(read(701, '0.1')).toBe(0.1);
    expect(read(700, '1.5e+10')).toBe(1.5e10);
    expect(read(701, 'NaN')).toBe('NaN');
    expect(read(701, '-Infinity')).toBe('-Infinity');
  });

  it('parses json and jsonb losslessly', () => {
    expect(read(3802, '{"a": 1, "b": [true, null], "big": 12345678901234567890}')).toEqual({ a: 1, b: [true, null], big: 12345678901234567890n });
    expect(read(114, '"text"')).toBe('text');
  });

  it('writes timestamptz as ISO 8601 in UTC with the column precision, as postgres-cdc does', () => {
    // The session runs with TimeZone=UTC, so PostgreSQL prints +00; any offset is honoured.
    expect(read(1184, '2025-01-06 09:05:12.345678+00')).toBe('2025-01-06T09:05:12.345678Z');
    expect(read(1184, '2025-01-06 09:05:12+00')).toBe('2025-01-06T09:05:12.000000Z');
    expect(read(1184, '2025-01-06 09:05:12.3+05:30', 3)).toBe('2025-01-06T03:35:12.300Z');
    expect(read(1184, '2025-01-06 09:05:12+00', 0)).toBe('2025-01-06T09:05:12Z');
    expect(read(1184, 'infinity')).toBe('infinity');
  });

  it('writes timestamp without time zone as the same ISO 8601 wall clock without a zone', () => {
    expect(read(1114, '2025-01-06 09:05:12.345')).toBe('2025-01-06T09:05:12.345000');
    expect(read(1114, '2025-01-06 09:05:12.345', 3)).toBe('2025-01-06T09:05:12.345');
    expect(read(1114, '0044-03-15 12:00:00 BC', 0)).toBe('-0043-03-15T12:00:00');
    expect(read(1114, '-infinity')).toBe('-infinity');
  });

  it('writes dates as ISO 8601, years before 1 in ISO numbering', () => {
    expect(read(1082, '2025-01-06')).toBe('2025-01-06');
    expect(read(1082, '0001-01-01 BC')).toBe('0000-01-01');
    expect(read(1082, '0044-03-15 BC')).toBe('-0043-03-15');
    expect(read(1082, '12345-01-01')).toBe('+12345-01-01');
    expect(read(1082, 'infinity')).toBe('infinity');
  });

  it('writes bytea as base64', () => {
    expect(read(17, '\\x0102ff')).toBe('AQL/');
    expect(read(17, '\\x')).toBe('');
  });

  it('keeps the text form of other types: text, numeric text, uuid, time, interval (ISO 8601 in this session), enums', () => {
    expect(read(25, 'héllo, "world"')).toBe('héllo, "world"');
    expect(read(2950, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(read(1083, '09:05:12.5')).toBe('09:05:12.5');
    expect(read(1186, 'P1DT2H')).toBe('P1DT2H');
    expect(read(987654, 'happy')).toBe('happy');
  });

  it('reads arrays of known element types into arrays of their values', () => {
    expect(read(1007, '{1,NULL,3}')).toEqual([1, null, 3]);
    expect(read(1016, '{9223372036854775807,1}')).toEqual([9223372036854775807n, 1]);
    expect(read(1009, '{"a b","c\\"d",NULL,"NULL",plain}')).toEqual(['a b', 'c"d', null, 'NULL', 'plain']);
    expect(read(1007, '{{1,2},{3,4}}')).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(read(1185, '{"2025-01-06 09:05:12+00"}', 0)).toEqual(['2025-01-06T09:05:12Z']);
    expect(read(1000, '{}')).toEqual([]);
    expect(read(1007, '[0:1]={5,6}')).toEqual([5, 6]);
  });

  it('keeps arrays of other element types as their text', () => {
    expect(read(600000, '{happy,sad}')).toBe('{happy,sad}');
  });
});

describe('parseArrayText', () => {
  it('refuses text that is not an array literal', () => {
    expect(() => parseArrayText('{1,2')).toThrow(/cannot read an array/);
    expect(() => parseArrayText('{"a}')).toThrow(/cannot read an array/);
    expect(() => parseArrayText('{1}x')).toThrow(/cannot read an array/);
  });
});

describe('rowReader', () => {
  const columns = [
    { name: 'id', dataTypeID: 23, dataTypeModifier: -1 },
    { name: 'big', dataTypeID: 20, dataTypeModifier: -1 },
    { name: 'amount', dataTypeID: 1700, dataTypeModifier: 655366 },
    { name: 'active', dataTypeID: 16, dataTypeModifier: -1 },
    { name: 'seen', dataTypeID: 1184, dataTypeModifier: -1 },
    { name: 'note', dataTypeID: 25, dataTypeModifier: -1 },
  ];

  it('makes a plain object of the columns, in order, with SQL NULL as null', () => {
    const row = rowReader(columns)(['7', '9007199254740993', '12.50', 't', '2025-01-06 09:05:12+00', null]);
    expect(row).toEqual({ id: 7, big: 9007199254740993n, amount: 12.5, active: true, seen: '2025-01-06T09:05:12.000000Z', note: null });
    expect(Object.keys(row)).toEqual(['id', 'big', 'amount', 'active', 'seen', 'note']);
    expect(stringifyJson(row)).toBe('{"id":7,"big":9007199254740993,"amount":12.5,"active":true,"seen":"2025-01-06T09:05:12.000000Z","note":null}');
  });

  it('keeps a column named __proto__ as an own property', () => {
    const row = rowReader([{ name: '__proto__', dataTypeID: 23, dataTypeModifier: -1 }])(['1']);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.keys(row)).toEqual(['__proto__']);
    expect(stringifyJson(row)).toBe('{"__proto__":1}');
  });

  it('names the column of a value it cannot read, without the value', () => {
    const deep = `${'['.repeat(600)}${']'.repeat(600)}`;
    const reader = rowReader([{ name: 'doc', dataTypeID: 3802, dataTypeModifier: -1 }]);
    expect(() => reader([deep])).toThrow(/^column "doc": .*nesting deeper than 512/);
  });
});

describe('queryError', () => {
  it('gives PostgreSQL\'s message and SQLSTATE for a query the server refuses, as a ConfigError at the query', () => {
    // The server counts positions from the start of the DECLARE around the query.
    const declare = 'DECLARE sluice_query NO SCROLL CURSOR FOR '.length;
    const err = queryError(serverError('relation "employes" does not exist', '42P01', { position: String(declare + 15) }), cfg, 'employees');
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'E_PG_QUERY', where });
    expect(err.message).toBe('query failed: relation "employes" does not exist (SQLSTATE 42P01) at character 15');
  });

  it('says a statement other than a query cannot be read with a cursor', () => {
    const err = queryError(serverError('syntax error at or near "DELETE"', '42601', { position: '43' }), cfg, 'employees');
    expect(err.message).toMatch(/at character 1; the query must be a SELECT/);
  });

  it('passes the server\'s hint on', () => {
    const err = queryError(serverError('function lower(integer) does not exist', '42883', { hint: 'You might need to add explicit type casts.' }), cfg, 'employees');
    expect(err.message).toBe('query failed: function lower(integer) does not exist (SQLSTATE 42883); hint: You might need to add explicit type casts.');
  });

  it('says how many parameters the query uses and how many `params` gives', () => {
    const err = queryError(serverError('bind message supplies 1 parameters, but prepared statement "" requires 2', '08P01'), cfg, 'employees');
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe('query failed: the query uses 2 parameters ($1..$2) but `params` gives 1 (SQLSTATE 08P01)');
    const none = queryError(serverError('bind message supplies 1 parameters, but prepared statement "" requires 0', '08P01'), cfg, 'employees');
    expect(none.message).toMatch(/uses no parameters but `params` gives 1/);
  });

  it('makes a lost connection or a server shutting down a ConnectionError naming the server', () => {
    for (const err of [new Error('Connection terminated unexpectedly'), serverError('terminating connection due to administrator command', '57P01'), serverError('out of memory', '53200')]) {
      const e = queryError(err, cfg, 'employees');
      expect(e).toBeInstanceOf(ConnectionError);
      expect(e).toMatchObject({ where: 'sources.employees' });
      expect(e.message).toMatch(/^lost postgres@127\.0\.0\.1:5432\/company while running the query: /);
    }
  });

  it('keeps errors sluice made itself, and bugs', () => {
    const own = new ConfigError('E_PG_QUERY_KEY', 'key column "x" not among the query\'s columns', 'here');
    expect(queryError(own, cfg, 'employees')).toBe(own);
    const bug = new TypeError('x is not a function');
    expect(queryError(bug, cfg, 'employees')).toBe(bug);
  });
});

describe('postgresQuerySource', () => {
  it('describes itself with the server and the query\'s first line, without the password', () => {
    const text = postgresQuerySource.describe(cfg);
    expect(text).toBe('postgres-query postgres@127.0.0.1:5432/company query SELECT id, name FROM employees WHERE active = $1');
    expect(text).not.toContain('hunter2');
    expect(postgresQuerySource.describe({ ...cfg, query: '\n  SELECT id\n  FROM employees\n' })).toBe('postgres-query postgres@127.0.0.1:5432/company query SELECT id …');
  });

  it('shortens a long first line', () => {
    const headline = queryHeadline(`SELECT ${'x, '.repeat(50)}y FROM t`);
    expect(headline).toHaveLength(80);
    expect(headline.endsWith('…')).toBe(true);
  });

  it('reads one partition, <name>/query, is bounded, and connects to nothing when created', () => {
    expect(queryPartition('employees')).toBe('employees/query');
    const source = postgresQuerySource.create({ ...cfg, host: 'nowhere.invalid' }, sourceContext('employees', 'run'));
    expect(source.bounded).toBe(true);
    expect(typeof source.check).toBe('function');
  });

  it('declares every config field with a description and examples, and stamps arrival time', () => {
    const props = (postgresQuerySource.schema as { properties: Record<string, { description?: string; examples?: unknown[] }> }).properties;
    for (const [name, prop] of Object.entries(props)) {
      expect(prop.description, name).toBeTruthy();
      expect(prop.examples?.length, name).toBeGreaterThan(0);
    }
    expect(Object.keys(props)).toEqual(expect.arrayContaining(['host', 'port', 'database', 'user', 'password', 'ssl', 'query', 'params', 'batch_size', 'key']));
    expect(postgresQuerySource.messageTime).toBe('arrival');
  });
});
