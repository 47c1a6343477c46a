/**
 * OffsetTracker: which positions of a partition a source may commit.
 *
 * Sources hand batches over in offset order, but their Acks complete in any order (a filtered
 * batch completes at once, a batch held by a window completes an hour later). A position may only
 * be committed when it and every position tracked before it on the same partition completed;
 * otherwise a crash would skip the incomplete ones.
 *
 * Offsets are opaque strings (Kafka offsets, PostgreSQL LSNs, line numbers): the tracker never
 * does arithmetic on them, it only remembers the order in which they were tracked. `committable`
 * returns the highest completed offset itself. Kafka's commit API wants the NEXT offset to read,
 * so the Kafka source commits `committable + 1`; a PostgreSQL slot confirms the LSN as is.
 *
 * Pure bookkeeping, no I/O, no timers.
 */
interface Entry {
  readonly offset: string;
  done: boolean;
}

class PartitionOffsets {
  /** Tracked entries in emit order; entries before `head` were already folded into `committed`. */
  private entries: Entry[] = [];
  private head = 0;
  private readonly byOffset = new Map<string, Entry>();
  committed: string | undefined;

  track(offset: string): void {
    if (this.byOffset.has(offset)) throw new Error(`offset ${offset} is already tracked`);
    const entry: Entry = { offset, done: false };
    this.entries.push(entry);
    this.byOffset.set(offset, entry);
  }

  complete(offset: string): boolean {
    const entry = this.byOffset.get(offset);
    if (!entry) return false;
    entry.done = true;
    this.byOffset.delete(offset);
    this.advance();
    return true;
  }

  get pending(): number {
    return this.entries.length - this.head;
  }

  /** Folds the completed prefix into `committed`, compacting the array once the dead prefix is large. */
  private advance(): void {
    const { entries } = this;
    let head = this.head;
    while (head < entries.length && entries[head]!.done) {
      this.committed = entries[head]!.offset;
      head++;
    }
    if (head === entries.length) {
      this.entries = [];
      head = 0;
    } else if (head > 1024 && head * 2 > entries.length) {
      this.entries = entries.slice(head);
      head = 0;
    }
    this.head = head;
  }
}

export class OffsetTracker {
  private readonly partitions = new Map<string, PartitionOffsets>();

  /** Records that `offset` was handed to the pipeline. Call in emit order, once per offset. */
  track(partition: string, offset: string): void {
    let p = this.partitions.get(partition);
    if (!p) {
      p = new PartitionOffsets();
      this.partitions.set(partition, p);
    }
    p.track(offset);
  }

  /**
   * Marks `offset` as fully processed (its Ack completed). Any order. Returns false when the
   * partition or offset is not tracked, e.g. an Ack completing after its partition was revoked.
   */
  complete(partition: string, offset: string): boolean {
    return this.partitions.get(partition)?.complete(offset) ?? false;
  }

  /**
   * The highest offset such that it and every offset tracked before it completed; undefined when
   * none has yet. Kafka commits `committable + 1` (the next offset to read).
   */
  committable(partition: string): string | undefined {
    return this.partitions.get(partition)?.committed;
  }

  /** Offsets tracked but not yet completed on a partition. */
  pending(partition: string): number {
    return this.partitions.get(partition)?.pending ?? 0;
  }

  /** Forgets a partition (rebalance): later completions of its offsets are ignored. */
  revoke(partition: string): void {
    this.partitions.delete(partition);
  }

  /** Partitions with tracked offsets. */
  get trackedPartitions(): string[] {
    return [...this.partitions.keys()];
  }
}
