/**
 * Property: whatever arrives, the runner does not crash and loses nothing. 10,000 seeded random and
 * mutated messages per format run through an in-process pipeline (format, a JSONata step, sinks
 * that serialise as the file sink does); every message ends up written or on an errors port with a
 * reason, exactly once, and the counts add up. A failure names its seed: replay it with
 * `SLUICE_FUZZ_SEED=<seed> npx vitest run runner/test/components/formats/fuzz.test.ts`.
 */
import { describe, expect, it } from 'vitest';
import { debeziumFormat } from '../../../src/components/formats/debezium.ts';
import { jsonFormat } from '../../../src/components/formats/json.ts';
import { textFormat } from '../../../src/components/formats/text.ts';
import { setStep } from '../../../src/components/steps/set.ts';
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { ComponentContext, Format, OutboundMessage, Sink, Source, SourceOutput } from '../../../src/engine/component.ts';
import { MAX_ERROR_MESSAGE_LENGTH } from '../../../src/engine/errors.ts';
import { ERROR_MESSAGE_HEADER, ERROR_NODE_HEADER } from '../../../src/engine/failed-record.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { RawMessage, StreamRecord } from '../../../src/engine/record.ts';
import { Runtime, type RunOutcome } from '../../../src/engine/runtime.ts';
import { jsonLines } from '../../../src/io/files/json-lines.ts';
import { graphOf } from '../../engine/fake-components.ts';
import { MAX_BYTES, fuzzMessages, type FuzzFormat, type FuzzMessage } from './fuzz-messages.ts';

const MESSAGES_PER_FORMAT = 10_000;
const BATCH = 500;
const OFFSET_HEADER = 'fuzz-offset';

const ctx = (name: string): ComponentContext => ({ name, logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'run' });

/** Hands the messages over in batches, as a wire source does; counts the batches acknowledged. */
class FuzzSource implements Source {
  readonly bounded = true;
  completed = 0;
  batches = 0;
  constructor(private readonly messages: FuzzMessage[]) {}

