import { describe, expect, it } from 'vitest';
import { findAnnotated, redactSecrets } from '../../src/spec/annotations.ts';
import { expression, object, secret } from '../../src/engine/schema.ts';

const schema = object('x', {
  filter: expression('f', ['a']),
  sasl: object('s', { password: secret('p'), user: { type: 'string' } }),
  headers: { type: 'object', additionalProperties: expression('h', ['a']) },
  group_by: {
    oneOf: [
      { type: 'array', items: { type: 'string', 'x-jsonata': true } },
      { type: 'object', additionalProperties: { $ref: '#/$defs/expr' } },
    ],
  },
  $defs: {},
});
(schema as Record<string, unknown>).$defs = { expr: expression('e', ['a']) };

describe('findAnnotated', () => {
  it('finds marked values through properties, maps, lists, oneOf branches that fit, and local $refs', () => {
    const value = { filter: 'a > 1', sasl: { password: 'p', user: 'u' }, headers: { h1: '$meta.op' }, group_by: { k: 'x.y' } };
    expect(findAnnotated(schema, value, 'x-jsonata').map((a) => a.path.join('.'))).toEqual(['filter', 'headers.h1', 'group_by.k']);
    expect(findAnnotated(schema, { group_by: ['a', 'b'] }, 'x-jsonata').map((a) => a.path)).toEqual([['group_by', 0], ['group_by', 1]]);
  });
});

describe('redactSecrets', () => {
  it('replaces secrets in a copy and leaves the original alone', () => {
    const value = { filter: 'a', sasl: { password: 'hunter2', user: 'u' } };
    expect(redactSecrets(schema, value)).toEqual({ filter: 'a', sasl: { password: '***', user: 'u' } });
    expect(value.sasl.password).toBe('hunter2');
  });

  it('returns the value itself when there is no secret', () => {
    const value = { filter: 'a' };
    expect(redactSecrets(schema, value)).toBe(value);
  });
});
