import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../src/cli/command.ts';
import { command as diff } from '../../src/cli/diff.ts';
import { captureIO } from './cli-io.ts';

const ORIGINAL = readFileSync(new URL('../../../pipelines/employee-activity.yaml', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'sluice-diff-'));
let files = 0;

function specFile(text: string): string {
  const file = join(dir, `spec-${files++}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** Replaces `from` (which must occur) in the employee pipeline. */
function edit(from: string | RegExp, to: string): string {
  const edited = ORIGINAL.replace(from, to);
  if (edited === ORIGINAL) throw new Error(`the test's edit found no \`${String(from)}\``);
  return edited;
}

const DAILY_STEP = `  daily:
    from: inserts
    window: { tumbling: 1d, time: activity_timestamp }
    group_by: [employee_id]
    aggregate: { activity_count: $count() }

sinks:
  daily-summaries:
    from: daily
    stdout: {}
`;

const original = specFile(ORIGINAL);

async function run(after: string, ...flags: string[]) {
  const io = captureIO();
  const code = await diff.run([original, specFile(after), ...flags], io);
  return { code, out: io.out(), err: io.err() };
}

describe('sluice diff over edits of pipelines/employee-activity.yaml', () => {
  it.each<[string, number, string, RegExp[]]>([
    ['unchanged', 0, ORIGINAL, [/^ {2}keep {5}hourly \[window\]$/m, /^verdict: all state carries over$/m]],
    ['lateness 10m -> 20m', 0, edit('lateness: 10m', 'lateness: 20m'), [/^ {2}keep {5}hourly \[window\]$/m]],
    ['emit final -> update', 0, edit('emit: final', 'emit: update'), [/^ {2}keep {5}hourly \[window\]$/m]],
    ['tumbling 1h -> 30m', 3, edit('tumbling: 1h', 'tumbling: 30m'), [/^ {2}reset {4}hourly \[window\]: window size changed from 1h to 30m$/m, /`sluice run --reset-state` drops it, or a replay from the source start rebuilds it/]],
    ['an aggregate added', 3, edit('      avg_duration: $average(duration_seconds)', '      avg_duration: $average(duration_seconds)\n      max_duration: $max(duration_seconds)'), [/^ {2}reset {4}hourly \[window\]: aggregate `max_duration` added$/m]],
    ['group_by order changed', 3, edit('group_by: [employee_id, activity_type]', 'group_by: [activity_type, employee_id]'), [/reset {4}hourly \[window\]: group_by order changed from employee_id, activity_type to activity_type, employee_id/]],
    ['the window step renamed', 3, edit(/\bhourly\b/g, 'hourly-v2'), [/^ {2}reset {4}hourly-v2 \[window\]: looks renamed from hourly: state is keyed by step name and will not follow$/m, /changelog topic employee-activity-hourly-changelog/, /^ {2}step hourly looks renamed to hourly-v2/m]],
    ['the application id changed', 3, edit('application_id: ${SLUICE_GROUP:-employee-activity}', 'application_id: employee-activity-v2'), [/^ {2}application id changed from employee-activity to employee-activity-v2 \(it is the pipeline name unless checkpoint.application_id sets it\): it names all state/m]],
    ['the pipeline renamed under an explicit application id', 0, edit('name: employee-activity', 'name: employee-activity-v2'), [/^ {2}keep {5}hourly \[window\]$/m]],
    ['a sink topic changed', 0, edit('topic: employee-activity-summaries', 'topic: employee-activity-summaries-v2'), [/^ {2}summaries \[kafka\]: topic employee-activity-summaries -> topic employee-activity-summaries-v2$/m, /^ {2}keep {5}hourly/m]],
    ['a new window step', 0, edit(/^sinks:\n/m, DAILY_STEP), [/^ {2}new {6}daily \[window\]: starts empty$/m, /^ {2}daily-summaries \[stdout\]: added, writes to stdout$/m, /^ {2}keep {5}hourly/m]],
    ['the source group changed', 3, edit('group: ${SLUICE_GROUP:-employee-activity}', 'group: employee-activity-2'), [/^ {2}activities \[kafka\]: group changed from employee-activity to employee-activity-2: committed positions will not follow \(it starts from `start: earliest`\)$/m]],
    ['the source topic changed', 3, edit('topic: employee-server.public.employee_activities', 'topic: other.public.employee_activities'), [/activities \[kafka\]: topic changed from employee-server.public.employee_activities to other.public.employee_activities: committed positions will not follow/]],
  ])('%s: exit %i', async (_what, exit, after, expected) => {
    const { code, out, err } = await run(after);
    expect(err).toBe('');
    for (const pattern of expected) expect(out).toMatch(pattern);
    expect(out).toMatch(exit === 0 ? /^verdict: all state carries over$/m : /^verdict: a reset or replay is needed, or state would be left behind/m);
    expect(code).toBe(exit);
  });

  it('prints a machine-readable verdict with --format json', async () => {
    const { code, out } = await run(edit('tumbling: 1h', 'tumbling: 30m'), '--format', 'json');
    expect(code).toBe(3);
    const verdict = JSON.parse(out) as Record<string, unknown>;
    expect(verdict).toMatchObject({
      exit: 3,
      stateCarriesOver: false,
      pipeline: { before: 'employee-activity', after: 'employee-activity' },
      steps: [{ verdict: 'reset', step: 'hourly', kind: 'window', change: 'window size changed from 1h to 30m' }],
      sources: [],
      sinks: [],
    });
    expect(verdict.stateMoves).toEqual(['step hourly needs a reset or replay: window size changed from 1h to 30m']);
  });

  it('applies --profile to both files', async () => {
    const { code, out } = await run(edit('path: out/employee-activity-summaries.jsonl', 'path: out/summaries-v2.jsonl'), '--profile', 'local');
    expect(out).toMatch(/^ {2}summaries \[file\]: file out\/employee-activity-summaries.jsonl -> file out\/summaries-v2.jsonl$/m);
    expect(code).toBe(0);
  });

  it('exits 2 with diagnostics when a spec is invalid', async () => {
    const { code, out, err } = await run(edit('from: inserts\n    window', 'from: insert\n    window'));
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toContain('error[E_FROM_UNKNOWN]');
  });

  it('exits 2 on a usage error, and documents exit code 3', async () => {
    const io = captureIO();
    expect(await dispatch([diff], ['diff', original], io)).toBe(2);
    expect(io.err()).toContain('name two spec files');
    expect(diff.usage).toContain('3 a reset\nor replay is needed');
  });
});
