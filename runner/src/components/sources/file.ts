/**
 * `file`: reads JSON Lines (or any lines) from a file or a glob of files, in batches, and ends at
 * the end of the last file (bounded): windows then flush and the run exits 0.
 */
import { constants, createReadStream, type ReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { Ack } from '../../engine/ack.ts';
import type { Source, SourceDef, SourceOutput } from '../../engine/component.ts';
import { ConfigError, errorMessage } from '../../engine/errors.ts';
import type { ArrivalTimeSource } from '../../engine/event-time.ts';
import { object } from '../../engine/schema.ts';
import { DEFAULT_MAX_LINE_LENGTH, expandGlob, lineMessages, readLineBatches } from '../../io/files/line-reader.ts';

export interface FileSourceConfig {
  path: string;
  batch_size?: number;
  max_line_length?: number;
}

const DEFAULT_BATCH_SIZE = 500;

/**
 * The files a path or glob names, each readable; else a ConfigError naming the absolute path looked
 * for (relative paths resolve against the working directory, which is what a mistyped path hides).
 */
async function readableFiles(pattern: string, where: string): Promise<string[]> {
  const files = await expandGlob(pattern);
  if (files.length === 0) {
    throw new ConfigError('E_SOURCE_PATH', `no file matches \`${pattern}\` (looked for ${path.resolve(pattern)})`, where);
  }
  for (const file of files) {
    try {
      await access(file, constants.R_OK);
    } catch (err) {
      throw new ConfigError('E_SOURCE_PATH', `cannot read ${path.resolve(file)}: ${errorMessage(err)}`, where, { cause: err });
    }
  }
  return files;
}

export const fileSource: SourceDef<FileSourceConfig> & ArrivalTimeSource = {
  family: 'source',
  name: 'file',
  // A line has no timestamp of its own: it is stamped with the time it is read.
  messageTime: 'arrival',
  summary: 'Reads lines (JSON Lines by default) from a file or a glob of files; bounded.',
  description:
    'Each non-empty line is one message (its text is the value; the key is null). Files matching a glob are read ' +
    'one after another in sorted order; each file is one input partition named `<source>/<path>`, and a ' +
    "message's offset is its 1-based line number. At the end of the last file the source ends: the watermark " +
    'jumps to the end of time, every window flushes, and the run exits 0. Reading follows backpressure: only ' +
    'about one chunk and one batch are held in memory, whatever the file size.',
  schema: object(
    'Read lines from files.',
    {
      path: {
        type: 'string',
        minLength: 1,
        description: 'A file path, or a glob (`*`, `?`, `[...]` within a directory, `**` across directories), relative to the working directory.',
        examples: ['data/activities.jsonl', 'bench-data/*.jsonl'],
      },
      batch_size: {
        type: 'integer',
        minimum: 1,
        maximum: 100000,
        default: DEFAULT_BATCH_SIZE,
        description: 'Lines per batch handed to the pipeline.',
        examples: [500],
      },
      max_line_length: {
        type: 'integer',
        minimum: 1,
        default: DEFAULT_MAX_LINE_LENGTH,
        description:
          'A longer line (characters, without its line ending) is not read into memory: it goes to `<source>.errors` ' +
          'with the file and line number (the value is null), the rest of it is skipped, and reading goes on at the next line.',
        examples: [4194304],
      },
    },
    ['path'],
  ),
  describe: (config) => `lines of ${config.path}`,
  create(config, ctx): Source {
    const batchSize = config.batch_size ?? DEFAULT_BATCH_SIZE;
    const maxLineLength = config.max_line_length ?? DEFAULT_MAX_LINE_LENGTH;
    const where = `sources.${ctx.name}`;
    let stopping = false;
    let current: ReadStream | undefined;
    return {
      bounded: true,
      // Before any sink opens: a file sink truncates its output, and a mistyped input must not cost it.
      async check(): Promise<void> {
        await readableFiles(config.path, where);
      },
      async run(out: SourceOutput): Promise<void> {
        const files = await readableFiles(config.path, where);
        for (const file of files) {
          if (stopping) break;
          const partition = `${ctx.name}/${file}`;
          out.assign([partition]);
          current = createReadStream(file, { highWaterMark: 1 << 20 });
          try {
            for await (const batch of readLineBatches(current, batchSize, { maxLineLength })) {
              const messages = lineMessages(batch, ctx.name, partition, ctx.clock.now(), file);
              await out.emit({ partition, messages, ack: new Ack(() => {}) });
              if (stopping) break;
            }
          } finally {
            current.destroy();
          }
          // A finished file no longer holds the watermark back while the next one is read.
          if (file !== files.at(-1)) out.revoke([partition]);
        }
      },
      async stop(): Promise<void> {
        stopping = true;
      },
      async close(): Promise<void> {
        current?.destroy();
      },
    };
  },
};
