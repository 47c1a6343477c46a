/**
 * The `kafka` state store: Kafka Streams' layout, with sluice's checkpoint on top.
 * - One compacted changelog topic per stateful step, `<application id>-<step>-changelog`, with a
 *   partition per task of its stage (one when the pipeline does not run as tasks). Each state entry (a window pane) is a record keyed by its entry key; a
 *   checkpoint writes only entries that changed since the last one, and a tombstone for each entry
 *   that is gone (a closed pane). A `__header` record carries the step's header and the epoch.
 * - One compacted topic `<application id>-checkpoint` whose last record per task (key
 *   `checkpoint/<task>`, or `checkpoint`) holds the epoch, the source positions and the identities
 *   of the steps' definitions.
 * - Every checkpoint of a task is ONE Kafka transaction (transactional id `<application id>-<task>`,
 *   `<stage>_<partition>`, or `0_0`): the
 *   changelog records, the checkpoint record, the consumed Kafka offsets (`sendOffsets`) and, under
 *   exactly-once, every record the Kafka sinks wrote since the last checkpoint. Either all of it
 *   becomes visible to read_committed readers, or none does.
 *
 * Restore (`load`) first registers the transactional id, which fences an older instance and aborts
 * its open transaction, and only then reads the topics to their end: what it reads is exactly the
 * last committed checkpoint, unless a later instance fenced this one and committed meanwhile, which
 * load reports as fenced (a handover), not as lost state.
 */
import type { Checkpoint, CommitFigures, StateStore } from '../../engine/checkpoint/checkpoint.ts';
import { checkpointMetaFromJson, checkpointMetaToJson, StateError } from '../../engine/checkpoint/checkpoint.ts';
import { resourceKey, type JsonValue, type StepState } from '../../engine/component.ts';
import { errorMessage, FencedError } from '../../engine/errors.ts';
import type { Logger } from '../../engine/logger.ts';
import {
  createAdmin,
  createTransactionalProducer,
  readTopicsToEnd,
  type GroupOffsets,
  type KafkaAdmin,
  type Compression,
  type ProducedMessage,
  type TransactionalProducer,
} from './client.ts';
import { describeConnection, type KafkaConnection } from './connection.ts';

/** Under exactly-once, Kafka sinks write through this: their records join the next checkpoint's transaction. */
export interface CheckpointTransaction {
  /** The brokers the transaction is on; a sink on other brokers cannot join it. */
  readonly brokers: readonly string[];
  /** Into the open transaction; compressed with `compression` (default none, as for internal topics). */
  send(messages: readonly ProducedMessage[], compression?: Compression): Promise<void>;
}

export const KAFKA_TRANSACTION = resourceKey<CheckpointTransaction>('kafka-transaction');

export interface ChangelogStoreOptions {
  connection: KafkaConnection;
  applicationId: string;
  /** The running spec's stateful steps. */
  steps: readonly string[];
  /** Kafka sources by node name, with their consumer group: their positions become transactional offset commits. */
  groups: ReadonlyMap<string, string>;
  /** `--reset-state` was given: an empty store is expected even where groups have committed offsets. */
  startingOver?: boolean;
  transactionTimeoutMs?: number;
  /**
   * The task this store keeps the state of, when the pipeline runs as tasks: its changelog
   * partition is its input partition, its checkpoint record its own, its transactional id
   * `<application id>-<task id>`. Absent: the pipeline's one task, `0_0`, in partition 0.
   */
  task?: ChangelogTask;
  /** Reads topics to their end; readTopicsToEnd unless a test sequences the reads. */
  readTopics?: typeof readTopicsToEnd;
}

export interface ChangelogTask {
  /** `<stage>_<partition>`. */
  id: string;
  stage: string;
  partition: number;
  /** Partitions of the stage's input, and so of its changelogs. */
  partitions: number;
  /** The stage's consumer group and input topic: committed offsets there without a checkpoint mean lost state. */
  group: string;
  topic: string;
}

const HEADER_KEY = '__header';
const CHECKPOINT_KEY = 'checkpoint';

export function changelogTopic(applicationId: string, step: string): string {
  return `${applicationId}-${step}-changelog`;
}

export function checkpointTopic(applicationId: string): string {
  return `${applicationId}-checkpoint`;
}

