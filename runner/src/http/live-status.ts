/**
 * The status a person sees: per node, counts and rates, failures, watermark and lag, and whether
 * it is failing; for the run, its phase, readiness and last checkpoint. The live view gets it
 * every second through server-sent events, `sluice status` once from /api/status.
 *
 * Counts come from the metrics registry, which keeps counting across the restarts of one process,
 * so a restart neither resets them nor makes a rate negative; current figures (watermarks, queues,
 * checkpoint age) come from the Runtime running now.
 */
import type { Metrics } from '../engine/metrics.ts';
import type { RecentError } from '../engine/runtime.ts';
import { RECORDS_FAILED, RECORDS_FILTERED, RECORDS_IN, RECORDS_LATE, RECORDS_OUT, RECORDS_WRITTEN, watermarkSeconds } from '../engine/runtime-metrics.ts';
import type { PlanNode } from '../plan/types.ts';
import { readiness, type Readiness } from './readiness.ts';
import type { RunFailure, RunPhase, RunStatus } from './run-status.ts';

export interface NodeStatus {
  name: string;
  role: PlanNode['role'];
  kind: string;
  /** Totals since the process started. */
  in: number;
  out: number;
  failed: number;
  filtered: number;
  late: number;
  /** Per second over the last sample interval. */
  inRate: number;
  outRate: number;
  failedRate: number;
  /** Windows: the watermark (ISO, or `end`), how far behind the wall clock it is, open windows. */
  watermark?: string;
  watermarkLagSeconds?: number;
  openWindows?: number;
  /** Sinks: records waiting and in the write in flight. */
  queued?: number;
  writing?: number;
  /** Sources: messages not yet committed (Kafka), or bytes of WAL the slot holds (postgres-cdc). */
  lag?: { value: number; unit: 'messages' | 'bytes' };
  connected?: boolean;
  connection?: string;
  /** Failures in the last minute, a source that lost its connection, or the node the run failed at. */
  failing: boolean;
  lastError?: RecentError;
}

export interface StatusSnapshot {
  pipeline: string;
  profile?: string;
  /** Epoch ms of this snapshot. */
  at: number;
  phase: RunPhase;
  ready: Readiness;
  uptimeSeconds: number;
  restarts: number;
  /** A run on threads (`sluice run --threads`): how many; the figures are all of theirs together. */
  threads?: number;
  lastFailure?: RunFailure;
  checkpoint?: { epoch: number; ageSeconds?: number; lastDurationMs?: number; entries: number; bytes: number };
  nodes: NodeStatus[];
}

/** A node with failures this recent is marked failing. */
export const FAILING_FOR_MS = 60_000;

const LAG_SERIES: [string, 'messages' | 'bytes'][] = [
  ['sluice_kafka_consumer_lag_messages', 'messages'],
  ['sluice_cdc_slot_lag_bytes', 'bytes'],
];

interface Totals {
  at: number;
  in: number;
  out: number;
  failed: number;
}

export class LiveStatus {
  private previous = new Map<string, Totals>();
  /** When each node's failed count last rose. */
  private readonly failedAt = new Map<string, number>();
  private latest: StatusSnapshot | undefined;

  constructor(private readonly status: RunStatus) {
    const metrics = status.metrics;
    metrics.addCollector(() => {
      metrics.set('sluice_ready', {}, readiness(status).ready ? 1 : 0);
      metrics.set('sluice_running', {}, status.phase() === 'running' ? 1 : 0);
    });
  }

  /** The last sample, or a new one when none was taken yet. */
  current(): StatusSnapshot {
    return this.latest ?? this.sample();
  }

