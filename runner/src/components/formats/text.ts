/** `text`: each message value is a UTF-8 string, used as it is. */
import type { Decoded, FormatDef } from '../../engine/component.ts';
import { stringifyJson } from '../../engine/json.ts';
import { throwIfRefused, type RawMessage } from '../../engine/record.ts';
import { object } from '../../engine/schema.ts';

export type TextFormatConfig = Record<string, never>;

/** Text of a raw key or value: bytes decoded as UTF-8, structured values written as JSON. */
function asText(raw: unknown): string | null {
  if (raw === null || raw === undefined) return null;
  if (typeof raw === 'string') return raw;
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  return stringifyJson(raw);
}

export const textFormat: FormatDef<TextFormatConfig> = {
  family: 'format',
  name: 'text',
  summary: 'Each message value is a UTF-8 string (for logs and other line-oriented input).',
  description: 'The value and the key become strings (bytes decoded as UTF-8). Expressions see the string as their input: `$` is the line.',
  schema: object('The text format has no options.', {}),
  describe: () => 'UTF-8 text values',
  create() {
    return {
      decode(message: RawMessage): Decoded {
        throwIfRefused(message);
        return { key: asText(message.key), value: asText(message.value), meta: {} };
      },
    };
  },
};
