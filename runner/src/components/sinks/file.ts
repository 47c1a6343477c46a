/** `file`: writes each record as one JSON line to a file, creating its directory. */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { OutboundMessage, SinkDef } from '../../engine/component.ts';
import { ConnectionError, errorMessage } from '../../engine/errors.ts';
import { object } from '../../engine/schema.ts';
import { jsonLinesBytes, recordMessage } from '../../io/files/json-lines.ts';

export interface FileSinkConfig {
  path: string;
  mode?: 'truncate' | 'append';
  with_key?: boolean;
  with_headers?: boolean;
  fsync?: boolean;
}

export const fileSink: SinkDef<FileSinkConfig> = {
  family: 'sink',
  name: 'file',
  summary: 'Writes each record as one JSON line to a file.',
  description:
    'One line per record: the value as JSON, or `{"key":...,"value":...}` with `with_key: true`, and `"headers"` added ' +
    'with `with_headers: true` (a dead letter keeps its reason: `sluice-error-node`, `sluice-error-message`); integers beyond 2^53 ' +
    'are written exactly. The directory is created if missing. `mode: truncate` (default) starts the file empty at ' +
    'each run, `append` adds to it. A batch counts as written once the operating system has it (`fsync: true` waits ' +
    'for the disk as well).',
  schema: object(
    'Write JSON lines to a file.',
    {
      path: { type: 'string', minLength: 1, description: 'The file to write, relative to the working directory.', examples: ['out/processed.jsonl'] },
      mode: {
        type: 'string',
        enum: ['truncate', 'append'],
        default: 'truncate',
        description: '`truncate` empties the file when the run starts; `append` keeps what is there.',
        examples: ['append'],
      },
      with_key: { type: 'boolean', default: false, description: 'Write `{"key":...,"value":...}` per line instead of the value alone.', examples: [true] },
      with_headers: {
        type: 'boolean',
        default: false,
        description: 'Write each line as an object with the record\'s `headers` beside its `value` (and `key` with `with_key`): a dead letter then keeps its reason.',
        examples: [true],
      },
      fsync: { type: 'boolean', default: false, description: 'Wait for each batch to reach the disk, not just the operating system.', examples: [true] },
    },
    ['path'],
  ),
  describe: (config) => `JSON lines to ${config.path}${config.with_headers ? ' with headers' : ''}${config.mode === 'append' ? ' (append)' : ''}`,
  create(config, ctx) {
    const withKey = config.with_key ?? false;
    const withHeaders = config.with_headers ?? false;
    const where = `sinks.${ctx.name}`;
    let handle: FileHandle | undefined;
    let opening: Promise<FileHandle> | undefined;
    /** The file's length: what a checkpoint records, and what a restart cuts the file back to. */
    let length = 0;
    let resumeAt: number | undefined;
    const ensureOpen = (): Promise<FileHandle> => {
      opening ??= (async () => {
        try {
          await mkdir(path.dirname(config.path), { recursive: true });
          if (resumeAt !== undefined) {
            // A restart from a checkpoint: keep what was written up to it, drop what came after
            // (the restarted run writes that again), as Flink's file sink does.
            handle = await open(config.path, 'a');
            const { size } = await handle.stat();
            if (size < resumeAt) {
              throw new Error(`it has ${size} bytes, fewer than the ${resumeAt} the last checkpoint wrote: it was changed outside sluice; run with --reset-state to start over`);
            }
            await handle.truncate(resumeAt);
            length = resumeAt;
          } else {
            handle = await open(config.path, config.mode === 'append' ? 'a' : 'w');
            length = config.mode === 'append' ? (await handle.stat()).size : 0;
          }
          return handle;
        } catch (err) {
          throw new ConnectionError('E_SINK', `cannot open ${config.path}: ${errorMessage(err)}`, where, { cause: err });
        }
      })();
      return opening;
    };
    return {
      async open() {
        await ensureOpen();
      },
      prepare: (records) => records.map((r) => recordMessage(r, withHeaders)),
      async write(messages) {
        if (messages.length === 0) return;
        const file = await ensureOpen();
        try {
          // write() of a Buffer (several times faster than writeFile), looping over partial writes.
          const bytes = jsonLinesBytes(messages, { withKey, withHeaders });
          for (let offset = 0; offset < bytes.length; ) {
            const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset);
            offset += bytesWritten;
          }
          length += bytes.length;
          if (config.fsync) await file.sync();
        } catch (err) {
          throw new ConnectionError('E_SINK', `cannot write ${config.path}: ${errorMessage(err)}`, where, { cause: err });
        }
      },
      checkpoint: () => ({ length }),
      restore(state) {
        const l = (state as { length?: unknown } | null)?.length;
        if (typeof l === 'number' && Number.isInteger(l) && l >= 0) resumeAt = l;
      },
      async close() {
        const file = handle;
        handle = undefined;
        opening = undefined;
        await file?.close();
      },
    };
  },
};
