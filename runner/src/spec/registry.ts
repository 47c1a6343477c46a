/**
 * The component lists validation, the published schema, the docs and the plan read. Tests pass
 * their own; everything else uses the one list in components/index.ts.
 */
import type { FormatDef, SinkDef, SourceDef, StepDef } from '../engine/component.ts';
import * as components from '../components/index.ts';

export interface ComponentRegistry {
  readonly sources: readonly SourceDef<unknown>[];
  readonly formats: readonly FormatDef<unknown>[];
  readonly steps: readonly StepDef<unknown>[];
  readonly sinks: readonly SinkDef<unknown>[];
}

export const builtinComponents: ComponentRegistry = {
  sources: components.sources,
  formats: components.formats,
  steps: components.steps,
  sinks: components.sinks,
};

/** The format of a source that names none. */
export const DEFAULT_FORMAT = 'json';

/** Node names: no dots, because dots address ports (`hourly.late`). */
export const NODE_NAME_PATTERN = '^[a-z][a-z0-9_-]*$';
export const PIPELINE_NAME_PATTERN = '^[a-z][a-z0-9-]*$';
/** `node` or `node.port`. */
export const PORT_REF_PATTERN = '^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_-]*)?$';

export function findDef<D extends { name: string }>(defs: readonly D[], name: string): D | undefined {
  return defs.find((d) => d.name === name);
}
