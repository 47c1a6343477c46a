/**
 * JSON lines, as the `file` and `stdout` sinks write them: one record per line, its value or
 * `{key, value}`, integers beyond 2^53 as plain digits.
 */
import type { OutboundMessage } from '../../engine/component.ts';
import { stringifyJson } from '../../engine/json.ts';
import type { StreamRecord } from '../../engine/record.ts';

/** The outbound message of a record: its key, value and (when there are any) headers. */
export function recordMessage(record: StreamRecord): OutboundMessage {
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
