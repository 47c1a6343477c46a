/**
 * JSON Schema validation (ajv, draft 2020-12) and the translation of ajv's errors into sentences
 * that name the node and the value: "unknown key `windw` in step `hourly` (did you mean
 * `window`?)", "`size` must be a duration like 1h, got `1 hour`".
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { EXPRESSION_KEYWORD, SECRET_KEYWORD, type JsonSchema } from '../engine/component.ts';
import type { DiagnosticCode } from './diagnostic.ts';
import { pointerToPath, type SpecPath, type Target } from './positions.ts';
import { closest, didYouMean } from './suggest.ts';

/** A schema error, translated: where it points (a path in the spec) and what it says. */
export interface SchemaProblem {
  code: DiagnosticCode;
  path: (string | number)[];
  target: Target;
  message: string;
  hint?: string;
  /** Set when the problem is a map key refused by `propertyNames` (the key, not its value). */
  propertyName?: string;
}

/** The ajv instance validation uses: every error, with the failing schema and data (for messages). */
export function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: false, validateFormats: false, allowUnionTypes: true });
  // Annotations for the validator's later stages and for redaction; they constrain nothing here.
  for (const keyword of [EXPRESSION_KEYWORD, 'x-duration', SECRET_KEYWORD]) ajv.addKeyword({ keyword, schemaType: 'boolean' });
  return ajv;
}

const ajv = createAjv();
const compiled = new WeakMap<object, ValidateFunction>();

/** Validates `value` against `schema` (compiled once per schema object) and explains the errors. */
export function checkSchema(schema: JsonSchema, value: unknown, basePath: SpecPath): SchemaProblem[] {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  if (validate(value)) return [];
  return explainErrors(validate.errors ?? [], basePath);
}

/* ------------------------------------------------------------------ naming things */

/** How a message names the object at `path`: "step `hourly`", "`window.hopping` of step `hourly`". */
export function describeObject(path: SpecPath): string {
  if (path[0] === 'profiles' && path.length >= 2) {
    const inProfile = ` in profile \`${String(path[1])}\``;
    return path.length === 2 ? `profile \`${String(path[1])}\`` : describeObject(path.slice(2)) + inProfile;
  }
  const [section, name, ...rest] = path;
  const role = section === 'sources' ? 'source' : section === 'steps' ? 'step' : section === 'sinks' ? 'sink' : undefined;
  if (role && name !== undefined) {
    const node = `${role} \`${String(name)}\``;
    return rest.length === 0 ? node : `\`${dotted(rest)}\` of ${node}`;
  }
  if (role) return `\`${String(section)}\``;
  return path.length === 0 ? 'the pipeline' : `\`${dotted(path)}\``;
}

/** `a.b[2].c` */
export function dotted(path: SpecPath): string {
  return path.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('');
}

/** The name a message uses for the field at `path`: its key, or `key[i]` for a list item. */
export function fieldName(path: SpecPath): string {
  const last = path[path.length - 1];
  if (typeof last === 'number') return `${fieldName(path.slice(0, -1))}[${last}]`;
  return last === undefined ? 'the spec' : String(last);
}

/** A value as a message shows it. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return value.length ? 'a list' : 'an empty list';
  if (typeof value === 'object') return Object.keys(value).length ? 'a map' : 'an empty map';
  const text = String(value);
  return `\`${text.length > 60 ? text.slice(0, 57) + '...' : text}\``;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'a map',
  array: 'a list',
  null: 'null',
};

function typeNames(type: unknown): string {
  const types = Array.isArray(type) ? type : [type];
  return types.map((t) => TYPE_NAMES[String(t)] ?? String(t)).join(' or ');
}

function schemaOf(err: ErrorObject): Record<string, unknown> {
  const s = err.parentSchema;
  return typeof s === 'object' && s !== null ? (s as Record<string, unknown>) : {};
}

/* ------------------------------------------------------------------ oneOf / anyOf */

interface Branches {
  combinator: ErrorObject;
  byBranch: Map<number, ErrorObject[]>;
}

/** Is this error a sign the branch is the wrong shape altogether (not a mistake inside the right shape)? */
function isShapeMismatch(err: ErrorObject, at: string): boolean {
  return err.instancePath === at && ['type', 'const', 'enum', 'required'].includes(err.keyword);
}

/**
 * Replaces each failed oneOf/anyOf (innermost first) by the errors of the branch the value most
 * likely meant: one whose type and required keys fit, with the fewest errors. When no branch
 * fits, one error says which forms are accepted.
 */
