/** Which members of `$meta` a plan may read: what a Debezium source makes exact. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPipeline, loadPipelineText } from '../../src/plan/load-pipeline.ts';
import { metaRead } from '../../src/plan/meta-read.ts';
import { splitStages } from '../../src/plan/stages.ts';
import type { Plan } from '../../src/plan/types.ts';

const EMPLOYEE = join(import.meta.dirname, '../../../pipelines/employee-activity.yaml');

function planOf(steps: string[]): Plan {
  const text = [
    'version: 1',
    'name: p',
    'sources:',
    '  events: { file: { path: in.jsonl }, format: debezium }',
    'steps:',
    ...steps.map((s) => `  ${s}`),
    'sinks:',
    `  out: { from: ${steps.length ? steps[steps.length - 1]!.split(':')[0] : 'events'}, file: { path: out.jsonl } }`,
    '',
  ].join('\n');
  const result = loadPipelineText('p.yaml', text, { env: {} });
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  return result.plan;
}

describe('metaRead', () => {
  it('names the members read as $meta.<member>, and no others', () => {
    const reads = metaRead(planOf(['inserts: { from: events, filter: $meta.op = "c" }', 'tagged: { from: inserts, set: { t: $meta.source.table } }']).nodes);
    expect(['op', 'source'].map(reads)).toEqual([true, true]);
    expect(['ts_ns', 'ts_ms', 'transaction', 'sour'].map(reads)).toEqual([false, false, false, false]);
  });

  it('reads nothing in a pipeline that never mentions $meta', () => {
    const reads = metaRead(planOf(['kept: { from: events, filter: id > 1 }']).nodes);
    expect(reads('op')).toBe(false);
  });

  it('may read any member where $meta is used whole, indexed, bound, or text is evaluated', () => {
    for (const expression of ['$keys($meta)', '$lookup($meta, "ts_ns")', '($m := $meta; $m.ts_ns)', '$meta.`ts_ns`', '$meta.*', '$eval("$meta.ts_ns")']) {
      const reads = metaRead(planOf([`tagged: { from: events, set: { x: '${expression}' } }`]).nodes);
      expect(reads('ts_ns'), expression).toBe(true);
    }
  });

  it('reads only op in the employee pipeline, in one process and in each stage of its tasks', async () => {
    const loaded = await loadPipeline(EMPLOYEE, { env: {} });
    if (!loaded.ok) throw new Error('employee pipeline does not load');
    const whole = metaRead(loaded.plan.nodes);
    expect(['op', 'ts_ns', 'source'].map(whole)).toEqual([true, false, false]);
    const stages = splitStages(loaded.plan).stages.map((s) => metaRead(s.plan.nodes));
    expect(stages.map((reads) => [reads('op'), reads('ts_ns')])).toEqual([
      [true, false],
      [false, false],
    ]);
  });

  it('takes a repartition that carries $meta as reading all of it: the nodes after it are in another stage', async () => {
    const loaded = await loadPipeline(EMPLOYEE, {
      env: {},
      sets: [{ path: 'sinks.late-activities.kafka.key', value: '$string($meta.ts_ns)' }],
    });
    if (!loaded.ok) throw new Error('employee pipeline does not load');
    const [first] = splitStages(loaded.plan).stages;
    expect(metaRead(first!.plan.nodes)('ts_ns')).toBe(true);
  });
});
