/**
 * Stages: where a scaled-out pipeline is cut by a repartition. A pipeline that reads one Kafka
 * source and keeps its state in Kafka runs as tasks, one per input partition (engine/tasks). A
 * window whose `group_by` is not what its input is partitioned by cannot see all of a group in one
 * task: it reads through an internal repartition topic keyed by its group key instead. The cut
 * makes two stages: the one before writes the window's input into the topic (a `repartition`
 * sink, with watermark markers), the one after reads it (a `kafka` source with the `repartition`
 * format) and runs the window and everything downstream of it. A window without `group_by` has one
 * group per window: it reads through a repartition topic of one partition, so one task sees all.
 *
 * Pure: nothing connects. Partition counts that only the brokers know are filled in at start.
 */
import jsonata from 'jsonata';
import { kafkaSource, type KafkaSourceConfig } from '../components/sources/kafka.ts';
import type { SetConfig } from '../components/steps/set.ts';
import { parseWindowStepConfig, type WindowStepConfig } from '../components/steps/window.ts';
import { ConfigError } from '../engine/errors.ts';
import { ERRORS_PORT, MAIN_PORT, type PortRef } from '../engine/graph.ts';
import { plainPathName } from '../engine/window/group-key.ts';
import { describeConnectionConfig, type ConnectionConfig } from '../io/kafka/connection.ts';
import type { RepartitionFormatConfig, RepartitionSinkConfig } from '../io/kafka/repartition.ts';
import { builtinComponents, findDef } from '../spec/registry.ts';
import { summarize } from './compile.ts';
import { mentionsMeta } from './meta-read.ts';
import { applicationIdOf, isGlobalSource, stateSettings } from './state.ts';
import type { Plan, PlanNode, PlanSink, PlanSource, PlanStep } from './types.ts';

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
  /**
   * JSONata expressions of the key records are partitioned by: `partition_by`, else the group keys.
   * Empty for a window without group keys (its one partition holds every record; the sink is
   * given the constant key `null`, as it needs an expression).
   */
  by: string[];
  /** `partitions:` of the step when given (1 for a window without group keys); else the topic gets as many as the stage before has tasks. */
  partitions?: number;
  /** The stage that writes it and the stage that reads it. */
  from: string;
  to: string;
}

export interface StageSplit {
  stages: StagePlan[];
  repartitions: Repartition[];
}

/* ------------------------------------------------------------------ the split */

/** Node names of the internal nodes a repartition of `step` inserts (the sink before, the source after). */
export function repartitionNodeName(step: string): string {
  return `${step}-repartition`;
}

/**
 * Whether the plan runs as tasks, one per partition of its input: it reads one source, a `kafka`
 * one, and keeps its state in Kafka (`checkpoint.store: kafka`, the default for such a pipeline).
 * Two sources have no partitioning in common to cut tasks by, so a pipeline with more than one
 * runs whole, as does one reading `topics` or `topic_pattern`, one writing a `file` sink (every
 * task would write the file), and one whose state settings are refused (the run reports why).
 */
export function runsAsTasks(plan: Plan): boolean {
  // Global sources (a table every task reads whole) do not partition anything: each task has its own reader.
  const sources = plan.nodes.filter((n) => n.role === 'source' && !isGlobalSource(n));
  if (sources.length !== 1 || sources[0]!.kind !== 'kafka') return false;
  // Tasks are the partitions of one topic; `topics` and `topic_pattern` read several, whose counts may differ.
  if (typeof (sources[0]!.config as { topic?: unknown }).topic !== 'string') return false;
  // Each task would open the same file and overwrite what the others wrote.
  if (plan.nodes.some((n) => n.role === 'sink' && n.kind === 'file')) return false;
  try {
    return stateSettings(plan).store === 'kafka';
  } catch (err) {
    if (err instanceof ConfigError) return false;
    throw err;
  }
}

/**
 * How records are spread over the tasks of a stage, as far as the plan can tell: the field paths
 * (each as its segments) that records with equal values of are in one task; undefined when unknown.
 */
type Partitioning = readonly (readonly string[])[] | undefined;

