/**
 * A checkpoint: the consistent cut a restarted run resumes from. It is taken between two jobs of
 * the runtime's serial job queue, so no batch is half-applied (sluice's version of Flink's aligned
 * barrier), and holds three things that become durable together or not at all:
 * - the position of the last record read from each input partition before the cut;
 * - the state of every stateful step (its keyed entries and header);
 * - a fingerprint of each stateful step's definition, so state is never reused by different logic.
 * Outputs derived from records before the cut were handed to the sinks before it is committed
 * (at-least-once) or ride in the same transaction (exactly-once).
 *
 * A StateStore (engine/state/file-store.ts, io/kafka/changelog-store.ts) keeps checkpoints.
 */
import type { JsonValue, StepState } from '../component.ts';
import { SluiceError } from '../errors.ts';

/** Bumped whenever the stored form changes; a store refuses any other. */
export const CHECKPOINT_FORMAT = 1;

export interface Checkpoint {
  /** The application id it belongs to (default: the pipeline name). */
  applicationId: string;
  /** 1 for the first committed checkpoint of this application id, then +1 per commit. */
  epoch: number;
  /** Per input partition (`source/topic/3`), the last position read before the cut. */
  positions: Record<string, string>;
  /** Per stateful step, its state. */
  states: Map<string, StepState>;
  /** Per stateful step, the identity of the definition that built its state (plan/state-identity.ts). */
  identities: Record<string, StoredIdentity>;
  /** Per sink that keeps one (Sink.checkpoint): where its output stood at the cut. */
  sinks: Record<string, JsonValue>;
  /** Wall-clock time it was taken, epoch ms. */
  takenAt: number;
}

/** What defines the meaning of a step's state: its kind, the config parts that matter, and their fingerprint. */
export interface StoredIdentity {
  kind: string;
  fingerprint: string;
  parts: JsonValue;
}

/** What a commit wrote, for the progress line and metrics. */
export interface CommitFigures {
  /** State entries written (changed or new) and deleted (tombstones), over all steps. */
  written: number;
  deleted: number;
  /** Bytes of state as stored. */
  bytes: number;
}

/**
 * Where checkpoints live. `load` and `commit` are the whole contract: a commit is atomic (a crash
 * leaves the previous checkpoint or this one, never a mix) and `load` gives the last committed one.
 */
