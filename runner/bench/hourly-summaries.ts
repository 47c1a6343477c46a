/**
 * The employee job's hourly summaries in plain JS, for the yardstick of `npm run bench:kafka` with
 * BENCH_BASELINE_SUMMARIES=1: what the pipeline's `hourly` window computes (count, total and
 * average duration per employee, activity type and hour of event time), with the same watermark:
 * the lowest of the partitions' highest event times, less 10 minutes of lateness. A window is
 * emitted once the watermark passes its end. One process owns every partition here, so groups
 * need no repartition topic and nothing is checkpointed: the least such a job could cost.
 */

const HOUR_MS = 3_600_000;
/** The pipeline's `lateness: 10m`. */
export const LATENESS_MS = 600_000;

/** A Debezium payload as far as the summaries read it. */
export type ChangePayload = { op?: string; after?: Record<string, unknown> | null } | null | undefined;

/** One closed hour, as the pipeline's summaries sink writes it. */
export interface HourlySummary {
  employee_id: unknown;
  activity_type: unknown;
  window_start: string;
  window_end: string;
  activity_count: number;
  total_duration: number | null;
  avg_duration: number | null;
}

interface Group {
  employee_id: unknown;
  activity_type: unknown;
  count: number;
  total: number;
  /** Durations counted (null durations count as records, not in the total). */
  n: number;
}

export class HourlySummaries {
  /** Open groups by window start, then by `<employee_id>/<activity_type>`. */
  private readonly open = new Map<number, Map<string, Group>>();
  private readonly highest: number[];
  /** Records whose hour had already been emitted (the pipeline's `late` port). */
  late = 0;
  private watermark = Number.NEGATIVE_INFINITY;

  constructor(partitions: number) {
    this.highest = new Array<number>(partitions).fill(Number.NEGATIVE_INFINITY);
  }

  /**
   * One Debezium change of `partition`, its payload parsed: any row image moves the partition's
   * event time (as in the pipeline, whose watermark every event moves); an insert is also summed
   * into its hour.
   */
  event(partition: number, payload: ChangePayload): void {
    const after = payload?.after;
    if (!after || typeof after.activity_timestamp !== 'number') return;
    const ms = Math.floor(after.activity_timestamp / 1000); // MicroTimestamp
    this.observe(partition, ms);
    if (payload.op === 'c') this.add(ms, after.employee_id, after.activity_type, after.duration_seconds);
  }

  /** An event of `partition` at `timeMs` moves that partition's event time, whether summarised or not. */
  observe(partition: number, timeMs: number): void {
    if (timeMs > this.highest[partition]!) this.highest[partition] = timeMs;
  }

  /** An insert, counted in its hour. */
  add(timeMs: number, employeeId: unknown, activityType: unknown, duration: unknown): void {
    const start = Math.floor(timeMs / HOUR_MS) * HOUR_MS;
    if (start + HOUR_MS <= this.watermark) {
      this.late++;
      return;
    }
    let groups = this.open.get(start);
    if (!groups) this.open.set(start, (groups = new Map()));
    const key = `${String(employeeId)}/${String(activityType)}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { employee_id: employeeId, activity_type: activityType, count: 0, total: 0, n: 0 }));
    g.count++;
    if (typeof duration === 'number') {
      g.total += duration;
      g.n++;
    }
  }

  /** The hours the watermark has closed since the last call, each group's summary once. */
  closed(): HourlySummary[] {
    const watermark = Math.min(...this.highest) - LATENESS_MS;
    if (watermark > this.watermark) this.watermark = watermark;
    const out: HourlySummary[] = [];
    for (const [start, groups] of this.open) {
      if (start + HOUR_MS > this.watermark) continue;
      const window_start = new Date(start).toISOString();
      const window_end = new Date(start + HOUR_MS).toISOString();
      for (const g of groups.values()) {
        out.push({
          employee_id: g.employee_id,
          activity_type: g.activity_type,
          window_start,
          window_end,
          activity_count: g.count,
          total_duration: g.n ? g.total : null,
          avg_duration: g.n ? g.total / g.n : null,
        });
      }
      this.open.delete(start);
    }
    return out;
  }
}
