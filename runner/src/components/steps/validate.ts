/**
 * `validate`: checks each record's value (or what an `on` expression picks from it) against a JSON
 * Schema written in the spec. Records that match go on unchanged; the others go to `<step>.errors`
 * with every schema error ajv found, by path, and none of the record's values.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { JsonSchema, StepDef, StepOutput } from '../../engine/component.ts';
import { ConfigError, RecordError, errorMessage } from '../../engine/errors.ts';
import { EvalFailure, compileExpression, evaluateRecords, type Expression } from '../../engine/expression.ts';
import type { Batch, StreamRecord } from '../../engine/record.ts';
import { expression, object } from '../../engine/schema.ts';

export interface ValidateConfig {
  validate: {
    /** A JSON Schema (draft 2020-12). */
    schema: JsonSchema;
    /** JSONata expression for what to check; default the record value. */
    on?: string;
  };
}

/** The dialect's meta-schema, which ajv ships: `sluice validate` checks the inline schema against it, with positions. */
const META_SCHEMA = 'https://json-schema.org/draft/2020-12/schema';

/** Schema errors named in one record's error message; the rest are counted. */
const MAX_LISTED_ERRORS = 5;

/* ------------------------------------------------------------ formats */

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:z|[+-](\d{2}):(\d{2}))$/i;
// The fast forms ajv-formats uses, which is not a dependency.
const EMAIL = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const UUID = /^(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/i;
const URI = /^[a-z][a-z0-9+.-]*:[^\s]*$/i;

function isDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  return month >= 1 && month <= 12 && day >= 1 && day <= days;
}

/** RFC 3339 `full-time`: the offset is required; second 60 is a leap second. */
function isTime(text: string): boolean {
  const m = TIME.exec(text);
  if (!m) return false;
  const [hour, minute, second] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const offsetOk = m[4] === undefined || (Number(m[4]) <= 23 && Number(m[5]) <= 59);
  return hour <= 23 && minute <= 59 && second <= 60 && offsetOk;
}

function isDateTime(text: string): boolean {
  const sep = text.search(/[Tt ]/);
  return sep === 10 && isDate(text.slice(0, sep)) && isTime(text.slice(sep + 1));
}

/** Formats this step checks; any other `format` is an annotation only (ajv ignores it). */
const FORMATS: Record<string, (text: string) => boolean> = {
  'date-time': isDateTime,
  date: isDate,
  time: isTime,
  email: (t) => EMAIL.test(t),
  uuid: (t) => UUID.test(t),
  uri: (t) => URI.test(t),
  ipv4: isIPv4,
  ipv6: isIPv6,
};

/* ------------------------------------------------------------ checking */

/**
 * Compiles the schema in an ajv of its own: two steps whose schemas share an `$id` must not clash.
 * Not strict, so that keywords ajv does not know (`example`, `x-...`) are ignored as editors do.
 */
function compileSchema(schema: JsonSchema, where: string, warn: (message: string) => void): ValidateFunction {
  // ajv warns of an unknown format (which it then ignores) here, at compile time, and says it twice.
  const said = new Set<string>();
  const once = (...args: unknown[]): void => {
    const message = args.map(String).join(' ');
    if (!said.has(message)) warn(message);
    said.add(message);
  };
  const ajv = new Ajv2020({ allErrors: true, strict: false, logger: { log: () => {}, warn: once, error: once } });
  for (const [name, validate] of Object.entries(FORMATS)) ajv.addFormat(name, validate);
  // An `$async` schema compiles to a function returning a promise, which would pass every value.
  if (schema.$async === true) throw new ConfigError('E_VALIDATE_SCHEMA', 'the schema cannot be `$async`: it is checked synchronously', where);
  try {
    return ajv.compile(schema);
  } catch (err) {
    throw new ConfigError('E_VALIDATE_SCHEMA', `the schema cannot be compiled: ${errorMessage(err)}`, where, { cause: err });
  }
}

/**
 * A copy with unsafe integers (JSON parsing keeps them as bigint, which ajv takes for no number)
 * as the nearest numbers; the value itself when it holds none.
 */
function bigIntsAsNumbers(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const c = bigIntsAsNumbers(v[i]);
      if (c !== v[i]) (copy ??= v.slice())[i] = c;
    }
    return copy ?? v;
  }
  if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v)) {
    let copy: Record<string, unknown> | undefined;
    for (const [k, x] of Object.entries(v)) {
      const c = bigIntsAsNumbers(x);
      if (c !== x) (copy ??= { ...v })[k] = c;
    }
    return copy ?? v;
  }
  return v;
}

/** The schema errors of `value`, or undefined when it matches. */
function schemaErrors(check: ValidateFunction, value: unknown): ErrorObject[] | undefined {
  if (check(value)) return undefined;
  const errors = check.errors ?? [];
  // Checked again only on failure, so the common case costs no walk over the value.
  const converted = bigIntsAsNumbers(value);
  if (converted === value) return errors;
  return check(converted) ? undefined : (check.errors ?? []);
}

/**
 * `/a/0 must be integer; (root) must have required property 'b'; and 3 more`. ajv's own words quote
 * the schema, never the data (no `verbose`); a path holds a data key only under a map the schema
 * leaves open (`additionalProperties`).
 */
