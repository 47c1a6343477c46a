/** The stage split of a pipeline that runs as tasks: where repartitions go, and what each stage holds. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseWindowStepConfig } from '../../src/components/steps/window.ts';
import { ConfigError } from '../../src/engine/errors.ts';
import { ERRORS_PORT } from '../../src/engine/graph.ts';
import { loadPipeline, loadPipelineText } from '../../src/plan/load-pipeline.ts';
import { plainPathSegments, runsAsTasks, splitStages, type StageSplit } from '../../src/plan/stages.ts';
import type { Plan } from '../../src/plan/types.ts';

const EMPLOYEE = join(import.meta.dirname, '../../../pipelines/employee-activity.yaml');

async function employeePlan(profile?: string): Promise<Plan> {
  const result = await loadPipeline(EMPLOYEE, { env: {}, ...(profile ? { profile } : {}) });
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'));
  return result.plan;
}

function planOf(text: string): Plan {
  const result = loadPipelineText('p.yaml', text, { env: {} });
  if (!result.ok) throw new Error(result.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  return result.plan;
}

const KAFKA = 'brokers: localhost:9092';

/** A Kafka pipeline: `source` (extra keys of the kafka source), the steps and the sinks as YAML lines. */
function spec(options: { source?: string; steps: string[]; sinks: string[]; top?: string[] }): string {
  return [
    'version: 1',
    'name: p',
    ...(options.top ?? []),
    'sources:',
    `  events: { kafka: { ${KAFKA}, topic: in, group: g${options.source ? `, ${options.source}` : ''} } }`,
    'steps:',
    ...options.steps.map((s) => `  ${s}`),
    'sinks:',
    ...options.sinks.map((s) => `  ${s}`),
    '',
  ].join('\n');
}

const HOURLY = 'hourly: { from: events, window: { tumbling: 1h, time: ts }, group_by: [employee_id, activity_type], aggregate: { n: $count() } }';
const TO_KAFKA = `{ ${KAFKA}, topic: out }`;

/** Names of a stage's nodes with their role, and each one's inputs as `node.port`. */
function shape(split: StageSplit): Record<string, string[]> {
  return Object.fromEntries(
    split.stages.map((s) => [
      s.id,
      s.plan.nodes.map((n) => `${n.role} ${n.name}${n.role === 'source' ? '' : ` <- ${n.inputs.map((i) => `${i.node}.${i.port}`).join(', ')}`}`),
    ]),
  );
}

/** The Plan invariants each stage keeps: one source, first; every input a node before it in the same plan; sinks after sinks whose errors they read. */
function expectPlanInvariants(split: StageSplit): void {
  for (const stage of split.stages) {
    const nodes = stage.plan.nodes;
    expect(nodes.filter((n) => n.role === 'source').map((n) => n.name), `stage ${stage.id}`).toEqual([stage.input]);
    expect(nodes[0]!.name).toBe(stage.input);
    const roles = nodes.map((n) => n.role);
    expect(roles.lastIndexOf('source')).toBeLessThan(roles.indexOf('step') === -1 ? Infinity : roles.indexOf('step'));
    expect(roles.lastIndexOf('step')).toBeLessThan(roles.indexOf('sink'));
    const seen = new Set<string>();
    for (const n of nodes) {
      if (n.role !== 'source') for (const i of n.inputs) expect(seen.has(i.node), `stage ${stage.id}: ${n.name} reads ${i.node} before it`).toBe(true);
      seen.add(n.name);
    }
  }
}

