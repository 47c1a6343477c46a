/**
 * Stages: where a scaled-out pipeline is cut by a repartition. A pipeline whose sources are all
 * Kafka and whose state lives in Kafka runs as tasks, one per input partition (engine/tasks). A
 * window whose `group_by` is not what its input is partitioned by cannot see all of a group in one
 * task: it reads through an internal repartition topic keyed by its group key instead. The cut
 * makes two stages: the one before writes the window's input into the topic (a `repartition`
 * sink, with watermark markers), the one after reads it (a `kafka` source with the `repartition`
 * format) and runs the window and everything downstream of it.
 *
 * Pure: nothing connects. Partition counts that only the brokers know are filled in at start.
 */
import type { Plan } from './types.ts';

/** One stage: a Plan of its own whose single source is the stage's input. */
export interface StagePlan {
  /** `0` reads the spec's sources; `1`, `2` ... each read one repartition topic, in plan order. */
  id: string;
  /**
   * Its input source first (the spec's source, or the repartition topic's), then its steps and its
   * sinks. A sink that reads nodes of several stages is in each, reading that stage's nodes.
   */
  plan: Plan;
  /** The node name of its input source. */
  input: string;
}

/** One inserted repartition, as `sluice graph` shows it and the runner creates its topic. */
export interface Repartition {
  /** The window step that reads through it. */
  step: string;
  /** `<application id>-<step>-repartition`. */
  topic: string;
  /** The consumer group of the stage that reads it: `<application id>-<step>-repartition`. */
  group: string;
  /** JSONata expressions of the key records are partitioned by: `partition_by`, else the group keys. */
  by: string[];
  /** `partitions:` of the step when given; else the topic gets as many as the stage before has tasks. */
  partitions?: number;
  /** The stage that writes it and the stage that reads it. */
  from: string;
  to: string;
}

export interface StageSplit {
  stages: StagePlan[];
  repartitions: Repartition[];
}
