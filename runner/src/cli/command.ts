/**
 * A `sluice` subcommand: a name, a one-line summary, a usage text and `run`. main.ts lists them;
 * adding a command is one module exporting `command` and one line in that list.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage, SluiceError } from '../engine/errors.ts';
import type { ThreadReportBody } from '../http/threads-server.ts';
import { parseSetArgument, type LoadOptions } from '../spec/load.ts';
import { didYouMean } from '../spec/suggest.ts';

export const EXIT_OK = 0;
/** A bug or an environment failure that is not the spec's fault. */
export const EXIT_INTERNAL = 1;
/** The spec (or the command line) is invalid. */
export const EXIT_INVALID = 2;
/** Stopped by a second signal, without draining (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130;

/** Where a command writes and what environment it sees; tests pass their own. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Set in a thread of `sluice run --threads`: its number, which its log lines carry. */
  thread?: number;
  /**
   * Where a stop request comes from besides SIGINT and SIGTERM (a `--threads` thread: signals
   * reach only the main thread). Called with the listener; returns a function that removes it.
   */
  onStopRequest?: (listener: (signal: NodeJS.Signals) => void) => () => void;
  /**
   * Set in a thread of `sluice run --threads`: resolves once every thread has prepared its run, so
   * that the threads join their consumer groups together, in one rebalance.
   */
  startTogether?: () => Promise<void>;
  /**
   * Set in a thread of `sluice run --threads` (with or without --http): the run hands over how to
   * report its status, readiness and recent errors, and its metrics when asked for them, which the
   * main thread's HTTP server asks for (http/threads-server.ts threadReporter).
   */
  reportWith?: (report: (withMetrics: boolean) => Promise<ThreadReportBody>) => void;
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

/**
 * node:util parseArgs, with its errors turned into UsageErrors. The mistakes people make (an
 * unknown or misspelt option, an option without its value) get a plain sentence and a
 * did-you-mean instead of parseArgs' text.
 */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  const spellings = ['--help', ...Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])])];
  const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    if (option === undefined) throw new UsageError(`unknown option \`${token.rawName}\`${didYouMean(token.rawName, spellings)}`);
    if (option.type === 'string' && token.value === undefined) throw new UsageError(`\`${token.rawName}\` needs a value`);
    if (option.type === 'boolean' && token.inlineValue) throw new UsageError(`\`${token.rawName}\` takes no value`);
  }
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

/** The options `sluice` takes before a command; `--version` and `-V` run the `version` command. */
const TOP_LEVEL_OPTIONS = ['--help', '-h', '--version', '-V'];

/**
 * Runs `sluice <command> ...`: help (also for no arguments), the version, usage errors (exit 2)
 * and internal errors (exit 1) are handled here.
 */
export async function dispatch(commands: readonly CliCommand[], argv: string[], io: CliIO = processIO): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const wanted = first === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    io.stdout(wanted ? wanted.usage : overview(commands));
    return EXIT_OK;
  }
  const name = first === '--version' || first === '-V' ? 'version' : first;
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const what = first.startsWith('-') ? 'option' : 'command';
    const known = first.startsWith('-') ? TOP_LEVEL_OPTIONS : commands.map((c) => c.name);
    io.stderr(`sluice: unknown ${what} \`${first}\`${didYouMean(first, known)}\nRun \`sluice --help\` for the commands.\n`);
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