describe('runsAsTasks', () => {
  it('is true for the employee pipeline (a kafka source, state in Kafka) and false for its local profile (a generator)', async () => {
    expect(runsAsTasks(await employeePlan())).toBe(true);
    expect(runsAsTasks(await employeePlan('local'))).toBe(false);
  });

  it('is false with the state elsewhere, with state settings that are refused, and with two sources', () => {
    const base = { steps: [HOURLY], sinks: [`out: { from: hourly, kafka: ${TO_KAFKA} }`] };
    expect(runsAsTasks(planOf(spec(base)))).toBe(true);
    expect(runsAsTasks(planOf(spec({ ...base, top: ['checkpoint: { store: file }'] })))).toBe(false);
    // exactly-once to Kafka and PostgreSQL at once: stateSettings throws a ConfigError.
    const both = { ...base, top: ['delivery: exactly-once'], sinks: [...base.sinks, 'db: { from: hourly, postgres: { host: h, database: d, user: u, table: t } }'] };
    expect(runsAsTasks(planOf(spec(both)))).toBe(false);
    const two = spec(base).replace('steps:', `  more: { kafka: { ${KAFKA}, topic: in2, group: g } }\nsteps:`).replace('from: events,', 'from: [events, more],');
    expect(runsAsTasks(planOf(two))).toBe(false);
  });

  it('is false for a source of several topics and for a file sink, which every task would overwrite', () => {
    const base = { steps: [HOURLY], sinks: [`out: { from: hourly, kafka: ${TO_KAFKA} }`] };
    expect(runsAsTasks(planOf(spec(base).replace('topic: in,', 'topics: [in, in2],')))).toBe(false);
    expect(runsAsTasks(planOf(spec({ ...base, sinks: [...base.sinks, 'f: { from: hourly, file: { path: out.jsonl } }'] })))).toBe(false);
  });
});

describe('splitStages: the employee pipeline', () => {
  it('cuts at `hourly`: stage 0 keeps inserts, enriched and their sinks, stage 1 reads the repartition topic', async () => {
    const plan = await employeePlan();
    const split = splitStages(plan);
    expect(shape(split)).toEqual({
      '0': [
        'source activities',
        'step inserts <- activities.out',
        'step enriched <- inserts.out',
        'sink hourly-repartition <- inserts.out',
        'sink processed <- enriched.out',
        'sink dead-letters <- activities.errors, inserts.errors, enriched.errors, hourly-repartition.errors, processed.errors',
      ],
      '1': [
        'source hourly-repartition',
        'step hourly <- hourly-repartition.out',
        'sink summaries <- hourly.out',
        'sink late-activities <- hourly.late',
        'sink dead-letters <- hourly.errors, summaries.errors, late-activities.errors',
      ],
    });
    expect(split.stages.map((s) => s.input)).toEqual(['activities', 'hourly-repartition']);
    expectPlanInvariants(split);
  });

  it('records one repartition keyed by the group keys, its partition count left to the start', async () => {
    const split = splitStages(await employeePlan());
    expect(split.repartitions).toEqual([
      {
        step: 'hourly',
        topic: 'employee-activity-hourly-repartition',
        group: 'employee-activity-hourly-repartition',
        by: ['employee_id', 'activity_type'],
        from: '0',
        to: '1',
      },
    ]);
  });

  it('configures the inserted sink and source from the kafka source and the window', async () => {
    const plan = await employeePlan();
    const [zero, one] = splitStages(plan).stages;
    const sink = zero!.plan.nodes.find((n) => n.name === 'hourly-repartition')!;
    expect(sink).toMatchObject({ role: 'sink', kind: 'repartition', ports: [ERRORS_PORT] });
    expect(sink.config).toEqual({
      brokers: 'localhost:9092',
      topic: 'employee-activity-hourly-repartition',
      key: ['employee_id', 'activity_type'],
      time: 'activity_timestamp',
      idle: '1m',
      // Nothing after the repartition reads $meta: Debezium's before image and source block stay behind.
      meta: false,
    });
    const source = one!.plan.nodes[0]!;
    expect(source.role === 'source' && source.format).toMatchObject({ kind: 'repartition', config: { upstream: '0' } });
    expect(source).toMatchObject({ role: 'source', kind: 'kafka' });
    expect(source.config).toEqual({
      brokers: 'localhost:9092',
      topic: 'employee-activity-hourly-repartition',
      group: 'employee-activity-hourly-repartition',
      start: 'earliest',
      isolation: 'read_committed',
    });
    // The window itself is unchanged but for what it reads; the plan's settings go to every stage.
    const hourly = plan.nodes.find((n) => n.name === 'hourly')!;
    expect(one!.plan.nodes.find((n) => n.name === 'hourly')).toEqual({ ...hourly, inputs: [{ node: 'hourly-repartition', port: 'out' }] });
    for (const stage of [zero!, one!]) expect({ ...stage.plan, nodes: [] }).toEqual({ ...plan, nodes: [] });
  });

  it('the local profile does not run as tasks: one stage, the plan unchanged', async () => {
    const plan = await employeePlan('local');
    expect(splitStages(plan)).toEqual({ stages: [{ id: '0', plan, input: 'activities' }], repartitions: [] });
  });
});

