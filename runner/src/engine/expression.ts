import jsonata from 'jsonata';
import { ExpressionSyntaxError, describeValueKind } from './errors.ts';
import { DEFER, compileSubset } from './expression-compiler.ts';
import type { StreamRecord } from './record.ts';
import { inCidr } from './network.ts';
import { toEpochMillis, wallClock } from './time.ts';

/**
 * JSONata, the one expression language of specs. Every filter, computed field, key, group-by,
 * aggregate and event-time expression is compiled here once, when the plan is built.
 *
 * Expressions see the record's value as their input, and these bindings:
 *   $meta     format metadata (Debezium: op, before, source, ts_ms ...; Kafka: topic, partition, offset)
 *   $key      the record key
 *   $headers  the record headers
 * and sluice's functions: $hour, $minute, $date, $weekday, $epochMillis (see TIME_FUNCTIONS) and
 * $inCidr (see SLUICE_FUNCTIONS).
 */
export interface Expression {
  readonly source: string;
  /** A plain field path (`a.b.c`): evaluated synchronously, without the JSONata interpreter. */
  readonly isPath: boolean;
  /**
   * Evaluated by synchronous closures (expression-compiler.ts) instead of the JSONata interpreter,
   * which then only sees the evaluations the closures cannot answer exactly (arrays, errors).
   */
  readonly isCompiled?: boolean;
  evaluate(input: unknown, bindings?: Record<string, unknown>): unknown | Promise<unknown>;
}

/** The outcome of an expression that threw for one record; the record goes to the errors port. */
export class EvalFailure {
  constructor(readonly error: Error) {}
}

type Fn = (...args: unknown[]) => unknown;

function timeFunction(pick: (ms: number, tz: string | undefined) => unknown): Fn {
  return (value: unknown, tz?: unknown) => {
    if (value === undefined || value === null) return undefined;
    const ms = toEpochMillis(value);
    if (ms === undefined) throw new Error(`not a timestamp: ${describeValueKind(value)}`);
    return pick(ms, typeof tz === 'string' ? tz : undefined);
  };
}

const pad = (n: number) => String(n).padStart(2, '0');

// A UTC timestamp as Debezium values decode (`2025-01-06T09:05:12.345678Z`) already spells its UTC
// wall clock: $hour and $date read it off the text instead of parsing it (8x cheaper).
const CANONICAL_UTC = /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?Z$/;

function utcText(value: unknown, tz: unknown): string | undefined {
  return typeof value === 'string' && (tz === undefined || tz === 'UTC') && CANONICAL_UTC.test(value) ? value : undefined;
}

const hourOf = timeFunction((ms, tz) => wallClock(ms, tz).hour);
const dateOf = timeFunction((ms, tz) => {
  const w = wallClock(ms, tz);
  return `${w.year}-${pad(w.month)}-${pad(w.day)}`;
});

/** Functions sluice adds to JSONata. Each takes a timestamp (ISO string or epoch ms) and an optional IANA zone. */
export const TIME_FUNCTIONS: Record<string, { fn: Fn; signature: string; doc: string }> = {
  hour: {
    fn: (value, tz) => {
      const text = utcText(value, tz);
      return text ? (text.charCodeAt(11) - 48) * 10 + (text.charCodeAt(12) - 48) : hourOf(value, tz);
    },
    signature: '<(sn)-s?:n>',
    doc: 'hour of day, 0-23',
  },
  minute: { fn: timeFunction((ms, tz) => wallClock(ms, tz).minute), signature: '<(sn)-s?:n>', doc: 'minute of hour' },
  date: {
    fn: (value, tz) => {
      const text = utcText(value, tz);
      return text ? text.slice(0, 10) : dateOf(value, tz);
    },
    signature: '<(sn)-s?:s>',
    doc: 'calendar date, YYYY-MM-DD',
  },
  weekday: { fn: timeFunction((ms, tz) => wallClock(ms, tz).weekday), signature: '<(sn)-s?:n>', doc: 'ISO weekday, 1 = Monday' },
  epochMillis: { fn: timeFunction((ms) => ms), signature: '<(sn)-:n>', doc: 'epoch milliseconds' },
};

/**
 * Every function sluice adds to JSONata: the time functions, and `$inCidr(ip, range)` (a range like
 * `"192.168.1.0/24"`, or a list of them; see network.ts).
 */
export const SLUICE_FUNCTIONS: Record<string, { fn: Fn; signature: string; doc: string }> = {
  ...TIME_FUNCTIONS,
  inCidr: { fn: inCidr, signature: '<x(sa):b>', doc: 'whether an IP address is in a CIDR range (or any of a list)' },
};

