import { describe, expect, it } from 'vitest';
import { loadPipelineText } from '../../src/plan/load-pipeline.ts';
import { changelogTopic, comparePlans, compareSinks, compareSources, compareStates, positionKeys, renderPlanChange, sinkDestination } from '../../src/plan/plan-change.ts';
import type { StateIdentity } from '../../src/plan/state-identity.ts';
import type { Plan, PlanSink, PlanSource } from '../../src/plan/types.ts';

const id = (step: string, fingerprint: string): StateIdentity => ({ step, kind: 'window', fingerprint, parts: { n: fingerprint } });

describe('compareStates', () => {
  it('keeps equal fingerprints, resets others with what changed, and names new and removed steps', () => {
    expect(compareStates('p', [id('a', '1'), id('b', '2'), id('gone', '3')], [id('a', '1'), id('b', '9'), id('added', '4')])).toEqual([
      { verdict: 'keep', step: 'a', kind: 'window', fingerprint: '1' },
      { verdict: 'reset', step: 'b', kind: 'window', oldFingerprint: '2', newFingerprint: '9', change: 'n changed from `2` to `9`' },
      { verdict: 'new', step: 'added', kind: 'window', fingerprint: '4' },
      { verdict: 'removed', step: 'gone', kind: 'window', fingerprint: '3', changelogTopic: 'p-gone-changelog' },
    ]);
  });

  it('takes a removed and a new step with one fingerprint for a rename, whose state does not follow', () => {
    expect(compareStates('p', [id('old', '1')], [id('renamed', '1')])).toEqual([
      {
        verdict: 'reset',
        step: 'renamed',
        kind: 'window',
        oldFingerprint: '1',
        newFingerprint: '1',
        change: 'looks renamed from old: state is keyed by step name and will not follow',
        renamedFrom: 'old',
        changelogTopic: 'p-old-changelog',
      },
    ]);
  });

  it('pairs each removed step with one new step at most', () => {
    const verdicts = compareStates('p', [id('old', '1')], [id('x', '1'), id('y', '1')]).map((c) => `${c.verdict} ${c.step}`);
    expect(verdicts).toEqual(['reset x', 'new y']);
  });
});

describe('changelogTopic', () => {
  it('is <pipeline>-<step>-changelog', () => {
    expect(changelogTopic('employee-activity', 'hourly')).toBe('employee-activity-hourly-changelog');
  });
});

const location = { file: 'f.yaml', line: 1, col: 1 };
const source = (name: string, kind: string, config: unknown): PlanSource => ({ role: 'source', name, kind, config, summary: '', location, ports: [], format: { kind: 'json', config: {}, summary: '' } });
const sink = (name: string, kind: string, config: unknown): PlanSink => ({ role: 'sink', name, kind, config, summary: '', location, ports: [], inputs: [] });

describe('positionKeys', () => {
  it('is a kafka source group and topics, a postgres-cdc slot, and nothing for sources that commit nothing', () => {
    expect(positionKeys('kafka', { group: 'g', topic: 't' })).toEqual({ group: 'g', topic: 't' });
    expect(positionKeys('kafka', { group: 'g', topics: ['a', 'b'] })).toEqual({ group: 'g', topic: 'a, b' });
    expect(positionKeys('kafka', { group: 'g', topic_pattern: 'x.*' })).toEqual({ group: 'g', topic_pattern: 'x.*' });
    expect(positionKeys('postgres-cdc', { slot: 's' })).toEqual({ slot: 's' });
    expect(positionKeys('file', { path: 'in.jsonl' })).toBeUndefined();
  });
});

describe('compareSources', () => {
  const kafka = source('in', 'kafka', { group: 'g', topic: 't', start: 'latest', brokers: 'a:9092' });

  it('reports nothing when the positions belong to the same group and topics', () => {
    expect(compareSources([kafka], [source('in', 'kafka', { group: 'g', topic: 't', brokers: 'b:9092' })])).toEqual([]);
  });

  it('says a changed group or topic loses the committed positions, and where it starts instead', () => {
    expect(compareSources([kafka], [source('in', 'kafka', { group: 'h', topics: ['t', 'u'], start: 'latest' })])).toEqual([
      { source: 'in', kind: 'kafka', change: 'group changed from g to h: committed positions will not follow (it starts from `start: latest`)', positionsLost: true },
      { source: 'in', kind: 'kafka', change: 'topic changed from t to t, u: committed positions will not follow (it starts from `start: latest`)', positionsLost: true },
    ]);
  });

  it('loses positions on a change of kind only when the old kind had some', () => {
    expect(compareSources([kafka], [source('in', 'file', { path: 'x' })])).toEqual([{ source: 'in', kind: 'file', change: 'kind changed from kafka to file: committed positions will not follow', positionsLost: true }]);
    expect(compareSources([source('in', 'file', { path: 'x' })], [kafka])).toEqual([{ source: 'in', kind: 'kafka', change: 'kind changed from file to kafka', positionsLost: false }]);
  });

  it('reports sources added and removed without failing', () => {
    expect(compareSources([kafka], [source('other', 'file', { path: 'x' })])).toEqual([
      { source: 'in', kind: 'kafka', change: 'removed', positionsLost: false },
      { source: 'other', kind: 'file', change: 'added', positionsLost: false },
    ]);
  });
});

