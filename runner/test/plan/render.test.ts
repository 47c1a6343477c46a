import { describe, expect, it } from 'vitest';
import { loadPipelineText } from '../../src/plan/load-pipeline.ts';
import { mermaidText, planGraph, renderDot, renderMermaid, renderPlan, renderText } from '../../src/plan/render.ts';
import type { Plan } from '../../src/plan/types.ts';

const at = { file: 'p.yaml', line: 1, col: 1 };
const plan: Plan = {
  name: 'employee-activity',
  description: 'Demo.',
  file: 'p.yaml',
  nodes: [
    { role: 'source', name: 'activities', kind: 'kafka', config: {}, summary: 'read topic t', location: at, ports: ['out', 'errors'], format: { kind: 'debezium', config: {}, summary: 'debezium envelopes' } },
    { role: 'step', name: 'inserts', kind: 'filter', config: {}, summary: 'keep records where $meta.op = "c"', location: at, ports: ['out', 'errors'], inputs: [{ node: 'activities', port: 'out' }] },
    { role: 'step', name: 'hourly', kind: 'window', config: {}, summary: 'tumbling 1h <late>', location: at, ports: ['out', 'errors', 'late'], inputs: [{ node: 'inserts', port: 'out' }] },
    { role: 'sink', name: 'summaries', kind: 'kafka', config: {}, summary: 'write topic s', location: at, ports: [], inputs: [{ node: 'hourly', port: 'out' }] },
    { role: 'sink', name: 'late-activities', kind: 'file', config: {}, summary: 'write #late', location: at, ports: [], inputs: [{ node: 'hourly', port: 'late' }] },
  ],
};

describe('renderMermaid', () => {
  const out = renderMermaid(plan);
  const lines = out.trimEnd().split('\n');

  it('is a left-to-right flowchart with one subgraph per role', () => {
    expect(lines[0]).toBe('flowchart LR');
    expect(lines.filter((l) => /^\s+subgraph /.test(l)).map((l) => l.trim())).toEqual(['subgraph sources', 'subgraph steps', 'subgraph sinks']);
    expect(lines.filter((l) => l.trim() === 'end')).toHaveLength(3);
  });

  it('declares every node once with a quoted label and edges only between declared ids', () => {
    const nodeLine = /^\s+(n\d+)(\[\(|\[\/|\[)"([^"]*)"(\)\]|\/\]|\])$/;
    const declared = lines.map((l) => nodeLine.exec(l)?.[1]).filter((id): id is string => id !== undefined);
    expect(declared).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
    const edges = lines.filter((l) => l.includes('-->') || l.includes('.->'));
    expect(edges).toEqual(['  n0 --> n1', '  n1 --> n2', '  n2 --> n3', '  n2 -. late .-> n4']);
  });

  it('escapes quotes, angle brackets and # inside labels', () => {
    expect(out).toContain('keep records where $meta.op = #quot;c#quot;');
    expect(out).toContain('tumbling 1h #lt;late#gt;');
    expect(out).toContain('write #35;late');
    expect(mermaidText('a"b')).toBe('a#quot;b');
  });
});

describe('renderDot', () => {
  it('declares nodes and edges, dashed with a label for side ports', () => {
    const out = renderDot(plan);
    expect(out.startsWith('digraph "employee-activity" {\n  rankdir=LR;')).toBe(true);
    expect(out).toContain('"activities" [shape=cylinder, label="activities (kafka, debezium)\\nread topic t"];');
    expect(out).toContain('"inserts" [shape=box, label="inserts (filter)\\nkeep records where $meta.op = \\"c\\""];');
    expect(out).toContain('"hourly" -> "late-activities" [label="late", style=dashed];');
    expect(out.trimEnd().endsWith('}')).toBe(true);
  });
});

describe('renderText', () => {
  it('lists nodes per role with inputs, summaries and who reads which port', () => {
    expect(renderText(plan)).toBe(
      [
        'pipeline employee-activity',
        '  Demo.',
        '',
        'sources:',
        '  activities [kafka, debezium]',
        '      read topic t',
        '      format: debezium envelopes',
        '      out -> inserts',
        '',
        'steps:',
        '  inserts [filter]  <- activities',
        '      keep records where $meta.op = "c"',
        '      out -> hourly',
        '  hourly [window]  <- inserts',
        '      tumbling 1h <late>',
        '      out -> summaries',
        '      late -> late-activities',
        '',
        'sinks:',
        '  summaries [kafka]  <- hourly',
        '      write topic s',
        '  late-activities [file]  <- hourly.late',
        '      write #late',
        '',
      ].join('\n'),
    );
  });
});

describe('planGraph (the live view and --format json)', () => {
  it('has every node and edge, and each config with its secrets redacted', () => {
    const loaded = loadPipelineText(
      'secret.yaml',
      [
        'version: 1',
        'name: secret',
        'sources:',
        '  in:',
        '    kafka: { brokers: "a:9092", topic: t, group: g, sasl: { mechanism: plain, username: u, password: hunter2 } }',
        'steps:',
        '  keep: { from: in, filter: "x > 1" }',
        'sinks:',
        '  out: { from: keep, stdout: {} }',
        '  dead: { from: [in.errors, keep.errors], stdout: {} }',
      ].join('\n'),
      { env: {} },
    );
    if (!loaded.ok) throw new Error('does not load');
    const graph = planGraph(loaded.plan);
    expect(graph.nodes.map((n) => [n.name, n.role, n.kind])).toEqual([
      ['in', 'source', 'kafka'],
      ['keep', 'step', 'filter'],
      ['out', 'sink', 'stdout'],
      ['dead', 'sink', 'stdout'],
    ]);
    expect(graph.edges).toEqual([
      { from: 'in', port: 'out', to: 'keep' },
      { from: 'keep', port: 'out', to: 'out' },
      { from: 'in', port: 'errors', to: 'dead' },
      { from: 'keep', port: 'errors', to: 'dead' },
    ]);
    expect(graph.nodes[0]!.config).toMatchObject({ topic: 't', sasl: { username: 'u', password: '***' } });
    expect(renderPlan(loaded.plan, 'json')).not.toContain('hunter2');
    expect(JSON.parse(renderPlan(loaded.plan, 'json'))).toEqual(graph);
  });
});
