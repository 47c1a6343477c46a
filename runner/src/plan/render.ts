/**
 * Printing a Plan for reviewers: text (the default of `sluice graph`), Mermaid (`flowchart LR`,
 * renders on GitHub and in mermaid.live) and Graphviz dot. All three show every node, every edge
 * with its port, and each node's one-line summary (secrets already redacted by compile).
 */
import { MAIN_PORT, type PortRef } from '../engine/graph.ts';
import type { Plan, PlanNode } from './types.ts';

export const GRAPH_FORMATS = ['text', 'mermaid', 'dot'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

export function renderPlan(plan: Plan, format: GraphFormat): string {
  switch (format) {
    case 'text':
      return renderText(plan);
    case 'mermaid':
      return renderMermaid(plan);
    case 'dot':
      return renderDot(plan);
  }
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
