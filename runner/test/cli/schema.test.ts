import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { command as schema, componentDocsText, DOCS_PATH, pipelineSchemaText, SCHEMA_PATH } from '../../src/cli/schema.ts';
import { loadSpecText } from '../../src/spec/load.ts';
import { builtinComponents } from '../../src/spec/registry.ts';
import { captureIO } from './cli-io.ts';

const PIPELINES = join(import.meta.dirname, '../../../pipelines');

function strictAjv(): Ajv2020 {
  // strictRequired is off: component schemas say "one of these keys" as oneOf: [{ required: [a] }, ...].
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  for (const keyword of ['x-jsonata', 'x-duration', 'x-secret', 'x-cron', 'x-timezone']) ajv.addKeyword({ keyword, schemaType: 'boolean' });
  return ajv;
}

/** A spec's value with `${VAR:-default}` resolved to its default. */
function specValue(file: string): unknown {
  return loadSpecText(file, readFileSync(file, 'utf8'), { env: {} }).value;
}

describe('schemas/pipeline.schema.json', () => {
  it('is what `npm run schema` generates from the components (run it after changing a component)', () => {
    expect(readFileSync(SCHEMA_PATH, 'utf8')).toBe(pipelineSchemaText());
  });

  it('comes with docs/components.md, also current', () => {
    expect(readFileSync(DOCS_PATH, 'utf8')).toBe(componentDocsText());
  });

  const published = JSON.parse(pipelineSchemaText()) as Record<string, unknown>;
  const validate = strictAjv().compile(published);

  it('is draft 2020-12 and compiles in ajv strict mode', () => {
    expect(published.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(typeof validate).toBe('function');
  });

  it('accepts every pipeline in pipelines/', () => {
    const files = readdirSync(PIPELINES).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const ok = validate(specValue(join(PIPELINES, f)));
      expect(ok ? [] : validate.errors, f).toEqual([]);
    }
  });

  it('agrees with the validator on the corpus: it accepts the base and refuses every schema-level mistake', () => {
    const dir = join(import.meta.dirname, '../spec/corpus');
    const schemaCodes = /^# expect: \S+ (E_SCHEMA_\w+|E_DURATION|E_KIND_\w+|E_FORMAT_UNKNOWN|E_NAME) /m;
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    const verdicts = files.flatMap((f) => {
      const text = readFileSync(join(dir, f), 'utf8');
      const expectsSchemaError = schemaCodes.test(text);
      if (!expectsSchemaError && !f.startsWith('00-')) return [];
      return [`${f}: ${validate(loadSpecText(f, text, { env: {} }).value) ? 'accepted' : 'refused'}`];
    });
    expect(verdicts.length).toBeGreaterThan(20);
    expect(verdicts.filter((v) => (v.startsWith('00-') ? !v.endsWith('accepted') : !v.endsWith('refused')))).toEqual([]);
  });

  it('refuses an entry with two kinds and an unknown top-level key', () => {
    const kinds = builtinComponents.steps.map((s) => s.name);
    const base = { version: 1, name: 'x', sources: {}, sinks: {} };
    expect(validate({ ...base, extra: 1 })).toBe(false);
    if (kinds.length >= 2) {
      expect(validate({ ...base, steps: { s: { from: 'a', [kinds[0]!]: {}, [kinds[1]!]: {} } } })).toBe(false);
    }
  });
});

describe('sluice schema', () => {
  it('prints the schema, and --check passes on the committed file', async () => {
    const io = captureIO();
    expect(await schema.run([], io)).toBe(0);
    expect(io.out()).toBe(pipelineSchemaText());
    expect(await schema.run(['--check'], captureIO())).toBe(0);
  });

  it('--docs prints a Markdown section per component with a row per field', async () => {
    const io = captureIO();
    expect(await schema.run(['--docs'], io)).toBe(0);
    const docs = io.out();
    expect(docs).toMatch(/^# Component reference\n/);
    for (const family of ['sources', 'formats', 'steps', 'sinks'] as const) {
      for (const def of builtinComponents[family]) {
        expect(docs).toContain(`### \`${def.name}\`\n\n${def.summary}\n`);
        const properties = Object.keys((def.schema.properties as Record<string, unknown> | undefined) ?? {});
        const prefix = family === 'steps' ? '' : `${def.name}.`;
        for (const p of properties) expect(docs).toContain(`| \`${prefix}${p}\` |`);
      }
    }
  });

  it('refuses two modes at once', async () => {
    await expect(schema.run(['--write', '--docs'], captureIO())).rejects.toThrow('use one of --write, --check, --docs');
  });
});
