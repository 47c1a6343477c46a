import { describe, expect, it } from 'vitest';
import type { ComponentContext, Format, Sink, Source, Step } from '../../src/engine/component.ts';
import { ManualClock } from '../../src/engine/clock.ts';
import { ConfigError } from '../../src/engine/errors.ts';
import { Metrics } from '../../src/engine/metrics.ts';
import { instantiate } from '../../src/plan/instantiate.ts';
import { loadPipelineText } from '../../src/plan/load-pipeline.ts';
import type { ComponentRegistry } from '../../src/spec/registry.ts';
import { fakeComponents } from '../spec/fake-components.ts';

/** The fake components, with factories that record what they were given. */
function recordingRegistry(created: { kind: string; config: unknown; ctx: ComponentContext }[]): ComponentRegistry {
  const record = <T>(kind: string, make: () => T) => (config: unknown, ctx: ComponentContext): T => {
    created.push({ kind, config, ctx });
    return make();
  };
  const source = (): Source => ({ run: async () => {}, stop: async () => {}, close: async () => {}, bounded: true });
  const format = (): Format => ({ decode: () => ({ key: null, value: null, meta: {} }) });
  const step = (): Step => ({ process: () => {} });
  const sink = (): Sink => ({ open: async () => {}, prepare: () => [], write: async () => {}, close: async () => {} });
  return {
    sources: fakeComponents.sources.map((d) => ({ ...d, create: record(d.name, source) })),
    formats: fakeComponents.formats.map((d) => ({ ...d, create: record(d.name, format) })),
    steps: fakeComponents.steps.map((d) => ({ ...d, create: record(d.name, step) })),
    sinks: fakeComponents.sinks.map((d) => ({ ...d, create: record(d.name, sink) })),
  };
}

const SPEC = `version: 1
name: demo
sources:
  events: { kafka: { topic: t } }
steps:
  kept: { from: events, filter: a > 1 }
sinks:
  out: { from: [kept, kept.errors], file: { path: o.jsonl } }
`;

describe('instantiate', () => {
  it('creates every component with its config and a context naming the node', () => {
    const created: { kind: string; config: unknown; ctx: ComponentContext }[] = [];
    const registry = recordingRegistry(created);
    const result = loadPipelineText('demo.yaml', SPEC, { registry });
    if (!result.ok) throw new Error('invalid');
    const clock = new ManualClock(5);
    const metrics = new Metrics();
    const graph = instantiate(result.plan, { mode: 'test', registry, clock, metrics });

    expect(graph.name).toBe('demo');
    expect(graph.nodes.map((n) => `${n.role}:${n.name}`)).toEqual(['source:events', 'step:kept', 'sink:out']);
    expect(graph.nodes[2]).toMatchObject({ inputs: [{ node: 'kept', port: 'out' }, { node: 'kept', port: 'errors' }] });
    expect(created.map((c) => [c.kind, c.ctx.name, c.ctx.mode])).toEqual([
      ['kafka', 'events', 'test'],
      ['json', 'events', 'test'],
      ['filter', 'kept', 'test'],
      ['file', 'out', 'test'],
    ]);
    expect(created[2]!.config).toEqual({ filter: 'a > 1' });
    expect(created.every((c) => c.ctx.clock === clock && c.ctx.metrics === metrics)).toBe(true);
  });

  it('tells every component which members of $meta the plan may read', () => {
    const created: { kind: string; config: unknown; ctx: ComponentContext }[] = [];
    const registry = recordingRegistry(created);
    const result = loadPipelineText('demo.yaml', SPEC.replace('filter: a > 1', 'filter: $meta.op = "c"'), { registry });
    if (!result.ok) throw new Error('invalid');
    instantiate(result.plan, { mode: 'test', registry });
    expect(created.map((c) => [c.ctx.readsMeta?.('op'), c.ctx.readsMeta?.('ts_ns')])).toEqual(created.map(() => [true, false]));
  });

  it('wraps a factory failure in a ConfigError naming the node', () => {
    const registry = recordingRegistry([]);
    const failing: ComponentRegistry = {
      ...registry,
      sinks: registry.sinks.map((d) => ({ ...d, create: () => { throw new Error('bad path'); } })),
    };
    const result = loadPipelineText('demo.yaml', SPEC, { registry: failing });
    if (!result.ok) throw new Error('invalid');
    expect(() => instantiate(result.plan, { mode: 'run', registry: failing })).toThrow(ConfigError);
    expect(() => instantiate(result.plan, { mode: 'run', registry: failing })).toThrow('cannot create sink `out`: bad path');
  });
});
