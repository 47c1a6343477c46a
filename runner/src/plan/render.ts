/**
 * Printing a Plan for reviewers: text (the default of `sluice graph`), Mermaid (`flowchart LR`,
 * renders on GitHub and in mermaid.live), Graphviz dot, and JSON (what the live view of
 * `sluice run --http` draws). All show every node, every edge with its port, and each node's
 * one-line summary (secrets already redacted by compile); JSON adds each node's config, redacted.
 *
 * Given the stage split of a plan that runs as tasks (plan/stages.ts), each form also shows where
 * records cross processes: the text lists the stages and the repartition topics, Mermaid and dot
 * draw an edge into a repartitioned window bold with its key, JSON adds `stages` and `repartitions`.
 */
import type { JsonSchema } from '../engine/component.ts';
import { MAIN_PORT, type PortRef } from '../engine/graph.ts';
import { redactSecrets } from '../spec/annotations.ts';
import { builtinComponents, findDef, type ComponentRegistry } from '../spec/registry.ts';
import type { Repartition, StageSplit } from './stages.ts';
import type { Plan, PlanNode } from './types.ts';

export const GRAPH_FORMATS = ['text', 'mermaid', 'dot', 'json'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/** `split`: the plan runs as tasks, cut into these stages; every form then shows them. */
export function renderPlan(plan: Plan, format: GraphFormat, split?: StageSplit): string {
  switch (format) {
    case 'text':
      return renderText(plan, split);
    case 'mermaid':
      return renderMermaid(plan, split);
    case 'dot':
      return renderDot(plan, split);
    case 'json':
      return JSON.stringify(split ? { ...planGraph(plan), ...stagesView(split) } : planGraph(plan), null, 2) + '\n';
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
  /** When the plan runs as tasks: its stages, each with the names of its nodes (the inserted ones included). */
  stages?: { id: string; input: string; nodes: string[] }[];
  /** When the plan runs as tasks: the repartition topics between its stages. */
  repartitions?: Repartition[];
}

/** A split's stages and repartitions as plain data, for `--format json`. */
export function stagesView(split: StageSplit): Required<Pick<GraphView, 'stages' | 'repartitions'>> {
  return {
    stages: split.stages.map((s) => ({ id: s.id, input: s.input, nodes: s.plan.nodes.map((n) => n.name) })),
    repartitions: split.repartitions.map((r) => ({ ...r, by: [...r.by] })),
  };
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

export function renderText(plan: Plan, split?: StageSplit): string {
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
      const through = split?.repartitions.find((r) => r.step === n.name);
      if (through) lines.push(`      reads through the repartition topic ${through.topic} (stage ${through.to})`);
      for (const port of n.ports) {
        const to = readers.get(refText({ node: n.name, port }));
        if (to) lines.push(`      ${port} -> ${to.join(', ')}`);
      }
    }
  }
  if (split) lines.push(...stagesText(plan, split));
  return lines.join('\n') + '\n';
}

/** The key of a repartition as text. */
function keyText(by: readonly string[]): string {
  return by.length ? by.join(', ') : 'none (no group_by: one group per window)';
}

function partitionsText(r: Repartition): string {
  if (r.partitions !== undefined) return String(r.partitions);
  return r.from === '0' ? 'as the source' : `as stage ${r.from} has tasks`;
}

/** The text form's `stages:` and `repartitions:` sections. */
function stagesText(plan: Plan, split: StageSplit): string[] {
  const lines = ['', 'stages: (runs as tasks, one per partition of each stage\'s input)'];
  const original = new Map(plan.nodes.map((n) => [n.name, n]));
  for (const stage of split.stages) {
    const input = stage.plan.nodes.find((n) => n.name === stage.input);
    lines.push(`  ${stage.id}  <- ${stage.input}${input ? ` [${kindText(input)}]` : ''}`);
    const globals = stage.plan.nodes.filter((n) => n.role === 'source' && n.name !== stage.input).map((n) => n.name);
    if (globals.length) lines.push(`      every task also reads whole: ${globals.join(', ')} (global)`);
    const steps = stage.plan.nodes.filter((n) => n.role === 'step').map((n) => n.name);
    if (steps.length) lines.push(`      steps: ${steps.join(', ')}`);
    const sinks = stage.plan.nodes.flatMap((n) => {
      if (n.role !== 'sink') return [];
      const whole = original.get(n.name);
      // A sink that is in several stages reads only this stage's nodes here: say which.
      const partial = whole?.role === 'sink' && (whole.inputs.length !== n.inputs.length || whole.inputs.some((r, i) => refText(r) !== refText(n.inputs[i]!)));
      return [partial || !whole ? `${n.name} (${n.inputs.map(refText).join(', ')})` : n.name];
    });
    if (sinks.length) lines.push(`      sinks: ${sinks.join(', ')}`);
  }
  if (split.repartitions.length === 0) {
    lines.push('', 'repartitions: none (every window reads its input in the stage it is in)');
    return lines;
  }
  lines.push('', 'repartitions: (where records cross processes)');
  for (const r of split.repartitions) {
    lines.push(`  ${r.topic}  stage ${r.from} -> stage ${r.to}, read by ${r.step}`);
    lines.push(`      key: ${keyText(r.by)}`);
    lines.push(`      partitions: ${partitionsText(r)}`);
    lines.push(`      markers: every task of stage ${r.from} writes its watermark (highest event time written, or idle) to each partition, so ${r.step} waits for all of them`);
    lines.push(`      read as consumer group ${r.group}`);
  }
  return lines;
}

/* ------------------------------------------------------------------ mermaid */

/** Text inside a quoted Mermaid label: quotes, angle brackets, backticks (markdown strings) and `#` become entity codes. */
export function mermaidText(text: string): string {
  return text.replace(/#/g, '#35;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;').replace(/`/g, '#96;');
}

function truncate(text: string, max = 80): string {
  return text.length > max ? text.slice(0, max - 3) + '...' : text;
}

/** The label of an edge into a repartitioned window: the topic it crosses and its key. */
function crossingLabel(r: Repartition, input: PortRef): string {
  return `${input.port === MAIN_PORT ? '' : `${input.port}, `}repartition by ${r.by.length ? r.by.join(', ') : 'nothing'}`;
}

export function renderMermaid(plan: Plan, split?: StageSplit): string {
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
    const through = split?.repartitions.find((r) => r.step === n.name);
    for (const input of n.inputs) {
      const from = ids.get(input.node);
      if (!from) continue;
      if (through) lines.push(`  ${from} ==>|"${mermaidText(crossingLabel(through, input))}"| ${ids.get(n.name)}`);
      else lines.push(input.port === MAIN_PORT ? `  ${from} --> ${ids.get(n.name)}` : `  ${from} -. ${mermaidText(input.port)} .-> ${ids.get(n.name)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/* ------------------------------------------------------------------ dot */

export function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function renderDot(plan: Plan, split?: StageSplit): string {
  const shapes: Record<PlanNode['role'], string> = { source: 'cylinder', step: 'box', sink: 'box3d' };
  const lines = [`digraph ${dotString(plan.name)} {`, '  rankdir=LR;', '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];'];
  for (const n of plan.nodes) {
    lines.push(`  ${dotString(n.name)} [shape=${shapes[n.role]}, label=${dotString(`${n.name} (${kindText(n)})\n${truncate(n.summary)}`)}];`);
  }
  for (const n of plan.nodes) {
    if (n.role === 'source') continue;
    const through = split?.repartitions.find((r) => r.step === n.name);
    for (const input of n.inputs) {
      const attrs = through
        ? ` [label=${dotString(`${crossingLabel(through, input)}\n${through.topic}`)}, style=bold]`
        : input.port === MAIN_PORT ? '' : ` [label=${dotString(input.port)}, style=dashed]`;
      lines.push(`  ${dotString(input.node)} -> ${dotString(n.name)}${attrs};`);
    }
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
