/**
 * Replaces one of kafkajs's internal CommonJS modules in the require cache with sluice's own, before
 * the kafkajs module that requires it loads (it keeps what it found then). Each fix in this folder
 * says why kafkajs's own is wrong; client.ts imports them all before kafkajs.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Where a replacement keeps the module it replaced. */
const ORIGINAL = Symbol.for('sluice.kafkajs.original');

/** Replaces the module; returns kafkajs's own export (for a fallback, and for tests to compare with). */
export function replaceKafkajsModule<T>(options: {
  /** The module replaced, e.g. `kafkajs/src/consumer/filterAbortedMessages.js`. */
  module: string;
  /** The module that requires it: once that is loaded, a replacement comes too late. */
  requiredBy: string;
  replacement: T & object;
  /** Marks the replacement, so a test runner evaluating this again in one process finds it in place. */
  mark: symbol;
  /** What the fix is, for the error when it comes too late. */
  what: string;
}): T {
  const path = require.resolve(options.module);
  const current = require.cache[path]?.exports as Record<symbol, unknown> | undefined;
  if (current?.[options.mark] === true) return current[ORIGINAL] as T;
  if (require.cache[require.resolve(options.requiredBy)]) {
    throw new Error(`kafkajs was loaded before sluice fixed ${options.what}: import io/kafka/client.ts before kafkajs`);
  }
  const original = require(path) as T;
  const cached = require.cache[path];
  if (!cached) throw new Error(`kafkajs fix (${options.what}): ${options.module} is not in the require cache`);
  cached.exports = Object.assign(options.replacement, { [options.mark]: true, [ORIGINAL]: original });
  return original;
}
