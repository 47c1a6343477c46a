/**
 * The Plan: a compiled spec as a plain value. `sluice graph` prints it; `instantiate` turns it into
 * the engine's Graph. It holds configs (secrets included, since the components need them) but
 * every printed form uses `summary`, which is made from a redacted config.
 */
import type { PortRef } from '../engine/graph.ts';
import type { Delivery } from '../engine/component.ts';
import type { CheckpointSpec, SpecLocation } from '../spec/types.ts';

interface PlanNodeBase {
  name: string;
  /** The component kind: `kafka`, `filter`, `window`, `file` ... */
  kind: string;
  /** Validated config: the value under the kind key (sources, sinks) or the entry without `from` (steps). */
  config: unknown;
  /** One line on what the node does, from the def's describe(), with secrets redacted. */
  summary: string;
  /** Where the node is defined (a profile's entry: inside the profile). */
  location: SpecLocation;
  /** Output ports: `out`, `errors` and the kind's extra ones; a sink's: `errors` (the records it could not write). */
  ports: string[];
}

export interface PlanSource extends PlanNodeBase {
  role: 'source';
  format: { kind: string; config: unknown; summary: string };
}

export interface PlanStep extends PlanNodeBase {
  role: 'step';
  inputs: PortRef[];
}

export interface PlanSink extends PlanNodeBase {
  role: 'sink';
  inputs: PortRef[];
}

export type PlanNode = PlanSource | PlanStep | PlanSink;

export interface Plan {
  name: string;
  description?: string;
  /** The spec file it was compiled from. */
  file: string;
  /** The profile applied, if any. */
  profile?: string;
  /** Sources (spec order), then steps in topological order, then sinks (spec order, each after the sinks whose errors it reads). */
  nodes: PlanNode[];
  /** Default at-least-once. */
  delivery?: Delivery;
  /** The spec's `checkpoint:` block as written; plan/state.ts fills in the defaults. */
  checkpoint?: CheckpointSpec;
}
