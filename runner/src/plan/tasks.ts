/**
 * Plan -> ScaledRun: a pipeline that runs as tasks (plan/stages.ts `runsAsTasks`). Each stage gets
 * a TaskGroup: its input source is instantiated once for the process (one consumer in the stage's
 * group), and each partition the group assigns here becomes a task with its own instances of the
 * stage's steps and sinks, its own checkpoints (changelog partition = input partition) and, under
 * exactly-once, its own transaction. Partition counts come from the brokers at start: the source
 * topic's for stage 0, a repartition topic's (created here when missing) for the stages after it.
 */
import type { Clock } from '../engine/clock.ts';
import type { Delivery, TaskIdentity } from '../engine/component.ts';
import { ConfigError, ConnectionError, SluiceError, errorMessage } from '../engine/errors.ts';
import type { GraphNode } from '../engine/graph.ts';
import type { Logger } from '../engine/logger.ts';
import type { Metrics } from '../engine/metrics.ts';
import { Runtime } from '../engine/runtime.ts';
import { ScaledRun } from '../engine/tasks/scaled-run.ts';
import { TaskGroup, type Task } from '../engine/tasks/task-group.ts';
import { TaskInput } from '../engine/tasks/task-input.ts';
import { ChangelogStateStore, changelogTopic, createStateTopics, stageCheckpointTopic } from '../io/kafka/changelog-store.ts';
import { createAdmin, type KafkaAdmin } from '../io/kafka/client.ts';
import { connectionFromConfig, type ConnectionConfig, type KafkaConnection } from '../io/kafka/connection.ts';
import { ensureRepartitionTopic, repartitionFormat, repartitionSink } from '../io/kafka/repartition.ts';
import { builtinComponents, type ComponentRegistry } from '../spec/registry.ts';
import { instantiate } from './instantiate.ts';
import { splitStages, type StagePlan, type StageSplit } from './stages.ts';
import { prepareState, stateSettings, storedIdentities } from './state.ts';
import type { Plan, PlanNode, PlanSource } from './types.ts';

/** The components a stage may use: the spec's, and the internal repartition sink and format. */
export const stageRegistry: ComponentRegistry = {
  ...builtinComponents,
  sinks: [...builtinComponents.sinks, repartitionSink],
  formats: [...builtinComponents.formats, repartitionFormat],
};

export interface ScaledRunOptions {
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** `--reset-state`: drop the application's state topics first (once, before any task starts). */
  resetState?: boolean;
}

/** The input of a stage: its topic and consumer group, from the source node's config. */
interface StageInput {
  node: PlanSource;
  topic: string;
  group: string;
  connection: ConnectionConfig;
}

function stageInput(stage: StagePlan): StageInput {
  const node = stage.plan.nodes.find((n): n is PlanSource => n.role === 'source' && n.name === stage.input);
  if (!node || node.kind !== 'kafka') throw new ConfigError('E_TASKS', `stage ${stage.id} has no kafka input \`${stage.input}\``, `sources.${stage.input}`);
  const config = node.config as ConnectionConfig & { topic?: unknown; group?: unknown };
  if (typeof config.topic !== 'string' || typeof config.group !== 'string') {
    throw new ConfigError('E_TASKS', 'a pipeline that runs as tasks reads one `topic` per source (not `topics` or `topic_pattern`): each partition of it is a task', `sources.${node.name}`);
  }
  return { node, topic: config.topic, group: config.group, connection: config };
}

/**
 * When, as a fraction of the checkpoint interval, a task's checkpoints come. A later stage's come
 * between the earlier one's, so a process's stages never all commit at the same moment.
 * - At-least-once: spread over the interval, task by task. Stage 1 then does not get every
 *   upstream task's repartition records (visible at their commits) at once: with the same moment
 *   for all, the worst latency of each second came at that moment.
 * - Exactly-once: the tasks of a stage together, as Kafka Streams commits a thread's tasks in one
 *   transaction. Their outputs share partitions, and a read_committed reader sees a partition only
 *   up to its oldest open transaction: with spread commits one is always open, begun up to an
 *   interval ago, and every output waited about a whole interval (p50 908-954 ms against 601-714
 *   at 5,000 events/s, `npm run bench:kafka`).
 */
export function checkpointPhaseOf(stageId: string, partition: number, partitions: number, delivery: Delivery = 'at-least-once'): number {
  const stage = Number(stageId);
  const shift = Number.isInteger(stage) && stage > 0 ? stage / (stage + 1) : 0;
  if (delivery === 'exactly-once') return shift;
  return partitions > 0 ? ((partition + shift) / partitions) % 1 : 0;
}

