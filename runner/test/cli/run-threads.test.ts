/**
 * `sluice run --threads N`: the pure parts (the count, the arguments each thread gets, the
 * process's exit code from its threads') and the refusals and failures a user meets before anything runs.
 * Threads running a pipeline against Kafka: runner/test/cli/run-threads.integration.test.ts.
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_THREADS, parseThreadCount, processExitCode, runOnThreads, threadArgv } from '../../src/cli/run-threads.ts';

const BIN = path.resolve('runner/bin/sluice.js');
const SPEC = path.resolve('pipelines/employee-activity.yaml');

describe('parseThreadCount', () => {
  it('takes a whole number from 1 to MAX_THREADS', () => {
    expect(parseThreadCount('1')).toBe(1);
    expect(parseThreadCount('2')).toBe(2);
    expect(parseThreadCount(String(MAX_THREADS))).toBe(MAX_THREADS);
  });

  it('refuses anything else with a sentence that names the flag and the value', () => {
    for (const bad of ['0', '-1', '1.5', 'two', '', String(MAX_THREADS + 1), '2x']) {
      const result = parseThreadCount(bad);
      expect(typeof result, bad).toBe('string');
      expect(result).toContain('--threads');
      expect(result).toContain(`\`${bad}\``);
    }
  });
});

describe('threadArgv', () => {
  it('drops --reset-state, which the main thread carries out once, and the value after it stays', () => {
    expect(threadArgv(['p.yaml', '--reset-state', '--threads', '2'])).toEqual(['p.yaml']);
    expect(threadArgv(['--reset-state', 'p.yaml', '--set', 'a=b'])).toEqual(['p.yaml', '--set', 'a=b']);
    expect(threadArgv(['p.yaml', '--set', 'x=--reset-state'])).toEqual(['p.yaml', '--set', 'x=--reset-state']);
  });

  it('drops --threads and its value in either spelling, and nothing else', () => {
    expect(threadArgv(['p.yaml', '--threads', '2', '--set', 'a=b'])).toEqual(['p.yaml', '--set', 'a=b']);
    expect(threadArgv(['--threads=3', 'p.yaml', '--log-level', 'debug'])).toEqual(['p.yaml', '--log-level', 'debug']);
    expect(threadArgv(['p.yaml', '--set', 'x=--threads'])).toEqual(['p.yaml', '--set', 'x=--threads']);
    expect(threadArgv(['p.yaml'])).toEqual(['p.yaml']);
  });

  it('drops --http and its value in either spelling: the main thread serves it for all threads', () => {
    expect(threadArgv(['p.yaml', '--http', '9477', '--threads', '2'])).toEqual(['p.yaml']);
    expect(threadArgv(['--http=0.0.0.0:9477', 'p.yaml', '--set', 'a=b'])).toEqual(['p.yaml', '--set', 'a=b']);
    expect(threadArgv(['p.yaml', '--set', 'x=--http'])).toEqual(['p.yaml', '--set', 'x=--http']);
  });
});

describe('runOnThreads: the threads join their groups together', () => {
  const entry = new URL('./fixtures/start-together-thread.mjs', import.meta.url);
  /** Each line of the fixture's log: thread, what, time (ms). */
  const events = (file: string) =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([thread, what, at]) => ({ thread: Number(thread), what: what!, at: Number(at) }));

  it('lets no thread start before the slowest has prepared', async () => {
    const log = path.join(mkdtempSync(path.join(tmpdir(), 'sluice-threads-')), 'events');
    const code = await runOnThreads([log, '10', '400', '150'], 3, () => {}, entry);
    expect(code).toBe(0);
    const seen = events(log);
    const ready = seen.filter((e) => e.what === 'ready');
    expect(ready.map((e) => e.thread).sort()).toEqual([1, 2, 3]);
    const lastReady = Math.max(...ready.map((e) => e.at));
    const starts = seen.filter((e) => e.what === 'start');
    expect(starts.map((e) => e.thread).sort()).toEqual([1, 2, 3]);
    // Thread 1 was ready about 390 ms before thread 2; it started only after thread 2 was ready.
    for (const s of starts) expect(s.at).toBeGreaterThanOrEqual(lastReady);
  });

  it('does not keep the others waiting for a thread that ended before it was ready', async () => {
    const log = path.join(mkdtempSync(path.join(tmpdir(), 'sluice-threads-')), 'events');
    const code = await runOnThreads([log, '10', 'exit-0', '50'], 3, () => {}, entry);
    expect(code).toBe(0);
    expect(events(log).filter((e) => e.what === 'start').map((e) => e.thread).sort()).toEqual([1, 3]);
  });

  it('stops the others when a thread fails before it was ready', async () => {
    const log = path.join(mkdtempSync(path.join(tmpdir(), 'sluice-threads-')), 'events');
    const notes: string[] = [];
    const code = await runOnThreads([log, '300', 'exit-1'], 2, (t) => notes.push(t), entry);
    expect(code).toBe(1);
    expect(notes.join('\n')).toContain('thread 2 ended with exit code 1');
    expect(events(log).some((e) => e.thread === 1 && e.what === 'stopped')).toBe(true);
  });
});

describe('processExitCode', () => {
  it('is the first failure in thread order, else an interruption, else 0', () => {
    expect(processExitCode([0, 0])).toBe(0);
    expect(processExitCode([0, 1, 2])).toBe(1);
    expect(processExitCode([130, 2, 1])).toBe(2);
    expect(processExitCode([0, 130])).toBe(130);
  });
});

function run(args: string[]) {
  const cwd = mkdtempSync(path.join(tmpdir(), 'sluice-threads-'));
  const child = spawn(process.execPath, [BIN, 'run', ...args], { cwd });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('sluice run --threads', () => {
  it('refuses a count that is not one, before loading anything', async () => {
    const result = await run([SPEC, '--threads', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--threads must be a whole number from 1 to');
  }, 30_000);

  it('with --http on a port in use, fails before any thread starts, naming the address', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    try {
      const result = await run([SPEC, '--threads', '2', '--http', String(port)]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use`);
      expect(result.stderr).not.toContain('"thread"');
    } finally {
      busy.close();
    }
  }, 30_000);

  it('refuses a pipeline that runs whole: two runs of it would each compute its windows', async () => {
    const result = await run([SPEC, '--profile', 'local', '--threads', '2']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--threads needs a pipeline that runs as tasks');
  }, 30_000);
});
