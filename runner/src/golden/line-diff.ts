/**
 * A small line diff for golden files: longest common subsequence, printed with `-` for expected
 * lines that are missing, `+` for actual lines that are new, and two lines of context. When one
 * line was replaced by another, the JSON fields that differ are named under it.
 */
import { parseJson, stringifyJson } from '../engine/json.ts';

const CONTEXT = 2;
/** Longer lines are cut in the diff: the field changes under them say what differs. */
const MAX_SHOWN = 240;

function shown(text: string): string {
  return text.length <= MAX_SHOWN ? text : `${text.slice(0, MAX_SHOWN)}... (${text.length} chars)`;
}

type Op = { kind: ' ' | '-' | '+'; line: string };

function lcsOps(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lengths[i][j] = LCS length of a[i..] and b[j..]
  const lengths: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i]![j] = a[i] === b[j] ? lengths[i + 1]![j + 1]! + 1 : Math.max(lengths[i + 1]![j]!, lengths[i]![j + 1]!);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i]! });
      i++;
      j++;
    } else if (lengths[i + 1]![j]! >= lengths[i]![j + 1]!) {
      ops.push({ kind: '-', line: a[i++]! });
    } else {
      ops.push({ kind: '+', line: b[j++]! });
    }
  }
  while (i < n) ops.push({ kind: '-', line: a[i++]! });
  while (j < m) ops.push({ kind: '+', line: b[j++]! });
  return ops;
}

function flatten(value: unknown, prefix: string, into: Map<string, string>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, into);
  } else {
    into.set(prefix, stringifyJson(value));
  }
}

/** `value.avg_duration: 29 -> 29.5` lines for two JSON lines, or nothing when either is not JSON. */
export function fieldChanges(expected: string, actual: string): string[] {
  let a: unknown;
  let b: unknown;
  try {
    a = parseJson(expected);
    b = parseJson(actual);
  } catch {
    return [];
  }
  const fa = new Map<string, string>();
  const fb = new Map<string, string>();
  flatten(a, '', fa);
  flatten(b, '', fb);
  const changes: string[] = [];
  for (const k of new Set([...fa.keys(), ...fb.keys()])) {
    if (fa.get(k) !== fb.get(k)) changes.push(`${k}: ${shown(fa.get(k) ?? '(missing)')} -> ${shown(fb.get(k) ?? '(missing)')}`);
  }
  return changes;
}

export function lineDiff(expected: readonly string[], actual: readonly string[]): string {
  const ops = lcsOps(expected, actual);
  const show = new Array<boolean>(ops.length).fill(false);
  ops.forEach((op, k) => {
    if (op.kind === ' ') return;
    for (let d = Math.max(0, k - CONTEXT); d <= Math.min(ops.length - 1, k + CONTEXT); d++) show[d] = true;
  });
  const out: string[] = [];
  let skipped = false;
  ops.forEach((op, k) => {
    if (!show[k]) {
      if (!skipped) out.push('  ...');
      skipped = true;
      return;
    }
    skipped = false;
    out.push(`${op.kind} ${shown(op.line)}`);
    const next = ops[k + 1];
    if (op.kind === '-' && next?.kind === '+') {
      for (const change of fieldChanges(op.line, next.line)) out.push(`    ~ ${change}`);
    }
  });
  return out.join('\n');
}
