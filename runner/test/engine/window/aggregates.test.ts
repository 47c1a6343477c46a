import { describe, expect, it } from 'vitest';
import { compileExpression } from '../../../src/engine/expression.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';
import {
  checkArgument,
  compareOrderable,
  composedBindings,
  createAccumulator,
  createComposedAccumulator,
  distinctKey,
  foldComposedRows,
  loadAccumulator,
  loadComposedAccumulator,
  mergeBySeq,
  planAggregate,
  recognizeBuiltin,
  type AggregatePlan,
  type BuiltinKind,
  type ComposedAccumulator,
} from '../../../src/engine/window/aggregates.ts';

/** Folds values (each at time = its index unless given) into a fresh accumulator. */
function fold(kind: BuiltinKind, values: unknown[], times?: number[]): unknown {
  const acc = createAccumulator(kind);
  values.forEach((v, i) => acc.add(v, times ? times[i]! : i, i));
  return acc.result();
}

describe('recognizeBuiltin', () => {
  it('recognises each built-in as a whole-expression call', () => {
    expect(recognizeBuiltin('$count()')).toEqual({ builtin: 'countRecords' });
    expect(recognizeBuiltin('$count(x)')).toEqual({ builtin: 'count', argument: 'x' });
    expect(recognizeBuiltin('$sum(duration_seconds)')).toEqual({ builtin: 'sum', argument: 'duration_seconds' });
    expect(recognizeBuiltin('$average(a.b)')).toEqual({ builtin: 'average', argument: 'a.b' });
    expect(recognizeBuiltin('$avg(a)')).toEqual({ builtin: 'average', argument: 'a' });
    expect(recognizeBuiltin('$min(a)')?.builtin).toBe('min');
    expect(recognizeBuiltin('$max(a)')?.builtin).toBe('max');
    expect(recognizeBuiltin('$countDistinct(user)')?.builtin).toBe('countDistinct');
    expect(recognizeBuiltin('$first(a)')?.builtin).toBe('first');
    expect(recognizeBuiltin('$last(a)')?.builtin).toBe('last');
    expect(recognizeBuiltin('$collect(a)')?.builtin).toBe('collect');
  });

  it('keeps a complex argument intact', () => {
    expect(recognizeBuiltin(' $sum( price * (1 + tax) ) ')).toEqual({ builtin: 'sum', argument: 'price * (1 + tax)' });
    expect(recognizeBuiltin('$max($hour(ts, "Europe/Berlin"))')).toEqual({ builtin: 'max', argument: '$hour(ts, "Europe/Berlin")' });
  });

  it('leaves everything else to expression aggregates', () => {
    expect(recognizeBuiltin('$sum(a) + 1')).toBeUndefined();
    expect(recognizeBuiltin('$round($average(d), 2)')).toBeUndefined();
    expect(recognizeBuiltin('$sum(a) / $count($)')).toBeUndefined();
    expect(recognizeBuiltin('$sum()')).toBeUndefined();
    expect(recognizeBuiltin('$sum(a, b)')).toBeUndefined();
    expect(recognizeBuiltin('$string(a)')).toBeUndefined();
    expect(recognizeBuiltin('$sum(a)[0]')).toBeUndefined();
  });

  it('is not fooled by a comment holding a parenthesis', () => {
    const r = recognizeBuiltin('$sum(a) /* ) */');
    expect(r === undefined || r.argument === 'a').toBe(true);
  });
});

describe('planAggregate', () => {
  it('compiles the argument of a built-in and the whole of anything else', () => {
    const b = planAggregate('total', '$sum(d)');
    expect(b.kind === 'builtin' && b.builtin === 'sum' && b.argument?.source === 'd').toBe(true);
    const e = planAggregate('path', '$join(activity_type, " > ")');
    expect(e.kind).toBe('expression');
  });

  it('splits a composition of built-ins into built-in calls and the rest', () => {
    const c = planAggregate('ratio', '$sum(d) / $count()');
    expect(c.kind).toBe('composed');
    if (c.kind !== 'composed') return;
    expect(c.leaves.map((l) => [l.builtin, l.argument?.source])).toEqual([
      ['sum', 'd'],
      ['countRecords', undefined],
    ]);
    expect(c.combine.source).toBe('$__sluice_agg0 / $__sluice_agg1');
    expect(c.combine.isCompiled).toBe(true);
    const avg = planAggregate('avg', '$round($avg(d), 1)');
    expect(avg.kind === 'composed' && avg.leaves[0]!.builtin).toBe('average');
  });

  it('throws on a syntax error', () => {
    expect(() => planAggregate('x', '$sum(')).toThrow();
  });
});

