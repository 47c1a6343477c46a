/**
 * The series the runtime publishes, and how its figures become gauges. Counters move from the
 * runtime's per-node numbers into the registry once per job (see Runtime.publishMetrics); gauges
 * (queues, watermarks, open windows, checkpoint age and size) are read from `stats()` when
 * someone scrapes. Names follow Prometheus' conventions: a `sluice_` prefix, base units
 * (`_seconds`, `_bytes`), `_total` on counters, one `node` label naming the spec's node.
 */
import { JOIN_WAITING_METRIC } from './join/temporal-join.ts';
import { LATE_METRIC } from './window/window-aggregate.ts';
import { LATENCY_BUCKETS, type MetricDefinition, type Metrics } from './metrics.ts';
import type { RuntimeStats } from './runtime.ts';

export const RECORDS_IN = 'sluice_records_in_total';
export const RECORDS_OUT = 'sluice_records_out_total';
export const RECORDS_FAILED = 'sluice_records_failed_total';
export const RECORDS_FILTERED = 'sluice_records_filtered_total';
export const RECORDS_DROPPED = 'sluice_records_dropped_total';
export const RECORDS_WRITTEN = 'sluice_records_written_total';
export const RECORDS_LATE = LATE_METRIC;
export const BATCH_DURATION = 'sluice_batch_duration_seconds';
export const SINK_WRITE_DURATION = 'sluice_sink_write_duration_seconds';
export const SINK_RETRIES = 'sluice_sink_retries_total';
export const CHECKPOINT_DURATION = 'sluice_checkpoint_duration_seconds';
export const CHECKPOINTS = 'sluice_checkpoints_total';
export const CHECKPOINT_FAILURES = 'sluice_checkpoint_failures_total';
export const CHECKPOINT_AGE = 'sluice_checkpoint_age_seconds';

const counter = (name: string, help: string, labels: string[] = ['node']): MetricDefinition => ({ name, type: 'counter', help, labels });
const gauge = (name: string, help: string, labels: string[] = ['node']): MetricDefinition => ({ name, type: 'gauge', help, labels });

export const RUNTIME_METRICS: readonly MetricDefinition[] = [
  counter(RECORDS_IN, 'Records a node took in: messages a source read, records a step processed, records queued for a sink.'),
  counter(RECORDS_OUT, 'Records a source or step emitted, by output port (out, late ...; failures are counted in sluice_records_failed_total).', ['node', 'port']),
  counter(RECORDS_FAILED, 'Records that failed at a node: undecodable messages, step errors, records a sink could not write for what they hold.'),
  counter(RECORDS_FILTERED, 'Records a step dropped on purpose (a filter whose predicate was false).'),
  counter(RECORDS_DROPPED, 'Records emitted on a port nothing reads (failures when nothing reads the errors port), counted and dropped.', ['node', 'port']),
  counter(RECORDS_WRITTEN, 'Records a sink wrote and acknowledged.'),
  counter(RECORDS_LATE, 'Records a window received after every window they belong to had closed (sent to its late port).'),
  counter(SINK_RETRIES, 'Writes a sink retried after a transient failure (a broker or database unreachable for a moment).'),
  { name: BATCH_DURATION, type: 'histogram', help: 'Time to decode one source batch and run it through every step, seconds.', labels: ['node'], buckets: LATENCY_BUCKETS },
  { name: SINK_WRITE_DURATION, type: 'histogram', help: 'Time of one sink write (prepare and write of one batch), seconds.', labels: ['node'], buckets: LATENCY_BUCKETS },
  gauge('sluice_sink_queued_records', 'Records waiting in a sink queue for a write.'),
  gauge('sluice_sink_writes_in_flight', "Sink writes in flight (at most the sink's max_in_flight, 1 for most sinks)."),
  gauge('sluice_sink_records_in_flight', 'Records in the sink writes in flight.'),
  gauge('sluice_queued_batches', 'Source batches waiting to be processed.', []),
  gauge('sluice_watermark_timestamp_seconds', "A window's event-time watermark, as Unix time in seconds (+Inf once its input ended)."),
  gauge('sluice_watermark_lag_seconds', "How far a window's watermark is behind the wall clock, seconds."),
  gauge('sluice_open_windows', 'Window panes a window step holds open (one per window and group).'),
  gauge('sluice_source_connected', 'Whether a source is connected to what it reads (1) or not (0).'),
];

