/**
 * Differential tests: every answer the compiled closures give must be the reference JSONata
 * interpreter's answer for the same expression, input and bindings; where the interpreter throws,
 * the closure must defer (and compileExpression then throws the interpreter's own error).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEFER, compileSubset, parseSimpleSignature, type SyncEvaluator } from '../../src/engine/expression-compiler.ts';
import { Ack } from '../../src/engine/ack.ts';
import { EvalFailure, TIME_FUNCTIONS, compileExpression, evaluateRecords } from '../../src/engine/expression.ts';
import type { StreamRecord } from '../../src/engine/record.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

const OPTIONS = { variables: ['meta', 'key', 'headers'], functions: TIME_FUNCTIONS };

function reference(src: string): jsonata.Expression {
  const e = jsonata(src);
  for (const [name, { fn, signature }] of Object.entries(TIME_FUNCTIONS)) e.registerFunction(name, fn, signature);
  return e;
}

function compiled(src: string): SyncEvaluator | undefined {
  return compileSubset(jsonata(src).ast(), OPTIONS);
}

type Outcome = { value: unknown } | { error: string };

async function referenceOutcome(e: jsonata.Expression, input: unknown, bindings: Record<string, unknown> | undefined): Promise<Outcome> {
  try {
    return { value: await e.evaluate(input, bindings) };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { error: e.code ?? e.message ?? String(err) };
  }
}

/** Same value, JSONata-wise: Object.is on primitives (so -0 is not 0 and undefined is not null), structure on the rest. */
function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' && Object.is(v, -0)) return '-0';
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x === undefined ? '<undefined>' : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

interface Tally {
  answered: number;
  deferred: number;
}

/** Checks one evaluation; returns a failure description, or undefined when compiled and reference agree. */
async function differ(
  src: string,
  sync: SyncEvaluator,
  ref: jsonata.Expression,
  input: unknown,
  bindings: Record<string, unknown> | undefined,
  tally: Tally,
): Promise<string | undefined> {
  const expected = await referenceOutcome(ref, input, bindings);
  let got: unknown;
  try {
    got = sync(input, bindings);
  } catch (err) {
    return `${src} on ${show(input)}: compiled threw ${String(err)}; reference ${show(expected)}`;
  }
  if (got === DEFER) {
    tally.deferred++;
    return undefined;
  }
  tally.answered++;
  if ('error' in expected) return `${src} on ${show(input)} ${show(bindings)}: reference threw ${expected.error}, compiled answered ${show(got)}`;
  if (!sameValue(got, expected.value)) {
    return `${src} on ${show(input)} ${show(bindings)}: compiled ${show(got)}, reference ${show(expected.value)}`;
  }
  return undefined;
}

const BINDINGS = { meta: { op: 'c', source: { table: 'employee_activities' } }, key: 'k1', headers: { h: 'v' } };

/** Runs expressions over inputs; expects agreement everywhere and returns how often the closure answered. */
async function agree(sources: readonly string[], inputs: readonly unknown[], bindings: Record<string, unknown> | undefined = BINDINGS): Promise<Tally> {
  const tally: Tally = { answered: 0, deferred: 0 };
  const failures: string[] = [];
  for (const src of sources) {
    const sync = compiled(src);
    if (!sync) {
      failures.push(`${src}: not compiled`);
      continue;
    }
    const ref = reference(src);
    for (const input of inputs) {
      const failure = await differ(src, sync, ref, input, bindings, tally);
      if (failure) failures.push(failure);
    }
  }
  expect(failures).toEqual([]);
  return tally;
}

/** Expects the closure to defer on this input, and the interpreter to throw `code` there. */
async function defersWithError(src: string, input: unknown, code: string): Promise<void> {
  const sync = compiled(src);
  expect(sync, `${src} compiles`).toBeDefined();
  expect(sync!(input, BINDINGS)).toBe(DEFER);
  expect(await referenceOutcome(reference(src), input, BINDINGS)).toEqual({ error: code });
}

