/**
 * Plan -> engine Graph: each node's def creates its component with a ComponentContext. Creating
 * never connects (sources and sinks connect in run()/open()), so this is safe in test mode.
 */
import type { ComponentContext } from '../engine/component.ts';
import type { Clock } from '../engine/clock.ts';
import { systemClock } from '../engine/clock.ts';
import { ConfigError, errorMessage, SluiceError } from '../engine/errors.ts';
import type { Graph, GraphNode } from '../engine/graph.ts';
import type { Logger } from '../engine/logger.ts';
import { silentLogger } from '../engine/logger.ts';
import { Metrics } from '../engine/metrics.ts';
import { builtinComponents, findDef, type ComponentRegistry } from '../spec/registry.ts';
import { metaRead } from './meta-read.ts';
import type { Plan } from './types.ts';

export interface InstantiateOptions {
  mode: ComponentContext['mode'];
  logger?: Logger;
  clock?: Clock;
  metrics?: Metrics;
  registry?: ComponentRegistry;
  /** The run takes checkpoints (plan/state.ts): stateful steps and exactly-once sinks are told. */
  checkpoints?: ComponentContext['checkpoints'];
  /** The pipeline runs as tasks (plan/tasks.ts): the task these instances belong to. */
  task?: ComponentContext['task'];
}

export function instantiate(plan: Plan, options: InstantiateOptions): Graph {
  const registry = options.registry ?? builtinComponents;
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const metrics = options.metrics ?? new Metrics();
  const readsMeta = metaRead(plan.nodes);
  const context = (name: string, bindings: Record<string, unknown>): ComponentContext => ({
    name,
    logger: logger.child(bindings),
    clock,
    metrics,
    mode: options.mode,
    readsMeta,
    ...(options.checkpoints ? { checkpoints: options.checkpoints } : {}),
    ...(options.task ? { task: options.task } : {}),
  });

  const nodes: GraphNode[] = plan.nodes.map((node) => {
    const where = `${node.role}s.${node.name}`;
    const create = <T>(what: string, fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        if (err instanceof SluiceError) throw err;
        throw new ConfigError('E_CREATE', `cannot create ${what} \`${node.name}\`: ${errorMessage(err)}`, where, { cause: err });
      }
    };
    const missing = (family: string, kind: string) => new ConfigError('E_CREATE', `no ${family} kind \`${kind}\` is installed`, where);
    switch (node.role) {
      case 'source': {
        const def = findDef(registry.sources, node.kind);
        const formatDef = findDef(registry.formats, node.format.kind);
        if (!def) throw missing('source', node.kind);
        if (!formatDef) throw missing('format', node.format.kind);
        const source = create('source', () => def.create(node.config, context(node.name, { node: node.name, kind: node.kind })));
        const format = create('format of source', () =>
          formatDef.create(node.format.config, context(node.name, { node: node.name, format: node.format.kind })),
        );
        return { role: 'source', name: node.name, source, format };
      }
      case 'step': {
        const def = findDef(registry.steps, node.kind);
        if (!def) throw missing('step', node.kind);
        const step = create('step', () => def.create(node.config, context(node.name, { node: node.name, kind: node.kind })));
        return { role: 'step', name: node.name, step, inputs: node.inputs };
      }
      case 'sink': {
        const def = findDef(registry.sinks, node.kind);
        if (!def) throw missing('sink', node.kind);
        const sink = create('sink', () => def.create(node.config, context(node.name, { node: node.name, kind: node.kind })));
        return { role: 'sink', name: node.name, sink, inputs: node.inputs };
      }
    }
  });
  return { name: plan.name, nodes };
}

