import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DELETE, tableStep, type TableSettings } from '../../../src/components/steps/table.ts';
import { Ack } from '../../../src/engine/ack.ts';
import type { RecordError } from '../../../src/engine/errors.ts';
import { ExpressionSyntaxError } from '../../../src/engine/errors.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { Runtime } from '../../../src/engine/runtime.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { RecordingSink, ScriptedSource, graphOf } from '../../engine/fake-components.ts';
import { context, runStep } from './step-harness.ts';

const ajv = new Ajv2020({ allErrors: true, strict: false, allowUnionTypes: true });
for (const keyword of ['x-jsonata', 'x-duration', 'x-secret']) ajv.addKeyword({ keyword, schemaType: 'boolean' });
const validate = ajv.compile(tableStep.schema);

const T = Date.parse('2025-01-06T09:30:00Z');

const table = (settings: TableSettings) => tableStep.create({ table: settings }, context('employees'));

/** Change records as a format decodes them: key, value (a row image, or null), `$meta`, event time. */
function changes(specs: { key?: unknown; value: unknown; meta?: Record<string, unknown>; time?: number }[]): StreamRecord[] {
  const ack = new Ack(() => {});
  ack.retain(specs.length);
  return specs.map((s, i) => ({
    key: s.key ?? null,
    value: s.value,
    time: s.time ?? T,
    headers: {},
    meta: s.meta ?? {},
    position: { source: 'employee-changes', partition: 'employee-changes/0', offset: String(i) },
    ack,
  }));
}

const codes = (failed: { error: Error }[]) => failed.map((f) => (f.error as RecordError).code);

