import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import { compileExpression, EvalFailure, evaluateRecords } from '../../../src/engine/expression.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { evaluateColumn } from '../../../src/engine/window/window-aggregate.ts';

const recs = (values: unknown[]): StreamRecord[] =>
  values.map((value, i) => ({ key: 'k', value, time: 0, headers: {}, meta: { op: 'c' }, position: { source: 's', partition: 'p', offset: String(i) }, ack: Ack.none() }));

describe('evaluateColumn', () => {
  it('gives what evaluateRecords gives, for paths, paths over arrays and other expressions', async () => {
    const input = recs([{ a: { b: 1 } }, { a: [{ b: 2 }, { b: 3 }] }, { a: null }, {}, 5]);
    for (const src of ['a.b', 'a', '$meta.op & $string(a.b)', '$key']) {
      const expr = compileExpression(src);
      expect(await evaluateColumn(expr, input), src).toEqual(await evaluateRecords(expr, input));
    }
  });

  it('answers synchronously for plain paths over objects', () => {
    const r = evaluateColumn(compileExpression('a.b'), recs([{ a: { b: 1 } }, { a: { b: 'x' } }]));
    expect(r).toEqual([1, 'x']);
  });

  it('turns a throwing evaluation into an EvalFailure', async () => {
    const r = await evaluateColumn(compileExpression('$number(a)'), recs([{ a: 'x' }, { a: '2' }]));
    expect(r[0]).toBeInstanceOf(EvalFailure);
    expect(r[1]).toBe(2);
  });
});