const SCALARS: readonly unknown[] = [0, -0, 1, -3, 2.5, 1e21, 10n, 'a', '', 'abc', '10', true, false, null, undefined];

describe('constructs agree with the interpreter', () => {
  it('paths over objects, with missing fields, primitives and nulls on the way', async () => {
    const inputs = [
      { a: { b: { c: 1 } } },
      { a: { b: null } },
      { a: { b: 'str' } },
      { a: 5 },
      { a: null },
      {},
      { a: { b: { c: { d: [1] } } } },
      'a string',
      null,
      undefined,
      42,
      { a: { b: { c: 0 } }, 'sp ace': 7 },
      JSON.parse('{"__proto__": {"b": 3}, "constructor": 1}'),
    ];
    const t = await agree(['a', 'a.b', 'a.b.c', 'a.b.c.d', '`sp ace`', 'constructor', 'toString', 'a.hasOwnProperty', '__proto__.b', '$', '$.a.b', 'a."b"'], inputs);
    expect(t.answered).toBeGreaterThan(t.deferred);
  });

  it('inherited fields are not fields (JSONata reads own fields only)', () => {
    const sync = compiled('toString')!;
    expect(sync({}, undefined)).toBeUndefined();
  });

  it('variables read the bindings, and paths on them', async () => {
    const bindingsList = [
      BINDINGS,
      { meta: { op: 'u' }, key: 7, headers: {} },
      { meta: null, key: null, headers: null },
      { meta: undefined, key: undefined, headers: undefined },
      {},
      undefined,
    ];
    for (const b of bindingsList) {
      await agree(['$meta', '$meta.op', '$meta.source.table', '$key', '$headers.h', '$meta.op = "c"', '$key & "/" & $meta.op'], [{ a: 1 }], b);
    }
  });

  it('a binding that is not enumerable is not bound, as in JSONata (which binds Object.keys)', async () => {
    const b = Object.defineProperty({}, 'meta', { value: { op: 'c' }, enumerable: false }) as Record<string, unknown>;
    const sync = compiled('$meta.op')!;
    expect(sync({}, b)).toBeUndefined();
    expect(await reference('$meta.op').evaluate({}, b)).toBeUndefined();
  });

  it('literals', async () => {
    await agree(['"x"', '1', '-5', '2.5e3', 'true', 'false', 'null', '""', '("x")'], [{}]);
  });

  it('= and != (deep, false when a side is missing)', async () => {
    const values = [...SCALARS, { x: 1 }, { x: 1, y: [1, 2] }, { y: [1, 2], x: 1 }, {}];
    const inputs = values.flatMap((a) => values.map((b) => ({ a, b })));
    const t = await agree(['a = b', 'a != b', 'a = 1', 'missing = missing', 'missing != 1'], inputs);
    expect(t.deferred).toBe(0);
  });

  it('< <= > >= on numbers and strings; undefined when a side is missing', async () => {
    const inputs = SCALARS.flatMap((a) => SCALARS.map((b) => ({ a, b })));
    const t = await agree(['a < b', 'a <= b', 'a > b', 'a >= b', 'a < 10', '"b" > a'], inputs);
    expect(t.answered).toBeGreaterThan(100);
  });

  it('comparison errors are the interpreter\'s (T2010, T2009)', async () => {
    await defersWithError('a < 1', { a: true }, 'T2010');
    await defersWithError('a < 1', { a: null }, 'T2010');
    await defersWithError('a < b', { a: 1, b: 'x' }, 'T2009');
    await defersWithError('a >= 1', { a: { x: 1 } }, 'T2010');
  });

  it('and / or cast each side and short-circuit', async () => {
    const values = [...SCALARS, { x: 1 }, {}];
    const inputs = values.flatMap((a) => values.map((b) => ({ a, b })));
    await agree(['a and b', 'a or b', 'missing and b', 'a or missing', 'a and b < 3', 'a >= 9 and a <= 17'], inputs);
  });

  it('and / or skip the right side when the left decides: an error there is never raised', async () => {
    const sync = compiled('false and (1 < "x")')!;
    expect(sync({}, BINDINGS)).toBe(false);
    expect(await reference('false and (1 < "x")').evaluate({})).toBe(false);
    expect(compiled('true or (1 < "x")')!({}, BINDINGS)).toBe(true);
  });

  it('? : casts the condition; a missing else gives undefined', async () => {
    const inputs = [...SCALARS, { x: 1 }, {}].map((a) => ({ a, d: a }));
    await agree(
      [
        'a ? "yes" : "no"',
        'a ? "yes"',
        '$type(d) != "number" ? null : d < 30 ? "short" : d < 300 ? "medium" : "long"',
        '(a ? 1 : 2) + 1',
      ],
      inputs,
    );
  });

  it('unary minus; D1002 on a non-number', async () => {
    await agree(['-a', '-(a)', '- -a'], [{ a: 3 }, { a: 0 }, { a: -2.5 }, {}, { a: null }, { a: 'x' }]);
    await defersWithError('-a', { a: 'x' }, 'D1002');
    await defersWithError('-a', { a: true }, 'D1002');
  });

  it('+ - * / % on numbers; undefined when a side is missing; T2001/T2002 otherwise', async () => {
    const inputs = SCALARS.flatMap((a) => SCALARS.map((b) => ({ a, b })));
    await agree(['a + b', 'a - b', 'a * b', 'a / b', 'a % b', 'a + 1', '2 * b'], inputs);
    await defersWithError('a + 1', { a: 'x' }, 'T2001');
    await defersWithError('1 + a', { a: 'x' }, 'T2002');
    await defersWithError('a + b', { a: null, b: undefined }, 'T2001');
  });

  it('a non-finite result defers: JSONata keeps Infinity at the top but throws D1001 where it meets it', async () => {
    const sync = compiled('a / b')!;
    expect(sync({ a: 1, b: 0 }, BINDINGS)).toBe(DEFER);
    expect(await reference('a / b').evaluate({ a: 1, b: 0 })).toBe(Infinity);
    await defersWithError('(a / b) ? 1 : 0', { a: 1, b: 0 }, 'D1001');
    await defersWithError('$type(a / b)', { a: 1, b: 0 }, 'D1001');
    // ... but not everywhere: comparisons take Infinity as it is. Deferring stays exact.
    expect(compiled('a / b > 1')!({ a: 1, b: 0 }, BINDINGS)).toBe(DEFER);
    expect(await reference('a / b > 1').evaluate({ a: 1, b: 0 })).toBe(true);
  });

  it('& concatenates with $string casts (numbers to 15 digits, objects as JSON)', async () => {
    // No bigints here: JSON.stringify throws on them (so they defer, as tested below).
    const values = [...SCALARS.filter((v) => typeof v !== 'bigint'), 0.1 + 0.2, 1 / 3, 123456789.123456789, { x: 0.1 + 0.2, y: [1, 'a', null] }, {}];
    const inputs = values.flatMap((a) => values.map((b) => ({ a, b })));
    const t = await agree(['a & b', 'a & "/" & b', '"" & a'], inputs);
    expect(t.deferred).toBe(0);
  });

  it('in: membership in a list of literals, strict (1 is not "1"), false when missing', async () => {
    const inputs = [...SCALARS, { x: 1 }, {}].map((a) => ({ a }));
    const t = await agree(['a in ["a", "abc", 1, true, null, 0]', 'a in "a"', 'a in []', 'a in [-0]', '$meta.op in ["c", "r"]'], inputs);
    expect(t.deferred).toBe(0);
    expect(compiled('a in b')).toBeUndefined();
    expect(compiled('a in [1, [2]]')).toBeUndefined();
    expect(compiled('a in [b]')).toBeUndefined();
  });

  it('blocks of one expression; longer blocks are not compiled', async () => {
    await agree(['(a)', '((a + 1))', '(a = 1)'], [{ a: 1 }, {}]);
    expect(compiled('(a; b)')).toBeUndefined();
    expect(compiled('()')).toBeUndefined();
  });
});

