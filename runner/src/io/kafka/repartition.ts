/**
 * The repartition topic between two stages (plan/stages.ts): a `repartition` sink that writes
 * records keyed by their group key, and a `repartition` format that reads them back, with the
 * watermark markers that let the reading window know how far each upstream task has got.
 * Internal: a spec never names them; the stage split inserts them.
 */
import type { ConnectionConfig } from './connection.ts';

/** The `repartition` sink's config, made by the stage split (and `partitions` at start). */
export interface RepartitionSinkConfig extends ConnectionConfig {
  topic: string;
  /** JSONata expressions whose values, together, are the partition key. */
  key: string[];
  /** The reading window's `time` expression (absent: the record's own time): markers carry the highest seen. */
  time?: string;
  /** The reading window's `idle`: a task that wrote nothing this long marks itself idle. */
  idle?: string;
  /** The topic's partition count; every marker goes to each. Filled in at start. */
  partitions?: number;
}

/** The `repartition` format's config. */
export interface RepartitionFormatConfig {
  /** The writing stage's id: origins are `<upstream>_<task>`. */
  upstream: string;
  /** How many tasks the writing stage has (its input's partition count). Filled in at start. */
  tasks?: number;
}
