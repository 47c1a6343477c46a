/**
 * `set`: adds or replaces fields of the record value, each computed by a JSONata expression.
 * Fields are computed in the order written, and each expression sees the value with the fields
 * before it already set, so `is_business_hours` can use the `activity_hour` computed above it.
 * Input values are never mutated: every output record has a new value object.
 */
import type { StepDef, StepOutput } from '../../engine/component.ts';
import { ConfigError, RecordError } from '../../engine/errors.ts';
import { EvalFailure, compileExpression, evaluateRecords, type Expression } from '../../engine/expression.ts';
import { copyFields, type Batch, type StreamRecord } from '../../engine/record.ts';
import { expression, object } from '../../engine/schema.ts';

export interface SetConfig {
  /** Field name -> JSONata expression, in evaluation order. */
  set: Record<string, string>;
}

interface ComputedField {
  readonly name: string;
  readonly expr: Expression;
}

type Fields = Record<string, unknown>;

function isObjectValue(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function describeValue(v: unknown): string {
  if (v === null) return 'null (a tombstone?)';
  if (v === undefined) return 'no value';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/**
 * New records for the ones whose value is an object, each with a shallow copy of the value that
 * only this step holds (so setting fields on it mutates nothing anyone else sees). Others fail.
 */
function copyObjectRecords(name: string, records: readonly StreamRecord[], out: StepOutput): {
  inputs: StreamRecord[];
  outputs: StreamRecord[];
} {
  const inputs: StreamRecord[] = [];
  const outputs: StreamRecord[] = [];
  for (let i = 0; i < records.length; i++) {
    const rec = records[i]!;
    if (!isObjectValue(rec.value)) {
      out.fail(
        rec,
        new RecordError('E_SET_NOT_OBJECT', `set \`${name}\` needs an object value, got ${describeValue(rec.value)}`, `steps.${name}`),
      );
      continue;
    }
    inputs.push(rec);
    outputs.push({
      key: rec.key,
      value: copyFields(rec.value),
      time: rec.time,
      headers: rec.headers,
      meta: rec.meta,
      position: rec.position,
      ack: rec.ack,
    });
  }
  return { inputs, outputs };
}

/**
 * Writes one field's results into the output values. An object result may reference the value it
 * was computed from (`$` or `{"a": $}`), so the value is copied before it is stored: otherwise it
 * would contain itself. Returns false when some record failed (the caller then compacts).
 */
function applyField(
  name: string,
  field: ComputedField,
  inputs: StreamRecord[],
  outputs: (StreamRecord | undefined)[],
  results: unknown[],
  out: StepOutput,
): boolean {
  let allOk = true;
  for (let i = 0; i < outputs.length; i++) {
    const rec = outputs[i]!;
    const result = results[i];
    if (result instanceof EvalFailure) {
      out.fail(
        inputs[i]!,
        new RecordError('E_EXPR_EVAL', `set \`${name}\`: field \`${field.name}\` failed: ${result.error.message}`, `steps.${name}`, {
          cause: result.error,
        }),
      );
      outputs[i] = undefined;
      allOk = false;
      continue;
    }
    const value = rec.value as Fields;
    if (typeof result === 'object' && result !== null) {
      const copy = copyFields(value);
      copy[field.name] = result;
      rec.value = copy;
    } else {
      value[field.name] = result;
    }
  }
  return allOk;
}

export const setStep: StepDef<SetConfig> = {
  family: 'step',
  name: 'set',
  summary: 'Adds or replaces fields of the record value, each computed by a JSONata expression, in order.',
  description:
    'Each expression sees the record value, with the fields listed before it already set, and `$meta`, ' +
    '`$key`, `$headers`. A field whose expression yields nothing (a missing path) is set to undefined and ' +
    'so left out of JSON output. Field names are top-level keys, taken literally. A record whose value is ' +
    'not an object (a tombstone, a string), or whose expression fails, goes to `<step>.errors`.',
  schema: object(
    'Computed fields, evaluated in order.',
    {
      set: {
        type: 'object',
        description:
          'Ordered map of field name -> JSONata expression. Later fields may use earlier ones by name.',
        minProperties: 1,
        propertyNames: {
          minLength: 1,
          not: { const: '__proto__' },
          description: 'A top-level field name of the output value.',
        },
        additionalProperties: expression('JSONata expression computing the field from the record value.', [
          '$hour(activity_timestamp)',
          'duration_seconds < 30 ? "short" : "long"',
          '$meta.source.table',
        ]),
        examples: [
          {
            activity_hour: '$hour(activity_timestamp)',
            is_business_hours: 'activity_hour >= 9 and activity_hour <= 17',
          },
        ],
      },
    },
    ['set'],
  ),
  describe: (config) => `set ${Object.keys(config.set).join(', ')}`,
  create(config, ctx) {
    const name = ctx.name;
    const fields: ComputedField[] = Object.entries(config.set).map(([field, src]) => {
      // Assigning `__proto__` would replace the value's prototype instead of setting a field.
      if (field === '__proto__') throw new ConfigError('E_SET_FIELD', 'a field cannot be named __proto__', `steps.${name}.set`);
      return { name: field, expr: compileExpression(src) };
    });
    return {
      async process(batch: Batch, out: StepOutput): Promise<void> {
        let { inputs, outputs } = copyObjectRecords(name, batch.records, out);
        for (const field of fields) {
          if (outputs.length === 0) return;
          const evaluated = evaluateRecords(field.expr, outputs);
          const results = evaluated instanceof Promise ? await evaluated : evaluated;
          const slots: (StreamRecord | undefined)[] = outputs;
          if (!applyField(name, field, inputs, slots, results, out)) {
            const keptInputs: StreamRecord[] = [];
            const keptOutputs: StreamRecord[] = [];
            for (let i = 0; i < slots.length; i++) {
              const rec = slots[i];
              if (rec) {
                keptInputs.push(inputs[i]!);
                keptOutputs.push(rec);
              }
            }
            inputs = keptInputs;
            outputs = keptOutputs;
          }
        }
        out.emit(outputs);
      },
    };
  },
};