describe('functions agree with the interpreter', () => {
  const values: unknown[] = [
    ...SCALARS,
    0.1 + 0.2,
    2.5,
    3.5,
    -2.5,
    1.005,
    123.456,
    'Hello Wörld 😀',
    '  12.5 ',
    '12.5',
    '-1e3',
    '0x1F',
    '0x1g',
    '0b101',
    '0o17',
    '1e999',
    { x: 1 },
    {},
    { _jsonata_function: true },
  ];
  const inputs = values.map((a) => ({ a }));

  it('casts and tests: $string $number $boolean $not $exists $type', async () => {
    const t = await agree(
      ['$string(a)', '$string(a, true)', '$string(a, false)', '$number(a)', '$boolean(a)', '$not(a)', '$exists(a)', '$exists(missing)', '$type(a)'],
      inputs,
    );
    expect(t.answered).toBeGreaterThan(t.deferred);
  });

  it('strings: $length $uppercase $lowercase $substring $contains', async () => {
    // Lone and paired surrogates: JSONata counts code points.
    await agree(['$length(a)', '$substring(a, 1, 1)'], ['\ud83d', 'x\ud83d', '\ude00x', '😀😀', 'a😀b'].map((a) => ({ a })));
    await agree(
      [
        '$length(a)',
        '$uppercase(a)',
        '$lowercase(a)',
        '$substring(a, 1)',
        '$substring(a, -3)',
        '$substring(a, 1, 2)',
        '$substring(a, -2, 5)',
        '$substring(a, -10, 2)',
        '$substring(a, -10)',
        '$substring(a, 0, -1)',
        '$substring(a, missing)',
        '$substring(a, 2, missing)',
        '$substring(a, 1.5, 2)',
        '$contains(a, "l")',
        '$contains(a, missing)',
        '$contains("abc", a)',
      ],
      inputs,
    );
  });

  it('numbers: $round $floor $ceil $abs', async () => {
    await agree(['$round(a)', '$round(a, 2)', '$round(a, -1)', '$round(a, missing)', '$floor(a)', '$ceil(a)', '$abs(a)'], inputs);
  });

  it('time functions, with and without a zone, on ISO strings, epoch ms and bad values', async () => {
    const times = ['2024-03-31T01:30:00Z', '2024-03-31T01:30:00', 1711848600000, 0, -1, 'not a time', null, true, undefined, '2024-13-45', { x: 1 }];
    const t = await agree(
      ['$hour(t)', '$minute(t)', '$date(t)', '$weekday(t)', '$epochMillis(t)', '$hour(t, "Europe/Berlin")', '$date(t, tz)', '$hour(t, "Bad/Zone")'],
      times.map((t) => ({ t, tz: 'America/New_York' })),
    );
    expect(t.answered).toBeGreaterThan(t.deferred);
  });

  it('errors are the interpreter\'s: wrong argument types (T0410), bad casts (D3030), bad timestamps', async () => {
    await defersWithError('$uppercase(a)', { a: 1 }, 'T0410');
    await defersWithError('$length(a)', { a: null }, 'T0410');
    await defersWithError('$number(a)', { a: 'abc' }, 'D3030');
    await defersWithError('$hour(a)', { a: null }, 'T0410');
    const bad = await referenceOutcome(reference('$hour(a)'), { a: 'yesterday' }, BINDINGS);
    expect(bad).toEqual({ error: 'not a timestamp: a string of 9 characters' });
    expect(compiled('$hour(a)')!({ a: 'yesterday' }, BINDINGS)).toBe(DEFER);
  });

  it('a call whose argument types would make JSONata shift arguments or use the context defers', async () => {
    // `$substring(3, 4)`: 3 is not a string, so JSONata takes the context as the string.
    const sync = compiled('$substring(3, 4)')!;
    expect(sync('context string', BINDINGS)).toBe(DEFER);
    expect(await reference('$substring(3, 4)').evaluate('context string')).toBe('text');
  });

  it('a binding with a function\'s name hides the function, as in JSONata', async () => {
    const b = { ...BINDINGS, string: 'not a function' };
    expect(compiled('$string(1)')!({}, b)).toBe(DEFER);
    expect(await referenceOutcome(reference('$string(1)'), {}, b)).toEqual({ error: 'T1006' });
  });
});

