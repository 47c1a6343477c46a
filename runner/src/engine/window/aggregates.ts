/**
 * Aggregates of a window step. An aggregate whose whole expression is one call to a built-in
 * (`$count()`, `$count(x)`, `$sum(x)`, `$average(x)`/`$avg(x)`, `$min(x)`, `$max(x)`,
 * `$countDistinct(x)`, `$first(x)`, `$last(x)`, `$collect(x)`) is computed incrementally: its
 * argument is evaluated per record and folded into an accumulator, so memory is O(groups).
 * So is a composition of built-ins (`$round($average(d), 1)`, `$sum(a) / $count()`,
 * `$max(t) - $min(t)`; see composition.ts): one accumulator per call, and the rest evaluated by
 * JSONata over their results when the window emits. Any other expression is evaluated when the
 * window emits, over the array of the group's record values, which are kept until then (at most
 * `max_rows` per group).
 *
 * SQL semantics: null and missing values are ignored by every built-in except `$count()`, which
 * counts records. Over no values, `$sum`, `$average`, `$min`, `$max`, `$first`, `$last` give null,
 * `$count(x)` and `$countDistinct(x)` give 0 and `$collect(x)` gives []. An argument that yields an
 * array (a JSONata sequence) contributes each element, as JSONata would over the whole group.
 * Sums of integers stay exact: a number while within 2^53, a bigint beyond.
 */
import jsonata from 'jsonata';
import { SluiceError } from '../errors.ts';
import { compileExpression, type Expression } from '../expression.ts';
import { planComposition } from './composition.ts';
import { decodeValue, encodeValue, type JsonValue } from './state-codec.ts';

export type BuiltinKind =
  | 'countRecords'
  | 'count'
  | 'sum'
  | 'average'
  | 'min'
  | 'max'
  | 'countDistinct'
  | 'first'
  | 'last'
  | 'collect';

/** One built-in call: what is folded per record. */
export interface BuiltinCall {
  builtin: BuiltinKind;
  argument?: Expression;
}

export type AggregatePlan =
  | ({ name: string; source: string; kind: 'builtin' } & BuiltinCall)
  | {
      name: string;
      source: string;
      kind: 'composed';
      /** The built-in calls, each computed incrementally. */
      leaves: BuiltinCall[];
      /** The rest of the expression, over the leaves' results bound to `variables`. */
      combine: Expression;
      variables: string[];
    }
  | { name: string; source: string; kind: 'expression'; expression: Expression };

const BUILTINS: Record<string, BuiltinKind> = {
  count: 'count',
  sum: 'sum',
  average: 'average',
  avg: 'average',
  min: 'min',
  max: 'max',
  countDistinct: 'countDistinct',
  first: 'first',
  last: 'last',
  collect: 'collect',
};

interface AstNode {
  type?: unknown;
  value?: unknown;
  arguments?: AstNode[];
  procedure?: AstNode;
  [k: string]: unknown;
}

/** The AST without token positions, to compare two parses of the same expression. */
function shape(node: unknown): string {
  return JSON.stringify(node, (k, v: unknown) => (k === 'position' ? undefined : v));
}

/**
 * Recognises `$fn(arg)` when it is the whole expression and `fn` is a built-in aggregate. Returns
 * the built-in and the argument's source text, or undefined for anything else.
 */
export function recognizeBuiltin(source: string): { builtin: BuiltinKind; argument?: string } | undefined {
  let ast: AstNode;
  try {
    ast = jsonata(source).ast() as unknown as AstNode;
  } catch {
    return undefined; // syntax errors are reported by compileExpression
  }
  const extraKeys = Object.keys(ast).filter((k) => ast[k] !== undefined && !['type', 'value', 'position', 'arguments', 'procedure'].includes(k));
  if (ast.type !== 'function' || extraKeys.length > 0) return undefined;
  const proc = ast.procedure;
  if (!proc || proc.type !== 'variable' || typeof proc.value !== 'string') return undefined;
  const builtin = BUILTINS[proc.value];
  const args = ast.arguments ?? [];
  if (!builtin || args.length > 1) return undefined;
  if (args.length === 0) return builtin === 'count' ? { builtin: 'countRecords' } : undefined;
  // The argument is the text between the call's `(` and its last `)`; a re-parse must give the
  // same tree, which guards against comments or anything else that fools the slicing.
  const open = typeof ast.position === 'number' ? ast.position : -1;
  const close = source.lastIndexOf(')');
  if (open < 0 || close <= open) return undefined;
  const argument = source.slice(open, close).trim();
  try {
    if (shape(jsonata(argument).ast()) !== shape(args[0])) return undefined;
  } catch {
    return undefined;
  }
  return { builtin, argument };
}

