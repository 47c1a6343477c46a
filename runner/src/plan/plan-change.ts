/**
 * What deploying one plan in place of another does to the state a running pipeline keeps: each
 * stateful step's stored state (kept, reset, new, left behind), the sources' committed positions,
 * and where outputs go. `sluice diff` prints it; pure, nothing connects.
 */
import { changelogTopic } from '../io/kafka/changelog-store.ts';
import { applicationIdOf } from './state.ts';
import type { ComponentRegistry } from '../spec/registry.ts';
import { describeStateChange, stateIdentities, type StateIdentity } from './state-identity.ts';
import type { Plan, PlanNode, PlanSink, PlanSource } from './types.ts';

export type StepStateChange =
  | { verdict: 'keep'; step: string; kind: string; fingerprint: string }
  /** The stored state cannot be used: `change` says why; after a rename, `renamedFrom` names the step whose state stays behind in `changelogTopic`. */
  | { verdict: 'reset'; step: string; kind: string; oldFingerprint: string; newFingerprint: string; change: string; renamedFrom?: string; changelogTopic?: string }
  | { verdict: 'new'; step: string; kind: string; fingerprint: string }
  | { verdict: 'removed'; step: string; kind: string; fingerprint: string; changelogTopic: string };

export interface SourceChange {
  source: string;
  kind: string;
  /** What changed, e.g. "group changed from a to b". */
  change: string;
  /** The committed positions (consumer group offsets, replication slot) do not follow the change. */
  positionsLost: boolean;
}

export interface SinkChange {
  sink: string;
  kind: string;
  change: 'added' | 'removed' | 'changed';
  /** Where it wrote before / writes now, e.g. `topic employee-activity-summaries`. */
  before?: string;
  after?: string;
}

export interface PlanChange {
  pipeline: { before: string; after: string };
  steps: StepStateChange[];
  sources: SourceChange[];
  sinks: SinkChange[];
  /** Why deploying needs a reset or replay or leaves state behind; empty when all state carries over. */
  stateMoves: string[];
  /** The application ids that name the state before and after. */
  applicationId: { before: string; after: string };
}

export { changelogTopic };

/** Compares two compiled plans, `before` being the one deployed now. */
export function comparePlans(before: Plan, after: Plan, registry?: ComponentRegistry): PlanChange {
  const app = { before: applicationIdOf(before), after: applicationIdOf(after) };
  const steps = compareStates(app.before, stateIdentities(before, registry), stateIdentities(after, registry));
  const sources = compareSources(nodesOf(before, 'source'), nodesOf(after, 'source'));
  const sinks = compareSinks(nodesOf(before, 'sink'), nodesOf(after, 'sink'));
  const stateMoves: string[] = [];
  if (app.before !== app.after) stateMoves.push(applicationIdMove(app.before, app.after));
  for (const s of steps) {
    if (s.verdict === 'reset') stateMoves.push(s.renamedFrom !== undefined ? `step ${s.step} ${s.change}` : `step ${s.step} needs a reset or replay: ${s.change}`);
    if (s.verdict === 'removed') stateMoves.push(`step ${s.step} is removed: its state is left behind`);
  }
  for (const s of sources) if (s.positionsLost) stateMoves.push(`source ${s.source}: ${s.change}`);
  return { pipeline: { before: before.name, after: after.name }, applicationId: app, steps, sources, sinks, stateMoves };
}

function applicationIdMove(before: string, after: string): string {
  return `application id changed from ${before} to ${after} (it is the pipeline name unless checkpoint.application_id sets it): it names all state (changelog topics, the transactional id, the file store's directory), so all state would be left behind`;
}

function nodesOf<R extends PlanNode['role']>(plan: Plan, role: R): Extract<PlanNode, { role: R }>[] {
  return plan.nodes.filter((n): n is Extract<PlanNode, { role: R }> => n.role === role);
}

/* ------------------------------------------------------------ stateful steps */

const RENAMED = 'state is keyed by step name and will not follow';

/**
 * Per step name: same fingerprint keeps, another resets; a step only one side has is new or
 * removed, unless a removed one has the same fingerprint as a new one: that looks like a rename.
 */
