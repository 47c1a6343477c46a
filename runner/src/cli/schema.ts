/**
 * `sluice schema`: the published JSON Schema and the component reference, both generated from the
 * component defs. `npm run schema` is `sluice schema --write`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderComponentDocs } from '../spec/docs.ts';
import { assemblePipelineSchema } from '../spec/pipeline-schema.ts';
import { builtinComponents } from '../spec/registry.ts';
import { EXIT_INVALID, EXIT_OK, parseCommandLine, processIO, UsageError, type CliCommand, type CliIO } from './command.ts';

/** Where the committed schema lives: `schemas/pipeline.schema.json` at the repository root. */
export const SCHEMA_PATH = fileURLToPath(new URL('../../../schemas/pipeline.schema.json', import.meta.url));

/** The schema file's exact text, as `--write` writes it and the staleness test compares it. */
export function pipelineSchemaText(): string {
  return JSON.stringify(assemblePipelineSchema(builtinComponents), null, 2) + '\n';
}

const usage = `Usage: sluice schema [--write | --check | --docs]

Prints the pipeline JSON Schema (draft 2020-12) assembled from every component's schema.

Options:
  --write   write it to schemas/pipeline.schema.json (what \`npm run schema\` does)
  --check   exit 2 if schemas/pipeline.schema.json is not what --write would write
  --docs    print the Markdown reference of every source, format, step and sink instead
`;

export const command: CliCommand = {
  name: 'schema',
  summary: 'print or write the pipeline JSON Schema, or the component reference (--docs)',
  usage,
  async run(argv: string[], io: CliIO = processIO): Promise<number> {
    const { values, positionals } = parseCommandLine(argv, {
      write: { type: 'boolean' },
      check: { type: 'boolean' },
      docs: { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument \`${positionals[0]}\``);
    if ([values.write, values.check, values.docs].filter(Boolean).length > 1) throw new UsageError('use one of --write, --check, --docs');
    if (values.docs) {
      io.stdout(renderComponentDocs(builtinComponents));
      return EXIT_OK;
    }
    const text = pipelineSchemaText();
    if (values.write) {
      await writeFile(SCHEMA_PATH, text);
      io.stdout(`wrote ${SCHEMA_PATH}\n`);
      return EXIT_OK;
    }
    if (values.check) {
      const committed = await readFile(SCHEMA_PATH, 'utf8').catch(() => '');
      if (committed === text) return EXIT_OK;
      io.stderr(`${SCHEMA_PATH} is stale: run \`npm run schema\`\n`);
      return EXIT_INVALID;
    }
    io.stdout(text);
    return EXIT_OK;
  },
};
