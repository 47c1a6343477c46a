/**
 * Durable state for a plan: which store keeps its checkpoints, how often they are taken, and what
 * the components are told (delivery, application id, the shared Kafka or PostgreSQL transaction).
 * The defaults follow the sources: a pipeline that reads Kafka keeps its state in Kafka (changelog
 * topics, written in the same transaction as the consumed offsets); any other keeps it in a file.
 * Under exactly-once the store must be where the outputs go: a pipeline writing to PostgreSQL (and
 * not to Kafka) keeps its state in that database, in the sink rows' transaction.
 */
import path from 'node:path';
import { CheckpointCoordinator } from '../engine/checkpoint/coordinator.ts';
import type { StateStore, StoredIdentity } from '../engine/checkpoint/checkpoint.ts';
import type { Clock } from '../engine/clock.ts';
import { SharedResources, type CheckpointContext, type Delivery, type JsonValue } from '../engine/component.ts';
import { parseDuration } from '../engine/duration.ts';
import { ConfigError } from '../engine/errors.ts';
import type { Logger } from '../engine/logger.ts';
import { FileStateStore } from '../engine/state/file-store.ts';
import { ChangelogStateStore, KAFKA_TRANSACTION, type ChangelogTask } from '../io/kafka/changelog-store.ts';
import { connectionFromConfig, type ConnectionConfig } from '../io/kafka/connection.ts';
import { describeConnection, pgConnectionFromConfig } from '../io/postgres/connection.ts';
import { POSTGRES_TRANSACTION, PostgresStateStore } from '../io/postgres/state-store.ts';
import { describeStateChange, stateIdentities } from './state-identity.ts';
import type { Plan, PlanNode } from './types.ts';

export const DEFAULT_CHECKPOINT_INTERVAL = '1s';

export interface StateOptions {
  /** `--state-dir`: the file store's directory, over the spec's `checkpoint.dir`. */
  stateDir?: string;
  /** `--reset-state`: drop what is stored before starting. */
  resetState?: boolean;
  /** Relative directories resolve against this. Default: the working directory. */
  cwd?: string;
  logger: Logger;
  clock: Clock;
  /** The pipeline runs as tasks (plan/tasks.ts): the state of this one task, in its changelog partition. */
  task?: ChangelogTask;
}

export interface StateSettings {
  store: 'kafka' | 'file' | 'postgres' | 'none';
  delivery: Delivery;
  applicationId: string;
  intervalMs: number;
  /** The file store's directory (absolute). */
  dir: string;
}

/** What names the plan's state: `checkpoint.application_id`, else the pipeline name. */
export function applicationIdOf(plan: Plan): string {
  return plan.checkpoint?.application_id ?? plan.name;
}

