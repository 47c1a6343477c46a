/**
 * Kafka's linger, for a writer whose callers each hand over a small batch: items wait up to
 * `lingerMs` (or until `maxItems` are waiting) so that concurrent writes share one produce
 * request. Each `add` resolves when the flush that carried its items succeeded, and rejects
 * when that flush failed, so nothing is acknowledged upstream before it is written.
 *
 * Flushes run one at a time, in the order items were added: per-partition order is kept. Items
 * whose linger ends while a flush is still on its way wait for it and go together in the next,
 * as in Kafka's own producer: under load requests grow instead of queueing up behind each other
 * (waiting on the flush ahead, none is sent later for it). Cutting a request at every linger
 * instead kept `npm run bench:kafka` at 0.53 of the pass-through (at-least-once; now 0.63).
 */
export class LingerQueue<T> {
  private pending: T[] = [];
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The flush in progress (or the last one), which the next flush waits for. */
  private chain: Promise<void> = Promise.resolve();
  /** Flushes and exclusive tasks in the chain that have not finished. */
  private busy = 0;
  /** The linger of what is waiting ended while the chain was busy: it goes once the chain is free. */
  private lingered = false;

  constructor(
    private readonly flushItems: (items: T[]) => Promise<void>,
    private readonly lingerMs: number,
    private readonly maxItems: number,
  ) {}

  add(items: readonly T[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    for (const item of items) this.pending.push(item);
    if (this.pending.length >= this.maxItems) this.flushNow();
    else if (!this.timer && !this.lingered) this.timer = setTimeout(() => this.lingerEnded(), this.lingerMs);
    return done;
  }

  private lingerEnded(): void {
    this.timer = undefined;
    if (this.busy > 0) this.lingered = true;
    else this.flushNow();
  }

  /** Appends a job to the chain; when the chain runs empty, what lingered long enough is flushed. */
  private enqueue<R>(job: () => Promise<R>): Promise<R> {
    this.busy++;
    const run = this.chain.catch(() => {}).then(job);
    const finished = (): void => {
      if (--this.busy === 0 && this.lingered) this.flushNow();
    };
    run.then(finished, finished);
    return run;
  }

  /**
   * Runs `task` in turn with the flushes: after every flush of what was added before (what is
   * waiting is flushed now), and before any flush of what is added while it runs. A writer that
   * sends outside the queue through the same producer uses it, so that producer never has two
   * requests of its own for one partition built at once (an idempotent producer numbers them).
   */
  exclusive<R>(task: () => Promise<R>): Promise<R> {
    this.flushNow();
    const run = this.enqueue(task);
    this.chain = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Flushes what is waiting and resolves when every flush so far has finished. */
  async drain(): Promise<void> {
    this.flushNow();
    await this.chain.catch(() => {});
  }

  get waiting(): number {
    return this.pending.length;
  }

  private flushNow(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.lingered = false;
    if (this.pending.length === 0) return;
    const items = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    this.chain = this.enqueue(() => this.flushItems(items)).then(
      () => {
        for (const w of waiters) w.resolve();
      },
      (err: unknown) => {
        for (const w of waiters) w.reject(err);
        throw err;
      },
    );
    // The rejection is delivered to the waiters; the chain itself must not be reported as unhandled.
    this.chain.catch(() => {});
  }
}
