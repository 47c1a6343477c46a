import pino from 'pino';

/** The part of pino's logger the engine and components use; tests pass `silentLogger`. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
  /** Writes out what is buffered (pino writes asynchronously); called before the process exits. */
  flush?(cb?: (err?: Error) => void): void;
}

/**
 * Pretty output on a terminal, JSON lines otherwise (for log shippers). Logs go to stderr: stdout
 * carries data. `lineAtATime`: each line is its own write, as when threads share stderr (a write
 * of up to 4 KiB to a pipe is never split, so their lines do not interleave mid-line).
 */
export function createLogger(level = process.env.SLUICE_LOG_LEVEL ?? 'info', options: { lineAtATime?: boolean } = {}): Logger {
  const pretty = process.stderr.isTTY;
  return pino(
    { level, base: undefined },
    pretty
      ? pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l' } })
      : pino.destination({ dest: 2, sync: options.lineAtATime === true }),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
