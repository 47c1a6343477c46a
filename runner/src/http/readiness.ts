/**
 * When a run is ready (`/readyz` answers 200): it is running (not starting, restarting or
 * stopping), every source is connected to what it reads, and, when it takes checkpoints, its
 * stored state is fresh. Kubernetes then stops routing to, or alerting on, a pipeline that cannot
 * make progress; `/healthz` only says the process answers.
 */
import type { RunStatus } from './run-status.ts';

export interface Readiness {
  ready: boolean;
  /** Why not, one line each; empty when ready. */
  reasons: string[];
}

/**
 * How old the stored state may be: ten checkpoint intervals, at least 30 s. A checkpoint waits for
 * the job in progress and for the sinks to flush, so a few intervals of delay are normal under
 * load; several tens of seconds mean the store or a sink is stuck.
 */
export function checkpointStaleAfterMs(intervalMs: number): number {
  return Math.max(10 * intervalMs, 30_000);
}

export function readiness(status: RunStatus): Readiness {
  const phase = status.phase();
  const runtime = status.runtime();
  if (phase !== 'running' || !runtime) {
    const failure = status.lastFailure();
    const why = phase === 'restarting' && failure ? ` after: ${failure.message}` : '';
    return { ready: false, reasons: [`the pipeline is ${phase}${why}`] };
  }
  const reasons: string[] = [];
  const health = runtime.health();
  for (const [name, h] of Object.entries(health.sources)) {
    if (!h.connected) reasons.push(`source ${name} is not connected${h.detail ? `: ${h.detail}` : ''}`);
  }
  if (health.checkpoint) {
    const limit = checkpointStaleAfterMs(health.checkpoint.intervalMs);
    if (health.checkpoint.ageMs > limit) {
      reasons.push(`the last checkpoint is ${Math.round(health.checkpoint.ageMs / 1000)} s old (more than ${Math.round(limit / 1000)} s)`);
    }
  }
  return { ready: reasons.length === 0, reasons };
}
