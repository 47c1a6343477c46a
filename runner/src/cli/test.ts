/**
 * `sluice test [<file>...]`: golden-file tests of pipeline specs, what users put in their CI.
 * Each case under `pipelines/tests/<stem>/<case>/` runs with files instead of sources and sinks,
 * deterministically; outputs are compared with the expected files and differences printed as a diff.
 */
import { access, readdir } from 'node:fs/promises';
import path from 'node:path';
import { findCases, casesDirOf } from '../golden/cases.ts';
import { describeFailure, runCase } from '../golden/run-case.ts';
import { didYouMean } from '../spec/suggest.ts';
import { EXIT_OK, parseCommandLine, processIO, type CliCommand } from './command.ts';

/** A golden case differed or could not run, or nothing was tested (as test runners do, not 2: the specs may be valid). */
const EXIT_FAILED = 1;

const usage = `Usage: sluice test [<file>...] [--update] [--case <name>] [--allow-empty]

Runs the golden-file cases of each pipeline spec (default: pipelines/*.yaml).
Cases live beside the spec in tests/<spec name>/<case>/:
  <source>.jsonl   input: one raw message value per line, for each source
  <sink>.jsonl     expected output: one {"key":...,"value":...} per line, for each sink
  case.yaml        optional: description, set: {path: value}, profile, env

Options:
  --update         rewrite the expected files that differ from what the pipeline now produces
                   (each case says "updated" or "unchanged")
  --case <name>    run only the cases with this name
  --allow-empty    let a spec without cases pass
Testing nothing fails: no spec found, a spec without cases (unless --allow-empty), or a --case
that no spec has.
Exit codes: 0 every case passed, 1 a case failed or nothing was tested.
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

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
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
      'allow-empty': { type: 'boolean', default: false },
    });
    const files = positionals.length > 0 ? positionals : await defaultSpecs();
    let passed = 0;
    let failed = 0;
    // A test run that tested nothing must not pass: CI would stay green over a typo.
    const fail = (text: string) => {
      failed++;
      io.stdout(`FAIL ${text}\n`);
    };
    if (files.length === 0) fail(`no pipeline specs: none named, and no pipelines/*.yaml in ${process.cwd()}`);
    const caseNames = new Set<string>();
    let selected = 0;
    for (const file of files) {
      if (!(await exists(file))) {
        fail(`${file}: no such file`);
        continue;
      }
      const all = await findCases(file);
      for (const c of all) caseNames.add(c.name);
      if (all.length === 0) {
        if (values['allow-empty']) io.stdout(`-    ${file}: no cases in ${casesDirOf(file)}/ (allowed by --allow-empty)\n`);
        else fail(`${file}: no cases in ${casesDirOf(file)}/ (add one, or pass --allow-empty)`);
        continue;
      }
      const cases = all.filter((c) => values.case === undefined || c.name === values.case);
      selected += cases.length;
      for (const c of cases) {
        const label = `${path.basename(file)} ${c.name}`;
        const result = await runCase(c, { update: values.update ?? false });
        if (result.ok) {
          passed++;
          const change = result.sinks.some((s) => s.updated) ? ' (updated)' : ' (unchanged)';
          io.stdout(`ok   ${label}${values.update ? change : ''}\n`);
          for (const note of result.notes) io.stdout(`     note: ${note}\n`);
        } else {
          failed++;
          io.stdout(`FAIL ${label}\n${indent(describeFailure(result))}\n`);
        }
      }
    }
    if (values.case !== undefined && selected === 0) {
      fail(`--case \`${values.case}\`: no case of that name${didYouMean(values.case, caseNames)}`);
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
