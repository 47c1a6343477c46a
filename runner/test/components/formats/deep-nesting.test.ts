/**
 * A record nested far deeper than anything real (the 400 KB, 200,000 levels) is one poison
 * record: through a real pipeline (file source, format, file sinks) it goes to `<source>.errors`
 * and the good records of its batch are written. Before, it parsed and then overflowed the stack in
 * the sink's write, which failed the run and lost the whole batch.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { debeziumFormat } from '../../../src/components/formats/debezium.ts';
import { jsonFormat } from '../../../src/components/formats/json.ts';
import { fileSink } from '../../../src/components/sinks/file.ts';
import { fileSource } from '../../../src/components/sources/file.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { ComponentContext, Format } from '../../../src/engine/component.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { Runtime, type RunOutcome } from '../../../src/engine/runtime.ts';
import { graphOf } from '../../engine/fake-components.ts';

const ctx = (name: string): ComponentContext => ({ name, logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'run' });

const DEPTH = 200_000;
/** 400 KB of `[`...`]`: under the formats' 1 MB limit. */
const deepArray = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`;

interface PipelineResult {
  outcome: RunOutcome;
  written: string[];
  errors: string[];
}

/** file source -> format -> file sink, and `in.errors` -> a second file sink, all real components. */
async function runFilePipeline(lines: string[], format: Format): Promise<PipelineResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-deep-'));
  const input = path.join(dir, 'in.jsonl');
  await writeFile(input, `${lines.join('\n')}\n`);
  const outPath = path.join(dir, 'out.jsonl');
  const errorsPath = path.join(dir, 'errors.jsonl');
  const graph = graphOf([
    { source: 'in', impl: fileSource.create({ path: input }, ctx('in')), format },
    { sink: 'out', impl: fileSink.create({ path: outPath }, ctx('out')), from: ['in'] },
    { sink: 'dead', impl: fileSink.create({ path: errorsPath }, ctx('dead')), from: ['in.errors'] },
  ]);
  const outcome = await new Runtime(graph, { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0 }).run();
  const linesOf = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  return { outcome, written: await linesOf(outPath), errors: await linesOf(errorsPath) };
}

describe('a record nested 200,000 levels deep', () => {
  it('json: goes to the errors port with the reason, and the good records of its batch are written', async () => {
    const { outcome, written, errors } = await runFilePipeline(['{"n":1}', `{"deep":${deepArray}}`, '{"n":2}'], jsonFormat.create({}, ctx('in')));
    expect(outcome).toMatchObject({ ended: 'end-of-input', recordsIn: 3, failed: 1, dropped: 0, recordsOut: { out: 2, dead: 1 } });
    expect(written).toEqual(['{"n":1}', '{"n":2}']);
    expect(errors).toHaveLength(1);
    // The dead letter keeps the original text, as Kafka Connect's does.
    expect(JSON.parse(errors[0]!)).toBe(`{"deep":${deepArray}}`);
  });

  it('debezium: a deep column value goes to the errors port, and the good changes of its batch are written', async () => {
    const change = (after: string) => `{"op":"c","before":null,"after":${after},"source":{"ts_ms":5},"ts_ms":6}`;
    const { outcome, written, errors } = await runFilePipeline(
      [change('{"id":1}'), change(`{"id":2,"tags":${deepArray}}`), change('{"id":3}')],
      debeziumFormat.create({}, ctx('in')),
    );
    expect(outcome).toMatchObject({ ended: 'end-of-input', recordsIn: 3, failed: 1, dropped: 0, recordsOut: { out: 2, dead: 1 } });
    expect(written).toEqual(['{"id":1}', '{"id":3}']);
    expect(errors).toHaveLength(1);
  });

  it('the format says why: nesting deeper than 512 levels, with where', () => {
    const message = { key: null, value: deepArray, headers: {}, timestamp: 0, position: { source: 'in', partition: 'in/0', offset: '2' } };
    expect(() => jsonFormat.create({}, ctx('in')).decode(message)).toThrow('value is not JSON: nesting deeper than 512 levels at line 1 column 513');
    expect(() => debeziumFormat.create({}, ctx('in')).decode(message)).toThrow('nesting deeper than 512 levels at line 1 column 513');
  });
});
