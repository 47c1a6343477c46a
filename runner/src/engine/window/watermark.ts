/**
 * The event-time watermark of a window operator, tracked per input partition (as Flink does,
 * rather than Kafka Streams' single "stream time" that the fastest partition drags forward).
 *
 * A partition's watermark is the highest event time it has sent minus the allowed lateness. The
 * operator's watermark is the minimum over the partitions that are assigned or have sent data,
 * leaving out those quiet for longer than `idleMs` of processing time. An assigned partition that
 * has sent nothing holds the watermark at minus infinity until it goes idle. When every partition
 * is idle, the maximum over them counts. The result never goes back.
 *
 * After a repartition the "partitions" are origins, the upstream tasks that wrote the records, and
 * each sends watermark markers (`progress`): "I have written everything up to event time t", or
 * "I am idle". An origin that has sent one is marker-driven from then on: its markers raise its
 * highest event time as a record would, and it is idle only while its latest marker said so.
 * Processing-time silence never makes it idle: records interleave in arrival order, not event-time
 * order, and an upstream that is backlogged or paused has more to send, however long it is quiet.
 * A record from it clears the idle flag (data means it is not idle).
 *
 * It also tells who holds the watermark back (`holdAt`): the active partition with the lowest
 * watermark, while another partition is ahead of the operator's, and since when the watermark has
 * not moved. A stuck window then names its cause instead of stalling silently.
 *
 * Processing time is passed in by the caller (from the injected clock), never read here.
 */

interface PartitionState {
  /** Highest event time seen, or -Infinity before the first record. */
  maxEventTime: number;
  /** Processing time of the last record, marker or assignment. */
  lastActivity: number;
  assigned: boolean;
  /** It has sent a progress marker: only its markers make it idle, never its silence. */
  markerDriven: boolean;
  /** Marker-driven: its latest marker said idle, and no record came since. */
  idle: boolean;
}

/**
 * A partition holding the operator's watermark back while another partition is ahead of it. Not
 * part of checkpoints: after a restart a hold is measured afresh, as idleness is.
 */
export interface WatermarkHold {
  /** The active partition with the lowest watermark. */
  partition: string;
  /** Processing time since which the watermark has stood at `watermark` with a partition ahead of it. */
  since: number;
  /** The held (operator) watermark, in event time. */
  watermark: number;
  /** The partition furthest ahead and its watermark. */
  aheadPartition: string;
  ahead: number;
  /** Processing time since the holding partition last sent a record or marker (or was assigned). */
  quietFor: number;
  /** Present when the holder is a marker-driven origin: silence never releases it, only its markers do. */
  markerDriven?: true;
}

/** Plain data for checkpoints: -Infinity is written as null. */
export interface WatermarkSnapshot {
  watermark: number | null;
  partitions: PartitionSnapshot[];
}

/** One partition (or origin) in a snapshot; the flags are written only when set (older snapshots lack them). */
export interface PartitionSnapshot {
  partition: string;
  maxEventTime: number | null;
  assigned: boolean;
  markerDriven?: boolean;
  idle?: boolean;
}

export class PartitionWatermarks {
  private readonly partitions = new Map<string, PartitionState>();
  private current = Number.NEGATIVE_INFINITY;
  private hold: WatermarkHold | undefined;
  /** Processing time of the `advance` in progress; read by `isIdle`. */
  private now = 0;
  // Made once, not per call: `advance` runs for most records.
  private readonly watermarkOf = (p: PartitionState): number => p.maxEventTime - this.lateness;
  private readonly isIdle = (p: PartitionState): boolean => this.idleAt(p, this.now);

  /**
   * @param lateness how far behind its highest event time a partition's watermark stays, in ms
   * @param idleMs processing time after which a quiet partition stops holding the watermark; undefined = never
   */
  constructor(
    readonly lateness: number,
    readonly idleMs: number | undefined,
  ) {}

  /** The watermark as last computed (monotonic). */
  get value(): number {
    return this.current;
  }

  /**
   * A record with event time `eventTime` arrived from `partition` at processing time `now`.
   * Returns true when the partition's highest event time rose and it may have been holding the
   * watermark back (the watermark may then advance).
   */
  observe(partition: string, eventTime: number, now: number): boolean {
    const p = this.partitions.get(partition);
    if (p) {
      p.lastActivity = now;
      p.idle = false;
      if (eventTime > p.maxEventTime) {
        // Only a partition at or below the current watermark can be the one holding it back.
        const mayHold = p.maxEventTime - this.lateness <= this.current;
        p.maxEventTime = eventTime;
        return mayHold;
      }
      return false;
    }
    this.partitions.set(partition, { maxEventTime: eventTime, lastActivity: now, assigned: false, markerDriven: false, idle: false });
    return true;
  }

  /**
   * A progress marker from `origin` at processing time `now`: it has written everything up to
   * event time `time` (undefined: nothing yet), or it is `idle`. The origin is marker-driven from
   * now on (see the class comment). Call `advance` afterwards.
   */
  progress(origin: string, time: number | undefined, idle: boolean, now: number): void {
    let p = this.partitions.get(origin);
    if (!p) {
      p = { maxEventTime: Number.NEGATIVE_INFINITY, lastActivity: now, assigned: false, markerDriven: true, idle };
      this.partitions.set(origin, p);
    }
    p.markerDriven = true;
    p.idle = idle;
    p.lastActivity = now;
    if (time !== undefined && time > p.maxEventTime) p.maxEventTime = time;
  }

