import { describe, expect, it } from 'vitest';
import { parseJson } from '../../src/engine/json.ts';
import { copyFields } from '../../src/engine/record.ts';

describe('copyFields', () => {
  it('makes a new object with the fields of both, the second winning, as a spread does', () => {
    const first = { topic: 't', partition: 3, offset: '7' };
    const second = { op: 'c', offset: 'x', before: null };
    const copy = copyFields(first, second);
    expect(copy).toEqual({ ...first, ...second });
    expect(Object.keys(copy)).toEqual(Object.keys({ ...first, ...second }));
    expect(copy).not.toBe(first);
    expect(first).toEqual({ topic: 't', partition: 3, offset: '7' });
    const one = copyFields(first);
    expect(one).toEqual(first);
    expect(one).not.toBe(first);
  });

  it('copies a parsed `__proto__` field as data, never as the copy\'s prototype', () => {
    const parsed = parseJson('{"__proto__":{"polluted":true},"a":1}') as Record<string, unknown>;
    for (const copy of [copyFields(parsed), copyFields({ b: 2 }, parsed), copyFields(parsed, { b: 2 })]) {
      expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
      expect(Object.hasOwn(copy, '__proto__')).toBe(true);
      expect((copy as { polluted?: unknown }).polluted).toBeUndefined();
    }
  });
});
