/** `stdout`: writes each record as one JSON line to standard output (logs go to stderr). */
import type { OutboundMessage, SinkDef } from '../../engine/component.ts';
import { ConnectionError } from '../../engine/errors.ts';
import { stringifyJson } from '../../engine/json.ts';
import type { StreamRecord } from '../../engine/record.ts';
import { object } from '../../engine/schema.ts';

export interface StdoutSinkConfig {
  with_key?: boolean;
}

/** The outbound message of a record: its key, value and (when there are any) headers. */
export function outbound(record: StreamRecord): OutboundMessage {
  const message: OutboundMessage = { key: record.key ?? null, value: record.value };
  if (Object.keys(record.headers).length > 0) message.headers = record.headers;
  return message;
}

/** One JSON line per message: the value, or `{key, value}`. Bigints are written as plain digits. */
export function jsonLines(messages: readonly OutboundMessage[], withKey: boolean): string {
  let text = '';
  for (const m of messages) text += `${stringifyJson(withKey ? { key: m.key, value: m.value } : m.value)}\n`;
  return text;
}

export const stdoutSink: SinkDef<StdoutSinkConfig> = {
  family: 'sink',
  name: 'stdout',
  summary: 'Writes each record as one JSON line to standard output.',
  description:
    'One line per record: the value as JSON, or `{"key":...,"value":...}` with `with_key: true`. Integers beyond ' +
    '2^53 are written exactly. Logs go to standard error, so standard output carries only data and can be piped.',
  schema: object('Write JSON lines to standard output.', {
    with_key: {
      type: 'boolean',
      default: false,
      description: 'Write `{"key":...,"value":...}` per line instead of the value alone.',
      examples: [true],
    },
  }),
  describe: (config) => (config.with_key ? 'JSON lines of {key, value} to stdout' : 'JSON lines to stdout'),
  create(config) {
    const withKey = config.with_key ?? false;
    return {
      async open() {},
      prepare: (records) => records.map(outbound),
      write(messages) {
        if (messages.length === 0) return Promise.resolve();
        return new Promise<void>((resolve, reject) => {
          process.stdout.write(jsonLines(messages, withKey), (err) =>
            err ? reject(new ConnectionError('E_SINK', `cannot write to stdout: ${err.message}`, 'stdout', { cause: err })) : resolve(),
          );
        });
      },
      async close() {},
    };
  },
};
