/**
 * JSON lines, as the `file` and `stdout` sinks write them: one record per line, its value, or an
 * object with its `key`, `value` and `headers` (as chosen), integers beyond 2^53 as plain digits.
 */
import type { OutboundMessage } from '../../engine/component.ts';
import { stringifyJson } from '../../engine/json.ts';
import type { StreamRecord } from '../../engine/record.ts';

/** What a JSON-lines sink writes of each record, besides its value. */
export interface LineFields {
  withKey: boolean;
  withHeaders: boolean;
}

/**
 * The outbound message of a record: its key and value, and its headers only when the sink writes
 * them, so a golden file (which records this) shows what the sink writes.
 */
export function recordMessage(record: StreamRecord, withHeaders: boolean): OutboundMessage {
  const message: OutboundMessage = { key: record.key ?? null, value: record.value };
  if (withHeaders && Object.keys(record.headers).length > 0) message.headers = record.headers;
  return message;
}

/** One JSON line per message: the value, or `{key?, value, headers?}`. Bigints are written as plain digits. */
export function jsonLines(messages: readonly OutboundMessage[], fields: LineFields): string {
  const { withKey, withHeaders } = fields;
  let text = '';
  for (const m of messages) {
    let line: unknown = m.value;
    if (withKey || withHeaders) {
      const o: Record<string, unknown> = {};
      if (withKey) o.key = m.key;
      o.value = m.value;
      if (withHeaders) o.headers = m.headers ?? {};
      line = o;
    }
    text += `${stringifyJson(line)}\n`;
  }
  return text;
}
