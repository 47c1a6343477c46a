import { describe, expect, it } from 'vitest';
import {
  JsonSyntaxError,
  MAX_JSON_DEPTH,
  constantJson,
  integerLiteral,
  nestingExceeds,
  parseJson,
  parseJsonExactIn,
  parseJsonStrict,
  stringifyJson,
  stringifyJsonForWire,
  stringifyJsonIteratively,
  unsafeIntegerCandidates,
  unsafeIntegerLiterals,
} from '../../src/engine/json.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

describe('parseJson', () => {
  it('keeps a Debezium ts_ns beyond 2^53 as an exact bigint', () => {
    const v = parseJson('{"ts_ms":1735813800123,"ts_ns":1735813800123456789}') as Record<string, unknown>;
    expect(v.ts_ns).toBe(1735813800123456789n);
    expect(v.ts_ms).toBe(1735813800123);
    // What JSON.parse would have made of it: proof the test can fail.
    expect(BigInt(JSON.parse('1735813800123456789') as number)).not.toBe(1735813800123456789n);
  });

  it('returns numbers for 16-digit integers a double holds exactly (epoch microseconds)', () => {
    expect(parseJson('[1735813800123456, 9007199254740991, -9007199254740991]')).toEqual([1735813800123456, 9007199254740991, -9007199254740991]);
  });

  it('returns bigints just beyond the safe range, both signs', () => {
    expect(parseJson('[9007199254740993,-9007199254740993,123456789012345678901234567890]')).toEqual([
      9007199254740993n,
      -9007199254740993n,
      123456789012345678901234567890n,
    ]);
  });

  it('leaves long digit runs inside strings alone, including after escaped quotes', () => {
    const text = '{"a":"id 12345678901234567890","b":"q\\"12345678901234567890","c":12345678901234567890}';
    expect(parseJson(text)).toEqual({ a: 'id 12345678901234567890', b: 'q"12345678901234567890', c: 12345678901234567890n });
  });

  it('is not fooled by value-like text inside strings', () => {
    const text = '{"s":"t:12345678901234567890,[98765432109876543210","n":[12345678901234567890]}';
    expect(parseJson(text)).toEqual({ s: 't:12345678901234567890,[98765432109876543210', n: [12345678901234567890n] });
    expect(parseJson(' 12345678901234567890 ')).toBe(12345678901234567890n);
  });

  it('reads long fractions and exponents as doubles, not integers', () => {
    expect(parseJson('[1.12345678901234567890, 12345678901234567890e2, 1e12345678901234567]')).toEqual([
      1.1234567890123457,
      Number('12345678901234567890e2'),
      Infinity,
    ]);
  });

  it('parses nesting up to MAX_JSON_DEPTH, bigints at the bottom included', () => {
    const deep = `${'['.repeat(MAX_JSON_DEPTH)}12345678901234567890${']'.repeat(MAX_JSON_DEPTH)}`;
    let v = parseJson(deep);
    for (let i = 0; i < MAX_JSON_DEPTH; i++) v = (v as unknown[])[0] as never;
    expect(v).toBe(12345678901234567890n);
    expect(parseJson(`{"s":"${'['.repeat(MAX_JSON_DEPTH * 2)}"}`)).toEqual({ s: '['.repeat(MAX_JSON_DEPTH * 2) });
  });

  it('refuses valid JSON nested one level deeper than MAX_JSON_DEPTH, at the bracket too deep, on both paths', () => {
    expect(MAX_JSON_DEPTH).toBe(512);
    const tooDeep = `${'{"a":'.repeat(MAX_JSON_DEPTH + 1)}1${'}'.repeat(MAX_JSON_DEPTH + 1)}`;
    // Native JSON.parse takes it: proof the limit is ours.
    expect(() => JSON.parse(tooDeep)).not.toThrow();
    for (const text of [tooDeep, tooDeep.replace('1}', '12345678901234567890}')]) {
      try {
        parseJson(text);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(JsonSyntaxError);
        expect((err as JsonSyntaxError).message).toBe(`nesting deeper than 512 levels at line 1 column ${MAX_JSON_DEPTH * 5 + 1}`);
        expect((err as JsonSyntaxError).position).toBe(MAX_JSON_DEPTH * 5);
      }
    }
    expect(() => parseJsonStrict(tooDeep)).toThrow(/nesting deeper than 512 levels/);
  });

  it('refuses a 200,000-level record (400 KB, well under the 1 MB limit) quickly, valid or cut short', () => {
    const depth = 200_000;
    const t0 = performance.now();
    expect(() => parseJson(`${'['.repeat(depth)}${']'.repeat(depth)}`)).toThrow(/nesting deeper than 512 levels/);
    expect(() => parseJson('['.repeat(depth))).toThrow(/nesting deeper than 512 levels/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('reports syntax errors with line and column, on both paths', () => {
    const fast = () => parseJson('{"a": 1,\n  "b": }');
    expect(fast).toThrow(JsonSyntaxError);
    expect(fast).toThrow('unexpected character "}" at line 2 column 8');
    try {
      parseJson('{"ts_ns": 1735813800123456789,\n "x": tru}');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(JsonSyntaxError);
      expect((err as JsonSyntaxError).line).toBe(2);
      expect((err as JsonSyntaxError).column).toBe(7);
      expect((err as JsonSyntaxError).position).toBe(37);
    }
    expect(() => parseJson('')).toThrow(/unexpected end of JSON at line 1 column 1/);
    expect(() => parseJson('"open')).toThrow(/unterminated string/);
    expect(() => parseJson('[1] x')).toThrow(/unexpected text after the JSON value/);
  });

  it('decodes escapes on the lossless path', () => {
    expect(parseJson('{"s":"\\u00e9\\n\\t\\\\\\/","n":12345678901234567890}')).toEqual({ s: 'é\n\t\\/', n: 12345678901234567890n });
  });

  it('agrees with JSON.parse on text without unsafe integers', () => {
    const text = '{"a":[1,2.5,-3e2,true,false,null,{"b":"c"}],"d":""}';
    expect(parseJson(text)).toEqual(JSON.parse(text));
  });
});

describe('parseJson with unsafe integers: the rounded parse restored, or the marked path when in doubt', () => {
  it('gives exact values where the native parse rounds them, as the exact parser does', () => {
    const texts = [
      // A Debezium payload: ts_ns in the source block and at the top, both rounded by JSON.parse.
      '{"before":null,"after":{"id":7},"source":{"ts_ms":1735813800123,"ts_ns":1735813800123456789},"op":"c","ts_ns":1735813800200000001}',
      // Integer-like keys come first in a walk, whatever their place in the text.
      '{"b":12345678901234567891,"2":22345678901234567891,"1":32345678901234567891}',
      // Two literals that round to the same double: which is which cannot be told by value.
      '[12345678901234567891,12345678901234567892]',
      // A double written with a fraction or exponent stays a double, beside an unsafe integer.
      '[1.0e19,10000000000000000001]',
      '[10000000000000000001,1e19]',
      // Candidate-looking digits inside a string.
      '{"s":"a:12345678901234567891","n":22345678901234567891}',
      '12345678901234567891',
      '[-12345678901234567891, 9007199254740993, 9007199254740992]',
    ];
    for (const t of texts) expect(parseJson(t), t).toEqual(parseJsonStrict(t));
  });

  it('agrees with the exact parser on random documents full of unsafe integers, doubles that round alike and integer-like keys', () => {
    const random = mulberry32(1234);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const numbers = () =>
      pick([
        () => String(BigInt(Number.MAX_SAFE_INTEGER) + BigInt(1 + Math.floor(random() * 5))),
        () => `-${String(BigInt(Number.MAX_SAFE_INTEGER) + BigInt(1 + Math.floor(random() * 5)))}`,
        () => `17358138001234567${Math.floor(random() * 90 + 10)}`,
        () => '1e19',
        () => '10000000000000000000.0',
        () => String(Math.floor(random() * 1000)),
        () => '"x:12345678901234567891"',
      ])();
    const doc = (depth: number): string => {
      if (depth === 0 || random() < 0.3) return numbers();
      if (random() < 0.5) return `[${Array.from({ length: 1 + Math.floor(random() * 4) }, () => doc(depth - 1)).join(',')}]`;
      const keys = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(['a', 'b', 'ts_ns', '0', '1', '7', '10']));
      return `{${[...new Set(keys)].map((k) => `"${k}":${doc(depth - 1)}`).join(',')}}`;
    };
    for (let i = 0; i < 2000; i++) {
      const t = doc(3);
      expect(parseJson(t), t).toEqual(parseJsonStrict(t));
    }
  });
});

describe('parseJsonExactIn: exact only in the members named, doubles elsewhere', () => {
  const slots = [
    { name: 'after', nested: [{ name: 'id', nested: null }] },
    { name: 'ts_ms', nested: null },
  ];

  it('keeps what JSON.parse gives when no named member was rounded, unsafe integers elsewhere included', () => {
    const text = '{"after":{"id":7,"big":12345678901234567891},"source":{"ts_ns":1735813800123456789},"ts_ms":1735813800123,"ts_ns":1735813800200000001}';
    const value = parseJsonExactIn(text, slots);
    expect(value).toEqual(JSON.parse(text));
    expect((value as { ts_ns: unknown }).ts_ns).toBe(1735813800200000000); // the double nearest 1735813800200000001
  });

  it('is parseJson, exact everywhere, when a named member was rounded, at any depth', () => {
    for (const text of [
      '{"after":{"id":9007199254740993},"ts_ns":1735813800200000001}',
      '{"after":{"id":-12345678901234567891},"ts_ms":1}',
      '{"after":{"id":1},"ts_ms":12345678901234567891,"x":[22345678901234567891]}',
    ]) {
      expect(parseJsonExactIn(text, slots), text).toEqual(parseJsonStrict(text));
    }
  });

  it('agrees with the exact parser in the named members, and with JSON.parse elsewhere, on random documents', () => {
    const random = mulberry32(99);
    const number = () =>
      random() < 0.4 ? String(BigInt(Number.MAX_SAFE_INTEGER) + BigInt(1 + Math.floor(random() * 1e6))) : String(Math.floor(random() * 1e6));
    for (let i = 0; i < 500; i++) {
      const text = `{"after":{"id":${number()},"other":${number()}},"before":null,"ts_ms":${number()},"ts_ns":${number()}}`;
      const exact = parseJsonStrict(text) as { after: { id: unknown }; ts_ms: unknown };
      const value = parseJsonExactIn(text, slots) as { after: { id: unknown; other: unknown }; ts_ms: unknown; ts_ns: unknown };
      expect(value.after.id, text).toBe(exact.after.id);
      expect(value.ts_ms, text).toBe(exact.ts_ms);
      const roundedAny = typeof exact.after.id === 'bigint' || typeof exact.ts_ms === 'bigint';
      // Elsewhere: JSON.parse's doubles, unless a named member made the whole parse exact.
      expect(value, text).toEqual(roundedAny ? exact : JSON.parse(text));
    }
  });

  it('says where text is not JSON and refuses nesting too deep, as parseJson does', () => {
    expect(() => parseJsonExactIn('{"after":{"id":1},}', slots)).toThrow(JsonSyntaxError);
    expect(() => parseJsonExactIn('{"after":{"id":1},}', slots)).toThrow(/line 1 column 19/);
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    expect(() => parseJsonExactIn(deep, slots)).toThrow(/nesting deeper than 512/);
  });

  it('leaves a named member alone where it is not an object member: absent, null, or an array in its place', () => {
    expect(parseJsonExactIn('{"after":null,"ts_ms":"x"}', slots)).toEqual({ after: null, ts_ms: 'x' });
    expect(parseJsonExactIn('{"after":[12345678901234567891]}', slots)).toEqual({ after: [12345678901234567000] });
    expect(parseJsonExactIn('[1,2]', slots)).toEqual([1, 2]);
  });
});

describe('nestingExceeds', () => {
  it('counts arrays and objects outside strings, escaped quotes included', () => {
    expect(nestingExceeds('[[{"a":1}],[{}]]', 3)).toBe(false);
    expect(nestingExceeds('[[{"a":[1]}]]', 3)).toBe(true);
    expect(nestingExceeds('["[[[[", {"\\\"[[[": "{{{{"}]', 2)).toBe(false);
    expect(nestingExceeds('[[],[],[],[],[]]', 2)).toBe(false);
    expect(nestingExceeds('[[[[', 3)).toBe(true);
  });
});

describe('unsafeIntegerLiterals', () => {
  it('finds only integer tokens outside strings that exceed 2^53', () => {
    const text = '{"a":"9007199254740993","b":9007199254740993,"c":9007199254740991,"d":-9007199254740993}';
    const spans = unsafeIntegerLiterals(text);
    expect(spans.map(([s, e]) => text.slice(s, e))).toEqual(['9007199254740993', '-9007199254740993']);
  });
});

describe('unsafeIntegerCandidates', () => {
  it('finds, sign included, exactly the literals the exact scan finds when no string holds digits', () => {
    const random = mulberry32(99);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const beyond = () => String(BigInt(Number.MAX_SAFE_INTEGER) + BigInt(Math.floor(random() * 3) - 1) * BigInt(Math.floor(random() * 3)));
    const literal = () =>
      pick([
        beyond,
        () => `-${beyond()}`,
        () => `${1 + Math.floor(random() * 9)}${'0123456789'.repeat(2).slice(0, 15 + Math.floor(random() * 5))}`,
        () => `-${1 + Math.floor(random() * 9)}${'9876543210'.repeat(2).slice(0, 15 + Math.floor(random() * 5))}`,
        () => String(Math.floor(random() * 1e6)),
        () => '12345678901234567.5',
        () => '-98765432109876543e2',
        () => '"text"',
      ])();
    for (let i = 0; i < 1000; i++) {
      const text = `{"a":${literal()},"b":[${literal()}, ${literal()}],"c":{"d":  ${literal()}}}`;
      expect(unsafeIntegerCandidates(text), text).toEqual(unsafeIntegerLiterals(text));
    }
  });
});

describe('unsafeIntegerCandidates against a regex over every character', () => {
  /** The scan it replaced, every character read: the reference. */
  function byRegex(text: string): [number, number][] {
    const spans: [number, number][] = [];
    for (const m of text.matchAll(/[:,[][ \t\n\r]*(-?)(\d{16,})(?![\d.eE])/g)) {
      const digits = m[2]!;
      if (BigInt(digits) <= BigInt(Number.MAX_SAFE_INTEGER)) continue;
      const end = m.index + m[0].length;
      spans.push([end - digits.length - m[1]!.length, end]);
    }
    return spans;
  }

  it('finds the same runs wherever they fall against its probes, strings and oddities included', () => {
    const random = mulberry32(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const digits = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 1 + Math.floor(random() * 9) : Math.floor(random() * 10))).join('');
    const piece = () =>
      pick([
        () => digits(14 + Math.floor(random() * 8)), // 14-21 digits: on both sides of 2^53 and of the probe stride
        () => `-${digits(15 + Math.floor(random() * 6))}`,
        () => `${digits(17)}.5`,
        () => `${digits(17)}e3`,
        () => `"${digits(18)}"`, // in a string, after a quote: not in a value position
        () => `"x:${digits(18)}"`, // in a string, after a colon: a candidate the exact scan later drops
        () => 'null',
        () => `"${'a'.repeat(Math.floor(random() * 20))}"`,
        () => String(9007199254740992 + Math.floor(random() * 3)),
      ])();
    const blank = () => pick(['', '', ' ', '\n  ', '\t']);
    let found = 0;
    for (let i = 0; i < 3000; i++) {
      // A varying prefix moves every run across the probe positions.
      const members = Array.from({ length: 1 + Math.floor(random() * 6) }, () => `${blank()}${piece()}`);
      const text = `${' '.repeat(Math.floor(random() * 17))}{"k":${blank()}[${members.join(',')}],"v":${piece()}}`;
      const expected = byRegex(text);
      expect(unsafeIntegerCandidates(text), text).toEqual(expected);
      found += expected.length;
    }
    expect(found).toBeGreaterThan(1000);
  });

  it('finds a whole top-level number, which has no opener before it', () => {
    expect(unsafeIntegerCandidates(' 12345678901234567890 ')).toEqual([[1, 21]]);
    expect(unsafeIntegerCandidates('1234567890123456')).toEqual([]);
  });
});

describe('integerLiteral', () => {
  it('is a number when exact, a bigint when not', () => {
    expect(integerLiteral('123')).toBe(123);
    expect(integerLiteral('9007199254740992')).toBe(9007199254740992n);
    expect(integerLiteral('-9007199254740991')).toBe(-9007199254740991);
  });
});

describe('stringifyJson', () => {
  it('writes bigints as plain digits and round-trips with parseJson', () => {
    const value = { ts_ns: 1735813800123456789n, nested: [{ id: -12345678901234567890n }], s: 'text' };
    const text = stringifyJson(value);
    expect(text).toBe('{"ts_ns":1735813800123456789,"nested":[{"id":-12345678901234567890}],"s":"text"}');
    expect(parseJson(text)).toEqual(value);
  });

  it('leaves bigints elsewhere as they were: JSON.stringify still throws on one, and the logger writes the number', async () => {
    expect(stringifyJson({ n: 12345678901234567890n })).toBe('{"n":12345678901234567890}');
    expect(() => JSON.stringify({ n: 1n })).toThrow(TypeError);
    const { pino } = await import('pino');
    const lines: string[] = [];
    pino({ base: null, timestamp: false }, { write: (line: string) => lines.push(line) }).info({ lsn: 12345678901234567890n }, 'x');
    expect(lines[0]).toContain('"lsn":12345678901234567890');
  });

  it('never turns a data string into a number', () => {
    const value = { s: '\u0001bigint-x:1', n: 12345678901234567890n };
    expect(parseJson(stringifyJson(value))).toEqual(value);
  });

  it('writes undefined as null and matches JSON.stringify otherwise', () => {
    expect(stringifyJson(undefined)).toBe('null');
    expect(stringifyJson({ a: [1, 'x', null] }, 2)).toBe(JSON.stringify({ a: [1, 'x', null] }, null, 2));
  });

  it('writes a value nested 200,000 levels deep instead of overflowing the stack', () => {
    const depth = 200_000;
    let deep: unknown = 12345678901234567890n;
    for (let i = 0; i < depth; i++) deep = i % 2 === 0 ? [deep] : { a: deep };
    // Native JSON.stringify overflows on it: proof the test can fail.
    expect(() => JSON.stringify(deep, (_k, v: unknown) => (typeof v === 'bigint' ? 0 : v))).toThrow(RangeError);
    const text = stringifyJson(deep);
    expect(text).toBe(`${'{"a":['.repeat(depth / 2)}12345678901234567890${']}'.repeat(depth / 2)}`);
  });
});

describe('constantJson', () => {
  /** A Connect-like schema; `$&` and `$1` in a string would be patterns to a string replacement. */
  const schema = () => ({ type: 'struct', fields: [{ type: 'int64', field: 'id', doc: 'costs $& and $1 "quoted"\n' }], name: 'x.Value', version: 2 });

  it('writes the marked object as JSON.stringify writes an unmarked copy, wherever and however often it occurs', () => {
    const marked = constantJson(schema());
    const value = { schema: marked, payload: { id: 12345678901234567890n, again: [marked, { marked }], s: 'text', neg: -98765432109876543210n } };
    const plain = { schema: schema(), payload: { id: 0, again: [schema(), { marked: schema() }], s: 'text', neg: 1 } };
    const expected = JSON.stringify(plain).replace('"id":0', '"id":12345678901234567890').replace('"neg":1', '"neg":-98765432109876543210');
    expect(stringifyJson(value)).toBe(expected);
    expect(stringifyJson(value, 2)).toBe(
      JSON.stringify(plain, null, 2).replace('"id": 0', '"id": 12345678901234567890').replace('"neg": 1', '"neg": -98765432109876543210'),
    );
    expect(stringifyJson(marked)).toBe(JSON.stringify(schema()));
  });

  it('is written as usual outside stringifyJson, and its copies are plain objects', () => {
    const marked = constantJson(schema());
    expect(JSON.stringify({ s: marked })).toBe(JSON.stringify({ s: schema() }));
    expect(Object.keys(marked)).toEqual(Object.keys(schema()));
    expect('toJSON' in { ...marked }).toBe(false);
    expect(marked).toEqual(schema());
  });
});

describe('stringifyJsonForWire', () => {
  const schema = () => ({ type: 'struct', name: 'ünïcode 😀 "schema"', doc: 'costs $& and $1', fields: [{ type: 'int64', field: 'id' }] });

  it('gives the UTF-8 bytes of what JSON.stringify writes for an unmarked copy when the value holds constants', () => {
    const marked = constantJson(schema());
    const cases: [unknown, unknown][] = [
      // Constants and bigints among multi-byte text, a constant first and last, one nested twice.
      [
        { schema: marked, payload: { name: 'Zoë ✓', odd: '\u0001not a mark "\u0001"', ts_ns: 1735813800123456789n, again: [marked, { marked }], neg: -98765432109876543210n }, tail: marked },
        { schema: schema(), payload: { name: 'Zoë ✓', odd: '\u0001not a mark "\u0001"', ts_ns: '<ts>', again: [schema(), { marked: schema() }], neg: '<neg>' }, tail: schema() },
      ],
      // The whole value is the constant: no text around its marker.
      [marked, schema()],
      [[marked, marked], [schema(), schema()]],
    ];
    for (const [value, plain] of cases) {
      const expected = JSON.stringify(plain).replace('"<ts>"', '1735813800123456789').replace('"<neg>"', '-98765432109876543210');
      const wire = stringifyJsonForWire(value);
      expect(Buffer.isBuffer(wire)).toBe(true);
      expect((wire as Buffer).toString('utf8')).toBe(expected);
      expect((wire as Buffer).length).toBe(Buffer.byteLength(expected));
    }
  });

  it('gives stringifyJson\'s text when the value holds no constant', () => {
    for (const value of [{ a: 'é', n: 12345678901234567890n }, [1, 'x'], null, 'plain', { schema: schema() }]) {
      expect(stringifyJsonForWire(value)).toBe(stringifyJson(value));
    }
  });
});

/** A random value of the kinds records hold and a few JSON.stringify treats specially. */
function randomValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 4 ? 9 : 12));
  const leaves: (() => unknown)[] = [
    () => null,
    () => next() < 0.5,
    () => [0, -0, 1.5, -3e21, 1e-7, NaN, Infinity, Math.floor(next() * 1e9)][Math.floor(next() * 8)],
    () => ['', 'plain', 'q"u\\o\nte', '\u0000\u001f', '\ud800 lone', 'é😀', '</script>'][Math.floor(next() * 7)],
    () => undefined,
    () => () => 1,
    () => new Date(Math.floor(next() * 2e12)),
    () => Symbol('s'),
    () => ({ toJSON: (key: string) => `toJSON(${key})` }),
  ];
  if (pick < leaves.length) return leaves[pick]!();
  const n = Math.floor(next() * 4);
  if (pick === 9) return Array.from({ length: n }, () => randomValue(next, depth + 1));
  const obj: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) obj[['a', 'b c', '"k"', '1', '__x'][Math.floor(next() * 5)]!] = randomValue(next, depth + 1);
  return obj;
}

