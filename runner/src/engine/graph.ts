/**
 * The runnable graph: component instances wired by name. `plan/` builds it from a validated spec;
 * the engine runs it without knowing which kinds of component it holds.
 */
import type { Format, Sink, Source, Step } from './component.ts';

/** An edge's upstream end: a node and one of its ports (`out`, `errors`, `late`, ...). */
export interface PortRef {
  node: string;
  port: string;
}

export type GraphNode =
  | { role: 'source'; name: string; source: Source; format: Format }
  | { role: 'step'; name: string; step: Step; inputs: PortRef[] }
  | { role: 'sink'; name: string; sink: Sink; inputs: PortRef[] };

export interface Graph {
  /** The pipeline's name from the spec. */
  name: string;
  /** Sources first, then steps in topological order, then sinks (each after the sinks whose errors it reads). */
  nodes: GraphNode[];
}

export const MAIN_PORT = 'out';
export const ERRORS_PORT = 'errors';

/** `hourly.late` -> { node: 'hourly', port: 'late' }; `hourly` -> its main port. */
export function parsePortRef(ref: string): PortRef {
  const dot = ref.indexOf('.');
  return dot < 0 ? { node: ref, port: MAIN_PORT } : { node: ref.slice(0, dot), port: ref.slice(dot + 1) };
}