describe('accumulators', () => {
  it('count() counts records, count(x) only non-null values', () => {
    expect(fold('countRecords', [1, null, undefined])).toBe(3);
    expect(fold('count', [1, null, undefined, 0, ''])).toBe(3);
    expect(fold('count', [])).toBe(0);
  });

  it('sum ignores nulls and gives null over nothing', () => {
    expect(fold('sum', [1, null, 2, undefined])).toBe(3);
    expect(fold('sum', [])).toBeNull();
    expect(fold('sum', [null, undefined])).toBeNull();
  });

  it('sum of integers stays an exact integer beyond 2^53', () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(fold('sum', [max, 1])).toBe(2n ** 53n);
    expect(fold('sum', [max, 2, -3])).toBe(max - 1);
    expect(fold('sum', [2n ** 63n, 1])).toBe(2n ** 63n + 1n);
    expect(fold('sum', [1n, 2n])).toBe(3);
  });

  it('sum with fractions is a float', () => {
    expect(fold('sum', [1, 0.5])).toBe(1.5);
  });

  it('average ignores nulls and is null over nothing', () => {
    expect(fold('average', [1, null, 2])).toBe(1.5);
    expect(fold('average', [])).toBeNull();
    expect(fold('average', [2n ** 60n, 2n ** 60n])).toBe(2 ** 60);
  });

  it('min and max order numbers numerically and strings lexically', () => {
    expect(fold('min', [3, null, 1, 2])).toBe(1);
    expect(fold('max', [3, 10, 2])).toBe(10);
    expect(fold('max', ['2025-01-02', '2025-01-10'])).toBe('2025-01-10');
    expect(fold('max', [1, 2n ** 60n])).toBe(2n ** 60n);
    expect(fold('min', [])).toBeNull();
  });

  it('countDistinct treats 1 and 1n alike but not "1"', () => {
    expect(fold('countDistinct', [1, 1n, '1', null, 'a', 'a', { x: 1 }, { x: 1 }])).toBe(4);
    expect(fold('countDistinct', [])).toBe(0);
  });

  it('first and last go by event time, ties by arrival', () => {
    expect(fold('first', ['b', 'a', 'c'], [5, 1, 9])).toBe('a');
    expect(fold('last', ['b', 'a', 'c'], [5, 1, 9])).toBe('c');
    expect(fold('first', ['x', 'y'], [1, 1])).toBe('x');
    expect(fold('last', ['x', 'y'], [1, 1])).toBe('y');
    expect(fold('first', [null, 'y'], [0, 1])).toBe('y');
    expect(fold('last', [])).toBeNull();
  });

  it('collect keeps non-null values in arrival order', () => {
    expect(fold('collect', ['a', null, 'b'])).toEqual(['a', 'b']);
    expect(fold('collect', [])).toEqual([]);
  });

  it('flattens sequences as JSONata would over the whole group', () => {
    expect(fold('sum', [[1, 2], 3])).toBe(6);
    expect(fold('count', [[1, null, 2]])).toBe(2);
    expect(fold('collect', [['a', 'b'], 'c'])).toEqual(['a', 'b', 'c']);
  });

  it('merge equals folding everything into one', () => {
    const kinds: BuiltinKind[] = ['countRecords', 'count', 'sum', 'average', 'min', 'max', 'countDistinct', 'first', 'last', 'collect'];
    const values = [4, null, 7, 1, 7, 3];
    const times = [10, 20, 5, 30, 1, 15];
    for (const kind of kinds) {
      const a = createAccumulator(kind);
      const b = createAccumulator(kind);
      values.forEach((v, i) => (i % 2 === 0 ? a : b).add(v, times[i]!, i));
      a.merge(b);
      expect(a.result(), kind).toEqual(fold(kind, values, times));
    }
  });

  it('save and load round-trip through JSON, bigints included', () => {
    const kinds: BuiltinKind[] = ['countRecords', 'count', 'sum', 'average', 'min', 'max', 'countDistinct', 'first', 'last', 'collect'];
    for (const kind of kinds) {
      for (const values of [[], [5, null, 2n ** 60n, 3], ['a', 'b']]) {
        const acc = createAccumulator(kind);
        const ok = values.every((v) => checkArgument(kind, v) === undefined);
        if (!ok) continue;
        values.forEach((v, i) => acc.add(v, i, i));
        const loaded = loadAccumulator(kind, JSON.parse(JSON.stringify(acc.save())));
        expect(loaded.result(), `${kind} ${String(values)}`).toEqual(acc.result());
        loaded.add(1, 99, 99);
        acc.add(1, 99, 99);
        expect(loaded.result()).toEqual(acc.result());
      }
    }
  });
});

