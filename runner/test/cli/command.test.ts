/**
 * `sluice` as a Unix tool: no arguments prints help and exits 0, `--version`/`-V`/`version` print
 * the version, and a mistyped option or command gets a plain sentence with a did-you-mean instead
 * of node:util's parser text (issue 11, item 15).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dispatch, parseCommandLine, type CliCommand } from '../../src/cli/command.ts';
import { command as validate } from '../../src/cli/validate.ts';
import { command as version } from '../../src/cli/version.ts';
import { captureIO } from './cli-io.ts';

const { version: packageVersion } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
const commands: CliCommand[] = [validate, version];

describe('sluice', () => {
  it('prints the overview on no arguments and exits 0', async () => {
    const io = captureIO();
    expect(await dispatch(commands, [], io)).toBe(0);
    expect(io.out()).toContain('Usage: sluice <command> [options]');
    expect(io.out()).toContain('  version   print the version of sluice');
    expect(io.err()).toBe('');
  });

  it.each([['--version'], ['-V'], ['version']])('prints the version of package.json for `sluice %s`', async (arg) => {
    const io = captureIO();
    expect(await dispatch(commands, [arg], io)).toBe(0);
    expect(io.out()).toBe(`sluice ${packageVersion}\n`);
  });

  it('says an unknown top-level option or command plainly, with a did-you-mean, exit 2', async () => {
    const option = captureIO();
    expect(await dispatch(commands, ['--verison'], option)).toBe(2);
    expect(option.err()).toBe('sluice: unknown option `--verison` (did you mean `--version`?)\nRun `sluice --help` for the commands.\n');
    const command = captureIO();
    expect(await dispatch(commands, ['valdiate', 'x.yaml'], command)).toBe(2);
    expect(command.err().split('\n')[0]).toBe('sluice: unknown command `valdiate` (did you mean `validate`?)');
  });

  it("says an unknown option of a command plainly, with a did-you-mean and the command's usage", async () => {
    const io = captureIO();
    expect(await dispatch(commands, ['validate', 'x.yaml', '--profil', 'local'], io)).toBe(2);
    expect(io.err().split('\n')[0]).toBe('sluice validate: unknown option `--profil` (did you mean `--profile`?)');
    expect(io.err()).toContain('Usage: sluice validate');
    expect(io.err()).not.toContain('To specify a positional argument');
  });
});

describe('parseCommandLine', () => {
  const options = { profile: { type: 'string' }, update: { type: 'boolean' }, case: { type: 'string', short: 'c' } } as const;

  it('names an option given without its value, and a flag given one', () => {
    expect(() => parseCommandLine(['--profile'], options)).toThrow('`--profile` needs a value');
    expect(() => parseCommandLine(['--update=yes'], options)).toThrow('`--update` takes no value');
  });

  it('suggests short and long spellings, and parses what is right', () => {
    expect(() => parseCommandLine(['-C', 'x'], options)).toThrow('unknown option `-C` (did you mean `-c`?)');
    expect(parseCommandLine(['a.yaml', '-c', 'one', '--update'], options)).toMatchObject({ values: { case: 'one', update: true }, positionals: ['a.yaml'] });
  });
});