/**
 * The functions JSONata itself defines (jsonata 2.x: its static frame, plus `$now` and `$millis`,
 * which each evaluation binds). A test checks this list against the installed jsonata.
 */
export const JSONATA_FUNCTIONS: readonly string[] = [
  'sum', 'count', 'max', 'min', 'average', 'string', 'substring', 'substringBefore', 'substringAfter',
  'lowercase', 'uppercase', 'length', 'trim', 'pad', 'match', 'contains', 'replace', 'split', 'join',
  'formatNumber', 'formatBase', 'formatInteger', 'parseInteger', 'number', 'floor', 'ceil', 'round',
  'abs', 'sqrt', 'power', 'random', 'boolean', 'not', 'map', 'zip', 'filter', 'single', 'reduce',
  'sift', 'keys', 'lookup', 'append', 'exists', 'spread', 'merge', 'reverse', 'each', 'error',
  'assert', 'type', 'sort', 'shuffle', 'distinct', 'encodeUrlComponent', 'encodeUrl',
  'decodeUrlComponent', 'decodeUrl', 'eval', 'toMillis', 'fromMillis', 'clone', 'now', 'millis',
];

/** A call of a function by name: `$hours(t)`, `$f(?, 2)`, or the right side of `x ~> $f`. */
export interface FunctionCall {
  /** Without the `$`. */
  name: string;
  /** 0-based offset of the `$` in the expression. */
  start: number;
  /** True when the call is the whole expression (`$sum(x)`, not `$round($sum(x))`). */
  whole: boolean;
}

/** The functions an expression calls by name, and the names it binds itself (`$f := ...`, lambda parameters, `@$v`, `#$i`). */
export interface FunctionNames {
  calls: FunctionCall[];
  bound: Set<string>;
}

/** The function calls and bound names of an expression; throws ExpressionSyntaxError when it does not parse. */
export function functionNames(source: string): FunctionNames {
  const ast = parseExpression(source).ast();
  const out: FunctionNames = { calls: [], bound: new Set() };
  collectNames(ast, ast, out);
  return out;
}