describe('checkArgument', () => {
  it('refuses non-numbers for sum and average, naming the value', () => {
    expect(checkArgument('sum', 'abc')).toBe('expected a number, got "abc"');
    expect(checkArgument('average', [1, 'x'])).toBe('expected a number, got "x"');
    expect(checkArgument('sum', null)).toBeUndefined();
    expect(checkArgument('sum', 2n)).toBeUndefined();
  });

  it('refuses objects for min and max, accepts anything for count', () => {
    expect(checkArgument('min', { a: 1 })).toMatch(/expected a number, string or boolean/);
    expect(checkArgument('max', 'z')).toBeUndefined();
    expect(checkArgument('count', { a: 1 })).toBeUndefined();
  });
});

describe('helpers', () => {
  it('compareOrderable ranks booleans < numbers < strings', () => {
    expect(compareOrderable(true, 0)).toBeLessThan(0);
    expect(compareOrderable(1, 'a')).toBeLessThan(0);
    expect(compareOrderable(2, 10)).toBeLessThan(0);
    expect(compareOrderable(3n, 3)).toBe(0);
  });

  it('distinctKey separates types', () => {
    expect(distinctKey(1)).toBe(distinctKey(1n));
    expect(distinctKey(1)).not.toBe(distinctKey('1'));
    expect(distinctKey(true)).not.toBe(distinctKey('true'));
  });

  it('mergeBySeq interleaves by arrival', () => {
    expect(mergeBySeq(['a', 'c'], [1, 3], ['b', 'd'], [2, 4])).toEqual({ values: ['a', 'b', 'c', 'd'], seqs: [1, 2, 3, 4] });
  });
});

/* ------------------------------------------------------------ compositions */

type Composed = Extract<AggregatePlan, { kind: 'composed' }>;

function composed(source: string): Composed {
  const plan = planAggregate('x', source);
  if (plan.kind !== 'composed') throw new Error(`${source} is not composed`);
  return plan;
}

/** Folds rows into a composed accumulator as the window operator does: each call's argument per row. */
async function foldRows(plan: Composed, rows: unknown[], acc: ComposedAccumulator = createComposedAccumulator(plan.leaves)): Promise<ComposedAccumulator> {
  for (const [i, row] of rows.entries()) {
    const values = await Promise.all(plan.leaves.map((leaf) => (leaf.argument ? leaf.argument.evaluate(row) : undefined)));
    expect(values.every((v, l) => checkArgument(plan.leaves[l]!.builtin, v) === undefined)).toBe(true);
    acc.add(values, i, i);
  }
  return acc;
}

/** An outcome comparable across both paths: the value as an output record holds it, or the error code. */
async function outcome(evaluate: () => unknown): Promise<{ value: unknown } | { error: unknown }> {
  try {
    const v = await evaluate();
    return { value: v === undefined ? null : v };
  } catch (err) {
    return { error: (err as { code?: unknown }).code ?? String(err) };
  }
}

const resultOf = (plan: Composed, acc: ComposedAccumulator) => outcome(() => plan.combine.evaluate(undefined, composedBindings(plan.variables, acc.result())));

/**
 * Rows of numbers whose sums are exact in any order (multiples of 1/8 well below 2^53), so the
 * accumulators' exact integer sums and JSONata's left-to-right sums agree to the bit; fields are
 * sometimes missing, and a group may have none of a field.
 */
function randomRows(random: () => number): Record<string, number>[] {
  const n = 1 + Math.floor(random() * 30);
  const sparse = random() < 0.2;
  return Array.from({ length: n }, () => {
    const row: Record<string, number> = {};
    if (random() < (sparse ? 0.1 : 0.9)) row.a = Math.round((random() - 0.5) * 16_000) / 8;
    if (random() < 0.8) row.b = Math.round((random() - 0.5) * 2000);
    return row;
  });
}