function describeSchemaErrors(errors: readonly ErrorObject[]): string {
  const listed = errors.slice(0, MAX_LISTED_ERRORS).map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`);
  if (errors.length > MAX_LISTED_ERRORS) listed.push(`and ${errors.length - MAX_LISTED_ERRORS} more`);
  return listed.join('; ');
}

/**
 * Routes each record by its check; emits the input array itself when all pass. `results` are the
 * `on` results, one per record; without them each record's value is checked.
 */
function route(name: string, check: ValidateFunction, records: StreamRecord[], results: readonly unknown[] | undefined, subject: string, out: StepOutput): void {
  const where = `steps.${name}`;
  let passed: StreamRecord[] | undefined;
  for (let i = 0; i < records.length; i++) {
    const value = results ? results[i] : records[i]!.value;
    let error: RecordError | undefined;
    if (value instanceof EvalFailure) {
      error = new RecordError('E_EXPR_EVAL', `validate \`${name}\`: \`on\` failed: ${value.error.message}`, where, { cause: value.error });
    } else if (value === undefined) {
      // JSON Schema has no "missing"; a schema meant for an object would otherwise decide by accident.
      error = new RecordError('E_VALIDATE', `validate \`${name}\`: ${subject} is missing`, where);
    } else {
      const errors = schemaErrors(check, value);
      if (errors) error = new RecordError('E_VALIDATE', `validate \`${name}\`: ${subject} does not match the schema: ${describeSchemaErrors(errors)}`, where);
    }
    if (!error) {
      if (passed) passed.push(records[i]!);
      continue;
    }
    // First record that failed: copy the ones before it, which all passed.
    passed ??= records.slice(0, i);
    out.fail(records[i]!, error);
  }
  out.emit(passed ?? records);
}

/* ------------------------------------------------------------ the step */

const schemaField: JsonSchema = {
  $ref: META_SCHEMA,
  type: 'object',
  description:
    'A JSON Schema (draft 2020-12) every checked value must match, written inline. Checked against the draft 2020-12 meta-schema by `sluice validate`, and compiled once when the pipeline starts.',
  examples: [
    {
      type: 'object',
      required: ['employee_id', 'activity_type'],
      properties: {
        employee_id: { type: 'integer', minimum: 1 },
        activity_type: { enum: ['login', 'logout', 'page_view', 'download', 'upload'] },
        activity_timestamp: { type: 'string', format: 'date-time' },
      },
    },
  ],
};

export const validateStep: StepDef<ValidateConfig> = {
  family: 'step',
  name: 'validate',
  summary: 'Checks each record value against an inline JSON Schema; records that do not match go to `<step>.errors`.',
  description: [
    'Records whose value matches go on unchanged. The others go to `<step>.errors` (counted and dropped if nothing reads it) with',
    'error code `E_VALIDATE` and a message listing the first 5 schema errors as JSON Pointer and ajv\'s message',
    "(`/employee_id must be >= 1`), never the record's values. With `on`, the schema checks what that expression gives instead;",
    'a missing result fails the record (`on` failing to evaluate: `E_EXPR_EVAL`). The schema is draft 2020-12, every error is',
    'reported (ajv `allErrors`), and keywords ajv does not know (`example`, `x-...`) are ignored. `format` is checked for',
    '`date-time`, `date`, `time` (RFC 3339, with an offset), `email`, `uri`, `uuid`, `ipv4` and `ipv6`; any other format is',
    'ignored, with a warning when the pipeline starts. Integers beyond 2^53 (kept exact by the json format) are compared as the',
    'nearest number.',
  ].join(' '),
  schema: object(
    'Check record values against a JSON Schema.',
    {
      validate: object(
        'The JSON Schema, and optionally what to check.',
        {
          schema: schemaField,
          on: expression('JSONata expression giving what to check, from the record value (and `$meta`, `$key`, `$headers`). Default: the whole value.', [
            'payload',
            '$meta.before',
            'order.items',
          ]),
        },
        ['schema'],
        {
          examples: [
            { schema: { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } } },
            { schema: { type: 'object', required: ['email'] }, on: 'customer' },
          ],
        },
      ),
    },
    ['validate'],
  ),

  describe(config) {
    const { schema, on } = config.validate;
    const facets: string[] = [];
    if (typeof schema.type === 'string') facets.push(schema.type);
    if (Array.isArray(schema.required) && schema.required.length) facets.push(`required ${schema.required.map(String).join(', ')}`);
    const what = on === undefined ? 'values' : `\`${on.trim()}\``;
    return `check ${what} against a JSON Schema${facets.length ? ` (${facets.join('; ')})` : ''}`;
  },

  create(config, ctx) {
    const name = ctx.name;
    const logger = ctx.logger;
    const check = compileSchema(config.validate.schema, `steps.${name}.validate.schema`, (message) => logger.warn(`validate \`${name}\`: ${message}`));
    const on: Expression | undefined = config.validate.on === undefined ? undefined : compileExpression(config.validate.on);
    const subject = on ? 'the `on` result' : 'the value';
    return {
      process(batch: Batch, out: StepOutput): void | Promise<void> {
        const records = batch.records;
        if (!on) return route(name, check, records, undefined, subject, out);
        const results = evaluateRecords(on, records);
        if (results instanceof Promise) return results.then((r) => route(name, check, records, r, subject, out));
        route(name, check, records, results, subject, out);
      },
    };
  },
};
