import { describe, expect, it } from 'vitest';
import { setStep } from '../../../src/components/steps/set.ts';
import { ConfigError } from '../../../src/engine/errors.ts';
import { context, recordsOf, runStep } from './step-harness.ts';

const set = (fields: Record<string, string>) => setStep.create({ set: fields }, context('enriched'));

describe('set step', () => {
  it('computes fields in order, each seeing the ones before it', async () => {
    const step = set({
      activity_hour: '$hour(activity_timestamp)',
      activity_date: '$date(activity_timestamp)',
      session_duration_category: 'duration_seconds < 30 ? "short" : duration_seconds < 300 ? "medium" : "long"',
      is_business_hours: 'activity_hour >= 9 and activity_hour <= 17',
    });
    const values = [
      { activity_timestamp: '2024-01-15T08:59:00Z', duration_seconds: 29 },
      { activity_timestamp: '2024-01-15T09:00:00Z', duration_seconds: 30 },
      { activity_timestamp: '2024-01-15T17:59:00Z', duration_seconds: 299 },
      { activity_timestamp: '2024-01-15T18:00:00Z', duration_seconds: 300 },
    ];
    const r = await runStep(step, recordsOf(values));
    expect(r.emitted.map((x) => x.value)).toEqual([
      { ...values[0], activity_hour: 8, activity_date: '2024-01-15', session_duration_category: 'short', is_business_hours: false },
      { ...values[1], activity_hour: 9, activity_date: '2024-01-15', session_duration_category: 'medium', is_business_hours: true },
      { ...values[2], activity_hour: 17, activity_date: '2024-01-15', session_duration_category: 'medium', is_business_hours: true },
      { ...values[3], activity_hour: 18, activity_date: '2024-01-15', session_duration_category: 'long', is_business_hours: false },
    ]);
  });

  it('never mutates the input value, and builds new records keeping key, meta, position and ack', async () => {
    const input = { a: 1 };
    const records = recordsOf([input], [{ op: 'c' }]);
    const r = await runStep(set({ a: 'a + 1', b: '$meta.op' }), records);
    expect(input).toEqual({ a: 1 });
    const out = r.emitted[0]!;
    expect(out).not.toBe(records[0]);
    expect(out.value).toEqual({ a: 2, b: 'c' });
    expect(out.key).toBe(records[0]!.key);
    expect(out.meta).toBe(records[0]!.meta);
    expect(out.position).toBe(records[0]!.position);
    expect(out.ack).toBe(records[0]!.ack);
  });

  it('replaces an existing field, and a field computed as nothing becomes undefined (absent in JSON)', async () => {
    const r = await runStep(set({ a: '"new"', gone: 'missing.path' }), recordsOf([{ a: 'old', gone: 1 }]));
    expect(JSON.parse(JSON.stringify(r.emitted[0]!.value))).toEqual({ a: 'new' });
  });

  it('stores object results without making the value contain itself', async () => {
    const r = await runStep(set({ copy: '$', wrapped: '{"inner": $}', n: '1' }), recordsOf([{ x: 1 }]));
    const v = r.emitted[0]!.value;
    expect(() => JSON.stringify(v)).not.toThrow();
    expect(JSON.parse(JSON.stringify(v))).toEqual({ x: 1, copy: { x: 1 }, wrapped: { inner: { x: 1, copy: { x: 1 } } }, n: 1 });
  });

  it('fails records whose value is not an object (tombstones, strings, arrays)', async () => {
    const records = recordsOf([null, 'text', [1], { ok: true }]);
    const r = await runStep(set({ x: '1' }), records);
    expect(r.emitted.map((x) => x.value)).toEqual([{ ok: true, x: 1 }]);
    expect(r.failed.map((f) => f.record.value)).toEqual([null, 'text', [1]]);
    expect(r.failed[0]!.error).toMatchObject({ code: 'E_SET_NOT_OBJECT', where: 'steps.enriched' });
    expect(r.failed[0]!.error.message).toMatch(/null/);
  });

  it('fails a record whose expression throws, skipping its later fields, and keeps the others aligned', async () => {
    const values = Array.from({ length: 300 }, (_, i) => ({ i, s: i % 50 === 3 ? 'bad' : String(i) }));
    const r = await runStep(set({ n: '$number(s)', twice: 'n * 2' }), recordsOf(values));
    const bad = values.filter((v) => v.s === 'bad');
    expect(r.failed.map((f) => f.record.value)).toEqual(bad);
    expect(r.failed[0]!.error).toMatchObject({ code: 'E_EXPR_EVAL' });
    expect(r.failed[0]!.error.message).toMatch(/field `n`/);
    expect(r.emitted).toHaveLength(300 - bad.length);
    for (const rec of r.emitted) {
      const v = rec.value as { i: number; n: number; twice: number };
      expect(v.n).toBe(v.i);
      expect(v.twice).toBe(v.i * 2);
    }
  });

  it('copies a value with an own __proto__ field (from JSON) as data, leaving the prototype alone', async () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const r = await runStep(set({ b: 'a + 1', seen: 'polluted' }), recordsOf([value]));
    const out = r.emitted[0]!.value as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(out.polluted).toBeUndefined();
    expect(out.b).toBe(2);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
  });

  it('refuses a field named __proto__', () => {
    expect(() => setStep.create(JSON.parse('{"set": {"__proto__": "1"}}'), context('enriched'))).toThrow(ConfigError);
  });

  it('has a schema with descriptions and examples, and describes its config', () => {
    const schema = setStep.schema as { properties: { set: { description?: string; examples?: unknown[]; additionalProperties: { examples?: unknown[] } } } };
    expect(schema.properties.set.description).toBeTruthy();
    expect(schema.properties.set.examples!.length).toBeGreaterThan(0);
    expect(schema.properties.set.additionalProperties.examples!.length).toBeGreaterThan(0);
    expect(setStep.describe({ set: { a: '1', b: '2' } })).toBe('set a, b');
  });
});
