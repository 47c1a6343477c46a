/**
 * A window with no `time:` over records that carry only the time they were read (file, stdin in
 * the json and text formats) would window by the wall clock: validate refuses it (issue 11, item 7).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileSource } from '../../src/components/sources/file.ts';
import { decodesEventTime, stampsArrivalTime } from '../../src/engine/event-time.ts';
import { loadPipelineText } from '../../src/plan/load-pipeline.ts';
import { positionText } from '../../src/spec/diagnostic.ts';
import { builtinComponents } from '../../src/spec/registry.ts';
import { RecordingOutput, sourceContext } from '../components/sources/source-harness.ts';

function spec(source: string, window: string, between = ''): string {
  return [
    'version: 1',
    'name: w',
    'sources:',
    `  events: ${source}`,
    'steps:',
    between,
    '  counts:',
    `    from: ${between ? 'kept' : 'events'}`,
    `    window: ${window}`,
    '    group_by: [user]',
    '    aggregate: { n: $count() }',
    'sinks:',
    '  out: { from: counts, stdout: {} }',
  ]
    .filter((l) => l !== '')
    .join('\n') + '\n';
}

function problems(text: string, profile?: string): string[] {
  const result = loadPipelineText('w.yaml', text, { env: {}, ...(profile ? { profile } : {}) });
  return result.ok ? [] : result.diagnostics.map((d) => `${positionText(d)} ${d.code} ${d.message}`);
}

const REFUSED = 'E_WINDOW_TIME the window of step `counts` has no `time:`, and the records of source `events` (file) carry only the time they were read: they would be windowed by the wall clock';

describe('a window without time:', () => {
  it('is refused over a file source, at its window key', () => {
    expect(problems(spec('{ file: { path: in.jsonl } }', '{ tumbling: 1h }'))).toEqual([`8:5 ${REFUSED}`]);
  });

  it('is refused over stdin, also through steps that pass records on', () => {
    const filter = '  kept:\n    from: events\n    filter: a > 1';
    expect(problems(spec('{ stdin: {}, format: text }', '{ tumbling: 1h }', filter))).toEqual([
      '11:5 E_WINDOW_TIME the window of step `counts` has no `time:`, and the records of source `events` (stdin) carry only the time they were read: they would be windowed by the wall clock',
    ]);
  });

  it('is accepted with a time: expression, over a format that reads event time, and over sources with message timestamps', () => {
    expect(problems(spec('{ file: { path: in.jsonl } }', '{ tumbling: 1h, time: ts }'))).toEqual([]);
    expect(problems(spec('{ file: { path: in.jsonl }, format: debezium }', '{ tumbling: 1h }'))).toEqual([]);
    expect(problems(spec('{ generator: { scenario: employee-activity, count: 10 }, format: debezium }', '{ tumbling: 1h }'))).toEqual([]);
    expect(problems(spec('{ kafka: { brokers: b, group: g, topic: t } }', '{ tumbling: 1h }'))).toEqual([]);
  });

  it('is checked in each profile, saying which', () => {
    const text = spec('{ kafka: { brokers: b, group: g, topic: t } }', '{ tumbling: 1h }') + 'profiles:\n  local:\n    sources:\n      events: { file: { path: in.jsonl } }\n';
    expect(problems(text)).toEqual([`8:5 ${REFUSED} (with profile \`local\`)`]);
    expect(problems(text, 'local')).toEqual([`8:5 ${REFUSED}`]);
  });
});

describe('which components carry event time', () => {
  it('file, stdin and postgres-query stamp arrival time; only debezium reads event time from the message', () => {
    expect(builtinComponents.sources.filter(stampsArrivalTime).map((d) => d.name).sort()).toEqual(['file', 'postgres-query', 'stdin']);
    expect(builtinComponents.formats.filter(decodesEventTime).map((d) => d.name)).toEqual(['debezium']);
  });

  it('the file source does what it declares: its messages carry the clock time they were read at', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-window-time-'));
    const file = path.join(dir, 'in.jsonl');
    await writeFile(file, '{"ts":"2020-01-01T00:00:00Z"}\n');
    const out = new RecordingOutput();
    await fileSource.create({ path: file }, sourceContext('events', 'run', 42_000)).run(out);
    expect(out.messages.map((m) => m.timestamp)).toEqual([42_000]);
  });
});
