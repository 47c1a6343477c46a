import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateStep, type ValidateConfig } from '../../../src/components/steps/validate.ts';
import { command as validateCommand } from '../../../src/cli/validate.ts';
import type { ComponentContext, JsonSchema } from '../../../src/engine/component.ts';
import { ConfigError, RecordError } from '../../../src/engine/errors.ts';
import { captureIO } from '../../cli/cli-io.ts';
import { context, recordsOf, runStep } from './step-harness.ts';

const ACTIVITY: JsonSchema = {
  type: 'object',
  required: ['employee_id', 'activity_type'],
  properties: {
    employee_id: { type: 'integer', minimum: 1 },
    activity_type: { enum: ['login', 'logout', 'page_view', 'download', 'upload'] },
  },
};

const step = (validate: ValidateConfig['validate'], ctx: ComponentContext = context('checked')) => validateStep.create({ validate }, ctx);

/** The messages of the failed records, in order. */
const messages = (failed: { error: Error }[]) => failed.map((f) => f.error.message);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('validate step', () => {
  it('passes matching records on unchanged (the input array itself when all match)', async () => {
    const records = recordsOf([
      { employee_id: 1, activity_type: 'login' },
      { employee_id: 7, activity_type: 'upload', extra: true },
    ]);
    const r = await runStep(step({ schema: ACTIVITY }), records);
    expect(r.emittedArrays).toEqual([records]);
    expect(r.emittedArrays[0]).toBe(records);
    expect(r.ports).toEqual(['out']);
    expect(r.failed).toEqual([]);
    expect(r.dropped).toEqual([]);
  });

  it('sends records that do not match to out.fail with a RecordError naming the step and each error by path', async () => {
    const records = recordsOf([
      { employee_id: 1, activity_type: 'login' },
      { employee_id: 0, activity_type: 'dance' },
      { activity_type: 'logout' },
      { employee_id: 2, activity_type: 'logout' },
    ]);
    const r = await runStep(step({ schema: ACTIVITY }), records);
    expect(r.emitted.map((x) => x.position.offset)).toEqual(['0', '3']);
    expect(r.failed.map((f) => f.record)).toEqual([records[1], records[2]]);
    for (const { error } of r.failed) {
      expect(error).toBeInstanceOf(RecordError);
      expect(error).toMatchObject({ code: 'E_VALIDATE', where: 'steps.checked' });
    }
    expect(messages(r.failed)).toEqual([
      'validate `checked`: the value does not match the schema: /employee_id must be >= 1; /activity_type must be equal to one of the allowed values',
      "validate `checked`: the value does not match the schema: (root) must have required property 'employee_id'",
    ]);
  });

  it('reports every error, the first five by name and then how many more, without the values', async () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => [k, { type: 'integer' }])),
      required: ['h'],
    };
    const value = { a: 'secret-a', b: 'secret-b', c: 'secret-c', d: 'secret-d', e: 'secret-e', f: 'secret-f', g: 'secret-g' };
    const r = await runStep(step({ schema }), recordsOf([value]));
    const [message] = messages(r.failed);
    expect(message).toBe(
      "validate `checked`: the value does not match the schema: (root) must have required property 'h'; /a must be integer; /b must be integer; /c must be integer; /d must be integer; and 3 more",
    );
    expect(message).not.toMatch(/secret/);
  });

  it('names nested and array paths as JSON Pointers', async () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: { items: { type: 'array', items: { type: 'object', properties: { qty: { type: 'integer', minimum: 1 } } } } },
    };
    const r = await runStep(step({ schema }), recordsOf([{ items: [{ qty: 1 }, { qty: 0 }, { qty: 'x' }] }]));
    expect(messages(r.failed)).toEqual(['validate `checked`: the value does not match the schema: /items/1/qty must be >= 1; /items/2/qty must be integer']);
  });

  it('fails values that are not objects (a tombstone, a string, an array) against an object schema', async () => {
    const r = await runStep(step({ schema: ACTIVITY }), recordsOf([null, 'login', [1], 42]));
    expect(r.emitted).toEqual([]);
    expect(messages(r.failed)).toEqual(Array(4).fill('validate `checked`: the value does not match the schema: (root) must be object'));
  });

  it('checks any value a schema describes, not only objects', async () => {
    const r = await runStep(step({ schema: { type: 'string', minLength: 2 } }), recordsOf(['ok', 'x', 3]));
    expect(r.emitted.map((x) => x.value)).toEqual(['ok']);
    expect(messages(r.failed)).toEqual([
      'validate `checked`: the value does not match the schema: (root) must NOT have fewer than 2 characters',
      'validate `checked`: the value does not match the schema: (root) must be string',
    ]);
  });

  describe('on', () => {
    it('checks what the expression gives, and passes the whole record on unchanged', async () => {
      const records = recordsOf([
        { payload: { employee_id: 3, activity_type: 'login' }, other: 'anything' },
        { payload: { employee_id: -1, activity_type: 'login' } },
      ]);
      const r = await runStep(step({ schema: ACTIVITY, on: 'payload' }), records);
      expect(r.emitted).toEqual([records[0]]);
      expect(r.emitted[0]!.value).toBe(records[0]!.value);
      expect(messages(r.failed)).toEqual(['validate `checked`: the `on` result does not match the schema: /employee_id must be >= 1']);
    });

    it('works with an expression the JSONata interpreter evaluates (asynchronously)', async () => {
      const records = recordsOf([{ payload: { employee_id: 3 } }, { payload: { employee_id: 'x' } }]);
      const s = step({ schema: { ...ACTIVITY, required: ['employee_id'] }, on: '$merge([payload, {}])' });
      const r = await runStep(s, records);
      expect(r.emitted).toEqual([records[0]]);
      expect(messages(r.failed)).toEqual(['validate `checked`: the `on` result does not match the schema: /employee_id must be integer']);
    });

    it('sees $meta, $key and $headers', async () => {
      const records = recordsOf([{}, {}], [{ op: 'c' }, { op: 'x' }]);
      const r = await runStep(step({ schema: { enum: ['c', 'u', 'd'] }, on: '$meta.op' }), records);
      expect(r.emitted).toEqual([records[0]]);
      expect(messages(r.failed)).toEqual(['validate `checked`: the `on` result does not match the schema: (root) must be equal to one of the allowed values']);
    });

    it('fails a record whose expression gives nothing, or throws', async () => {
      const records = recordsOf([{ s: '1' }, {}, { s: 'x' }]);
      const r = await runStep(step({ schema: { type: 'number' }, on: '$number(s)' }), records);
      expect(r.emitted).toEqual([records[0]]);
      expect(r.failed.map((f) => f.record)).toEqual([records[1], records[2]]);
      expect(r.failed[0]!.error).toMatchObject({ code: 'E_VALIDATE', message: 'validate `checked`: the `on` result is missing' });
      expect(r.failed[1]!.error).toBeInstanceOf(RecordError);
      expect(r.failed[1]!.error).toMatchObject({ code: 'E_EXPR_EVAL', where: 'steps.checked' });
      expect(r.failed[1]!.error.message).toMatch(/^validate `checked`: `on` failed: /);
    });
  });

  it('checks formats it knows and ignores others, with one warning at create', async () => {
    const warnings: string[] = [];
    const base = context('checked');
    const logger = { ...base.logger, warn: (obj: object | string, msg?: string) => void warnings.push(typeof obj === 'string' ? obj : (msg ?? '')) };
    const schema: JsonSchema = {
      type: 'object',
      properties: {
        at: { type: 'string', format: 'date-time', description: 'when', examples: ['2025-01-06T09:05:12Z'] },
        day: { type: 'string', format: 'date' },
        mail: { type: 'string', format: 'email' },
        id: { type: 'string', format: 'uuid' },
        code: { type: 'string', format: 'made-up', 'x-owner': 'team' },
      },
    };
    const s = step({ schema }, { ...base, logger });
    expect(warnings).toEqual(['validate `checked`: unknown format "made-up" ignored in schema at path "#/properties/code"']);
    const r = await runStep(
      s,
      recordsOf([
        { at: '2025-01-06T09:05:12.345+01:00', day: '2024-02-29', mail: 'a@b.example', id: '123e4567-e89b-12d3-a456-426614174000', code: '?' },
        { at: '2025-01-06 09:05:12Z', day: '2023-02-29', mail: 'nope', id: '123', code: '?' },
        { at: '2025-13-06T09:05:12Z' },
        { at: '2025-01-06T09:05:12' },
      ]),
    );
    expect(r.emitted.map((x) => x.position.offset)).toEqual(['0']);
    expect(messages(r.failed)).toEqual([
      'validate `checked`: the value does not match the schema: /day must match format "date"; /mail must match format "email"; /id must match format "uuid"',
      'validate `checked`: the value does not match the schema: /at must match format "date-time"',
      'validate `checked`: the value does not match the schema: /at must match format "date-time"',
    ]);
  });

  it('takes integers beyond 2^53 (bigint, as the json format keeps them) for integers', async () => {
    const schema: JsonSchema = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } };
    const r = await runStep(step({ schema }), recordsOf([{ id: 123456789012345678901n }, { id: [1n] }, { id: -5n }]));
    expect(r.emitted.map((x) => x.position.offset)).toEqual(['0']);
    expect(messages(r.failed)).toEqual([
      'validate `checked`: the value does not match the schema: /id must be integer',
      'validate `checked`: the value does not match the schema: /id must be >= 1',
    ]);
  });

  it('compiles the schema once, at create, however many batches it checks', async () => {
    const compile = vi.spyOn(Ajv2020.prototype, 'compile');
    const s = step({ schema: ACTIVITY });
    expect(compile).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 3; i++) await runStep(s, recordsOf([{ employee_id: 1, activity_type: 'login' }, { employee_id: 0 }]));
    expect(compile).toHaveBeenCalledTimes(1);
  });

  it('refuses at create a schema ajv cannot compile, and an `on` that is not JSONata', () => {
    expect(() => step({ schema: { type: 'string', pattern: '(' } })).toThrow(ConfigError);
    expect(() => step({ schema: { type: 'string', pattern: '(' } })).toThrow(/^the schema cannot be compiled: .*Invalid regular expression/);
    try {
      step({ schema: { type: 'intger' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'E_VALIDATE_SCHEMA', where: 'steps.checked.validate.schema' });
    }
    expect(() => step({ schema: { ...ACTIVITY, $async: true } })).toThrow('the schema cannot be `$async`');
    expect(() => step({ schema: ACTIVITY, on: 'payload.' })).toThrow();
  });

  it('describes its config in one line', () => {
    expect(validateStep.describe({ validate: { schema: ACTIVITY } })).toBe('check values against a JSON Schema (object; required employee_id, activity_type)');
    expect(validateStep.describe({ validate: { schema: { enum: [1, 2] }, on: ' $meta.op ' } })).toBe('check `$meta.op` against a JSON Schema');
  });

  it('has a schema with a description and examples on every field', () => {
    type Field = { description?: string; examples?: unknown[]; properties?: Record<string, Field> };
    const validate = (validateStep.schema as { properties: Record<string, Field> }).properties.validate!;
    for (const [field, sub] of Object.entries({ validate, ...validate.properties })) {
      expect(sub.description, field).toBeTruthy();
      expect(sub.examples?.length, field).toBeGreaterThan(0);
    }
  });
});

