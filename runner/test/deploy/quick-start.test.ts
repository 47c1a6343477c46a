/**
 * The README's quick start is what a newcomer runs first, on a fresh clone with no servers: its
 * test command must run only the `unit` project, while `npm test` stays the full suite that CI
 * runs (issue 11, item 19).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import config from '../../../vitest.config.ts';

const readme = readFileSync('README.md', 'utf8');
const { scripts } = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };

/** The commands of the quick start's first `sh` block, without their comments. */
function quickStartCommands(): string[] {
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
}

function project(name: string) {
  const projects = config.test?.projects ?? [];
  const found = projects.find((p) => typeof p === 'object' && 'test' in p && p.test?.name === name);
  if (typeof found !== 'object' || !('test' in found)) throw new Error(`no vitest project ${name}`);
  return found.test!;
}

describe('the quick start', () => {
  it('tests with npm run test:unit, which runs the unit project only', () => {
    const tests = quickStartCommands().filter((c) => /\b(test|vitest)\b/.test(c));
    expect(tests).toEqual(['npm run test:unit']);
    expect(scripts['test:unit']).toBe('vitest run --project unit');
  });

  it('the unit project needs no server: no integration files, no global setup that starts Kafka', () => {
    const unit = project('unit');
    expect(unit.exclude).toContain('runner/test/**/*.integration.test.ts');
    expect(unit.globalSetup).toBeUndefined();
    expect(project('integration').globalSetup).toEqual(['runner/test/setup/integration.global.ts']);
  });

  it('npm test stays the full suite, and the README says it starts Kafka', () => {
    expect(scripts.test).toBe('vitest run');
    expect(readme).toContain('`npm test` is the full suite: it also starts a local Kafka broker');
  });
});
