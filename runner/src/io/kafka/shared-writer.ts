/**
 * One producer, and one linger queue in front of it, for all the instances of a sink in a process.
 * Running as tasks, each task has its own instance of every sink; a fetch hands all its partitions
 * over at once, so with a producer per task the six tasks of a stage each sent a produce request of
 * their own for the same few milliseconds' records. Sharing the queue puts them in one request:
 * fewer requests for the main thread to encode, write and settle, and for the broker to handle.
 *
 * What a shared flush carries is acknowledged to each writer when the flush succeeded, and a flush
 * that failed fails every writer that had messages in it (each then handles the failure as before:
 * a too-large refusal is sent again one message at a time, by each writer for its own messages,
 * while no flush runs: `exclusive`).
 * The queue keeps the order of `add` calls, so each task's order per partition is kept.
 *
 * Only non-transactional writes share: a transaction belongs to one task.
 */
import type { KafkaProducer, ProducedMessage } from './client.ts';
import { LingerQueue } from './linger-queue.ts';

export interface SharedWriter {
  /** The shared producer, for sends outside the queue (one message at a time after a refusal). */
  readonly producer: KafkaProducer;
  /** Resolves once the flush that carried these messages succeeded; rejects when it failed. */
  add(messages: readonly ProducedMessage[]): Promise<void>;
  /** Runs `task`, which sends through `producer` itself, while no flush runs (LingerQueue.exclusive). */
  exclusive<R>(task: () => Promise<R>): Promise<R>;
  /** Waits for every flush so far; the last holder to release closes the producer. Call once. */
  release(): Promise<void>;
}

interface Entry {
  refs: number;
  producer: KafkaProducer;
  queue: LingerQueue<ProducedMessage>;
  connected: Promise<void>;
}

/** The writers of one run, by key: each key is one sink with one configuration. */
export class SharedWriters {
  private readonly entries = new Map<string, Entry>();

  /**
   * The writer for `key`, made (with `make`, then connected) by its first holder. A failed connect
   * fails every holder waiting for it, and the next `acquire` tries afresh.
   */
  async acquire(key: string, make: () => KafkaProducer, lingerMs: number, maxItems: number): Promise<SharedWriter> {
    let entry = this.entries.get(key);
    if (!entry) {
      const producer = make();
      const created: Entry = {
        refs: 0,
        producer,
        queue: new LingerQueue((items) => producer.send(items), lingerMs, maxItems),
        connected: producer.connect(),
      };
      entry = created;
      this.entries.set(key, created);
      created.connected.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    entry.refs++;
    try {
      await entry.connected;
    } catch (err) {
      entry.refs--;
      throw err;
    }
    return this.holderOf(key, entry);
  }

  /** How many writers are open (for tests). */
  get size(): number {
    return this.entries.size;
  }

  private holderOf(key: string, entry: Entry): SharedWriter {
    let released = false;
    return {
      producer: entry.producer,
      add: (messages) => entry.queue.add(messages),
      exclusive: (task) => entry.queue.exclusive(task),
      release: async () => {
        if (released) return;
        released = true;
        await entry.queue.drain();
        if (--entry.refs > 0) return;
        if (this.entries.get(key) === entry) this.entries.delete(key);
        await entry.producer.close();
      },
    };
  }
}

const byScope = new WeakMap<object, WeakMap<object, SharedWriters>>();

/**
 * The shared writers of a run: `run` is an object that all the tasks of one run hold, and nothing
 * else does (the run's metrics registry), so two runs in one process never share a producer; nor
 * do writers whose producers come from different factories (`maker`).
 */
export function sharedWritersOf(run: object, maker: object): SharedWriters {
  let byMaker = byScope.get(run);
  if (!byMaker) byScope.set(run, (byMaker = new WeakMap()));
  let writers = byMaker.get(maker);
  if (!writers) byMaker.set(maker, (writers = new SharedWriters()));
  return writers;
}
