/**
 * Printing a Plan for reviewers: text (the default of `sluice graph`), Mermaid (`flowchart LR`,
 * renders on GitHub and in mermaid.live), Graphviz dot, and JSON (what the live view of
 * `sluice run --http` draws). All show every node, every edge with its port, and each node's
 * one-line summary (secrets already redacted by compile); JSON adds each node's config, redacted.
 */
import type { JsonSchema } from '../engine/component.ts';
import { MAIN_PORT, type PortRef } from '../engine/graph.ts';
import { redactSecrets } from '../spec/annotations.ts';
import { builtinComponents, findDef, type ComponentRegistry } from '../spec/registry.ts';
import type { Plan, PlanNode } from './types.ts';

export const GRAPH_FORMATS = ['text', 'mermaid', 'dot', 'json'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

export function renderPlan(plan: Plan, format: GraphFormat): string {
  switch (format) {
    case 'text':
      return renderText(plan);
    case 'mermaid':
      return renderMermaid(plan);
    case 'dot':
      return renderDot(plan);
    case 'json':
      return JSON.stringify(planGraph(plan), null, 2) + '\n';
  }
}

/** A node of the graph as the live view and `--format json` show it. */
export interface GraphNodeView {
  name: string;
  role: PlanNode['role'];
  kind: string;
  /** Sources: their format's kind. */
  format?: string;
  summary: string;
  ports: string[];
  /** Its config with every secret (`x-secret` in the component's schema) replaced by `***`. */
  config: unknown;
  /** Sources: the format's options, redacted too. */
  formatConfig?: unknown;
}

export interface GraphEdgeView {
  from: string;
  port: string;
  to: string;
}

export interface GraphView {
  pipeline: string;
  description?: string;
  profile?: string;
  nodes: GraphNodeView[];
  edges: GraphEdgeView[];
}

/** The plan's graph as plain data, configs redacted; the same nodes and edges as every other form. */
export function planGraph(plan: Plan, registry: ComponentRegistry = builtinComponents): GraphView {
  const redact = (defs: readonly { name: string; schema: JsonSchema }[], kind: string, config: unknown): unknown => {
    const def = findDef(defs, kind);
    // A kind this registry lacks: nothing can say which fields are secret, so nothing is shown.
    return def ? redactSecrets(def.schema, config) : '(not shown: unknown kind)';
  };
  const nodes = plan.nodes.map((n): GraphNodeView => {
    const defs = n.role === 'source' ? registry.sources : n.role === 'step' ? registry.steps : registry.sinks;
    const view: GraphNodeView = { name: n.name, role: n.role, kind: n.kind, summary: n.summary, ports: [...n.ports], config: redact(defs, n.kind, n.config) };
    if (n.role === 'source') {
      view.format = n.format.kind;
      view.formatConfig = redact(registry.formats, n.format.kind, n.format.config);
    }
    return view;
  });
  const edges = plan.nodes.flatMap((n) => (n.role === 'source' ? [] : n.inputs.map((i) => ({ from: i.node, port: i.port, to: n.name }))));
  return {
    pipeline: plan.name,
    ...(plan.description !== undefined ? { description: plan.description } : {}),
    ...(plan.profile !== undefined ? { profile: plan.profile } : {}),
    nodes,
    edges,
  };
}

const refText = (r: PortRef) => (r.port === MAIN_PORT ? r.node : `${r.node}.${r.port}`);

function kindText(node: PlanNode): string {
  return node.role === 'source' ? `${node.kind}, ${node.format.kind}` : node.kind;
}

/** Who reads each node's ports, for the text form's `->` lines. */
function readersOf(plan: Plan): Map<string, string[]> {
  const readers = new Map<string, string[]>();
  for (const n of plan.nodes) {
    if (n.role === 'source') continue;
    for (const input of n.inputs) {
      const key = refText(input);
      readers.set(key, [...(readers.get(key) ?? []), n.name]);
    }
  }
  return readers;
}

export function renderText(plan: Plan): string {
  const lines = [`pipeline ${plan.name}${plan.profile ? ` (profile ${plan.profile})` : ''}`];
  if (plan.description) lines.push(`  ${plan.description}`);
  const readers = readersOf(plan);
  for (const role of ['source', 'step', 'sink'] as const) {
    const nodes = plan.nodes.filter((n) => n.role === role);
    if (nodes.length === 0) continue;
    lines.push('', `${role}s:`);
    for (const n of nodes) {
      const inputs = n.role === 'source' ? '' : `  <- ${n.inputs.map(refText).join(', ')}`;
      lines.push(`  ${n.name} [${kindText(n)}]${inputs}`);
      lines.push(`      ${n.summary}`);
      if (n.role === 'source') lines.push(`      format: ${n.format.summary}`);
      for (const port of n.ports) {
        const to = readers.get(refText({ node: n.name, port }));
        if (to) lines.push(`      ${port} -> ${to.join(', ')}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

/* ------------------------------------------------------------------ mermaid */

/** Text inside a quoted Mermaid label: quotes, angle brackets, backticks (markdown strings) and `#` become entity codes. */
export function mermaidText(text: string): string {
  return text.replace(/#/g, '#35;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;').replace(/`/g, '#96;');
}

function truncate(text: string, max = 80): string {
  return text.length > max ? text.slice(0, max - 3) + '...' : text;
}

export function renderMermaid(plan: Plan): string {
  const ids = new Map(plan.nodes.map((n, i) => [n.name, `n${i}`]));
  const lines = ['flowchart LR'];
  const shapes: Record<PlanNode['role'], [string, string]> = { source: ['[(', ')]'], step: ['[', ']'], sink: ['[/', '/]'] };
  for (const role of ['source', 'step', 'sink'] as const) {
    const nodes = plan.nodes.filter((n) => n.role === role);
    if (nodes.length === 0) continue;
    lines.push(`  subgraph ${role}s`);
    for (const n of nodes) {
      const [open, close] = shapes[n.role];
      const label = `${mermaidText(n.name)} · ${mermaidText(kindText(n))}<br/>${mermaidText(truncate(n.summary))}`;
      lines.push(`    ${ids.get(n.name)}${open}"${label}"${close}`);
    }
    lines.push('  end');
  }
  for (const n of plan.nodes) {
    if (n.role === 'source') continue;
    for (const input of n.inputs) {
      const from = ids.get(input.node);
      if (!from) continue;
      lines.push(input.port === MAIN_PORT ? `  ${from} --> ${ids.get(n.name)}` : `  ${from} -. ${mermaidText(input.port)} .-> ${ids.get(n.name)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/* ------------------------------------------------------------------ dot */

export function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function renderDot(plan: Plan): string {
  const shapes: Record<PlanNode['role'], string> = { source: 'cylinder', step: 'box', sink: 'box3d' };
  const lines = [`digraph ${dotString(plan.name)} {`, '  rankdir=LR;', '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];'];
  for (const n of plan.nodes) {
    lines.push(`  ${dotString(n.name)} [shape=${shapes[n.role]}, label=${dotString(`${n.name} (${kindText(n)})\n${truncate(n.summary)}`)}];`);
  }
  for (const n of plan.nodes) {
    if (n.role === 'source') continue;
    for (const input of n.inputs) {
      const attrs = input.port === MAIN_PORT ? '' : ` [label=${dotString(input.port)}, style=dashed]`;
      lines.push(`  ${dotString(input.node)} -> ${dotString(n.name)}${attrs};`);
    }
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
