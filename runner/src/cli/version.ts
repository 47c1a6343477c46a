/** `sluice version` (also `sluice --version` and `-V`): the version in sluice's package.json. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT_OK, parseCommandLine, processIO, UsageError, type CliCommand } from './command.ts';

const PACKAGE_JSON = new URL('../../../package.json', import.meta.url);

/** The `version` of sluice's own package.json. */
export function packageVersion(): string {
  const parsed: unknown = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8'));
  if (typeof parsed === 'object' && parsed !== null && 'version' in parsed && typeof parsed.version === 'string') return parsed.version;
  throw new Error(`${fileURLToPath(PACKAGE_JSON)} has no \`version\` string`);
}

export const command: CliCommand = {
  name: 'version',
  summary: 'print the version of sluice (also --version, -V)',
  usage: 'Usage: sluice version   (or sluice --version, sluice -V)\n\nPrints the version of sluice.\n',
  async run(argv, io = processIO) {
    const { positionals } = parseCommandLine(argv, {});
    if (positionals.length > 0) throw new UsageError(`takes no arguments, got \`${positionals[0]}\``);
    io.stdout(`sluice ${packageVersion()}\n`);
    return EXIT_OK;
  },
};
