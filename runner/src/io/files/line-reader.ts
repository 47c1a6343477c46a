/**
 * Line-oriented input for the file and stdin sources: a stream read in bounded chunks and cut into
 * batches of lines with their 1-based line numbers, and glob expansion for file paths.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { RawMessage } from '../../engine/record.ts';

export interface LineBatch {
  /** Line texts without their line ending. Empty lines are left out. */
  lines: string[];
  /** The 1-based line number of each line in `lines`. */
  numbers: number[];
}

/** The raw messages of a batch of lines: the line text is the value, its line number the offset. */
export function lineMessages(batch: LineBatch, source: string, partition: string, timestamp: number): RawMessage[] {
  const messages: RawMessage[] = new Array(batch.lines.length);
  for (let i = 0; i < batch.lines.length; i++) {
    messages[i] = {
      key: null,
      value: batch.lines[i],
      headers: {},
      timestamp,
      position: { source, partition, offset: String(batch.numbers[i]) },
    };
  }
  return messages;
}

/**
 * Yields batches of at most `batchSize` non-empty lines. The stream is pulled, not pushed: while the
 * consumer awaits (backpressure), nothing more is read, so memory stays at about one chunk plus
 * one batch. A last line without a newline is still a line. With `flushEachChunk` (stdin), the
 * lines of each chunk are handed over as they arrive.
 */
export async function* readLineBatches(stream: Readable, batchSize: number, options: { flushEachChunk?: boolean } = {}): AsyncGenerator<LineBatch> {
  stream.setEncoding('utf8');
  let carry = '';
  let lineNumber = 0;
  let batch: LineBatch = { lines: [], numbers: [] };
  const push = (text: string): void => {
    lineNumber++;
    const line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (line.trim() === '') return;
    batch.lines.push(line);
    batch.numbers.push(lineNumber);
  };
  for await (const chunk of stream as AsyncIterable<string>) {
    let text = carry + chunk;
    let from = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
      push(text.slice(from, nl));
      from = nl + 1;
      if (batch.lines.length >= batchSize) {
        yield batch;
        batch = { lines: [], numbers: [] };
      }
    }
    carry = text.slice(from);
    text = '';
    // Interactive input: hand over what arrived instead of waiting for a full batch.
    if (options.flushEachChunk && batch.lines.length > 0) {
      yield batch;
      batch = { lines: [], numbers: [] };
    }
  }
  if (carry !== '') push(carry);
  if (batch.lines.length > 0) yield batch;
}

const GLOB_CHARS = /[*?[]/;

/** Whether a path has glob characters (`*`, `?`, `[`). */
export function isGlob(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

/** A glob as a regular expression over `/`-separated paths: `*` and `?` stay within a segment, `**` crosses them. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        const slash = pattern[i + 2] === '/';
        re += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += /[.+^${}()|\\]/.test(c) ? `\\${c}` : c;
  }
  return new RegExp(`^${re}$`);
}

/** Files matching a path or glob, sorted; a plain path is returned as is when it is a file. */
export async function expandGlob(pattern: string): Promise<string[]> {
  let normalized = pattern.split(path.sep).join('/');
  while (normalized.startsWith('./')) normalized = normalized.slice(2);
  if (!isGlob(normalized)) {
    const s = await stat(normalized).catch(() => undefined);
    return s?.isFile() ? [pattern] : [];
  }
  // Walk from the longest directory prefix without glob characters, no deeper than the pattern reaches.
  const segments = normalized.split('/');
  const firstGlob = segments.findIndex((s) => isGlob(s));
  const base = segments.slice(0, firstGlob).join('/') || (normalized.startsWith('/') ? '/' : '.');
  const maxDepth = normalized.includes('**') ? Infinity : segments.length - firstGlob - 1;
  const matcher = globToRegExp(normalized);
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = dir === '.' ? entry.name : `${dir === '/' ? '' : dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (depth < maxDepth) await walk(full, depth + 1);
      } else if (entry.isFile() && matcher.test(full)) found.push(full);
    }
  };
  await walk(base, 0);
  return found.sort();
}
