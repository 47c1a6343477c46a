import { describe, expect, it } from 'vitest';
import type { PostgresCdcConfig } from '../../../src/components/sources/postgres-cdc.ts';
import { classifyStreamError, partitionId, postgresCdcSource, snapshotMarker } from '../../../src/components/sources/postgres-cdc.ts';

const cfg: PostgresCdcConfig = {
  host: '127.0.0.1',
  database: 'streaming_db',
  user: 'postgres',
  password: 'hunter2',
  slot: 'emp_slot',
  publication: 'emp_pub',
  tables: ['public.employee_activities'],
};
const tables = [{ schema: 'public', table: 'employee_activities' }];
const serverError = (message: string, code: string) => Object.assign(new Error(message), { code, severity: 'ERROR' });

describe('snapshotMarker', () => {
  it('marks the first and last snapshot rows as Debezium does', () => {
    expect([0, 1, 2].map((i) => snapshotMarker(i, 3))).toEqual(['first', 'true', 'last']);
    expect(snapshotMarker(0, 1)).toBe('last');
  });
});

describe('classifyStreamError', () => {
  it('stops on a dropped slot, saying how to start again', () => {
    const v = classifyStreamError(serverError('replication slot "emp_slot" does not exist', '42704'), cfg, tables);
    expect('fatal' in v && v.fatal.message).toMatch(/pg_create_logical_replication_slot\('emp_slot', 'pgoutput'\)/);
    expect('fatal' in v && v.fatal).toMatchObject({ code: 'E_CDC_SLOT_MISSING' });
  });

  it('stops on a missing publication, with the statement to run', () => {
    const v = classifyStreamError(serverError('publication "emp_pub" does not exist', '42704'), cfg, tables);
    expect('fatal' in v && v.fatal.message).toMatch(/CREATE PUBLICATION "emp_pub" FOR TABLE "public"."employee_activities";/);
  });

  it('stops when another reader holds the slot', () => {
    const v = classifyStreamError(serverError('replication slot "emp_slot" is active for PID 42', '55006'), cfg, tables);
    expect('fatal' in v && v.fatal).toMatchObject({ code: 'E_CDC_SLOT_BUSY' });
  });

  it('reconnects after lost connections and server shutdowns', () => {
    expect(classifyStreamError(new Error('Connection terminated unexpectedly'), cfg, tables)).toEqual({ retry: 'Connection terminated unexpectedly' });
    expect('retry' in classifyStreamError(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), cfg, tables)).toBe(true);
    expect('retry' in classifyStreamError(serverError('terminating connection due to administrator command', '57P01'), cfg, tables)).toBe(true);
  });

  it('stops on any other server error', () => {
    const v = classifyStreamError(serverError('permission denied', '42501'), cfg, tables);
    expect('fatal' in v && v.fatal).toMatchObject({ code: 'E_CDC_STREAM' });
  });
});

describe('postgresCdcSource', () => {
  it('names one partition per table', () => {
    expect(partitionId('activities', 'employee-server.public.employee_activities')).toBe('activities/employee-server.public.employee_activities');
  });

  it('describes itself without the password', () => {
    const text = postgresCdcSource.describe(cfg);
    expect(text).toBe('postgres-cdc postgres@127.0.0.1:5432/streaming_db slot emp_slot publication emp_pub tables public.employee_activities snapshot initial');
    expect(text).not.toContain('hunter2');
  });

  it('marks the password as a secret in its schema', () => {
    const props = (postgresCdcSource.schema as { properties: Record<string, Record<string, unknown>> }).properties;
    expect(props.password?.['x-secret']).toBe(true);
  });
});
