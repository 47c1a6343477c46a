/**
 * Compiles a subset of JSONata (the AST from `jsonata(src).ast()`) to synchronous JavaScript
 * closures. jsonata 2.x evaluates every expression asynchronously: an environment and a chain of
 * promises per call, 4-8 us and much garbage even for `$meta.op = "c"`. Most expressions in specs
 * are small comparisons, conditions and casts over plain fields, which need none of that.
 *
 * Exact JSONata semantics or nothing: a closure handles only values whose JSONata result is
 * certain (undefined, null, booleans, finite numbers, strings, objects that are not arrays). On
 * anything else (an array anywhere, a non-finite number, a value JSONata would reject with an
 * error) it returns DEFER, and the caller evaluates the same input with the reference interpreter,
 * which then gives the exact result or error. Expressions outside the subset are not compiled.
 *
 * The subset: plain field paths (on the input, `$`, or a binding variable); string, number,
 * boolean and null literals; `= != < <= > >= and or + - * / % &`; `in` a list of literals; unary
 * minus; `? :`; a block of one expression; and calls of the pure built-ins in BUILTINS or of host
 * functions given with their JSONata signatures (sluice's time functions).
 *
 * The built-in bodies below follow jsonata 2.x's own (MIT licence, IBM) line by line, for values
 * of the types they are given here.
 */

/** What a compiled expression returns when this evaluation must go to the reference interpreter. */
export const DEFER: unique symbol = Symbol('evaluate with the JSONata interpreter');

type Bindings = Readonly<Record<string, unknown>> | null | undefined;

/** A compiled expression: the JSONata result for this input and bindings, or DEFER. */
export type SyncEvaluator = (input: unknown, bindings?: Bindings) => unknown;

type Fn = (...args: unknown[]) => unknown;

/** A function JSONata was given with `registerFunction(name, fn, signature)`; it must be pure and ignore `this`. */
export interface HostFunction {
  readonly fn: Fn;
  readonly signature: string;
}

export interface SubsetOptions {
  /** Variables the caller binds per evaluation (`meta` for `$meta`). Others are not compiled. */
  readonly variables: readonly string[];
  /** Functions registered on the expression, by name without `$`. They shadow built-ins, as in JSONata. */
  readonly functions?: Readonly<Record<string, HostFunction>>;
}

/** Thrown inside a closure, caught by the root: this evaluation needs the interpreter. */
const DEFERRAL = { reason: 'defer to JSONata' } as const;

function defer(): never {
  throw DEFERRAL;
}

type Node = (input: unknown, bindings: Bindings) => unknown;

const hasOwn = Object.prototype.hasOwnProperty;
const isEnumerableOwn = Object.prototype.propertyIsEnumerable;

// ---------------------------------------------------------------------------------------------
// Values

/**
 * A value read from data or returned by a host function, if its JSONata handling is certain here.
 * Arrays (JSONata maps over them and flattens sequences), non-finite numbers (JSONata throws D1001
 * where it meets them), functions and symbols defer. Bigints (exact Debezium integers) pass: a
 * path returns them as they are, `=`, `in`, `$exists` and `$type` treat them as JSONata does, and
 * everything else defers on them (symbolOf, toBoolean, toJsonataString, the operators).
 */
function admit(v: unknown): unknown {
  switch (typeof v) {
    case 'undefined':
    case 'string':
    case 'boolean':
    case 'bigint':
      return v;
    case 'number':
      return Number.isFinite(v) ? v : defer();
    case 'object':
      return v === null || !Array.isArray(v) ? v : defer();
    default:
      return defer();
  }
}

/** JSONata's isFunction: lambdas and built-ins are objects carrying these marks. */
function isJsonataFunction(v: unknown): boolean {
  if (typeof v === 'function') return true;
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { _jsonata_function?: unknown; _jsonata_lambda?: unknown };
  return o._jsonata_function === true || o._jsonata_lambda === true;
}

/** JSONata's lookup of one field: own fields of objects only; nothing on primitives. */
function lookupField(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined;
  if (Array.isArray(obj)) return defer();
  if (!hasOwn.call(obj, key) || isJsonataFunction(obj)) return undefined;
  return (obj as Record<string, unknown>)[key];
}

