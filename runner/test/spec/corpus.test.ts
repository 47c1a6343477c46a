/**
 * The broken-spec corpus: each file in corpus/ makes one mistake and states, in its header, the
 * one diagnostic validation must give (`# expect: line:col CODE message`, or `# expect: command line
 * CODE message` for a mistake in the options), plus any options (`# profile: NAME`, `# set:
 * path=value`, `# add: path=value`, `# env: NAME=value`). `00-valid.yaml` is the pipeline the others
 * break, and must stay valid.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPipeline } from '../../src/plan/load-pipeline.ts';
import { DIAGNOSTIC_CODES, positionText, type DiagnosticCode } from '../../src/spec/diagnostic.ts';
import { parseSetArgument, type LoadOptions } from '../../src/spec/load.ts';

const DIR = join(import.meta.dirname, 'corpus');
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();

interface CorpusCase {
  expect: string;
  options: LoadOptions;
}

function readCase(file: string): CorpusCase {
  const header = readFileSync(join(DIR, file), 'utf8').split('\n').filter((l) => l.startsWith('# '));
  const field = (name: string) => header.filter((l) => l.startsWith(`# ${name}: `)).map((l) => l.slice(name.length + 4));
  const [expected] = field('expect');
  if (expected === undefined) throw new Error(`${file} has no \`# expect:\` line`);
  const env = Object.fromEntries(field('env').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const [profile] = field('profile');
  const options: LoadOptions = {
    env,
    sets: field('set').map((arg) => parseSetArgument(arg, '--set')),
    adds: field('add').map((arg) => parseSetArgument(arg, '--add')),
    ...(profile ? { profile } : {}),
  };
  return { expect: expected, options };
}

describe('broken-spec corpus', () => {
  it('has at least 40 broken specs', () => {
    expect(files.filter((f) => !f.startsWith('00-')).length).toBeGreaterThanOrEqual(40);
  });

  it('covers every check validation makes (all codes but E_FILE, which needs a missing file)', () => {
    const covered = new Set(files.map((f) => /^(?:command line|\d+:\d+) (\S+)/.exec(readCase(f).expect)?.[1]));
    const codes = Object.keys(DIAGNOSTIC_CODES).filter((c): c is DiagnosticCode => c !== 'E_FILE');
    expect(codes.filter((c) => !covered.has(c))).toEqual([]);
  });

  for (const file of files) {
    it(file, async () => {
      const c = readCase(file);
      const result = await loadPipeline(join(DIR, file), c.options);
      const got = result.ok ? ['valid'] : result.diagnostics.map((d) => `${positionText(d)} ${d.code} ${d.message}`);
      expect(got).toEqual([c.expect]);
    });
  }
});
