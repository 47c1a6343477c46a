import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonFormat } from '../../../src/components/formats/json.ts';
import { fileSink } from '../../../src/components/sinks/file.ts';
import { fileSource } from '../../../src/components/sources/file.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { ConfigError } from '../../../src/engine/errors.ts';
import { ERROR_MESSAGE_HEADER } from '../../../src/engine/failed-record.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { Runtime } from '../../../src/engine/runtime.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { RecordingSink, ScriptedStep, graphOf } from '../../engine/fake-components.ts';
import { RecordingOutput, sourceContext } from './source-harness.ts';

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'sluice-file-'));
}

describe('file source', () => {
  it('emits lines in batches with line-number offsets, one partition per file', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'events.jsonl');
    await writeFile(file, '{"n":1}\n{"n":2}\n\n{"n":3}\n');
    const out = new RecordingOutput();
    const source = fileSource.create({ path: file, batch_size: 2 }, sourceContext('events'));
    expect(source.bounded).toBe(true);
    await source.run(out);
    expect(out.events).toEqual([`assign events/${file}`, `emit events/${file} 2`, `emit events/${file} 1`]);
    // The line's bytes: the format decodes them.
    expect(out.messages.map((m) => [m.value, m.position.offset])).toEqual([
      [Buffer.from('{"n":1}'), '1'],
      [Buffer.from('{"n":2}'), '2'],
      [Buffer.from('{"n":3}'), '4'],
    ]);
    expect(out.messages[0]).toMatchObject({ key: null, headers: {}, timestamp: 1_000, position: { source: 'events', partition: `events/${file}` } });
  });

  it('reads the files of a glob in order, releasing each finished file’s partition', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'b.jsonl'), '2\n');
    await writeFile(path.join(dir, 'a.jsonl'), '1\n');
    const out = new RecordingOutput();
    await fileSource.create({ path: `${dir}/*.jsonl` }, sourceContext('in')).run(out);
    expect(out.events).toEqual([
      `assign in/${dir}/a.jsonl`,
      `emit in/${dir}/a.jsonl 1`,
      `revoke in/${dir}/a.jsonl`,
      `assign in/${dir}/b.jsonl`,
      `emit in/${dir}/b.jsonl 1`,
    ]);
  });

  it('waits for the pipeline before reading on (backpressure) and stops when asked', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'many.jsonl');
    await writeFile(file, Array.from({ length: 100 }, (_, i) => `${i}`).join('\n'));
    const out = new RecordingOutput();
    let release!: () => void;
    out.gate = new Promise((r) => (release = r));
    const source = fileSource.create({ path: file, batch_size: 10 }, sourceContext('in'));
    const running = source.run(out);
    await new Promise((r) => setTimeout(r, 20));
    expect(out.batches).toHaveLength(1); // held at the first emit
    await source.stop();
    release();
    await running;
    expect(out.batches).toHaveLength(1);
  });

  it('sends a line longer than max_line_length to the errors port with the file and line number, and reads on', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'events.jsonl');
    await writeFile(file, `{"n":1}\n{"long":"${'x'.repeat(5000)}"}\n{"n":3}\n`);
    const written = new RecordingSink();
    const failed: StreamRecord[] = [];
    const graph = graphOf([
      { source: 'in', impl: fileSource.create({ path: file, max_line_length: 1000 }, sourceContext('in')), format: jsonFormat.create({}, sourceContext('in')) },
      { sink: 'out', impl: written, from: ['in'] },
      {
        step: 'dead',
        impl: new ScriptedStep({
          process: (records, out) => {
            failed.push(...records);
            for (const r of records) out.drop(r, 'seen');
          },
        }),
        from: ['in.errors'],
      },
    ]);
    const outcome = await new Runtime(graph, { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0 }).run();
    expect(outcome).toMatchObject({ ended: 'end-of-input', recordsIn: 3, failed: 1 });
    expect(written.values).toEqual([{ n: 1 }, { n: 3 }]);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ key: null, value: null, position: { offset: '2' } });
    const reason = `line 2 of ${file} is longer than 1000 characters (max_line_length): skipped to its end`;
    expect(failed[0]!.headers[ERROR_MESSAGE_HEADER]).toBe(reason);
    expect(failed[0]!.meta.error).toEqual({ node: 'in', code: 'E_LINE_TOO_LONG', message: reason });
  });

  it('fails with a ConfigError naming the absolute path when nothing matches, in check() as in run()', async () => {
    const source = fileSource.create({ path: '/nonexistent/*.jsonl' }, sourceContext('in'));
    await expect(source.run(new RecordingOutput())).rejects.toThrow(ConfigError);
    await expect(source.run(new RecordingOutput())).rejects.toThrow('no file matches `/nonexistent/*.jsonl` (looked for /nonexistent/*.jsonl)');
    const relative = fileSource.create({ path: 'data/activites.jsonl' }, sourceContext('in'));
    await expect(relative.check!()).rejects.toMatchObject({
      code: 'E_SOURCE_PATH',
      where: 'sources.in',
      message: `no file matches \`data/activites.jsonl\` (looked for ${path.resolve('data/activites.jsonl')})`,
    });
  });

  it('a mistyped input path fails the run before a file sink truncates the last run\'s output', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out.jsonl');
    await writeFile(output, '{"kept":true}\n');
    const graph = graphOf([
      { source: 'in', impl: fileSource.create({ path: path.join(dir, 'activites.jsonl') }, sourceContext('in')), format: jsonFormat.create({}, sourceContext('in')) },
      { sink: 'out', impl: fileSink.create({ path: output }, sourceContext('out')), from: ['in'] },
    ]);
    const runtime = new Runtime(graph, { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0 });
    await expect(runtime.run()).rejects.toMatchObject({ code: 'E_SOURCE_PATH', where: 'sources.in', message: expect.stringContaining(path.join(dir, 'activites.jsonl')) });
    expect(await readFile(output, 'utf8')).toBe('{"kept":true}\n');
  });
});
