import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { command as graph } from '../../src/cli/graph.ts';
import { loadPipeline } from '../../src/plan/load-pipeline.ts';
import { renderPlan } from '../../src/plan/render.ts';
import { captureIO } from './cli-io.ts';

const EMPLOYEE = join(import.meta.dirname, '../../../pipelines/employee-activity.yaml');

const SPEC = `version: 1
name: cli-graph
sources:
  events:
    kafka: { brokers: localhost:9092, topic: t, group: g, sasl: { mechanism: plain, username: u, password: "\${PW:-hunter2}" } }
steps:
  kept:
    from: events
    filter: a > 1
sinks:
  out:
    from: [kept, kept.errors]
    kafka: { brokers: localhost:9092, topic: o }
`;

function specFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-graph-')), 'g.yaml');
  writeFileSync(file, text);
  return file;
}

describe('sluice graph', () => {
  const file = specFile(SPEC);

  it('prints the text form by default, with no secret in it', async () => {
    const io = captureIO();
    expect(await graph.run([file], io)).toBe(0);
    const out = io.out();
    expect(out).toMatch(/^pipeline cli-graph\n/);
    expect(out).toContain('  kept [filter]  <- events\n');
    expect(out).toContain('  out [kafka]  <- kept, kept.errors\n');
    expect(out).not.toContain('hunter2');
  });

  it('prints mermaid and dot', async () => {
    const mermaid = captureIO();
    expect(await graph.run([file, '--format', 'mermaid'], mermaid)).toBe(0);
    expect(mermaid.out()).toMatch(/^flowchart LR\n/);
    expect(mermaid.out()).toContain('  n1 -. errors .-> n2');
    const dot = captureIO();
    expect(await graph.run([file, '--format=dot'], dot)).toBe(0);
    expect(dot.out()).toMatch(/^digraph "cli-graph" \{/);
  });

  it('exits 2 with diagnostics for an invalid spec', async () => {
    const io = captureIO();
    expect(await graph.run([specFile(SPEC.replace('from: events', 'from: event'))], io)).toBe(2);
    expect(io.out()).toBe('');
    expect(io.err()).toContain('error[E_FROM_UNKNOWN]: step `kept` reads from `event`, which is not a source or step (did you mean `events`?)');
  });
});

describe('sluice graph of a pipeline that runs as tasks', () => {
  it('lists the stages and the repartition after the nodes, and marks the window that reads through it', async () => {
    const io = captureIO({});
    expect(await graph.run([EMPLOYEE], io)).toBe(0);
    const out = io.out();
    expect(out).toContain(
      [
        '  hourly [window]  <- inserts',
        '      tumbling 1h windows on `activity_timestamp` (lateness 10m, idle 1m, emit final) by employee_id, activity_type -> activity_count, total_duration, avg_duration',
        '      reads through the repartition topic employee-activity-hourly-repartition (stage 1)',
        '      out -> summaries',
      ].join('\n'),
    );
    expect(out.slice(out.indexOf('\nstages:'))).toBe(
      [
        '',
        "stages: (runs as tasks, one per partition of each stage's input)",
        '  0  <- activities [kafka, debezium]',
        '      steps: inserts, enriched',
        '      sinks: hourly-repartition (inserts), processed, dead-letters (activities.errors, inserts.errors, enriched.errors, hourly-repartition.errors, processed.errors)',
        '  1  <- hourly-repartition [kafka, repartition]',
        '      steps: hourly',
        '      sinks: summaries, late-activities, dead-letters (hourly.errors, summaries.errors, late-activities.errors)',
        '',
        'repartitions: (where records cross processes)',
        '  employee-activity-hourly-repartition  stage 0 -> stage 1, read by hourly',
        '      key: employee_id, activity_type',
        '      partitions: as the source',
        '      markers: every task of stage 0 writes its watermark (highest event time written, or idle) to each partition, so hourly waits for all of them',
        '      read as consumer group employee-activity-hourly-repartition',
        '',
      ].join('\n'),
    );
  });

  it('draws the edge into the repartitioned window bold with its key in mermaid and dot, and adds the split to json', async () => {
    const mermaid = captureIO({});
    expect(await graph.run([EMPLOYEE, '--format', 'mermaid'], mermaid)).toBe(0);
    expect(mermaid.out()).toContain('  n1 ==>|"repartition by employee_id, activity_type"| n3\n');
    expect(mermaid.out()).toContain('  n1 --> n2\n');
    const dot = captureIO({});
    expect(await graph.run([EMPLOYEE, '--format', 'dot'], dot)).toBe(0);
    expect(dot.out()).toContain('  "inserts" -> "hourly" [label="repartition by employee_id, activity_type\\nemployee-activity-hourly-repartition", style=bold];\n');
    const json = captureIO({});
    expect(await graph.run([EMPLOYEE, '--format', 'json'], json)).toBe(0);
    const view = JSON.parse(json.out()) as { stages: unknown; repartitions: unknown };
    expect(view.stages).toEqual([
      { id: '0', input: 'activities', nodes: ['activities', 'inserts', 'enriched', 'hourly-repartition', 'processed', 'dead-letters'] },
      { id: '1', input: 'hourly-repartition', nodes: ['hourly-repartition', 'hourly', 'summaries', 'late-activities', 'dead-letters'] },
    ]);
    expect(view.repartitions).toEqual([
      { step: 'hourly', topic: 'employee-activity-hourly-repartition', group: 'employee-activity-hourly-repartition', by: ['employee_id', 'activity_type'], from: '0', to: '1' },
    ]);
  });

  it('shows a set partition count, and a pipeline that runs as tasks in one stage', async () => {
    const counted = captureIO({});
    expect(await graph.run([EMPLOYEE, '--set', 'steps.hourly.partitions=12'], counted)).toBe(0);
    expect(counted.out()).toContain('      partitions: 12\n');
    const one = captureIO();
    expect(await graph.run([specFile(SPEC)], one)).toBe(0);
    expect(one.out()).toContain("\nstages: (runs as tasks, one per partition of each stage's input)\n  0  <- events [kafka, json]\n      steps: kept\n      sinks: out\n\nrepartitions: none");
  });

  it('prints a plan that does not run as tasks as before: no stages, no repartition', async () => {
    for (const format of ['text', 'mermaid', 'dot', 'json'] as const) {
      const io = captureIO({});
      expect(await graph.run([EMPLOYEE, '--profile', 'local', '--format', format], io)).toBe(0);
      const loaded = await loadPipeline(EMPLOYEE, { env: {}, profile: 'local' });
      if (!loaded.ok) throw new Error('the local profile does not load');
      expect(io.out()).toBe(renderPlan(loaded.plan, format));
      expect(io.out()).not.toMatch(/stages|repartition/);
    }
  });

  it('exits 2 naming the step when the pipeline cannot be cut into stages', async () => {
    const bad = specFile(SPEC.replace('  kept:\n    from: events\n    filter: a > 1\n', [
      '  hourly:',
      '    from: events',
      '    window: { tumbling: 1h }',
      '    group_by: [a]',
      '    aggregate: { n: $count() }',
      '  kept:',
      '    from: [hourly, events]',
      '    filter: a > 1',
      '',
    ].join('\n')));
    const io = captureIO();
    expect(await graph.run([bad], io)).toBe(2);
    expect(io.out()).toBe('');
    expect(io.err()).toMatch(/^\S+g\.yaml:12:3: error\[E_REPARTITION\]: step `kept` reads `hourly` \(stage 1\), `events` \(stage 0\)/);
  });
});