describe('sluice validate with a validate step', () => {
  const spec = (schemaLines: string[], on = '') =>
    [
      'version: 1',
      'name: checked',
      'sources:',
      '  activities:',
      '    file: { path: activities.jsonl }',
      'steps:',
      '  checked:',
      '    from: activities',
      '    validate:',
      ...(on ? [`      on: ${on}`] : []),
      '      schema:',
      ...schemaLines.map((l) => `        ${l}`),
      'sinks:',
      '  out:',
      '    from: checked',
      '    stdout: {}',
      '  refused:',
      '    from: checked.errors',
      '    stdout: {}',
      '',
    ].join('\n');
  const schemaLines = [
    'type: object',
    'required: [employee_id, activity_type]',
    'properties:',
    '  employee_id: { type: integer, minimum: 1, description: "who", examples: [42] }',
    '  activity_type: { enum: [login, logout, page_view, download, upload] }',
    '  at: { type: string, format: date-time }',
  ];

  function specFile(text: string): string {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-validate-step-')), 'p.yaml');
    writeFileSync(file, text);
    return file;
  }

  it('accepts a spec with a schema as users write it', async () => {
    const file = specFile(spec(schemaLines));
    const io = captureIO();
    expect(await validateCommand.run([file], io)).toBe(0);
    expect(io.out()).toBe(`ok  ${file} (4 nodes)\n`);
    expect(io.err()).toBe('');
  });

  it('refuses a schema the meta-schema refuses, at the line and column of the mistake', async () => {
    const file = specFile(spec(schemaLines.map((l) => l.replace('type: integer', 'type: intger')).map((l) => l.replace('required: [employee_id, activity_type]', 'required: employee_id'))));
    const io = captureIO();
    expect(await validateCommand.run([file, '--format', 'json'], io)).toBe(2);
    const [report] = (JSON.parse(io.out()) as { files: { diagnostics: { code: string; message: string; line: number; col: number }[] }[] }).files;
    const found = report!.diagnostics.map((d) => `${d.line}:${d.col} ${d.code} ${d.message}`);
    // Line 12 is `required: employee_id`, line 14 is `employee_id: { type: intger ...`.
    expect(found).toContain('12:19 E_SCHEMA_TYPE `required` must be a list, got `employee_id`');
    expect(found).toContain(
      '14:32 E_SCHEMA_VALUE `type` must be one of `array`, `boolean`, `integer`, `null`, `number`, `object`, `string`, got `intger` (did you mean `integer`?)',
    );
    expect(found.every((f) => /^1[24]:/.test(f))).toBe(true);
  });

  it('refuses a schema that is not a map, and an `on` that is not JSONata, with positions', async () => {
    const notMap = spec([]).replace('      schema:\n', '      schema: [type, object]\n');
    const io = captureIO();
    expect(await validateCommand.run([specFile(notMap)], io)).toBe(2);
    expect(io.err()).toMatch(/p\.yaml:10:15: error\[E_SCHEMA_TYPE\]: `schema` must be a map, got a list/);

    const badOn = captureIO();
    expect(await validateCommand.run([specFile(spec(schemaLines, 'payload.'))], badOn)).toBe(2);
    expect(badOn.err()).toMatch(/p\.yaml:10:\d+: error\[E_EXPR_SYNTAX\]: `on` in `validate` of step `checked` is not valid JSONata/);
  });
});
