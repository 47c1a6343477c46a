import { describe, expect, it } from 'vitest';
import { windowStep } from '../../src/components/steps/window.ts';
import { ConfigError } from '../../src/engine/errors.ts';
import { loadPipelineText } from '../../src/plan/load-pipeline.ts';
import { canonicalJson, describeStateChange, fingerprintOf, stateIdentities, type StateIdentity } from '../../src/plan/state-identity.ts';
import type { Plan } from '../../src/plan/types.ts';

/** A pipeline with one filter (stateless) and one window step whose entry is `windowEntry`. */
function spec(windowEntry: string): string {
  return `version: 1
name: ids
sources:
  events:
    # Debezium envelopes carry an event time, so the window may leave out \`time:\`.
    file: { path: in.jsonl }
    format: debezium
steps:
  kept:
    from: events
    filter: a > 1
  hourly:
    from: kept
${windowEntry.replace(/^/gm, '    ')}
sinks:
  out:
    from: hourly
    stdout: {}
`;
}

const BASE = `window: { tumbling: 1h, time: activity_timestamp, lateness: 10m, idle: 1m, emit: final }
group_by: [employee_id, activity_type]
aggregate:
  activity_count: $count()
  avg: $average(duration_seconds)`;

function planOf(text: string): Plan {
  const result = loadPipelineText('ids.yaml', text);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'));
  return result.plan;
}

function hourly(windowEntry: string): StateIdentity {
  const ids = stateIdentities(planOf(spec(windowEntry)));
  expect(ids.map((i) => i.step)).toEqual(['hourly']);
  return ids[0]!;
}

const base = hourly(BASE);