/** A window's group key: its output field name and the expression's source. */
interface GroupKey {
  name: string;
  source: string;
}

/** The segments of a plain JSONata field path (`user.id`, `` a.`b c` ``); undefined for any other expression. */
export function plainPathSegments(source: string): string[] | undefined {
  type Ast = { type?: unknown; value?: unknown; steps?: Ast[]; [k: string]: unknown };
  let ast: Ast;
  try {
    ast = jsonata(source).ast() as unknown as Ast;
  } catch {
    return undefined;
  }
  const onlyKeys = (node: Ast, allowed: string[]) => Object.keys(node).every((k) => node[k] === undefined || allowed.includes(k));
  const name = (node: Ast) => (node.type === 'name' && typeof node.value === 'string' && onlyKeys(node, ['type', 'value', 'position']) ? node.value : undefined);
  const single = name(ast);
  if (single !== undefined) return [single];
  if (ast.type !== 'path' || !Array.isArray(ast.steps) || !onlyKeys(ast, ['type', 'steps'])) return undefined;
  const segments = ast.steps.map(name);
  return segments.every((s): s is string => s !== undefined) ? segments : undefined;
}

const pathKey = (segments: readonly string[]) => JSON.stringify(segments);

function samePartitioning(a: Partitioning, b: Partitioning): boolean {
  if (a === undefined || b === undefined) return false;
  const keys = (p: readonly (readonly string[])[]) => [...new Set(p.map(pathKey))].sort().join('\n');
  return keys(a) === keys(b);
}

function groupKeysOf(config: WindowStepConfig): GroupKey[] {
  const g = config.group_by;
  if (g === undefined) return [];
  if (Array.isArray(g)) return g.map((source) => ({ name: plainPathName(source) ?? source, source }));
  return Object.entries(g).map(([name, source]) => ({ name, source }));
}

/** The source's `partitioned_by`, when it declares one. */
function declaredPartitioning(source: PlanSource): Partitioning {
  const declared = (source.config as { partitioned_by?: unknown } | null | undefined)?.partitioned_by;
  if (!Array.isArray(declared) || declared.length === 0) return undefined;
  const paths = declared.map((p) => (typeof p === 'string' ? plainPathSegments(p) : undefined));
  return paths.every((p): p is string[] => p !== undefined) ? paths : undefined;
}

/** Where a repartitioned window reads from, before the stage ids are known. */
interface Cut {
  step: PlanStep;
  config: WindowStepConfig;
  /** The partition key's expressions: `partition_by`, else the group keys; empty for a window without group keys. */
  by: string[];
  partitions?: number;
}

/**
 * Whether a window reads through a repartition topic, and keyed by what. Not when its stage has a
 * single task (everything meets there anyway), nor when its input is partitioned by fields that are
 * all among its plain group-key paths (records of one group are then in one task already). A window
 * without group keys has one group per window: it repartitions into a single partition, keyed by
 * nothing, so that one task sees every record.
 */
function cutOf(step: PlanStep, input: Partitioning, singleTask: boolean): Cut | undefined {
  const where = `steps.${step.name}`;
  const config = parseWindowStepConfig(step.config, where);
  if (singleTask) return undefined;
  const groups = groupKeysOf(config);
  if (groups.length === 0) return { step, config, by: [], partitions: 1 };
  const groupPaths = new Set(
    groups.flatMap((g) => {
      const segments = plainPathSegments(g.source);
      return segments ? [pathKey(segments)] : [];
    }),
  );
  if (input !== undefined && input.length > 0 && input.every((p) => groupPaths.has(pathKey(p)))) return undefined;
  return {
    step,
    config,
    by: config.partition_by ?? groups.map((g) => g.source),
    ...(config.partitions !== undefined ? { partitions: config.partitions } : {}),
  };
}

