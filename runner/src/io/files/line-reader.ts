/**
 * Line-oriented input for the file and stdin sources: a stream read in bounded chunks and cut into
 * batches of lines with their 1-based line numbers, and glob expansion for file paths.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { RecordError } from '../../engine/errors.ts';
import { RefusedValue, type RawMessage } from '../../engine/record.ts';

/**
 * The longest line read, in characters: the formats' default `max_bytes` and the Kafka source's
 * `max_message_bytes`, so a line is refused where a message of the same size would be.
 */
export const DEFAULT_MAX_LINE_LENGTH = 1_048_576;

/** A line longer than the limit: refused where it crossed the limit, and the rest of it skipped unread. */
export class OverlongLine {
  constructor(readonly limit: number) {}
}

export interface LineBatch {
  /**
   * Line bytes (UTF-8) without their line ending, or OverlongLine for a line that was too long.
   * Empty and blank lines are left out. A line is a view of the chunk it was read in, not a copy:
   * a format decodes only what it reads of it (the debezium format skips a schema it has seen).
   */
  lines: (Buffer | OverlongLine)[];
  /** The 1-based line number of each line in `lines`. */
  numbers: number[];
}

/**
 * The raw messages of a batch of lines: the line's bytes are the value, its line number the offset.
 * An over-long line becomes a RefusedValue naming `input` (a path, `standard input`) and the line
 * number, so the formats send it to `<source>.errors`: one poison line does not stop the run.
 */
export function lineMessages(batch: LineBatch, source: string, partition: string, timestamp: number, input: string): RawMessage[] {
  const messages: RawMessage[] = new Array(batch.lines.length);
  for (let i = 0; i < batch.lines.length; i++) {
    const line = batch.lines[i]!;
    const number = batch.numbers[i]!;
    messages[i] = {
      key: null,
      value: line instanceof OverlongLine ? refusedLine(line, number, source, input) : line,
      headers: {},
      timestamp,
      position: { source, partition, offset: String(number) },
    };
  }
  return messages;
}

function refusedLine(line: OverlongLine, number: number, source: string, input: string): RefusedValue {
  const message = `line ${number} of ${input} is longer than ${line.limit} characters (max_line_length): skipped to its end`;
  return new RefusedValue(new RecordError('E_LINE_TOO_LONG', message, `sources.${source}`));
}

export interface LineReaderOptions {
  /** Hand over the lines of each chunk as they arrive (stdin). */
  flushEachChunk?: boolean;
  /** Lines longer than this (characters, without the line ending) are refused; default DEFAULT_MAX_LINE_LENGTH. */
  maxLineLength?: number;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Whether a line holds only whitespace, as String.prototype.trim sees it. Bytes are checked while
 * they are ASCII (a JSON line fails at its first byte); a line with other bytes before anything
 * but ASCII whitespace (a no-break space, a byte order mark) is decoded and trimmed.
 */
export function isBlankLine(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const b = line[i]!;
    if (b === 0x20 || (b >= 0x09 && b <= 0x0d)) continue;
    return b >= 0x80 && line.toString('utf8').trim() === '';
  }
  return true;
}

/**
 * Whether `bytes` of UTF-8 make more than `max` characters (UTF-16 code units, as a string's
 * `length` counts them, which is what the limit has always meant). No more bytes than characters
 * ever: only lines with more bytes than the limit are decoded to count.
 */
function longerThan(bytes: Buffer, max: number): boolean {
  return bytes.length > max && bytes.toString('utf8').length > max;
}

/**
 * Yields batches of at most `batchSize` non-empty lines. The stream is pulled, not pushed: while the
 * consumer awaits (backpressure), nothing more is read, so memory stays at about one chunk plus
 * one batch. Lines are cut at the byte level (a newline byte never occurs inside a multi-byte UTF-8
 * character), so nothing is decoded here. A last line without a newline is still a line. With
 * `flushEachChunk` (stdin), the lines of each chunk are handed over as they arrive. A line longer
 * than `maxLineLength` is yielded as an OverlongLine as soon as it crosses the limit, and the rest
 * of it is read and dropped up to its newline: an endless line never fills memory.
 */
export async function* readLineBatches(stream: Readable, batchSize: number, options: LineReaderOptions = {}): AsyncGenerator<LineBatch> {
  const max = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  let carry: Buffer | undefined;
  let skipping = false;
  let lineNumber = 0;
  let batch: LineBatch = { lines: [], numbers: [] };
  const refuse = (): void => {
    lineNumber++;
    batch.lines.push(new OverlongLine(max));
    batch.numbers.push(lineNumber);
  };
  const push = (bytes: Buffer): void => {
    const line = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.subarray(0, -1) : bytes;
    if (longerThan(line, max)) return refuse();
    lineNumber++;
    if (isBlankLine(line)) return;
    batch.lines.push(line);
    batch.numbers.push(lineNumber);
  };
  for await (const read of stream as AsyncIterable<Buffer | string>) {
    const chunk = typeof read === 'string' ? Buffer.from(read, 'utf8') : read;
    let from = 0;
    let nl = chunk.indexOf(LF);
    if (skipping) {
      // The rest of a refused line: drop it up to its newline.
      if (nl === -1) continue;
      skipping = false;
      from = nl + 1;
      nl = chunk.indexOf(LF, from);
    } else if (carry && nl !== -1) {
      // Only the line that spans the chunks is copied together; the others stay views of their chunk.
      push(Buffer.concat([carry, chunk.subarray(0, nl)]));
      carry = undefined;
      from = nl + 1;
      nl = chunk.indexOf(LF, from);
    }
    for (; nl !== -1; nl = chunk.indexOf(LF, from)) {
      if (batch.lines.length >= batchSize) {
        yield batch;
        batch = { lines: [], numbers: [] };
      }
      push(chunk.subarray(from, nl));
      from = nl + 1;
    }
    if (batch.lines.length >= batchSize) {
      yield batch;
      batch = { lines: [], numbers: [] };
    }
    // One more than the limit: the line may yet end in a CR that is not part of it.
    const rest = carry ? Buffer.concat([carry, chunk]) : chunk.subarray(from);
    if (longerThan(rest, max + 1)) {
      refuse();
      skipping = true;
      carry = undefined;
    } else carry = rest.length > 0 ? rest : undefined;
    // Interactive input: hand over what arrived instead of waiting for a full batch. And a refused
    // line's rest may never end: what came before it must not wait for that.
    if ((options.flushEachChunk || skipping) && batch.lines.length > 0) {
      yield batch;
      batch = { lines: [], numbers: [] };
    }
  }
  if (carry) push(carry);
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
