/**
 * Compiling a validated spec into a Plan: each entry becomes a node with its kind, config, inputs,
 * ports and a one-line summary; steps are put in topological order. Pure: nothing is created.
 */
import type { JsonSchema } from '../engine/component.ts';
import { ConfigError, errorMessage } from '../engine/errors.ts';
import { redactSecrets } from '../spec/annotations.ts';
import type { SpecPositions } from '../spec/positions.ts';
import { builtinComponents, DEFAULT_FORMAT, findDef, type ComponentRegistry } from '../spec/registry.ts';
import type { ResolvedEntry, ValidSpec } from '../spec/validate.ts';
import type { Plan, PlanNode } from './types.ts';

interface Describable {
  name: string;
  schema: JsonSchema;
  describe(config: unknown): string;
}

/** The def's one-liner for a config whose secrets are replaced by `***`, so no describe() can leak one. */
export function summarize(def: Describable, config: unknown): string {
  try {
    return def.describe(redactSecrets(def.schema, config)).replace(/\s+/g, ' ').trim();
  } catch (err) {
    return `${def.name} (${errorMessage(err)})`;
  }
}

export interface CompileOptions {
  file: string;
  positions: SpecPositions;
  profile?: string;
  registry?: ComponentRegistry;
}

export function compilePlan(valid: ValidSpec, options: CompileOptions): Plan {
  const registry = options.registry ?? builtinComponents;
  const locate = (e: ResolvedEntry) => {
    const pos = options.positions.at(e.path, 'key');
    return { file: options.file, line: pos.line, col: pos.col };
  };
  const defOf = (e: ResolvedEntry): Describable => {
    const def = findDef<Describable>(registry[e.section], e.kind);
    if (!def) throw new ConfigError('E_PLAN', `no ${e.section} kind \`${e.kind}\``, `${e.section}.${e.name}`);
    return def;
  };

  const nodes: PlanNode[] = [];
  for (const e of valid.entries.filter((x) => x.section === 'sources')) {
    const formatKind = e.format?.kind ?? DEFAULT_FORMAT;
    const formatConfig = e.format?.config ?? {};
    const formatDef = findDef<Describable>(registry.formats, formatKind);
    nodes.push({
      role: 'source',
      name: e.name,
      kind: e.kind,
      config: e.config,
      summary: summarize(defOf(e), e.config),
      location: locate(e),
      ports: e.ports,
      format: { kind: formatKind, config: formatConfig, summary: formatDef ? summarize(formatDef, formatConfig) : formatKind },
    });
  }
  for (const e of topologicalOrder(valid.entries.filter((x) => x.section === 'steps'))) {
    nodes.push({ role: 'step', name: e.name, kind: e.kind, config: e.config, summary: summarize(defOf(e), e.config), location: locate(e), ports: e.ports, inputs: e.inputs });
  }
  // Sinks too: one that reads another's errors comes after it.
  for (const e of topologicalOrder(valid.entries.filter((x) => x.section === 'sinks'))) {
    nodes.push({ role: 'sink', name: e.name, kind: e.kind, config: e.config, summary: summarize(defOf(e), e.config), location: locate(e), ports: e.ports, inputs: e.inputs });
  }
  return {
    name: valid.spec.name,
    ...(valid.spec.description !== undefined ? { description: valid.spec.description } : {}),
    file: options.file,
    ...(options.profile !== undefined ? { profile: options.profile } : {}),
    nodes,
    ...(valid.spec.delivery !== undefined ? { delivery: valid.spec.delivery } : {}),
    ...(valid.spec.checkpoint !== undefined ? { checkpoint: valid.spec.checkpoint } : {}),
  };
}

/**
 * Kahn's algorithm over the steps (or the sinks), taking the ready one that comes first in the spec
 * each time, so the order is stable and reads like the file. Validation has ruled out cycles.
 */
export function topologicalOrder<T extends { name: string; inputs: readonly { node: string }[] }>(nodes: readonly T[]): T[] {
  const names = new Set(nodes.map((s) => s.name));
  const placed = new Set<string>();
  const out: T[] = [];
  while (out.length < nodes.length) {
    const next = nodes.find((s) => !placed.has(s.name) && s.inputs.every((i) => !names.has(i.node) || placed.has(i.node)));
    if (!next) throw new ConfigError('E_CYCLE', `nodes form a cycle: ${nodes.filter((s) => !placed.has(s.name)).map((s) => s.name).join(', ')}`);
    placed.add(next.name);
    out.push(next);
  }
  return out;
}
