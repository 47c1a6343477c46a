/**
 * The topology stage: do the `from` references name real nodes and ports, is the graph free of
 * cycles, is every source read, does every step's output go somewhere. Pure: takes the entries
 * (names, ports, inputs, with their paths in the spec) and returns problems.
 *
 * A sink's only port is `errors` (the records it could not write), and only sinks read it: a step
 * there would feed records back into the graph behind the sinks.
 */
import { ERRORS_PORT, MAIN_PORT } from '../engine/graph.ts';
import type { DiagnosticCode } from './diagnostic.ts';
import { ROLE, type Section } from './load.ts';
import type { SpecPath, Target } from './positions.ts';
import { didYouMean, closest } from './suggest.ts';

export interface GraphInput {
  node: string;
  port: string;
  /** Where the reference is written (`[..., 'from']` or `[..., 'from', 1]`). */
  path: SpecPath;
}

export interface GraphEntry {
  section: Section;
  name: string;
  /** `['steps', 'hourly']`: its key is where node-level problems point. */
  path: SpecPath;
  /** Output ports (`out`, `errors`, and the kind's extra ones; a sink's: `errors`). Undefined: kind unknown, any port goes. */
  ports: readonly string[] | undefined;
  /** Undefined when `from` could not be read: the reader checks are then skipped, to avoid false alarms. */
  inputs: readonly GraphInput[] | undefined;
}

export interface GraphProblem {
  code: DiagnosticCode;
  path: SpecPath;
  target: Target;
  message: string;
  hint?: string;
}

export function outputPorts(extra: readonly string[] = []): string[] {
  return [MAIN_PORT, ERRORS_PORT, ...extra.filter((p) => p !== MAIN_PORT && p !== ERRORS_PORT)];
}

/** A sink's ports: only `errors`, the records it could not write, with the reason. */
export const SINK_PORTS: readonly string[] = [ERRORS_PORT];

export function checkGraph(entries: readonly GraphEntry[]): GraphProblem[] {
  const problems: GraphProblem[] = [];
  const byName = new Map<string, GraphEntry>();
  for (const e of entries) {
    const first = byName.get(e.name);
    if (first) {
      if (first.section !== e.section) {
        problems.push({
          code: 'E_DUPLICATE_NAME',
          path: e.path,
          target: 'key',
          message: `\`${e.name}\` is both a ${ROLE[first.section]} and a ${ROLE[e.section]}`,
          hint: 'sources, steps and sinks share one namespace: rename one of them',
        });
      }
      continue;
    }
    byName.set(e.name, e);
  }

  const readers = new Map<string, Set<string>>(); // node -> ports read
  const edges = new Map<string, GraphInput[]>(); // step -> inputs that are steps
  const sinkEdges = new Map<string, GraphInput[]>(); // sink -> inputs that are sinks
  for (const e of entries) {
    for (const input of e.inputs ?? []) {
      const target = byName.get(input.node);
      const who = `${ROLE[e.section]} \`${e.name}\``;
      if (!target) {
        const producers = entries.filter((x) => x.section !== 'sinks').map((x) => x.name);
        problems.push({
          code: 'E_FROM_UNKNOWN',
          path: input.path,
          target: 'value',
          message: `${who} reads from \`${input.node}\`, which is not a source or step${didYouMean(input.node, producers)}`,
          ...(closest(input.node, producers) === undefined && producers.length ? { hint: `sources and steps: ${producers.map((p) => `\`${p}\``).join(', ')}` } : {}),
        });
        continue;
      }
      if (target.section === 'sinks' && input.port === MAIN_PORT) {
        problems.push({
          code: 'E_FROM_UNKNOWN',
          path: input.path,
          target: 'value',
          message: `${who} reads from \`${input.node}\`, which is a sink; a sink's only output is \`${input.node}.${ERRORS_PORT}\`, the records it could not write`,
          hint: 'read from the step or source that feeds the sink instead',
        });
        continue;
      }
      if (target.section === 'sinks' && e.section !== 'sinks' && target.ports?.includes(input.port)) {
        problems.push({
          code: 'E_FROM_UNKNOWN',
          path: input.path,
          target: 'value',
          message: `${who} reads \`${input.node}.${input.port}\`: only a sink can read a sink's ${input.port}`,
          hint: `send \`${input.node}.${input.port}\` to a dead-letter sink; records a sink could not write cannot flow back into the steps`,
        });
        continue;
      }
      if (target.ports && !target.ports.includes(input.port)) {
        problems.push({
          code: 'E_PORT_UNKNOWN',
          path: input.path,
          target: 'value',
          message: `${ROLE[target.section]} \`${target.name}\` has no port \`${input.port}\`${didYouMean(input.port, target.ports)}`,
          hint: `its ports are ${target.ports.map((p) => `\`${p}\``).join(', ')}; \`${target.name}\` alone means \`${target.name}.${MAIN_PORT}\``,
        });
        continue;
      }
      if (!readers.has(target.name)) readers.set(target.name, new Set());
      readers.get(target.name)!.add(input.port);
      if (e.section === 'steps' && target.section === 'steps') edges.set(e.name, [...(edges.get(e.name) ?? []), input]);
      if (e.section === 'sinks' && target.section === 'sinks') sinkEdges.set(e.name, [...(sinkEdges.get(e.name) ?? []), input]);
    }
  }

  problems.push(...findCycles(entries.filter((e) => e.section === 'steps' && byName.get(e.name) === e), edges, 'steps'));
  problems.push(...findCycles(entries.filter((e) => e.section === 'sinks' && byName.get(e.name) === e), sinkEdges, 'sinks'));

  // An entry whose `from` is unreadable or misspelt may have meant any node: do not guess who is unread.
  if (entries.some((e) => e.section !== 'sources' && e.inputs === undefined)) return problems;
  if (problems.some((p) => p.code === 'E_FROM_UNKNOWN')) return problems;
  for (const e of byName.values()) {
    const readsMain = readers.get(e.name)?.has(MAIN_PORT) ?? false;
    if (readsMain) continue;
    if (e.section === 'sources') {
      problems.push({
        code: 'E_UNREAD_SOURCE',
        path: e.path,
        target: 'key',
        message: `nothing reads source \`${e.name}\``,
        hint: `add \`${e.name}\` to the \`from\` of a step or sink, or remove the source`,
      });
    } else if (e.section === 'steps') {
      problems.push({
        code: 'E_DANGLING_STEP',
        path: e.path,
        target: 'key',
        message: `the output of step \`${e.name}\` goes nowhere: no step or sink reads \`${e.name}\``,
        hint: `add \`${e.name}\` to the \`from\` of a step or sink, or remove the step`,
      });
    }
  }
  return problems;
}

