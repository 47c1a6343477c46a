import { describe, expect, it } from 'vitest';
import { compilePlan, topologicalOrder } from '../../src/plan/compile.ts';
import { loadPipelineText } from '../../src/plan/load-pipeline.ts';
import { fakeComponents } from '../spec/fake-components.ts';

const SPEC = `version: 1
name: demo
description: A demo.
sources:
  events:
    kafka: { topic: t, password: "\${PW}" }
    format: debezium
sinks:
  out:
    from: [second, first.errors]
    kafka: { topic: o, password: hunter2 }
steps:
  second:
    from: first
    set: { b: a + 1 }
  first:
    from: events
    filter: a > 1
`;

describe('compilePlan', () => {
  const result = loadPipelineText('demo.yaml', SPEC, { env: { PW: 'sekrit' }, registry: fakeComponents });
  if (!result.ok) throw new Error(JSON.stringify(result.diagnostics));
  const plan = result.plan;

  it('orders sources, then steps topologically, then sinks', () => {
    expect(plan.nodes.map((n) => `${n.role}:${n.name}`)).toEqual(['source:events', 'step:first', 'step:second', 'sink:out']);
  });

  it('keeps inputs as port refs, formats, ports and locations', () => {
    const sink = plan.nodes[3]!;
    expect(sink.role === 'sink' && sink.inputs).toEqual([
      { node: 'second', port: 'out' },
      { node: 'first', port: 'errors' },
    ]);
    const source = plan.nodes[0]!;
    expect(source.role === 'source' && source.format).toEqual({ kind: 'debezium', config: {}, summary: 'debezium' });
    expect(source.ports).toEqual(['out', 'errors']);
    expect(source.location).toEqual({ file: 'demo.yaml', line: 5, col: 3 });
    expect(plan).toMatchObject({ name: 'demo', description: 'A demo.', file: 'demo.yaml' });
  });

  it('keeps the real config for the components but redacts secrets from summaries', () => {
    const sink = plan.nodes[3]!;
    expect(sink.config).toEqual({ topic: 'o', password: 'hunter2' });
    expect(sink.summary).toBe('write topic o as ***');
    expect(JSON.stringify(plan.nodes.map((n) => n.summary))).not.toMatch(/hunter2|sekrit/);
  });

  it("puts a sink after the sinks whose errors it reads, and gives sinks the port `errors`", () => {
    const text = SPEC.replace('sinks:\n', 'sinks:\n  dead-letters:\n    from: out.errors\n    kafka: { topic: dlq, password: x }\n');
    const loaded = loadPipelineText('demo.yaml', text, { env: { PW: 'sekrit' }, registry: fakeComponents });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.diagnostics));
    expect(loaded.plan.nodes.map((n) => `${n.role}:${n.name}:${n.ports.join(',')}`)).toEqual([
      'source:events:out,errors',
      'step:first:out,errors',
      'step:second:out,errors',
      'sink:out:errors',
      'sink:dead-letters:errors',
    ]);
  });

  it('is a plain value', () => {
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });

  it('orders steps stably, in spec order among the ready ones', () => {
    const steps = [
      { name: 'c', inputs: [{ node: 'a' }] },
      { name: 'a', inputs: [{ node: 'src' }] },
      { name: 'b', inputs: [{ node: 'src' }] },
    ];
    expect(topologicalOrder(steps).map((s) => s.name)).toEqual(['a', 'c', 'b']);
  });

  it('throws on a cycle rather than looping', () => {
    expect(() => topologicalOrder([{ name: 'a', inputs: [{ node: 'b' }] }, { name: 'b', inputs: [{ node: 'a' }] }])).toThrow(/cycle/);
    expect(compilePlan).toBeTypeOf('function');
  });
});
