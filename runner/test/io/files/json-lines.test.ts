import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { jsonLines, recordMessage } from '../../../src/io/files/json-lines.ts';

function record(key: unknown, value: unknown, headers: Record<string, string> = {}): StreamRecord {
  return { key, value, time: 0, headers, meta: {}, position: { source: 's', partition: 's/p', offset: '1' }, ack: Ack.none() };
}

describe('recordMessage', () => {
  it('keeps key and value, makes a missing key null, and carries headers only when the sink writes them and there are some', () => {
    expect(recordMessage(record(undefined, { a: 1 }), true)).toEqual({ key: null, value: { a: 1 } });
    expect(recordMessage(record('k', 2), true)).not.toHaveProperty('headers');
    expect(recordMessage(record('k', 2, { reason: 'x' }), true)).toEqual({ key: 'k', value: 2, headers: { reason: 'x' } });
    // A sink that does not write headers prepares none, so a golden file does not show them.
    expect(recordMessage(record('k', 2, { reason: 'x' }), false)).toEqual({ key: 'k', value: 2 });
  });
});

describe('jsonLines', () => {
  it('writes the value per line, or {key, value}, with big integers as plain digits', () => {
    const messages = [{ key: 'k', value: { big: 12345678901234567890n } }, { key: null, value: null }];
    expect(jsonLines(messages, { withKey: false, withHeaders: false })).toBe('{"big":12345678901234567890}\nnull\n');
    expect(jsonLines(messages, { withKey: true, withHeaders: false })).toBe('{"key":"k","value":{"big":12345678901234567890}}\n{"key":null,"value":null}\n');
  });

  it('writes headers beside the value when asked, {} for a record without any', () => {
    const messages = [{ key: 'k', value: 'this is not JSON', headers: { 'sluice-error-message': 'unexpected character' } }, { key: null, value: 1 }];
    expect(jsonLines(messages, { withKey: false, withHeaders: true })).toBe(
      '{"value":"this is not JSON","headers":{"sluice-error-message":"unexpected character"}}\n{"value":1,"headers":{}}\n',
    );
    expect(jsonLines(messages.slice(1), { withKey: true, withHeaders: true })).toBe('{"key":null,"value":1,"headers":{}}\n');
  });
});