/** The partitioning of a step's main output, given its input's. */
function outputPartitioning(step: PlanStep, input: Partitioning): Partitioning {
  if (input === undefined) return undefined;
  switch (step.kind) {
    case 'filter':
    case 'validate':
      return input;
    case 'join': {
      // It adds one field; partitioning by that field is gone.
      const as = (step.config as { join?: { as?: unknown; table?: unknown } }).join;
      const field = typeof as?.as === 'string' ? as.as : as?.table;
      return input.some((p) => p[0] === field) ? undefined : input;
    }
    case 'set': {
      // A field the step assigns no longer has the value the records were partitioned by.
      const assigned = new Set(Object.keys((step.config as SetConfig).set));
      return input.some((p) => assigned.has(p[0]!)) ? undefined : input;
    }
    case 'window': {
      // Each partitioning path that is a group key becomes that key's output field; any other is gone.
      const groups = groupKeysOf(parseWindowStepConfig(step.config, `steps.${step.name}`));
      const out: string[][] = [];
      for (const p of input) {
        const key = groups.find((g) => {
          const segments = plainPathSegments(g.source);
          return segments !== undefined && pathKey(segments) === pathKey(p);
        });
        if (!key) return undefined;
        out.push([key.name]);
      }
      return out;
    }
    default:
      return undefined;
  }
}

/** The nodes a step keeps as state rather than reads as a stream (a join's table), as its kind says. */
function sideInputsOf(step: PlanStep): Set<string> {
  const def = findDef(builtinComponents.steps, step.kind);
  return new Set(def?.sideInputs?.(step.config).map((s) => s.node) ?? []);
}

/** The connection fields of a kafka source's config: what a repartition's sink and source connect with. */
function connectionOf(config: KafkaSourceConfig): ConnectionConfig {
  const out: ConnectionConfig = { brokers: config.brokers };
  if (config.client_id !== undefined) out.client_id = config.client_id;
  if (config.sasl !== undefined) out.sasl = config.sasl;
  if (config.tls !== undefined) out.tls = config.tls;
  return out;
}

function partitionsText(partitions: number | undefined, from: string): string {
  if (partitions !== undefined) return `${partitions} partition${partitions === 1 ? '' : 's'}`;
  return from === '0' ? 'as many partitions as the source' : `as many partitions as stage ${from} has tasks`;
}

/** A plan that runs whole: one stage, the plan itself. */
function oneStage(plan: Plan): StageSplit {
  const input = (plan.nodes.find((n) => n.role === 'source' && !isGlobalSource(n)) ?? plan.nodes.find((n) => n.role === 'source'))?.name ?? '';
  return { stages: [{ id: '0', plan, input }], repartitions: [] };
}

/**
 * Cuts a plan that runs as tasks into stages at each window that must read through a repartition
 * topic (see cutOf). Stage 0 reads the spec's source and holds every node not downstream of such a
 * window; each repartitioned window, in plan order, starts stage `1`, `2` ... which reads its topic
 * and holds the window and everything downstream of it. The stage before gets a `repartition` sink
 * `<window>-repartition` reading the window's inputs; the stage after a `kafka` source of the same
 * name in the `repartition` format. A sink that reads nodes of several stages is in each, reading
 * that stage's; one that reads another sink's `errors` goes where that sink goes; one that reads a
 * repartitioned window's `errors` also reads, in the stage before, the repartition sink's (the
 * records whose key could not be computed, which the window itself would have failed on whole).
 *
 * No repartition needed, or a plan that does not run as tasks: one stage, the plan unchanged.
 * Throws ConfigError for a step that reads nodes of two stages and for a node already named
 * `<window>-repartition`.
 */
