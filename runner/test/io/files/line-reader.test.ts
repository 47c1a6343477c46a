import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RecordError } from '../../../src/engine/errors.ts';
import { RefusedValue } from '../../../src/engine/record.ts';
import {
  DEFAULT_MAX_LINE_LENGTH,
  OverlongLine,
  expandGlob,
  globToRegExp,
  lineMessages,
  readLineBatches,
  type LineBatch,
} from '../../../src/io/files/line-reader.ts';

async function collect(chunks: string[], batchSize: number, flushEachChunk = false): Promise<LineBatch[]> {
  const out: LineBatch[] = [];
  for await (const b of readLineBatches(Readable.from(chunks.map((c) => Buffer.from(c))), batchSize, { flushEachChunk })) out.push(b);
  return out;
}

describe('readLineBatches', () => {
  it('cuts lines across chunk boundaries, strips CR, skips blank lines but counts them, keeps a last line without newline', async () => {
    const batches = await collect(['{"a":1}\r\n{"b', '":2}\n\n  \n{"c":3}'], 10);
    expect(batches).toEqual([{ lines: ['{"a":1}', '{"b":2}', '{"c":3}'], numbers: [1, 2, 5] }]);
  });

  it('never yields more than batchSize lines', async () => {
    const text = Array.from({ length: 7 }, (_, i) => `${i}`).join('\n');
    const batches = await collect([text], 3);
    expect(batches.map((b) => b.lines.length)).toEqual([3, 3, 1]);
    expect(batches[2]?.numbers).toEqual([7]);
  });

  it('hands over each chunk’s lines at once for interactive input', async () => {
    const batches = await collect(['a\nb\n', 'c\n'], 100, true);
    expect(batches.map((b) => b.lines)).toEqual([['a', 'b'], ['c']]);
  });

  it('keeps multi-byte characters split across chunks intact', async () => {
    const bytes = Buffer.from('héllo\n');
    const out: LineBatch[] = [];
    for await (const b of readLineBatches(Readable.from([bytes.subarray(0, 2), bytes.subarray(2)]), 10)) out.push(b);
    expect(out[0]?.lines).toEqual(['héllo']);
  });
});

describe('readLineBatches: the line length limit', () => {
  it('refuses lines longer than the limit in place, counting them, and reads on at the next line', async () => {
    const ten = '0123456789';
    const out: LineBatch[] = [];
    const chunks = [`short\n${ten}x\n${ten}\r\n${ten}`, `\r\n${ten}${ten}`, `${ten}\nafter\n${ten}${ten}`];
    for await (const b of readLineBatches(Readable.from(chunks), 100, { maxLineLength: 10 })) out.push(b);
    const lines = out.flatMap((b) => b.lines);
    const over = new OverlongLine(10);
    expect(lines).toEqual(['short', over, ten, ten, over, 'after', over]);
    expect(out.flatMap((b) => b.numbers)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('hands over the refusal as soon as a line crosses the limit, and never holds the rest of it', async () => {
    const chunk = 'x'.repeat(65_536);
    let pulled = 0;
    // 200 chunks (13 MB) of one line that never ends: nothing but a cap stops it from being held whole.
    async function* endless(): AsyncGenerator<string> {
      yield 'first\n';
      for (; pulled < 200; pulled++) yield chunk;
    }
    const reader = readLineBatches(Readable.from(endless()), 100, { maxLineLength: 100_000 });
    const first = await reader.next();
    expect(first.value).toEqual({ lines: ['first', new OverlongLine(100_000)], numbers: [1, 2] });
    expect(pulled).toBeLessThan(5);
    expect((await reader.next()).done).toBe(true);
    expect(pulled).toBe(200);
  });

  it('defaults to the 1 MB message limit', () => {
    expect(DEFAULT_MAX_LINE_LENGTH).toBe(1_048_576);
  });
});

describe('lineMessages', () => {
  it('makes an over-long line a refused value naming the input and the line number, for the errors port', () => {
    const messages = lineMessages({ lines: ['{"a":1}', new OverlongLine(10)], numbers: [1, 2] }, 'in', 'in/data.jsonl', 5, 'data.jsonl');
    expect(messages[0]).toEqual({ key: null, value: '{"a":1}', headers: {}, timestamp: 5, position: { source: 'in', partition: 'in/data.jsonl', offset: '1' } });
    const refused = messages[1]!.value;
    expect(refused).toBeInstanceOf(RefusedValue);
    const error = (refused as RefusedValue).error;
    expect(error).toBeInstanceOf(RecordError);
    expect(error).toMatchObject({
      code: 'E_LINE_TOO_LONG',
      where: 'sources.in',
      message: 'line 2 of data.jsonl is longer than 10 characters (max_line_length): skipped to its end',
    });
    expect(messages[1]!.position.offset).toBe('2');
  });
});

describe('globs', () => {
  it('translates * ? [] and **', () => {
    expect(globToRegExp('data/*.jsonl').test('data/a.jsonl')).toBe(true);
    expect(globToRegExp('data/*.jsonl').test('data/x/a.jsonl')).toBe(false);
    expect(globToRegExp('data/**/*.jsonl').test('data/x/y/a.jsonl')).toBe(true);
    expect(globToRegExp('data/**/*.jsonl').test('data/a.jsonl')).toBe(true);
    expect(globToRegExp('log-?.[ab]').test('log-1.a')).toBe(true);
    expect(globToRegExp('log-?.[!ab]').test('log-1.a')).toBe(false);
  });

  it('expands to sorted existing files, and a plain path to itself', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-glob-'));
    await mkdir(path.join(dir, 'sub'));
    for (const f of ['b.jsonl', 'a.jsonl', 'c.txt', 'sub/d.jsonl']) await writeFile(path.join(dir, f), '1\n');
    expect(await expandGlob(`${dir}/*.jsonl`)).toEqual([`${dir}/a.jsonl`, `${dir}/b.jsonl`]);
    expect(await expandGlob(`${dir}/**/*.jsonl`)).toEqual([`${dir}/a.jsonl`, `${dir}/b.jsonl`, `${dir}/sub/d.jsonl`]);
    expect(await expandGlob(`${dir}/c.txt`)).toEqual([`${dir}/c.txt`]);
    expect(await expandGlob(`${dir}/missing.txt`)).toEqual([]);
  });
});