describe('splitStages: when a window needs a repartition', () => {
  const sinks = [`out: { from: hourly, kafka: ${TO_KAFKA} }`];

  it('not when the source is partitioned by fields that are all among the group keys', () => {
    const plan = planOf(spec({ source: 'partitioned_by: [employee_id]', steps: [HOURLY], sinks }));
    const split = splitStages(plan);
    expect(split.repartitions).toEqual([]);
    expect(split.stages).toEqual([{ id: '0', plan, input: 'events' }]);
  });

  it('when the source is partitioned by something else, or says nothing of it', () => {
    expect(splitStages(planOf(spec({ source: 'partitioned_by: [department]', steps: [HOURLY], sinks }))).repartitions).toHaveLength(1);
    expect(splitStages(planOf(spec({ source: 'partitioned_by: [employee_id, department]', steps: [HOURLY], sinks }))).repartitions).toHaveLength(1);
    expect(splitStages(planOf(spec({ steps: [HOURLY], sinks }))).repartitions).toHaveLength(1);
  });

  it('when a set step between the source and the window assigns a field the source is partitioned by, and not when it assigns others', () => {
    const through = (set: string) =>
      splitStages(planOf(spec({ source: 'partitioned_by: [employee_id]', steps: [`fixed: { from: events, set: { ${set} } }`, HOURLY.replace('from: events', 'from: fixed')], sinks })));
    const overwritten = through('employee_id: $string(employee_id)');
    expect(overwritten.repartitions).toMatchObject([{ step: 'hourly', by: ['employee_id', 'activity_type'], from: '0', to: '1' }]);
    expect(shape(overwritten)['0']).toContain('sink hourly-repartition <- fixed.out');
    expect(through('hour: $hour(ts)').repartitions).toEqual([]);
  });

  it('compares whole paths: `user.id` is not `id`, and a set of `user` changes `user.id`', () => {
    const window = (groupBy: string) => `hourly: { from: events, window: { tumbling: 1h }, group_by: ${groupBy}, aggregate: { n: $count() } }`;
    const split = (groupBy: string, source = 'partitioned_by: [user.id]') => splitStages(planOf(spec({ source, steps: [window(groupBy)], sinks })));
    expect(split('[user.id]').repartitions).toEqual([]);
    expect(split('[id]').repartitions).toHaveLength(1);
    expect(split('{ uid: user.id }').repartitions).toEqual([]);
    expect(split('{ uid: $string(user.id) }').repartitions).toHaveLength(1);
    const setUser = splitStages(planOf(spec({ source: 'partitioned_by: [user.id]', steps: ['s: { from: events, set: { user: $ } }', window('[user.id]').replace('from: events', 'from: s')], sinks })));
    expect(setUser.repartitions).toHaveLength(1);
  });

  it('`partition_by` keys the topic instead of the group keys, and `partitions` sets its count', () => {
    const step = HOURLY.replace('group_by:', 'partition_by: [employee_id], partitions: 4, group_by:');
    const split = splitStages(planOf(spec({ steps: [step], sinks })));
    expect(split.repartitions).toEqual([{ step: 'hourly', topic: 'p-hourly-repartition', group: 'p-hourly-repartition', by: ['employee_id'], partitions: 4, from: '0', to: '1' }]);
    expect(split.stages[0]!.plan.nodes.find((n) => n.name === 'hourly-repartition')!.config).toMatchObject({ key: ['employee_id'], partitions: 4 });
  });

  it('a window without group_by repartitions into one partition, keyed by nothing; a window after it in that stage needs none', () => {
    const total = 'total: { from: events, window: { tumbling: 1h }, aggregate: { n: $count() } }';
    const daily = 'daily: { from: total, window: { tumbling: 1d }, group_by: [n], aggregate: { c: $count() } }';
    const split = splitStages(planOf(spec({ steps: [total, daily], sinks: [`out: { from: daily, kafka: ${TO_KAFKA} }`] })));
    expect(split.repartitions).toEqual([{ step: 'total', topic: 'p-total-repartition', group: 'p-total-repartition', by: [], partitions: 1, from: '0', to: '1' }]);
    expect(shape(split)['1']).toEqual(['source total-repartition', 'step total <- total-repartition.out', 'step daily <- total.out', 'sink out <- daily.out']);
    // The sink needs a key expression: every record gets the same one.
    expect(split.stages[0]!.plan.nodes.find((n) => n.name === 'total-repartition')!.config).toMatchObject({ key: ['null'], partitions: 1 });
  });

  it('refuses `partition_by` and `partitions` on a window without group_by, at validation', () => {
    for (const key of ['partition_by: [a]', 'partitions: 2']) {
      const result = loadPipelineText('p.yaml', spec({ steps: [`total: { from: events, window: { tumbling: 1h }, ${key}, aggregate: { n: $count() } }`], sinks: [`out: { from: total, kafka: ${TO_KAFKA} }`] }));
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.diagnostics.map((d) => d.message)).toEqual([`step \`total\` needs \`group_by\` when \`${key.split(':')[0]}\` is set`]);
    }
  });

  it('the window step parses the two keys, and refuses them without group_by when created from a config no schema checked', () => {
    const base = { window: { tumbling: '1h' }, aggregate: { n: '$count()' } };
    expect(parseWindowStepConfig({ ...base, group_by: ['a'], partition_by: ['$lowercase(a)'], partitions: 3 })).toMatchObject({ partition_by: ['$lowercase(a)'], partitions: 3 });
    expect(() => parseWindowStepConfig({ ...base, partitions: 3 }, 'steps.w')).toThrow(expect.objectContaining({ code: 'E_WINDOW_CONFIG', where: 'steps.w', message: expect.stringContaining('`partitions` needs `group_by`') }));
    expect(() => parseWindowStepConfig({ ...base, group_by: ['a'], partitions: 0 })).toThrow('`partitions` must be a whole number of at least 1');
    expect(() => parseWindowStepConfig({ ...base, group_by: ['a'], partition_by: [] })).toThrow('`partition_by` must be a non-empty list');
  });

  it('follows the partitioning through a repartitioned window: its group-key fields partition its output', () => {
    const daily = (groupBy: string) => `daily: { from: hourly, window: { tumbling: 1d }, group_by: ${groupBy}, aggregate: { total: $sum(n) } }`;
    const split = (groupBy: string) => splitStages(planOf(spec({ steps: [HOURLY, daily(groupBy)], sinks: [`out: { from: daily, kafka: ${TO_KAFKA} }`] })));
    // Grouped by both keys again: the records of one group are already in one task of stage 1.
    const same = split('[activity_type, employee_id]');
    expect(same.repartitions.map((r) => r.step)).toEqual(['hourly']);
    expect(shape(same)['1']).toEqual(['source hourly-repartition', 'step hourly <- hourly-repartition.out', 'step daily <- hourly.out', 'sink out <- daily.out']);
    // Grouped by fewer keys: a second cut, from stage 1 to stage 2.
    const fewer = split('[employee_id]');
    expect(fewer.repartitions.map((r) => [r.step, r.from, r.to, r.by])).toEqual([
      ['hourly', '0', '1', ['employee_id', 'activity_type']],
      ['daily', '1', '2', ['employee_id']],
    ]);
    expect(shape(fewer)).toEqual({
      '0': ['source events', 'sink hourly-repartition <- events.out'],
      '1': ['source hourly-repartition', 'step hourly <- hourly-repartition.out', 'sink daily-repartition <- hourly.out'],
      '2': ['source daily-repartition', 'step daily <- daily-repartition.out', 'sink out <- daily.out'],
    });
    expect(fewer.stages[2]!.plan.nodes[0]!).toMatchObject({ format: { kind: 'repartition', config: { upstream: '1' } } });
    expectPlanInvariants(fewer);
  });
});

