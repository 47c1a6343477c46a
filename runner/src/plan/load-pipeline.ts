/**
 * The one call `sluice validate`, `graph`, `run` and `test` share: load a spec file, validate it
 * fully, and compile it into a Plan, or return every diagnostic.
 */
import { renderDiagnostics, type Diagnostic } from '../spec/diagnostic.ts';
import { loadSpecFile, loadSpecText, type LoadedSpec, type LoadOptions } from '../spec/load.ts';
import type { ComponentRegistry } from '../spec/registry.ts';
import type { PipelineSpec } from '../spec/types.ts';
import { validateSpec } from '../spec/validate.ts';
import { ConfigError } from '../engine/errors.ts';
import { compilePlan } from './compile.ts';
import { splitStages } from './stages.ts';
import type { Plan } from './types.ts';

export interface LoadPipelineOptions extends LoadOptions {
  /** Components to validate against; defaults to components/index.ts. */
  registry?: ComponentRegistry;
}

export type LoadPipelineResult =
  | { ok: true; file: string; spec: PipelineSpec; plan: Plan; loaded: LoadedSpec }
  | { ok: false; file: string; diagnostics: Diagnostic[]; loaded: LoadedSpec };

export async function loadPipeline(file: string, options: LoadPipelineOptions = {}): Promise<LoadPipelineResult> {
  return fromLoaded(await loadSpecFile(file, options), options);
}

/** Same as loadPipeline, for a spec already in memory (tests, stdin). */
export function loadPipelineText(file: string, text: string, options: LoadPipelineOptions = {}): LoadPipelineResult {
  return fromLoaded(loadSpecText(file, text, options), options);
}

function fromLoaded(loaded: LoadedSpec, options: LoadPipelineOptions): LoadPipelineResult {
  const { diagnostics, valid } = validateSpec(loaded, options.registry);
  if (!valid) return { ok: false, file: loaded.file, diagnostics, loaded };
  const plan = compilePlan(valid, {
    file: loaded.file,
    positions: loaded.positions,
    ...(options.profile !== undefined ? { profile: options.profile } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
  });
  // How a pipeline that runs as tasks splits into stages is known from the plan alone: a split
  // that cannot be made is refused here, at the step, rather than when the run starts.
  const refused = stageSplitRefusal(plan);
  if (refused) return { ok: false, file: loaded.file, diagnostics: [refused], loaded };
  return { ok: true, file: loaded.file, spec: valid.spec, plan, loaded };
}

function stageSplitRefusal(plan: Plan): Diagnostic | undefined {
  try {
    splitStages(plan);
    return undefined;
  } catch (err) {
    if (!(err instanceof ConfigError) || err.code !== 'E_REPARTITION') throw err;
    const node = plan.nodes.find((n) => `${n.role}s.${n.name}` === err.where);
    const at = node?.location ?? { file: plan.file, line: 1, col: 1 };
    return { code: 'E_REPARTITION', message: err.message, file: at.file, line: at.line, col: at.col, span: node?.name.length ?? 1 };
  }
}

/** The rustc-style text of a failed load, with source excerpts, ending in a count line. */
export function renderLoadErrors(result: Extract<LoadPipelineResult, { ok: false }>): string {
  return renderDiagnostics(result.diagnostics, (f) => (f === result.loaded.file ? result.loaded.text : undefined));
}