export interface StateStore {
  /** One line for logs: `file .sluice/state/x/checkpoint.json`, `kafka topics x-hourly-changelog ...`. */
  readonly description: string;
  /**
   * The store keeps entries one by one and takes each step's changes since its last commit (a
   * changelog): steps then snapshot only what changed (`StepState.removed` set). Otherwise every
   * commit gets the whole state.
   */
  readonly incremental?: boolean;
  /** Connects, creates what is missing (topics, directory). */
  open(): Promise<void>;
  /** The last committed checkpoint, or undefined when none was ever committed. Throws StateError when what is stored cannot be trusted. */
  load(): Promise<Checkpoint | undefined>;
  /** Makes the checkpoint durable, atomically. */
  commit(checkpoint: Checkpoint): Promise<CommitFigures>;
  /** Deletes every stored checkpoint (`--reset-state`). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Stored state that cannot be used: corrupt, foreign, of another format, missing, or built by other logic. */
export class StateError extends SluiceError {
  constructor(code: string, message: string, where?: string, options?: { cause?: unknown }) {
    super(code, message, where, options);
  }
}

/* ------------------------------------------------------------------ positions */

/**
 * Orders two positions of one partition. Positions are opaque strings to the engine, but every
 * source writes them as decimal integers, or as `/`-separated tuples of them (postgres-cdc:
 * `<commit LSN>/<change LSN>`), which compare component by component. Anything else compares as
 * text, which at least keeps equal positions equal.
 */
export function comparePositions(a: string, b: string): number {
  if (a === b) return 0;
  const as = a.split('/');
  const bs = b.split('/');
  if (as.length === bs.length && as.every(isDecimal) && bs.every(isDecimal)) {
    for (let i = 0; i < as.length; i++) {
      const x = BigInt(as[i]!);
      const y = BigInt(bs[i]!);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  }
  return a < b ? -1 : 1;
}

function isDecimal(s: string): boolean {
  return /^\d+$/.test(s);
}

/* ------------------------------------------------------------------ JSON form */

/** A checkpoint without the steps' states, as plain JSON: what the Kafka and PostgreSQL stores keep in one record or row. */
export interface CheckpointMetaJson {
  format: number;
  applicationId: string;
  epoch: number;
  positions: Record<string, string>;
  identities: Record<string, StoredIdentity>;
  sinks: Record<string, JsonValue>;
  takenAt: number;
}

/** A whole checkpoint as plain JSON: the file store's form. */
export interface CheckpointJson extends CheckpointMetaJson {
  states: Record<string, StepStateJson>;
}

export interface StepStateJson {
  header: JsonValue;
  entries: [string, JsonValue][];
}

export function stepStateToJson(state: StepState): StepStateJson {
  return { header: state.header, entries: [...state.entries] };
}

export function checkpointMetaToJson(cp: Checkpoint): CheckpointMetaJson {
  return {
    format: CHECKPOINT_FORMAT,
    applicationId: cp.applicationId,
    epoch: cp.epoch,
    positions: cp.positions,
    identities: cp.identities,
    sinks: cp.sinks,
    takenAt: cp.takenAt,
  };
}

export function checkpointToJson(cp: Checkpoint): CheckpointJson {
  const states: Record<string, StepStateJson> = {};
  for (const [step, state] of cp.states) states[step] = stepStateToJson(state);
  return { ...checkpointMetaToJson(cp), states };
}

/** Checks the shape of a stored checkpoint; `where` names the file or topic in errors. */
export function checkpointFromJson(json: unknown, where: string): Checkpoint {
  const meta = checkpointMetaFromJson(json, where);
  const states = new Map<string, StepState>();
  const stored = (json as { states?: unknown }).states;
  if (!isObject(stored)) throw new StateError('E_STATE_CORRUPT', `${where}: not a sluice checkpoint: states missing`, where);
  for (const [step, s] of Object.entries(stored)) states.set(step, stepStateFromJson(s, `${where}: state of \`${step}\``));
  const { format: _format, ...rest } = meta;
  return { ...rest, states };
}

/** Checks everything of a stored checkpoint but the steps' states. */
export function checkpointMetaFromJson(json: unknown, where: string): CheckpointMetaJson {
  const fail = (what: string): never => {
    throw new StateError('E_STATE_CORRUPT', `${where}: not a sluice checkpoint: ${what}`, where);
  };
  if (!isObject(json)) return fail('not a JSON object');
  if (json.format !== CHECKPOINT_FORMAT) {
    throw new StateError(
      'E_STATE_FORMAT',
      `${where}: checkpoint format ${String(json.format)} is not ${CHECKPOINT_FORMAT}, the one this sluice reads; run with --reset-state to start over`,
      where,
    );
  }
  if (typeof json.applicationId !== 'string') fail('applicationId missing');
  if (typeof json.epoch !== 'number' || !Number.isInteger(json.epoch) || json.epoch < 1) fail('epoch must be a positive integer');
  if (typeof json.takenAt !== 'number') fail('takenAt missing');
  const positions = stringMap(json.positions, 'positions', fail);
  const identities = identitiesFromJson(json.identities, fail);
  if (!isObject(json.sinks)) return fail('sinks missing');
  return {
    format: CHECKPOINT_FORMAT,
    applicationId: json.applicationId as string,
    epoch: json.epoch as number,
    positions,
    identities,
    sinks: json.sinks as Record<string, JsonValue>,
    takenAt: json.takenAt as number,
  };
}

export function identitiesFromJson(v: unknown, fail: (what: string) => never): Record<string, StoredIdentity> {
  if (!isObject(v)) return fail('identities missing');
  for (const id of Object.values(v)) {
    if (!isObject(id) || typeof id.kind !== 'string' || typeof id.fingerprint !== 'string') fail('an identity needs kind and fingerprint');
  }
  return v as Record<string, StoredIdentity>;
}

export function stepStateFromJson(json: unknown, where: string): StepState {
  if (!isObject(json) || !Array.isArray(json.entries) || !('header' in json)) {
    throw new StateError('E_STATE_CORRUPT', `${where}: not a step state (header and entries expected)`, where);
  }
  const entries = new Map<string, JsonValue>();
  for (const e of json.entries) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string') {
      throw new StateError('E_STATE_CORRUPT', `${where}: an entry is not a [key, value] pair`, where);
    }
    entries.set(e[0], e[1] as JsonValue);
  }
  return { header: json.header as JsonValue, entries };
}

function stringMap(v: unknown, what: string, fail: (what: string) => never): Record<string, string> {
  if (!isObject(v)) return fail(`${what} missing`);
  for (const x of Object.values(v)) if (typeof x !== 'string') fail(`${what} must map names to strings`);
  return v as Record<string, string>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Compares stored identities with the running spec's. A stateful step whose definition changed
 * cannot use its stored state; a step that is new starts empty; state of a removed step is ignored.
 * Returns the steps whose stored state is unusable.
 */
export function identityMismatches(stored: Record<string, StoredIdentity>, current: Record<string, StoredIdentity>): string[] {
  return Object.entries(current)
    .filter(([step, id]) => stored[step] !== undefined && (stored[step]!.fingerprint !== id.fingerprint || stored[step]!.kind !== id.kind))
    .map(([step]) => step);
}