describe('splitStages: sinks and refusals', () => {
  const sinks = [`out: { from: hourly, kafka: ${TO_KAFKA} }`];

  it('puts a sink that reads another sink\'s errors wherever that sink is', () => {
    const split = splitStages(
      planOf(
        spec({
          steps: ['kept: { from: events, filter: a > 1 }', HOURLY.replace('from: events', 'from: kept')],
          sinks: [
            `dlq: { from: [kept.errors, hourly.errors], kafka: { ${KAFKA}, topic: dlq } }`,
            `out: { from: hourly, kafka: ${TO_KAFKA} }`,
            `last: { from: [dlq.errors, out.errors], kafka: { ${KAFKA}, topic: last } }`,
          ],
        }),
      ),
    );
    expect(shape(split)).toEqual({
      '0': ['source events', 'step kept <- events.out', 'sink hourly-repartition <- kept.out', 'sink dlq <- kept.errors, hourly-repartition.errors', 'sink last <- dlq.errors'],
      '1': ['source hourly-repartition', 'step hourly <- hourly-repartition.out', 'sink dlq <- hourly.errors', 'sink out <- hourly.out', 'sink last <- dlq.errors, out.errors'],
    });
    expectPlanInvariants(split);
  });

  it('carries $meta through the repartition only when a node after it mentions it', () => {
    const metaOf = (steps: string[], sinkList: string[]) => splitStages(planOf(spec({ steps, sinks: sinkList }))).stages[0]!.plan.nodes.find((n) => n.kind === 'repartition')!.config as { meta?: boolean };
    const plain = [`out: { from: hourly, kafka: ${TO_KAFKA} }`];
    expect(metaOf([HOURLY], plain).meta).toBe(false);
    // Read by the window itself, by a step after it, or by a sink of its late records.
    expect(metaOf([HOURLY.replace('n: $count()', 'n: $count(), tables: $distinct($meta.table)')], plain).meta).toBeUndefined();
    expect(metaOf([HOURLY, 'tagged: { from: hourly, set: { op: $meta.window_start } }'], [`out: { from: tagged, kafka: ${TO_KAFKA} }`]).meta).toBeUndefined();
    expect(metaOf([HOURLY], [...plain, `late: { from: hourly.late, kafka: { ${KAFKA}, topic: late, key: $string($meta.offset) } }`]).meta).toBeUndefined();
    // A step before the repartition may read $meta as it likes: the records it writes into the topic are what travels.
    expect(metaOf(['ins: { from: events, filter: $meta.op = "c" }', HOURLY.replace('from: events', 'from: ins')], plain).meta).toBe(false);
  });

  it('copies the source\'s connection (client id, SASL, TLS) to both ends of the repartition, and nothing else of it', () => {
    const source = 'client_id: me, sasl: { mechanism: plain, username: u, password: pw }, tls: true, start: latest, concurrency: 2, partitioned_by: [x]';
    const split = splitStages(planOf(spec({ source, steps: [HOURLY], sinks })));
    const connection = { brokers: 'localhost:9092', client_id: 'me', sasl: { mechanism: 'plain', username: 'u', password: 'pw' }, tls: true };
    expect(split.stages[0]!.plan.nodes.find((n) => n.kind === 'repartition')!.config).toEqual({ ...connection, topic: 'p-hourly-repartition', key: ['employee_id', 'activity_type'], time: 'ts', meta: false });
    expect(split.stages[1]!.plan.nodes[0]!.config).toEqual({ ...connection, topic: 'p-hourly-repartition', group: 'p-hourly-repartition', start: 'earliest', isolation: 'read_committed' });
    // Summaries are made from redacted configs.
    expect(split.stages.flatMap((s) => s.plan.nodes.map((n) => n.summary)).join('\n')).not.toContain('pw');
  });

  it('names the application id in the topic: checkpoint.application_id over the pipeline name', () => {
    const split = splitStages(planOf(spec({ top: ['checkpoint: { application_id: app-7 }'], steps: [HOURLY], sinks })));
    expect(split.repartitions.map((r) => [r.topic, r.group])).toEqual([['app-7-hourly-repartition', 'app-7-hourly-repartition']]);
  });

  it('refuses a step that reads nodes of two stages, naming it, when the spec loads (so sluice validate says it, at the step)', () => {
    const text = spec({ steps: [HOURLY, 'both: { from: [hourly, events], filter: "true" }'], sinks: [`out: { from: both, kafka: ${TO_KAFKA} }`] });
    const result = loadPipelineText('p.yaml', text, { env: {} });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.diagnostics).toEqual([
      expect.objectContaining({ code: 'E_REPARTITION', line: text.split('\n').findIndex((l) => l.startsWith('  both:')) + 1, col: 3, message: expect.stringContaining('step `both` reads `hourly` (stage 1), `events` (stage 0)') }),
    ]);
  });

  it('refuses a node already named like the repartition, when the spec loads', () => {
    const result = loadPipelineText('p.yaml', spec({ steps: [HOURLY], sinks: [`hourly-repartition: { from: hourly, kafka: ${TO_KAFKA} }`] }), { env: {} });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.diagnostics).toEqual([expect.objectContaining({ code: 'E_REPARTITION', message: expect.stringContaining('`hourly-repartition` is the name of the repartition') })]);
  });
});