/** JSONata's `$boolean` (and the cast `and`, `or`, `? :` apply) of an admitted value. */
function toBoolean(v: unknown): boolean | undefined {
  switch (typeof v) {
    case 'undefined':
      return undefined;
    case 'string':
      return v.length > 0;
    case 'number':
      return v !== 0;
    case 'boolean':
      return v;
    case 'object':
      return v !== null && !isJsonataFunction(v) && Object.keys(v).length > 0;
    default:
      return defer();
  }
}

/** JSONata's deep equality (isDeepEqual): arrays by position, objects by own property names. */
function deepEqual(lhs: unknown, rhs: unknown): boolean {
  if (lhs === rhs) return true;
  if (typeof lhs !== 'object' || typeof rhs !== 'object' || lhs === null || rhs === null) return false;
  if (Array.isArray(lhs) && Array.isArray(rhs)) {
    if (lhs.length !== rhs.length) return false;
    for (let i = 0; i < lhs.length; i++) if (!deepEqual(lhs[i], rhs[i])) return false;
    return true;
  }
  const lkeys = Object.getOwnPropertyNames(lhs).sort();
  const rkeys = Object.getOwnPropertyNames(rhs).sort();
  if (lkeys.length !== rkeys.length) return false;
  for (let i = 0; i < lkeys.length; i++) if (lkeys[i] !== rkeys[i]) return false;
  for (const key of lkeys) {
    if (!deepEqual((lhs as Record<string, unknown>)[key], (rhs as Record<string, unknown>)[key])) return false;
  }
  return true;
}

/** JSONata's `$string` of an admitted value; DEFER where JSONata would throw (e.g. a nested Infinity). */
function toJsonataString(v: unknown, prettify: unknown = false): string | undefined {
  switch (typeof v) {
    case 'undefined':
      return undefined;
    case 'string':
      return v;
    case 'number':
      // Only finite numbers are admitted; JSONata writes non-integers with 15 significant digits.
      return Number.isInteger(v) ? JSON.stringify(v) : JSON.stringify(Number(v.toPrecision(15)));
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return defer(); // JSON.stringify throws a TypeError
    default:
      break;
  }
  if (v === null) return 'null';
  if (isJsonataFunction(v)) return '';
  try {
    return JSON.stringify(v, stringifyReplacer, prettify ? 2 : 0);
  } catch {
    return defer();
  }
}

function stringifyReplacer(_key: string, val: unknown): unknown {
  if (typeof val === 'number') {
    if (!Number.isFinite(val)) {
      if (Number.isNaN(val)) return val;
      throw DEFERRAL; // JSONata: D1001
    }
    return Number.isInteger(val) ? val : Number(val.toPrecision(15));
  }
  return val && isJsonataFunction(val) ? '' : val;
}

function codePoints(str: string): string[] {
  const arr: string[] = [];
  for (const ch of str) arr.push(ch);
  return arr;
}

/** Characters as JSONata counts them: code points, so an emoji is one. */
function codePointCount(str: string): number {
  let n = 0;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    // A high surrogate followed by a low one is one code point; a lone surrogate counts alone.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
      const d = str.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** JSONata's `$number` (strings: decimal, or 0x/0o/0b with its original regex's quirks). */
function toJsonataNumber(arg: unknown): unknown {
  if (arg === undefined) return undefined;
  if (typeof arg === 'number') return arg;
  if (typeof arg === 'string' && /^-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?$/.test(arg) && !isNaN(parseFloat(arg)) && isFinite(Number(arg))) {
    return parseFloat(arg);
  }
  if (typeof arg === 'string' && /^(0[xX][0-9A-Fa-f]+)|(0[oO][0-7]+)|(0[bB][0-1]+)$/.test(arg)) return Number(arg);
  if (arg === true) return 1;
  if (arg === false) return 0;
  return defer(); // JSONata: D3030
}

