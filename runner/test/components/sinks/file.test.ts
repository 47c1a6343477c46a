import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileSink } from '../../../src/components/sinks/file.ts';
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { requireMessages } from '../../../src/engine/component.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';

const ctx = { name: 'out', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'run' as const };

function record(key: unknown, value: unknown, headers: Record<string, string> = {}): StreamRecord {
  return { key, value, time: 0, headers, meta: {}, position: { source: 's', partition: 's/p', offset: '1' }, ack: Ack.none() };
}

describe('file sink', () => {
  it('prepares {key, value} messages without I/O, with headers only when it writes them', async () => {
    const sink = fileSink.create({ path: '/nonexistent/never-written.jsonl' }, ctx);
    expect(await sink.prepare([record({ id: 1 }, { a: 1 }), record(null, 'x', { h: 'v' })])).toEqual([
      { key: { id: 1 }, value: { a: 1 } },
      { key: null, value: 'x' },
    ]);
    const withHeaders = fileSink.create({ path: '/nonexistent/never-written.jsonl', with_headers: true }, ctx);
    expect(await withHeaders.prepare([record(null, 'x', { h: 'v' })])).toEqual([{ key: null, value: 'x', headers: { h: 'v' } }]);
  });

  it('keeps a dead letter\'s reason with with_headers: true', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-sink-'));
    const file = path.join(dir, 'dead-letters.jsonl');
    const sink = fileSink.create({ path: file, with_headers: true }, ctx);
    await sink.open();
    await sink.write(requireMessages(await sink.prepare([record(null, 'this is not JSON', { 'sluice-error-node': 'activities', 'sluice-error-message': 'unexpected character' })])));
    await sink.close();
    expect(await readFile(file, 'utf8')).toBe('{"value":"this is not JSON","headers":{"sluice-error-node":"activities","sluice-error-message":"unexpected character"}}\n');
  });

  it('creates directories, truncates by default, writes exact bigints, one JSON line per record', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-sink-'));
    const file = path.join(dir, 'nested/deeper/out.jsonl');
    const first = fileSink.create({ path: file }, ctx);
    await first.open();
    await first.write(requireMessages(await first.prepare([record(1, { ts_ns: 1735813800123456789n }), record(2, 'two')])));
    await first.close();
    expect(await readFile(file, 'utf8')).toBe('{"ts_ns":1735813800123456789}\n"two"\n');
    const second = fileSink.create({ path: file }, ctx);
    await second.open();
    await second.write(requireMessages(await second.prepare([record(3, 3)])));
    await second.close();
    expect(await readFile(file, 'utf8')).toBe('3\n');
  });

  it('appends with mode append and writes {key, value} with with_key; the data is in the file when write resolves', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-sink-'));
    const file = path.join(dir, 'out.jsonl');
    await writeFile(file, 'old\n');
    const sink = fileSink.create({ path: file, mode: 'append', with_key: true, fsync: true }, ctx);
    await sink.open();
    await sink.write(requireMessages(await sink.prepare([record({ id: 1 }, { a: 1 })])));
    expect(await readFile(file, 'utf8')).toBe('old\n{"key":{"id":1},"value":{"a":1}}\n');
    await sink.write(requireMessages(await sink.prepare([record({ id: 2 }, null)])));
    expect(await readFile(file, 'utf8')).toBe('old\n{"key":{"id":1},"value":{"a":1}}\n{"key":{"id":2},"value":null}\n');
    await sink.close();
  });

  it('reports where it cannot write', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-sink-'));
    await writeFile(path.join(dir, 'blocker'), 'a file, not a directory');
    const sink = fileSink.create({ path: path.join(dir, 'blocker/out.jsonl') }, ctx);
    await expect(sink.open()).rejects.toThrow(/cannot open .*blocker\/out\.jsonl/);
  });
});

describe('file sink checkpoints', () => {
  const write = async (sink: ReturnType<typeof fileSink.create>, values: unknown[]) =>
    sink.write(requireMessages(await sink.prepare(values.map((v, i) => record(i, v)))));

  it('checkpoint() reports the bytes written so far, counted from an appended file\'s existing length', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-sink-'));
    const file = path.join(dir, 'out.jsonl');
    const sink = fileSink.create({ path: file }, ctx);
    await sink.open();
    expect(sink.checkpoint?.()).toEqual({ length: 0 });
    await write(sink, [{ a: 1 }, 'é']);
    expect(sink.checkpoint?.()).toEqual({ length: Buffer.byteLength(await readFile(file)) });
    expect(sink.checkpoint?.()).toEqual({ length: '{"a":1}\n"é"\n'.length + 1 }); // é is two bytes in UTF-8
    await write(sink, [2]);
    expect(sink.checkpoint?.()).toEqual({ length: (await readFile(file)).length });
    await sink.close();

    const appending = fileSink.create({ path: file, mode: 'append' }, ctx);
    await appending.open();
    expect(appending.checkpoint?.()).toEqual({ length: (await readFile(file)).length });
    await appending.close();
  });

  it('restore({length}) before open() cuts a longer file back to that length and appends after it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-sink-'));
    const file = path.join(dir, 'out.jsonl');
    // The crashed run: two lines before its last checkpoint, one after it.
    const crashed = fileSink.create({ path: file }, ctx);
    await crashed.open();
    await write(crashed, [1, 2]);
    const atCheckpoint = crashed.checkpoint?.();
    await write(crashed, ['written after the checkpoint']);
    await crashed.close();
    expect(await readFile(file, 'utf8')).toBe('1\n2\n"written after the checkpoint"\n');

    // The restarted run (mode truncate, the default, would empty the file: restore wins).
    const restarted = fileSink.create({ path: file }, ctx);
    restarted.restore?.(atCheckpoint ?? null);
    await restarted.open();
    expect(await readFile(file, 'utf8')).toBe('1\n2\n');
    expect(restarted.checkpoint?.()).toEqual(atCheckpoint);
    await write(restarted, [3]);
    expect(await readFile(file, 'utf8')).toBe('1\n2\n3\n');
    expect(restarted.checkpoint?.()).toEqual({ length: 6 });
    await restarted.close();
  });

  it('restore to exactly the current length keeps the file as it is', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-sink-'));
    const file = path.join(dir, 'out.jsonl');
    await writeFile(file, '1\n2\n');
    const sink = fileSink.create({ path: file }, ctx);
    sink.restore?.({ length: 4 });
    await sink.open();
    await write(sink, [3]);
    await sink.close();
    expect(await readFile(file, 'utf8')).toBe('1\n2\n3\n');
  });

  it('refuses a file shorter than the checkpoint: it was changed outside sluice', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-sink-'));
    const file = path.join(dir, 'out.jsonl');
    await writeFile(file, '1\n');
    const sink = fileSink.create({ path: file }, ctx);
    sink.restore?.({ length: 100 });
    const opening = sink.open();
    await expect(opening).rejects.toThrow(/cannot open .*out\.jsonl: it has 2 bytes, fewer than the 100 the last checkpoint wrote/);
    await expect(opening).rejects.toThrow('--reset-state');
    // Nothing was cut or added.
    expect(await readFile(file, 'utf8')).toBe('1\n');
  });
});