describe('arrays and unusual values go to the interpreter', () => {
  it('an array anywhere along a path, in a binding, or as the input', async () => {
    const cases: [string, unknown, Record<string, unknown>?][] = [
      ['a.b', { a: [{ b: 1 }, { b: 2 }] }],
      ['a.b', { a: { b: [1, 2] } }],
      ['a', { a: [] }],
      ['a', [{ a: 1 }]],
      ['$', [1, 2]],
      ['$meta.op', {}, { meta: [{ op: 'c' }] }],
      ['a = 1', { a: [1] }],
      ['$string(a)', { a: [1] }],
    ];
    for (const [src, input, bindings] of cases) {
      expect(compiled(src)!(input, bindings ?? BINDINGS), src).toBe(DEFER);
    }
  });

  it('bigints (exact Debezium integers) pass through paths and equality, and defer elsewhere', async () => {
    const input = { a: 9007199254740993n, o: { b: 10n } };
    await agree(['a', 'o', 'a = 9007199254740993', 'a = a', 'o.b = o.b', 'a in [1]', '$exists(a)', '$type(a)'], [input]);
    for (const src of ['a + 1', '-a', 'a < 1', 'a ? 1 : 0', '$string(a)', '$string(o)', 'a & ""', '$number(a)', '$hour(a)', '$boolean(a)']) {
      expect(compiled(src)!(input, BINDINGS), src).toBe(DEFER);
    }
  });

  it('non-finite numbers in data', () => {
    expect(compiled('a + 1')!({ a: Infinity }, BINDINGS)).toBe(DEFER);
    expect(compiled('$string(a)')!({ a: { b: Infinity } }, BINDINGS)).toBe(DEFER);
  });

  it('compileExpression answers a deferred evaluation with the interpreter\'s result or error', async () => {
    const e = compileExpression('a.b');
    expect(e.isCompiled).toBe(true);
    const r = e.evaluate({ a: [{ b: 1 }, { b: 2 }] });
    expect(r).toBeInstanceOf(Promise);
    expect(Array.from((await r) as unknown[])).toEqual([1, 2]);
    const failing = compileExpression('a + 1');
    await expect(failing.evaluate({ a: 'x' })).rejects.toMatchObject({ code: 'T2001', message: 'The left side of the "+" operator must evaluate to a number' });
  });
});

