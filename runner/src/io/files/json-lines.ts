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

/** What one message's line holds: its value, or `{key?, value, headers?}`. */
function lineOf(m: OutboundMessage, { withKey, withHeaders }: LineFields): unknown {
  if (!withKey && !withHeaders) return m.value;
  const o: Record<string, unknown> = {};
  if (withKey) o.key = m.key;
  o.value = m.value;
  if (withHeaders) o.headers = m.headers ?? {};
  return o;
}

/** One JSON line per message: the value, or `{key?, value, headers?}`. Bigints are written as plain digits. */
export function jsonLines(messages: readonly OutboundMessage[], fields: LineFields): string {
  let text = '';
  for (const m of messages) text += `${stringifyJson(lineOf(m, fields))}\n`;
  return text;
}

/**
 * The same lines as UTF-8 bytes, each encoded straight into one buffer. Joining them into one
 * string first and encoding that (`Buffer.from`) cost 5% of the main thread file to file: the
 * joined string is copied flat, then read twice more (its UTF-8 length, then its bytes). Here
 * each line is encoded once; 0.82-0.98 µs a line against 1.12-1.17 for 2,000 processed records.
 */
export function jsonLinesBytes(messages: readonly OutboundMessage[], fields: LineFields): Buffer {
  const lines = messages.map((m) => stringifyJson(lineOf(m, fields)));
  let capacity = 0;
  for (const line of lines) capacity += line.length + 1;
  // Enough for text that is all ASCII; grown when a line's UTF-8 does not fit.
  let bytes = Buffer.allocUnsafe(capacity);
  let at = 0;
  for (const line of lines) {
    // A UTF-16 unit takes at most 3 UTF-8 bytes; only when that might not fit is the exact length taken.
    if (bytes.length - at < line.length * 3 + 1) {
      const needed = Buffer.byteLength(line, 'utf8') + 1;
      if (bytes.length - at < needed) {
        const grown = Buffer.allocUnsafe(Math.max(bytes.length * 2, at + needed));
        bytes.copy(grown, 0, 0, at);
        bytes = grown;
      }
    }
    at += bytes.write(line, at, 'utf8');
    bytes[at++] = 0x0a;
  }
  return bytes.subarray(0, at);
}
