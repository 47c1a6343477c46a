/** `stdout`: writes each record as one JSON line to standard output (logs go to stderr). */
import type { OutboundMessage, SinkDef } from '../../engine/component.ts';
import { ConnectionError } from '../../engine/errors.ts';
import { object } from '../../engine/schema.ts';
import { jsonLines, recordMessage } from '../../io/files/json-lines.ts';

export interface StdoutSinkConfig {
  with_key?: boolean;
  with_headers?: boolean;
}

export const stdoutSink: SinkDef<StdoutSinkConfig> = {
  family: 'sink',
  name: 'stdout',
  summary: 'Writes each record as one JSON line to standard output.',
  description:
    'One line per record: the value as JSON, or `{"key":...,"value":...}` with `with_key: true`, and `"headers"` added with ' +
    '`with_headers: true`. Integers beyond ' +
    '2^53 are written exactly. Logs go to standard error, so standard output carries only data and can be piped.',
  schema: object('Write JSON lines to standard output.', {
    with_key: {
      type: 'boolean',
      default: false,
      description: 'Write `{"key":...,"value":...}` per line instead of the value alone.',
      examples: [true],
    },
    with_headers: {
      type: 'boolean',
      default: false,
      description: 'Write each line as an object with the record\'s `headers` beside its `value` (and `key` with `with_key`).',
      examples: [true],
    },
  }),
  describe: (config) => {
    const fields = [...(config.with_key ? ['key'] : []), 'value', ...(config.with_headers ? ['headers'] : [])];
    return fields.length > 1 ? `JSON lines of {${fields.join(', ')}} to stdout` : 'JSON lines to stdout';
  },
  create(config) {
    const withKey = config.with_key ?? false;
    const withHeaders = config.with_headers ?? false;
    return {
      async open() {},
      prepare: (records) => records.map((r) => recordMessage(r, withHeaders)),
      write(messages) {
        if (messages.length === 0) return Promise.resolve();
        return new Promise<void>((resolve, reject) => {
          process.stdout.write(jsonLines(messages, { withKey, withHeaders }), (err) =>
            err ? reject(new ConnectionError('E_SINK', `cannot write to stdout: ${err.message}`, 'stdout', { cause: err })) : resolve(),
          );
        });
      },
      async close() {},
    };
  },
};