/** Only for runs that take checkpoints: a run without them has no checkpoint to be old. */
export const CHECKPOINT_METRICS: readonly MetricDefinition[] = [
  { name: CHECKPOINT_DURATION, type: 'histogram', help: 'Time to take one checkpoint: flush the sinks, snapshot state, commit to the store, seconds.', labels: [], buckets: LATENCY_BUCKETS },
  counter(CHECKPOINTS, 'Checkpoints committed.', []),
  counter(CHECKPOINT_FAILURES, 'Checkpoints that failed to commit (the run then fails and restarts from the last one).', []),
  gauge(CHECKPOINT_AGE, 'Seconds since the stored state last covered everything processed (a checkpoint committed, or one found nothing new).', []),
  gauge('sluice_checkpoint_last_duration_seconds', 'How long the last committed checkpoint took from the cut to durable, seconds.', []),
  gauge('sluice_checkpoint_epoch', 'Number of the last committed checkpoint.', []),
  gauge('sluice_state_entries', 'State entries (window panes) in the last checkpoint.', []),
  gauge('sluice_state_bytes', 'Bytes of state the last checkpoint stored.', []),
];

/** A watermark as `stats()` reports it (ISO string, `end`, or nothing yet), in seconds. */
export function watermarkSeconds(watermark: string | number | undefined): number | undefined {
  if (watermark === 'end') return Number.POSITIVE_INFINITY;
  if (typeof watermark !== 'string') return undefined;
  const ms = Date.parse(watermark);
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

/** Sets the gauges that `stats()` figures stand for. `checkpointAgeMs` only when the run takes checkpoints. */
export function publishStatsGauges(metrics: Metrics, stats: RuntimeStats, nowMs: number, checkpointAgeMs: number | undefined, connected: Record<string, boolean>): void {
  for (const [node, s] of Object.entries(stats.nodes)) {
    const labels = { node };
    if (s.role === 'sink') {
      metrics.set('sluice_sink_queued_records', labels, s.queued ?? 0);
      metrics.set('sluice_sink_writes_in_flight', labels, s.writes ?? 0);
      metrics.set('sluice_sink_records_in_flight', labels, s.writing ?? 0);
    }
    if (s.role === 'source') metrics.set('sluice_source_connected', labels, connected[node] === false ? 0 : 1);
    const step = s.step;
    if (!step) continue;
    if (typeof step.open_windows === 'number') metrics.set('sluice_open_windows', labels, step.open_windows);
    if (typeof step.waiting === 'number') metrics.set(JOIN_WAITING_METRIC, labels, step.waiting);
    const wm = watermarkSeconds(step.watermark);
    if (wm === undefined) {
      metrics.remove('sluice_watermark_timestamp_seconds', labels);
      metrics.remove('sluice_watermark_lag_seconds', labels);
    } else {
      metrics.set('sluice_watermark_timestamp_seconds', labels, wm);
      metrics.set('sluice_watermark_lag_seconds', labels, Number.isFinite(wm) ? Math.max(0, nowMs / 1000 - wm) : 0);
    }
  }
  metrics.set('sluice_queued_batches', {}, stats.queuedBatches);
  const cp = stats.checkpoint;
  if (cp && checkpointAgeMs !== undefined) {
    metrics.set(CHECKPOINT_AGE, {}, checkpointAgeMs / 1000);
    if (cp.lastDurationMs !== undefined) metrics.set('sluice_checkpoint_last_duration_seconds', {}, cp.lastDurationMs / 1000);
    metrics.set('sluice_checkpoint_epoch', {}, cp.epoch);
    metrics.set('sluice_state_entries', {}, cp.entries);
    metrics.set('sluice_state_bytes', {}, cp.bytes);
  }
}
