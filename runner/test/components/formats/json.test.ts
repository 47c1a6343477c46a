import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/engine/clock.ts';
import type { ComponentContext } from '../../../src/engine/component.ts';
import { RecordError } from '../../../src/engine/errors.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { RefusedValue, type RawMessage } from '../../../src/engine/record.ts';
import { jsonFormat } from '../../../src/components/formats/json.ts';

const ctx: ComponentContext = { name: 'events', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' };

function message(value: unknown, key: unknown = null): RawMessage {
  return { key, value, headers: {}, timestamp: 0, position: { source: 'events', partition: 'events/p', offset: '1' } };
}

describe('json format', () => {
  const format = jsonFormat.create({}, ctx);

  it('parses values losslessly from text and bytes', () => {
    expect(format.decode(message('{"id":9007199254740993,"n":1}')).value).toEqual({ id: 9007199254740993n, n: 1 });
    expect(format.decode(message(Buffer.from('[1,"a"]'))).value).toEqual([1, 'a']);
  });

  it('decodes the key as JSON when it is JSON, else as text', () => {
    expect(format.decode(message('1', '{"id":15}')).key).toEqual({ id: 15 });
    expect(format.decode(message('1', Buffer.from('42'))).key).toBe(42);
    expect(format.decode(message('1', 'user-7')).key).toBe('user-7');
    expect(format.decode(message('1', null)).key).toBeNull();
  });

  it('passes structured values and null through', () => {
    expect(format.decode(message({ a: 1 })).value).toEqual({ a: 1 });
    expect(format.decode(message(null)).value).toBeNull();
  });

  it('raises a RecordError with the line and column where the text stops being JSON', () => {
    expect(() => format.decode(message('{"a":\n  oops}'))).toThrow(RecordError);
    expect(() => format.decode(message('{"a":\n  oops}'))).toThrow('value is not JSON: unexpected character "o" at line 2 column 3');
  });

  it('refuses values beyond max_bytes', () => {
    const small = jsonFormat.create({ max_bytes: 10 }, ctx);
    expect(() => small.decode(message('{"a":"0123456789"}'))).toThrow(/value too large: 18 bytes, max_bytes is 10/);
  });
  it('sends a line its source refused (too long) to the errors port with the source\'s reason', () => {
    const refusal = new RecordError('E_LINE_TOO_LONG', 'line 2 of in.jsonl is longer than 10 characters (max_line_length): skipped to its end', 'sources.in');
    const refused = { key: null, value: new RefusedValue(refusal), headers: {}, timestamp: 0, position: { source: 'in', partition: 'in/p', offset: '2' } };
    expect(() => jsonFormat.create({}, ctx).decode(refused)).toThrow(refusal);
  });
});
