import jsonata from 'jsonata';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { Ack } from '../../src/engine/ack.ts';
import { ExpressionSyntaxError } from '../../src/engine/errors.ts';
import { compileExpression, EvalFailure, evaluateRecords, functionNames, isTruthy, JSONATA_FUNCTIONS, recordBindings, TIME_FUNCTIONS } from '../../src/engine/expression.ts';
import type { StreamRecord } from '../../src/engine/record.ts';

function rec(value: unknown, meta: Record<string, unknown> = {}): StreamRecord {
  return { key: null, value, time: 0, headers: {}, meta, position: { source: 's', partition: 's/0', offset: '1' }, ack: Ack.none() };
}

describe('compileExpression', () => {
  it('reports a syntax error with its 0-based position inside the expression', () => {
    expect(() => compileExpression('a + (b')).toThrow(ExpressionSyntaxError);
    try {
      compileExpression('a = = b');
    } catch (err) {
      expect(err).toBeInstanceOf(ExpressionSyntaxError);
      expect((err as ExpressionSyntaxError).position).toBeGreaterThanOrEqual(2);
      expect((err as ExpressionSyntaxError).position).toBeLessThan(7);
    }
  });

  it('binds $meta, $key and $headers', async () => {
    const e = compileExpression('$meta.op & ":" & $key & ":" & $headers.h');
    const r = { ...rec({}, { op: 'c' }), key: 'k1', headers: { h: 'v' } };
    expect(await evaluateRecords(e, [r])).toEqual(['c:k1:v']);
  });
});

describe('time functions', () => {
  const cases: [string, unknown[]][] = [
    ['2025-01-06T09:05:12.345678Z', []],
    ['2025-01-06T23:59:59.999999Z', []],
    ['2025-01-06T23:30:00Z', ['Europe/Berlin']],
    ['2025-01-06T23:30:00+02:00', []],
    ['2025-01-06T08:00:00', []],
    [String(Date.UTC(2025, 0, 6, 17, 59)), []],
  ];
  it('$hour and $date read canonical UTC text the same as they compute any other timestamp', () => {
    for (const [text, rest] of cases) {
      const value = /^\d+$/.test(text) ? Number(text) : text;
      const ms = typeof value === 'number' ? value : new Date(/[zZ]|[+-]\d\d:\d\d$/.test(text) ? text : `${text}Z`).getTime();
      const tz = (rest[0] as string | undefined) ?? 'UTC';
      const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(ms));
      const get = (t: string) => parts.find((p) => p.type === t)!.value;
      expect(TIME_FUNCTIONS.hour!.fn(value, ...rest)).toBe(Number(get('hour')));
      expect(TIME_FUNCTIONS.date!.fn(value, ...rest)).toBe(`${get('year')}-${get('month')}-${get('day')}`);
    }
  });

  it('give nothing for nothing and refuse what is not a timestamp', () => {
    expect(TIME_FUNCTIONS.hour!.fn(undefined)).toBeUndefined();
    expect(TIME_FUNCTIONS.hour!.fn(null)).toBeUndefined();
    expect(() => TIME_FUNCTIONS.date!.fn('yesterday')).toThrow(/not a timestamp/);
  });

  it('$weekday and $epochMillis', () => {
    expect(TIME_FUNCTIONS.weekday!.fn('2025-01-06T10:00:00Z')).toBe(1); // a Monday
    expect(TIME_FUNCTIONS.epochMillis!.fn('2025-01-06T10:00:00.250Z')).toBe(Date.UTC(2025, 0, 6, 10, 0, 0, 250));
  });
});

