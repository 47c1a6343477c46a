/**
 * `sluice run` as a real process for the integration suites: in its own process group, so a test
 * kills it whole with `process.kill(-pid, signal)` (killing only the parent would leave a child
 * writing to the next test's topics), logging JSON at info level to stderr, which is kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/sluice.js');

export interface SluiceProcess {
  child: ChildProcess;
  /** The exit code, or the signal that ended it. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

export function runSluice(spec: string, options: { cwd: string; args?: string[]; env?: Record<string, string>; nodeArgs?: string[] }): SluiceProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, 'run', spec, ...(options.args ?? [])], {
    cwd: options.cwd,
    env: { ...process.env, SLUICE_LOG_LEVEL: process.env.SLUICE_TEST_LOG_LEVEL ?? 'info', ...options.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, exit, stderr: () => stderr };
}

/** Polls `probe` every 50 ms until it gives a value, which it returns; throws naming `what` on timeout. */
export async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The JSON log lines of a `sluice run`'s stderr (it logs JSON lines when stderr is not a terminal); other lines are skipped. */
export function jsonLogLines(stderr: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut short (the process was killed while writing it).
    }
  }
  return out;
}

/**
 * The records written per sink, summed over the run summaries in a process's log that `groupOf`
 * gives a group to (undefined leaves a line out): a run restarted in process counts from zero, and
 * each thread of `--threads` logs its own.
 */
export function recordsOutBy<K>(run: SluiceProcess, groupOf: (summary: Record<string, unknown>) => K | undefined): Map<K, Record<string, number>> {
  const out = new Map<K, Record<string, number>>();
  for (const line of jsonLogLines(run.stderr())) {
    if (!line.recordsOut) continue;
    const group = groupOf(line);
    if (group === undefined) continue;
    const total = out.get(group) ?? {};
    for (const [sink, n] of Object.entries(line.recordsOut as Record<string, number>)) total[sink] = (total[sink] ?? 0) + n;
    out.set(group, total);
  }
  return out;
}

/** Waits for a process to exit; after `timeoutMs` kills its process group and throws, naming `what`. */
export async function exitWithin(run: SluiceProcess, timeoutMs: number, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        process.kill(-run.child.pid!, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
      reject(new Error(`${what} did not exit within ${timeoutMs} ms; its log ends:\n${run.stderr().slice(-3000)}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([run.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Kills the process group of every run still alive (a test's clean-up after a failure). */
export function killLeftovers(runs: readonly SluiceProcess[]): void {
  for (const r of runs) {
    if (r.child.exitCode !== null || r.child.signalCode !== null) continue;
    try {
      process.kill(-r.child.pid!, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}
