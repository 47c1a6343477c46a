/**
 * `json`: each message value is one JSON document, parsed losslessly (integers beyond 2^53 stay
 * exact as bigints). The key is parsed as JSON when it is JSON, else kept as text.
 */
import type { Decoded, FormatDef } from '../../engine/component.ts';
import { RecordError, errorMessage } from '../../engine/errors.ts';
import { parseJson } from '../../engine/json.ts';
import { throwIfRefused, type RawMessage } from '../../engine/record.ts';
import { object } from '../../engine/schema.ts';

export interface JsonFormatConfig {
  max_bytes?: number;
}

const DEFAULT_MAX_BYTES = 1_048_576;

/** JSON text of a key, or the key as text when it is not JSON; structured keys pass through. */
function decodeKey(key: unknown): unknown {
  if (key === null || key === undefined) return null;
  if (typeof key !== 'string' && !Buffer.isBuffer(key)) return key;
  const text = typeof key === 'string' ? key : key.toString('utf8');
  try {
    return parseJson(text);
  } catch {
    return text;
  }
}

export const jsonFormat: FormatDef<JsonFormatConfig> = {
  family: 'format',
  name: 'json',
  summary: 'Each message is one JSON document; integers beyond 2^53 are kept exact.',
  description:
    'The value is parsed as JSON (lossless: integers that a double cannot hold become exact big integers and are ' +
    'written back as plain digits). The key is parsed as JSON when it is JSON, otherwise kept as text. A value that ' +
    'is not JSON goes to `<source>.errors` with the line and column where it stops being JSON, and so does a value ' +
    'nesting arrays and objects deeper than 512 levels (no real record does; deeper ones overflowed the stack).',
  schema: object('Options of the json format.', {
    max_bytes: {
      type: 'integer',
      minimum: 1,
      default: DEFAULT_MAX_BYTES,
      description: 'Values longer than this (bytes, or characters for text) are refused as record errors instead of parsed.',
      examples: [1048576],
    },
  }),
  describe: () => 'JSON values',
  create(config, ctx) {
    const maxBytes = config.max_bytes ?? DEFAULT_MAX_BYTES;
    const where = `sources.${ctx.name}`;
    return {
      decode(message: RawMessage): Decoded {
        throwIfRefused(message);
        const { value } = message;
        let decoded: unknown = value ?? null;
        if (typeof value === 'string' || Buffer.isBuffer(value)) {
          if (value.length > maxBytes) {
            throw new RecordError('E_DECODE', `value too large: ${value.length} bytes, max_bytes is ${maxBytes}`, where);
          }
          try {
            decoded = parseJson(typeof value === 'string' ? value : value.toString('utf8'));
          } catch (err) {
            throw new RecordError('E_DECODE', `value is not JSON: ${errorMessage(err)}`, where, { cause: err });
          }
        }
        return { key: decodeKey(message.key), value: decoded, meta: {} };
      },
    };
  },
};
