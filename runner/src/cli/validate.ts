/** `sluice validate <files...>`: every check, every error at once, positions in the files. */
import { renderDiagnostic, type Diagnostic } from '../spec/diagnostic.ts';
import { loadPipeline } from '../plan/load-pipeline.ts';
import { EXIT_INVALID, EXIT_OK, oneOf, parseCommandLine, processIO, SPEC_FLAGS, specLoadOptions, UsageError, type CliCommand, type CliIO } from './command.ts';

const usage = `Usage: sluice validate <files...> [options]

Checks each pipeline spec fully and reports every error at once: YAML syntax, the schema of
every source, step and sink, JSONata syntax (at the exact position inside the expression), the
graph (unknown \`from\` names and ports, cycles, unread sources, steps whose output goes nowhere,
duplicate names) and \`\${VAR}\` references with neither a value nor a default. Connects to nothing.

Options:
  --profile NAME       apply the spec's profile NAME first
  --set path=value     change a value the spec has (YAML), e.g. --set sources.activities.kafka.topic=t;
                       repeatable; a path that does not exist is an error, never a new source
  --add path=value     add what the spec lacks, e.g. --add 'sinks.copy={from: hourly, stdout: {}}';
                       repeatable, applied before --set
  --format text|json   text (default): rustc-style errors on stderr; json: one report on stdout

Exit codes: 0 all valid, 2 invalid (or a usage error), 1 internal error.
`;

export const command: CliCommand = {
  name: 'validate',
  summary: 'check pipeline specs and report every error with its line and column',
  usage,
  async run(argv: string[], io: CliIO = processIO): Promise<number> {
    const { values, positionals } = parseCommandLine(argv, { ...SPEC_FLAGS, format: { type: 'string' } });
    const format = oneOf(values.format, ['text', 'json'] as const, '--format', 'text');
    if (positionals.length === 0) throw new UsageError('name at least one spec file');
    const options = specLoadOptions(values, io.env);

    const reports: { file: string; valid: boolean; diagnostics: Diagnostic[]; nodes?: number }[] = [];
    for (const file of positionals) {
      const result = await loadPipeline(file, options);
      if (result.ok) {
        reports.push({ file, valid: true, diagnostics: [], nodes: result.plan.nodes.length });
      } else {
        reports.push({ file, valid: false, diagnostics: result.diagnostics });
        if (format === 'text') {
          for (const d of result.diagnostics) io.stderr(renderDiagnostic(d, result.loaded.text) + '\n\n');
        }
      }
    }
    const invalid = reports.filter((r) => !r.valid);
    if (format === 'json') {
      io.stdout(JSON.stringify({ valid: invalid.length === 0, files: reports.map(({ file, valid, diagnostics }) => ({ file, valid, diagnostics })) }, null, 2) + '\n');
    } else {
      for (const r of reports) if (r.valid) io.stdout(`ok  ${r.file} (${r.nodes} nodes)\n`);
      if (invalid.length) {
        const n = invalid.reduce((sum, r) => sum + r.diagnostics.length, 0);
        io.stderr(`${n} error${n === 1 ? '' : 's'} in ${invalid.length} of ${reports.length} file${reports.length === 1 ? '' : 's'}\n`);
      }
    }
    return invalid.length ? EXIT_INVALID : EXIT_OK;
  },
};