export function compareStates(pipeline: string, before: StateIdentity[], after: StateIdentity[]): StepStateChange[] {
  const afterByName = new Map(after.map((s) => [s.step, s]));
  const beforeNames = new Set(before.map((s) => s.step));
  const removed = before.filter((s) => !afterByName.has(s.step));
  const renamedFrom = new Map<string, StateIdentity>();
  for (const added of after.filter((s) => !beforeNames.has(s.step))) {
    const i = removed.findIndex((r) => r.fingerprint === added.fingerprint);
    if (i >= 0) renamedFrom.set(added.step, removed.splice(i, 1)[0]!);
  }

  const changes: StepStateChange[] = [];
  for (const now of after) {
    const old = before.find((s) => s.step === now.step);
    const origin = renamedFrom.get(now.step);
    if (old) {
      changes.push(
        old.fingerprint === now.fingerprint
          ? { verdict: 'keep', step: now.step, kind: now.kind, fingerprint: now.fingerprint }
          : { verdict: 'reset', step: now.step, kind: now.kind, oldFingerprint: old.fingerprint, newFingerprint: now.fingerprint, change: describeStateChange(old, now) },
      );
    } else if (origin) {
      changes.push({
        verdict: 'reset',
        step: now.step,
        kind: now.kind,
        oldFingerprint: origin.fingerprint,
        newFingerprint: now.fingerprint,
        change: `looks renamed from ${origin.step}: ${RENAMED}`,
        renamedFrom: origin.step,
        changelogTopic: changelogTopic(pipeline, origin.step),
      });
    } else {
      changes.push({ verdict: 'new', step: now.step, kind: now.kind, fingerprint: now.fingerprint });
    }
  }
  for (const old of removed) changes.push({ verdict: 'removed', step: old.step, kind: old.kind, fingerprint: old.fingerprint, changelogTopic: changelogTopic(pipeline, old.step) });
  return changes;
}

/* ------------------------------------------------------------ config fields */

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringField(config: unknown, key: string): string | undefined {
  if (!isRecord(config)) return undefined;
  const v = config[key];
  return typeof v === 'string' ? v : undefined;
}

function stringListField(config: unknown, key: string): string[] | undefined {
  if (!isRecord(config)) return undefined;
  const v = config[key];
  return Array.isArray(v) && v.every((x): x is string => typeof x === 'string') ? v : undefined;
}

/* ------------------------------------------------------------ sources */

/** What a source's committed positions belong to, per field; undefined for kinds that commit none. */
type PositionKeys = Record<string, string>;

/**
 * Kafka positions are the group's offsets of the topics read; postgres-cdc's are the slot's.
 * File, stdin and generator sources commit nothing.
 */
export function positionKeys(kind: string, config: unknown): PositionKeys | undefined {
  if (kind === 'kafka') {
    const topics = stringField(config, 'topic') ?? stringListField(config, 'topics')?.join(', ');
    const pattern = stringField(config, 'topic_pattern');
    return {
      group: stringField(config, 'group') ?? '',
      ...(topics !== undefined ? { topic: topics } : {}),
      ...(pattern !== undefined ? { topic_pattern: pattern } : {}),
    };
  }
  if (kind === 'postgres-cdc') return { slot: stringField(config, 'slot') ?? '' };
  return undefined;
}

const POSITIONS_LOST = 'committed positions will not follow';

export function compareSources(before: PlanSource[], after: PlanSource[]): SourceChange[] {
  const changes: SourceChange[] = [];
  const afterByName = new Map(after.map((s) => [s.name, s]));
  for (const old of before) {
    const now = afterByName.get(old.name);
    const oldKeys = positionKeys(old.kind, old.config);
    if (!now) {
      changes.push({ source: old.name, kind: old.kind, change: 'removed', positionsLost: false });
      continue;
    }
    if (now.kind !== old.kind) {
      const lost = oldKeys !== undefined;
      changes.push({ source: old.name, kind: now.kind, change: `kind changed from ${old.kind} to ${now.kind}${lost ? `: ${POSITIONS_LOST}` : ''}`, positionsLost: lost });
      continue;
    }
    const newKeys = positionKeys(now.kind, now.config);
    if (!oldKeys || !newKeys) continue;
    const start = stringField(now.config, 'start');
    const from = start !== undefined ? ` (it starts from \`start: ${start}\`)` : '';
    for (const key of new Set([...Object.keys(oldKeys), ...Object.keys(newKeys)])) {
      const a = oldKeys[key];
      const b = newKeys[key];
      if (a === b) continue;
      const what = a === undefined ? `${key} ${b} set` : b === undefined ? `${key} ${a} no longer set` : `${key} changed from ${a} to ${b}`;
      changes.push({ source: old.name, kind: now.kind, change: `${what}: ${POSITIONS_LOST}${from}`, positionsLost: true });
    }
  }
  for (const now of after) if (!before.some((s) => s.name === now.name)) changes.push({ source: now.name, kind: now.kind, change: 'added', positionsLost: false });
  return changes;
}

