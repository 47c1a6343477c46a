import { describe, expect, it } from 'vitest';
import { loadSpecText } from '../../src/spec/load.ts';
import { pointerToPath } from '../../src/spec/positions.ts';

const text = [
  'version: 1', //              1
  'steps:', //                  2
  '  hourly:', //               3
  '    window:', //             4
  '      tumbling: 1 hour', //  5
  '    group_by: [a, "b"]', //  6
  '    aggregate:', //          7
  '      n: |', //              8
  '        $count(', //         9
].join('\n');

describe('SpecPositions', () => {
  const { positions, doc } = loadSpecText('s.yaml', text);

  it('points at a value', () => {
    expect(positions.at(['steps', 'hourly', 'window', 'tumbling'])).toEqual({ line: 5, col: 17, span: 6 });
  });

  it('points at a key', () => {
    expect(positions.at(['steps', 'hourly', 'window', 'tumbling'], 'key')).toEqual({ line: 5, col: 7, span: 8 });
    expect(positions.at(['steps', 'hourly'], 'key')).toEqual({ line: 3, col: 3, span: 6 });
  });

  it('indexes flow sequences', () => {
    expect(positions.at(['steps', 'hourly', 'group_by', 1])).toEqual({ line: 6, col: 19, span: 3 });
  });

  it('falls back to the deepest node that exists', () => {
    expect(positions.at(['steps', 'hourly', 'window', 'nothing', 'deeper'])).toMatchObject({ line: 5, col: 7 });
  });

  it('maps a character inside a block scalar to its line and column', () => {
    const node = positions.nodeAt(['steps', 'hourly', 'aggregate', 'n']);
    expect(node).toBeDefined();
    // `$count(\n`: character 6 is `(`.
    expect(positions.inScalar(node as never, 6)).toMatchObject({ line: 9, col: 15 });
    expect(doc).toBeDefined();
  });

  it('reads JSON pointers, escapes included', () => {
    expect(pointerToPath('')).toEqual([]);
    expect(pointerToPath('/steps/a~1b/c~0d/0/01')).toEqual(['steps', 'a/b', 'c~d', 0, '01']);
  });
});
