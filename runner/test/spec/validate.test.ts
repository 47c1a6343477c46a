import { describe, expect, it } from 'vitest';
import { positionText } from '../../src/spec/diagnostic.ts';
import { loadSpecText, type LoadOptions } from '../../src/spec/load.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { fakeComponents } from './fake-components.ts';

/** `line:col CODE message` (or `command line CODE message`) for each diagnostic of a spec, validated against the fake components. */
function check(text: string, options: LoadOptions = {}): string[] {
  const loaded = loadSpecText('p.yaml', text, { env: {}, ...options });
  return validateSpec(loaded, fakeComponents).diagnostics.map((d) => `${positionText(d)} ${d.code} ${d.message}`);
}

const lines = (...l: string[]) => l.join('\n') + '\n';

const VALID = lines(
  'version: 1',
  'name: demo',
  'sources:',
  '  events:',
  '    kafka: { topic: t, password: "${PW:-secret}" }',
  '    format: debezium',
  'steps:',
  '  kept:',
  '    from: events',
  '    filter: $meta.op = "c"',
  '  hourly:',
  '    from: kept',
  '    window: { tumbling: 1h, time: ts }',
  '    group_by: [user]',
  '    aggregate: { n: $count() }',
  'sinks:',
  '  out:',
  '    from: hourly',
  '    file: { path: out.jsonl }',
  '  late:',
  '    from: hourly.late',
  '    kafka: { topic: late }',
);