/** The built-in a call `$name(...)` with `argc` arguments stands for, if any. */
function builtinOfCall(name: string, argc: number): BuiltinKind | undefined {
  const builtin = BUILTINS[name];
  if (builtin === undefined) return undefined;
  if (argc === 1) return builtin;
  return argc === 0 && builtin === 'count' ? 'countRecords' : undefined;
}

function builtinCall(builtin: BuiltinKind, argument: string | undefined): BuiltinCall {
  return argument === undefined ? { builtin } : { builtin, argument: compileExpression(argument) };
}

/**
 * Offsets of the `$` of each built-in aggregate call of a composition (see composition.ts); none
 * when the aggregate is no composition. Validation takes sluice's own aggregates (`$avg`, `$first`,
 * `$countDistinct` ...), which JSONata lacks, there and as a whole expression only.
 */
export function compositionCallStarts(source: string): number[] {
  return planComposition(source, (fn, argc) => builtinOfCall(fn, argc) !== undefined)?.leaves.map((leaf) => leaf.start) ?? [];
}

/** Compiles one `aggregate:` entry. Throws ExpressionSyntaxError for bad JSONata. */
export function planAggregate(name: string, source: string): AggregatePlan {
  const expression = compileExpression(source);
  const recognized = recognizeBuiltin(source);
  if (recognized) return { name, source, kind: 'builtin', ...builtinCall(recognized.builtin, recognized.argument) };
  const composition = planComposition(source, (fn, argc) => builtinOfCall(fn, argc) !== undefined);
  if (!composition) return { name, source, kind: 'expression', expression };
  return {
    name,
    source,
    kind: 'composed',
    leaves: composition.leaves.map((leaf) => builtinCall(builtinOfCall(leaf.name, leaf.argument === undefined ? 0 : 1)!, leaf.argument)),
    combine: compileExpression(composition.residual, { variables: composition.variables }),
    variables: composition.variables,
  };
}

/* ------------------------------------------------------------ value checks */