/** The plan's state settings with defaults filled in; refuses combinations that cannot keep their promise. */
export function stateSettings(plan: Plan, options: Pick<StateOptions, 'stateDir' | 'cwd'> = {}): StateSettings {
  const cp = plan.checkpoint ?? {};
  const delivery = plan.delivery ?? 'at-least-once';
  const readsKafka = plan.nodes.some((n) => n.role === 'source' && n.kind === 'kafka');
  const kafkaSinks = plan.nodes.filter((n) => n.role === 'sink' && n.kind === 'kafka');
  const postgresSinks = plan.nodes.filter((n) => n.role === 'sink' && n.kind === 'postgres');
  const exactlyOnceToPostgres = delivery === 'exactly-once' && postgresSinks.length > 0 && kafkaSinks.length === 0;
  const store = cp.store ?? (exactlyOnceToPostgres ? 'postgres' : readsKafka ? 'kafka' : 'file');
  const applicationId = applicationIdOf(plan);
  const dir = path.resolve(options.cwd ?? process.cwd(), options.stateDir ?? cp.dir ?? path.join('.sluice', 'state', applicationId));
  const settings: StateSettings = { store, delivery, applicationId, intervalMs: parseDuration(cp.interval ?? DEFAULT_CHECKPOINT_INTERVAL), dir };
  if (delivery === 'exactly-once') {
    if (store === 'none') throw new ConfigError('E_DELIVERY', 'delivery: exactly-once needs checkpoints; `checkpoint.store: none` turns them off', 'checkpoint.store');
    if (kafkaSinks.length > 0 && postgresSinks.length > 0) {
      throw new ConfigError(
        'E_DELIVERY',
        `delivery: exactly-once cannot cover both ${sinkList(kafkaSinks)} (Kafka) and ${sinkList(postgresSinks)} (PostgreSQL): each commits in its own system, and two commit points cannot be made atomic (a crash between them writes one side again or loses it). Use at-least-once with an upsert into PostgreSQL, or split the pipeline in two`,
        'delivery',
      );
    }
    if (store !== 'postgres' && postgresSinks.length > 0) {
      throw new ConfigError(
        'E_DELIVERY',
        'delivery: exactly-once to PostgreSQL needs `checkpoint.store: postgres`: the sink rows, the state and the source positions must commit in one database transaction',
        'checkpoint.store',
      );
    }
    if (store !== 'kafka' && kafkaSinks.length > 0) {
      throw new ConfigError(
        'E_DELIVERY',
        'delivery: exactly-once to Kafka needs `checkpoint.store: kafka`: the sink records, the state changelog and the source positions must commit in one Kafka transaction',
        'checkpoint.store',
      );
    }
  }
  if (store === 'kafka' && !plan.nodes.some((n) => n.kind === 'kafka')) {
    throw new ConfigError('E_STATE_STORE', '`checkpoint.store: kafka` needs a kafka source or sink to take the brokers from', 'checkpoint.store');
  }
  if (store === 'postgres' && !postgresNode(plan)) {
    throw new ConfigError('E_STATE_STORE', '`checkpoint.store: postgres` needs a postgres sink or postgres-cdc source to take the connection from', 'checkpoint.store');
  }
  if (delivery === 'exactly-once' && store === 'postgres') refuseOtherDatabases(plan, postgresSinks);
  return settings;
}

/**
 * Under exactly-once every postgres sink writes into the store's transaction, so all must name its
 * database. Refused here, before anything connects; the sink checks again at open.
 */
function refuseOtherDatabases(plan: Plan, sinks: readonly PlanNode[]): void {
  const node = postgresNode(plan)!;
  const store = describeConnection(pgConnectionFromConfig(node.config, `${node.role}s.${node.name}`));
  for (const sink of sinks) {
    const where = `sinks.${sink.name}`;
    const target = describeConnection(pgConnectionFromConfig(sink.config, where));
    if (target !== store) {
      throw new ConfigError(
        'E_DELIVERY',
        `delivery: exactly-once needs this sink on the database that keeps the state (${store}, from ${node.role}s.${node.name}), not ${target}: one transaction cannot span two databases`,
        where,
      );
    }
  }
}

function sinkList(nodes: readonly PlanNode[]): string {
  return nodes.map((n) => `sinks.${n.name}`).join(', ');
}

/** The node the `postgres` store takes its connection from: the first postgres sink (its rows share the transaction), else the first postgres-cdc source. */
function postgresNode(plan: Plan): PlanNode | undefined {
  return plan.nodes.find((n) => n.role === 'sink' && n.kind === 'postgres') ?? plan.nodes.find((n) => n.role === 'source' && n.kind === 'postgres-cdc');
}

/** The identity of each stateful step, as a checkpoint stores it. */
export function storedIdentities(plan: Plan): Record<string, StoredIdentity> {
  const out: Record<string, StoredIdentity> = {};
  for (const id of stateIdentities(plan)) out[id.step] = { kind: id.kind, fingerprint: id.fingerprint, parts: id.parts as JsonValue };
  return out;
}

export interface PreparedState {
  settings: StateSettings;
  /** For the runtime; undefined with `store: none`. */
  coordinator?: CheckpointCoordinator;
  /** For the components (instantiate); undefined with `store: none`. */
  context?: CheckpointContext;
}

