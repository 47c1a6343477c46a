/**
 * ScaledRun: a pipeline run as tasks in this process, one TaskGroup per stage. Every process of
 * the same application runs the same stages; Kafka's group protocol shares the partitions (and so
 * the tasks) among them, and the repartition topics carry records between stages, whichever
 * process holds the task at either end. The figures it reports add up its tasks'.
 */
import type { SourceHealth } from '../component.ts';
import { errorMessage } from '../errors.ts';
import type { PipelineRun } from '../pipeline-run.ts';
import { outcomeOf, type NodeStats, type RecentError, type RunOutcome, type RuntimeHealth, type RuntimeState, type RuntimeStats } from '../runtime.ts';
import type { CheckpointStats } from '../checkpoint/coordinator.ts';
import type { TaskGroup } from './task-group.ts';

export class ScaledRun implements PipelineRun {
  private state: RuntimeState = 'created';
  private startedAt = 0;
  private stopReason: string | undefined;
  private failure: Error | undefined;

  constructor(
    readonly name: string,
    readonly groups: readonly TaskGroup[],
  ) {}

  async run(): Promise<RunOutcome> {
    this.startedAt = performance.now();
    this.state = 'running';
    const onFailure = (g: TaskGroup, err: unknown) => {
      if (this.failure) return;
      this.failure = err instanceof Error ? err : new Error(String(err));
      // One stage failed: the others end too, at once and without last checkpoints (a restart
      // restores from the committed ones), so a broker out of reach cannot hold the restart (or
      // the exit) back: each group gives up on what does not end in time.
      for (const other of this.groups) if (other !== g) void other.abort(`stage ${g.stage} failed: ${errorMessage(this.failure)}`);
    };
    // As soon as a group fails, not once its tasks ended.
    for (const g of this.groups) void g.failed.then((err) => onFailure(g, err));
    const runs = this.groups.map((g) => g.run().catch((err: unknown) => onFailure(g, err)));
    await Promise.all(runs);
    if (this.failure) {
      this.state = 'failed';
      throw this.failure;
    }
    this.state = 'done';
    return outcomeOf(this.stats(), 'stopped', this.stopReason);
  }

  async stop(reason = 'stop requested'): Promise<void> {
    this.stopReason ??= reason;
    if (this.state === 'running') this.state = 'stopping';
    await Promise.all(this.groups.map((g) => g.stop()));
  }

  stats(): RuntimeStats {
    const live = this.groups.flatMap((g) => g.tasks().map((t) => t.runtime.stats()));
    // Tasks handed over keep counting in the totals; their windows and watermarks are another process's now.
    // (So do their checkpoints: a run whose every task was taken over still made progress and restarts.)
    const ended = this.groups.flatMap((g) => g.endedRuntimes().map((r) => countersOnly(r.stats())));
    const merged = mergeStats([...live, ...ended]);
    merged.state = this.state;
    merged.elapsedMs = this.startedAt ? performance.now() - this.startedAt : 0;
    return merged;
  }

  health(): RuntimeHealth {
    const sources: Record<string, SourceHealth> = {};
    for (const g of this.groups) sources[g.input.name] = g.input.source.health?.() ?? { connected: true };
    const out: RuntimeHealth = { state: this.state, sources };
    let oldest: { ageMs: number; intervalMs: number } | undefined;
    for (const g of this.groups) {
      for (const t of g.tasks()) {
        const cp = t.runtime.health().checkpoint;
        if (cp && (!oldest || cp.ageMs > oldest.ageMs)) oldest = cp;
      }
    }
    if (oldest) out.checkpoint = oldest;
    if (this.failure) out.failure = { code: 'code' in this.failure ? String(this.failure.code) : 'E_RUNTIME', message: this.failure.message };
    return out;
  }

