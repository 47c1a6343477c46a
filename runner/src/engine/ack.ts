/**
 * Ack: a reference count over "work derived from one source batch that is still in flight".
 *
 * A source creates one Ack per batch it emits, with one reference per record. Every consumer of a
 * record either releases its reference (dropped by a filter, written by a sink) or passes it on
 * (a step that maps 1:1 keeps the same Ack on the new record; fan-out retains one more per extra
 * branch). A window that absorbs a record keeps the reference until the window has emitted and
 * its outputs are acknowledged: see `Ack.derived`.
 *
 * When the count reaches zero after `seal()`, `onComplete` runs once. The source then knows the
 * batch's positions may be committed: a crash before that re-delivers, never loses.
 */
export class Ack {
  private pending = 0;
  private sealed = false;
  private completed = false;

  constructor(private readonly onComplete: () => void) {}

  /** An Ack with nothing to wait for beyond its own references (e.g. tests, generated records). */
  static none(): Ack {
    return new Ack(() => {});
  }

  /**
   * An Ack whose completion releases references held on its parents. A window keeps such an Ack
   * per window instance: `parents` counts how many references it took on each source Ack.
   */
  static derived(parents: Map<Ack, number>): Ack {
    return new Ack(() => {
      for (const [parent, n] of parents) parent.release(n);
    });
  }

  retain(n = 1): void {
    if (this.completed) throw new Error('Ack.retain after completion: a record was used after it was acknowledged');
    this.pending += n;
  }

  release(n = 1): void {
    this.pending -= n;
    if (this.pending < 0) throw new Error('Ack released more often than retained');
    this.maybeComplete();
  }

  /** No more references will be added by the creator; completion may fire once the count is zero. */
  seal(): void {
    this.sealed = true;
    this.maybeComplete();
  }

  get isComplete(): boolean {
    return this.completed;
  }

  get outstanding(): number {
    return this.pending;
  }

  private maybeComplete(): void {
    if (this.sealed && this.pending === 0 && !this.completed) {
      this.completed = true;
      this.onComplete();
    }
  }
}
