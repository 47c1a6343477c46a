import { describe, expect, it } from 'vitest';
import { filterStep } from '../../../src/components/steps/filter.ts';
import { RecordError } from '../../../src/engine/errors.ts';
import { context, recordsOf, runStep } from './step-harness.ts';

const filter = (expr: string) => filterStep.create({ filter: expr }, context('inserts'));

describe('filter step', () => {
  it('keeps records whose predicate is true and drops the others, releasing them', async () => {
    const records = recordsOf([{ n: 1 }, { n: 5 }, { n: 10 }]);
    const r = await runStep(filter('n >= 5'), records);
    expect(r.emitted.map((x) => x.value)).toEqual([{ n: 5 }, { n: 10 }]);
    expect(r.dropped.map((x) => x.value)).toEqual([{ n: 1 }]);
    expect(records[0]!.ack.outstanding).toBe(2);
  });

  it('reads $meta, $key and $headers', async () => {
    const records = recordsOf([{}, {}, {}], [{ op: 'c' }, { op: 'u' }, { op: 'c' }]);
    const r = await runStep(filter('$meta.op = "c" and $key != "k2"'), records);
    expect(r.emitted.map((x) => x.key)).toEqual(['k0']);
  });

  it("uses JSONata's truthiness", async () => {
    const values = [{ v: 0 }, { v: 1 }, { v: '' }, { v: 'x' }, { v: [] }, { v: [0, 1] }, { v: {} }, { v: { a: 1 } }, { v: null }, {}];
    const r = await runStep(filter('v'), recordsOf(values));
    expect(r.emitted.map((x) => x.value)).toEqual([{ v: 1 }, { v: 'x' }, { v: [0, 1] }, { v: { a: 1 } }]);
    expect(r.dropped).toHaveLength(6);
  });

  it('passes the input array on untouched when every record is kept', async () => {
    const records = recordsOf([{ n: 1 }, { n: 2 }]);
    const r = await runStep(filter('n > 0'), records);
    expect(r.emittedArrays[0]).toBe(records);
  });

  it('works with a plain path (synchronous evaluation)', async () => {
    const r = await runStep(filter('active'), recordsOf([{ active: true }, { active: false }]));
    expect(r.emitted.map((x) => x.value)).toEqual([{ active: true }]);
  });

  it('fails a record whose predicate throws, with a RecordError naming the step, and keeps the others', async () => {
    // $number("x") throws D3030 in JSONata.
    const records = recordsOf([{ s: '1' }, { s: 'x' }, { s: '3' }]);
    const r = await runStep(filter('$number(s) > 0'), records);
    expect(r.emitted.map((x) => x.value)).toEqual([{ s: '1' }, { s: '3' }]);
    expect(r.failed).toHaveLength(1);
    expect(r.failed[0]!.record.value).toEqual({ s: 'x' });
    expect(r.failed[0]!.error).toBeInstanceOf(RecordError);
    expect(r.failed[0]!.error).toMatchObject({ code: 'E_EXPR_EVAL', where: 'steps.inserts' });
  });

  it('keeps records aligned with their results across large batches', async () => {
    const values = Array.from({ length: 1000 }, (_, i) => ({ i, keep: i % 7 === 0 }));
    const r = await runStep(filter('keep = true and i >= 0'), recordsOf(values));
    expect(r.emitted.map((x) => (x.value as { i: number }).i)).toEqual(values.filter((v) => v.keep).map((v) => v.i));
    expect(r.dropped).toHaveLength(1000 - r.emitted.length);
  });

  it('compiles once at creation: a syntax error fails create', () => {
    expect(() => filter('n >')).toThrow();
  });

  it('has a schema with descriptions and examples, and describes its config', () => {
    const props = (filterStep.schema as { properties: Record<string, { description?: string; examples?: unknown[] }> }).properties;
    expect(props.filter!.description).toBeTruthy();
    expect(props.filter!.examples!.length).toBeGreaterThan(0);
    expect(filterStep.describe({ filter: '$meta.op = "c"' })).toBe('keep records where $meta.op = "c"');
  });
});