/**
 * Strongly connected components of the step graph, or of sinks reading each other's errors
 * (Tarjan). Each component with more than one node, or a node reading itself, is one cycle,
 * reported once at the `from` of its first node in spec order.
 */
function findCycles(steps: readonly GraphEntry[], edges: Map<string, GraphInput[]>, section: 'steps' | 'sinks'): GraphProblem[] {
  const order = new Map(steps.map((s, i) => [s.name, i]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;

  const strongConnect = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const input of edges.get(v) ?? []) {
      const w = input.node;
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component);
    }
  };
  for (const s of steps) if (!index.has(s.name)) strongConnect(s.name);

  const problems: GraphProblem[] = [];
  for (const component of components) {
    const members = new Set(component);
    const selfLoop = component.length === 1 && (edges.get(component[0]!) ?? []).some((i) => i.node === component[0]);
    if (component.length === 1 && !selfLoop) continue;
    const first = [...component].sort((a, b) => order.get(a)! - order.get(b)!)[0]!;
    const cycle = cyclePath(first, members, edges);
    const input = (edges.get(first) ?? []).find((i) => members.has(i.node))!;
    const path = cycle.map((n) => `\`${n}\``).join(' -> ');
    problems.push(
      section === 'steps'
        ? {
            code: 'E_CYCLE',
            path: input.path,
            target: 'value',
            message: cycle.length === 2 ? `step \`${first}\` reads from itself` : `steps read from each other in a cycle: ${path}`,
            hint: 'data flows one way, from sources through steps to sinks: change one `from` to break the cycle',
          }
        : {
            code: 'E_CYCLE',
            path: input.path,
            target: 'value',
            message: cycle.length === 2 ? `sink \`${first}\` reads its own errors` : `sinks read each other's errors in a cycle: ${path}`,
            hint: 'a record one sink could not write must go to another sink that does not send it back: change one `from` to break the cycle',
          },
    );
  }
  return problems;
}

/** A cycle through `start` in data-flow order (`a -> b -> a` means b reads from a), found by DFS inside its component. */
function cyclePath(start: string, members: Set<string>, edges: Map<string, GraphInput[]>): string[] {
  // Follow "reads from" edges back to start, then reverse into data-flow order.
  const seen = new Set<string>();
  const dfs = (v: string, path: string[]): string[] | undefined => {
    for (const input of edges.get(v) ?? []) {
      if (!members.has(input.node)) continue;
      if (input.node === start) return [...path, start];
      if (seen.has(input.node)) continue;
      seen.add(input.node);
      const found = dfs(input.node, [...path, input.node]);
      if (found) return found;
    }
    return undefined;
  };
  const readsBack = dfs(start, [start]) ?? [start, start];
  return readsBack.reverse();
}
