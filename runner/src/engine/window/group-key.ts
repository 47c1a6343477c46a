/**
 * Group keys: the name a `group_by` list entry gets, and the string that identifies a group in the
 * operator's maps. The string must be cheap to build per record and must never let two different
 * key tuples collide.
 */
import jsonata from 'jsonata';
import { encodeValue } from './state-codec.ts';

/**
 * The field name of a plain path used as a group key: its last segment (`user.id` -> `id`,
 * `` a.`b c` `` -> `b c`). Undefined when the expression is not a plain path of names.
 */
export function plainPathName(source: string): string | undefined {
  let ast: { type?: unknown; value?: unknown; steps?: { type?: unknown; value?: unknown; [k: string]: unknown }[]; [k: string]: unknown };
  try {
    ast = jsonata(source).ast() as unknown as typeof ast;
  } catch {
    return undefined;
  }
  const plainKeys = (node: Record<string, unknown>, allowed: string[]) =>
    Object.keys(node).every((k) => node[k] === undefined || allowed.includes(k));
  if (ast.type === 'name' && typeof ast.value === 'string' && plainKeys(ast, ['type', 'value', 'position'])) return ast.value;
  if (ast.type !== 'path' || !ast.steps || !plainKeys(ast, ['type', 'steps'])) return undefined;
  let name: string | undefined;
  for (const step of ast.steps) {
    if (step.type !== 'name' || typeof step.value !== 'string' || !plainKeys(step, ['type', 'value', 'position'])) return undefined;
    name = step.value;
  }
  return name;
}

/** One key value as text: strings quoted (JSON escapes control characters), numbers bare. */
function encodePart(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
    case 'bigint':
      return String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return v === null || v === undefined ? 'null' : JSON.stringify(encodeValue(v));
  }
}

/**
 * The identity of a key tuple. Parts are joined with U+0001, which no encoded part contains (JSON
 * escapes it inside strings), so distinct tuples give distinct strings; missing values group with
 * nulls, as in SQL.
 */
export function groupKeyString(values: readonly unknown[]): string {
  if (values.length === 1) return encodePart(values[0]);
  let out = '';
  for (let i = 0; i < values.length; i++) out += (i ? '\u0001' : '') + encodePart(values[i]);
  return out;
}