/**
 * The checkpoint topic of a task's stage, `<application id>-<stage>-checkpoint`, with a partition
 * per task like the changelogs. Each task's records sit in its own partition, where no other
 * transactional producer writes: a read_committed restore reads up to the end of what its fenced
 * predecessor committed, never held short by another task's open transaction (in a shared
 * partition such a transaction holds back the last stable offset, and a restore then read an older
 * checkpoint than its changelog held).
 */
export function stageCheckpointTopic(applicationId: string, stage: string): string {
  return `${applicationId}-${stage}-checkpoint`;
}

/** The topic a store keeps its checkpoint records in. */
function checkpointTopicOf(applicationId: string, task: ChangelogTask | undefined): string {
  return task ? stageCheckpointTopic(applicationId, task.stage) : checkpointTopic(applicationId);
}

/** The transactional id of a task: `<application id>-<stage>_<partition>`; a pipeline not run as tasks is task `0_0`. */
export function transactionalIdOf(applicationId: string, task = '0_0'): string {
  return `${applicationId}-${task}`;
}

/** The key of a task's record in the checkpoint topic. */
function checkpointKeyOf(task: ChangelogTask | undefined): string {
  return task ? `${CHECKPOINT_KEY}/${task.id}` : CHECKPOINT_KEY;
}

/**
 * Topic configs for state: compacted so only the latest value per key stays; tombstones kept a day
 * so a slow restore never misses one. Only closed segments are compacted, and a restore reads the
 * open one whole: segments roll every 10 minutes or 64 MiB so that tail stays short (a chaos run
 * of 20 restarts over a million events saw restores grow from 0.3 to 3 s with hourly 1 GiB ones).
 */
const STATE_TOPIC_CONFIGS = {
  'cleanup.policy': 'compact',
  'min.compaction.lag.ms': '0',
  'delete.retention.ms': '86400000',
  'segment.ms': '600000',
  'segment.bytes': '67108864',
  'min.cleanable.dirty.ratio': '0.2',
};

/**
 * Creates state topics that are missing: the checkpoint topic with one partition, changelogs with
 * `partitions` (one per task of their stage). The tasks of a process call it once before any of
 * them starts: concurrent creations of one topic race in the broker.
 */
