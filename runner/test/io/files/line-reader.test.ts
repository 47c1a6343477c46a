import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { expandGlob, globToRegExp, readLineBatches, type LineBatch } from '../../../src/io/files/line-reader.ts';

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
