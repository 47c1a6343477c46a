/**
 * docs/first-pipeline.md, run as a reader would (issue 11, item 21): its fenced blocks, in order,
 * in an empty directory with `sluice` on the PATH (this checkout's). Every block must be one of:
 *   ```<lang> file=<path>   a file to save: written as shown, relative to the current directory
 *   ```sh                   commands, one per line: run by sh there; `cd <dir>` moves; a command
 *                           ending in `# exits N` must exit N, every other one 0
 *   ```text                 right after an `sh` block: exactly what its last command printed
 * Any other block fails the test, so none is left untested and the doc cannot drift from what
 * sluice does.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../../..');
const DOC = path.join(REPO, 'docs', 'first-pipeline.md');

export interface Block {
  lang: string;
  /** The `file=` of the info string, if any. */
  file?: string;
  body: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
}

/** The fenced blocks of a Markdown text, in order. */
export function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const fence = /^```(\S*)([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (let m = fence.exec(markdown); m; m = fence.exec(markdown)) {
    const file = /\bfile=(\S+)/.exec(m[2]!)?.[1];
    blocks.push({ lang: m[1]!, ...(file ? { file } : {}), body: m[3]!, line: markdown.slice(0, m.index).split('\n').length });
  }
  return blocks;
}

interface Command {
  text: string;
  /** The exit code the doc says it ends with. */
  exits: number;
}

/** The commands of an `sh` block: comments stripped, `# exits N` read. */
export function commandsOf(body: string): Command[] {
  return body
    .split('\n')
    .map((line) => {
      const exits = /#\s*exits (\d+)\b/.exec(line);
      return { text: line.replace(/(^|\s)#.*$/, '').trim(), exits: exits ? Number(exits[1]) : 0 };
    })
    .filter((c) => c.text !== '');
}

interface Ran {
  command: string;
  code: number;
  stdout: string;
  stderr: string;
}

let root: string;
const ran: Ran[] = [];
/** Each `text` block and what the command before it printed. */
const printed: { block: Block; command: string; stdout: string }[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'sluice-first-pipeline-'));
  const bin = path.join(root, 'bin');
  await mkdir(bin);
  await writeFile(path.join(bin, 'sluice'), `#!/bin/sh\nexec node ${JSON.stringify(path.join(REPO, 'runner/bin/sluice.js'))} "$@"\n`);
  await chmod(path.join(bin, 'sluice'), 0o755);
  const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
  let cwd = path.join(root, 'reader');
  await mkdir(cwd);

  let last: Ran | undefined;
  let previous: Block | undefined;
  for (const block of fencedBlocks(await readFile(DOC, 'utf8'))) {
    const where = `docs/first-pipeline.md:${block.line}`;
    if (block.file) {
      await writeFile(path.join(cwd, block.file), block.body);
    } else if (block.lang === 'sh') {
      last = undefined;
      for (const { text, exits } of commandsOf(block.body)) {
        const cd = /^cd\s+(\S+)$/.exec(text);
        if (cd) {
          cwd = path.resolve(cwd, cd[1]!);
          continue;
        }
        let result: Ran;
        try {
          const { stdout, stderr } = await run('sh', ['-c', text], { cwd, env, timeout: 60_000 });
          result = { command: text, code: 0, stdout, stderr };
        } catch (err) {
          const e = err as { code?: unknown; stdout?: string; stderr?: string };
          result = { command: text, code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
        }
        expect(result.code, `${where}: \`${text}\` exits ${exits}; stderr: ${result.stderr}`).toBe(exits);
        ran.push(result);
        last = result;
      }
    } else if (block.lang === 'text' && previous?.lang === 'sh' && !previous.file && last) {
      printed.push({ block, command: last.command, stdout: last.stdout });
    } else {
      throw new Error(`${where}: a \`${block.lang}\` block that is neither a file to save, commands, nor the output of the commands before it`);
    }
    previous = block;
  }
}, 300_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('docs/first-pipeline.md', () => {
  it('runs every command with the exit code it says', () => {
    expect(ran.map((r) => r.command)).toEqual(expect.arrayContaining(['sluice validate pipelines/orders.yaml', 'sluice run pipelines/orders.yaml', 'sluice test --update', 'sluice test']));
  });

  it('shows exactly what each command printed', () => {
    expect(printed.length).toBeGreaterThanOrEqual(6);
    for (const { block, command, stdout } of printed) {
      expect(stdout, `docs/first-pipeline.md:${block.line}: the output of \`${command}\``).toBe(block.body);
    }
  });

  it('says what the first run warns about: failed records nothing reads are dropped, never silently', () => {
    const first = ran.find((r) => r.command === 'sluice run pipelines/orders.yaml')!;
    expect(first.stderr).toContain('record failed and nothing reads orders.errors; dropped');
    expect(first.stderr).toContain('record failed and nothing reads checked.errors; dropped');
  });

  it('names the absolute path a run from the wrong directory looked for', () => {
    const wrong = ran.find((r) => r.command === 'sluice run shop/pipelines/orders.yaml')!;
    expect(wrong.stderr).toContain(`no file matches \`data/orders.jsonl\` (looked for ${path.join(root, 'reader', 'data', 'orders.jsonl')})`);
  });
});

describe('the doc runner', () => {
  it('reads fences with a file, commands with an exit code, and outputs', () => {
    const md = 'x\n```yaml file=a/b.yaml\nk: v\n```\n\n```sh\nmkdir a   # make it\nfalse # exits 1\n```\n```text\nok\n```\n';
    expect(fencedBlocks(md)).toEqual([
      { lang: 'yaml', file: 'a/b.yaml', body: 'k: v\n', line: 2 },
      { lang: 'sh', body: 'mkdir a   # make it\nfalse # exits 1\n', line: 6 },
      { lang: 'text', body: 'ok\n', line: 10 },
    ]);
    expect(commandsOf('mkdir a   # make it\n\n# just a comment\nfalse # exits 1\n')).toEqual([
      { text: 'mkdir a', exits: 0 },
      { text: 'false', exits: 1 },
    ]);
  });
});
