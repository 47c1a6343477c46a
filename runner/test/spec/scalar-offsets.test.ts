import { isMap, isScalar, parseDocument, type Scalar } from 'yaml';
import { describe, expect, it } from 'vitest';
import { scalarValueOffsets, type ScalarStyle } from '../../src/spec/scalar-offsets.ts';

/** Source offsets of each value character of the scalar under key `x`. */
function offsetsOf(text: string): { value: string; at: (i: number) => string } {
  const doc = parseDocument(text);
  if (!isMap(doc.contents)) throw new Error('not a map');
  const node = doc.contents.get('x', true) as Scalar;
  if (!isScalar(node) || !node.range) throw new Error('not a scalar');
  const value = String(node.value);
  const offsets = scalarValueOffsets(text, node.range[0], node.range[1], node.type as ScalarStyle, value);
  // The source character each value character came from.
  return { value, at: (i) => text[offsets[i]!]! };
}

describe('scalarValueOffsets', () => {
  it('maps plain scalars one to one', () => {
    const { value, at } = offsetsOf('x: a + b\n');
    expect([...value].map((_, i) => at(i)).join('')).toBe('a + b');
  });

  it('maps each value character of every style to the source character it came from', () => {
    for (const text of [
      'x: "a \\"q\\" b"\n',
      "x: 'it''s ; here'\n",
      'x: |\n  line one\n  two ; here\n',
      'x: >\n  folded\n  two ; here\n',
      'x: "a\n  b ; c"\n',
      'x: plain\n  continued ; here\n',
    ]) {
      const { value, at } = offsetsOf(text);
      const semi = value.indexOf(';');
      if (semi >= 0) expect(at(semi), text).toBe(';');
      const last = value.trimEnd().length - 1;
      expect(at(last), text).toBe(value.trimEnd()[last]);
    }
  });

  it('puts an escape sequence at its backslash', () => {
    const text = 'x: "a\\tb"\n';
    const doc = parseDocument(text);
    const node = (doc.contents as { get: (k: string, keep: boolean) => Scalar }).get('x', true);
    const offsets = scalarValueOffsets(text, node.range![0], node.range![1], 'QUOTE_DOUBLE', String(node.value));
    expect(offsets[1]).toBe(text.indexOf('\\'));
    expect(text[offsets[2]!]).toBe('b');
  });

  it('finds characters on later lines of a literal block, past the indentation', () => {
    const text = 'x: |\n    first\n      nested ; x\n';
    const { value, at } = offsetsOf(text);
    expect(value).toBe('first\n  nested ; x\n');
    expect(at(value.indexOf('n'))).toBe('n');
    expect(at(value.indexOf(';'))).toBe(';');
  });
});