describe('stringifyJsonIteratively', () => {
  it('writes exactly what JSON.stringify writes, for random values and every indent', () => {
    const next = mulberry32(11);
    for (let i = 0; i < 3000; i++) {
      const value = randomValue(next, 0);
      for (const indent of [undefined, 0, 2, 4.7, 20]) {
        expect(stringifyJsonIteratively(value, indent), `value #${i}, indent ${indent}`).toBe(JSON.stringify(value, null, indent) ?? 'null');
      }
    }
  });

  it('writes bigints as digits and refuses cycles as JSON.stringify does', () => {
    expect(stringifyJsonIteratively({ n: [-12345678901234567890n, new Number(2), new String('s'), new Boolean(false)] })).toBe(
      '{"n":[-12345678901234567890,2,"s",false]}',
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = [cyclic];
    expect(() => stringifyJsonIteratively(cyclic)).toThrow(TypeError);
    const shared = { x: 1 };
    expect(stringifyJsonIteratively([shared, shared])).toBe('[{"x":1},{"x":1}]');
  });
});

describe('parseJsonStrict (our own parser)', () => {
  it('agrees with parseJson, bigints included', () => {
    const texts = [
      '{"a":[1,2.5,-3e2,true,false,null,{"b":"c"}],"d":""}',
      '{"ts_ns":1735813800123456789,"s":"x12345678901234567890","q":"\\"","u":"\\u00e9"}',
      ' [ -0 , 0.5e-3 , 12345678901234567890 ] ',
    ];
    for (const t of texts) expect(parseJsonStrict(t)).toEqual(parseJson(t));
  });

  it('keeps __proto__ as plain data', () => {
    const v = parseJsonStrict('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(v.__proto__).toEqual({ polluted: true });
  });
});
