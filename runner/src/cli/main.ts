/**
 * `sluice <command>`: the entry point runner/bin/sluice.js imports. Each command is a module
 * exporting `command: CliCommand`; adding one is one line in this list.
 */
import { dispatch, EXIT_OK, type CliCommand } from './command.ts';

// A reader that goes away (`sluice run ... | head -3`) closes standard output: for a Unix filter
// that is a clean stop, not a crash. What was not written was not acknowledged either, so a
// restart reads it again. Any other error on stdout stays fatal.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(EXIT_OK);
});

const commands: CliCommand[] = [
  (await import('./run.ts')).command,
  (await import('./status.ts')).command,
  (await import('./test.ts')).command,
  (await import('./validate.ts')).command,
  (await import('./graph.ts')).command,
  (await import('./diff.ts')).command,
  (await import('./schema.ts')).command,
  (await import('./version.ts')).command,
];

process.exitCode = await dispatch(commands, process.argv.slice(2));