describe('validateSpec', () => {
  it('accepts a valid spec and resolves each entry to its kind', () => {
    const loaded = loadSpecText('p.yaml', VALID, { env: {} });
    const result = validateSpec(loaded, fakeComponents);
    expect(result.diagnostics).toEqual([]);
    expect(result.valid?.entries.map((e) => `${e.section}.${e.name}:${e.kind}`)).toEqual([
      'sources.events:kafka',
      'steps.kept:filter',
      'steps.hourly:window',
      'sinks.out:file',
      'sinks.late:kafka',
    ]);
    expect(result.valid?.entries[0]?.format).toEqual({ kind: 'debezium', config: {} });
    expect(result.valid?.entries[2]?.config).toEqual({ window: { tumbling: '1h', time: 'ts' }, group_by: ['user'], aggregate: { n: '$count()' } });
  });

  it('reports every error at once, across stages, sorted by position', () => {
    const text = VALID.replace('tumbling: 1h', 'tumbling: 1 hour').replace('$count()', '$count(').replace('from: kept', 'from: kep').replace('topic: late', 'topic: "${LATE_TOPIC}"');
    expect(check(text)).toEqual([
      '12:11 E_FROM_UNKNOWN step `hourly` reads from `kep`, which is not a source or step (did you mean `kept`?)',
      '13:25 E_DURATION `tumbling` must be a duration like 1h, got `1 hour`',
      '15:27 E_EXPR_SYNTAX `n` in `aggregate` of step `hourly` is not valid JSONata: Expected ")" before end of expression',
      '22:22 E_ENV_UNSET environment variable `LATE_TOPIC` is not set and has no default',
    ]);
  });

  it('suggests the kind for a misspelt kind key instead of saying the kind is missing', () => {
    expect(check(VALID.replace('    window: {', '    windw: {'))).toEqual([
      '13:5 E_SCHEMA_UNKNOWN_KEY unknown key `windw` in step `hourly` (did you mean `window`?)',
    ]);
  });

  it('lists the kinds when an entry has none', () => {
    expect(check(VALID.replace('    file: { path: out.jsonl }', '    path: out.jsonl'))).toEqual([
      '17:3 E_KIND_MISSING sink `out` has no kind key',
    ]);
  });

  it('says a key that no kind has is a kind that does not exist, listing the kinds; a field of a kind means the kind key is missing', () => {
    const hints = (text: string) => validateSpec(loadSpecText('p.yaml', text, { env: {} }), fakeComponents).diagnostics.map((d) => `${d.code} ${d.message} | ${d.hint}`);
    expect(hints(VALID.replace('    file: { path: out.jsonl }', '    s3: { bucket: out }'))).toEqual([
      'E_KIND_UNKNOWN `s3` is not a sink kind | sink kinds: `file`, `kafka`',
    ]);
    expect(hints(VALID.replace('    file: { path: out.jsonl }', '    path: out.jsonl'))).toEqual([
      'E_KIND_MISSING sink `out` has no kind key | `path` belongs under a kind key, e.g. `file: { path: ... }`; sink kinds: `file`, `kafka`',
    ]);
  });

  it('refuses calls of functions that do not exist, at the call, but not of those the expression binds', () => {
    const withFilter = (f: string) => check(VALID.replace('    filter: $meta.op = "c"', `    filter: '${f}'`));
    expect(withFilter('$hours(ts) > 9')).toEqual(['10:14 E_EXPR_FUNCTION `filter` in step `kept` calls `$hours`, which is not a function (did you mean `$hour`?)']);
    expect(withFilter('ts ~> $strng() = "a"')).toEqual(['10:20 E_EXPR_FUNCTION `filter` in step `kept` calls `$strng`, which is not a function (did you mean `$string`?)']);
    expect(withFilter('($odd := function($n){ $n % 2 = 1 }; $odd(n))')).toEqual([]);
    expect(withFilter('$map(xs, function($v, $i, $a){ $v }) ~> $exists()')).toEqual([]);
  });

  it('takes a built-in window aggregate in an aggregate only, as the whole expression or a call of a composition', () => {
    const withAggregate = (a: string) => check(VALID.replace('aggregate: { n: $count() }', `aggregate: { n: '${a}' }`));
    expect(withAggregate('$countDistinct(user)')).toEqual([]);
    expect(withAggregate('$round($avg(d), 1)')).toEqual([]);
    expect(withAggregate('$string($first(k)) & "/" & $string($countDistinct(k))')).toEqual([]);
    expect(withAggregate('$round($avg(d), 1) + d')).toEqual(['15:29 E_EXPR_FUNCTION `n` in `aggregate` of step `hourly` calls `$avg`, which is not a function']);
    expect(check(VALID.replace('    filter: $meta.op = "c"', '    filter: $countDistinct(x) > 1'))).toEqual([
      '10:13 E_EXPR_FUNCTION `filter` in step `kept` calls `$countDistinct`, which is not a function',
    ]);
  });

  it('refuses two kinds in one entry', () => {
    expect(check(VALID.replace('    filter: $meta.op = "c"', '    filter: $meta.op = "c"\n    set: { a: b }'))).toEqual([
      '11:5 E_KIND_MULTIPLE step `kept` has two kinds, `filter` and `set`: a step has exactly one',
    ]);
  });

  it('points at the key of an unknown key inside a config, with a suggestion', () => {
    expect(check(VALID.replace('kafka: { topic: t,', 'kafka: { topc: t,'))).toEqual([
      '5:5 E_SCHEMA_MISSING_KEY `kafka` of source `events` is missing required key `topic`',
      '5:14 E_SCHEMA_UNKNOWN_KEY unknown key `topc` in `kafka` of source `events` (did you mean `topic`?)',
    ]);
  });

  it('explains a failed oneOf by the branch the value meant', () => {
    expect(check(VALID.replace('window: { tumbling: 1h, time: ts }', 'window: { hopping: { size: 1h, advance: 15 }, time: ts }'))).toEqual([
      '13:45 E_SCHEMA_TYPE `advance` must be a string, got `15`',
    ]);
    expect(check(VALID.replace('window: { tumbling: 1h, time: ts }', 'window: { time: ts }'))).toEqual([
      '13:5 E_SCHEMA_MISSING_KEY `window` of step `hourly` needs one of `tumbling`, `hopping`',
    ]);
    expect(check(VALID.replace('window: { tumbling: 1h, time: ts }', 'window: { tumbling: 1h, hopping: { size: 1h, advance: 1m } }'))).toEqual([
      '13:5 E_SCHEMA_VALUE `window` of step `hourly` takes only one of `tumbling`, `hopping`',
    ]);
  });

  it('checks ports against the kind', () => {
    expect(check(VALID.replace('from: hourly.late', 'from: hourly.lat'))).toEqual([
      '21:11 E_PORT_UNKNOWN step `hourly` has no port `lat` (did you mean `late`?)',
    ]);
    expect(check(VALID.replace('from: hourly.late', 'from: kept.late'))).toEqual(['21:11 E_PORT_UNKNOWN step `kept` has no port `late`']);
  });

  it("accepts `<sink>.errors` as a sink's input: the records a sink could not write", () => {
    expect(check(VALID + lines('  dead-letters:', '    from: [late.errors, out.errors, events.errors]', '    file: { path: dlq.jsonl }'))).toEqual([]);
    expect(check(VALID.replace('from: hourly.late', 'from: out.erors'))).toEqual(['21:11 E_PORT_UNKNOWN sink `out` has no port `erors` (did you mean `errors`?)']);
  });

  it('finds cycles, unread sources and dangling steps', () => {
    expect(check(VALID.replace('    from: events\n', '    from: [events, hourly]\n'))).toEqual([
      '9:20 E_CYCLE steps read from each other in a cycle: `kept` -> `hourly` -> `kept`',
    ]);
    expect(check(VALID.replace('    from: events\n', '    from: kept\n'))).toEqual([
      '4:3 E_UNREAD_SOURCE nothing reads source `events`',
      '9:11 E_CYCLE step `kept` reads from itself',
    ]);
    expect(check(VALID.replace('    from: hourly\n', '    from: kept\n').replace('from: hourly.late', 'from: kept'))).toEqual([
      '11:3 E_DANGLING_STEP the output of step `hourly` goes nowhere: no step or sink reads `hourly`',
    ]);
  });

  it('refuses a name used in two sections and a duplicate key', () => {
    expect(check(VALID.replace('  late:\n', '  kept:\n'))).toEqual(['20:3 E_DUPLICATE_NAME `kept` is both a step and a sink']);
    expect(check(VALID.replace('  hourly:\n', '  kept:\n'))).toContain('11:3 E_DUPLICATE_NAME `kept` is defined twice in `steps` (first on line 8)');
  });

  it('refuses profile names that are not names, once', () => {
    expect(check(VALID + lines('profiles:', '  Local: {}'))).toEqual([
      '24:3 E_NAME profile name `Local` must start with a lowercase letter and use only a-z, 0-9, `_` and `-`',
    ]);
  });

  it('refuses names that are not names', () => {
    expect(check(VALID.replace('name: demo', 'name: Demo_1'))).toEqual([
      '2:7 E_NAME pipeline name `Demo_1` must start with a lowercase letter and use only a-z, 0-9 and `-`',
    ]);
  });

  it('applies a profile: its entries replace whole entries and keep their own positions', () => {
    const text = VALID + lines('profiles:', '  local:', '    sources:', '      events: { generator: { rate: 0 } }');
    expect(check(text, { profile: 'local' })).toEqual(['26:36 E_SCHEMA_VALUE `rate` must be at least 1, got `0`']);
    expect(check(text.replace('rate: 0', 'rate: 5'), { profile: 'local' })).toEqual([]);
    // Every profile's entries are checked, used or not.
    expect(check(text, { profile: 'locl' })).toEqual([
      'command line E_PROFILE_UNKNOWN --profile `locl`: no such profile (did you mean `local`?)',
      '26:36 E_SCHEMA_VALUE `rate` must be at least 1, got `0`',
    ]);
  });

  it('checks graph problems a profile introduces, and says which profile', () => {
    const text = VALID + lines('profiles:', '  local:', '    sinks:', '      out: { from: kept, file: { path: x } }');
    expect(check(text)).toEqual(['11:3 E_DANGLING_STEP the output of step `hourly` goes nowhere: no step or sink reads `hourly` (with profile `local`)']);
  });

  it('applies --set overrides, values parsed as YAML', () => {
    // A key that --set adds has no place in the file: the error points at the map it went into.
    expect(check(VALID, { sets: [{ path: 'sources.events.kafka.start', value: 'middle' }] })).toEqual([
      '5:12 E_SCHEMA_VALUE `start` must be one of `earliest`, `latest`, got `middle`',
    ]);
    expect(check(VALID, { sets: [{ path: 'steps.kept.filter', value: 'a >' }] })).toEqual([
      '10:5 E_EXPR_SYNTAX `filter` in step `kept` is not valid JSONata: Unexpected end of expression',
    ]);
  });

  it('stops after YAML syntax errors', () => {
    expect(check('version: 1\nname: "demo\nsources: 3\n')).toEqual(['4:1 E_YAML invalid YAML: Missing closing "quote']);
  });

  it('never reports an env var of a default-bearing reference', () => {
    expect(check(VALID)).toEqual([]);
  });
});
