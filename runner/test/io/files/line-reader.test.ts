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
  isBlankLine,
  lineMessages,
  readLineBatches,
  type LineBatch,
} from '../../../src/io/files/line-reader.ts';

/** A batch with its lines as text (an OverlongLine stays one), to compare with what was written. */
interface TextBatch {
  lines: (string | OverlongLine)[];
  numbers: number[];
}

function asText(batch: LineBatch): TextBatch {
  return { lines: batch.lines.map((l) => (l instanceof OverlongLine ? l : l.toString('utf8'))), numbers: batch.numbers };
}

async function read(stream: Readable, batchSize: number, options: Parameters<typeof readLineBatches>[2] = {}): Promise<TextBatch[]> {
  const out: TextBatch[] = [];
  for await (const b of readLineBatches(stream, batchSize, options)) {
    for (const line of b.lines) if (!(line instanceof OverlongLine)) expect(Buffer.isBuffer(line)).toBe(true);
    out.push(asText(b));
  }
  return out;
}

async function collect(chunks: string[], batchSize: number, flushEachChunk = false): Promise<TextBatch[]> {
  return read(Readable.from(chunks.map((c) => Buffer.from(c))), batchSize, { flushEachChunk });
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
    const out = await read(Readable.from([bytes.subarray(0, 2), bytes.subarray(2)]), 10);
    expect(out[0]?.lines).toEqual(['héllo']);
  });

  it('cuts any text, split into chunks anywhere, as String.split does', async () => {
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const pieces = ['{"a":1}', 'é€😀', '\r', ' ', '\n', '\n', 'x'.repeat(40)];
    for (let round = 0; round < 200; round++) {
      const text = Array.from({ length: random(30) }, () => pieces[random(pieces.length)]).join('');
      const bytes = Buffer.from(text);
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + random(12);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      const expected = text
        .split('\n')
        .map((line, i) => [line.replace(/\r$/, ''), i + 1] as const)
        .filter(([line]) => line.trim() !== '');
      const out = await read(Readable.from(chunks), 1 + random(5));
      expect(out.flatMap((b) => b.lines.map((line, i) => [line, b.numbers[i]]))).toEqual(expected);
    }
  });

  it('takes text chunks too, and leaves out lines of any whitespace String.trim knows, counting them', async () => {
    const out = await read(Readable.from(['a\n\t \u00a0\n\ufeff\n\u3000x\n\u00a0{"b":1}\n']), 10);
    expect(out).toEqual([{ lines: ['a', '\u3000x', '\u00a0{"b":1}'], numbers: [1, 4, 5] }]);
  });
});

describe('readLineBatches: the line length limit', () => {
  it('refuses lines longer than the limit in place, counting them, and reads on at the next line', async () => {
    const ten = '0123456789';
    const chunks = [`short\n${ten}x\n${ten}\r\n${ten}`, `\r\n${ten}${ten}`, `${ten}\nafter\n${ten}${ten}`];
    const out = await read(Readable.from(chunks), 100, { maxLineLength: 10 });
    const lines = out.flatMap((b) => b.lines);
    const over = new OverlongLine(10);
    expect(lines).toEqual(['short', over, ten, ten, over, 'after', over]);
    expect(out.flatMap((b) => b.numbers)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('counts the limit in characters, not bytes: multi-byte text up to the limit passes, one more is refused', async () => {
    // 10 characters of 3 bytes each (30 bytes); then 11; then one of 4 bytes (2 UTF-16 units, as a string counts it).
    const ten = '€'.repeat(10);
    const chunks = [`${ten}\r\n${ten}€\n`, `${'€'.repeat(9)}😀\n${'€'.repeat(8)}😀`];
    const out = await read(Readable.from(chunks.map((c) => Buffer.from(c))), 100, { maxLineLength: 10 });
    expect(out.flatMap((b) => b.lines)).toEqual([ten, new OverlongLine(10), new OverlongLine(10), `${'€'.repeat(8)}😀`]);
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
    expect(asText(first.value as LineBatch)).toEqual({ lines: ['first', new OverlongLine(100_000)], numbers: [1, 2] });
    expect(pulled).toBeLessThan(5);
    expect((await reader.next()).done).toBe(true);
    expect(pulled).toBe(200);
  });

  it('defaults to the 1 MB message limit', () => {
    expect(DEFAULT_MAX_LINE_LENGTH).toBe(1_048_576);
  });
});

describe('isBlankLine', () => {
  it('agrees with String.trim on every whitespace character, alone, repeated and before text', () => {
    const spaces = [' ', '\t', '\n', '\v', '\f', '\r', '\u00a0', '\u1680', '\u2000', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff'];
    const others = ['', 'x', '{', '\u200b', '\u0085', 'é', '😀'];
    for (const text of [...spaces, ...others, ...spaces.map((c) => c.repeat(3)), ...spaces.map((c) => `${c}x`), ...others.map((c) => ` ${c} `)]) {
      expect(isBlankLine(Buffer.from(text)), JSON.stringify(text)).toBe(text.trim() === '');
    }
  });
});

describe('lineMessages', () => {
  it('makes an over-long line a refused value naming the input and the line number, for the errors port', () => {
    const messages = lineMessages({ lines: [Buffer.from('{"a":1}'), new OverlongLine(10)], numbers: [1, 2] }, 'in', 'in/data.jsonl', 5, 'data.jsonl');
    expect(messages[0]).toEqual({ key: null, value: Buffer.from('{"a":1}'), headers: {}, timestamp: 5, position: { source: 'in', partition: 'in/data.jsonl', offset: '1' } });
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
