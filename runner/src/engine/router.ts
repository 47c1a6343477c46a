/**
 * The routing table of a graph: for every output port, which steps and sinks read it. Built once
 * when the runtime starts, and checked: every input names an earlier node and a port it has.
 */
import { ConfigError } from './errors.ts';
import { ERRORS_PORT, MAIN_PORT, type Graph, type GraphNode } from './graph.ts';

export interface Reader {
  /** The reading node's name. */
  readonly name: string;
  readonly role: 'step' | 'sink';
  /** Its index in `graph.nodes`. */
  readonly index: number;
}

export interface Routes {
  /** Readers of each port, by node then port. Ports nobody reads are absent. */
  readonly readers: ReadonlyMap<string, ReadonlyMap<string, readonly Reader[]>>;
}

/** The ports a node may emit on: `out`, `errors`, and a step's own (`late`). Sinks: `errors` only, the records they could not write. */
function portsOf(node: GraphNode): readonly string[] {
  switch (node.role) {
    case 'source':
      return [MAIN_PORT, ERRORS_PORT];
    case 'step':
      return [MAIN_PORT, ERRORS_PORT, ...(node.step.ports ?? [])];
    case 'sink':
      return [ERRORS_PORT];
  }
}

function whereOf(node: GraphNode): string {
  return `${node.role}s.${node.name}`;
}

/**
 * Builds the routing table. Throws ConfigError when a name repeats, an input names an unknown or
 * later node (the plan must order nodes topologically), or a port the node does not have, or a step
 * reads a sink: a sink writes outside the job loop that runs steps, so only sinks read its errors.
 */
export function buildRoutes(graph: Graph): Routes {
  const indexByName = new Map<string, number>();
  const readers = new Map<string, Map<string, Reader[]>>();
  graph.nodes.forEach((node, index) => {
    if (indexByName.has(node.name)) {
      throw new ConfigError('E_GRAPH', `node \`${node.name}\` appears twice in the graph`, whereOf(node));
    }
    if (node.role !== 'source') {
      if (node.inputs.length === 0) {
        throw new ConfigError('E_GRAPH', `\`${node.name}\` reads nothing`, whereOf(node));
      }
      for (const input of node.inputs) {
        const from = indexByName.get(input.node);
        const upstream = from === undefined ? undefined : graph.nodes[from];
        if (!upstream) {
          const known = graph.nodes.some((n) => n.name === input.node);
          throw new ConfigError(
            'E_GRAPH',
            known
              ? `\`${node.name}\` reads \`${input.node}\`, which comes after it: nodes must be in topological order`
              : `\`${node.name}\` reads \`${input.node}\`, which is not a node of the graph`,
            whereOf(node),
          );
        }
        if (upstream.role === 'sink' && node.role !== 'sink') {
          throw new ConfigError('E_GRAPH', `\`${node.name}\` reads \`${input.node}.${input.port}\`: only a sink can read a sink's port`, whereOf(node));
        }
        const ports = portsOf(upstream);
        if (!ports.includes(input.port)) {
          throw new ConfigError(
            'E_GRAPH',
            `\`${node.name}\` reads \`${input.node}.${input.port}\`, but \`${input.node}\` has only the ports ${ports.join(', ')}`,
            whereOf(node),
          );
        }
        let byPort = readers.get(input.node);
        if (!byPort) readers.set(input.node, (byPort = new Map()));
        let list = byPort.get(input.port);
        if (!list) byPort.set(input.port, (list = []));
        if (list.some((r) => r.index === index)) {
          throw new ConfigError('E_GRAPH', `\`${node.name}\` reads \`${input.node}.${input.port}\` twice`, whereOf(node));
        }
        list.push({ name: node.name, role: node.role, index });
      }
    }
    indexByName.set(node.name, index);
  });
  return { readers };
}
