import { describe, expect, it } from 'vitest';
import { groupKeyString, plainPathName } from '../../../src/engine/window/group-key.ts';

describe('plainPathName', () => {
  it('names a plain path after its last segment', () => {
    expect(plainPathName('employee_id')).toBe('employee_id');
    expect(plainPathName('user.id')).toBe('id');
    expect(plainPathName('a.`b c`')).toBe('b c');
  });

  it('refuses anything but a plain path', () => {
    for (const src of ['$hour(ts)', 'a + 1', 'a[0]', 'a.b[x > 1]', '"lit"', '$meta.op', 'a ? b : c', 'items[]']) {
      expect(plainPathName(src), src).toBeUndefined();
    }
  });
});

describe('groupKeyString', () => {
  it('distinguishes types and tuples that naive joining would confuse', () => {
    const keys = [
      [1],
      ['1'],
      [true],
      ['true'],
      [null],
      ['null'],
      ['a', 'b'],
      ['a\u0001"b"'],
      ['a', 'b', 'c'],
      ['a,b'],
      [{ x: 1 }],
      [[1, 2]],
    ].map(groupKeyString);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('groups missing values with nulls and 1 with 1n', () => {
    expect(groupKeyString([undefined])).toBe(groupKeyString([null]));
    expect(groupKeyString([1n, 'x'])).toBe(groupKeyString([1, 'x']));
  });
});
