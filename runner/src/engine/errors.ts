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

/** One record could not be decoded or processed. It goes to the node's `errors` port, or is counted and dropped. */
export class RecordError extends SluiceError {}

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

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
