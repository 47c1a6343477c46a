/**
 * The status of a `sluice run --threads N` process from its threads' own (each a whole run over its
 * share of the tasks): what the live view and `sluice status` show for the process. Counts, rates,
 * queues, open windows, lag and state sizes add up; a watermark is the earliest of the threads'
 * (the process has processed event time that far everywhere); the age of the last checkpoint, a
 * watermark's lag and the uptime are the largest; a node is failing, or a source disconnected,
 * when it is so in any thread.
 */
import type { RecentError } from '../engine/runtime.ts';
import { watermarkSeconds } from '../engine/runtime-metrics.ts';
import type { NodeStatus, StatusSnapshot } from './live-status.ts';
import type { Readiness } from './readiness.ts';
import type { RunFailure, RunPhase } from './run-status.ts';

/** The process's phase from its threads', the one that most needs attention first. */
const PHASE_ORDER: readonly RunPhase[] = ['failed', 'restarting', 'starting', 'stopping', 'running', 'stopped', 'finished'];

export function processPhase(phases: readonly RunPhase[]): RunPhase {
  for (const p of PHASE_ORDER) if (phases.includes(p)) return p;
  return 'starting';
}

function latest<T extends { at: number }>(items: readonly (T | undefined)[]): T | undefined {
  let best: T | undefined;
  for (const x of items) if (x !== undefined && (best === undefined || x.at > best.at)) best = x;
  return best;
}

function maxOf(values: readonly (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length === 0 ? undefined : Math.max(...defined);
}

function sumOf(values: readonly (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length === 0 ? undefined : defined.reduce((a, b) => a + b, 0);
}

/** The earliest watermark (ISO text, or `end` once an input ended); undefined when no thread has one. */
function earliestWatermark(watermarks: readonly (string | undefined)[]): string | undefined {
  let best: string | undefined;
  let bestSeconds = Number.POSITIVE_INFINITY;
  for (const w of watermarks) {
    const s = watermarkSeconds(w);
    if (w === undefined || s === undefined) continue;
    if (best === undefined || s < bestSeconds) {
      best = w;
      bestSeconds = s;
    }
  }
  return best;
}

/** One node over the threads (every thread runs the whole plan, so each has every node). */
function mergeNode(nodes: readonly NodeStatus[]): NodeStatus {
  const first = nodes[0]!;
  const sum = (pick: (n: NodeStatus) => number) => nodes.reduce((a, n) => a + pick(n), 0);
  const merged: NodeStatus = {
    name: first.name,
    role: first.role,
    kind: first.kind,
    in: sum((n) => n.in),
    out: sum((n) => n.out),
    failed: sum((n) => n.failed),
    filtered: sum((n) => n.filtered),
    late: sum((n) => n.late),
    inRate: sum((n) => n.inRate),
    outRate: sum((n) => n.outRate),
    failedRate: sum((n) => n.failedRate),
    failing: nodes.some((n) => n.failing),
  };
  const watermark = earliestWatermark(nodes.map((n) => n.watermark));
  if (watermark !== undefined) merged.watermark = watermark;
  const watermarkLag = maxOf(nodes.map((n) => n.watermarkLagSeconds));
  if (watermarkLag !== undefined) merged.watermarkLagSeconds = watermarkLag;
  const open = sumOf(nodes.map((n) => n.openWindows));
  if (open !== undefined) merged.openWindows = open;
  const queued = sumOf(nodes.map((n) => n.queued));
  if (queued !== undefined) merged.queued = queued;
  const writing = sumOf(nodes.map((n) => n.writing));
  if (writing !== undefined) merged.writing = writing;
  const lags = nodes.flatMap((n) => (n.lag ? [n.lag] : []));
  if (lags.length > 0) merged.lag = { value: lags.reduce((a, l) => a + l.value, 0), unit: lags[0]!.unit };
  const connections = nodes.filter((n) => n.connected !== undefined);
  if (connections.length > 0) {
    merged.connected = connections.every((n) => n.connected === true);
    const detail = connections.find((n) => n.connected === false && n.connection)?.connection ?? connections.find((n) => n.connection)?.connection;
    if (detail !== undefined) merged.connection = detail;
  }
  const lastError = latest<RecentError>(nodes.map((n) => n.lastError));
  if (lastError) merged.lastError = lastError;
  return merged;
}

/**
 * The process's status from its threads' snapshots (at least one), with the process's readiness
 * (every thread ready) given. Nodes keep the order of the first snapshot's.
 */
export function mergeStatuses(snapshots: readonly StatusSnapshot[], ready: Readiness): StatusSnapshot {
  const first = snapshots[0]!;
  const merged: StatusSnapshot = {
    pipeline: first.pipeline,
    ...(first.profile !== undefined ? { profile: first.profile } : {}),
    at: Math.max(...snapshots.map((s) => s.at)),
    phase: processPhase(snapshots.map((s) => s.phase)),
    ready,
    uptimeSeconds: Math.max(...snapshots.map((s) => s.uptimeSeconds)),
    restarts: snapshots.reduce((a, s) => a + s.restarts, 0),
    nodes: first.nodes.map((n) => mergeNode(snapshots.flatMap((s) => s.nodes.filter((x) => x.name === n.name)))),
  };
  const failure = latest<RunFailure>(snapshots.map((s) => s.lastFailure));
  if (failure) merged.lastFailure = failure;
  const checkpoints = snapshots.flatMap((s) => (s.checkpoint ? [s.checkpoint] : []));
  if (checkpoints.length > 0) {
    merged.checkpoint = {
      // Each thread numbers its own checkpoints: the highest says how far the busiest has got.
      epoch: Math.max(...checkpoints.map((c) => c.epoch)),
      entries: checkpoints.reduce((a, c) => a + c.entries, 0),
      bytes: checkpoints.reduce((a, c) => a + c.bytes, 0),
    };
    const age = maxOf(checkpoints.map((c) => c.ageSeconds));
    if (age !== undefined) merged.checkpoint.ageSeconds = age;
    const duration = maxOf(checkpoints.map((c) => c.lastDurationMs));
    if (duration !== undefined) merged.checkpoint.lastDurationMs = duration;
  }
  return merged;
}
