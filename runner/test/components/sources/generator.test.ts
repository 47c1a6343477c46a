import { describe, expect, it } from 'vitest';
import { chunkSize, generatorSource, TEST_START_TIME } from '../../../src/components/sources/generator.ts';
import { stringifyJson } from '../../../src/engine/json.ts';
import { DebeziumDecoder } from '../../../src/io/debezium/index.ts';
import { RecordingOutput, sourceContext } from './source-harness.ts';

async function generate(config: Parameters<typeof generatorSource.create>[0], mode: 'run' | 'test' = 'test') {
  const out = new RecordingOutput();
  const source = generatorSource.create(config, sourceContext('activities', mode));
  await source.run(out);
  return { out, source };
}

describe('generator source, employee-activity', () => {
  it('is bounded by count and deterministic for a seed', async () => {
    const a = await generate({ scenario: 'employee-activity', seed: 7, count: 300 });
    const b = await generate({ scenario: 'employee-activity', seed: 7, count: 300 });
    const c = await generate({ scenario: 'employee-activity', seed: 8, count: 300 });
    expect(a.source.bounded).toBe(true);
    expect(a.out.messages).toHaveLength(300);
    expect(stringifyJson(a.out.messages.map((m) => m.value))).toBe(stringifyJson(b.out.messages.map((m) => m.value)));
    expect(stringifyJson(a.out.messages.map((m) => m.value))).not.toBe(stringifyJson(c.out.messages.map((m) => m.value)));
  });

  it('is unbounded without count', () => {
    expect(generatorSource.create({ scenario: 'employee-activity' }, sourceContext('a')).bounded).toBe(false);
  });

  it('starts its simulated clock at the test start time in test mode, at start_time when given', async () => {
    const decoder = new DebeziumDecoder();
    const first = (await generate({ scenario: 'employee-activity', count: 1 })).out.messages[0]!;
    const at = (decoder.decodeValue(first.value)?.after as Record<string, string>).activity_timestamp!;
    expect(Date.parse(at) - Date.parse(TEST_START_TIME)).toBeGreaterThanOrEqual(0);
    expect(Date.parse(at) - Date.parse(TEST_START_TIME)).toBeLessThan(2 * 3_600_000 + 1000);
    const later = (await generate({ scenario: 'employee-activity', count: 1, start_time: '2030-03-04T09:00:00Z' })).out.messages[0]!;
    expect((decoder.decodeValue(later.value)?.after as Record<string, string>).activity_timestamp).toMatch(/^2030-03-04T(09|10|11):/);
  });

  it('simulates sessions: login first, realistic types, URLs, IPs; mostly inserts, some updates, deletes and tombstones', async () => {
    const { out } = await generate({ scenario: 'employee-activity', seed: 1, count: 20000 });
    const decoder = new DebeziumDecoder();
    const ops: Record<string, number> = {};
    const firstTypeByEmployee = new Map<number, string>();
    const types = new Set<string>();
    for (const m of out.messages) {
      const change = decoder.decodeValue(m.value);
      const op = change?.payload.op ?? 'tombstone';
      ops[op] = (ops[op] ?? 0) + 1;
      if (op !== 'c') continue;
      const row = change!.after as Record<string, unknown>;
      types.add(row.activity_type as string);
      if (!firstTypeByEmployee.has(row.employee_id as number)) firstTypeByEmployee.set(row.employee_id as number, row.activity_type as string);
      expect(row.ip_address).toMatch(/^(10\.20|172\.16)\.\d+\.\d+$/);
      expect(row.page_url).toMatch(/^\//);
      expect(row.activity_timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    }
    expect([...types].sort()).toEqual(['click', 'download', 'login', 'logout', 'page_view']);
    expect(new Set(firstTypeByEmployee.values())).toEqual(new Set(['login']));
    expect(ops.c! / out.messages.length).toBeGreaterThan(0.95);
    expect(ops.u).toBeGreaterThan(0);
    expect(ops.d).toBeGreaterThan(0);
    expect(ops.tombstone).toBe(ops.d);
  });

  it('emits updates with before null and deletes with a key-only before, as under REPLICA IDENTITY DEFAULT', async () => {
    const { out } = await generate({ scenario: 'employee-activity', seed: 1, count: 20000 });
    const decoder = new DebeziumDecoder();
    const update = out.messages.map((m) => decoder.decodeValue(m.value)).find((c) => c?.payload.op === 'u');
    expect(update?.before).toBeNull();
    const deleteAt = out.messages.findIndex((m) => decoder.decodeValue(m.value)?.payload.op === 'd');
    const del = decoder.decodeValue(out.messages[deleteAt]!.value)!;
    expect(del.before).toMatchObject({ activity_type: '', employee_id: null, activity_timestamp: '1970-01-01T00:00:00.000000Z' });
    const tombstone = out.messages[deleteAt + 1]!;
    expect(tombstone.value).toBeNull();
    expect(decoder.decodeKey(tombstone.key)).toEqual({ id: (del.before as Record<string, unknown>).id });
  });

  it('spreads events over partitions by row id, assigned before the first emit, offsets counting per partition', async () => {
    const { out } = await generate({ scenario: 'employee-activity', count: 30, partitions: 3, batch_size: 10 });
    const topic = 'employee-server.public.employee_activities';
    expect(out.events[0]).toBe(`assign activities/${topic}/0,activities/${topic}/1,activities/${topic}/2`);
    for (const b of out.batches) {
      for (const m of b.messages) expect(m.position.partition).toBe(b.partition);
    }
    const p0 = out.messages.filter((m) => m.position.partition.endsWith('/0')).map((m) => m.position.offset);
    expect(p0).toEqual(p0.map((_, i) => String(i)));
  });

  it('paces at the configured rate in run mode and stops promptly', async () => {
    const source = generatorSource.create({ scenario: 'employee-activity', rate: 20 }, sourceContext('a', 'run', Date.now()));
    const out = new RecordingOutput();
    const running = source.run(out);
    await new Promise((r) => setTimeout(r, 300));
    await source.stop();
    await running;
    const n = out.messages.length;
    expect(n).toBeGreaterThanOrEqual(4);
    expect(n).toBeLessThanOrEqual(10);
  });

  it('sizes chunks to the rate', () => {
    expect(chunkSize(0, 500)).toBe(500);
    expect(chunkSize(50, 500)).toBe(5);
    expect(chunkSize(1, 500)).toBe(1);
    expect(chunkSize(1e6, 500)).toBe(500);
  });
});
