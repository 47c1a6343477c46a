/**
 * What runs a pipeline, as the CLI, the progress line and the HTTP status see it: one Runtime, or
 * a ScaledRun of tasks (engine/tasks) when the pipeline scales out across processes.
 */
import type { RecentError, RunOutcome, RuntimeHealth, RuntimeStats } from './runtime.ts';

export interface PipelineRun {
  run(): Promise<RunOutcome>;
  stop(reason?: string): Promise<void>;
  stats(): RuntimeStats;
  health(): RuntimeHealth;
  recentErrors(): Record<string, RecentError[]>;
}
