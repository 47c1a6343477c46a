/**
 * Splits a window aggregate such as `$round($average(d), 1)` or `$sum(a) / $count()` into its
 * aggregate calls (the leaves, each computed incrementally) and the rest (the residual), which
 * JSONata evaluates once per emission with each leaf's result bound to a variable:
 * `$round($__sluice_agg0, 1)`. Only residuals that cannot read the group's records qualify:
 * literals, arithmetic, comparisons, `and`/`or`, `&`, `? :`, parentheses and a few scalar
 * functions. Anything else (paths outside a leaf, `$` itself, lambdas, `:=`, predicates, other
 * functions) returns undefined, and the aggregate is evaluated over the group's kept records.
 *
 * The split works on the source text, guarded by the parse tree: each leaf's argument text must
 * parse to the same tree as the argument, and the residual text must parse to the original tree
 * with the leaves replaced by variables. So the residual is the same JSONata, not a rewrite of it.
 */
import jsonata from 'jsonata';

/** One aggregate call of a composition, in source order. */
export interface CompositionLeaf {
  /** The function name without `$`, e.g. `average`. */
  name: string;
  /** The argument's source text; undefined for a call without one (`$count()`). */
  argument?: string;
  /** Offset of the call's `$` in the source. */
  start: number;
}

export interface Composition {
  leaves: CompositionLeaf[];
  /** The expression with each leaf replaced by `$<variables[i]>`. */
  residual: string;
  /** The variable bound to each leaf's result, without `$`. */
  variables: string[];
}

/** Variables are named with this prefix; an expression already holding it is not split. */
const VARIABLE_PREFIX = '__sluice_agg';

/** Scalar functions a residual may call, with the argument counts they take. */
const RESIDUAL_FUNCTIONS: Readonly<Record<string, readonly [min: number, max: number]>> = {
  round: [1, 2],
  floor: [1, 1],
  ceil: [1, 1],
  abs: [1, 1],
  sqrt: [1, 1],
  power: [2, 2],
  number: [1, 1],
  string: [1, 2],
  boolean: [1, 1],
  not: [1, 1],
  exists: [1, 1],
};

const BINARY_OPERATORS = new Set(['+', '-', '*', '/', '%', '=', '!=', '<', '<=', '>', '>=', 'and', 'or', '&']);

/** Keys each node type may have; any other (a predicate, `stages`, `keepArray`, a focus) disqualifies it. */
const ALLOWED_KEYS: Readonly<Record<string, readonly string[]>> = {
  number: ['value'],
  string: ['value'],
  value: ['value'],
  unary: ['value', 'expression'],
  binary: ['value', 'lhs', 'rhs'],
  condition: ['condition', 'then', 'else'],
  block: ['expressions'],
  function: ['value', 'procedure', 'arguments'],
};

interface AstNode {
  type?: unknown;
  value?: unknown;
  position?: unknown;
  [k: string]: unknown;
}

