/**
 * A `sluice` subcommand: a name, a one-line summary, a usage text and `run`. main.ts lists them;
 * adding a command is one module exporting `command` and one line in that list.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage, SluiceError } from '../engine/errors.ts';
import { parseSetArgument, type LoadOptions } from '../spec/load.ts';

export const EXIT_OK = 0;
/** A bug or an environment failure that is not the spec's fault. */
export const EXIT_INTERNAL = 1;
/** The spec (or the command line) is invalid. */
export const EXIT_INVALID = 2;

/** Where a command writes and what environment it sees; tests pass their own. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
}

export const processIO: CliIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
};

export interface CliCommand {
  name: string;
  summary: string;
  /** Shown by `sluice <name> --help` and on usage errors. */
  usage: string;
  /** Returns the exit code. */
  run(argv: string[], io?: CliIO): Promise<number>;
}

/** A mistake on the command line: printed with the command's usage, exit 2. */
export class UsageError extends SluiceError {
  constructor(message: string) {
    super('E_USAGE', message);
  }
}

/** node:util parseArgs, with its errors turned into UsageErrors. */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string, fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got \`${value}\``);
}

/** The flags run, validate and graph share to say what to load: `--profile NAME`, repeatable `--set path=value` and `--add path=value`. */
export const SPEC_FLAGS = {
  profile: { type: 'string' },
  set: { type: 'string', multiple: true },
  add: { type: 'string', multiple: true },
} as const;

/** Those flags and the environment, as loadPipeline takes them; a malformed `--set` or `--add` is a usage error. */
export function specLoadOptions(values: { profile?: string | undefined; set?: string[] | undefined; add?: string[] | undefined }, env: CliIO['env']): LoadOptions {
  try {
    const sets = (values.set ?? []).map((arg) => parseSetArgument(arg, '--set'));
    const adds = (values.add ?? []).map((arg) => parseSetArgument(arg, '--add'));
    return { env, sets, adds, ...(values.profile !== undefined ? { profile: values.profile } : {}) };
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

function overview(commands: readonly CliCommand[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'sluice: declarative stream processing, one YAML file per pipeline.',
    '',
    'Usage: sluice <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `sluice <command> --help` for a command\'s options.',
    '',
  ].join('\n');
}

/** Runs `sluice <command> ...`: help, usage errors (exit 2) and internal errors (exit 1) are handled here. */
export async function dispatch(commands: readonly CliCommand[], argv: string[], io: CliIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const wanted = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    io.stdout(wanted ? wanted.usage : overview(commands));
    return name === undefined ? EXIT_INVALID : EXIT_OK;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr(`sluice: unknown command \`${name}\`\n\n${overview(commands)}`);
    return EXIT_INVALID;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(command.usage);
    return EXIT_OK;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`sluice ${command.name}: ${err.message}\n\n${command.usage}`);
      return EXIT_INVALID;
    }
    const detail = io.env.SLUICE_DEBUG && err instanceof Error && err.stack ? `\n${err.stack}` : '';
    io.stderr(`sluice ${command.name}: internal error: ${errorMessage(err)}${detail}\n`);
    return EXIT_INTERNAL;
  }
}
