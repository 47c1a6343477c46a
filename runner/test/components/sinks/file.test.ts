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
  it('prepares {key, value, headers?} messages without I/O', async () => {
    const sink = fileSink.create({ path: '/nonexistent/never-written.jsonl' }, ctx);
    expect(await sink.prepare([record({ id: 1 }, { a: 1 }), record(null, 'x', { h: 'v' })])).toEqual([
      { key: { id: 1 }, value: { a: 1 } },
      { key: null, value: 'x', headers: { h: 'v' } },
    ]);
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
