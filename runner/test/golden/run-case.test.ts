import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCases } from '../../src/golden/cases.ts';
import { describeFailure, runCase } from '../../src/golden/run-case.ts';

const SPEC = `version: 1
name: doubles
sources:
  numbers:
    stdin: {}
steps:
  big:
    from: numbers
    filter: n > 1
  doubled:
    from: big
    set:
      twice: n * 2
sinks:
  out:
    from: doubled
    stdout: {}
`;

function workspace(cases: Record<string, Record<string, string>>, spec = SPEC, stem = 'doubles'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-golden-'));
  writeFileSync(path.join(dir, `${stem}.yaml`), spec);
  for (const [name, files] of Object.entries(cases)) {
    const caseDir = path.join(dir, 'tests', stem, name);
    mkdirSync(caseDir, { recursive: true });
    for (const [file, text] of Object.entries(files)) writeFileSync(path.join(caseDir, file), text);
  }
  return path.join(dir, `${stem}.yaml`);
}

describe('runCase', () => {
  it('passes when the sink writes exactly the expected lines (key order and spacing in the file do not matter)', async () => {
    const spec = workspace({
      basic: {
        'numbers.jsonl': '{"n":1}\n{"n":2}\n\n{"n":3}\n',
        'out.jsonl': '{"value": {"n": 2, "twice": 4}, "key": null}\n{"key":null,"value":{"n":3,"twice":6}}\n',
      },
    });
    const [c] = await findCases(spec);
    const result = await runCase(c!);
    expect(describeFailure(result)).toBe('');
    expect(result.ok).toBe(true);
  });

  it('fails with a diff naming the field that changed', async () => {
    const spec = workspace({
      wrong: {
        'numbers.jsonl': '{"n":2}\n',
        'out.jsonl': '{"key":null,"value":{"n":2,"twice":5}}\n',
      },
    });
    const [c] = await findCases(spec);
    const result = await runCase(c!);
    expect(result.ok).toBe(false);
    const text = describeFailure(result);
    expect(text).toContain('sink `out` differs');
    expect(text).toContain('value.twice: 5 -> 4');
  });

  it('fails when an expected file is missing, and --update writes it', async () => {
    const spec = workspace({ fresh: { 'numbers.jsonl': '{"n":5}\n' } });
    const [c] = await findCases(spec);
    const first = await runCase(c!);
    expect(first.ok).toBe(false);
    expect(describeFailure(first)).toContain('no expected file');
    const updated = await runCase(c!, { update: true });
    expect(updated.ok).toBe(true);
    expect(readFileSync(path.join(c!.dir, 'out.jsonl'), 'utf8')).toBe('{"key":null,"value":{"n":5,"twice":10}}\n');
    expect((await runCase(c!)).ok).toBe(true);
  });

  it('applies case.yaml overrides and reports an invalid spec as a problem', async () => {
    const spec = workspace({
      override: {
        'case.yaml': 'set:\n  steps.big.filter: n > 10\n',
        'numbers.jsonl': '{"n":5}\n{"n":11}\n',
        'out.jsonl': '{"key":null,"value":{"n":11,"twice":22}}\n',
      },
      broken: { 'case.yaml': 'set:\n  steps.big.filter: "n >"\n' },
    });
    const cases = await findCases(spec);
    const byName = Object.fromEntries(cases.map((c) => [c.name, c]));
    expect((await runCase(byName.override!)).ok).toBe(true);
    const broken = await runCase(byName.broken!);
    expect(broken.ok).toBe(false);
    expect(describeFailure(broken)).toContain('E_EXPR_SYNTAX');
  });

  it('does not record a message for a record the sink cannot prepare, counts it, and still acknowledges all input', async () => {
    const routed = `version: 1
name: routed
sources:
  numbers:
    stdin: {}
sinks:
  out:
    from: numbers
    kafka: { brokers: localhost:9092, topic_expr: dest, key: $string(n) }
`;
    const spec = workspace(
      {
        poison: {
          'numbers.jsonl': '{"n":1,"dest":"a"}\n{"n":2}\n{"n":3,"dest":"b"}\n',
          'out.jsonl': '{"topic":"a","key":"1","value":{"n":1,"dest":"a"}}\n{"topic":"b","key":"3","value":{"n":3,"dest":"b"}}\n',
        },
      },
      routed,
      'routed',
    );
    const [c] = await findCases(spec);
    const result = await runCase(c!);
    expect(describeFailure(result)).toBe('');
    expect(result.ok).toBe(true);
    expect(result.sinks[0]!.actual).toHaveLength(2);
    expect(result.outcome).toMatchObject({ failed: 1, recordsOut: { out: 2 } });
    expect(result.outcome!.stats.nodes.out).toMatchObject({ failed: 1 });
  });
});

describe('runCase with integers beyond 2^53', () => {
  it('compares them exactly: an expected value one off in the last digit fails', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-golden-big-'));
    writeFileSync(path.join(dir, 'pass.yaml'), 'version: 1\nname: pass\nsources:\n  numbers:\n    stdin: {}\nsinks:\n  out:\n    from: numbers\n    stdout: {}\n');
    const caseDir = path.join(dir, 'tests', 'pass', 'big');
    mkdirSync(caseDir, { recursive: true });
    writeFileSync(path.join(caseDir, 'numbers.jsonl'), '{"n":1735813800123456789}\n');
    writeFileSync(path.join(caseDir, 'out.jsonl'), '{"key":null,"value":{"n":1735813800123456789}}\n');
    const [c] = await findCases(path.join(dir, 'pass.yaml'));
    expect((await runCase(c!)).ok).toBe(true);
    // JSON.parse would round both of these to the same double.
    writeFileSync(path.join(caseDir, 'out.jsonl'), '{"key":null,"value":{"n":1735813800123456788}}\n');
    expect((await runCase(c!)).ok).toBe(false);
  });
});
