/** `sluice diff <old> <new>`: what deploying a spec edit does to stored state, positions and outputs, before the deploy. */
import { loadPipeline, renderLoadErrors } from '../plan/load-pipeline.ts';
import { comparePlans, renderPlanChange } from '../plan/plan-change.ts';
import { EXIT_INVALID, EXIT_OK, oneOf, parseCommandLine, processIO, SPEC_FLAGS, specLoadOptions, UsageError, type CliCommand, type CliIO } from './command.ts';

/** Deploying the new spec needs a state reset or replay, or leaves state behind: a CI gate stops here. */
export const EXIT_STATE_MOVES = 3;

const usage = `Usage: sluice diff <old.yaml> <new.yaml> [options]

Tells what deploying new.yaml in place of old.yaml does to the pipeline's durable state. Per
stateful step (window): keep (same definition, the stored state carries over), reset (the
definition changed: the stored state cannot be used; \`sluice run --reset-state\` drops it, or a
replay from the source start rebuilds it), new (starts empty) or removed (its state and changelog
topic <pipeline>-<step>-changelog are left behind). A window's lateness, idle, emit and max_rows are not
part of its definition: changing them keeps the state. Also reported: a renamed pipeline (its
name is the default application id, which keys all state) or stateful step (state is keyed by
step name), a Kafka source's group or topics or a postgres-cdc slot (committed positions do not
follow), and sinks whose topic, table or file changed, or that were added or removed. Connects
to nothing.

Options:
  --format text|json   text (default); json: one verdict object on stdout
  --profile NAME       apply the spec's profile NAME to both files first
  --set path=value     override a value (YAML) in both files; repeatable

Exit codes: 0 all state carries over (output changes alone are reported, not failed), 3 a reset
or replay is needed or state would be left behind, 2 a spec is invalid (or a usage error), 1
internal error.
`;

export const command: CliCommand = {
  name: 'diff',
  summary: 'tell what a spec edit does to stored state, positions and outputs before a deploy',
  usage,
  async run(argv: string[], io: CliIO = processIO): Promise<number> {
    const { values, positionals } = parseCommandLine(argv, { format: { type: 'string' }, ...SPEC_FLAGS });
    const format = oneOf(values.format, ['text', 'json'] as const, '--format', 'text');
    const [beforeFile, afterFile, ...extra] = positionals;
    if (beforeFile === undefined || afterFile === undefined || extra.length > 0) throw new UsageError('name two spec files: the deployed one, then the edited one');
    const options = specLoadOptions(values, io.env);
    const before = await loadPipeline(beforeFile, options);
    const after = await loadPipeline(afterFile, options);
    if (!before.ok) io.stderr(renderLoadErrors(before));
    if (!after.ok) io.stderr(renderLoadErrors(after));
    if (!before.ok || !after.ok) return EXIT_INVALID;

    const change = comparePlans(before.plan, after.plan);
    const exit = change.stateMoves.length ? EXIT_STATE_MOVES : EXIT_OK;
    if (format === 'json') {
      io.stdout(JSON.stringify({ before: beforeFile, after: afterFile, exit, stateCarriesOver: exit === EXIT_OK, ...change }, null, 2) + '\n');
    } else {
      io.stdout(renderPlanChange(change, { before: beforeFile, after: afterFile }));
    }
    return exit;
  },
};
