/**
 * The shape of a pipeline spec after YAML parsing, interpolation and schema validation.
 * Component configs stay `unknown` here: each component's schema validated them, and its factory
 * receives them.
 */
export interface PipelineSpec {
  version: 1;
  name: string;
  description?: string;
  sources: Record<string, SourceEntry>;
  steps?: Record<string, StepEntry>;
  sinks: Record<string, SinkEntry>;
  /** Named overrides: `--profile local` replaces or adds whole sources, steps and sinks. */
  profiles?: Record<string, Profile>;
  delivery?: 'at-least-once' | 'exactly-once';
  checkpoint?: CheckpointSpec;
}

/** The `checkpoint:` block (see pipeline-schema.ts for what each key means). */
export interface CheckpointSpec {
  interval?: string;
  store?: 'kafka' | 'file' | 'postgres' | 'none';
  application_id?: string;
  dir?: string;
  /** The `postgres` store's schema. */
  schema?: string;
}

/** `{ <kind>: <config>, format?: <name> | { <name>: <options> } }` */
export type SourceEntry = { format?: string | Record<string, unknown> } & Record<string, unknown>;

/** `{ from: <ref> | <ref>[], <kind>: ..., <kind-owned siblings>... }` */
export type StepEntry = { from: string | string[] } & Record<string, unknown>;

/** `{ from: <ref> | <ref>[], <kind>: <config> }` */
export type SinkEntry = { from: string | string[] } & Record<string, unknown>;

export interface Profile {
  description?: string;
  sources?: Record<string, SourceEntry>;
  steps?: Record<string, StepEntry>;
  sinks?: Record<string, SinkEntry>;
}

/** A position in a spec file, 1-based, for `file:line:col` diagnostics. */
export interface SpecLocation {
  file: string;
  line: number;
  col: number;
}
