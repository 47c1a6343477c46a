/**
 * From a path in the parsed spec (`['steps', 'hourly', 'window', 'size']`) back to a line and
 * column in the file, through the yaml package's node ranges. Ajv reports instance paths; this is
 * how its errors point at the offending YAML node: the key for an unknown key, the value for a bad
 * value.
 */
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node, type Scalar } from 'yaml';
import type { Interpolated } from './interpolate.ts';
import { scalarValueOffsets, type ScalarStyle } from './scalar-offsets.ts';

export type SpecPath = readonly (string | number)[];

export interface Position {
  line: number;
  col: number;
  /** Characters to underline on that line. */
  span: number;
}

/** Which end of a `key: value` pair a diagnostic points at. */
export type Target = 'key' | 'value';

function hasRange(node: unknown): node is Node & { range: [number, number, number] } {
  return typeof node === 'object' && node !== null && Array.isArray((node as { range?: unknown }).range);
}

/**
 * JSON Pointer (`/steps/hourly/group_by/1`) -> path segments. All-digit segments become numbers:
 * they index lists (names of nodes and fields start with a letter), and messages show them as `[1]`.
 */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

export class SpecPositions {
  constructor(
    readonly text: string,
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    /** Scalars whose text interpolation changed, to map positions inside them back to the source. */
    private readonly originals: WeakMap<Scalar, Interpolated & { original: string }> = new WeakMap(),
  ) {}

  /**
   * The node at `path`, or the closest ancestor that has a position in the file (nodes added by
   * `--set` have none). With `target: 'key'` the last step returns the map key, not its value.
   */
  nodeAt(path: SpecPath, target: Target = 'value'): Node | undefined {
    let node: unknown = this.doc.contents;
    let best: Node | undefined = hasRange(node) ? node : undefined;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        // With duplicate keys the later one wins in the parsed value, so point at the later one.
        const pair = [...node.items].reverse().find((p) => isPair(p) && keyText(p.key) === String(seg));
        if (!pair) break;
        if (hasRange(pair.key)) best = pair.key;
        if (last && target === 'key') return best;
        node = pair.value;
      } else if (isSeq(node)) {
        node = node.items[Number(seg)];
      } else {
        break;
      }
      if (hasRange(node)) best = node;
      else if (node === undefined || node === null) break;
    }
    return best;
  }

  /** The value node at exactly `path` when it has a position in the file; no fallback. */
  exactNodeAt(path: SpecPath): Node | undefined {
    let node: unknown = this.doc.contents;
    for (const seg of path) {
      if (isMap(node)) node = [...node.items].reverse().find((p) => isPair(p) && keyText(p.key) === String(seg))?.value;
      else if (isSeq(node)) node = node.items[Number(seg)];
      else return undefined;
    }
    return hasRange(node) ? node : undefined;
  }

  at(path: SpecPath, target: Target = 'value'): Position {
    const node = this.nodeAt(path, target);
    if (!hasRange(node)) return { line: 1, col: 1, span: 1 };
    const [start, valueEnd] = node.range;
    return this.atOffset(start, isScalar(node) ? valueEnd : start + 1);
  }

  atOffset(start: number, end = start + 1): Position {
    const from = this.lineCounter.linePos(start);
    const to = this.lineCounter.linePos(Math.max(start, end - 1));
    const span = to.line === from.line ? Math.max(1, to.col - from.col + 1) : Math.max(1, this.lineEnd(start) - start);
    return { line: from.line, col: from.col, span };
  }

  /** The position of character `index` (of length `length`) of a scalar's current value. */
  inScalar(node: Scalar, index: number, length = 1): Position {
    if (!hasRange(node)) return { line: 1, col: 1, span: 1 };
    const interpolated = this.originals.get(node);
    const sourceValue = interpolated ? interpolated.original : String(node.value);
    const toOriginal = (i: number) => (interpolated ? interpolated.originalIndex(i) : i);
    const offsets = scalarValueOffsets(this.text, node.range[0], node.range[1], node.type as ScalarStyle | undefined, sourceValue);
    const startIndex = Math.min(toOriginal(index), sourceValue.length);
    const endIndex = Math.min(toOriginal(Math.max(index, index + length - 1)), sourceValue.length);
    const start = offsets[startIndex] ?? node.range[0];
    const end = (offsets[endIndex] ?? start) + 1;
    return this.atOffset(start, end);
  }

  /** The position of `[start, end)` of a scalar's source value, before interpolation (for `${VAR}` references). */
  inOriginalScalar(node: Scalar, start: number, end: number): Position {
    if (!hasRange(node)) return { line: 1, col: 1, span: 1 };
    const interpolated = this.originals.get(node);
    const sourceValue = interpolated ? interpolated.original : String(node.value);
    const offsets = scalarValueOffsets(this.text, node.range[0], node.range[1], node.type as ScalarStyle | undefined, sourceValue);
    const from = offsets[start] ?? node.range[0];
    const to = (offsets[Math.max(start, end - 1)] ?? from) + 1;
    return this.atOffset(from, to);
  }

  private lineEnd(offset: number): number {
    const nl = this.text.indexOf('\n', offset);
    return nl < 0 ? this.text.length : nl;
  }
}

export function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}
