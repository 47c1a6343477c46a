import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
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
});
