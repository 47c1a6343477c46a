/**
 * `sluice test [<file>...]`: golden-file tests of pipeline specs, what users put in their CI.
 * Each case under `pipelines/tests/<stem>/<case>/` runs with files instead of sources and sinks,
 * deterministically; outputs are compared with the expected files and differences printed as a diff.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { findCases, casesDirOf } from '../golden/cases.ts';
import { describeFailure, runCase } from '../golden/run-case.ts';
import { EXIT_OK, parseCommandLine, processIO, type CliCommand } from './command.ts';

/** A golden case differed or could not run (as test runners do, not 2: the specs may be valid). */
const EXIT_FAILED = 1;

const usage = `Usage: sluice test [<file>...] [--update] [--case <name>]

Runs the golden-file cases of each pipeline spec (default: pipelines/*.yaml).
Cases live beside the spec in tests/<spec name>/<case>/:
  <source>.jsonl   input: one raw message value per line, for each source
  <sink>.jsonl     expected output: one {"key":...,"value":...} per line, for each sink
  case.yaml        optional: description, set: {path: value}, profile, env

Options:
  --update         rewrite the expected files with what the pipeline now produces
  --case <name>    run only the cases with this name
Exit codes: 0 every case passed, 1 a case failed.
`;

async function defaultSpecs(): Promise<string[]> {
  try {
    return (await readdir('pipelines'))
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => path.join('pipelines', f));
  } catch {
    return [];
  }
}

export const command: CliCommand = {
  name: 'test',
  summary: 'run the golden-file tests of pipeline specs',
  usage,
  async run(argv, io = processIO) {
    const { values, positionals } = parseCommandLine(argv, {
      update: { type: 'boolean', default: false },
      case: { type: 'string' },
    });
    const files = positionals.length > 0 ? positionals : await defaultSpecs();
    let passed = 0;
    let failed = 0;
    for (const file of files) {
      const cases = (await findCases(file)).filter((c) => values.case === undefined || c.name === values.case);
      if (cases.length === 0) {
        io.stdout(`-    ${file}: no cases in ${casesDirOf(file)}/\n`);
        continue;
      }
      for (const c of cases) {
        const label = `${path.basename(file)} ${c.name}`;
        const result = await runCase(c, { update: values.update ?? false });
        if (result.ok) {
          passed++;
          io.stdout(`ok   ${label}${values.update ? ' (updated)' : ''}\n`);
          for (const note of result.notes) io.stdout(`     note: ${note}\n`);
        } else {
          failed++;
          io.stdout(`FAIL ${label}\n${indent(describeFailure(result))}\n`);
        }
      }
    }
    io.stdout(`\ngolden: ${passed} passed, ${failed} failed\n`);
    return failed > 0 ? EXIT_FAILED : EXIT_OK;
  },
};

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `     ${l}`)
    .join('\n');
}
