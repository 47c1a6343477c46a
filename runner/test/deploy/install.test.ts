/**
 * Installing sluice outside its checkout (issue 11, item 20), as the README's "Installing" says:
 * its commands run as written, with only a temporary pack destination and install prefix added,
 * then the installed `sluice` runs from another directory: its version, validating and running a
 * spec kept there, and printing the schema an editor can point at. Dependencies come from npm's
 * cache (`--prefer-offline`), from the registry only when the cache lacks them.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../../..');
const { version } = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };

/** The environment without npm's own variables, so an outer `npm test` does not steer the install. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(file: string, args: string[], cwd: string): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, env: cleanEnv(), timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const SPEC = `# yaml-language-server: $schema=./pipeline.schema.json
version: 1
name: clicks
description: Counts clicks per user and hour.
sources:
  clicks:
    file: { path: clicks.jsonl }
steps:
  per-user:
    from: clicks
    window: { tumbling: 1h, time: ts }
    group_by: [user]
    aggregate: { clicks: $count() }
sinks:
  out:
    from: per-user
    stdout: {}
`;

/** The commands of the README's "Installing" section: its first `sh` block, without comments. */
async function installCommands(): Promise<string[][]> {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Installing\n');
  expect(start, 'README has an "Installing" section').toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start))?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter(Boolean)
    .map((line) => line.split(/\s+/));
}

let dir: string;
let sluice: string;
let project: string;
let packedFiles: string[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-install-'));
  const prefix = path.join(dir, 'prefix');
  const [pack, install, check] = await installCommands();
  expect(pack).toEqual(['npm', 'pack']);
  expect(install).toEqual(['npm', 'install', '-g', `./sluice-${version}.tgz`]);
  expect(check).toEqual(['sluice', '--version']);

  // In the checkout, as the README says; the tarball goes to the temporary directory.
  const packed = await exec('npm', [...pack!.slice(1), '--pack-destination', dir, '--json'], REPO);
  expect(packed.code, packed.stderr).toBe(0);
  packedFiles = (JSON.parse(packed.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  const installed = await exec('npm', [...install!.slice(1), '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund'], dir);
  expect(installed.code, installed.stderr).toBe(0);
  sluice = path.join(prefix, 'bin', 'sluice');
  // A project of the user's, nowhere near the checkout.
  project = path.join(dir, 'analytics');
  await mkdir(project);
  await writeFile(path.join(project, 'clicks.yaml'), SPEC);
  await writeFile(path.join(project, 'clicks.jsonl'), '{"user":"ann","ts":"2025-01-06T10:00:00Z"}\n{"user":"ann","ts":"2025-01-06T10:20:00Z"}\n');
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('sluice installed from a packed tarball', () => {
  it('packs what runs (the runner, the schema, the docs, the example specs) and not the tests', () => {
    expect(packedFiles).toEqual(expect.arrayContaining(['runner/bin/sluice.js', 'runner/src/cli/main.ts', 'schemas/pipeline.schema.json', 'docs/components.md', 'pipelines/employee-activity.yaml', 'package.json', 'README.md']));
    expect(packedFiles.filter((f) => /^(runner\/(test|bench)|scripts|\.ci|pipelines\/tests)\//.test(f))).toEqual([]);
  });

  it('prints its version from another directory', async () => {
    const out = await exec(sluice, ['--version'], project);
    expect(out).toMatchObject({ code: 0, stdout: `sluice ${version}\n` });
  });

  it('validates a spec kept in another directory, and refuses a broken one', async () => {
    expect(await exec(sluice, ['validate', 'clicks.yaml'], project)).toMatchObject({ code: 0, stdout: 'ok  clicks.yaml (3 nodes)\n' });
    await writeFile(path.join(project, 'broken.yaml'), SPEC.replace('tumbling: 1h', 'tumbling: 1 hour'));
    const broken = await exec(sluice, ['validate', 'broken.yaml'], project);
    expect(broken.code).toBe(2);
    expect(broken.stdout + broken.stderr).toContain('broken.yaml:11:25: error[E_DURATION]');
    // Two starts of the installed CLI: on a loaded machine each takes seconds.
  }, 30_000);

  it('runs it there, reading its input relative to the working directory', async () => {
    const out = await exec(sluice, ['run', 'clicks.yaml', '--log-level', 'warn'], project);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('{"user":"ann","window_start":"2025-01-06T10:00:00.000Z","window_end":"2025-01-06T11:00:00.000Z","clicks":2}\n');
  });

  it('prints the schema for an editor to use, the same as the checkout\'s, and ships it in the package', async () => {
    const printed = await exec(sluice, ['schema'], project);
    const committed = await readFile(path.join(REPO, 'schemas', 'pipeline.schema.json'), 'utf8');
    expect(printed.stdout).toBe(committed);
    const shipped = await readFile(path.join(dir, 'prefix', 'lib', 'node_modules', 'sluice', 'schemas', 'pipeline.schema.json'), 'utf8');
    expect(shipped).toBe(committed);
  });
});