/** `<source>/<topic>/<partition>` -> the partition number. */
export function partitionNumberOf(partitionId: string): number {
  const n = Number(partitionId.slice(partitionId.lastIndexOf('/') + 1));
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a Kafka partition id: ${partitionId}`);
  return n;
}

/** Sets a node's config values (partition counts known only at start) in a copy of the plan. */
function withConfig(plan: Plan, name: string, role: PlanNode['role'], patch: Record<string, unknown>, format = false): Plan {
  return {
    ...plan,
    nodes: plan.nodes.map((n) => {
      if (n.name !== name || n.role !== role) return n;
      if (format && n.role === 'source') return { ...n, format: { ...n.format, config: { ...(n.format.config as object), ...patch } } };
      return { ...n, config: { ...(n.config as object), ...patch } };
    }),
  };
}

async function partitionCount(admin: KafkaAdmin, topic: string, where: string): Promise<number> {
  const topics = new Set(await admin.listTopics());
  if (!topics.has(topic)) {
    throw new ConfigError('E_TASKS', `topic ${topic} does not exist: create it first (each of its partitions becomes a task, so its partition count is how far the pipeline scales out)`, where);
  }
  return (await admin.topicOffsets(topic)).size;
}

/**
 * Fills in what only the brokers know: every stage's task count, the repartition sinks' partition
 * counts and the repartition formats' upstream task counts; creates missing repartition topics and
 * refuses ones with another partition count.
 */
async function resolveCounts(split: StageSplit, admin: KafkaAdmin): Promise<{ stages: StagePlan[]; tasks: Map<string, number> }> {
  const tasks = new Map<string, number>();
  const plans = new Map(split.stages.map((s) => [s.id, s.plan]));
  for (const stage of split.stages) {
    const feeding = split.repartitions.find((r) => r.to === stage.id);
    if (!feeding) {
      const input = stageInput(stage);
      tasks.set(stage.id, await partitionCount(admin, input.topic, `sources.${input.node.name}`));
      continue;
    }
    const upstream = tasks.get(feeding.from);
    if (upstream === undefined) throw new ConfigError('E_TASKS', `stage ${stage.id} comes before the stage ${feeding.from} that feeds it`, `steps.${feeding.step}`);
    const partitions = feeding.partitions ?? upstream;
    await ensureRepartitionTopic(admin, feeding.topic, partitions);
    tasks.set(stage.id, partitions);
    const sinkName = `${feeding.step}-repartition`;
    plans.set(feeding.from, withConfig(plans.get(feeding.from)!, sinkName, 'sink', { partitions }));
    plans.set(stage.id, withConfig(plans.get(stage.id)!, stage.input, 'source', { upstream: feeding.from, tasks: upstream }, true));
  }
  return { stages: split.stages.map((s) => ({ ...s, plan: plans.get(s.id)! })), tasks };
}

/** Builds the run: connects to the brokers for partition counts, creates nothing but topics. */
export async function prepareScaledRun(plan: Plan, options: ScaledRunOptions): Promise<ScaledRun> {
  const settings = stateSettings(plan);
  const split = splitStages(plan);
  const { connection, where } = adminConnection(plan, split);
  const admin = createAdmin(connection, options.logger);
  let resolved: { stages: StagePlan[]; tasks: Map<string, number> } | undefined;
  try {
    await admin.connect();
    if (options.resetState) await dropTaskState(plan, connection, options.logger);
    // Processes started together create the same topics at once: a topic made a moment ago by
    // another may not have its leader yet. Such errors pass; a refusal (ConfigError) does not.
    for (let attempt = 1; !resolved; attempt++) {
      try {
        const counted = await resolveCounts(split, admin);
        for (const stage of counted.stages) {
          const steps = Object.keys(storedIdentities(stage.plan)).map((s) => changelogTopic(settings.applicationId, s));
          await createStateTopics(admin, settings.applicationId, [stageCheckpointTopic(settings.applicationId, stage.id), ...steps], counted.tasks.get(stage.id)!);
        }
        resolved = counted;
      } catch (err) {
        if (err instanceof SluiceError || attempt >= 20) throw err;
        options.logger.debug({ attempt, error: errorMessage(err) }, 'preparing topics: retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } catch (err) {
    throw unreachable(err, connection, where, 'prepare the tasks');
  } finally {
    await admin.close().catch(() => {});
  }
  const groups = resolved.stages.map((stage) => stageGroup(stage, resolved.tasks.get(stage.id)!, options));
  options.logger.info(
    { stages: resolved.stages.map((s) => ({ stage: s.id, input: stageInput(s).topic, tasks: resolved.tasks.get(s.id) })), repartitions: split.repartitions.map((r) => r.topic) },
    'running as tasks: one per input partition, shared with the other processes of the group',
  );
  return new ScaledRun(plan.name, groups);
}

/** `--reset-state`: drops the state topics of every task of the application (windows start empty). */
async function dropTaskState(plan: Plan, connection: KafkaConnection, logger: Logger): Promise<void> {
  const applicationId = stateSettings(plan).applicationId;
  const all = new ChangelogStateStore({ connection, applicationId, steps: Object.keys(storedIdentities(plan)), groups: new Map() }, logger);
  try {
    await all.reset();
  } finally {
    await all.close();
  }
  logger.warn({ application: applicationId }, '--reset-state: stored state of every task dropped; windows start empty');
}

/**
 * `--reset-state` ahead of runs that prepare without it: `sluice run --threads` drops the state once,
 * before any thread starts, since a thread that dropped it after another had started its tasks
 * would delete the topics those tasks write their checkpoints to.
 */
export async function resetTaskState(plan: Plan, logger: Logger): Promise<void> {
  const { connection, where } = adminConnection(plan);
  try {
    await dropTaskState(plan, connection, logger);
  } catch (err) {
    throw unreachable(err, connection, where, 'drop the stored state');
  }
}

/** The connection of the run's own admin work (the first stage's input brokers), and where its errors point. */
function adminConnection(plan: Plan, split: StageSplit = splitStages(plan)): { connection: KafkaConnection; where: string } {
  const first = stageInput(split.stages[0]!);
  const where = `sources.${first.node.name}`;
  return { connection: connectionFromConfig(first.connection, `sluice-${stateSettings(plan).applicationId}-admin`, where), where };
}

/** A refusal (a SluiceError) as it is; kafkajs' own errors mean the brokers are out of reach. */
function unreachable(err: unknown, connection: KafkaConnection, where: string, doing: string): SluiceError {
  if (err instanceof SluiceError) return err;
  return new ConnectionError('E_KAFKA_CONNECT', `cannot reach Kafka at ${connection.brokers.join(',')} to ${doing}: ${errorMessage(err)}`, where, { cause: err });
}

function stageGroup(stage: StagePlan, partitions: number, options: ScaledRunOptions): TaskGroup {
  const input = stageInput(stage);
  const inputOnly: Plan = { ...stage.plan, nodes: [input.node] };
  const shared = instantiate(inputOnly, { mode: 'run', logger: options.logger, clock: options.clock, metrics: options.metrics, registry: stageRegistry }).nodes[0]!;
  if (shared.role !== 'source') throw new Error('stage input is not a source');
  const logger = options.logger.child({ stage: stage.id });

  const createTask = async (partitionId: string): Promise<Task> => {
    const partition = partitionNumberOf(partitionId);
    const task: TaskIdentity = { stage: stage.id, partition, partitions, id: `${stage.id}_${partition}` };
    const taskLogger = logger.child({ task: task.id });
    const state = await prepareState(stage.plan, {
      logger: taskLogger,
      clock: options.clock,
      ...(options.resetState ? { resetState: true } : {}),
      task: { id: task.id, stage: stage.id, partition, partitions, group: input.group, topic: input.topic },
    });
    const graph = instantiate(stage.plan, {
      mode: 'run',
      logger: taskLogger,
      clock: options.clock,
      metrics: options.metrics,
      registry: stageRegistry,
      task,
      ...(state.context ? { checkpoints: state.context } : {}),
    });
    const taskInput = new TaskInput(partitionId);
    // The stage's input is the partition this task owns; a global source (a table) is this task's own reader.
    const nodes: GraphNode[] = graph.nodes.map((n) => (n.role === 'source' && n.name === stage.input ? { ...n, source: taskInput } : n));
    const runtime = new Runtime(
      { ...graph, nodes },
      {
        logger: taskLogger,
        metrics: options.metrics,
        clock: options.clock,
        ...(state.coordinator ? { checkpoints: state.coordinator, checkpointPhase: checkpointPhaseOf(stage.id, partition, partitions, stage.plan.delivery) } : {}),
      },
    );
    return { partition: partitionId, input: taskInput, runtime };
  };
  return new TaskGroup(stage.id, { name: input.node.name, source: shared.source }, createTask, logger);
}