describe('table step', () => {
  it('keys each change by the row\'s primary key, keeping the row, its time and the rest of the record', async () => {
    const row = { id: 7, name: 'Ada', department: 'Engineering' };
    const input = changes([{ key: { id: 7 }, value: row, meta: { op: 'u' } }]);
    const r = await runStep(table({ key: 'id' }), input);
    expect(r.failed).toEqual([]);
    const [out] = r.emitted;
    expect(out).toMatchObject({ key: 7, value: row, time: T, meta: { op: 'u' } });
    expect(out!.value).toBe(row);
    expect(out!.position).toBe(input[0]!.position);
    expect(out!.ack).toBe(input[0]!.ack);
    // The input record is not changed: it may be shared with other readers.
    expect(input[0]!.key).toEqual({ id: 7 });
  });

  it('reads the key from `$key`, the record key', async () => {
    const r = await runStep(table({ key: '$key.id' }), changes([{ key: { id: 'e-1' }, value: { name: 'Ada' } }]));
    expect(r.emitted.map((x) => [x.key, x.value])).toEqual([['e-1', { name: 'Ada' }]]);
  });

  it(`deletes by default when ${DEFAULT_DELETE} (the value then is the before image, which carries the key)`, async () => {
    const r = await runStep(
      table({ key: 'id' }),
      changes([
        { value: { id: 1, department: 'Sales' }, meta: { op: 'c' } },
        { value: { id: 1, department: 'Sales' }, meta: { op: 'd' }, time: T + 1 },
        { value: { id: 1, department: 'Legal' }, meta: { op: 'u' }, time: T + 2 },
      ]),
    );
    expect(r.emitted.map((x) => [x.key, x.value, x.time])).toEqual([
      [1, { id: 1, department: 'Sales' }, T],
      [1, null, T + 1],
      [1, { id: 1, department: 'Legal' }, T + 2],
    ]);
  });

  it('deletes by a `delete` predicate of its own', async () => {
    const r = await runStep(
      table({ key: 'id', delete: 'deleted = true' }),
      changes([
        { value: { id: 1, deleted: true }, meta: { op: 'u' } },
        // The default predicate no longer applies.
        { value: { id: 2, deleted: false }, meta: { op: 'd' } },
      ]),
    );
    expect(r.emitted.map((x) => [x.key, x.value])).toEqual([
      [1, null],
      [2, { id: 2, deleted: false }],
    ]);
  });

  it('deletes on a null value (a Kafka tombstone) when its key is known from `$key`', async () => {
    const r = await runStep(table({ key: '$key.id' }), changes([{ key: { id: 3 }, value: null }]));
    expect(r.emitted.map((x) => [x.key, x.value])).toEqual([[3, null]]);
  });

  it('drops a tombstone without a key (the delete before it did the work), and fails a keyless row', async () => {
    const r = await runStep(
      table({ key: 'id' }),
      changes([
        { key: { id: 3 }, value: null },
        { value: { name: 'no id' } },
        { value: { id: null, name: 'null id' } },
        { value: { id: 4 } },
      ]),
    );
    expect(r.dropped.map((x) => x.value)).toEqual([null]);
    expect(codes(r.failed)).toEqual(['E_TABLE_KEY', 'E_TABLE_KEY']);
    expect(r.failed[0]!.error.message).toContain('table `employees`');
    expect(r.emitted.map((x) => x.key)).toEqual([4]);
  });

  it('counts a dropped keyless tombstone as discarded in a run', async () => {
    const source = new ScriptedSource('employee-changes', [{ partition: 'employee-changes/0', values: ['null', '{"id":5}'] }]);
    const sink = new RecordingSink();
    const graph = graphOf([
      { source: 'employee-changes', impl: source },
      { step: 'employees', impl: table({ key: 'id' }), from: ['employee-changes'] },
      { sink: 'out', impl: sink, from: ['employees'] },
    ]);
    const outcome = await new Runtime(graph, { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0 }).run();
    expect(outcome.discarded).toBe(1);
    expect(outcome.failed).toBe(0);
    expect(outcome.stats.nodes.employees).toMatchObject({ recordsIn: 2, recordsOut: 1, discarded: 1 });
    expect(sink.values).toEqual([{ id: 5 }]);
    expect(source.completed).toEqual([0]);
  });

  it('lets a snapshot read ($meta.op = "r") hold from the start of time, any other change from its own time', async () => {
    const r = await runStep(
      table({ key: 'id' }),
      changes([
        { value: { id: 1 }, meta: { op: 'r' }, time: T },
        { value: { id: 2 }, meta: { op: 'c' }, time: T },
        { value: { id: 3 }, time: T },
      ]),
    );
    expect(r.emitted.map((x) => [x.key, x.time])).toEqual([
      [1, 0],
      [2, T],
      [3, T],
    ]);
  });

  it('takes the version\'s time from `time:` (ISO 8601 or epoch ms), snapshot reads included', async () => {
    const r = await runStep(
      table({ key: 'id', time: 'updated_at' }),
      changes([
        { value: { id: 1, updated_at: '2025-01-06T08:00:00Z' } },
        { value: { id: 2, updated_at: T + 5 } },
        { value: { id: 3, updated_at: '2025-01-06 07:00:00' }, meta: { op: 'r' } },
      ]),
    );
    expect(r.failed).toEqual([]);
    expect(r.emitted.map((x) => [x.key, x.time])).toEqual([
      [1, Date.parse('2025-01-06T08:00:00Z')],
      [2, T + 5],
      [3, Date.parse('2025-01-06T07:00:00Z')],
    ]);
  });

  it('fails a change whose `time` is no timestamp, or whose expressions throw', async () => {
    const r = await runStep(
      table({ key: 'id', time: 'updated_at' }),
      changes([
        { value: { id: 1, updated_at: 'last tuesday' } },
        { value: { id: 2, updated_at: { at: 1 } } },
        { value: { id: 3, updated_at: T } },
        // Nothing at all (a delete's before image holds only the key columns): the record's own time.
        { value: { id: 4 }, meta: { op: 'd' }, time: T + 9 },
      ]),
    );
    expect(codes(r.failed)).toEqual(['E_TABLE_TIME', 'E_TABLE_TIME']);
    expect(r.failed[0]!.error.message).toBe('table `employees`: `time` gave no timestamp');
    expect(r.emitted.map((x) => [x.key, x.value, x.time])).toEqual([
      [3, { id: 3, updated_at: T }, T],
      [4, null, T + 9],
    ]);

    const throwing = await runStep(table({ key: '$error("no key")' }), changes([{ value: { id: 1 } }]));
    expect(codes(throwing.failed)).toEqual(['E_EXPR_EVAL']);
    expect(throwing.failed[0]!.error.message).toContain('`key` failed');
    const badDelete = await runStep(table({ key: 'id', delete: '$error("which?")' }), changes([{ value: { id: 1 } }]));
    expect(codes(badDelete.failed)).toEqual(['E_EXPR_EVAL']);
    expect(badDelete.failed[0]!.error.message).toContain('`delete` failed');
  });

  it('refuses bad JSONata when created, and needs `key` in its schema', () => {
    expect(() => table({ key: 'id +' })).toThrow(ExpressionSyntaxError);
    expect(validate({ table: { key: 'id' } })).toBe(true);
    expect(validate({ table: { key: 'id', time: 'updated_at', delete: 'deleted = true' } })).toBe(true);
    expect(validate({ table: {} })).toBe(false);
    expect(validate({ table: { key: 'id', keys: 'x' } })).toBe(false);
  });

  it('describes itself in one line', () => {
    expect(tableStep.describe({ table: { key: 'id' } })).toBe('table keyed by id');
    expect(tableStep.describe({ table: { key: 'id', time: 'updated_at' } })).toBe('table keyed by id, versions from updated_at');
  });
});