/** JSONata's `$round`: half to even, with precision shifted through the decimal exponent. */
function roundHalfEven(arg: number, precision: number | undefined): number {
  let value: string[] | undefined;
  let x = arg;
  if (precision) {
    value = x.toString().split('e');
    x = +(value[0] + 'e' + (value[1] ? +value[1] + precision : precision));
  }
  let result = Math.round(x);
  const diff = result - x;
  if (Math.abs(diff) === 0.5 && Math.abs(result % 2) === 1) result = result - 1;
  if (precision) {
    value = result.toString().split('e');
    result = +(value[0] + 'e' + (value[1] ? +value[1] - precision : -precision));
  }
  if (Object.is(result, -0)) result = 0;
  return result;
}

function substring(str: string, startArg: unknown, length: unknown): string {
  const chars = codePoints(str);
  const strLength = chars.length;
  // An undefined start (a missing field) is what JSONata passes to slice(): it means 0.
  let start = startArg as number;
  if (strLength + start < 0) start = 0;
  if (length !== undefined) {
    const len = length as number;
    if (len <= 0) return '';
    const end = start >= 0 ? start + len : strLength + start + len;
    return chars.slice(start, end).join('');
  }
  return chars.slice(start).join('');
}

// ---------------------------------------------------------------------------------------------
// Function signatures

/** Type symbols of JSONata signatures: s n b l o (and m for a missing value). */
type SignatureSymbol = 's' | 'n' | 'b' | 'l' | 'o' | 'm';

interface Param {
  /** Symbols this parameter accepts; always includes 'm'. */
  readonly accepts: ReadonlySet<SignatureSymbol>;
  /** May be omitted (`?`). */
  readonly optional: boolean;
}

const ALL_JSON: readonly SignatureSymbol[] = ['s', 'n', 'b', 'l', 'o', 'm'];

/**
 * The parameters of a simple JSONata signature (`<(sn)-s?:n>`), or undefined when it uses what
 * the subset does not check (arrays, functions, `+`, type parameters).
 */
export function parseSimpleSignature(signature: string): Param[] | undefined {
  const m = /^<([^:>]*)(?::[^>]*)?>$/.exec(signature);
  if (!m) return undefined;
  const body = m[1]!;
  const params: { accepts: Set<SignatureSymbol>; optional: boolean }[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '-' || c === '?') {
      const last = params[params.length - 1];
      if (!last) return undefined;
      // `-`: the context stands in for an omitted argument. Calls that omit it are not compiled
      // (callFitsPositionally), so such a parameter counts as required here.
      if (c === '?') last.optional = true;
      continue;
    }
    let symbols: string;
    if (c === '(') {
      const end = body.indexOf(')', i);
      if (end < 0) return undefined;
      symbols = body.slice(i + 1, end);
      i = end;
    } else {
      symbols = c;
    }
    const accepts = new Set<SignatureSymbol>(['m']);
    for (const s of symbols) {
      if (s === 'x' || s === 'j') ALL_JSON.forEach((t) => accepts.add(t));
      else if (s === 's' || s === 'n' || s === 'b' || s === 'l' || s === 'o') accepts.add(s);
      // A function in a choice (`$contains`'s `(sf)`): a function argument defers at run time.
      else if (s === 'f' && symbols.length > 1) continue;
      else return undefined; // a, f, +, <...>: not in the subset
    }
    params.push({ accepts, optional: false });
  }
  return params;
}

/** JSONata's signature symbol of an admitted value. */
function symbolOf(v: unknown): SignatureSymbol {
  switch (typeof v) {
    case 'string':
      return 's';
    case 'number':
      return 'n';
    case 'boolean':
      return 'b';
    case 'undefined':
      return 'm';
    case 'bigint':
      return defer(); // JSONata calls it 'm' (missing) and hands it on: not something to guess
    default:
      if (v === null) return 'l';
      return isJsonataFunction(v) ? defer() : 'o';
  }
}

/**
 * Whether a call with `argCount` arguments matches the parameters one to one. Then, if every
 * argument's type is one its parameter accepts, JSONata's signature regex matches positionally
 * too (its groups are greedy) and no context value is substituted. Otherwise it may shift
 * arguments or take the context: not compiled.
 */