/* ------------------------------------------------------------ sinks */

/** Where a sink writes, as one comparable line: a topic, a table, a file. */
export function sinkDestination(kind: string, config: unknown): string {
  switch (kind) {
    case 'kafka': {
      const topic = stringField(config, 'topic');
      return topic !== undefined ? `topic ${topic}` : `topic_expr \`${stringField(config, 'topic_expr') ?? ''}\``;
    }
    case 'postgres':
      return `table ${stringField(config, 'table') ?? ''}`;
    case 'file':
      return `file ${stringField(config, 'path') ?? ''}`;
    default:
      return kind;
  }
}

export function compareSinks(before: PlanSink[], after: PlanSink[]): SinkChange[] {
  const changes: SinkChange[] = [];
  const afterByName = new Map(after.map((s) => [s.name, s]));
  for (const old of before) {
    const now = afterByName.get(old.name);
    const was = sinkDestination(old.kind, old.config);
    if (!now) {
      changes.push({ sink: old.name, kind: old.kind, change: 'removed', before: was });
      continue;
    }
    const is = sinkDestination(now.kind, now.config);
    if (was !== is) changes.push({ sink: old.name, kind: now.kind, change: 'changed', before: was, after: is });
  }
  for (const now of after) {
    if (!before.some((s) => s.name === now.name)) changes.push({ sink: now.name, kind: now.kind, change: 'added', after: sinkDestination(now.kind, now.config) });
  }
  return changes;
}

/* ------------------------------------------------------------ text */

const RESET_HINT = 'the stored state cannot be used: `sluice run --reset-state` drops it, or a replay from the source start rebuilds it';

function stepLines(s: StepStateChange): string[] {
  const head = `  ${s.verdict.padEnd(8)} ${s.step} [${s.kind}]`;
  const more = ' '.repeat(11);
  switch (s.verdict) {
    case 'keep':
      return [head];
    case 'new':
      return [`${head}: starts empty`];
    case 'removed':
      return [`${head}: its state is left behind; changelog topic ${s.changelogTopic} can be deleted`];
    case 'reset':
      return [
        `${head}: ${s.change}`,
        ...(s.changelogTopic !== undefined ? [`${more}the state of ${s.renamedFrom} is left behind in changelog topic ${s.changelogTopic}`] : []),
        `${more}${RESET_HINT}`,
      ];
  }
}

function sinkLine(s: SinkChange): string {
  const head = `  ${s.sink} [${s.kind}]`;
  if (s.change === 'added') return `${head}: added, writes to ${s.after}`;
  if (s.change === 'removed') return `${head}: removed, wrote to ${s.before}`;
  return `${head}: ${s.before} -> ${s.after}`;
}

/** The text `sluice diff` prints: state per stateful step, sources, outputs, the pipeline, a verdict. */
export function renderPlanChange(change: PlanChange, files: { before: string; after: string }): string {
  const { pipeline } = change;
  const lines = [`pipeline ${pipeline.before}${pipeline.after !== pipeline.before ? ` -> ${pipeline.after}` : ''} (${files.before} -> ${files.after})`, ''];
  lines.push('state:', ...(change.steps.length ? change.steps.flatMap(stepLines) : ['  no stateful steps']));
  lines.push('', 'sources:', ...(change.sources.length ? change.sources.map((s) => `  ${s.source} [${s.kind}]: ${s.change}`) : ['  unchanged']));
  lines.push('', 'outputs:', ...(change.sinks.length ? change.sinks.map(sinkLine) : ['  unchanged']));
  const graph = [
    ...(change.applicationId.before !== change.applicationId.after ? [`  ${applicationIdMove(change.applicationId.before, change.applicationId.after)}`] : []),
    ...change.steps.flatMap((s) => (s.verdict === 'reset' && s.renamedFrom !== undefined ? [`  step ${s.renamedFrom} looks renamed to ${s.step}: ${RENAMED}`] : [])),
  ];
  lines.push('', 'graph:', ...(graph.length ? graph : ['  nothing that moves state']));
  lines.push(
    '',
    change.stateMoves.length
      ? `verdict: a reset or replay is needed, or state would be left behind (${change.stateMoves.length} reason${change.stateMoves.length === 1 ? '' : 's'})`
      : 'verdict: all state carries over',
  );
  return lines.join('\n') + '\n';
}
