/**
 * The identity of each stateful step's stored state: the parts of its config that say what the
 * state means (StepDef.stateIdentity) and a fingerprint of them. Stored state carries the
 * fingerprint, so a restart under a spec whose step means something else is refused, and
 * `sluice diff` can say before a deploy which state survives an edit.
 */
import { createHash } from 'node:crypto';
import { isDuration } from '../engine/duration.ts';
import { ConfigError, errorMessage, SluiceError } from '../engine/errors.ts';
import { builtinComponents, findDef, type ComponentRegistry } from '../spec/registry.ts';
import type { Plan } from './types.ts';

export interface StateIdentity {
  step: string;
  kind: string;
  fingerprint: string;
  parts: Record<string, unknown>;
}

/** The stateful steps of a compiled plan (those whose def has stateIdentity), in plan order. */
export function stateIdentities(plan: Plan, registry: ComponentRegistry = builtinComponents): StateIdentity[] {
  const identities: StateIdentity[] = [];
  for (const node of plan.nodes) {
    if (node.role !== 'step') continue;
    const def = findDef(registry.steps, node.kind);
    if (!def?.stateIdentity) continue;
    let parts: Record<string, unknown>;
    try {
      parts = def.stateIdentity(node.config);
    } catch (err) {
      // The def does not know the step's name: say where, keeping the def's code.
      const code = err instanceof SluiceError ? err.code : 'E_STATE_IDENTITY';
      throw new ConfigError(code, errorMessage(err), `steps.${node.name}`, { cause: err });
    }
    identities.push({ step: node.name, kind: node.kind, fingerprint: fingerprintOf(node.kind, parts), parts });
  }
  return identities;
}

/** sha256 (hex, first 16 chars) of the canonical JSON (sorted object keys) of kind + parts. */
export function fingerprintOf(kind: string, parts: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson({ kind, parts })).digest('hex').slice(0, 16);
}

/**
 * JSON with object keys sorted at every depth, so equal values give equal text whatever order
 * their keys were built in. Array order is kept: it is meaningful (group keys, aggregates).
 * Undefined members are left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (!isPlainObject(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = v[k];
    return sorted;
  });
}

/** Human text naming what differs, e.g. "window size changed from 1h to 30m; aggregate `avg` removed". Empty string when equal. */
export function describeStateChange(stored: StateIdentity, current: StateIdentity): string {
  if (stored.kind === current.kind && canonicalJson(stored.parts) === canonicalJson(current.parts)) {
    // Equal parts under another fingerprint: the stored one was computed differently.
    return stored.fingerprint === current.fingerprint ? '' : `fingerprint changed from ${stored.fingerprint} to ${current.fingerprint}`;
  }
  if (stored.kind !== current.kind) return `kind changed from ${stored.kind} to ${current.kind}`;
  const changes: string[] = [];
  for (const key of unionKeys(stored.parts, current.parts)) changes.push(...valueChanges(key, stored.parts[key], current.parts[key]));
  return changes.join('; ');
}

/* ------------------------------------------------------------ describing differences */

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Keys of `a` in order, then those only `b` has. */
function unionKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...Object.keys(a), ...Object.keys(b).filter((k) => !(k in a))];
}

/** A list whose entries each have a string `name` (group keys, aggregates): compared by name. */
type NamedEntry = Record<string, unknown> & { name: string };

function isNamedList(v: unknown): v is NamedEntry[] {
  return Array.isArray(v) && v.every((e) => isPlainObject(e) && typeof e.name === 'string');
}

/** Durations read as written (`1h`); other strings are quoted as code, so an expression stands out. */
function show(v: unknown): string {
  if (v === null || v === undefined) return 'none';
  if (typeof v === 'string') return isDuration(v) ? v : `\`${v}\``;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (isPlainObject(v)) {
    // A tagged shape (`{kind: tumbling, size: 1h}`) reads "tumbling (size 1h)".
    const { kind, ...rest } = v;
    const fields = Object.entries(rest).map(([k, x]) => `${k} ${show(x)}`).join(', ');
    if (typeof kind === 'string') return fields ? `${kind} (${fields})` : kind;
    return `{${fields}}`;
  }
  return canonicalJson(v);
}

function valueChanges(label: string, before: unknown, after: unknown): string[] {
  if (canonicalJson(before) === canonicalJson(after)) return [];
  if (before === undefined) return [`${label} ${show(after)} added`];
  if (after === undefined) return [`${label} ${show(before)} removed`];
  if (isNamedList(before) && isNamedList(after)) return namedListChanges(label, before, after);
  if (isPlainObject(before) && isPlainObject(after)) {
    // Another kind of thing altogether (tumbling -> session): one change, not one per field.
    if (before.kind !== after.kind) return [`${label} changed from ${show(before)} to ${show(after)}`];
    return unionKeys(before, after).flatMap((k) => valueChanges(`${label} ${k}`, before[k], after[k]));
  }
  return [`${label} changed from ${show(before)} to ${show(after)}`];
}

/** The entry without its name: its one other field alone when it has just one. */
function entryBody(entry: NamedEntry): unknown {
  const { name: _name, ...rest } = entry;
  const keys = Object.keys(rest);
  return keys.length === 1 ? rest[keys[0]!] : rest;
}

function namedListChanges(label: string, before: NamedEntry[], after: NamedEntry[]): string[] {
  const changes: string[] = [];
  const afterByName = new Map(after.map((e) => [e.name, e]));
  const beforeNames = new Set(before.map((e) => e.name));
  for (const e of before) {
    const now = afterByName.get(e.name);
    if (!now) changes.push(`${label} \`${e.name}\` removed`);
    else if (canonicalJson(e) !== canonicalJson(now)) changes.push(`${label} \`${e.name}\` changed from ${show(entryBody(e))} to ${show(entryBody(now))}`);
  }
  for (const e of after) if (!beforeNames.has(e.name)) changes.push(`${label} \`${e.name}\` added`);
  const keptBefore = before.map((e) => e.name).filter((n) => afterByName.has(n));
  const keptAfter = after.map((e) => e.name).filter((n) => beforeNames.has(n));
  if (keptBefore.join('\u0000') !== keptAfter.join('\u0000')) {
    changes.push(`${label} order changed from ${before.map((e) => e.name).join(', ')} to ${after.map((e) => e.name).join(', ')}`);
  }
  return changes;
}
