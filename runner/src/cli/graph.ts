/** `sluice graph <file>`: the compiled graph a spec describes, for a reviewer, without running it. */
import { ConfigError } from '../engine/errors.ts';
import { loadPipeline, renderLoadErrors } from '../plan/load-pipeline.ts';
import { GRAPH_FORMATS, renderPlan } from '../plan/render.ts';
import { runsAsTasks, splitStages, type StageSplit } from '../plan/stages.ts';
import type { Plan } from '../plan/types.ts';
import { EXIT_INVALID, EXIT_OK, oneOf, parseCommandLine, processIO, SPEC_FLAGS, specLoadOptions, UsageError, type CliCommand, type CliIO } from './command.ts';

const usage = `Usage: sluice graph <file> [options]

Prints the compiled graph: every source, step and sink, the edges between them (with their
ports), and one line on what each node does. Secrets are redacted. Connects to nothing.

A pipeline that runs as tasks (one kafka source, state in Kafka) is cut into stages, one consumer
group each, at every window that reads through a repartition topic: the output then also lists the
stages and each repartition (its topic, key and partitions), where records cross processes.

Options:
  --format text|mermaid|dot|json   text (default); mermaid (flowchart, renders on GitHub); Graphviz
                                   dot; json (the graph the live view of sluice run --http draws,
                                   each node's config with its secrets redacted)
  --profile NAME                   apply the spec's profile NAME first
  --set path=value                 change a value the spec has (YAML); repeatable
  --add path=value                 add a source, step, sink or key the spec lacks (YAML); repeatable

Exit codes: 0 printed, 2 the spec is invalid or cannot be cut into stages (errors on stderr),
1 internal error.
`;

export const command: CliCommand = {
  name: 'graph',
  summary: 'print the compiled graph of a spec as text, Mermaid, dot or JSON',
  usage,
  async run(argv: string[], io: CliIO = processIO): Promise<number> {
    const { values, positionals } = parseCommandLine(argv, { format: { type: 'string' }, ...SPEC_FLAGS });
    const format = oneOf(values.format, GRAPH_FORMATS, '--format', 'text');
    if (positionals.length !== 1) throw new UsageError('name exactly one spec file');
    const result = await loadPipeline(positionals[0]!, specLoadOptions(values, io.env));
    if (!result.ok) {
      io.stderr(renderLoadErrors(result));
      return EXIT_INVALID;
    }
    let split: StageSplit | undefined;
    try {
      split = runsAsTasks(result.plan) ? splitStages(result.plan) : undefined;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      io.stderr(`${located(result.plan, err)}error[${err.code}]: ${err.message}\n`);
      return EXIT_INVALID;
    }
    io.stdout(renderPlan(result.plan, format, split));
    return EXIT_OK;
  },
};

/** `file:line:col: ` of the node a ConfigError names (`steps.hourly`), when it is one. */
function located(plan: Plan, err: ConfigError): string {
  const name = err.where?.replace(/^(sources|steps|sinks)\./, '');
  const node = plan.nodes.find((n) => n.name === name);
  return node ? `${node.location.file}:${node.location.line}:${node.location.col}: ` : err.where ? `${err.where}: ` : '';
}
