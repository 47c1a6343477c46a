/**
 * `x-cron` and `x-timezone` values at validation: a bad cron expression is reported at the bad
 * field inside the string, a bad time zone at its value, both as `file:line:col`, against the real
 * postgres-query schema.
 */
import { describe, expect, it } from 'vitest';
import { positionText } from '../../src/spec/diagnostic.ts';
import { loadSpecText } from '../../src/spec/load.ts';
import { builtinComponents } from '../../src/spec/registry.ts';
import { validateSpec } from '../../src/spec/validate.ts';

const lines = (...l: string[]) => l.join('\n') + '\n';

/** A pipeline whose one source is a scheduled postgres-query, with the given lines under `postgres-query:` (indented 6). */
function spec(...options: string[]): string {
  return lines(
    'version: 1',
    'name: nightly',
    'sources:',
    '  departments:',
    '    postgres-query:',
    '      host: 127.0.0.1',
    '      database: company',
    '      user: postgres',
    '      query: SELECT id, name FROM departments',
    ...options.map((o) => `      ${o}`),
    'sinks:',
    '  out:',
    '    from: departments',
    '    file: { path: out.jsonl }',
  );
}

function check(text: string, env: Record<string, string> = {}): string[] {
  const loaded = loadSpecText('p.yaml', text, { env });
  return validateSpec(loaded, builtinComponents).diagnostics.map((d) => `${positionText(d)} ${d.code} ${d.message}`);
}

function hints(text: string): (string | undefined)[] {
  return validateSpec(loadSpecText('p.yaml', text, { env: {} }), builtinComponents).diagnostics.map((d) => d.hint);
}

describe('validating schedules', () => {
  it('accepts a schedule with a time zone, seconds, a timeout and run_at_start', () => {
    expect(check(spec('schedule: "0 3 * * *"', 'timezone: Europe/Berlin', 'timeout: 30s'))).toEqual([]);
    expect(check(spec("schedule: '*/10 * * * * *'", 'run_at_start: false'))).toEqual([]);
    expect(check(spec('schedule: "@daily"'))).toEqual([]);
  });

  it('points at the bad field inside the expression', () => {
    // line 10 is `      schedule: "0 25 * * *"`: the value's quote is column 17, `25` column 20.
    expect(check(spec('schedule: "0 25 * * *"'))).toEqual(['10:20 E_SCHEMA_VALUE `schedule` is not a cron schedule: the hour `25` is not valid (it takes 0-23)']);
    expect(check(spec('schedule: 0 3 * * mon-frii'))).toEqual([
      '10:25 E_SCHEMA_VALUE `schedule` is not a cron schedule: the day of week `mon-frii` is not valid (it takes 0-7 (0 and 7 are Sunday) or sun-sat, `5L` (last Friday), `1#2` (second Monday))',
    ]);
    expect(check(spec("schedule: '0 0 3 31 2 *'"))).toEqual(['10:24 E_SCHEMA_VALUE `schedule` is not a cron schedule: the day of month `31` never falls in month `2`']);
    expect(check(spec('schedule: "0 3 * * %"'))).toEqual(['10:26 E_SCHEMA_VALUE `schedule` is not a cron schedule: it contains "%", which no field takes']);
    expect(hints(spec('schedule: "0 25 * * *"'))[0]).toMatch(/^a cron schedule is `minute hour day-of-month month day-of-week`/);
  });

  it('points at the whole value when the expression as a whole is wrong', () => {
    expect(check(spec('schedule: "* * *"'))).toEqual(['10:17 E_SCHEMA_VALUE `schedule` is not a cron schedule: it has 3 fields, not 5 or 6']);
    expect(check(spec('schedule: "0 0 L-30 2 *"'))).toEqual(['10:17 E_SCHEMA_VALUE `schedule` never fires: no date has that day of month, month and day of week']);
  });

  it('through a ${VAR} reference, points at the reference', () => {
    expect(check(spec('schedule: "${SCHEDULE}"'), { SCHEDULE: '0 25 * * *' })).toEqual([
      '10:18 E_SCHEMA_VALUE `schedule` is not a cron schedule: the hour `25` is not valid (it takes 0-23)',
    ]);
  });

  it('refuses a time zone the runtime does not know, at its value, with a suggestion', () => {
    expect(check(spec('schedule: "0 3 * * *"', 'timezone: Europe/Berln'))).toEqual([
      '11:17 E_SCHEMA_VALUE `timezone` must be an IANA time zone like Europe/Berlin or UTC, got `Europe/Berln` (did you mean `Europe/Berlin`?)',
    ]);
    // Both wrong: both reported, in order.
    expect(check(spec('schedule: "0 3 * * * * *"', 'timezone: Mars/Olympus'))).toEqual([
      '10:17 E_SCHEMA_VALUE `schedule` is not a cron schedule: it has 7 fields, not 5 or 6',
      '11:17 E_SCHEMA_VALUE `timezone` must be an IANA time zone like Europe/Berlin or UTC, got `Mars/Olympus`',
    ]);
  });

  it('the schema still speaks first: an empty schedule, a timezone or run_at_start without a schedule', () => {
    expect(check(spec('schedule: ""'))).toEqual(['10:17 E_SCHEMA_VALUE `schedule` must not be empty']);
    expect(check(spec('timezone: Europe/Berlin'))).toEqual(['5:5 E_SCHEMA_MISSING_KEY `postgres-query` of source `departments` needs `schedule` when `timezone` is set']);
    expect(check(spec('run_at_start: false', 'timeout: 1 minute'))).toEqual([
      '5:5 E_SCHEMA_MISSING_KEY `postgres-query` of source `departments` needs `schedule` when `run_at_start` is set',
      '11:16 E_DURATION `timeout` must be a duration like 1h, got `1 minute`',
    ]);
  });
});
