/**
 * `sluice run --threads N`: the pure parts (the count, the arguments each thread gets, the
 * process's exit code from its threads') and the refusals a user meets before anything runs.
 * Threads running a pipeline against Kafka: runner/test/cli/run-threads.integration.test.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_THREADS, parseThreadCount, processExitCode, withoutThreads } from '../../src/cli/run-threads.ts';

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

describe('withoutThreads', () => {
  it('drops --threads and its value in either spelling, and nothing else', () => {
    expect(withoutThreads(['p.yaml', '--threads', '2', '--set', 'a=b'])).toEqual(['p.yaml', '--set', 'a=b']);
    expect(withoutThreads(['--threads=3', 'p.yaml', '--log-level', 'debug'])).toEqual(['p.yaml', '--log-level', 'debug']);
    expect(withoutThreads(['p.yaml', '--set', 'x=--threads'])).toEqual(['p.yaml', '--set', 'x=--threads']);
    expect(withoutThreads(['p.yaml'])).toEqual(['p.yaml']);
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

  it('refuses --http beside it: each thread would serve the metrics of its own tasks only', async () => {
    const result = await run([SPEC, '--threads', '2', '--http', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--threads and --http cannot be used together');
  }, 30_000);

  it('refuses a pipeline that runs whole: two runs of it would each compute its windows', async () => {
    const result = await run([SPEC, '--profile', 'local', '--threads', '2']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--threads needs a pipeline that runs as tasks');
  }, 30_000);
});