/** Builds the store and coordinator for a run. Connects to nothing; `--reset-state` deletes what is stored. */
export async function prepareState(plan: Plan, options: StateOptions): Promise<PreparedState> {
  const settings = stateSettings(plan, options);
  if (settings.store === 'none') return { settings };
  const identities = storedIdentities(plan);
  const shared = new SharedResources();
  const store = createStore(plan, settings, Object.keys(identities), options, shared);
  // A task's store shares its topics with the other tasks: plan/tasks.ts drops them once, before any task starts.
  if (options.resetState && !options.task) {
    await store.reset();
    options.logger.warn({ store: store.description }, '--reset-state: stored state dropped; windows start empty');
  }
  const coordinator = new CheckpointCoordinator(
    {
      store,
      intervalMs: settings.intervalMs,
      applicationId: settings.applicationId,
      identities,
      explainChange: (step, stored, current) =>
        describeStateChange({ step, kind: stored.kind, fingerprint: stored.fingerprint, parts: asParts(stored.parts) }, { step, kind: current.kind, fingerprint: current.fingerprint, parts: asParts(current.parts) }),
    },
    options.clock,
    options.logger,
  );
  return { settings, coordinator, context: { delivery: settings.delivery, applicationId: settings.applicationId, shared } };
}

function createStore(plan: Plan, settings: StateSettings, steps: string[], options: StateOptions, shared: SharedResources): StateStore {
  if (options.task && settings.store !== 'kafka') throw new ConfigError('E_STATE_STORE', `a pipeline runs as tasks only with its state in Kafka, not \`${settings.store}\``, 'checkpoint.store');
  if (settings.store === 'file') return new FileStateStore(settings.dir);
  if (settings.store === 'postgres') {
    const node = postgresNode(plan)!;
    const where = `${node.role}s.${node.name}`;
    const store = new PostgresStateStore(
      {
        connection: pgConnectionFromConfig(node.config, where),
        applicationId: settings.applicationId,
        steps,
        ...(plan.checkpoint?.schema !== undefined ? { schema: plan.checkpoint.schema } : {}),
        // The server ends a session idle this long inside the open transaction: several intervals, so a slow batch survives.
        idleTimeoutMs: Math.max(60_000, settings.intervalMs * 10),
      },
      options.logger.child({ state: 'postgres' }),
    );
    if (settings.delivery === 'exactly-once') shared.set(POSTGRES_TRANSACTION, store);
    return store;
  }
  const kafkaNodes = plan.nodes.filter((n) => n.kind === 'kafka' && n.role !== 'step');
  const first = kafkaNodes.find((n) => n.role === 'source') ?? kafkaNodes[0]!;
  const connection = connectionFromConfig(first.config as ConnectionConfig, `sluice-${settings.applicationId}-state`, `${first.role}s.${first.name}`);
  const groups = new Map<string, string>();
  for (const n of plan.nodes) {
    // A global source commits nothing: it reads from the start every time.
    if (n.role === 'source' && n.kind === 'kafka' && !isGlobalSource(n)) groups.set(n.name, (n.config as { group: string }).group);
  }
  const store = new ChangelogStateStore(
    {
      connection,
      applicationId: settings.applicationId,
      steps,
      groups,
      ...(options.resetState ? { startingOver: true } : {}),
      ...(options.task ? { task: options.task } : {}),
      // The broker aborts a transaction left open this long: several intervals, so a slow commit survives.
      transactionTimeoutMs: Math.max(60_000, settings.intervalMs * 10),
    },
    options.logger.child({ state: 'kafka' }),
  );
  // Tasks write their repartition topics through it under at-least-once too (see io/kafka/repartition.ts).
  if (settings.delivery === 'exactly-once' || options.task) shared.set(KAFKA_TRANSACTION, store);
  return store;
}

/** A kafka source with `global: true`: every partition from the start, nothing committed. */
export function isGlobalSource(node: PlanNode): boolean {
  return node.role === 'source' && node.kind === 'kafka' && (node.config as { global?: unknown } | null)?.global === true;
}

function asParts(parts: JsonValue): Record<string, unknown> {
  return parts !== null && typeof parts === 'object' && !Array.isArray(parts) ? parts : { value: parts };
}