  /** Takes a sample: rates are over the time since the previous one. */
  sample(now = Date.now()): StatusSnapshot {
    const { plan, metrics } = this.status;
    const runtime = this.status.runtime();
    const stats = runtime?.stats();
    const health = runtime?.health();
    const failure = this.status.lastFailure();
    const phase = this.status.phase();
    const failedNode = phase === 'restarting' || phase === 'failed' ? failure?.where?.match(/^(?:sources|steps|sinks)\.([^.\s]+)/)?.[1] : undefined;
    const nodes = plan.nodes.map((n): NodeStatus => {
      const labels = { node: n.name };
      const totals: Totals = {
        at: now,
        in: metrics.counter(RECORDS_IN, labels),
        out: n.role === 'sink' ? metrics.counter(RECORDS_WRITTEN, labels) : sumOf(metrics, RECORDS_OUT, n.name),
        failed: metrics.counter(RECORDS_FAILED, labels),
      };
      const before = this.previous.get(n.name);
      this.previous.set(n.name, totals);
      const seconds = before ? Math.max(0.001, (now - before.at) / 1000) : 0;
      const rate = (key: 'in' | 'out' | 'failed') => (before ? Math.max(0, totals[key] - before[key]) / seconds : 0);
      if (before && totals.failed > before.failed) this.failedAt.set(n.name, now);
      const node: NodeStatus = {
        name: n.name,
        role: n.role,
        kind: n.kind,
        in: totals.in,
        out: totals.out,
        failed: totals.failed,
        filtered: metrics.counter(RECORDS_FILTERED, labels),
        late: metrics.counter(RECORDS_LATE, labels),
        inRate: rate('in'),
        outRate: rate('out'),
        failedRate: rate('failed'),
        failing: false,
      };
      const s = stats?.nodes[n.name];
      const step = s?.step;
      if (step && typeof step.watermark === 'string') {
        node.watermark = step.watermark;
        const wm = watermarkSeconds(step.watermark);
        if (wm !== undefined && Number.isFinite(wm)) node.watermarkLagSeconds = Math.max(0, now / 1000 - wm);
      }
      if (step && typeof step.open_windows === 'number') node.openWindows = step.open_windows;
      if (s?.role === 'sink') {
        node.queued = s.queued ?? 0;
        node.writing = s.writing ?? 0;
      }
      if (n.role === 'source') {
        for (const [name, unit] of LAG_SERIES) {
          const series = metrics.series(name).filter((x) => x.labels.node === n.name);
          if (series.length > 0) node.lag = { value: series.reduce((sum, x) => sum + x.value, 0), unit };
        }
        const h = health?.sources[n.name];
        if (h) {
          node.connected = h.connected;
          if (h.detail) node.connection = h.detail;
        }
      }
      const errors = this.status.recentErrors(n.name);
      if (errors.length > 0) node.lastError = errors[errors.length - 1]!;
      const recentlyFailed = now - (this.failedAt.get(n.name) ?? -Infinity) < FAILING_FOR_MS;
      node.failing = recentlyFailed || node.connected === false || failedNode === n.name;
      return node;
    });
    const snapshot: StatusSnapshot = {
      pipeline: plan.name,
      ...(plan.profile !== undefined ? { profile: plan.profile } : {}),
      at: now,
      phase,
      ready: readiness(this.status),
      uptimeSeconds: Math.round((now - this.status.startedAt) / 1000),
      restarts: this.status.restarts(),
      ...(failure ? { lastFailure: failure } : {}),
      nodes,
    };
    const cp = stats?.checkpoint;
    if (cp) {
      snapshot.checkpoint = {
        epoch: cp.epoch,
        entries: cp.entries,
        bytes: cp.bytes,
        ...(health?.checkpoint ? { ageSeconds: health.checkpoint.ageMs / 1000 } : {}),
        ...(cp.lastDurationMs !== undefined ? { lastDurationMs: cp.lastDurationMs } : {}),
      };
    }
    this.latest = snapshot;
    return snapshot;
  }
}

function sumOf(metrics: Metrics, name: string, node: string): number {
  let n = 0;
  for (const s of metrics.series(name)) if (s.labels.node === node) n += s.value;
  return n;
}
