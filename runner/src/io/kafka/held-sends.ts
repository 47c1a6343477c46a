/**
 * Writes into a Kafka transaction, held before they go to the broker. Nothing a transaction holds
 * is visible before its commit, so its writers need not wait for the broker: what they send is held
 * (up to `lingerMs`, or until `maxMessages` wait) and goes out in one request with what the others
 * sent meanwhile, the rest just before the commit (`release`). Kafka Streams' producers linger
 * 100 ms for the same reason. A repartition or a sink writes a few records per input batch, and
 * a produce request each cost more of the main thread than the pipeline's own work on them.
 *
 * - `add` resolves at once while the hold is not full. A full hold is released and its writer
 *   waits for that, so what is held stays bounded.
 * - Messages are held per codec, each codec's in the order they were added: a writer sends with
 *   one codec, and order matters only within a writer's partitions.
 * - Releases run one at a time. One that fails makes every later `add` and `release` fail with its
 *   error until `discard` (the transaction is aborted then): what it held can no longer commit.
 */
export class HeldSends<T, Codec> {
  private held = new Map<Codec, T[]>();
  private count = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The release in progress (or the last one), which the next release waits for. */
  private chain: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  /** Counts discards: a release started before one must not fail the transaction after it. */
  private generation = 0;

  constructor(
    private readonly sendPart: (messages: T[], codec: Codec) => Promise<void>,
    private readonly lingerMs: number,
    private readonly maxMessages: number,
  ) {}

  add(messages: readonly T[], codec: Codec): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (messages.length === 0) return Promise.resolve();
    let same = this.held.get(codec);
    if (!same) this.held.set(codec, (same = []));
    for (const m of messages) same.push(m);
    this.count += messages.length;
    if (this.count >= this.maxMessages) return this.release();
    this.timer ??= setTimeout(() => void this.release().catch(() => {}), this.lingerMs);
    return Promise.resolve();
  }

  /** Sends everything held; resolves once it and every earlier release went out, rejects when one failed. */
  release(): Promise<void> {
    this.stopTimer();
    const parts = this.held;
    const generation = this.generation;
    this.held = new Map();
    this.count = 0;
    const next = this.chain.then(async () => {
      if (this.failure) throw this.failure.error;
      try {
        for (const [codec, messages] of parts) await this.sendPart(messages, codec);
      } catch (err) {
        if (generation === this.generation) this.failure ??= { error: err };
        throw err;
      }
    });
    this.chain = next.catch(() => {});
    return next;
  }

  /** Drops what is held and forgets a failure: the transaction they belonged to is being aborted. */
  discard(): void {
    this.stopTimer();
    this.held = new Map();
    this.count = 0;
    this.failure = undefined;
    this.generation++;
  }

  /** Messages held now. */
  get waiting(): number {
    return this.count;
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