  async run(out: SourceOutput): Promise<void> {
    out.assign(['in/0']);
    for (let start = 0; start < this.messages.length; start += BATCH) {
      const messages: RawMessage[] = this.messages.slice(start, start + BATCH).map((m, i) => ({
        key: m.key,
        value: m.value,
        headers: {},
        timestamp: 1_000,
        position: { source: 'in', partition: 'in/0', offset: String(start + i) },
      }));
      this.batches++;
      await out.emit({ partition: 'in/0', messages, ack: new Ack(() => this.completed++) });
    }
  }
  async stop(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Writes as the file sink does (JSON lines, bigints exact) and keeps which offsets it wrote, with their headers. */
class SerialisingSink implements Sink {
  readonly written = new Map<string, Record<string, string>>();
  bytes = 0;

  prepare(records: readonly StreamRecord[]): OutboundMessage[] {
    return records.map((r) => ({ key: r.key ?? null, value: r.value, headers: { ...r.headers, [OFFSET_HEADER]: r.position.offset } }));
  }

  async write(messages: OutboundMessage[]): Promise<void> {
    this.bytes += jsonLines(messages, { withKey: true, withHeaders: false }).length;
    for (const m of messages) {
      const offset = m.headers![OFFSET_HEADER]!;
      if (this.written.has(offset)) throw new Error(`offset ${offset} written twice`);
      this.written.set(offset, m.headers!);
    }
  }
  async open(): Promise<void> {}
  async close(): Promise<void> {}
}

function formatOf(format: FuzzFormat): Format {
  if (format === 'json') return jsonFormat.create({ max_bytes: MAX_BYTES }, ctx('in'));
  if (format === 'text') return textFormat.create({}, ctx('in'));
  return debeziumFormat.create({ max_bytes: MAX_BYTES }, ctx('in'));
}

interface FuzzRun {
  outcome: RunOutcome;
  source: FuzzSource;
  out: SerialisingSink;
  dead: SerialisingSink;
}

/** in -> (a set step for structured formats) -> out; every errors port -> dead. */
async function runFuzz(format: FuzzFormat, messages: FuzzMessage[]): Promise<FuzzRun> {
  const source = new FuzzSource(messages);
  const out = new SerialisingSink();
  const dead = new SerialisingSink();
  const structured = format !== 'text';
  const step = setStep.create({ set: { size: '$count($keys($))', id_type: '$type(id)', label: '$string(id) & "-" & $string(op)' } }, ctx('shape'));
  const graph = graphOf([
    { source: 'in', impl: source, format: formatOf(format) },
    ...(structured ? [{ step: 'shape', impl: step, from: ['in'] }] : []),
    { sink: 'out', impl: out, from: [structured ? 'shape' : 'in'] },
    { sink: 'dead', impl: dead, from: structured ? ['in.errors', 'shape.errors'] : ['in.errors'] },
  ]);
  const outcome = await new Runtime(graph, { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0 }).run();
  return { outcome, source, out, dead };
}

/** A seed from the environment replays a failure; unset or empty, each format has its fixed seed. */
function seedFromEnvironment(): number | undefined {
  const text = process.env.SLUICE_FUZZ_SEED?.trim();
  if (!text) return undefined;
  if (!/^\d+$/.test(text)) throw new Error(`SLUICE_FUZZ_SEED must be a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}
const envSeed = seedFromEnvironment();
const SEEDS: Record<FuzzFormat, number> = { json: envSeed ?? 1101, text: envSeed ?? 2202, debezium: envSeed ?? 3303 };

describe.each(['json', 'text', 'debezium'] as const)('fuzzing the %s format through a pipeline', (format) => {
  it(`never crashes, and writes or dead-letters each of ${MESSAGES_PER_FORMAT} messages exactly once, with a reason`, async () => {
    const seed = SEEDS[format];
    const replay = `(${format}, seed ${seed}: replay with SLUICE_FUZZ_SEED=${seed})`;
    const messages = fuzzMessages(format, seed, MESSAGES_PER_FORMAT);
    let run: FuzzRun;
    try {
      run = await runFuzz(format, messages);
    } catch (err) {
      throw new Error(`the run crashed ${replay}: ${(err as Error).stack}`, { cause: err });
    }
    const { outcome, source, out, dead } = run;
    expect(outcome.ended, replay).toBe('end-of-input');
    expect(outcome.recordsIn, replay).toBe(MESSAGES_PER_FORMAT);
    expect(outcome.dropped, replay).toBe(0);
    // The counts add up: in = out + errors, and no message is in both or in neither.
    expect(out.written.size + dead.written.size, replay).toBe(MESSAGES_PER_FORMAT);
    expect(outcome.failed, replay).toBe(dead.written.size);
    for (let i = 0; i < MESSAGES_PER_FORMAT; i++) {
      const offset = String(i);
      if (out.written.has(offset) === dead.written.has(offset)) {
        expect.fail(`message ${offset} ${out.written.has(offset) ? 'both written and dead-lettered' : 'lost'} ${replay}`);
      }
    }
    for (const [offset, headers] of dead.written) {
      const reason = headers[ERROR_MESSAGE_HEADER];
      if (!reason || reason.length > MAX_ERROR_MESSAGE_LENGTH + 40 || !['in', 'shape'].includes(headers[ERROR_NODE_HEADER]!)) {
        expect.fail(`message ${offset} reached the errors port without a bounded reason (${JSON.stringify(headers).slice(0, 300)}) ${replay}`);
      }
    }
    // Every batch was acknowledged: nothing is held back from the commit.
    expect(source.completed, replay).toBe(source.batches);
    // Not a degenerate corpus: structured formats see both good and poison messages.
    if (format !== 'text') {
      expect(out.written.size, replay).toBeGreaterThan(MESSAGES_PER_FORMAT / 10);
      expect(dead.written.size, replay).toBeGreaterThan(MESSAGES_PER_FORMAT / 10);
    }
  }, 30_000); // 10,000 messages through a whole runtime: seconds on a loaded machine
});

describe('fuzzMessages', () => {
  it('gives the same messages for the same seed, and different ones for another', () => {
    const a = fuzzMessages('debezium', 7, 50);
    expect(fuzzMessages('debezium', 7, 50)).toEqual(a);
    expect(fuzzMessages('debezium', 8, 50)).not.toEqual(a);
  });

  it('covers the poison the issue lists: truncated envelopes, huge numbers, invalid UTF-8, deep nesting, wrong schema types', () => {
    const json = fuzzMessages('json', SEEDS.json, MESSAGES_PER_FORMAT);
    const debezium = fuzzMessages('debezium', SEEDS.debezium, MESSAGES_PER_FORMAT);
    const texts = (ms: FuzzMessage[]) => ms.map((m) => (Buffer.isBuffer(m.value) ? m.value.toString('latin1') : (m.value ?? '')));
    const invalidUtf8 = (m: FuzzMessage) => Buffer.isBuffer(m.value) && m.value.toString('utf8').includes('\ufffd');
    expect(json.filter(invalidUtf8).length).toBeGreaterThan(100);
    expect(texts(json).filter((t) => t.includes('[['.repeat(300)) || t.includes('{"k":'.repeat(513))).length).toBeGreaterThan(50);
    expect(texts(json).filter((t) => /\d{30}|1e400/.test(t)).length).toBeGreaterThan(100);
    expect(texts(json).filter((t) => t.length > MAX_BYTES).length).toBeGreaterThan(5);
    expect(texts(json).filter((t) => t.startsWith('['.repeat(100_000)) || t.startsWith('{"k":'.repeat(100_000))).length).toBeGreaterThan(5);
    expect(texts(debezium).filter((t) => t.startsWith('{"schema":') && !t.trimEnd().endsWith('}')).length).toBeGreaterThan(100);
    expect(texts(debezium).filter((t) => /"(nonsense|map|float)"/.test(t)).length).toBeGreaterThan(20);
  });
});
