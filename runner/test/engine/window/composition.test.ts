import { describe, expect, it } from 'vitest';
import { planComposition } from '../../../src/engine/window/composition.ts';

const AGGREGATES = new Set(['sum', 'count', 'average', 'min', 'max']);
/** Calls of these names are aggregates: one argument, or none for `$count()`. */
const isLeaf = (name: string, argc: number) => AGGREGATES.has(name) && (argc === 1 || (argc === 0 && name === 'count'));
const split = (source: string) => planComposition(source, isLeaf);

describe('planComposition', () => {
  it('splits the calls of a composition from the rest, in source order', () => {
    expect(split('$round($average(duration_seconds), 1)')).toEqual({
      leaves: [{ name: 'average', argument: 'duration_seconds', start: 7 }],
      residual: '$round($__sluice_agg0, 1)',
      variables: ['__sluice_agg0'],
    });
    expect(split('$sum(x) / $count()')).toEqual({
      leaves: [
        { name: 'sum', argument: 'x', start: 0 },
        { name: 'count', start: 10 },
      ],
      residual: '$__sluice_agg0 / $__sluice_agg1',
      variables: ['__sluice_agg0', '__sluice_agg1'],
    });
    expect(split('$max(t) - $min(t)')?.residual).toBe('$__sluice_agg0 - $__sluice_agg1');
  });

  it('keeps arguments whole: nested brackets, strings and comments holding parentheses', () => {
    expect(split('$sum( (a + (b)) ) + $count(")")')?.leaves).toEqual([
      { name: 'sum', argument: '(a + (b))', start: 0 },
      { name: 'count', argument: '")"', start: 20 },
    ]);
    const c = split('$sum(a /* ) */) & ")" /* $count() */');
    expect(c?.leaves).toEqual([{ name: 'sum', argument: 'a /* ) */', start: 0 }]);
    expect(c?.residual).toBe('$__sluice_agg0 & ")" /* $count() */');
    expect(split('$sum($max(x)) / 2')?.leaves).toEqual([{ name: 'sum', argument: '$max(x)', start: 0 }]);
  });

  it('takes literals, arithmetic, comparisons, conditions, parentheses and scalar functions around the calls', () => {
    for (const source of [
      '-$sum(a)',
      '($sum(a))',
      '$count() = 0 ? null : $sum(a) / $count()',
      '$sum(a) > 10 and $count() < 5 or false',
      '$string($sum(a)) & " total"',
      '$floor($average(a)) + $ceil($average(a)) + $abs($min(a)) + $sqrt($max(a)) + $power($count(), 2) % 3',
      '$number($string($max(a))) ? $boolean($count()) : $not($exists($min(a)))',
    ]) {
      expect(split(source), source).toBeDefined();
    }
  });

  it('refuses whatever could read the records outside a call, and single calls', () => {
    for (const source of [
      '$sum(a)', // one call: the caller's built-in
      '$sum(a) + b', // a field outside the call
      '$sum(a) + $', // the input itself
      '$sum(a) + $$.b',
      '$round($sum(a)[0])', // a predicate
      '$sum(a).b',
      '[$sum(a), $max(a)]', // constructors
      '{"s": $sum(a)}',
      '($s := $sum(a); $s * 2)', // bindings
      '$map([1], function($v) { $v + $sum(a) })',
      '$string()', // a function that would take the context
      '$join(activity_type, ",")',
      '$sum(a) ~> $string()',
      '1 + 2', // no call at all
      '$sum(a) + $__sluice_agg0', // the variable prefix itself
      '$sum(',
    ]) {
      expect(split(source), source).toBeUndefined();
    }
  });
});