function callFitsPositionally(params: readonly Param[], argCount: number): boolean {
  if (argCount > params.length) return false;
  for (let i = argCount; i < params.length; i++) if (!params[i]!.optional) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Built-ins

interface Builtin {
  readonly signature: string;
  /** Receives arguments already checked against the signature (and admitted). */
  readonly impl: Fn;
}

const str = (v: unknown) => v as string;
const num = (v: unknown) => v as number;

/** The pure JSONata built-ins compiled here, with jsonata 2.x's signatures. */
const BUILTINS: Readonly<Record<string, Builtin>> = {
  string: { signature: '<x-b?:s>', impl: (v, prettify) => toJsonataString(v, prettify) },
  number: { signature: '<(nsb)-:n>', impl: (v) => toJsonataNumber(v) },
  boolean: { signature: '<x-:b>', impl: (v) => toBoolean(v) },
  not: { signature: '<x-:b>', impl: (v) => (v === undefined ? undefined : !toBoolean(v)) },
  exists: { signature: '<x:b>', impl: (v) => v !== undefined },
  type: {
    signature: '<x:s>',
    impl: (v) => {
      if (v === undefined) return undefined;
      if (v === null) return 'null';
      const t = typeof v;
      if (t === 'number' || t === 'string' || t === 'boolean') return t;
      return isJsonataFunction(v) ? 'function' : 'object';
    },
  },
  length: { signature: '<s-:n>', impl: (v) => (v === undefined ? undefined : codePointCount(str(v))) },
  uppercase: { signature: '<s-:s>', impl: (v) => (v === undefined ? undefined : str(v).toUpperCase()) },
  lowercase: { signature: '<s-:s>', impl: (v) => (v === undefined ? undefined : str(v).toLowerCase()) },
  substring: { signature: '<s-nn?:s>', impl: (v, start, length) => (v === undefined ? undefined : substring(str(v), start, length)) },
  contains: {
    signature: '<s-(sf):b>',
    impl: (v, token) => (v === undefined || token === undefined ? undefined : str(v).indexOf(str(token)) !== -1),
  },
  round: { signature: '<n-n?:n>', impl: (v, precision) => (v === undefined ? undefined : roundHalfEven(num(v), precision as number | undefined)) },
  floor: { signature: '<n-:n>', impl: (v) => (v === undefined ? undefined : Math.floor(num(v))) },
  ceil: { signature: '<n-:n>', impl: (v) => (v === undefined ? undefined : Math.ceil(num(v))) },
  abs: { signature: '<n-:n>', impl: (v) => (v === undefined ? undefined : Math.abs(num(v))) },
};

// ---------------------------------------------------------------------------------------------
// AST

/** The AST fields each node type may have in the subset; any other field (a predicate, a group, ...) means "not compiled". */
const ALLOWED_FIELDS: Readonly<Record<string, readonly string[]>> = {
  path: ['type', 'steps', 'position'],
  name: ['type', 'value', 'position'],
  variable: ['type', 'value', 'position'],
  string: ['type', 'value', 'position'],
  number: ['type', 'value', 'position'],
  value: ['type', 'value', 'position'],
  binary: ['type', 'value', 'position', 'lhs', 'rhs'],
  unary: ['type', 'value', 'position', 'expression', 'expressions'],
  condition: ['type', 'position', 'condition', 'then', 'else'],
  block: ['type', 'position', 'expressions'],
  function: ['type', 'value', 'position', 'arguments', 'procedure'],
};

interface AstNode {
  readonly type: string;
  readonly [field: string]: unknown;
}

function asNode(v: unknown): AstNode | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const type = (v as { type?: unknown }).type;
  if (typeof type !== 'string') return undefined;
  const allowed = hasOwn.call(ALLOWED_FIELDS, type) ? ALLOWED_FIELDS[type] : undefined;
  if (!allowed) return undefined;
  // The parser leaves some fields present but undefined (`name` on calls): those are absent.
  for (const [field, value] of Object.entries(v)) if (value !== undefined && !allowed.includes(field)) return undefined;
  return v as AstNode;
}