function describeValue(v: unknown): string {
  if (typeof v === 'bigint') return `${v}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function checkEach(value: unknown, ok: (v: unknown) => boolean, expected: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) {
    for (const v of value) {
      const problem = checkEach(v, ok, expected);
      if (problem) return problem;
    }
    return undefined;
  }
  return ok(value) ? undefined : `expected ${expected}, got ${describeValue(value)}`;
}

const isNumeric = (v: unknown) => (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'bigint';
const isOrderable = (v: unknown) => isNumeric(v) || typeof v === 'string' || typeof v === 'boolean';

/** Why a record's argument value cannot feed this built-in, or undefined when it can. */
export function checkArgument(builtin: BuiltinKind, value: unknown): string | undefined {
  switch (builtin) {
    case 'sum':
    case 'average':
      return checkEach(value, isNumeric, 'a number');
    case 'min':
    case 'max':
      return checkEach(value, isOrderable, 'a number, string or boolean');
    default:
      return undefined;
  }
}

/* ------------------------------------------------------------ accumulators */

export interface Accumulator {
  /** Folds in one record's argument value (checked by checkArgument), its event time and arrival number. */
  add(value: unknown, time: number, seq: number): void;
  /** Folds in another accumulator of the same kind (session windows merging). */
  merge(other: Accumulator): void;
  result(): unknown;
  save(): JsonValue;
}

/** Calls `f` for each non-null value, flattening JSONata sequences. */
function forEachValue(value: unknown, f: (v: unknown) => void): void {
  if (value === null || value === undefined) return;
  if (Array.isArray(value)) {
    for (const v of value) forEachValue(v, f);
    return;
  }
  f(value);
}

class CountRecords implements Accumulator {
  n = 0;
  add(): void {
    this.n++;
  }
  merge(other: Accumulator): void {
    this.n += (other as CountRecords).n;
  }
  result(): number {
    return this.n;
  }
  save(): JsonValue {
    return this.n;
  }
}

class CountValues implements Accumulator {
  n = 0;
  add(value: unknown): void {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) forEachValue(value, () => this.n++);
    else this.n++;
  }
  merge(other: Accumulator): void {
    this.n += (other as CountValues).n;
  }
  result(): number {
    return this.n;
  }
  save(): JsonValue {
    return this.n;
  }
}

/** Exact integer part (number while safe, bigint beyond) plus a float part once a non-integer appears. */
export class NumericSum {
  count = 0;
  private int = 0;
  private big: bigint | undefined;
  private float = 0;
  private hasFloat = false;

  addNumber(v: number | bigint): void {
    this.count++;
    if (typeof v === 'bigint') {
      this.big = (this.big ?? 0n) + v;
    } else if (Number.isSafeInteger(v)) {
      const next = this.int + v;
      if (Number.isSafeInteger(next)) this.int = next;
      else {
        this.big = (this.big ?? 0n) + BigInt(this.int) + BigInt(v);
        this.int = 0;
      }
    } else {
      this.float += v;
      this.hasFloat = true;
    }
  }

  mergeFrom(o: NumericSum): void {
    this.count += o.count;
    if (o.big !== undefined) this.big = (this.big ?? 0n) + o.big;
    this.addSafeInt(o.int);
    this.float += o.float;
    this.hasFloat ||= o.hasFloat;
  }

  private addSafeInt(v: number): void {
    const next = this.int + v;
    if (Number.isSafeInteger(next)) this.int = next;
    else {
      this.big = (this.big ?? 0n) + BigInt(this.int) + BigInt(v);
      this.int = 0;
    }
  }

  /** The exact integer total, as a number when safe. */
  private integerTotal(): number | bigint {
    if (this.big === undefined) return this.int;
    const total = this.big + BigInt(this.int);
    return total >= BigInt(Number.MIN_SAFE_INTEGER) && total <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(total) : total;
  }

  total(): number | bigint | null {
    if (this.count === 0) return null;
    const ints = this.integerTotal();
    return this.hasFloat ? this.float + Number(ints) : ints;
  }

  average(): number | null {
    if (this.count === 0) return null;
    const ints = this.integerTotal();
    return (this.float + Number(ints)) / this.count;
  }

  save(): JsonValue {
    return { count: this.count, int: this.int, big: this.big === undefined ? null : this.big.toString(), float: this.float, hasFloat: this.hasFloat };
  }

  static load(json: unknown): NumericSum {
    const s = new NumericSum();
    const o = asRecord(json);
    s.count = asNumber(o.count);
    s.int = asNumber(o.int);
    s.big = typeof o.big === 'string' ? BigInt(o.big) : undefined;
    s.float = asNumber(o.float);
    s.hasFloat = o.hasFloat === true;
    return s;
  }
}

class Sum implements Accumulator {
  constructor(readonly sum = new NumericSum()) {}
  add(value: unknown): void {
    forEachValue(value, (v) => this.sum.addNumber(v as number | bigint));
  }
  merge(other: Accumulator): void {
    this.sum.mergeFrom((other as Sum).sum);
  }
  result(): unknown {
    return this.sum.total();
  }
  save(): JsonValue {
    return this.sum.save();
  }
}

class Average extends Sum {
  override result(): unknown {
    return this.sum.average();
  }
}

const TYPE_RANK: Record<string, number> = { boolean: 0, number: 1, bigint: 1, string: 2 };

/** Orders min/max candidates: booleans < numbers < strings; numbers (and bigints) numerically. */
export function compareOrderable(a: unknown, b: unknown): number {
  const ra = TYPE_RANK[typeof a] ?? 3;
  const rb = TYPE_RANK[typeof b] ?? 3;
  if (ra !== rb) return ra - rb;
  const x = a as number | bigint | string | boolean;
  const y = b as number | bigint | string | boolean;
  return x < y ? -1 : x > y ? 1 : 0;
}

class Extreme implements Accumulator {
  best: unknown = undefined;
  constructor(readonly sign: 1 | -1) {}
  add(value: unknown): void {
    forEachValue(value, (v) => this.offer(v));
  }
  private offer(v: unknown): void {
    if (this.best === undefined || this.sign * compareOrderable(v, this.best) > 0) this.best = v;
  }
  merge(other: Accumulator): void {
    const o = (other as Extreme).best;
    if (o !== undefined) this.offer(o);
  }
  result(): unknown {
    return this.best === undefined ? null : this.best;
  }
  save(): JsonValue {
    return this.best === undefined ? null : encodeValue(this.best);
  }
}

/** A key equal for equal values: 1 and 1n count once, "1" and 1 twice. */
export function distinctKey(v: unknown): string {
  switch (typeof v) {
    case 'number':
    case 'bigint':
      return `n${v}`;
    case 'string':
      return `s${v}`;
    case 'boolean':
      return `b${v}`;
    default:
      return `j${JSON.stringify(encodeValue(v))}`;
  }
}

class CountDistinct implements Accumulator {
  readonly seen = new Set<string>();
  add(value: unknown): void {
    forEachValue(value, (v) => this.seen.add(distinctKey(v)));
  }
  merge(other: Accumulator): void {
    for (const k of (other as CountDistinct).seen) this.seen.add(k);
  }
  result(): number {
    return this.seen.size;
  }
  save(): JsonValue {
    return [...this.seen];
  }
}

/** First or last value by event time; ties go to the earlier (first) or later (last) arrival. */
class ByTime implements Accumulator {
  has = false;
  value: unknown = null;
  time = 0;
  seq = 0;
  constructor(readonly which: 'first' | 'last') {}
  add(value: unknown, time: number, seq: number): void {
    forEachValue(value, (v) => this.offer(v, time, seq));
  }
  private offer(v: unknown, time: number, seq: number): void {
    const better =
      !this.has ||
      (this.which === 'first'
        ? time < this.time || (time === this.time && seq < this.seq)
        : time > this.time || (time === this.time && seq >= this.seq));
    if (better) {
      this.has = true;
      this.value = v;
      this.time = time;
      this.seq = seq;
    }
  }
  merge(other: Accumulator): void {
    const o = other as ByTime;
    if (o.has) this.offer(o.value, o.time, o.seq);
  }
  result(): unknown {
    return this.has ? this.value : null;
  }
  save(): JsonValue {
    return this.has ? { value: encodeValue(this.value), time: this.time, seq: this.seq } : null;
  }
}

/** Values in arrival order; merging two keeps arrival order. */
class Collect implements Accumulator {
  values: unknown[] = [];
  seqs: number[] = [];
  add(value: unknown, _time: number, seq: number): void {
    forEachValue(value, (v) => {
      this.values.push(v);
      this.seqs.push(seq);
    });
  }
  merge(other: Accumulator): void {
    const o = other as Collect;
    const merged = mergeBySeq(this.values, this.seqs, o.values, o.seqs);
    this.values = merged.values;
    this.seqs = merged.seqs;
  }
  result(): unknown[] {
    return this.values.slice();
  }
  save(): JsonValue {
    return { values: this.values.map(encodeValue), seqs: [...this.seqs] };
  }
}

/**
 * The accumulators of a composed aggregate, one per built-in call. `add` takes one argument value
 * per call (undefined for `$count()`), each checked by checkArgument.
 */
export class ComposedAccumulator implements Accumulator {
  constructor(readonly leaves: Accumulator[]) {}

  add(values: unknown, time: number, seq: number): void {
    if (!Array.isArray(values) || values.length !== this.leaves.length) {
      throw new TypeError(`a composed aggregate takes ${this.leaves.length} argument values per record`);
    }
    for (let i = 0; i < this.leaves.length; i++) this.leaves[i]!.add(values[i], time, seq);
  }

  merge(other: Accumulator): void {
    const o = other as ComposedAccumulator;
    for (let i = 0; i < this.leaves.length; i++) this.leaves[i]!.merge(o.leaves[i]!);
  }

  /**
   * Each call's result as JSONata's own function gives it over the group, to bind for the rest of
   * the expression: nothing (undefined, not null) where a built-in found no values, as `$sum` of
   * an empty sequence is; a bigint sum as a number, since JSONata's arithmetic is on doubles.
   */
  result(): unknown[] {
    return this.leaves.map((acc) => {
      const r = acc.result();
      if (r === null) return undefined;
      return typeof r === 'bigint' ? Number(r) : r;
    });
  }

  save(): JsonValue {
    return { leaves: this.leaves.map((acc) => acc.save()) };
  }
}

/** A composed aggregate's built-in results (from its accumulator's `result()`) bound to its variables. */
export function composedBindings(variables: readonly string[], results: readonly unknown[]): Record<string, unknown> {
  const bindings: Record<string, unknown> = {};
  for (let i = 0; i < variables.length; i++) bindings[variables[i]!] = results[i];
  return bindings;
}

export function createComposedAccumulator(leaves: readonly BuiltinCall[]): ComposedAccumulator {
  return new ComposedAccumulator(leaves.map((leaf) => createAccumulator(leaf.builtin)));
}

/** Rebuilds a composed accumulator from what its `save()` returned. Throws StateFormatError on malformed state. */
export function loadComposedAccumulator(leaves: readonly BuiltinCall[], json: unknown): ComposedAccumulator {
  const saved = asArray(asRecord(json).leaves);
  if (saved.length !== leaves.length) throw new StateFormatError(`a composed aggregate saved ${saved.length} accumulators, expected ${leaves.length}`);
  return new ComposedAccumulator(leaves.map((leaf, i) => loadAccumulator(leaf.builtin, saved[i])));
}

/**
 * A composed aggregate's accumulator folded from kept record values: how state saved by a sluice
 * that kept records for it (before compositions were incremental) is restored. Arguments are
 * evaluated as that sluice evaluated them, over the values alone (no `$meta`); a record whose
 * argument fails or has the wrong type is left out, as the live path sends it to the errors port.
 * Kept records carry no event time, so `$first`/`$last` go by arrival. An argument that only the
 * asynchronous interpreter can evaluate cannot be folded during a restore: StateFormatError.
 */
export function foldComposedRows(plan: { name: string; leaves: readonly BuiltinCall[] }, rows: readonly unknown[], seqs: readonly number[], where?: string): ComposedAccumulator {
  const acc = createComposedAccumulator(plan.leaves);
  const values: unknown[] = new Array(plan.leaves.length);
  rows: for (let r = 0; r < rows.length; r++) {
    for (let l = 0; l < plan.leaves.length; l++) {
      const leaf = plan.leaves[l]!;
      if (!leaf.argument) {
        values[l] = undefined;
        continue;
      }
      let v: unknown;
      try {
        v = leaf.argument.evaluate(rows[r]);
      } catch {
        continue rows;
      }
      if (v instanceof Promise) {
        void v.catch(() => undefined);
        throw new StateFormatError(
          `window state: aggregate \`${plan.name}\` was stored as kept records by an earlier sluice, and its argument \`${leaf.argument.source}\` cannot be re-evaluated during a restore; run with --reset-state`,
          where,
        );
      }
      if (checkArgument(leaf.builtin, v) !== undefined) continue rows;
      values[l] = v;
    }
    acc.add(values, 0, seqs[r] ?? 0);
  }
  return acc;
}

