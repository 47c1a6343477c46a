/**
 * What the HTTP server knows about a `sluice run`: the plan, the process's metrics registry, and
 * the Runtime running now. `sluice run` restarts a failed run from its last checkpoint in the
 * same process, with a new Runtime each time; the server outlives them all and follows the
 * current one through this object.
 */
import { errorMessage, SluiceError } from '../engine/errors.ts';
import type { MetricDefinition, Metrics } from '../engine/metrics.ts';
import type { PipelineRun } from '../engine/pipeline-run.ts';
import type { RecentError } from '../engine/runtime.ts';
import type { Plan } from '../plan/types.ts';

/**
 * `starting`: state is being restored, sinks opened. `restarting`: the run failed and starts again
 * after a delay. `finished`: bounded input ended. `stopped`: a signal stopped it. `failed`: for good.
 */
export type RunPhase = 'starting' | 'running' | 'restarting' | 'stopping' | 'finished' | 'stopped' | 'failed';

export interface RunFailure {
  /** Epoch ms. */
  at: number;
  code?: string;
  /** Where it happened, e.g. `sinks.processed` or `sources.activities`. */
  where?: string;
  message: string;
}

const RUN_METRICS: readonly MetricDefinition[] = [
  { name: 'sluice_pipeline_info', type: 'gauge', help: 'Always 1; its labels name the pipeline, profile and delivery.', labels: ['profile', 'delivery'] },
  { name: 'sluice_ready', type: 'gauge', help: 'Whether the run is ready (what /readyz answers): 1 ready, 0 not.', labels: [] },
  { name: 'sluice_running', type: 'gauge', help: 'Whether the pipeline is running (1) or starting, restarting or stopping (0).', labels: [] },
  { name: 'sluice_restarts_total', type: 'counter', help: 'Times the run failed and started again from its last checkpoint.', labels: [] },
];

/** Errors kept per node from runs that already ended, for the live view. */
export const KEPT_ERRORS = 20;

export class RunStatus {
  /** Epoch ms the process started the run. */
  readonly startedAt = Date.now();
  private current: PipelineRun | undefined;
  private ended: RunPhase | undefined;
  private waitingToRestart = false;
  private restartCount = 0;
  private failure: RunFailure | undefined;
  private readonly earlierErrors = new Map<string, RecentError[]>();

  constructor(
    readonly plan: Plan,
    readonly metrics: Metrics,
  ) {
    metrics.define(...RUN_METRICS);
    metrics.set('sluice_pipeline_info', { profile: plan.profile ?? '', delivery: plan.delivery ?? 'at-least-once' }, 1);
  }

  /** A new Runtime is about to run (the first, or one restarting from the last checkpoint). */
  started(runtime: PipelineRun): void {
    if (this.current) this.keepErrors(this.current);
    this.current = runtime;
    this.waitingToRestart = false;
  }

  /** The run failed; `restarting` when it will start again from its last checkpoint. */
  failed(error: unknown, restarting: boolean): void {
    this.failure = {
      at: Date.now(),
      message: errorMessage(error),
      ...(error instanceof SluiceError ? { code: error.code, ...(error.where ? { where: error.where } : {}) } : {}),
    };
    if (restarting) {
      this.waitingToRestart = true;
      this.restartCount++;
      this.metrics.inc('sluice_restarts_total');
    } else this.ended = 'failed';
  }

  /** The run ended without failing. */
  finished(how: 'finished' | 'stopped'): void {
    this.ended = how;
  }

  runtime(): PipelineRun | undefined {
    return this.current;
  }

  restarts(): number {
    return this.restartCount;
  }

  lastFailure(): RunFailure | undefined {
    return this.failure;
  }

  phase(): RunPhase {
    if (this.ended) return this.ended;
    if (this.waitingToRestart) return 'restarting';
    switch (this.current?.stats().state) {
      case 'running':
        return 'running';
      case 'stopping':
      case 'ending':
        return 'stopping';
      case 'failed':
        return 'restarting';
      default:
        return 'starting';
    }
  }

  /** The last failures of a node, from this run and the ones before it, oldest first. */
  recentErrors(node: string): RecentError[] {
    const now = this.current?.recentErrors()[node] ?? [];
    return [...(this.earlierErrors.get(node) ?? []), ...now].slice(-KEPT_ERRORS);
  }

  private keepErrors(runtime: PipelineRun): void {
    for (const [node, errors] of Object.entries(runtime.recentErrors())) {
      this.earlierErrors.set(node, [...(this.earlierErrors.get(node) ?? []), ...errors].slice(-KEPT_ERRORS));
    }
  }
}