describe('stateIdentities', () => {
  it('lists only the stateful steps, with kind, parts and fingerprint', () => {
    expect(base).toEqual({
      step: 'hourly',
      kind: 'window',
      fingerprint: fingerprintOf('window', base.parts),
      parts: {
        window: { kind: 'tumbling', size: '1h' },
        time: 'activity_timestamp',
        group_by: [
          { name: 'employee_id', expression: 'employee_id' },
          { name: 'activity_type', expression: 'activity_type' },
        ],
        aggregate: [
          { name: 'activity_count', expression: '$count()' },
          { name: 'avg', expression: '$average(duration_seconds)' },
        ],
      },
    });
    expect(base.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it.each([
    ['60m for 1h', BASE.replace('tumbling: 1h', 'tumbling: 60m')],
    ['3600s for 1h', BASE.replace('tumbling: 1h', 'tumbling: 3600s')],
    ['the map form of group_by', BASE.replace('[employee_id, activity_type]', '{ employee_id: employee_id, activity_type: activity_type }')],
    ['a block scalar expression', BASE.replace('avg: $average(duration_seconds)', 'avg: |\n    $average(duration_seconds)')],
    ['the window keys in another order', BASE.replace('{ tumbling: 1h, time: activity_timestamp,', '{ time: activity_timestamp, tumbling: 1h,')],
  ])('gives the same fingerprint for %s', (_what, entry) => {
    const other = hourly(entry);
    expect(other.fingerprint).toBe(base.fingerprint);
    expect(describeStateChange(base, other)).toBe('');
  });

  it.each([
    ['lateness', BASE.replace('lateness: 10m', 'lateness: 20m')],
    ['idle', BASE.replace('idle: 1m', 'idle: 5m')],
    ['emit', BASE.replace('emit: final', 'emit: update')],
    ['no lateness, idle or emit at all', BASE.replace(', lateness: 10m, idle: 1m, emit: final', '')],
    ['a timezone, which only calendar windows use', BASE.replace('emit: final', 'emit: final, timezone: Europe/Berlin')],
  ])('keeps the fingerprint when %s changes: it changes when results are emitted, not what a pane holds', (_what, entry) => {
    expect(hourly(entry).fingerprint).toBe(base.fingerprint);
  });

  it.each([
    ['the tumbling size', BASE.replace('tumbling: 1h', 'tumbling: 30m'), 'window size changed from 1h to 30m'],
    ['the window kind', BASE.replace('tumbling: 1h', 'session: { gap: 30m }'), 'window changed from tumbling (size 1h) to session (gap 30m)'],
    ['a hopping advance', BASE.replace('tumbling: 1h', 'hopping: { size: 1h, advance: 15m }'), 'window changed from tumbling (size 1h) to hopping (size 1h, advance 15m)'],
    ['the time expression', BASE.replace('time: activity_timestamp', 'time: $meta.ts_ms'), 'time changed from `activity_timestamp` to `$meta.ts_ms`'],
    ['the time expression to record time', BASE.replace('time: activity_timestamp, ', ''), 'time changed from `activity_timestamp` to none'],
    ['the group_by order', BASE.replace('[employee_id, activity_type]', '[activity_type, employee_id]'), 'group_by order changed from employee_id, activity_type to activity_type, employee_id'],
    ['a group key removed', BASE.replace('[employee_id, activity_type]', '[employee_id]'), 'group_by `activity_type` removed'],
    ['a group key expression', BASE.replace('[employee_id, activity_type]', '{ employee_id: employee_id, activity_type: $lowercase(activity_type) }'), 'group_by `activity_type` changed from `activity_type` to `$lowercase(activity_type)`'],
    ['an aggregate added', `${BASE}\n  total: $sum(duration_seconds)`, 'aggregate `total` added'],
    ['an aggregate removed', BASE.replace('\n  avg: $average(duration_seconds)', ''), 'aggregate `avg` removed'],
    ['an aggregate expression', BASE.replace('$average(duration_seconds)', '$max(duration_seconds)'), 'aggregate `avg` changed from `$average(duration_seconds)` to `$max(duration_seconds)`'],
    ['the aggregate order', BASE.replace('  activity_count: $count()\n  avg: $average(duration_seconds)', '  avg: $average(duration_seconds)\n  activity_count: $count()'), 'aggregate order changed from activity_count, avg to avg, activity_count'],
  ])('changes the fingerprint when %s changes, and says so', (_what, entry, description) => {
    const other = hourly(entry);
    expect(other.fingerprint).not.toBe(base.fingerprint);
    expect(describeStateChange(base, other)).toBe(description);
  });

  it('tells calendar days apart by time zone', () => {
    const utc = hourly(BASE.replace('tumbling: 1h', 'tumbling: 1d'));
    const berlin = hourly(BASE.replace('tumbling: 1h', 'tumbling: 1d').replace('emit: final', 'emit: final, timezone: Europe/Berlin'));
    expect(utc.parts.window).toEqual({ kind: 'calendar', days: 1, timezone: 'UTC' });
    expect(berlin.fingerprint).not.toBe(utc.fingerprint);
    expect(describeStateChange(utc, berlin)).toBe('window timezone changed from `UTC` to `Europe/Berlin`');
  });

  it('joins several changes with "; "', () => {
    const other = hourly(BASE.replace('tumbling: 1h', 'tumbling: 30m').replace('\n  avg: $average(duration_seconds)', ''));
    expect(describeStateChange(base, other)).toBe('window size changed from 1h to 30m; aggregate `avg` removed');
  });

  it('names the step when its def cannot read the config', () => {
    const plan = planOf(spec(BASE));
    const broken: Plan = { ...plan, nodes: plan.nodes.map((n) => (n.name === 'hourly' ? { ...n, config: { window: {} } } : n)) };
    expect(() => stateIdentities(broken)).toThrow(ConfigError);
    expect(() => stateIdentities(broken)).toThrow(expect.objectContaining({ where: 'steps.hourly', code: 'E_WINDOW_CONFIG' }));
  });
});

describe('fingerprintOf', () => {
  it('ignores the order object keys were built in, not the order of lists', () => {
    expect(fingerprintOf('window', { a: 1, b: { c: 2, d: 3 } })).toBe(fingerprintOf('window', { b: { d: 3, c: 2 }, a: 1 }));
    expect(fingerprintOf('window', { l: [1, 2] })).not.toBe(fingerprintOf('window', { l: [2, 1] }));
  });

  it('depends on the kind', () => {
    expect(fingerprintOf('window', { a: 1 })).not.toBe(fingerprintOf('other', { a: 1 }));
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and leaves undefined out', () => {
    expect(canonicalJson({ b: [{ z: 1, y: undefined, x: 2 }], a: null })).toBe('{"a":null,"b":[{"x":2,"z":1}]}');
  });
});

describe('describeStateChange', () => {
  const id = (kind: string, parts: Record<string, unknown>): StateIdentity => ({ step: 's', kind, fingerprint: fingerprintOf(kind, parts), parts });

  it('names a change of kind alone', () => {
    expect(describeStateChange(id('window', { a: 1 }), id('join', { b: 2 }))).toBe('kind changed from window to join');
  });

  it('never says nothing when the fingerprints differ', () => {
    const current = id('window', { a: 1 });
    expect(describeStateChange({ ...current, fingerprint: '0000000000000000' }, current)).toBe(`fingerprint changed from 0000000000000000 to ${current.fingerprint}`);
  });

  it('names parts that appear or disappear', () => {
    expect(describeStateChange(id('window', { a: 1 }), id('window', { a: 1, b: 'x' }))).toBe('b `x` added');
    expect(describeStateChange(id('window', { a: 1, b: 'x' }), id('window', { a: 1 }))).toBe('b `x` removed');
  });
});

describe('windowStep.stateIdentity', () => {
  it('names a computed group key in list form as the window step does when it runs', () => {
    expect(() => windowStep.stateIdentity!({ window: { tumbling: '1h' }, group_by: ['$lowercase(a)'], aggregate: { n: '$count()' } })).toThrow(/not a plain field path/);
  });
});
