import { describe, expect, it } from 'vitest';
import { fieldChanges, lineDiff } from '../../src/golden/line-diff.ts';

describe('lineDiff', () => {
  it('marks missing and new lines and names the JSON fields that changed', () => {
    const expected = ['{"key":"1","value":{"n":1}}', '{"key":"2","value":{"n":2}}', '{"key":"3","value":{"n":3}}'];
    const actual = ['{"key":"1","value":{"n":1}}', '{"key":"2","value":{"n":20}}', '{"key":"3","value":{"n":3}}', '{"key":"4","value":{"n":4}}'];
    const diff = lineDiff(expected, actual);
    expect(diff.split('\n')).toEqual([
      '  {"key":"1","value":{"n":1}}',
      '- {"key":"2","value":{"n":2}}',
      '    ~ value.n: 2 -> 20',
      '+ {"key":"2","value":{"n":20}}',
      '  {"key":"3","value":{"n":3}}',
      '+ {"key":"4","value":{"n":4}}',
    ]);
  });

  it('elides long runs of equal lines', () => {
    const same = Array.from({ length: 10 }, (_, i) => `line ${i}`);
    const diff = lineDiff([...same, 'old'], [...same, 'new']);
    expect(diff.split('\n')[0]).toBe('  ...');
    expect(diff).toContain('- old');
    expect(diff).toContain('+ new');
    expect(diff).not.toContain('line 2');
  });

  it('names fields present on one side only', () => {
    expect(fieldChanges('{"a":1}', '{"a":1,"b":true}')).toEqual(['b: (missing) -> true']);
    expect(fieldChanges('not json', '{}')).toEqual([]);
  });
});

describe('lineDiff on long lines', () => {
  it('cuts lines and field values past 240 characters', () => {
    const long = (c: string) => JSON.stringify({ key: null, value: { s: c.repeat(500) } });
    const diff = lineDiff([long('a')], [long('b')]);
    expect(diff.split('\n').every((l) => l.length < 600)).toBe(true);
    expect(diff).toContain('chars)');
    expect(diff).toContain('~ value.s:');
  });
});