/** Compositions JSONata itself can evaluate over the rows (so not `$count()`, whose signature needs an argument there). */
const DIFFERENTIAL = [
  '$round($average(a), 1)',
  '$round($average(b))',
  '$sum(a) / $count(a)',
  '$sum(b) / $count($)',
  '$max(a) - $min(a)',
  '$round($sum(a) * 100 / $sum(b), 2)',
  '$count(a) = 0 ? null : $max(b)',
  '$floor($average(b)) & " / " & $string($max(a))',
  '-$min(b) + $abs($sum(a))',
  '$sqrt($abs($sum(a))) + $power($count(b), 2)',
  '($sum(a) + $sum(b)) % 7',
  '$sum(a) > $sum(b) and $count(a) >= 1',
  '$exists($max(a)) or $not($sum(b))',
  '$number($string($sum(b))) + $ceil($min(a))',
  '$boolean($count(b)) ? $average(a) : -1',
];

describe('composed aggregates', () => {
  it('give what JSONata gives over the kept records, on random groups', async () => {
    const random = mulberry32(20250601);
    const plans = DIFFERENTIAL.map((source) => ({ source, plan: composed(source), overRows: compileExpression(source) }));
    let compared = 0;
    for (let group = 0; group < 300; group++) {
      const rows = randomRows(random);
      for (const { source, plan, overRows } of plans) {
        const expected = await outcome(() => overRows.evaluate(rows));
        const actual = await resultOf(plan, await foldRows(plan, rows));
        expect(actual, `${source} over ${JSON.stringify(rows)}`).toEqual(expected);
        compared++;
      }
    }
    expect(compared).toBe(300 * DIFFERENTIAL.length);
  });

  it('computes `$count()` as records, so `$sum(x) / $count()` is the mean over records', async () => {
    const plan = composed('$sum(x) / $count()');
    const rows = [{ x: 2 }, { x: 4 }, {}, { x: null }];
    expect(await resultOf(plan, await foldRows(plan, rows))).toEqual({ value: 1.5 });
  });

  it('ignores nulls as the built-ins do (JSONata alone would refuse them)', async () => {
    const plan = composed('$round($average(d), 1)');
    expect(await resultOf(plan, await foldRows(plan, [{ d: 1 }, { d: null }, { d: 2 }]))).toEqual({ value: 1.5 });
    expect(await resultOf(plan, await foldRows(plan, [{ d: null }]))).toEqual({ value: null });
  });

  it('merges like folding everything into one (session windows)', async () => {
    const random = mulberry32(7);
    for (const source of DIFFERENTIAL) {
      const plan = composed(source);
      const rows = randomRows(random);
      const cut = Math.floor(rows.length / 2);
      const left = await foldRows(plan, rows.slice(0, cut));
      const right = await foldRows(plan, rows.slice(cut));
      left.merge(right);
      expect(await resultOf(plan, left), source).toEqual(await resultOf(plan, await foldRows(plan, rows)));
    }
  });

  it('save and load round-trip through JSON, and go on accumulating alike', async () => {
    const plan = composed('$round($average(a), 1) + $max(b) - $min(b) + $count() + $sum(big)');
    const acc = await foldRows(plan, [{ a: 1.25, b: 3, big: 2 ** 53 }, { a: 2, b: -7, big: 2 ** 53 }]);
    const loaded = loadComposedAccumulator(plan.leaves, JSON.parse(JSON.stringify(acc.save())));
    expect(loaded.result()).toEqual(acc.result());
    await foldRows(plan, [{ a: 10, b: 100 }], loaded);
    await foldRows(plan, [{ a: 10, b: 100 }], acc);
    expect(loaded.result()).toEqual(acc.result());
    expect(await resultOf(plan, loaded)).toEqual(await resultOf(plan, acc));
  });

  it('refuses saved state of another shape', () => {
    const plan = composed('$sum(a) / $count()');
    expect(() => loadComposedAccumulator(plan.leaves, { leaves: [1] })).toThrow(/saved 1 accumulators, expected 2/);
    expect(() => loadComposedAccumulator(plan.leaves, null)).toThrow(/expected an object/);
  });

  it('folds the records an earlier sluice kept into the same accumulator', async () => {
    const plan = composed('$round($average(d), 1) + $count()');
    const rows = [{ d: 1 }, { d: 'not a number' }, { d: 2.5 }, {}];
    const folded = foldComposedRows(plan, rows, [0, 1, 2, 3]);
    const live = await foldRows(plan, [{ d: 1 }, { d: 2.5 }, {}]);
    expect(folded.result()).toEqual(live.result());
  });
});
