/**
 * case.yaml `interleave`: the order in which a golden case's sources hand over their lines. Parsed
 * by golden/cases.ts, driven by golden/run-case.ts; a `latest` join, whose answers depend on which
 * input it read first, shows that the order given is the order the steps see.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCases } from '../../src/golden/cases.ts';
import { describeFailure, runCase } from '../../src/golden/run-case.ts';

const SPEC = `version: 1
name: people
sources:
  changes:
    stdin: {}
  events:
    stdin: {}
steps:
  people:
    from: changes
    table:
      key: id
  joined:
    from: events
    join:
      table: people
      on: person
      as: who
      type: left
      mode: latest
sinks:
  out:
    from: joined
    stdout: {}
`;

/** Two versions of person 1, and three events about them. */
const INPUT = {
  'changes.jsonl': '{"id":1,"name":"first"}\n{"id":1,"name":"second"}\n',
  'events.jsonl': '{"e":1,"person":1}\n{"e":2,"person":1}\n\n{"e":3,"person":1}\n',
};

const out = (...names: (string | null)[]) => names.map((name, i) => JSON.stringify({ key: null, value: { e: i + 1, person: 1, who: name === null ? null : { id: 1, name } } })).join('\n') + '\n';

function workspace(cases: Record<string, Record<string, string>>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-interleave-'));
  writeFileSync(path.join(dir, 'people.yaml'), SPEC);
  for (const [name, files] of Object.entries(cases)) {
    const caseDir = path.join(dir, 'tests', 'people', name);
    mkdirSync(caseDir, { recursive: true });
    for (const [file, text] of Object.entries(files)) writeFileSync(path.join(caseDir, file), text);
  }
  return path.join(dir, 'people.yaml');
}

const SHAPE = '`interleave` in case.yaml must be a list of `{ <source>: <lines> }` and `{ clock: <ISO time> }` entries';

describe('case.yaml interleave', () => {
  it('reads a list of { source: lines } entries', async () => {
    const spec = workspace({ ordered: { 'case.yaml': 'interleave:\n  - events: 1\n  - changes: 2\n  - events: 1\n' } });
    const [c] = await findCases(spec);
    expect(c!.interleave).toEqual([
      { source: 'events', lines: 1 },
      { source: 'changes', lines: 2 },
      { source: 'events', lines: 1 },
    ]);
  });

  const bad: Record<string, string> = {
    'not a list': 'interleave:\n  events: 1\n',
    'a scalar': 'interleave: events\n',
    'an entry that is no map': 'interleave:\n  - events\n',
    'an entry with two sources': 'interleave:\n  - { events: 1, changes: 1 }\n',
    'an empty entry': 'interleave:\n  - {}\n',
    'lines that are no number': 'interleave:\n  - events: two\n',
    'zero lines': 'interleave:\n  - events: 0\n',
    'negative lines': 'interleave:\n  - events: -1\n',
    'a fraction of a line': 'interleave:\n  - events: 1.5\n',
  };
  for (const [what, text] of Object.entries(bad)) {
    it(`refuses ${what}, naming the file and the shape`, async () => {
      const spec = workspace({ broken: { 'case.yaml': text } });
      const found = findCases(spec);
      await expect(found).rejects.toThrow(SHAPE);
      await expect(found).rejects.toMatchObject({ code: 'E_CASE', where: expect.stringContaining(path.join('broken', 'case.yaml')) });
    });
  }

  it('hands the lines over in the order given, one batch per entry, then what is left: a latest join shows the order', async () => {
    const spec = workspace({
      // Each event is read after a different number of changes.
      alternating: {
        ...INPUT,
        'case.yaml': 'interleave:\n  - events: 1\n  - changes: 1\n  - events: 1\n  - changes: 1\n',
        'out.jsonl': out(null, 'first', 'second'),
      },
      'changes-first': { ...INPUT, 'case.yaml': 'interleave:\n  - changes: 2\n', 'out.jsonl': out('second', 'second', 'second') },
      'events-first': { ...INPUT, 'case.yaml': 'interleave:\n  - events: 3\n', 'out.jsonl': out(null, null, null) },
      // More lines than a file has: all it has.
      'more-than-there-is': { ...INPUT, 'case.yaml': 'interleave:\n  - changes: 1\n  - events: 10\n', 'out.jsonl': out('first', 'first', 'first') },
    });
    const cases = await findCases(spec);
    expect(cases.map((c) => c.name)).toEqual(['alternating', 'changes-first', 'events-first', 'more-than-there-is']);
    for (const c of cases) {
      const result = await runCase(c);
      expect(describeFailure(result), c.name).toBe('');
      expect(result.ok).toBe(true);
      expect(result.outcome!.recordsIn).toBe(5);
    }
  });

  it('reports an interleave naming a source the pipeline does not have, and does not hang', async () => {
    const spec = workspace({ typo: { ...INPUT, 'case.yaml': 'interleave:\n  - changes: 1\n  - evnets: 1\n', 'out.jsonl': '' } });
    const [c] = await findCases(spec);
    const result = await runCase(c!);
    expect(result.ok).toBe(false);
    const text = describeFailure(result);
    expect(text).toContain('the run failed');
    expect(text).toContain('case.yaml interleave names `evnets`, which is not a source of the pipeline (sources: changes, events)');
  });
});