function isNode(v: unknown): v is AstNode {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The tree without token positions and with keys in order, to compare two trees. */
function shape(node: unknown): string {
  return JSON.stringify(node, (k, v: unknown) => {
    if (k === 'position') return undefined;
    if (!isNode(v)) return v;
    return Object.fromEntries(Object.keys(v).sort().map((key) => [key, v[key]]));
  });
}

function parse(source: string): AstNode | undefined {
  try {
    const ast: unknown = jsonata(source).ast();
    return isNode(ast) ? ast : undefined;
  } catch {
    return undefined;
  }
}

function hasOnlyKeys(node: AstNode, allowed: readonly string[]): boolean {
  return Object.keys(node).every((k) => k === 'type' || k === 'position' || node[k] === undefined || allowed.includes(k));
}

/** The name of a `$name(...)` call's function, or undefined when the node is no such call. */
function calledName(node: AstNode): string | undefined {
  if (node.type !== 'function' || !hasOnlyKeys(node, ALLOWED_KEYS.function!)) return undefined;
  const proc = node.procedure;
  return isNode(proc) && proc.type === 'variable' && typeof proc.value === 'string' && hasOnlyKeys(proc, ['value']) ? proc.value : undefined;
}

/**
 * Collects the leaves of a residual-shaped tree into `leaves`; false when the tree has anything a
 * residual may not hold. `isLeaf` says whether a call (name, argument count) is an aggregate.
 */
function collectLeaves(node: unknown, isLeaf: (name: string, argc: number) => boolean, leaves: AstNode[]): boolean {
  if (!isNode(node) || typeof node.type !== 'string') return false;
  const allowed = ALLOWED_KEYS[node.type];
  if (!allowed || !hasOnlyKeys(node, allowed)) return false;
  const walk = (child: unknown) => collectLeaves(child, isLeaf, leaves);
  switch (node.type) {
    case 'number':
    case 'string':
    case 'value':
      return true;
    case 'unary':
      return node.value === '-' && walk(node.expression);
    case 'binary':
      return typeof node.value === 'string' && BINARY_OPERATORS.has(node.value) && walk(node.lhs) && walk(node.rhs);
    case 'condition':
      return walk(node.condition) && walk(node.then) && (node.else === undefined || walk(node.else));
    case 'block':
      return Array.isArray(node.expressions) && node.expressions.length === 1 && walk(node.expressions[0]);
    case 'function': {
      const name = calledName(node);
      const args = node.arguments;
      if (name === undefined || !Array.isArray(args)) return false;
      if (isLeaf(name, args.length)) {
        leaves.push(node);
        return true;
      }
      const arity = RESIDUAL_FUNCTIONS[name];
      return arity !== undefined && args.length >= arity[0] && args.length <= arity[1] && args.every(walk);
    }
    default:
      return false;
  }
}

/**
 * Where a leaf call is in the source: from its `$` to just after its `)`, and its argument text.
 * The closing parenthesis is the first `)` after the opening one up to which the argument text
 * parses to the argument's own tree (a `)` inside the argument leaves an unclosed bracket, string
 * or comment before it, which does not parse).
 */
function locateLeaf(source: string, node: AstNode): { start: number; end: number; argument?: string } | undefined {
  const proc = node.procedure as AstNode;
  const name = proc.value as string;
  const nameEnd = proc.position;
  const open = node.position; // just after the `(`
  if (typeof nameEnd !== 'number' || typeof open !== 'number') return undefined;
  const start = nameEnd - name.length - 1;
  if (source.slice(start, nameEnd) !== `$${name}`) return undefined;
  const args = node.arguments as unknown[];
  for (let close = source.indexOf(')', open); close >= 0; close = source.indexOf(')', close + 1)) {
    const text = source.slice(open, close);
    if (args.length === 0) return text.trim() === '' ? { start, end: close + 1 } : undefined;
    const parsed = parse(text);
    if (parsed && shape(parsed) === shape(args[0])) return { start, end: close + 1, argument: text.trim() };
  }
  return undefined;
}

/** The tree with each leaf replaced by a variable node: what the residual must parse to. */
function withVariables(node: unknown, leaves: readonly AstNode[], variables: readonly string[]): unknown {
  if (Array.isArray(node)) return node.map((n) => withVariables(n, leaves, variables));
  if (!isNode(node)) return node;
  const i = leaves.indexOf(node);
  if (i >= 0) return { type: 'variable', value: variables[i] };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = withVariables(v, leaves, variables);
  return out;
}

/**
 * Splits `source` into aggregate leaves and a residual, or returns undefined when it is not such a
 * composition (or is one single call, which the caller computes directly). `isLeaf(name, argc)`
 * says which calls are aggregates.
 */
export function planComposition(source: string, isLeaf: (name: string, argc: number) => boolean): Composition | undefined {
  if (source.includes(VARIABLE_PREFIX)) return undefined;
  const ast = parse(source);
  if (!ast) return undefined;
  const leafNodes: AstNode[] = [];
  if (!collectLeaves(ast, isLeaf, leafNodes)) return undefined;
  if (leafNodes.length === 0 || (leafNodes.length === 1 && leafNodes[0] === ast)) return undefined;
  const located = leafNodes.map((n) => locateLeaf(source, n));
  if (located.some((l) => l === undefined)) return undefined;
  const spans = located as { start: number; end: number; argument?: string }[];
  const variables = leafNodes.map((_, i) => `${VARIABLE_PREFIX}${i}`);
  // Replace from the last leaf back, so earlier offsets stay valid.
  const order = spans.map((s, i) => ({ ...s, i })).sort((a, b) => b.start - a.start);
  let residual = source;
  for (const s of order) residual = `${residual.slice(0, s.start)}$${variables[s.i]}${residual.slice(s.end)}`;
  const reparsed = parse(residual);
  if (!reparsed || shape(reparsed) !== shape(withVariables(ast, leafNodes, variables))) return undefined;
  const leaves = spans.map((s, i): CompositionLeaf => {
    const name = (leafNodes[i]!.procedure as AstNode).value as string;
    return s.argument === undefined ? { name, start: s.start } : { name, argument: s.argument, start: s.start };
  });
  return { leaves, residual, variables };
}
