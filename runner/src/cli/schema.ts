/**
 * `sluice schema`: the published JSON Schema and the component reference, both generated from the
 * component defs. `npm run schema` is `sluice schema --write`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderComponentDocs } from '../spec/docs.ts';
import { assemblePipelineSchema } from '../spec/pipeline-schema.ts';
import { builtinComponents } from '../spec/registry.ts';
import { EXIT_INVALID, EXIT_OK, parseCommandLine, processIO, UsageError, type CliCommand, type CliIO } from './command.ts';

/** Where the committed schema lives: `schemas/pipeline.schema.json` at the repository root. */
export const SCHEMA_PATH = fileURLToPath(new URL('../../../schemas/pipeline.schema.json', import.meta.url));
/** The generated component reference the README links to. */
export const DOCS_PATH = fileURLToPath(new URL('../../../docs/components.md', import.meta.url));

/** The schema file's exact text, as `--write` writes it and the staleness test compares it. */
export function pipelineSchemaText(): string {
  return JSON.stringify(assemblePipelineSchema(builtinComponents), null, 2) + '\n';
}

export function componentDocsText(): string {
  return renderComponentDocs(builtinComponents);
}

/** Both generated files and what they should contain. */
function generatedFiles(): { path: string; text: string }[] {
  return [
    { path: SCHEMA_PATH, text: pipelineSchemaText() },
    { path: DOCS_PATH, text: componentDocsText() },
  ];
}

const usage = `Usage: sluice schema [--write | --check | --docs]

Prints the pipeline JSON Schema (draft 2020-12) assembled from every component's schema.

Options:
  --write   write schemas/pipeline.schema.json and docs/components.md (what \`npm run schema\` does)
  --check   exit 2 if either file is not what --write would write
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
      io.stdout(componentDocsText());
      return EXIT_OK;
    }
    if (values.write) {
      for (const f of generatedFiles()) {
        await mkdir(dirname(f.path), { recursive: true });
        await writeFile(f.path, f.text);
        io.stdout(`wrote ${f.path}\n`);
      }
      return EXIT_OK;
    }
    if (values.check) {
      let stale = 0;
      for (const f of generatedFiles()) {
        const committed = await readFile(f.path, 'utf8').catch(() => '');
        if (committed === f.text) continue;
        io.stderr(`${f.path} is stale: run \`npm run schema\`\n`);
        stale++;
      }
      return stale ? EXIT_INVALID : EXIT_OK;
    }
    io.stdout(pipelineSchemaText());
    return EXIT_OK;
  },
};
