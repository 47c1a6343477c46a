/**
 * A bound on how long a call to a client library may keep a run waiting. A client whose call
 * never settles (kafkajs's code has such a path: a request on a connection being disconnected
 * loses its timeout) would stall a run without a word; with a bound the run fails instead, says
 * what did not answer, and restarts from its last checkpoint with new clients.
 */

/** Thrown when `work` did not settle within its bound. */
export class DeadlineError extends Error {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what}: no answer within ${formatMs(ms)}`);
    this.name = 'DeadlineError';
  }
}

/**
 * Resolves or rejects as `work` does if it settles within `ms`; rejects with a DeadlineError
 * naming `what` otherwise. `work` is left to settle on its own (its result is then ignored).
 */
export function settleWithin<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(what, ms)), ms);
  });
  // A late settlement of `work` must not be reported as unhandled.
  work.catch(() => {});
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
