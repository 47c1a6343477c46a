/**
 * Every golden case of every spec in pipelines/ passes: the same check as `sluice test`, inside
 * `npm test`. The employee pipeline must have cases, so this cannot pass by finding nothing.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCases } from '../../src/golden/cases.ts';
import { describeFailure, runCase } from '../../src/golden/run-case.ts';

const specs = readdirSync('pipelines')
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => path.join('pipelines', f));

describe('golden cases of pipelines/*.yaml', () => {
  it('include the employee pipeline cases', async () => {
    const cases = await findCases('pipelines/employee-activity.yaml');
    expect(cases.map((c) => c.name)).toEqual(expect.arrayContaining(['boundaries', 'changes-ignored', 'late-and-out-of-order']));
  });

  for (const spec of specs) {
    it(`${spec}: every case matches its expected output`, async () => {
      const cases = await findCases(spec);
      const failures: string[] = [];
      for (const c of cases) {
        const result = await runCase(c);
        if (!result.ok) failures.push(`${c.name}:\n${describeFailure(result)}`);
      }
      expect(failures.join('\n\n')).toBe('');
    });
  }
});
