/**
 * `sluice` as a process among others: a reader that closes the pipe, and Ctrl-C, which a terminal
 * sends to the whole foreground process group (issue 11, items 13 and 14).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve('.');
const BIN = path.join(REPO, 'runner/bin/sluice.js');

/** An endless pipeline with only a stdout sink, in a scratch directory (a run keeps its state in its working directory). */
function endlessSpec(): { dir: string; spec: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-process-'));
  const spec = path.join(dir, 'ticks.yaml');
  writeFileSync(
    spec,
    ['version: 1', 'name: ticks', 'sources:', '  events:', '    generator: { scenario: employee-activity, rate: 200 }', '    format: debezium', 'sinks:', '  out: { from: events, stdout: {} }', ''].join('\n'),
  );
  return { dir, spec };
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  lines: number;
}

/**
 * Starts `command`, calls `onLines` once it has written `lines` lines to stdout, and resolves when
 * it has ended. `group`: in a process group of its own, as a terminal runs a foreground job.
 */
function start(command: string, args: string[], cwd: string, lines: number, onLines: (child: ReturnType<typeof spawn>) => void, group = false): Promise<Ended> {
  const child = spawn(command, args, { cwd, detached: group, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_yes: 'true' } });
  let stderr = '';
  let seen = 0;
  let called = false;
  child.stdout.on('data', (d: Buffer) => {
    seen += d.toString().split('\n').length - 1;
    if (!called && seen >= lines) {
      called = true;
      onLines(child);
    }
  });
  child.stdout.on('error', () => {});
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const guard = setTimeout(() => child.kill('SIGKILL'), 45_000);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr, lines: seen });
    }),
  );
}

describe('sluice as a process', () => {
  it('stops cleanly with exit 0 when the reader of stdout goes away (`sluice run ... | head -3`)', async () => {
    const { dir, spec } = endlessSpec();
    const ended = await start(process.execPath, [BIN, 'run', spec], dir, 3, (child) => child.stdout?.destroy());
    expect(ended.stderr).not.toContain('EPIPE');
    expect(ended).toMatchObject({ code: 0, signal: null });
  }, 60_000);

  it('exits 0 on Ctrl-C to its process group, after stopping cleanly', async () => {
    const { dir, spec } = endlessSpec();
    const ended = await start(process.execPath, [BIN, 'run', spec], dir, 1, (child) => process.kill(-child.pid!, 'SIGINT'), true);
    expect(ended.stderr).toContain('pipeline stopped cleanly');
    expect(ended).toMatchObject({ code: 0, signal: null });
  }, 60_000);

  it('through npx, Ctrl-C stops sluice cleanly but npx itself ends by SIGINT (130 in a shell), as the README says', async () => {
    // npm runs the bin through `sh -c`; sh saw the Ctrl-C too and re-raises it once sluice has
    // exited (0), and npm ends by the signal its child ended by. Nothing sluice can change.
    const { dir, spec } = endlessSpec();
    const ended = await start('npx', ['--package', REPO, 'sluice', 'run', spec], dir, 1, (child) => process.kill(-child.pid!, 'SIGINT'), true);
    expect(ended.stderr).toContain('pipeline stopped cleanly');
    expect(ended).toMatchObject({ code: null, signal: 'SIGINT' });
  }, 60_000);
});
