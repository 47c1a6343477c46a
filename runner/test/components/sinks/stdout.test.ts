import { afterEach, describe, expect, it, vi } from 'vitest';
import { stdoutSink } from '../../../src/components/sinks/stdout.ts';
import { jsonLines } from '../../../src/io/files/json-lines.ts';
import { requireMessages } from '../../../src/engine/component.ts';
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';

const ctx = { name: 'console', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'run' as const };

function record(key: unknown, value: unknown): StreamRecord {
  return { key, value, time: 0, headers: {}, meta: {}, position: { source: 's', partition: 's/p', offset: '1' }, ack: Ack.none() };
}

afterEach(() => vi.restoreAllMocks());

describe('stdout sink', () => {
  it('writes one JSON line per value, and resolves once stdout took it', async () => {
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string, cb?: (err?: Error | null) => void) => {
      written.push(chunk);
      cb?.(null);
      return true;
    }) as typeof process.stdout.write);
    const sink = stdoutSink.create({}, ctx);
    await sink.write(requireMessages(await sink.prepare([record('k', { big: 12345678901234567890n }), record(null, [1, 'a'])])));
    expect(written).toEqual(['{"big":12345678901234567890}\n[1,"a"]\n']);
  });

  it('writes {key, value} lines with with_key', () => {
    expect(jsonLines([{ key: { id: 1 }, value: 'v' }], { withKey: true, withHeaders: false })).toBe('{"key":{"id":1},"value":"v"}\n');
  });

  it('fails the write when stdout reports an error', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(((_chunk: string, cb?: (err?: Error | null) => void) => {
      cb?.(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }));
      return false;
    }) as typeof process.stdout.write);
    const sink = stdoutSink.create({}, ctx);
    await expect(sink.write([{ key: null, value: 1 }])).rejects.toThrow('cannot write to stdout: EPIPE');
  });
});
