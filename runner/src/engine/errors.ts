/**
 * Typed errors. Each carries a stable code (listed in the README) and where it came from, so the
 * CLI can print `file:line:col` for spec errors and `node: message` for runtime ones.
 */
export class SluiceError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The spec node (`steps.enriched`), component or file the error belongs to. */
    readonly where?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A spec or component configuration that cannot run. Raised before anything connects. */
export class ConfigError extends SluiceError {}

/**
 * One record could not be decoded or processed. It goes to the node's `errors` port, or is counted and dropped.
 * Its message is cut to MAX_ERROR_MESSAGE_LENGTH: it travels in headers and logs, once per record.
 */
export class RecordError extends SluiceError {
  constructor(code: string, message: string, where?: string, options?: { cause?: unknown }) {
    super(code, boundedMessage(message), where, options);
  }
}

/** A JSONata expression failed to parse. `position` is the 0-based character offset inside the expression. */
export class ExpressionSyntaxError extends SluiceError {
  constructor(
    message: string,
    readonly expression: string,
    readonly position: number,
    readonly jsonataCode?: string,
  ) {
    super('E_EXPR_SYNTAX', message);
  }
}

/** An external system (broker, database) failed in a way that retrying did not fix. */
export class ConnectionError extends SluiceError {}

/** Another instance of the same pipeline (same application id) took over its state: this one must stop writing. */
export class FencedError extends ConnectionError {}

/** Whether `err` or one of its causes (`.cause`, ten deep at most) is one of `types`. */
export function causedBy(err: unknown, ...types: (abstract new (...args: never[]) => Error)[]): boolean {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 10; depth++) {
    if (types.some((t) => e instanceof t)) return true;
    e = (e as Error).cause;
  }
  return false;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The longest error message put in a header or a log line. Real reasons are a line or two; what
 * makes one longer is quoted input (a JSONata error quoting a value, `$error()` with a field), and
 * a header or log line must not grow with the data.
 */
export const MAX_ERROR_MESSAGE_LENGTH = 1024;

/** The message as it is when short enough, else its start and how much was cut; never splits a surrogate pair. */
export function boundedMessage(message: string, max = MAX_ERROR_MESSAGE_LENGTH): string {
  if (message.length <= max) return message;
  let end = max;
  const last = message.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${message.slice(0, end)}… (${message.length - end} more characters)`;
}

/**
 * What a value is, without what it holds: for error messages about column values, which are
 * personal data and unbounded in size, and which the record on the errors port carries anyway.
 */
export function describeValueKind(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'no value';
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  switch (typeof value) {
    case 'string':
      return `a string of ${value.length} character${value.length === 1 ? '' : 's'}`;
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a number';
    case 'bigint':
      return 'an integer';
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}