export async function createStateTopics(admin: KafkaAdmin, applicationId: string, topics: readonly string[], partitions: number): Promise<void> {
  // A topic deleted a moment ago (--reset-state) is refused until the broker has finished.
  for (let attempt = 0; ; attempt++) {
    try {
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length === 0) return;
      await admin.createTopics(missing.map((topic) => ({ topic, partitions: topic === checkpointTopic(applicationId) ? 1 : partitions, configs: STATE_TOPIC_CONFIGS })));
      return;
    } catch (err) {
      if (attempt >= 40) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** `<source>/<topic>/<partition>` (the Kafka source's partition id) and the position's next offset. */
export function offsetsFromPositions(positions: Record<string, string>, groups: ReadonlyMap<string, string>): GroupOffsets[] {
  const byGroup = new Map<string, GroupOffsets>();
  for (const [id, position] of Object.entries(positions)) {
    const slash = id.indexOf('/');
    const last = id.lastIndexOf('/');
    if (slash < 0 || last <= slash) continue;
    const group = groups.get(id.slice(0, slash));
    if (group === undefined) continue;
    const partition = Number(id.slice(last + 1));
    if (!Number.isInteger(partition)) continue;
    let entry = byGroup.get(group);
    if (!entry) byGroup.set(group, (entry = { groupId: group, offsets: [] }));
    entry.offsets.push({ topic: id.slice(slash + 1, last), partition, offset: (BigInt(position) + 1n).toString() });
  }
  return [...byGroup.values()];
}

export class ChangelogStateStore implements StateStore, CheckpointTransaction {
  readonly description: string;
  readonly brokers: readonly string[];
  private readonly producer: TransactionalProducer;
  private readonly admin: KafkaAdmin;
  readonly incremental = true;
  /** Per step, the size of each entry as last committed (its JSON text's length). */
  private readonly stored = new Map<string, Map<string, number>>();
  private bytes = 0;
  /** Changelogs of the running spec that were missing at open while a checkpoint topic existed. */
  private missingChangelogs: string[] = [];
  private readonly readTopics: typeof readTopicsToEnd;

  constructor(
    private readonly options: ChangelogStoreOptions,
    private readonly logger: Logger,
  ) {
    const app = options.applicationId;
    this.brokers = options.connection.brokers;
    this.description = `kafka ${describeConnection(options.connection)} topics ${[checkpointTopicOf(app, options.task), ...options.steps.map((s) => changelogTopic(app, s))].join(', ')}`;
    this.producer = createTransactionalProducer(
      options.connection,
      { transactionalId: transactionalIdOf(app, options.task?.id), transactionTimeoutMs: options.transactionTimeoutMs ?? 60_000 },
      logger,
    );
    this.admin = createAdmin(options.connection, logger);
    this.readTopics = options.readTopics ?? readTopicsToEnd;
  }

  async open(): Promise<void> {
    await this.admin.connect();
    const app = this.options.applicationId;
    const cpTopic = checkpointTopicOf(app, this.options.task);
    const topics = [cpTopic, ...this.options.steps.map((s) => changelogTopic(app, s))];
    const existing = new Set(await this.admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    // A checkpoint exists but a changelog it needs is gone: refuse, never restore a silent empty state.
    if (existing.has(cpTopic)) this.missingChangelogs = missing.filter((t) => t !== cpTopic);
    if (missing.length > 0) await this.createTopics(missing);
    // A task's checkpoint topic is partitioned like its changelogs; the single-task one has one partition.
    await this.refuseOtherPartitionCounts(this.options.task ? topics : topics.filter((t) => t !== cpTopic));
    // Fence first: an older instance's open transaction is aborted before anything is read.
    await this.producer.connect();
  }

  /** A changelog partition per task: one made for another partition count holds other tasks' keys. */
  private async refuseOtherPartitionCounts(changelogs: string[]): Promise<void> {
    const want = this.options.task?.partitions ?? 1;
    for (const topic of changelogs) {
      const have = (await this.admin.topicOffsets(topic)).size;
      if (have !== want) {
        throw new StateError(
          'E_STATE_PARTITIONS',
          `changelog ${topic} has ${have} partition(s), but this pipeline now runs ${want} task(s) of its stage (one per input partition): its state was kept for another partitioning and cannot be split or merged. Run with --reset-state to rebuild it from the committed offsets with empty windows`,
          topic,
        );
      }
    }
  }

  private async createTopics(topics: string[]): Promise<void> {
    await createStateTopics(this.admin, this.options.applicationId, topics, this.options.task?.partitions ?? 1);
  }

  /** This task's last committed checkpoint record, or undefined when there is none. */
  private async readCheckpointRecord(): Promise<unknown> {
    const where = checkpointTopicOf(this.options.applicationId, this.options.task);
    const ownKey = checkpointKeyOf(this.options.task);
    let last: unknown;
    await this.readTopics(
      this.options.connection,
      [where],
      (r) => {
        if (r.key?.toString() === ownKey) last = r.value === null ? undefined : parseJson(r.value.toString('utf8'), where);
      },
      this.logger,
      this.options.task ? new Map([[where, this.options.task.partition]]) : undefined,
    );
    return last;
  }

  async load(): Promise<Checkpoint | undefined> {
    const app = this.options.applicationId;
    const where = checkpointTopicOf(app, this.options.task);
    const last = await this.readCheckpointRecord();
    if (last === undefined) {
      await this.refuseIfOffsetsWithoutState();
      return undefined;
    }
    const cp = checkpointMetaFromJson(last, where);
    const needed = this.options.steps.filter((s) => cp.identities[s] !== undefined);
    const gone = needed.filter((s) => this.missingChangelogs.includes(changelogTopic(app, s)));
    if (gone.length > 0) throw missingChangelog(gone.map((s) => changelogTopic(app, s)), cp.epoch);

    const states = new Map<string, StepState>();
    const headers = new Map<string, { epoch: number; header: JsonValue }>();
    for (const s of needed) {
      states.set(s, { header: null, entries: new Map() });
    }
    const stepOfTopic = new Map(needed.map((s) => [changelogTopic(app, s), s]));
    if (needed.length > 0) {
      await this.readTopics(
        this.options.connection,
        [...stepOfTopic.keys()],
        (r) => {
          const step = stepOfTopic.get(r.topic)!;
          const key = r.key?.toString('utf8');
          if (key === undefined) return;
          const state = states.get(step)!;
          const text = r.value?.toString('utf8');
          if (key === HEADER_KEY) {
            if (text !== undefined) headers.set(step, parseHeaderRecord(text, r.topic));
            return;
          }
          if (text === undefined) state.entries.delete(key);
          else state.entries.set(key, parseJson(text, r.topic) as JsonValue);
          this.note(step, key, text?.length);
        },
        this.logger,
        this.options.task ? new Map([...stepOfTopic.keys()].map((t) => [t, this.options.task!.partition])) : undefined,
      );
    }
    const newer = Math.max(...needed.map((s) => headers.get(s)?.epoch ?? 0));
    if (newer > cp.epoch) await this.refuseTakenOver(cp.epoch, newer);
    for (const s of needed) {
      const h = headers.get(s);
      // Every checkpoint rewrites each header in the same transaction: an older epoch means the
      // topic was deleted and recreated (or written by someone else) since.
      if (!h || h.epoch !== cp.epoch) throw missingChangelog([changelogTopic(app, s)], cp.epoch, h?.epoch);
      states.get(s)!.header = h.header;
    }
    return { applicationId: cp.applicationId, epoch: cp.epoch, positions: cp.positions, identities: cp.identities, sinks: cp.sinks, takenAt: cp.takenAt, states };
  }

  /**
   * A changelog holds a later checkpoint than the checkpoint record read just before it. Both are
   * written in one transaction, and open() fenced every earlier instance (its InitProducerId waits
   * for a commit under way to complete): so another instance registered the transactional id
   * after this one, and committed between the two reads. It owns the task now and this one is
   * fenced, as its first commit would find: a handover, not lost state. Read the checkpoint again
   * to be sure; still older means the topics were tampered with, and load refuses as before.
   */
  private async refuseTakenOver(read: number, changelog: number): Promise<void> {
    const again = await this.readCheckpointRecord();
    if (again === undefined) return;
    const epoch = checkpointMetaFromJson(again, checkpointTopicOf(this.options.applicationId, this.options.task)).epoch;
    if (epoch < changelog) return;
    const id = transactionalIdOf(this.options.applicationId, this.options.task?.id);
    throw new FencedError(
      'E_KAFKA_FENCED',
      `another sluice instance took over transactional id \`${id}\` (same application id) while this one restored checkpoint ${read}: it committed checkpoint ${epoch} meanwhile; this one stops`,
      id,
    );
  }

  /** No checkpoint, yet a source group has committed offsets: the state was deleted, or never kept. */
  private async refuseIfOffsetsWithoutState(): Promise<void> {
    if (this.options.startingOver) return;
    const task = this.options.task;
    if (task) {
      // Only this task's partition: the stage's other partitions are other tasks' business.
      const committed = (await this.admin.committedOffsets(task.group, task.topic)).get(task.partition);
      if (committed !== undefined && BigInt(committed) >= 0n) {
        throw new StateError(
          'E_STATE_MISSING',
          `consumer group \`${task.group}\` has a committed offset on ${task.topic} partition ${task.partition} but ${checkpointTopicOf(this.options.applicationId, task)} holds no checkpoint of task ${task.id}: the state was deleted, or this pipeline ran without state (or not as tasks) before. Resuming would start its windows empty in the middle of their input. Run once with --reset-state to accept that, or reset the group's offsets to replay from the start`,
          checkpointTopicOf(this.options.applicationId, task),
        );
      }
      return;
    }
    for (const group of new Set(this.options.groups.values())) {
      if (await this.admin.hasCommittedOffsets(group)) {
        throw new StateError(
          'E_STATE_MISSING',
          `consumer group \`${group}\` has committed offsets but ${checkpointTopic(this.options.applicationId)} holds no checkpoint: the state was deleted, or this pipeline ran without state before. Resuming would start windows empty in the middle of their input. Run once with --reset-state to accept that (windows restart empty from the committed offsets), or reset the group's offsets to replay from the start`,
          checkpointTopic(this.options.applicationId),
        );
      }
    }
  }

  /** Records sent here join the open transaction; the next commit makes them visible. */
  send(messages: readonly ProducedMessage[], compression?: Compression): Promise<void> {
    return this.producer.send(messages, compression);
  }

  async commit(checkpoint: Checkpoint): Promise<CommitFigures> {
    const app = this.options.applicationId;
    const records: ProducedMessage[] = [];
    const partition = this.options.task?.partition ?? 0;
    const epochHeader = { 'sluice-epoch': String(checkpoint.epoch) };
    const updates: [string, string, number | undefined][] = [];
    let written = 0;
    let deleted = 0;
    for (const [step, state] of checkpoint.states) {
      const topic = changelogTopic(app, step);
      const fp = checkpoint.identities[step]?.fingerprint ?? '';
      const headers = { ...epochHeader, 'sluice-fp': fp };
      const stored = this.stored.get(step);
      // A step's changes since its last snapshot, or (a step that does not track them) its whole
      // state, whose missing keys are then gone.
      const gone = state.removed ?? [...(stored?.keys() ?? [])].filter((k) => !state.entries.has(k));
      for (const [key, value] of state.entries) {
        const text = JSON.stringify(value);
        records.push({ topic, key, value: text, headers, partition });
        updates.push([step, key, text.length]);
        written++;
      }
      for (const key of gone) {
        records.push({ topic, key, value: null, headers, partition });
        updates.push([step, key, undefined]);
        deleted++;
      }
      records.push({ topic, key: HEADER_KEY, value: JSON.stringify({ epoch: checkpoint.epoch, header: state.header }), headers, partition });
    }
    records.push({ topic: checkpointTopicOf(app, this.options.task), key: checkpointKeyOf(this.options.task), value: JSON.stringify(checkpointMetaToJson(checkpoint)), headers: epochHeader, partition });
    try {
      await this.producer.send(records);
      await this.producer.commit(offsetsFromPositions(checkpoint.positions, this.options.groups));
    } catch (err) {
      await this.producer.abort();
      throw err;
    }
    for (const [step, key, length] of updates) this.note(step, key, length);
    return { written, deleted, bytes: this.bytes };
  }

  /** Keeps the size of each stored entry: the state's total, and a whole snapshot's deletions. */
  private note(step: string, key: string, length: number | undefined): void {
    let sizes = this.stored.get(step);
    if (!sizes) this.stored.set(step, (sizes = new Map()));
    this.bytes -= sizes.get(key) ?? 0;
    if (length === undefined) sizes.delete(key);
    else {
      sizes.set(key, length);
      this.bytes += length;
    }
  }

  async reset(): Promise<void> {
    await this.admin.connect();
    const app = this.options.applicationId;
    const ours = (await this.admin.listTopics()).filter((t) => t === checkpointTopic(app) || (t.startsWith(`${app}-`) && (t.endsWith('-changelog') || t.endsWith('-checkpoint'))));
    await this.admin.deleteTopics(ours);
    this.stored.clear();
    this.bytes = 0;
    this.logger.info({ topics: ours }, 'state topics deleted');
  }

  async close(): Promise<void> {
    await this.producer.close().catch((err: unknown) => this.logger.warn({ error: errorMessage(err) }, 'kafka transactional producer close failed'));
    await this.admin.close().catch(() => {});
  }
}

function missingChangelog(topics: string[], epoch: number, found?: number): StateError {
  return new StateError(
    'E_STATE_MISSING',
    `changelog ${topics.join(', ')} ${found === undefined ? 'is missing or was deleted' : `is at checkpoint ${found}, not ${epoch}`}: the state it held cannot be restored. Run with --reset-state to rebuild from the committed offsets with empty windows (or reset the source group to replay from the start)`,
    topics[0],
  );
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StateError('E_STATE_CORRUPT', `${where}: a record is not JSON: ${errorMessage(err)}`, where);
  }
}

function parseHeaderRecord(text: string, where: string): { epoch: number; header: JsonValue } {
  const v = parseJson(text, where) as { epoch?: unknown; header?: unknown } | null;
  if (!v || typeof v.epoch !== 'number' || !('header' in v)) throw new StateError('E_STATE_CORRUPT', `${where}: the header record is not a sluice state header`, where);
  return { epoch: v.epoch, header: v.header as JsonValue };
}