export function splitStages(plan: Plan): StageSplit {
  if (!runsAsTasks(plan)) return oneStage(plan);
  const source = plan.nodes.find((n): n is PlanSource => n.role === 'source' && !isGlobalSource(n))!;
  const globals = plan.nodes.filter((n): n is PlanSource => n.role === 'source' && isGlobalSource(n));
  const steps = plan.nodes.filter((n): n is PlanStep => n.role === 'step');
  const sinks = plan.nodes.filter((n): n is PlanSink => n.role === 'sink');
  const names = new Set(plan.nodes.map((n) => n.name));

  // Every task of stage 0 reads the global sources whole, so what reads them must be in stage 0.
  const stageOf = new Map<string, string>([[source.name, '0'], ...globals.map((g): [string, string] => [g.name, '0'])]);
  const outParts = new Map<string, Partitioning>([[source.name, declaredPartitioning(source)]]);
  const inParts = new Map<string, Partitioning>();
  const singleTask = new Set<string>();
  const cuts: (Cut & { id: string; from: string })[] = [];

  /** A port's partitioning: `out` is the node's output; any other port of a step carries its input records. */
  const partitioningOf = (ref: PortRef): Partitioning => (ref.port === MAIN_PORT ? outParts.get(ref.node) : inParts.get(ref.node));

  for (const step of steps) {
    const where = `steps.${step.name}`;
    const stages = [...new Set(step.inputs.map((i) => stageOf.get(i.node)!))];
    if (stages.length > 1) {
      const reads = step.inputs.map((i) => `\`${refText(i)}\` (stage ${stageOf.get(i.node)!})`).join(', ');
      throw new ConfigError(
        'E_REPARTITION',
        `step \`${step.name}\` reads ${reads}: running as tasks, the nodes after a repartition run in another stage (another consumer group, possibly another process) than those before it, and a step runs in one stage, so it can read the nodes of only one. Read one side only (a sink may read both), or declare the source's \`partitioned_by\` if the window needs no repartition`,
        where,
      );
    }
    const stage = stages[0]!;
    // A join's table is state, not a stream: how the output is spread follows the stream alone.
    const side = sideInputsOf(step);
    const parts = step.inputs.filter((i) => !side.has(i.node)).map(partitioningOf);
    let input: Partitioning = parts.every((p) => samePartitioning(p, parts[0])) ? parts[0] : undefined;
    const cut = step.kind === 'window' ? cutOf(step, input, singleTask.has(stage)) : undefined;
    if (cut) {
      const node = repartitionNodeName(step.name);
      if (names.has(node)) {
        throw new ConfigError(
          'E_REPARTITION',
          `\`${node}\` is the name of the repartition that window \`${step.name}\` reads through when the pipeline runs as tasks; rename that node`,
          where,
        );
      }
      const id = String(cuts.length + 1);
      cuts.push({ ...cut, id, from: stage });
      stageOf.set(step.name, id);
      if (cut.partitions === 1) singleTask.add(id);
      const keyPaths = cut.by.map(plainPathSegments);
      input = keyPaths.every((p): p is string[] => p !== undefined) && keyPaths.length > 0 ? keyPaths : undefined;
    } else {
      stageOf.set(step.name, stage);
    }
    inParts.set(step.name, input);
    outParts.set(step.name, outputPartitioning(step, input));
  }
  if (cuts.length === 0) return oneStage(plan);

  const applicationId = applicationIdOf(plan);
  const connection = connectionOf(source.config as KafkaSourceConfig);
  const cutByStep = new Map(cuts.map((c) => [c.step.name, c]));

  // Each sink's inputs per stage, in its own order.
  const sinkInputs = new Map<string, Map<string, PortRef[]>>();
  for (const sink of sinks) {
    const perStage = new Map<string, PortRef[]>();
    const add = (stage: string, ref: PortRef) => perStage.set(stage, [...(perStage.get(stage) ?? []), ref]);
    for (const ref of sink.inputs) {
      const readSink = sinkInputs.get(ref.node);
      if (readSink) {
        for (const stage of readSink.keys()) add(stage, ref);
        continue;
      }
      const cut = cutByStep.get(ref.node);
      if (cut && ref.port === ERRORS_PORT) add(cut.from, { node: repartitionNodeName(cut.step.name), port: ERRORS_PORT });
      add(stageOf.get(ref.node)!, ref);
    }
    sinkInputs.set(sink.name, perStage);
  }

  const repartitions: Repartition[] = cuts.map((c) => {
    const topic = `${applicationId}-${c.step.name}-repartition`;
    return { step: c.step.name, topic, group: topic, by: c.by, ...(c.partitions !== undefined ? { partitions: c.partitions } : {}), from: c.from, to: c.id };
  });

  // A repartition carries `$meta` only when something after it may read it.
  const metaRead = new Set(
    cuts
      .filter((c) => {
        const after = [...steps.filter((s) => stageOf.get(s.name) === c.id), ...sinks.filter((s) => sinkInputs.get(s.name)!.has(c.id))];
        return after.some(mentionsMeta);
      })
      .map((c) => c.id),
  );

  const stageIds = ['0', ...cuts.map((c) => c.id)];
  const stages = stageIds.map((id): StagePlan => {
    const nodes: PlanNode[] = [];
    const cutIn = cuts.find((c) => c.id === id);
    const repartitionIn = repartitions.find((r) => r.to === id);
    if (cutIn && repartitionIn) nodes.push(repartitionSource(cutIn, repartitionIn, connection, (source.config as KafkaSourceConfig).session_timeout));
    else nodes.push(source, ...globals);
    for (const step of steps) {
      if (stageOf.get(step.name) !== id) continue;
      nodes.push(step === cutIn?.step ? { ...step, inputs: [{ node: repartitionNodeName(step.name), port: MAIN_PORT }] } : step);
    }
    // Repartition sinks read only steps: first among the sinks, so a sink reading their errors comes after them.
    for (const [i, c] of cuts.entries()) if (c.from === id) nodes.push(repartitionSink(c, repartitions[i]!, connection, metaRead.has(c.id)));
    for (const sink of sinks) {
      const inputs = sinkInputs.get(sink.name)!.get(id);
      if (inputs) nodes.push(inputs.length === sink.inputs.length && inputs.every((r, i) => r === sink.inputs[i]) ? sink : { ...sink, inputs });
    }
    return { id, plan: { ...plan, nodes }, input: nodes[0]!.name };
  });
  return { stages, repartitions };
}