/** Merges two arrival-ordered lists into one. */
export function mergeBySeq<T>(a: T[], aSeq: number[], b: T[], bSeq: number[]): { values: T[]; seqs: number[] } {
  const values: T[] = [];
  const seqs: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && aSeq[i]! <= bSeq[j]!)) {
      values.push(a[i]!);
      seqs.push(aSeq[i++]!);
    } else {
      values.push(b[j]!);
      seqs.push(bSeq[j++]!);
    }
  }
  return { values, seqs };
}

export function createAccumulator(builtin: BuiltinKind): Accumulator {
  switch (builtin) {
    case 'countRecords':
      return new CountRecords();
    case 'count':
      return new CountValues();
    case 'sum':
      return new Sum();
    case 'average':
      return new Average();
    case 'min':
      return new Extreme(-1);
    case 'max':
      return new Extreme(1);
    case 'countDistinct':
      return new CountDistinct();
    case 'first':
      return new ByTime('first');
    case 'last':
      return new ByTime('last');
    case 'collect':
      return new Collect();
  }
}

/** Rebuilds an accumulator from what its `save()` returned. Throws on malformed state. */
export function loadAccumulator(builtin: BuiltinKind, json: unknown): Accumulator {
  const acc = createAccumulator(builtin);
  if (acc instanceof CountRecords || acc instanceof CountValues) acc.n = asNumber(json);
  else if (acc instanceof Sum) return builtin === 'average' ? new Average(NumericSum.load(json)) : new Sum(NumericSum.load(json));
  else if (acc instanceof Extreme) acc.best = json === null ? undefined : decodeValue(json);
  else if (acc instanceof CountDistinct) for (const k of asArray(json)) acc.seen.add(String(k));
  else if (acc instanceof ByTime) {
    if (json !== null) {
      const o = asRecord(json);
      acc.has = true;
      acc.value = decodeValue(o.value);
      acc.time = asNumber(o.time);
      acc.seq = asNumber(o.seq);
    }
  } else if (acc instanceof Collect) {
    const o = asRecord(json);
    acc.values = asArray(o.values).map(decodeValue);
    acc.seqs = asArray(o.seqs).map(asNumber);
  }
  return acc;
}

/** A snapshot handed to `restore` that this version cannot read. */
export class StateFormatError extends SluiceError {
  constructor(message: string, where?: string) {
    super('E_WINDOW_STATE', message, where);
  }
}

function asRecord(v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new StateFormatError(`expected an object in window state, got ${describeValue(v)}`);
  return v as Record<string, unknown>;
}
function asArray(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new StateFormatError(`expected an array in window state, got ${describeValue(v)}`);
  return v;
}
function asNumber(v: unknown): number {
  if (typeof v !== 'number') throw new StateFormatError(`expected a number in window state, got ${describeValue(v)}`);
  return v;
}