function resolveCombinators(errors: ErrorObject[]): ErrorObject[] {
  let list = errors;
  const resolved = new Set<ErrorObject>();
  for (;;) {
    const combinators = list.filter((e) => (e.keyword === 'oneOf' || e.keyword === 'anyOf') && !resolved.has(e));
    if (combinators.length === 0) return list;
    const combinator = combinators.sort((a, b) => b.schemaPath.length - a.schemaPath.length)[0]!;
    const prefix = combinator.schemaPath + '/';
    const inside = list.filter((e) => e.schemaPath.startsWith(prefix));
    const rest = list.filter((e) => e !== combinator && !e.schemaPath.startsWith(prefix));
    if ((combinator.params as { passingSchemas?: unknown }).passingSchemas) {
      // Several branches matched: the failed branches' errors are beside the point.
      resolved.add(combinator);
      list = [...rest, combinator];
      continue;
    }
    list = [...rest, ...chooseBranch({ combinator, byBranch: groupByBranch(inside, prefix) })];
  }
}

function groupByBranch(errors: ErrorObject[], prefix: string): Map<number, ErrorObject[]> {
  const byBranch = new Map<number, ErrorObject[]>();
  for (const e of errors) {
    const index = Number(e.schemaPath.slice(prefix.length).split('/')[0]);
    byBranch.set(index, [...(byBranch.get(index) ?? []), e]);
  }
  return byBranch;
}

function chooseBranch({ combinator, byBranch }: Branches): ErrorObject[] {
  const at = combinator.instancePath;
  const branches = [...byBranch.entries()];
  const fitting = branches.filter(([, errs]) => !errs.some((e) => isShapeMismatch(e, at)));
  if (fitting.length > 0) {
    fitting.sort((a, b) => a[1].length - b[1].length);
    return fitting[0]![1];
  }
  // No branch fits: say what the forms are.
  const branchSchemas = Array.isArray(combinator.schema) ? (combinator.schema as Record<string, unknown>[]) : [];
  const data = combinator.data;
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const objectBranches = branchSchemas.filter((s) => s.type === undefined || s.type === 'object');
    const wanted = [...new Set(objectBranches.flatMap((s) => (Array.isArray(s.required) ? (s.required as string[]) : [])))];
    if (wanted.length > 0) {
      return [{ ...combinator, keyword: 'x-needs-one-of', params: { keys: [...new Set(wanted)] } }];
    }
  }
  const types = [...new Set(branchSchemas.map((s) => s.type).filter((t) => t !== undefined).flat())];
  return [{ ...combinator, keyword: 'type', params: { type: types.length ? types : ['a supported form'] } }];
}

/* ------------------------------------------------------------------ messages */