function refText(ref: PortRef): string {
  return ref.port === MAIN_PORT ? ref.node : `${ref.node}.${ref.port}`;
}

function keyText(by: readonly string[]): string {
  return by.length ? by.join(', ') : 'nothing (one group per window, so one partition)';
}

function repartitionSink(cut: Cut, r: Repartition, connection: ConnectionConfig, meta: boolean): PlanSink {
  const w = cut.config.window;
  const config: RepartitionSinkConfig = {
    ...connection,
    topic: r.topic,
    // The sink needs a key expression: with no group keys every record gets the same one (`null`), in one partition.
    key: r.by.length ? [...r.by] : ['null'],
    ...(w.time !== undefined ? { time: w.time } : {}),
    ...(w.idle !== undefined ? { idle: w.idle } : {}),
    ...(r.partitions !== undefined ? { partitions: r.partitions } : {}),
    ...(meta ? {} : { meta: false }),
  };
  return {
    role: 'sink',
    name: repartitionNodeName(cut.step.name),
    kind: 'repartition',
    config,
    summary: `repartition ${r.topic} for ${cut.step.name}, keyed by ${keyText(r.by)}, ${partitionsText(r.partitions, r.from)}, with watermark markers${meta ? '' : ', without $meta (nothing after it reads it)'}, at ${describeConnectionConfig(connection)}`,
    location: cut.step.location,
    ports: [ERRORS_PORT],
    inputs: cut.step.inputs.map((i) => ({ ...i })),
  };
}

function repartitionSource(cut: Cut, r: Repartition, connection: ConnectionConfig, sessionTimeout: string | undefined): PlanSource {
  // The spec's session timeout too: a dead process's tasks move in every stage at the same pace.
  const config: KafkaSourceConfig = {
    ...connection,
    topic: r.topic,
    group: r.group,
    start: 'earliest',
    isolation: 'read_committed',
    ...(sessionTimeout !== undefined ? { session_timeout: sessionTimeout } : {}),
  };
  const format: RepartitionFormatConfig = { upstream: r.from };
  return {
    role: 'source',
    name: repartitionNodeName(cut.step.name),
    kind: 'kafka',
    config,
    summary: summarize(kafkaSource, config),
    location: cut.step.location,
    ports: [MAIN_PORT, ERRORS_PORT],
    format: { kind: 'repartition', config: format, summary: `records of stage ${r.from} keyed by ${keyText(r.by)}, with the watermark markers of its tasks` },
  };
}