function collectNames(node: unknown, root: unknown, out: FunctionNames): void {
  if (Array.isArray(node)) {
    for (const item of node) collectNames(item, root, out);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const n = node as Record<string, unknown>;
  const variable = (v: unknown): { name: string; end: number } | undefined => {
    if (typeof v !== 'object' || v === null) return undefined;
    const { type, value, position } = v as Record<string, unknown>;
    return type === 'variable' && typeof value === 'string' && value !== '' && typeof position === 'number' ? { name: value, end: position } : undefined;
  };
  // JSONata positions a variable token at its end: `$hours` ends where the name does.
  const call = (v: { name: string; end: number }) => out.calls.push({ name: v.name, start: v.end - v.name.length - 1, whole: node === root });
  if (n.type === 'function' || n.type === 'partial') {
    const proc = variable(n.procedure);
    if (proc) call(proc);
  } else if (n.type === 'apply') {
    const rhs = variable(n.rhs);
    if (rhs) call(rhs);
  } else if (n.type === 'bind') {
    const lhs = variable(n.lhs);
    if (lhs) out.bound.add(lhs.name);
  } else if (n.type === 'lambda' && Array.isArray(n.arguments)) {
    for (const arg of n.arguments) {
      const param = variable(arg);
      if (param) out.bound.add(param.name);
    }
  }
  for (const key of ['focus', 'index'] as const) if (typeof n[key] === 'string') out.bound.add(n[key]);
  for (const value of Object.values(n)) collectNames(value, root, out);
}

interface AstNode {
  type: string;
  value?: unknown;
  steps?: AstNode[];
  [k: string]: unknown;
}

const PATH_EXTRAS = ['stages', 'predicate', 'group', 'focus', 'index', 'tuple', 'keepArray', 'keepSingletonArray', 'ancestor'];

/** Field names of a path made only of plain names (`a.b`), or undefined when the expression is anything more. */
function plainPath(ast: AstNode): string[] | undefined {
  const steps = ast.type === 'path' ? ast.steps : ast.type === 'name' ? [ast] : undefined;
  if (!steps || steps.length === 0) return undefined;
  if (PATH_EXTRAS.some((k) => k in ast)) return undefined;
  const names: string[] = [];
  for (const step of steps) {
    if (step.type !== 'name' || typeof step.value !== 'string') return undefined;
    if (PATH_EXTRAS.some((k) => k in step)) return undefined;
    names.push(step.value);
  }
  return names;
}

/** The names recordBindings binds: the only variables compiled expressions read. */
const BINDING_NAMES = ['meta', 'key', 'headers'] as const;

/** JSONata's parse; throws ExpressionSyntaxError with the character position on a syntax error. */
function parseExpression(source: string): jsonata.Expression {
  try {
    return jsonata(source);
  } catch (err) {
    const e = err as { message?: string; position?: number; code?: string };
    const position = typeof e.position === 'number' ? Math.max(0, e.position - 1) : 0;
    throw new ExpressionSyntaxError(e.message ?? String(err), source, position, e.code);
  }
}

/** Options of compileExpression. */
export interface CompileOptions {
  /** Further variables the caller binds per evaluation (a composed aggregate's results), without `$`. */
  variables?: readonly string[];
}

/** Compiles an expression; throws ExpressionSyntaxError with the character position on a syntax error. */
export function compileExpression(source: string, options: CompileOptions = {}): Expression {
  const compiled = parseExpression(source);
  for (const [name, { fn, signature }] of Object.entries(SLUICE_FUNCTIONS)) {
    compiled.registerFunction(name, fn, signature);
  }
  const ast = compiled.ast();
  const variables = options.variables ? [...BINDING_NAMES, ...options.variables] : BINDING_NAMES;
  const sync = compileSubset(ast, { variables, functions: TIME_FUNCTIONS });
  if (sync) {
    const evaluate = (input: unknown, bindings?: Record<string, unknown>): unknown => {
      const result = sync(input, bindings);
      return result === DEFER ? compiled.evaluate(input, bindings) : result;
    };
    // A plain path reads no binding: evaluateRecords leaves the bindings out for it.
    return { source, isPath: plainPath(ast as unknown as AstNode) !== undefined, isCompiled: true, evaluate };
  }
  return {
    source,
    isPath: false,
    isCompiled: false,
    evaluate: (input, bindings) => compiled.evaluate(input, bindings),
  };
}

/** The bindings every expression sees for a record. */
export function recordBindings(rec: StreamRecord): Record<string, unknown> {
  return { meta: rec.meta, key: rec.key, headers: rec.headers };
}

/**
 * How many JSONata evaluations run concurrently. jsonata 2.x allocates an environment and a chain
 * of promises per evaluation; starting a whole batch at once keeps all of them alive together and
 * measurably costs more garbage collection than waves of this size.
 */
const EVAL_WAVE = 64;

/**
 * Evaluates an expression over many records at once. Plain paths run synchronously; others run
 * concurrently (in waves of EVAL_WAVE), never as a chain of awaits. A record whose evaluation
 * throws yields EvalFailure.
 */
export function evaluateRecords(
  expr: Expression,
  records: readonly StreamRecord[],
  inputOf: (rec: StreamRecord) => unknown = (rec) => rec.value,
): unknown[] | Promise<unknown[]> {
  return evaluateFrom(expr, records, inputOf, new Array(records.length), 0);
}

function evaluateFrom(
  expr: Expression,
  records: readonly StreamRecord[],
  inputOf: (rec: StreamRecord) => unknown,
  out: unknown[],
  start: number,
): unknown[] | Promise<unknown[]> {
  let pending: Promise<void>[] | undefined;
  for (let i = start; i < records.length; i++) {
    const rec = records[i]!;
    let result: unknown;
    try {
      // A plain path reads no binding: skipping the per-record bindings object saves most of the
      // garbage of columns evaluated per batch (window keys and arguments, sink keys).
      result = expr.evaluate(inputOf(rec), expr.isPath ? undefined : recordBindings(rec));
    } catch (err) {
      out[i] = new EvalFailure(toError(err));
      continue;
    }
    if (result instanceof Promise) {
      (pending ??= []).push(
        result.then(
          (v) => {
            out[i] = v;
          },
          (err: unknown) => {
            out[i] = new EvalFailure(toError(err));
          },
        ),
      );
      if (pending.length === EVAL_WAVE && i + 1 < records.length) {
        const next = i + 1;
        return Promise.all(pending).then(() => evaluateFrom(expr, records, inputOf, out, next));
      }
    } else {
      out[i] = result;
    }
  }
  return pending ? Promise.all(pending).then(() => out) : out;
}

function toError(err: unknown): Error {
  if (err instanceof Error) return err;
  const e = err as { message?: string; code?: string };
  return new Error(e && typeof e.message === 'string' ? `${e.code ? e.code + ': ' : ''}${e.message}` : String(err));
}

/** JSONata's truthiness ($boolean): what a filter keeps. */
export function isTruthy(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) return v.some(isTruthy);
  switch (typeof v) {
    case 'boolean':
      return v;
    case 'number':
      return v !== 0;
    case 'string':
      return v.length > 0;
    case 'bigint':
      return v !== 0n;
    case 'function':
      return false;
    case 'object':
      return Object.keys(v as object).length > 0;
    default:
      return false;
  }
}