  assign(partitions: readonly string[], now: number): void {
    for (const name of partitions) {
      const p = this.partitions.get(name);
      if (p) {
        p.assigned = true;
        p.lastActivity = now;
      } else {
        this.partitions.set(name, { maxEventTime: Number.NEGATIVE_INFINITY, lastActivity: now, assigned: true, markerDriven: false, idle: false });
      }
    }
  }

  /** A revoked partition no longer holds the watermark; its records now go to another consumer. */
  revoke(partitions: readonly string[]): void {
    for (const name of partitions) this.partitions.delete(name);
  }

  /** Recomputes the watermark at processing time `now` and returns it. Never lower than before. */
  advance(now: number): number {
    this.now = now;
    const candidate = combinePartitionWatermarks(this.partitions.values(), this.watermarkOf, this.isIdle);
    if (candidate > this.current) this.current = candidate;
    return this.current;
  }

  /**
   * Who holds the watermark back at `now` (call after `advance(now)`): the active partition with
   * the lowest watermark, while some partition's watermark is above the operator's. Undefined when
   * nothing is ahead (one partition, all level, every partition idle, or the end of input). The
   * hold's `since` stays while the watermark stands; it restarts when the watermark moves.
   */
  holdAt(now: number): WatermarkHold | undefined {
    let holder: string | undefined;
    let holderState: PartitionState | undefined;
    let lowest = Number.POSITIVE_INFINITY;
    let aheadPartition = '';
    let ahead = Number.NEGATIVE_INFINITY;
    for (const [name, p] of this.partitions) {
      const wm = p.maxEventTime - this.lateness;
      if (wm > ahead) {
        ahead = wm;
        aheadPartition = name;
      }
      if (wm < lowest && !this.idleAt(p, now)) {
        lowest = wm;
        holder = name;
        holderState = p;
      }
    }
    if (holder === undefined || holderState === undefined || !(ahead > this.current)) {
      this.hold = undefined;
      return undefined;
    }
    const since = this.hold !== undefined && this.hold.watermark === this.current ? this.hold.since : now;
    this.hold = { partition: holder, since, watermark: this.current, aheadPartition, ahead, quietFor: now - holderState.lastActivity };
    if (holderState.markerDriven) this.hold.markerDriven = true;
    return this.hold;
  }

  /** End of input: every window may close. */
  end(): number {
    this.current = Number.POSITIVE_INFINITY;
    return this.current;
  }

  /** Each partition's watermark and whether it counts as idle at `now`. */
  partitionWatermarks(now: number): { partition: string; watermark: number; idle: boolean }[] {
    const out: { partition: string; watermark: number; idle: boolean }[] = [];
    for (const [partition, p] of this.partitions) {
      out.push({
        partition,
        watermark: p.maxEventTime - this.lateness,
        idle: this.idleAt(p, now),
      });
    }
    return out;
  }

  snapshot(): WatermarkSnapshot {
    return {
      watermark: Number.isFinite(this.current) ? this.current : null,
      partitions: [...this.partitions].map(([partition, p]) => ({
        partition,
        maxEventTime: Number.isFinite(p.maxEventTime) ? p.maxEventTime : null,
        assigned: p.assigned,
        ...(p.markerDriven ? { markerDriven: true } : {}),
        ...(p.idle ? { idle: true } : {}),
      })),
    };
  }

  /**
   * Restored partitions start a fresh idle period at `now`: the restart is not their silence. A
   * marker-driven origin stays one, idle as its last marker said.
   */
  restore(state: WatermarkSnapshot, now: number): void {
    this.partitions.clear();
    this.hold = undefined;
    for (const p of state.partitions) {
      this.partitions.set(p.partition, {
        maxEventTime: p.maxEventTime ?? Number.NEGATIVE_INFINITY,
        lastActivity: now,
        assigned: p.assigned,
        markerDriven: p.markerDriven === true,
        idle: p.markerDriven === true && p.idle === true,
      });
    }
    this.current = state.watermark ?? Number.NEGATIVE_INFINITY;
  }

  /** Marker-driven: as its latest marker said. Otherwise: quiet for `idleMs` of processing time. */
  private idleAt(p: PartitionState, now: number): boolean {
    if (p.markerDriven) return p.idle;
    return this.idleMs !== undefined && now - p.lastActivity >= this.idleMs;
  }
}

/**
 * The operator watermark from its partitions' watermarks: the minimum over the active ones, or,
 * when all are idle, the maximum over them. No partition at all: minus infinity.
 */
export function combinePartitionWatermarks<P>(partitions: Iterable<P>, watermarkOf: (p: P) => number, isIdle: (p: P) => boolean): number {
  let minActive = Number.POSITIVE_INFINITY;
  let maxIdle = Number.NEGATIVE_INFINITY;
  let anyActive = false;
  for (const p of partitions) {
    const wm = watermarkOf(p);
    if (isIdle(p)) {
      if (wm > maxIdle) maxIdle = wm;
    } else {
      anyActive = true;
      if (wm < minActive) minActive = wm;
    }
  }
  return anyActive ? minActive : maxIdle;
}
