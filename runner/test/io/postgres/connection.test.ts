import { describe, expect, it } from 'vitest';
import { describeConnection, qualifiedIdent, quoteIdent } from '../../../src/io/postgres/connection.ts';

describe('quoteIdent and qualifiedIdent', () => {
  it('quote each part and double embedded quotes, so any schema or table name is one identifier', () => {
    expect(quoteIdent('my"table')).toBe('"my""table"');
    expect(qualifiedIdent({ schema: 'public', table: 'employee_activities' })).toBe('"public"."employee_activities"');
    expect(qualifiedIdent({ schema: 'odd.schema', table: 'a"b' })).toBe('"odd.schema"."a""b"');
  });
});

describe('describeConnection', () => {
  it('names user, host, port (default 5432) and database, never the password', () => {
    expect(describeConnection({ host: 'db', database: 'streaming_db', user: 'postgres', password: 's3cret' })).toBe('postgres@db:5432/streaming_db');
  });
});
