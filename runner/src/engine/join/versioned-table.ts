/**
 * The rows of a table as they were over event time: per key, the versions in the order of the
 * time from which each holds. A delete is a version too (a null row), so a key deleted and
 * inserted again answers "no row" between the two. This is the state a temporal join looks up,
 * as Flink's versioned tables and Kafka Streams' versioned key-value stores keep it.
 *
 * Pure and synchronous: no clock, no records. Keys are strings made by the caller.
 */
import type { Ack } from '../ack.ts';

export interface RowVersion {
  /** Event time (epoch ms) from which this version holds, until the next version's. */
  from: number;
  /** The row, or null: deleted from `from` on. */
  row: unknown;
  /** Without checkpoints: the reference its change record holds on its source batch, released when the version goes. */
  ack?: Ack;
}

export class VersionedTable {
  private readonly rows = new Map<string, RowVersion[]>();
  /** Keys whose versions changed since `takeChanges`, and keys gone since then. */
  private changed = new Set<string>();

  /**
   * `trackChanges` false: nothing will ask for changes (a run without checkpoints), so none are
   * kept; the set would otherwise hold every key ever deleted.
   */
  constructor(private readonly trackChanges = true) {}

  /** Keys held. */
  get size(): number {
    return this.rows.size;
  }

  /** Versions held, over all keys. */
  get versions(): number {
    let n = 0;
    for (const v of this.rows.values()) n += v.length;
    return n;
  }

  /**
   * Adds the version of `key` holding from `from`. A version with the same `from` is replaced: of
   * two changes at the same instant, the later one read is the row's state.
   */
  put(key: string, version: RowVersion): RowVersion | undefined {
    let list = this.rows.get(key);
    if (!list) this.rows.set(key, (list = []));
    if (this.trackChanges) this.changed.add(key);
    // Versions mostly arrive in time order: search from the end.
    let i = list.length;
    while (i > 0 && list[i - 1]!.from > version.from) i--;
    if (i > 0 && list[i - 1]!.from === version.from) {
      const replaced = list[i - 1]!;
      list[i - 1] = version;
      return replaced;
    }
    list.splice(i, 0, version);
    return undefined;
  }

  /** The row of `key` at event time `time`: undefined when there is none (never inserted by then, or deleted). */
  at(key: string, time: number): unknown {
    const list = this.rows.get(key);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const v = list[i]!;
      if (v.from <= time) return v.row ?? undefined;
    }
    return undefined;
  }

  /** The row of `key` now: its latest version, undefined when deleted or never seen. */
  latest(key: string): unknown {
    const list = this.rows.get(key);
    return list === undefined ? undefined : (list[list.length - 1]!.row ?? undefined);
  }

  /**
   * Forgets what no lookup at `horizon` or later can return: every version before the last one
   * holding at `horizon`, and that one too when it is a delete (no row either way). A key left
   * with nothing is removed. `keys` limits the sweep; default every key.
   */
  prune(horizon: number, keys: Iterable<string> = this.rows.keys(), onDrop?: (v: RowVersion) => void): number {
    let dropped = 0;
    for (const key of [...keys]) {
      const list = this.rows.get(key);
      if (!list) continue;
      let last = -1;
      for (let i = 0; i < list.length && list[i]!.from <= horizon; i++) last = i;
      if (last < 0) continue;
      const keepFrom = list[last]!.row === null ? last + 1 : last;
      if (keepFrom === 0) continue;
      const gone = list.splice(0, keepFrom);
      if (onDrop) for (const v of gone) onDrop(v);
      dropped += keepFrom;
      if (list.length === 0) this.rows.delete(key);
      if (this.trackChanges) this.changed.add(key);
    }
    return dropped;
  }

  /** A key's versions (for snapshots); undefined when none. */
  versionsOf(key: string): readonly RowVersion[] | undefined {
    return this.rows.get(key);
  }

  /** Replaces a key's versions (restore), sorted by `from`. */
  load(key: string, versions: RowVersion[]): void {
    if (versions.length === 0) return;
    this.rows.set(
      key,
      [...versions].sort((a, b) => a.from - b.from),
    );
  }

  keys(): IterableIterator<string> {
    return this.rows.keys();
  }

  /** Every version, key by key (the end of input releases what they hold). */
  *allVersions(): IterableIterator<RowVersion> {
    for (const list of this.rows.values()) yield* list;
  }

  /** The keys changed since the previous call (removed ones included), and forgets them. */
  takeChanges(): string[] {
    const keys = [...this.changed];
    this.changed = new Set();
    return keys;
  }
}