describe('evaluateRecords', () => {
  it('yields EvalFailure for the records that fail and values for the others', async () => {
    const e = compileExpression('$substringBefore(a, "-") & $number(b)');
    const out = await evaluateRecords(e, [rec({ a: 'x-y', b: '1' }), rec({ a: 'x-y', b: 'not a number' })]);
    expect(out[0]).toBe('x1');
    expect(out[1]).toBeInstanceOf(EvalFailure);
  });

  it('agrees with the reference interpreter on a mixed batch', async () => {
    const src = 'n < 30 ? "short" : n < 300 ? "medium" : "long"';
    const values = [{ n: 0 }, { n: 29 }, { n: 30 }, { n: 299 }, { n: 300 }, {}, { n: [1, 400] }];
    const ours = await evaluateRecords(compileExpression(src), values.map((v) => rec(v)));
    const reference = await Promise.all(values.map((v) => jsonata(src).evaluate(v).catch(() => 'error')));
    expect(ours.map((v) => (v instanceof EvalFailure ? 'error' : v))).toEqual(reference);
  });

  it('gives what evaluating each record with its bindings gives, for paths, paths over arrays and other expressions', async () => {
    const input = [{ a: { b: 1 } }, { a: [{ b: 2 }, { b: 3 }] }, { a: null }, {}, 5].map((v) => ({ ...rec(v, { op: 'c' }), key: 'k' }));
    for (const src of ['a.b', 'a', '$meta.op & $string(a.b)', '$key']) {
      const expr = compileExpression(src);
      const each = await Promise.all(input.map((r) => expr.evaluate(r.value, recordBindings(r))));
      expect(await evaluateRecords(expr, input), src).toEqual(each);
    }
  });

  it('answers synchronously for plain paths over objects', () => {
    const r = evaluateRecords(compileExpression('a.b'), [rec({ a: { b: 1 } }), rec({ a: { b: 'x' } })]);
    expect(r).toEqual([1, 'x']);
  });

  it('turns a throwing evaluation into an EvalFailure', async () => {
    const r = await evaluateRecords(compileExpression('$number(a)'), [rec({ a: 'x' }), rec({ a: '2' })]);
    expect(r[0]).toBeInstanceOf(EvalFailure);
    expect(r[1]).toBe(2);
  });
});

describe('isTruthy', () => {
  it("follows JSONata's $boolean", async () => {
    const values: unknown[] = [0, 1, -1, '', 'a', [], [0], [0, 1], {}, { a: 1 }, true, false, null];
    for (const v of values) {
      expect(isTruthy(v), JSON.stringify(v)).toBe(await jsonata('$boolean($)').evaluate(v) ?? false);
    }
  });
});

describe('JSONATA_FUNCTIONS', () => {
  it('names exactly the functions the installed jsonata defines', async () => {
    // Its static frame binds each built-in by name; every evaluation adds $now and $millis.
    const source = readFileSync(createRequire(import.meta.url).resolve('jsonata'), 'utf8');
    const bound = [...source.matchAll(/staticFrame\.bind\('([A-Za-z]+)'/g)].map((m) => m[1]);
    expect(bound.length).toBeGreaterThan(50);
    expect([...JSONATA_FUNCTIONS].sort()).toEqual([...bound, 'now', 'millis'].sort());
    for (const name of JSONATA_FUNCTIONS) expect(await jsonata(`$type($${name})`).evaluate({}), name).toBe('function');
  });
});

describe('functionNames', () => {
  it('finds each call with the offset of its `$`, in calls, partial applications and `~>`', () => {
    const { calls } = functionNames('$round($hours(t), 1) & ($f(?, 2)) & (x ~> $strng)');
    expect(calls.map((c) => [c.name, c.start, c.whole])).toEqual([
      ['round', 0, false],
      ['hours', 7, false],
      ['f', 24, false],
      ['strng', 42, false],
    ]);
    expect(functionNames('$round($sum(x))').calls.map((c) => [c.name, c.whole])).toEqual([['round', true], ['sum', false]]);
  });

  it('collects the names the expression binds: `:=`, lambda parameters, `@$v` and `#$i`', () => {
    const { bound } = functionNames('($f := function($v, $w){ $v }; xs@$x#$i.$f($x, $i))');
    expect([...bound].sort()).toEqual(['f', 'i', 'v', 'w', 'x']);
  });

  it('reports a syntax error as compileExpression does', () => {
    expect(() => functionNames('$f(')).toThrow(ExpressionSyntaxError);
  });
});
