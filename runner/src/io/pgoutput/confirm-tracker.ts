/**
 * Which LSN a replication slot may confirm.
 *
 * The source hands changes to the pipeline in units (one per emitted batch), in WAL order. A unit's
 * `through` is the end LSN of the last transaction whose every change is in this unit or an earlier
 * one (undefined when the unit ends mid-transaction and no transaction ended in it). Units complete in
 * any order; the slot may confirm `through` of the last unit of the longest completed prefix: confirming
 * more would let a crash skip changes that were not yet acknowledged by the sinks.
 *
 * Pure bookkeeping: no I/O, no timers.
 */
import type { Lsn } from './lsn.ts';

interface Unit {
  readonly through: Lsn | undefined;
  done: boolean;
}

export class ConfirmTracker {
  private units = new Map<number, Unit>();
  private nextId = 0;
  /** Id of the oldest unit not yet folded into `confirmed`. */
  private head = 0;
  private confirmedLsn: Lsn;

  constructor(start: Lsn) {
    this.confirmedLsn = start;
  }

  /** Registers the next unit in WAL order; returns the id to `complete` it with. */
  open(through: Lsn | undefined): number {
    const id = this.nextId++;
    this.units.set(id, { through, done: false });
    return id;
  }

  /** Marks a unit acknowledged; returns true when the confirmable LSN moved. */
  complete(id: number): boolean {
    const unit = this.units.get(id);
    if (!unit) return false;
    unit.done = true;
    const before = this.confirmedLsn;
    for (let u = this.units.get(this.head); u?.done; u = this.units.get(this.head)) {
      if (u.through !== undefined && u.through > this.confirmedLsn) this.confirmedLsn = u.through;
      this.units.delete(this.head);
      this.head++;
    }
    return this.confirmedLsn !== before;
  }

  /**
   * With nothing in flight, the server's keepalive position may be confirmed: every change before
   * it was sent, and all that was sent is acknowledged. This keeps a slot on quiet tables moving.
   * The caller must also know it holds no half-received transaction.
   */
  advanceIdle(lsn: Lsn): boolean {
    if (this.units.size > 0 || lsn <= this.confirmedLsn) return false;
    this.confirmedLsn = lsn;
    return true;
  }

  get confirmed(): Lsn {
    return this.confirmedLsn;
  }

  get inFlight(): number {
    return this.units.size;
  }
}
