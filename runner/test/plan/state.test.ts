/** Which store a plan gets, what it refuses, and what the components are handed. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { POSTGRES_TRANSACTION, PostgresStateStore } from '../../src/io/postgres/state-store.ts';
import { KAFKA_TRANSACTION } from '../../src/io/kafka/changelog-store.ts';
import { loadPipelineText } from '../../src/plan/load-pipeline.ts';
import { prepareState, stateSettings } from '../../src/plan/state.ts';
import type { Plan } from '../../src/plan/types.ts';

function planOf(text: string): Plan {
  const result = loadPipelineText('p.yaml', text);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'));
  return result.plan;
}

const PG = '{ host: db.example, port: 5433, database: app, user: writer, table: summaries }';
const KAFKA_SINK = '{ brokers: localhost:9092, topic: o }';

/** A pipeline from a generator through an hourly window to the given sinks, with optional top-level lines. */
function spec(sinks: Record<string, string>, top = ''): string {
  return [
    'version: 1',
    'name: p',
    top,
    'sources:',
    '  events: { generator: { scenario: employee-activity }, format: debezium }',
    'steps:',
    '  hourly: { from: events, window: { tumbling: 1h }, aggregate: { n: $count() } }',
    'sinks:',
    ...Object.entries(sinks).map(([name, s]) => `  ${name}: { from: hourly, ${s} }`),
    '',
  ].join('\n');
}

describe('stateSettings: the postgres store', () => {
  it('is the default under exactly-once when the pipeline writes to postgres and not to Kafka', () => {
    expect(stateSettings(planOf(spec({ db: `postgres: ${PG}` }, 'delivery: exactly-once'))).store).toBe('postgres');
  });

  it('is not the default under at-least-once (the file store keeps state then)', () => {
    expect(stateSettings(planOf(spec({ db: `postgres: ${PG}` }))).store).toBe('file');
  });

  it('refuses exactly-once to both Kafka and PostgreSQL: two commit points cannot be atomic', () => {
    const plan = planOf(spec({ db: `postgres: ${PG}`, topic: `kafka: ${KAFKA_SINK}` }, 'delivery: exactly-once'));
    expect(() => stateSettings(plan)).toThrow(
      expect.objectContaining({ code: 'E_DELIVERY', where: 'delivery', message: expect.stringMatching(/cannot cover both sinks\.topic \(Kafka\) and sinks\.db \(PostgreSQL\).*two commit points cannot be made atomic/) }),
    );
  });

  it('refuses exactly-once to postgres with another store, which could not hold the rows in its commit', () => {
    const plan = planOf(spec({ db: `postgres: ${PG}` }, 'delivery: exactly-once\ncheckpoint: { store: file }'));
    expect(() => stateSettings(plan)).toThrow(expect.objectContaining({ code: 'E_DELIVERY', message: expect.stringContaining('needs `checkpoint.store: postgres`') }));
  });

  it('refuses, before anything connects, a postgres sink on another database than the store\'s', () => {
    const plan = planOf(spec({ db: `postgres: ${PG}`, other: 'postgres: { host: db.example, port: 5433, database: elsewhere, user: writer, table: t }' }, 'delivery: exactly-once'));
    expect(() => stateSettings(plan)).toThrow(
      expect.objectContaining({
        code: 'E_DELIVERY',
        where: 'sinks.other',
        message: 'delivery: exactly-once needs this sink on the database that keeps the state (writer@db.example:5433/app, from sinks.db), not writer@db.example:5433/elsewhere: one transaction cannot span two databases',
      }),
    );
  });

  it('refuses the postgres store when no node names a database', () => {
    const plan = planOf(spec({ out: 'stdout: {}' }, 'checkpoint: { store: postgres }'));
    expect(() => stateSettings(plan)).toThrow(expect.objectContaining({ code: 'E_STATE_STORE', message: expect.stringContaining('needs a postgres sink or postgres-cdc source') }));
  });

  it('takes a postgres-cdc source\'s database when there is no postgres sink', async () => {
    const text = spec({ out: 'stdout: {}' }, 'checkpoint: { store: postgres, schema: sluice }').replace(
      '{ generator: { scenario: employee-activity }, format: debezium }',
      '{ postgres-cdc: { host: cdc.example, database: src, user: reader, slot: s, publication: p, tables: [public.t] }, format: debezium }',
    );
    const prepared = await prepareState(planOf(text), { logger: silentLogger, clock: new ManualClock() });
    expect(prepared.coordinator!.store.description).toBe('postgres reader@cdc.example:5432/src tables sluice.sluice_checkpoints, sluice.sluice_state (application p)');
    // At-least-once: the store keeps state only; no transaction is offered to sinks.
    expect(prepared.context!.shared.get(POSTGRES_TRANSACTION)).toBeUndefined();
  });
});

describe('prepareState under exactly-once to postgres', () => {
  it('offers the store itself as the transaction postgres sinks write into, on the first postgres sink\'s database', async () => {
    const plan = planOf(spec({ db: `postgres: ${PG}`, other: 'postgres: { host: db.example, port: 5433, database: app, user: writer, table: other }' }, 'delivery: exactly-once'));
    const prepared = await prepareState(plan, { logger: silentLogger, clock: new ManualClock() });
    const tx = prepared.context!.shared.get(POSTGRES_TRANSACTION);
    expect(tx).toBeInstanceOf(PostgresStateStore);
    expect(tx).toBe(prepared.coordinator!.store);
    expect(tx!.target).toBe('writer@db.example:5433/app');
    expect(prepared.context!.shared.get(KAFKA_TRANSACTION)).toBeUndefined();
  });
});
