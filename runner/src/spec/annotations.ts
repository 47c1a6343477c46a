/**
 * Finding the values a component schema marks with an annotation keyword: `x-jsonata` strings (to
 * syntax-check them) and `x-secret` values (to redact them from `sluice graph` and summaries).
 * Walks the schema alongside the value, following properties, additionalProperties,
 * patternProperties, items, local `$ref`s and the branches of allOf/anyOf/oneOf/if-then-else
 * whose type fits the value.
 */
import { SECRET_KEYWORD, type JsonSchema } from '../engine/component.ts';

export interface Annotated {
  /** Path from the value's root. */
  path: (string | number)[];
  value: unknown;
}

type Schema = Record<string, unknown>;

function asSchema(s: unknown): Schema | undefined {
  return typeof s === 'object' && s !== null && !Array.isArray(s) ? (s as Schema) : undefined;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Whether the schema's declared `type` (if any) admits the value. */
function typeFits(schema: Schema, value: unknown): boolean {
  const declared = schema.type;
  if (declared === undefined) return true;
  const types = Array.isArray(declared) ? declared : [declared];
  const actual = typeOf(value);
  return types.some((t) => t === actual || (t === 'number' && actual === 'integer'));
}

function resolveRef(schema: Schema, root: Schema): Schema {
  const ref = schema.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return schema;
  let target: unknown = root;
  for (const seg of ref.slice(2).split('/')) target = asSchema(target)?.[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  const resolved = asSchema(target);
  return resolved ? { ...resolved, ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$ref')) } : schema;
}

function walk(schemaIn: unknown, value: unknown, keyword: string, root: Schema, path: (string | number)[], out: Map<string, Annotated>, depth: number): void {
  const raw = asSchema(schemaIn);
  if (!raw || depth > 64) return;
  const schema = resolveRef(raw, root);
  if (!typeFits(schema, value)) return;
  if (schema[keyword] === true) out.set(JSON.stringify(path), { path, value });

  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    const properties = asSchema(schema.properties) ?? {};
    const patterns = Object.entries(asSchema(schema.patternProperties) ?? {});
    for (const [k, v] of Object.entries(obj)) {
      const childPath = [...path, k];
      let matched = false;
      if (k in properties) {
        walk(properties[k], v, keyword, root, childPath, out, depth + 1);
        matched = true;
      }
      for (const [pattern, sub] of patterns) {
        if (new RegExp(pattern, 'u').test(k)) {
          walk(sub, v, keyword, root, childPath, out, depth + 1);
          matched = true;
        }
      }
      if (!matched) walk(schema.additionalProperties, v, keyword, root, childPath, out, depth + 1);
    }
  } else if (Array.isArray(value)) {
    const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
    value.forEach((item, i) => walk(i < prefix.length ? prefix[i] : schema.items, item, keyword, root, [...path, i], out, depth + 1));
  }
  for (const combinator of ['allOf', 'anyOf', 'oneOf']) {
    const branches = schema[combinator];
    if (Array.isArray(branches)) for (const b of branches) walk(b, value, keyword, root, path, out, depth + 1);
  }
  for (const k of ['then', 'else']) if (schema[k] !== undefined) walk(schema[k], value, keyword, root, path, out, depth + 1);
}

/** Every value under `value` that `schema` marks with `keyword: true`. */
export function findAnnotated(schema: JsonSchema, value: unknown, keyword: string): Annotated[] {
  const out = new Map<string, Annotated>();
  walk(schema, value, keyword, schema, [], out, 0);
  return [...out.values()];
}

export const REDACTED = '***';

/** A copy of `value` with every `x-secret` value replaced by `***`. */
export function redactSecrets(schema: JsonSchema, value: unknown): unknown {
  const secrets = findAnnotated(schema, value, SECRET_KEYWORD);
  if (secrets.length === 0) return value;
  const copy = structuredClone(value);
  for (const { path } of secrets) {
    if (path.length === 0) return REDACTED;
    let parent: unknown = copy;
    for (const seg of path.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[seg];
    (parent as Record<string | number, unknown>)[path[path.length - 1]!] = REDACTED;
  }
  return copy;
}