describe('sinkDestination', () => {
  it('is a topic or topic expression, a table, a file, or the kind', () => {
    expect(sinkDestination('kafka', { topic: 't' })).toBe('topic t');
    expect(sinkDestination('kafka', { topic_expr: '"a-" & b' })).toBe('topic_expr `"a-" & b`');
    expect(sinkDestination('postgres', { table: 'public.s' })).toBe('table public.s');
    expect(sinkDestination('file', { path: 'out/x.jsonl' })).toBe('file out/x.jsonl');
    expect(sinkDestination('stdout', {})).toBe('stdout');
  });
});

describe('compareSinks', () => {
  it('reports changed destinations, added and removed sinks, and nothing for other option changes', () => {
    expect(
      compareSinks(
        [sink('same', 'kafka', { topic: 't', key: 'a' }), sink('moved', 'kafka', { topic: 't' }), sink('gone', 'file', { path: 'p' })],
        [sink('same', 'kafka', { topic: 't', key: 'b' }), sink('moved', 'postgres', { table: 'x' }), sink('added', 'stdout', {})],
      ),
    ).toEqual([
      { sink: 'moved', kind: 'postgres', change: 'changed', before: 'topic t', after: 'table x' },
      { sink: 'gone', kind: 'file', change: 'removed', before: 'file p' },
      { sink: 'added', kind: 'stdout', change: 'added', after: 'stdout' },
    ]);
  });
});

function planOf(text: string): Plan {
  const result = loadPipelineText('p.yaml', text);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'));
  return result.plan;
}

const SPEC = `version: 1
name: p
sources:
  events:
    kafka: { brokers: localhost:9092, topic: t, group: g }
steps:
  counts:
    from: events
    window: { tumbling: 1h }
    aggregate: { n: $count() }
sinks:
  out:
    from: counts
    kafka: { brokers: localhost:9092, topic: o }
`;

describe('comparePlans', () => {
  it('moves no state when only a sink changes', () => {
    const change = comparePlans(planOf(SPEC), planOf(SPEC.replace('topic: o', 'topic: o2')));
    expect(change.stateMoves).toEqual([]);
    expect(change.sinks).toEqual([{ sink: 'out', kind: 'kafka', change: 'changed', before: 'topic o', after: 'topic o2' }]);
  });

  it('gives a reason for each thing that moves state', () => {
    const after = SPEC.replace('name: p', 'name: q').replace('group: g', 'group: h').replace(/counts/g, 'totals');
    expect(comparePlans(planOf(SPEC), planOf(after)).stateMoves).toEqual([
      "application id changed from p to q (it is the pipeline name unless checkpoint.application_id sets it): it names all state (changelog topics, the transactional id, the file store's directory), so all state would be left behind",
      'step totals looks renamed from counts: state is keyed by step name and will not follow',
      'source events: group changed from g to h: committed positions will not follow',
    ]);
  });

  it('says a removed stateful step leaves its state behind', () => {
    const after = SPEC.replace(/steps:[^]*?sinks:/, 'sinks:').replace('from: counts', 'from: events');
    const change = comparePlans(planOf(SPEC), planOf(after));
    expect(change.stateMoves).toEqual(['step counts is removed: its state is left behind']);
    expect(renderPlanChange(change, { before: 'a.yaml', after: 'b.yaml' })).toContain('  removed  counts [window]: its state is left behind; changelog topic p-counts-changelog can be deleted\n');
  });
});

describe('renderPlanChange', () => {
  it('prints every section and the verdict', () => {
    expect(renderPlanChange(comparePlans(planOf(SPEC), planOf(SPEC)), { before: 'a.yaml', after: 'b.yaml' })).toBe(
      [
        'pipeline p (a.yaml -> b.yaml)',
        '',
        'state:',
        '  keep     counts [window]',
        '',
        'sources:',
        '  unchanged',
        '',
        'outputs:',
        '  unchanged',
        '',
        'graph:',
        '  nothing that moves state',
        '',
        'verdict: all state carries over',
        '',
      ].join('\n'),
    );
  });
});
