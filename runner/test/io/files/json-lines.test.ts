import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { jsonLines, recordMessage } from '../../../src/io/files/json-lines.ts';

function record(key: unknown, value: unknown, headers: Record<string, string> = {}): StreamRecord {
  return { key, value, time: 0, headers, meta: {}, position: { source: 's', partition: 's/p', offset: '1' }, ack: Ack.none() };
}

describe('recordMessage', () => {
  it('keeps key and value, makes a missing key null, and carries headers only when there are some', () => {
    expect(recordMessage(record(undefined, { a: 1 }))).toEqual({ key: null, value: { a: 1 } });
    expect(recordMessage(record('k', 2))).not.toHaveProperty('headers');
    expect(recordMessage(record('k', 2, { reason: 'x' }))).toEqual({ key: 'k', value: 2, headers: { reason: 'x' } });
  });
});

describe('jsonLines', () => {
  it('writes the value per line, or {key, value}, with big integers as plain digits', () => {
    const messages = [{ key: 'k', value: { big: 12345678901234567890n } }, { key: null, value: null }];
    expect(jsonLines(messages, false)).toBe('{"big":12345678901234567890}\nnull\n');
    expect(jsonLines(messages, true)).toBe('{"key":"k","value":{"big":12345678901234567890}}\n{"key":null,"value":null}\n');
  });
});
