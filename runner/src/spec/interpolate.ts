/**
 * `${VAR}` and `${VAR:-default}` in the string scalars of a spec, from an environment map, so that
 * secrets and endpoints never sit in the file. `$${` writes a literal `${`. A `$` followed by
 * anything else is left alone: JSONata's `$count()` and `$meta` are not references.
 *
 * Interpolation works on the YAML document's scalar nodes, so every node keeps its position; each
 * problem is reported at the exact character of its `${`.
 */
import { isPair, isSeq, parse as parseYaml, visit, type Document, type Scalar } from 'yaml';
import { keyText } from './positions.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export interface EnvProblem {
  kind: 'unset' | 'syntax';
  /** Variable name (unset) or the malformed text (syntax). */
  text: string;
  /** Character range of the reference in the original string, `[start, end)`. */
  start: number;
  end: number;
}

/** A piece of the result: either copied from the original (`literal`) or substituted. */
interface Segment {
  resultStart: number;
  originalStart: number;
  length: number;
  literal: boolean;
}

export interface Interpolated {
  value: string;
  problems: EnvProblem[];
  /** Whether anything was substituted or unescaped. */
  changed: boolean;
  /** Index in the original string of a character of the result (a substituted one maps to its `${`). */
  originalIndex(resultIndex: number): number;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Interpolates one string. Unset variables without a default are reported and left as written. */
export function interpolateString(original: string, env: Env): Interpolated {
  const segments: Segment[] = [];
  const problems: EnvProblem[] = [];
  let value = '';
  let changed = false;
  let copiedFrom = 0;
  const copy = (until: number) => {
    if (until > copiedFrom) {
      segments.push({ resultStart: value.length, originalStart: copiedFrom, length: until - copiedFrom, literal: true });
      value += original.slice(copiedFrom, until);
    }
  };
  const substitute = (text: string, start: number, end: number) => {
    copy(start);
    segments.push({ resultStart: value.length, originalStart: start, length: text.length, literal: false });
    value += text;
    copiedFrom = end;
    changed = true;
  };

  let i = original.indexOf('$');
  while (i >= 0 && i < original.length) {
    if (original.startsWith('$${', i)) {
      substitute('${', i, i + 3);
      i = original.indexOf('$', i + 3);
      continue;
    }
    if (!original.startsWith('${', i)) {
      i = original.indexOf('$', i + 1);
      continue;
    }
    const close = original.indexOf('}', i + 2);
    if (close < 0) {
      problems.push({ kind: 'syntax', text: original.slice(i), start: i, end: original.length });
      break;
    }
    const body = original.slice(i + 2, close);
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME_RE.test(name)) {
      problems.push({ kind: 'syntax', text: original.slice(i, close + 1), start: i, end: close + 1 });
      i = original.indexOf('$', close + 1);
      continue;
    }
    const set = env[name];
    // Like the shell's `:-`, the default also covers a variable set to the empty string.
    if (sep >= 0 && (set === undefined || set === '')) {
      substitute(body.slice(sep + 2), i, close + 1);
    } else if (set !== undefined) {
      substitute(set, i, close + 1);
    } else {
      // Kept as written: an empty string would add a second, misleading error (`topic` must not be empty).
      problems.push({ kind: 'unset', text: name, start: i, end: close + 1 });
    }
    i = original.indexOf('$', close + 1);
  }
  copy(original.length);

  return {
    value,
    problems,
    changed,
    originalIndex(resultIndex: number): number {
      for (const seg of segments) {
        if (resultIndex >= seg.resultStart && resultIndex < seg.resultStart + seg.length) {
          return seg.literal ? seg.originalStart + (resultIndex - seg.resultStart) : seg.originalStart;
        }
      }
      return original.length;
    },
  };
}

/** A problem found in a scalar node, with the node and its path in the document. */
export interface NodeEnvProblem extends EnvProblem {
  node: Scalar;
  path: readonly (string | number)[];
}

export interface DocumentInterpolation {
  problems: NodeEnvProblem[];
  /** For scalars whose text changed: the original text and the index map, for positions inside them. */
  originals: WeakMap<Scalar, Interpolated & { original: string }>;
}

/**
 * Interpolates every string scalar that is a value (keys are names, not data) in place. A node
 * reachable along two paths (a profile entry placed into `sources`) is interpolated once, and
 * reported along the first path that reaches it outside `profiles` when there is one.
 */
export function interpolateDocument(doc: Document, env: Env): DocumentInterpolation {
  const paths = new Map<Scalar, (string | number)[]>();
  visit(doc, {
    Scalar(key, node, ancestry) {
      if (key === 'key' || typeof node.value !== 'string') return;
      const path = pathOf(ancestry, key);
      const known = paths.get(node);
      if (!known || (known[0] === 'profiles' && path[0] !== 'profiles')) paths.set(node, path);
    },
  });
  const problems: NodeEnvProblem[] = [];
  const originals = new WeakMap<Scalar, Interpolated & { original: string }>();
  for (const [node, path] of paths) {
    const original = node.value as string;
    const result = interpolateString(original, env);
    for (const p of result.problems) problems.push({ ...p, node, path });
    if (result.changed) {
      node.value = node.type === 'PLAIN' ? retype(result.value) : result.value;
      originals.set(node, { ...result, original });
    }
  }
  return { problems, originals };
}

/**
 * An unquoted `port: ${PG_PORT:-5432}` means the number 5432, as `port: 5432` would: a plain
 * scalar's interpolated text is read again as a YAML number or boolean. Quoted ones stay strings.
 */
export function retype(text: string): string | number | boolean {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch {
    return text;
  }
  return typeof value === 'number' || typeof value === 'boolean' ? value : text;
}

/** The path of a node from `visit`'s ancestry: map keys and sequence indexes. */
function pathOf(ancestry: readonly unknown[], key: number | 'key' | 'value' | null): (string | number)[] {
  const path: (string | number)[] = [];
  for (let i = 0; i < ancestry.length; i++) {
    const a = ancestry[i];
    if (isPair(a)) {
      path.push(keyText(a.key));
    } else if (isSeq(a)) {
      const child = ancestry[i + 1];
      const idx = child === undefined ? (typeof key === 'number' ? key : -1) : a.items.indexOf(child);
      if (idx >= 0) path.push(idx);
    }
  }
  return path;
}
