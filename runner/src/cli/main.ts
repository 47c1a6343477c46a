/**
 * `sluice <command>`: the entry point runner/bin/sluice.js imports. Each command is a module
 * exporting `command: CliCommand`; adding one is one line in this list.
 */
import { dispatch, type CliCommand } from './command.ts';

const commands: CliCommand[] = [
  (await import('./run.ts')).command,
  (await import('./test.ts')).command,
  (await import('./validate.ts')).command,
  (await import('./graph.ts')).command,
  (await import('./diff.ts')).command,
  (await import('./schema.ts')).command,
  (await import('./version.ts')).command,
];

process.exitCode = await dispatch(commands, process.argv.slice(2));