describe('evaluateRecords with a compiled expression', () => {
  const rec = (value: unknown, op = 'c'): StreamRecord => ({
    key: null,
    value,
    headers: {},
    meta: { op },
    time: 0,
    position: { source: 's', partition: 's/0', offset: '0' },
    ack: new Ack(() => {}),
  });

  it('answers a batch synchronously when no record needs the interpreter', () => {
    const results = evaluateRecords(compileExpression('$meta.op = "c" and n > 1'), [rec({ n: 2 }), rec({ n: 2 }, 'u'), rec({})]);
    expect(results).toEqual([true, false, false]);
  });

  it('keeps record order when some records defer, and turns the interpreter\'s errors into EvalFailure', async () => {
    const results = evaluateRecords(compileExpression('n + 1'), [rec({ n: 1 }), rec({ n: [1, 2] }), rec({ n: 'x' }), rec({})]);
    expect(results).toBeInstanceOf(Promise);
    const settled = await results;
    expect(settled[0]).toBe(2);
    expect(settled[1]).toBeInstanceOf(EvalFailure); // JSONata: T2001 on an array of two
    expect(settled[2]).toBeInstanceOf(EvalFailure);
    expect((settled[2] as EvalFailure).error.message).toContain('T2001');
    expect(settled[3]).toBeUndefined();
  });
});