function explainErrors(errors: ErrorObject[], basePath: SpecPath): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const err of resolveCombinators(errors)) {
    const p = explainError(err, basePath);
    if (!p) continue;
    const key = `${JSON.stringify(p.path)}|${p.code}|${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(p);
  }
  return problems;
}

function explainError(err: ErrorObject, basePath: SpecPath): SchemaProblem | undefined {
  const path = [...basePath, ...pointerToPath(err.instancePath)];
  const F = `\`${fieldName(path)}\``;
  const got = show(err.data);
  const params = err.params as Record<string, unknown>;
  const problem = (code: DiagnosticCode, message: string, extra: Partial<SchemaProblem> = {}): SchemaProblem => ({ code, path, target: 'value', message, ...extra });

  if (err.keyword === 'propertyNames') return undefined; // the error inside it says which key
  if (err.propertyName !== undefined) {
    return problem('E_SCHEMA_VALUE', `key \`${err.propertyName}\` in ${describeObject(path)} is not allowed: it ${err.message ?? 'is invalid'}`, {
      path: [...path, err.propertyName],
      target: 'key',
      propertyName: err.propertyName,
    });
  }
  switch (err.keyword) {
    case 'oneOf': {
      // Only reached when more than one branch matched (failed ones were resolved before).
      const passing = (params.passingSchemas as number[] | null) ?? [];
      const branches = Array.isArray(err.schema) ? (err.schema as Record<string, unknown>[]) : [];
      const keys = passing.flatMap((i) => (Array.isArray(branches[i]?.required) ? (branches[i]!.required as string[]) : []));
      if (keys.length < 2) return problem('E_SCHEMA_VALUE', `${F} matches more than one of its allowed forms`);
      return problem('E_SCHEMA_VALUE', `${describeObject(path)} takes only one of ${keys.map((k) => `\`${k}\``).join(', ')}`, { target: 'key' });
    }
    case 'if':
    case 'anyOf':
      return undefined;
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      const key = String(params.additionalProperty ?? params.unevaluatedProperty);
      const known = Object.keys((schemaOf(err).properties as Record<string, unknown> | undefined) ?? {});
      return {
        code: 'E_SCHEMA_UNKNOWN_KEY',
        path: [...path, key],
        target: 'key',
        message: `unknown key \`${key}\` in ${describeObject(path)}${didYouMean(key, known)}`,
        ...(known.length && closest(key, known) === undefined ? { hint: `known keys: ${known.map((k) => `\`${k}\``).join(', ')}` } : {}),
      };
    }
    case 'false schema':
      return problem('E_SCHEMA_UNKNOWN_KEY', `${F} is not allowed in ${describeObject(path.slice(0, -1))}`, { target: 'key' });
    case 'required':
      return problem('E_SCHEMA_MISSING_KEY', `${describeObject(path)} is missing required key \`${String(params.missingProperty)}\``, { target: 'key' });
    case 'x-needs-one-of': {
      const keys = (params.keys as string[]).map((k) => `\`${k}\``).join(', ');
      return problem('E_SCHEMA_MISSING_KEY', `${describeObject(path)} needs one of ${keys}`, { target: 'key' });
    }
    case 'dependentRequired':
    case 'dependencies':
      return problem('E_SCHEMA_MISSING_KEY', `${describeObject(path)} needs \`${String(params.missingProperty)}\` when \`${String(params.property)}\` is set`, { target: 'key' });
    case 'type':
      return problem('E_SCHEMA_TYPE', `${F} must be ${typeNames(params.type)}, got ${got}`);
    case 'pattern':
      if (schemaOf(err)['x-duration'] === true) {
        return problem('E_DURATION', `${F} must be a duration like 1h, got ${got}`, {
          hint: 'write a whole number and a unit: 500ms, 10s, 5m, 1h, 1d',
        });
      }
      {
        // A pattern means little to a reader: the field's description says what it wants.
        const description = schemaOf(err).description;
        return problem('E_SCHEMA_VALUE', `${F} must match the pattern \`${String(params.pattern)}\`, got ${got}`, typeof description === 'string' ? { hint: description } : {});
      }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]) ?? [];
      const guess = typeof err.data === 'string' ? didYouMean(err.data, allowed.map(String)) : '';
      return problem('E_SCHEMA_VALUE', `${F} must be one of ${allowed.map((v) => `\`${String(v)}\``).join(', ')}, got ${got}${guess}`);
    }
    case 'const':
      return problem('E_SCHEMA_VALUE', `${F} must be \`${String(params.allowedValue)}\`, got ${got}`);
    case 'minimum':
      return problem('E_SCHEMA_VALUE', `${F} must be at least ${String(params.limit)}, got ${got}`);
    case 'exclusiveMinimum':
      return problem('E_SCHEMA_VALUE', `${F} must be greater than ${String(params.limit)}, got ${got}`);
    case 'maximum':
      return problem('E_SCHEMA_VALUE', `${F} must be at most ${String(params.limit)}, got ${got}`);
    case 'exclusiveMaximum':
      return problem('E_SCHEMA_VALUE', `${F} must be less than ${String(params.limit)}, got ${got}`);
    case 'multipleOf':
      return problem('E_SCHEMA_VALUE', `${F} must be a multiple of ${String(params.multipleOf)}, got ${got}`);
    case 'minLength':
      return problem('E_SCHEMA_VALUE', params.limit === 1 ? `${F} must not be empty` : `${F} must be at least ${String(params.limit)} characters long`);
    case 'maxLength':
      return problem('E_SCHEMA_VALUE', `${F} must be at most ${String(params.limit)} characters long`);
    case 'minItems':
      return problem('E_SCHEMA_VALUE', `${F} needs at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`);
    case 'maxItems':
      return problem('E_SCHEMA_VALUE', `${F} takes at most ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`);
    case 'minProperties':
      return problem('E_SCHEMA_VALUE', `${F} needs at least ${String(params.limit)} entr${params.limit === 1 ? 'y' : 'ies'}`, { target: 'key' });
    case 'maxProperties':
      return problem('E_SCHEMA_VALUE', `${F} takes at most ${String(params.limit)} entr${params.limit === 1 ? 'y' : 'ies'}`);
    case 'uniqueItems':
      return problem('E_SCHEMA_VALUE', `${F} lists the same item twice (items ${String(params.j)} and ${String(params.i)})`);
    case 'format':
      return problem('E_SCHEMA_VALUE', `${F} must be a valid ${String(params.format)}, got ${got}`);
    default:
      return problem('E_SCHEMA_VALUE', `${F} ${err.message ?? 'is invalid'}`);
  }
}