function asNodes(v: unknown): AstNode[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const nodes: AstNode[] = [];
  for (const item of v) {
    const node = asNode(item);
    if (!node) return undefined;
    nodes.push(node);
  }
  return nodes;
}

class Compiler {
  private readonly variables: ReadonlySet<string>;
  private readonly functions: Readonly<Record<string, HostFunction>>;

  constructor(options: SubsetOptions) {
    this.variables = new Set(options.variables);
    this.functions = options.functions ?? {};
  }

  compile(v: unknown): Node | undefined {
    const node = asNode(v);
    if (!node) return undefined;
    switch (node.type) {
      case 'string':
      case 'number':
      case 'value': {
        const value = literalValue(node);
        return value === NOT_LITERAL ? undefined : constant(value);
      }
      case 'variable':
        return this.variable(node);
      case 'path':
        return this.path(node);
      case 'binary':
        return this.binary(node);
      case 'unary':
        return this.unary(node);
      case 'condition':
        return this.condition(node);
      case 'block': {
        const expressions = asNodes(node.expressions);
        return expressions && expressions.length === 1 ? this.compile(expressions[0]) : undefined;
      }
      case 'function':
        return this.call(node);
      default:
        return undefined;
    }
  }

  /** `$` (the input) or a bound variable, read as JSONata's environment would. */
  private variable(node: AstNode): Node | undefined {
    const name = node.value;
    if (name === '') return (input) => admit(input);
    if (typeof name !== 'string' || !this.variables.has(name)) return undefined;
    // Bindings are enumerable own fields (JSONata binds Object.keys(bindings)); unbound -> undefined.
    return (_input, bindings) => (bindings != null && isEnumerableOwn.call(bindings, name) ? admit(bindings[name]) : undefined);
  }

  private path(node: AstNode): Node | undefined {
    const steps = asNodes(node.steps);
    if (!steps || steps.length === 0) return undefined;
    const first = steps[0]!;
    let start: Node;
    let names: AstNode[];
    if (first.type === 'variable') {
      const v = this.variable(first);
      if (!v) return undefined;
      start = v;
      names = steps.slice(1);
    } else {
      start = (input) => input;
      names = steps;
    }
    const keys: string[] = [];
    for (const step of names) {
      if (step.type !== 'name' || typeof step.value !== 'string') return undefined;
      keys.push(step.value);
    }
    return fieldPath(start, keys);
  }

  private binary(node: AstNode): Node | undefined {
    if (node.value === 'in') return this.membership(node);
    const lhs = this.compile(node.lhs);
    const rhs = this.compile(node.rhs);
    if (!lhs || !rhs) return undefined;
    switch (node.value) {
      case '=':
        return (i, b) => {
          const l = lhs(i, b);
          const r = rhs(i, b);
          return l === undefined || r === undefined ? false : deepEqual(l, r);
        };
      case '!=':
        return (i, b) => {
          const l = lhs(i, b);
          const r = rhs(i, b);
          return l === undefined || r === undefined ? false : !deepEqual(l, r);
        };
      case '<':
        return comparison(lhs, rhs, (l, r) => l < r);
      case '<=':
        return comparison(lhs, rhs, (l, r) => l <= r);
      case '>':
        return comparison(lhs, rhs, (l, r) => l > r);
      case '>=':
        return comparison(lhs, rhs, (l, r) => l >= r);
      case '+':
        return arithmetic(lhs, rhs, (l, r) => l + r);
      case '-':
        return arithmetic(lhs, rhs, (l, r) => l - r);
      case '*':
        return arithmetic(lhs, rhs, (l, r) => l * r);
      case '/':
        return arithmetic(lhs, rhs, (l, r) => l / r);
      case '%':
        return arithmetic(lhs, rhs, (l, r) => l % r);
      case 'and':
        // The right side runs only when it decides the result, as in JSONata.
        return (i, b) => toBoolean(lhs(i, b)) === true && toBoolean(rhs(i, b)) === true;
      case 'or':
        return (i, b) => toBoolean(lhs(i, b)) === true || toBoolean(rhs(i, b)) === true;
      case '&':
        return (i, b) => {
          const l = lhs(i, b);
          const r = rhs(i, b);
          return (l === undefined ? '' : toJsonataString(l)!) + (r === undefined ? '' : toJsonataString(r)!);
        };
      default:
        return undefined;
    }
  }

