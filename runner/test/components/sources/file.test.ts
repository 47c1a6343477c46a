import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileSource } from '../../../src/components/sources/file.ts';
import { ConfigError } from '../../../src/engine/errors.ts';
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
    expect(out.messages.map((m) => [m.value, m.position.offset])).toEqual([
      ['{"n":1}', '1'],
      ['{"n":2}', '2'],
      ['{"n":3}', '4'],
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

  it('fails with a ConfigError when nothing matches', async () => {
    const source = fileSource.create({ path: '/nonexistent/*.jsonl' }, sourceContext('in'));
    await expect(source.run(new RecordingOutput())).rejects.toThrow(ConfigError);
    await expect(source.run(new RecordingOutput())).rejects.toThrow('no file matches `/nonexistent/*.jsonl`');
  });
});
