import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../src/cli/command.ts';
import { command as test } from '../../src/cli/test.ts';
import { captureIO } from './cli-io.ts';

const SPEC = `version: 1
name: upper
sources:
  words:
    stdin: {}
steps:
  shout:
    from: words
    set:
      loud: $uppercase(w)
sinks:
  out:
    from: shout
    stdout: {}
`;

function spec(expected: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-test-cmd-'));
  writeFileSync(path.join(dir, 'upper.yaml'), SPEC);
  const caseDir = path.join(dir, 'tests', 'upper', 'one');
  mkdirSync(caseDir, { recursive: true });
  writeFileSync(path.join(caseDir, 'words.jsonl'), '{"w":"hi"}\n');
  writeFileSync(path.join(caseDir, 'out.jsonl'), expected);
  return path.join(dir, 'upper.yaml');
}

describe('sluice test', () => {
  it('exits 0 and ends with the count line when every case passes', async () => {
    const io = captureIO();
    const code = await dispatch([test], ['test', spec('{"key":null,"value":{"w":"hi","loud":"HI"}}\n')], io);
    expect(code).toBe(0);
    expect(io.out()).toContain('ok   upper.yaml one');
    expect(io.out().trimEnd().split('\n').at(-1)).toBe('golden: 1 passed, 0 failed');
  });

  it('exits 1 with a diff when a case fails', async () => {
    const io = captureIO();
    const code = await dispatch([test], ['test', spec('{"key":null,"value":{"w":"hi","loud":"hi"}}\n')], io);
    expect(code).toBe(1);
    expect(io.out()).toContain('FAIL upper.yaml one');
    expect(io.out()).toContain('value.loud: "hi" -> "HI"');
    expect(io.out().trimEnd().split('\n').at(-1)).toBe('golden: 0 passed, 1 failed');
  });

  it('notes records dropped on ports nothing reads, without failing the case', async () => {
    const file = spec('');
    // `$number("hi")` fails: the record goes to `shout.errors`, which nothing reads; out gets nothing.
    writeFileSync(file, SPEC.replace('$uppercase(w)', '$number(w)'));
    const io = captureIO();
    expect(await dispatch([test], ['test', file], io)).toBe(0);
    expect(io.out()).toContain('note: `shout`: 1 record(s) went to ports nothing reads (counted, dropped)');
  });

  it('fails when a spec has no cases, unless --allow-empty', async () => {
    const file = spec('');
    const bare = path.join(path.dirname(file), 'bare.yaml');
    writeFileSync(bare, SPEC);
    const io = captureIO();
    expect(await dispatch([test], ['test', bare], io)).toBe(1);
    expect(io.out()).toContain(`FAIL ${bare}: no cases in ${path.join(path.dirname(file), 'tests', 'bare')}/ (add one, or pass --allow-empty)`);
    const allowed = captureIO();
    expect(await dispatch([test], ['test', bare, '--allow-empty'], allowed)).toBe(0);
    expect(allowed.out()).toContain('(allowed by --allow-empty)');
  });

  it('fails when no spec is found, and when a named spec does not exist', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'sluice-test-none-'));
    const cwd = process.cwd();
    process.chdir(empty);
    try {
      const io = captureIO();
      expect(await dispatch([test], ['test'], io)).toBe(1);
      expect(io.out()).toContain('FAIL no pipeline specs: none named, and no pipelines/*.yaml in');
    } finally {
      process.chdir(cwd);
    }
    const missing = captureIO();
    expect(await dispatch([test], ['test', path.join(empty, 'nope.yaml')], missing)).toBe(1);
    expect(missing.out()).toContain('nope.yaml: no such file');
  });

  it('fails when --case matches no case, with a did-you-mean', async () => {
    const io = captureIO();
    expect(await dispatch([test], ['test', spec('{"key":null,"value":{"w":"hi","loud":"HI"}}\n'), '--case', 'onw'], io)).toBe(1);
    expect(io.out()).toContain('FAIL --case `onw`: no case of that name (did you mean `one`?)');
    expect(io.out().trimEnd().split('\n').at(-1)).toBe('golden: 0 passed, 1 failed');
  });

  it('--update says which cases it changed and leaves the files of the others untouched', async () => {
    // Hand-written: other key order and spacing, same content.
    const file = spec('{ "value": {"w": "hi", "loud": "HI"}, "key": null }\n');
    const expected = path.join(path.dirname(file), 'tests', 'upper', 'one', 'out.jsonl');
    const unchanged = captureIO();
    expect(await dispatch([test], ['test', file, '--update'], unchanged)).toBe(0);
    expect(unchanged.out()).toContain('ok   upper.yaml one (unchanged)');
    expect(readFileSync(expected, 'utf8')).toBe('{ "value": {"w": "hi", "loud": "HI"}, "key": null }\n');

    writeFileSync(expected, '{"key":null,"value":{"w":"hi","loud":"hi"}}\n');
    const updated = captureIO();
    expect(await dispatch([test], ['test', file, '--update'], updated)).toBe(0);
    expect(updated.out()).toContain('ok   upper.yaml one (updated)');
    expect(readFileSync(expected, 'utf8')).toBe('{"key":null,"value":{"w":"hi","loud":"HI"}}\n');
  });
});