  /**
   * `x in ["a", "b"]` (or `x in "a"`) against literals only: JSONata compares with `===`, and
   * a missing `x` is in nothing. Any other right side (a path, a nested array) is not compiled.
   */
  private membership(node: AstNode): Node | undefined {
    const lhs = this.compile(node.lhs);
    const rhs = asNode(node.rhs);
    if (!lhs || !rhs) return undefined;
    let items: AstNode[] | undefined;
    if (rhs.type === 'unary' && rhs.value === '[') items = asNodes(rhs.expressions);
    else items = [rhs];
    if (!items) return undefined;
    const list: unknown[] = [];
    for (const item of items) {
      const literal = literalValue(item);
      if (literal === NOT_LITERAL) return undefined;
      list.push(literal);
    }
    return (i, b) => {
      const v = lhs(i, b);
      if (v === undefined) return false;
      for (let k = 0; k < list.length; k++) if (list[k] === v) return true;
      return false;
    };
  }

  private unary(node: AstNode): Node | undefined {
    if (node.value !== '-') return undefined; // `[` and `{` constructors
    const operand = this.compile(node.expression);
    if (!operand) return undefined;
    return (i, b) => {
      const v = operand(i, b);
      if (v === undefined) return undefined;
      return typeof v === 'number' ? -v : defer(); // JSONata: D1002
    };
  }

  private condition(node: AstNode): Node | undefined {
    const test = this.compile(node.condition);
    const then = this.compile(node.then);
    if (!test || !then) return undefined;
    if (node.else === undefined) return (i, b) => (toBoolean(test(i, b)) ? then(i, b) : undefined);
    const otherwise = this.compile(node.else);
    if (!otherwise) return undefined;
    return (i, b) => (toBoolean(test(i, b)) ? then(i, b) : otherwise(i, b));
  }

  private call(node: AstNode): Node | undefined {
    const procedure = asNode(node.procedure);
    const args = asNodes(node.arguments);
    if (!procedure || procedure.type !== 'variable' || typeof procedure.value !== 'string' || !args) return undefined;
    const name = procedure.value;
    // JSONata looks names up innermost first: bindings, then registered functions, then built-ins.
    if (this.variables.has(name)) return undefined;
    const host = hasOwn.call(this.functions, name) ? this.functions[name] : undefined;
    const builtin = host ? undefined : hasOwn.call(BUILTINS, name) ? BUILTINS[name] : undefined;
    const signature = host?.signature ?? builtin?.signature;
    if (signature === undefined) return undefined;
    const params = parseSimpleSignature(signature);
    if (!params || !callFitsPositionally(params, args.length)) return undefined;
    const compiledArgs: Node[] = [];
    for (const arg of args) {
      const c = this.compile(arg);
      if (!c) return undefined;
      compiledArgs.push(c);
    }
    const impl: Fn = host ? hostCall(host.fn) : builtin!.impl;
    return functionCall(name, impl, params, compiledArgs);
  }
}

const NOT_LITERAL = Symbol('not a literal');

/** The value of a string, number, boolean or null literal node. */
function literalValue(node: AstNode): unknown {
  switch (node.type) {
    case 'string':
      return typeof node.value === 'string' ? node.value : NOT_LITERAL;
    case 'number':
      return typeof node.value === 'number' && Number.isFinite(node.value) ? node.value : NOT_LITERAL;
    case 'value':
      return node.value === true || node.value === false || node.value === null ? node.value : NOT_LITERAL;
    default:
      return NOT_LITERAL;
  }
}

function constant(value: unknown): Node {
  return () => value;
}