describe('plainPathSegments', () => {
  it('splits plain paths, backticked names included, and refuses anything else', () => {
    expect(plainPathSegments('employee_id')).toEqual(['employee_id']);
    expect(plainPathSegments('user.id')).toEqual(['user', 'id']);
    expect(plainPathSegments('a.`b c`')).toEqual(['a', 'b c']);
    expect(plainPathSegments('$string(a)')).toBeUndefined();
    expect(plainPathSegments('a[0]')).toBeUndefined();
    expect(plainPathSegments('a +')).toBeUndefined();
  });
});

describe('splitStages: a join with a global table', () => {
  const DEPARTMENT = join(import.meta.dirname, '../../../pipelines/department-hourly.yaml');
  /** A second, global source feeding a table, and a join in front of the window. */
  function joined(options: { global?: boolean; as?: string; windowBy?: string } = {}): string {
    return [
      'version: 1',
      'name: p',
      'sources:',
      `  events: { kafka: { ${KAFKA}, topic: in, group: g, partitioned_by: [employee_id] } }`,
      `  people: { kafka: { ${KAFKA}, topic: people, group: g-people${options.global === false ? '' : ', global: true'} } }`,
      'steps:',
      '  staff: { from: people, table: { key: id } }',
      `  joined: { from: events, join: { table: staff, on: employee_id${options.as ? `, as: ${options.as}` : ''} } }`,
      `  hourly: { from: joined, window: { tumbling: 1h, time: ts }, group_by: [${options.windowBy ?? 'employee_id'}], aggregate: { n: $count() } }`,
      'sinks:',
      `  out: { from: hourly, kafka: ${TO_KAFKA} }`,
      '',
    ].join('\n');
  }

  it('runs as tasks when every source but one is global, and not when two are not', () => {
    expect(runsAsTasks(planOf(joined()))).toBe(true);
    expect(runsAsTasks(planOf(joined({ global: false })))).toBe(false);
  });

  it('puts the global source in stage 0 beside the task input, which stays the stage input', () => {
    const split = splitStages(planOf(joined({ windowBy: 'staff.department' })));
    expect(split.stages[0]!.input).toBe('events');
    expect(shape(split)['0']).toEqual([
      'source events',
      'source people',
      'step staff <- people.out',
      'step joined <- events.out, staff.out',
      'sink hourly-repartition <- joined.out',
    ]);
  });

  it('keeps the stream\'s partitioning through the join (the table does not count), unless `as` replaces a partitioning field', () => {
    expect(splitStages(planOf(joined())).repartitions).toEqual([]);
    expect(splitStages(planOf(joined({ as: 'employee_id' }))).repartitions.map((r) => r.step)).toEqual(['hourly']);
  });

  it('runs pipelines/department-hourly.yaml as tasks: the join in stage 0 with the employees read whole, the window after a repartition', async () => {
    const result = await loadPipeline(DEPARTMENT, { env: {} });
    if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join('\n'));
    const split = splitStages(result.plan);
    expect(split.stages.map((s) => s.input)).toEqual(['activities', 'hourly-repartition']);
    expect(split.stages[0]!.plan.nodes.filter((n) => n.role === 'source').map((n) => n.name)).toEqual(['activities', 'employee-changes']);
    expect(split.stages[1]!.plan.nodes.some((n) => n.name === 'employee-changes')).toBe(false);
  });
});
