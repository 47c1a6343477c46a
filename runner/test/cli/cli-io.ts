/** A CliIO that captures what a command writes, for in-process CLI tests. */
import type { CliIO } from '../../src/cli/command.ts';

export function captureIO(env: Record<string, string | undefined> = {}): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env,
    out: () => out,
    err: () => err,
  };
}
