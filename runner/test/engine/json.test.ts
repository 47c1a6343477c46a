import { describe, expect, it } from 'vitest';
import {
  JsonSyntaxError,
  MAX_JSON_DEPTH,
  integerLiteral,
  parseJson,
  parseJsonStrict,
  stringifyJson,
  unsafeIntegerLiterals,
} from '../../src/engine/json.ts';

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

  it('parses deep structures, and refuses absurd nesting with a position', () => {
    const depth = 1000;
    const deep = `${'['.repeat(depth)}12345678901234567890${']'.repeat(depth)}`;
    let v = parseJson(deep);
    for (let i = 0; i < depth; i++) v = (v as unknown[])[0] as never;
    expect(v).toBe(12345678901234567890n);
    // Invalid and absurdly deep: reported as an error, not a stack overflow.
    expect(() => parseJson('['.repeat(MAX_JSON_DEPTH * 20))).toThrow(/nesting deeper than 1000 levels/);
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

describe('unsafeIntegerLiterals', () => {
  it('finds only integer tokens outside strings that exceed 2^53', () => {
    const text = '{"a":"9007199254740993","b":9007199254740993,"c":9007199254740991,"d":-9007199254740993}';
    const spans = unsafeIntegerLiterals(text);
    expect(spans.map(([s, e]) => text.slice(s, e))).toEqual(['9007199254740993', '-9007199254740993']);
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

  it('never turns a data string into a number', () => {
    const value = { s: '\u0001bigint-x:1', n: 12345678901234567890n };
    expect(parseJson(stringifyJson(value))).toEqual(value);
  });

  it('writes undefined as null and matches JSON.stringify otherwise', () => {
    expect(stringifyJson(undefined)).toBe('null');
    expect(stringifyJson({ a: [1, 'x', null] }, 2)).toBe(JSON.stringify({ a: [1, 'x', null] }, null, 2));
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
