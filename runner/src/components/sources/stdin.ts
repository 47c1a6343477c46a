/** `stdin`: reads lines (JSON Lines by default) from standard input until it ends; bounded. */
import { Ack } from '../../engine/ack.ts';
import type { Source, SourceDef, SourceOutput } from '../../engine/component.ts';
import type { ArrivalTimeSource } from '../../engine/event-time.ts';
import { object } from '../../engine/schema.ts';
import { DEFAULT_MAX_LINE_LENGTH, lineMessages, readLineBatches } from '../../io/files/line-reader.ts';

export interface StdinSourceConfig {
  batch_size?: number;
  max_line_length?: number;
}

const DEFAULT_BATCH_SIZE = 500;

export const stdinSource: SourceDef<StdinSourceConfig> & ArrivalTimeSource = {
  family: 'source',
  name: 'stdin',
  // A line has no timestamp of its own: it is stamped with the time it is read.
  messageTime: 'arrival',
  summary: 'Reads lines (JSON Lines by default) from standard input; bounded by its end.',
  description:
    'Each non-empty line is one message; the partition is `<source>/stdin` and the offset the 1-based line number. ' +
    'When standard input ends (end of a pipe, Ctrl-D), the source ends, windows flush and the run exits 0.',
  schema: object('Read lines from standard input.', {
    batch_size: {
      type: 'integer',
      minimum: 1,
      maximum: 100000,
      default: DEFAULT_BATCH_SIZE,
      description: 'At most this many lines per batch; lines are handed over as soon as they arrive.',
      examples: [500],
    },
    max_line_length: {
      type: 'integer',
      minimum: 1,
      default: DEFAULT_MAX_LINE_LENGTH,
      description:
        'A longer line (characters, without its line ending) is not read into memory: it goes to `<source>.errors` ' +
        'with its line number (the value is null), the rest of it is skipped, and reading goes on at the next line.',
      examples: [4194304],
    },
  }),
  describe: () => 'lines of standard input',
  create(config, ctx): Source {
    const batchSize = config.batch_size ?? DEFAULT_BATCH_SIZE;
    const maxLineLength = config.max_line_length ?? DEFAULT_MAX_LINE_LENGTH;
    let stopping = false;
    return {
      bounded: true,
      async run(out: SourceOutput): Promise<void> {
        const partition = `${ctx.name}/stdin`;
        out.assign([partition]);
        try {
          for await (const batch of readLineBatches(process.stdin, batchSize, { flushEachChunk: true, maxLineLength })) {
            const messages = lineMessages(batch, ctx.name, partition, ctx.clock.now(), 'standard input');
            await out.emit({ partition, messages, ack: new Ack(() => {}) });
            if (stopping) break;
          }
        } catch (err) {
          // Stopping destroys stdin, which ends the read with a premature-close error.
          if (!stopping) throw err;
        }
      },
      async stop(): Promise<void> {
        stopping = true;
        process.stdin.destroy();
      },
      async close(): Promise<void> {},
    };
  },
};