describe('what compiles', () => {
  it('out-of-subset expressions are left to the interpreter', () => {
    const outside = [
      'a[0]',
      'a[x > 1]',
      'a.b[0].c',
      'a.*',
      'a.**.b',
      '$map(a, function($v) { $v })',
      'function($x) { $x }',
      '$match(a, /x/)',
      '$contains(a, /x/)',
      'a ~> $string()',
      '$x := 1',
      '($x := 1; $x)',
      '[1, 2]',
      '{"a": 1}',
      'a{b: c}',
      'a in b',
      'a in [1..3]',
      '[1..3]',
      '$lookup(a, "b")',
      '$sum(a)',
      '$now()',
      '$string()',
      '$uppercase()',
      '$epochMillis(a, "UTC")',
      '$unknown',
      '$foo.bar',
      '"a" & $foo',
      '$$',
      '$$.a',
      'a^(b)',
      'a#$i',
      'a@$x',
      'a.b.%.c',
      'a.(b)',
      '$string(a, true, 3)',
      '$hour',
      '$meta(1)',
    ];
    const compiledOnes = outside.filter((src) => compiled(src) !== undefined);
    expect(compiledOnes).toEqual([]);
    for (const src of outside.slice(0, 3)) expect(compileExpression(src).isCompiled).toBe(false);
  });

  it('plain paths stay isPath (synchronous, no bindings read); other compiled expressions are not paths', () => {
    expect(compileExpression('a.b.c')).toMatchObject({ isPath: true, isCompiled: true });
    expect(compileExpression('$meta.op')).toMatchObject({ isPath: false, isCompiled: true });
    expect(compileExpression('a = 1')).toMatchObject({ isPath: false, isCompiled: true });
    expect(compileExpression('a[0]')).toMatchObject({ isPath: false, isCompiled: false });
  });

  it('every expression in pipelines/*.yaml compiles, except the listed ones the subset leaves out', () => {
    const outside = new Set([
      // variable assignment, $split, $lookup, an object constructor, array predicates
      'department-daily.yaml steps.located.set.department',
      // $toMillis is not in the subset
      'browsing-sessions.yaml steps.long-sessions.filter',
      // $join/$sort with a lambda (a window aggregate over all of a window's records)
      'browsing-sessions.yaml steps.sessions.aggregate.path',
      // $collect: accumulated by the window itself, never evaluated as an expression
      'security-alerts.yaml steps.download-bursts.aggregate.files',
      // `${BULK_DOWNLOADS:-10}` is filled in when the spec loads; this test reads the raw text
      'security-alerts.yaml steps.bulk-downloads.filter',
      // object constructors: alerts are few, after the filters
      'security-alerts.yaml steps.bulk-download-alerts.set.evidence',
      'security-alerts.yaml steps.off-hours-login-alerts.set.evidence',
      'security-alerts.yaml steps.bulk-alerts.set.alert',
      'security-alerts.yaml steps.login-alerts.set.alert',
      // $inCidr over an array of ranges (an array argument is outside the subset)
      'security-alerts.yaml steps.off-hours-logins.filter',
    ]);
    const dir = path.resolve('pipelines');
    const found: string[] = [];
    const notCompiled: string[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
      const spec = parseYaml(readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;
      for (const [where, src] of pipelineExpressions(spec)) {
        const label = `${file} ${where}`;
        found.push(label);
        if (!compileExpression(src).isCompiled && !outside.has(label)) notCompiled.push(`${label}: ${src}`);
      }
    }
    expect(found.length).toBeGreaterThan(20);
    expect(notCompiled).toEqual([]);
    // The exceptions are real: each one is still in a pipeline and still not compiled.
    for (const label of outside) expect(found).toContain(label);
  });

  it('parses simple signatures; leaves out array and function parameters', () => {
    expect(parseSimpleSignature('<(sn)-s?:n>')).toEqual([
      { accepts: new Set(['m', 's', 'n']), optional: false },
      { accepts: new Set(['m', 's']), optional: true },
    ]);
    expect(parseSimpleSignature('<s-(sf):b>')?.[1]?.accepts).toEqual(new Set(['m', 's']));
    expect(parseSimpleSignature('<a<n>:n>')).toBeUndefined();
    expect(parseSimpleSignature('<f:x>')).toBeUndefined();
    expect(parseSimpleSignature('<s+:s>')).toBeUndefined();
  });
});

/** Every JSONata expression of a pipeline spec, labelled by where it is. */
function pipelineExpressions(spec: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const add = (where: string, v: unknown) => {
    if (typeof v === 'string') out.push([where, v]);
  };
  for (const [name, step] of Object.entries(obj(spec.steps))) {
    const s = obj(step);
    add(`steps.${name}.filter`, s.filter);
    for (const [field, src] of Object.entries(obj(s.set))) add(`steps.${name}.set.${field}`, src);
    add(`steps.${name}.window.time`, obj(s.window).time);
    if (Array.isArray(s.group_by)) s.group_by.forEach((g, i) => add(`steps.${name}.group_by[${i}]`, g));
    else for (const [k, src] of Object.entries(obj(s.group_by))) add(`steps.${name}.group_by.${k}`, src);
    for (const [k, src] of Object.entries(obj(s.aggregate))) {
      if (typeof src !== 'string') continue;
      // Built-in aggregates ($count(), $sum(x) ...) are computed incrementally; only their argument is an expression.
      const builtin = /^\s*\$(count|sum|average|min|max|first|last|countDistinct)\(([\s\S]*)\)\s*$/.exec(src);
      if (builtin) {
        if (builtin[2]!.trim()) add(`steps.${name}.aggregate.${k}`, builtin[2]!);
      } else add(`steps.${name}.aggregate.${k}`, src);
    }
  }
  const sinkLists = [spec.sinks, ...Object.values(obj(spec.profiles)).map((p) => obj(p).sinks)];
  for (const sinks of sinkLists) {
    for (const [name, sink] of Object.entries(obj(sinks))) {
      const kafka = obj(obj(sink).kafka);
      add(`sinks.${name}.kafka.key`, kafka.key);
      add(`sinks.${name}.kafka.topic_expr`, kafka.topic_expr);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A generated corpus: random expressions over the subset, random inputs, fixed seed.

class ExpressionGenerator {
  constructor(private readonly random: () => number) {}

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  leaf(): string {
    return this.pick([
      () => this.pick(['n', 's', 'z', 'f', 'neg', 't', 'nul', 'obj', 'obj.n', 'obj.s', 'obj.deep.x', 'arr', 'arr.x', 'missing', 'missing.x', 'ts', '`sp ace`', 'any']),
      () => this.pick(['0', '1', '-1', '2.5', '30', '300', '1e3', '0.1', '9', '17']),
      () => this.pick(['""', '"c"', '"abc"', '"10"', '"0x1F"', '"Ünï😀"', '"true"', '"number"', '"string"']),
      () => this.pick(['true', 'false', 'null']),
      () => this.pick(['$meta.op', '$meta.source.table', '$key', '$headers.h', '$meta', '$', '$.n']),
    ])();
  }

  call(depth: number): string {
    const e = () => this.expr(depth - 1);
    return this.pick([
      () => `$string(${e()})`,
      () => `$string(${e()}, ${this.pick(['true', 'false', 't'])})`,
      () => `$number(${e()})`,
      () => `$boolean(${e()})`,
      () => `$not(${e()})`,
      () => `$exists(${e()})`,
      () => `$type(${e()})`,
      () => `$length(${e()})`,
      () => `$uppercase(${e()})`,
      () => `$lowercase(${e()})`,
      () => `$substring(${e()}, ${e()})`,
      () => `$substring(${e()}, ${e()}, ${e()})`,
      () => `$contains(${e()}, ${e()})`,
      () => `$round(${e()})`,
      () => `$round(${e()}, ${this.pick(['0', '1', '2', '-1', 'n'])})`,
      () => `$floor(${e()})`,
      () => `$ceil(${e()})`,
      () => `$abs(${e()})`,
      () => `$${this.pick(['hour', 'minute', 'date', 'weekday', 'epochMillis'])}(${this.pick(['ts', 'n', 's', 'missing', e()])})`,
      () => `$${this.pick(['hour', 'date'])}(ts, ${this.pick(['"UTC"', '"Europe/Berlin"', 's', 'missing'])})`,
    ])();
  }

  expr(depth: number): string {
    if (depth <= 0 || this.random() < 0.25) return this.leaf();
    const e = () => this.expr(depth - 1);
    return this.pick([
      () => `(${e()} ${this.pick(['=', '!=', '<', '<=', '>', '>='])} ${e()})`,
      () => `(${e()} ${this.pick(['+', '-', '*', '/', '%'])} ${e()})`,
      () => `(${e()} & ${e()})`,
      () => `(${e()} ${this.pick(['and', 'or'])} ${e()})`,
      () => `(${e()} in ${this.pick(['["c", "abc", 1, 0, true, null]', '"c"', '[]', '[5]'])})`,
      () => `-${this.leaf()}`,
      () => `(${e()} ? ${e()} : ${e()})`,
      () => `(${e()} ? ${e()})`,
      () => this.call(depth),
      () => this.call(depth),
    ])();
  }

  input(): unknown {
    const num = () => this.pick<unknown>([5, 0, -0, -3, 2.5, 0.1, 1e308, 12, 300, 12n, '5', null, true, undefined, [1, 2], { a: 1 }]);
    const value: Record<string, unknown> = {
      n: num(),
      s: this.pick<unknown>(['abc', '', 'c', '10', 'Hello 😀', 5, null, undefined, ['a']]),
      z: this.pick<unknown>([0, 1, '0', false, undefined]),
      f: this.pick<unknown>([0.1 + 0.2, 1 / 3, -2.5, 2.5, 3.5, 1e-7, 'x']),
      neg: this.pick<unknown>([-1, -0.5, -1e21, 0]),
      t: this.pick<unknown>([true, false, 'true', 1, null]),
      nul: null,
      obj: this.pick<unknown>([{ n: 1, s: 'x', deep: { x: 2 } }, { n: [1, 2] }, {}, { deep: null }, { deep: { x: [3] } }, 'not an object', null]),
      arr: this.pick<unknown>([[{ x: 1 }, { x: 2 }], [], [1], { x: 'single' }]),
      ts: this.pick<unknown>(['2024-03-31T01:30:00Z', '2024-06-01 12:00:00', 1711848600000, 'garbage', null, undefined, -1e15]),
      'sp ace': this.pick<unknown>([1, 'x', undefined]),
      any: this.pick<unknown>([undefined, null, 0, '', 'x', {}, { k: 1 }, [], [0], true, 10n]),
    };
    for (const k of Object.keys(value)) if (value[k] === undefined) delete value[k];
    return this.random() < 0.05 ? [value] : value;
  }

  bindings(): Record<string, unknown> | undefined {
    return this.pick<Record<string, unknown> | undefined>([
      BINDINGS,
      BINDINGS,
      { meta: { op: 'u', source: { table: 't' } }, key: 12, headers: { h: ['a', 'b'] } },
      { meta: null, key: null, headers: {} },
      undefined,
    ]);
  }
}

describe('a generated corpus agrees with the interpreter', () => {
  it('600 random expressions over the subset, each on 30 random inputs (seed 20241125)', async () => {
    const gen = new ExpressionGenerator(mulberry32(20241125));
    const tally: Tally = { answered: 0, deferred: 0 };
    const failures: string[] = [];
    const notCompiled: string[] = [];
    const inputs = Array.from({ length: 30 }, () => ({ input: gen.input(), bindings: gen.bindings() }));
    for (let i = 0; i < 600; i++) {
      const src = gen.expr(4);
      const sync = compiled(src);
      if (!sync) {
        notCompiled.push(src);
        continue;
      }
      const ref = reference(src);
      for (const { input, bindings } of inputs) {
        const failure = await differ(src, sync, ref, input, bindings, tally);
        if (failure) failures.push(failure);
      }
    }
    expect(notCompiled).toEqual([]);
    expect(failures.slice(0, 20)).toEqual([]);
    // The corpus must exercise the closures, not only the fallback.
    expect(tally.answered).toBeGreaterThan(5000);
    expect(tally.deferred).toBeGreaterThan(500);
  }, 60_000);
});
