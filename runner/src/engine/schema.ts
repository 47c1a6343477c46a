/**
 * Building blocks for component config schemas, so that every component describes durations,
 * expressions and secrets the same way, and the validator can say "`size` must be a duration like
 * 1h, got `1 hour`" instead of quoting a regular expression.
 *
 * Custom keywords (registered by the spec validator; ignored by editors):
 *   x-jsonata: true   the string is a JSONata expression, syntax-checked at validation
 *   x-duration: true  the string is a duration (`500ms`, `10s`, `5m`, `1h`, `1d`)
 *   x-secret: true    the value is redacted from logs and `sluice graph`
 *   x-cron: true      the string is a cron schedule (`0 3 * * *`), checked at validation (engine/schedule.ts)
 *   x-timezone: true  the string is an IANA time zone (`Europe/Berlin`), checked at validation
 */
import type { JsonSchema } from './component.ts';
import { DURATION_PATTERN } from './duration.ts';

export function duration(description: string, examples: string[] = ['10s', '5m', '1h']): JsonSchema {
  return { type: 'string', pattern: DURATION_PATTERN, 'x-duration': true, description, examples };
}

export function expression(description: string, examples: string[]): JsonSchema {
  return { type: 'string', minLength: 1, 'x-jsonata': true, description, examples };
}

/** A plain JSONata field path: names (or `backticked names`) separated by dots, e.g. `user.id`. */
export const PLAIN_PATH_PATTERN = '^(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)(?:\\.(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`))*$';

export const CRON_KEYWORD = 'x-cron';
export const TIMEZONE_KEYWORD = 'x-timezone';

export function cron(description: string, examples: string[] = ['0 3 * * *', '*/30 * * * * *']): JsonSchema {
  return { type: 'string', minLength: 1, [CRON_KEYWORD]: true, description, examples };
}

export function timeZone(description: string, examples: string[] = ['Europe/Berlin', 'UTC']): JsonSchema {
  return { type: 'string', minLength: 1, [TIMEZONE_KEYWORD]: true, default: 'UTC', description, examples };
}

export function secret(description: string, examples: string[] = ['${KAFKA_PASSWORD}']): JsonSchema {
  return { type: 'string', 'x-secret': true, description, examples };
}

/** An object schema that refuses unknown keys (so typos are caught), with the given properties. */
export function object(
  description: string,
  properties: Record<string, JsonSchema>,
  required: string[] = [],
  extra: JsonSchema = {},
): JsonSchema {
  return { type: 'object', description, properties, required, additionalProperties: false, ...extra };
}