  recentErrors(): Record<string, RecentError[]> {
    const out: Record<string, RecentError[]> = {};
    for (const g of this.groups) {
      for (const t of g.tasks()) {
        for (const [node, list] of Object.entries(t.runtime.recentErrors())) (out[node] ??= []).push(...list);
      }
    }
    for (const list of Object.values(out)) list.sort((a, b) => a.at - b.at);
    return out;
  }
}

/**
 * Adds up the figures of several runtimes (the tasks of this process): counters sum per node; of a
 * step's own figures, numbers sum and strings (watermarks, ISO times) keep the lowest, the one
 * that holds results back.
 */
export function mergeStats(all: readonly RuntimeStats[]): RuntimeStats {
  const nodes: Record<string, NodeStats> = {};
  let recordsIn = 0;
  let recordsOut = 0;
  let queuedBatches = 0;
  let checkpoint: CheckpointStats | undefined;
  for (const s of all) {
    recordsIn += s.recordsIn;
    recordsOut += s.recordsOut;
    queuedBatches += s.queuedBatches;
    for (const [node, n] of Object.entries(s.nodes)) {
      // A repartition is a sink in one stage and a source of the same name in the next.
      const name = nodes[node] && nodes[node].role !== n.role ? `${node} (${n.role})` : node;
      nodes[name] = nodes[name] ? addNode(nodes[name], n) : { ...n, ...(n.step ? { step: { ...n.step } } : {}) };
    }
    if (s.checkpoint) checkpoint = checkpoint ? addCheckpoint(checkpoint, s.checkpoint) : { ...s.checkpoint };
  }
  return { state: 'running', elapsedMs: 0, recordsIn, recordsOut, queuedBatches, nodes, ...(checkpoint ? { checkpoint } : {}) };
}

function countersOnly(s: RuntimeStats): RuntimeStats {
  const nodes: Record<string, NodeStats> = {};
  for (const [name, n] of Object.entries(s.nodes)) {
    const { step: _step, ...rest } = n;
    nodes[name] = rest;
  }
  const { checkpoint, ...restStats } = s;
  // Its checkpoints count (the run made progress, and a restart is worth it); its state is gone from here.
  return { ...restStats, nodes, ...(checkpoint ? { checkpoint: { ...checkpoint, entries: 0, bytes: 0 } } : {}) };
}

const SUMMED = ['recordsIn', 'recordsOut', 'failed', 'discarded', 'dropped', 'nanos', 'queued', 'writing', 'batches', 'prepareNanos', 'writeNanos'] as const;

function addNode(a: NodeStats, b: NodeStats): NodeStats {
  const out: NodeStats = { ...a };
  for (const k of SUMMED) {
    const x = a[k];
    const y = b[k];
    if (x !== undefined || y !== undefined) out[k] = (x ?? 0) + (y ?? 0);
  }
  if (a.step || b.step) {
    const step: Record<string, number | string | undefined> = { ...a.step };
    for (const [k, v] of Object.entries(b.step ?? {})) {
      const prev = step[k];
      if (typeof v === 'number') step[k] = typeof prev === 'number' ? prev + v : v;
      else if (typeof v === 'string') step[k] = typeof prev === 'string' && prev < v ? prev : v;
    }
    out.step = step;
  }
  return out;
}

function addCheckpoint(a: CheckpointStats, b: CheckpointStats): CheckpointStats {
  const out: CheckpointStats = {
    epoch: Math.max(a.epoch, b.epoch),
    entries: a.entries + b.entries,
    bytes: a.bytes + b.bytes,
    checkpoints: a.checkpoints + b.checkpoints,
    skipped: a.skipped + b.skipped,
  };
  const last = Math.max(a.lastCommittedAt ?? 0, b.lastCommittedAt ?? 0);
  if (last > 0) out.lastCommittedAt = last;
  const dur = Math.max(a.lastDurationMs ?? -1, b.lastDurationMs ?? -1);
  if (dur >= 0) out.lastDurationMs = dur;
  return out;
}