/** Field lookups from a start value; an array anywhere along the way defers (JSONata maps over it). */
function fieldPath(start: Node, keys: readonly string[]): Node {
  if (keys.length === 0) return start;
  if (keys.length === 1) {
    const k0 = keys[0]!;
    return (i, b) => admit(lookupField(start(i, b), k0));
  }
  if (keys.length === 2) {
    const [k0, k1] = keys as [string, string];
    return (i, b) => admit(lookupField(lookupField(start(i, b), k0), k1));
  }
  return (i, b) => {
    let cur = start(i, b);
    for (let k = 0; k < keys.length; k++) {
      cur = lookupField(cur, keys[k]!);
      if (cur === undefined) return undefined;
    }
    return admit(cur);
  };
}

type Comparable = string | number;

/** `<` `<=` `>` `>=`: numbers with numbers, strings with strings; undefined when a side is missing. */
function comparison(lhs: Node, rhs: Node, op: (l: Comparable, r: Comparable) => boolean): Node {
  return (i, b) => {
    const l = lhs(i, b);
    const r = rhs(i, b);
    const lt = typeof l;
    const rt = typeof r;
    if ((lt !== 'undefined' && lt !== 'string' && lt !== 'number') || (rt !== 'undefined' && rt !== 'string' && rt !== 'number')) {
      return defer(); // JSONata: T2010
    }
    if (l === undefined || r === undefined) return undefined;
    if (lt !== rt) return defer(); // JSONata: T2009
    return op(l as Comparable, r as Comparable);
  };
}

/** `+ - * / %`: numbers only; undefined when a side is missing; non-finite results defer. */
function arithmetic(lhs: Node, rhs: Node, op: (l: number, r: number) => number): Node {
  return (i, b) => {
    const l = lhs(i, b);
    const r = rhs(i, b);
    if ((l !== undefined && typeof l !== 'number') || (r !== undefined && typeof r !== 'number')) return defer(); // T2001, T2002
    if (l === undefined || r === undefined) return undefined;
    const result = op(l, r);
    return Number.isFinite(result) ? result : defer();
  };
}

/** A host function's result, if it is one the subset can carry on with. */
function hostCall(fn: Fn): Fn {
  return (...args) => {
    let result: unknown;
    try {
      result = fn(...args);
    } catch {
      return defer(); // the interpreter throws the same error, with its position and token
    }
    return admit(result);
  };
}

function checkArg(param: Param, arg: unknown): unknown {
  if (!param.accepts.has(symbolOf(arg))) defer(); // JSONata: T0410 (or it shifts arguments)
  return arg;
}

/** Whether the bindings of this evaluation hide the function `name` (JSONata looks bindings up first). */
function shadowed(bindings: Bindings, name: string): boolean {
  return bindings != null && isEnumerableOwn.call(bindings, name);
}

/**
 * A call: each argument checked against its parameter, then the function. Results are admitted
 * (a built-in's NaN, e.g. `$number("0x1g")`, defers like any other non-finite number).
 */
function functionCall(name: string, impl: Fn, params: readonly Param[], args: readonly Node[]): Node {
  const p = params;
  switch (args.length) {
    case 0:
      return (_i, b) => (shadowed(b, name) ? defer() : admit(impl()));
    case 1: {
      const [a0] = args as [Node];
      const p0 = p[0]!;
      return (i, b) => (shadowed(b, name) ? defer() : admit(impl(checkArg(p0, a0(i, b)))));
    }
    case 2: {
      const [a0, a1] = args as [Node, Node];
      const [p0, p1] = p as [Param, Param];
      return (i, b) => (shadowed(b, name) ? defer() : admit(impl(checkArg(p0, a0(i, b)), checkArg(p1, a1(i, b)))));
    }
    default:
      return (i, b) => (shadowed(b, name) ? defer() : admit(impl(...args.map((a, k) => checkArg(p[k]!, a(i, b))))));
  }
}

/**
 * Compiles a JSONata AST when all of it is inside the subset; undefined otherwise. The closure
 * returns DEFER for an evaluation the interpreter must do.
 */
export function compileSubset(ast: unknown, options: SubsetOptions): SyncEvaluator | undefined {
  const root = new Compiler(options).compile(ast);
  if (!root) return undefined;
  return (input, bindings) => {
    try {
      return root(input, bindings);
    } catch (err) {
      if (err === DEFERRAL) return DEFER;
      throw err;
    }
  };
}
