/**
 * `filter`: keeps the records for which a JSONata predicate is truthy (JSONata's `$boolean`).
 * Records it drops are acknowledged at once; records whose predicate throws go to `<step>.errors`.
 */
import type { StepDef, StepOutput } from '../../engine/component.ts';
import { RecordError } from '../../engine/errors.ts';
import { EvalFailure, compileExpression, evaluateRecords, isTruthy, type Expression } from '../../engine/expression.ts';
import type { Batch, StreamRecord } from '../../engine/record.ts';
import { expression, object } from '../../engine/schema.ts';

export interface FilterConfig {
  filter: string;
}

/** Routes each record by its predicate result; emits the input array itself when all are kept. */
function route(name: string, records: StreamRecord[], results: unknown[], out: StepOutput): void {
  let kept: StreamRecord[] | undefined;
  for (let i = 0; i < records.length; i++) {
    const result = results[i];
    const keep = !(result instanceof EvalFailure) && isTruthy(result);
    if (keep) {
      if (kept) kept.push(records[i]!);
      continue;
    }
    // First record not kept: copy the ones before it, which all were.
    kept ??= records.slice(0, i);
    if (result instanceof EvalFailure) {
      out.fail(
        records[i]!,
        new RecordError('E_EXPR_EVAL', `filter \`${name}\` failed: ${result.error.message}`, `steps.${name}`, { cause: result.error }),
      );
    } else {
      out.drop(records[i]!, 'filtered');
    }
  }
  out.emit(kept ?? records);
}

export const filterStep: StepDef<FilterConfig> = {
  family: 'step',
  name: 'filter',
  summary: 'Keeps the records for which a JSONata predicate is true; drops the others.',
  description:
    'The predicate sees the record value as its input, and `$meta`, `$key`, `$headers`. Truthiness is ' +
    "JSONata's: `false`, `null`, missing, `0`, `\"\"`, `[]` and `{}` drop the record. A record whose " +
    'predicate fails to evaluate goes to `<step>.errors` (counted and dropped if nothing reads it).',
  schema: object(
    'Keep only the records matching a predicate.',
    {
      filter: expression('JSONata predicate over the record value; records for which it is falsy are dropped.', [
        '$meta.op = "c"',
        'duration_seconds >= 30',
        'status in ["active", "pending"] and $exists(email)',
      ]),
    },
    ['filter'],
  ),
  describe: (config) => `keep records where ${config.filter.trim()}`,
  create(config, ctx) {
    const predicate: Expression = compileExpression(config.filter);
    const name = ctx.name;
    return {
      process(batch: Batch, out: StepOutput): void | Promise<void> {
        const results = evaluateRecords(predicate, batch.records);
        if (results instanceof Promise) return results.then((r) => route(name, batch.records, r, out));
        route(name, batch.records, results, out);
      },
    };
  },
};
