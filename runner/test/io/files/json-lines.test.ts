import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { jsonLines, jsonLinesBytes, recordMessage } from '../../../src/io/files/json-lines.ts';

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

describe('jsonLinesBytes', () => {
  it('gives the UTF-8 bytes of the same lines, for text of one to four bytes a character', () => {
    const texts = ['plain', 'é', '€€€', '😀', '日本語', 'a€😀é', '', '"\\\n'];
    // Lines of every mix and length: some whose UTF-8 is three times their length, which the
    // first buffer (sized for ASCII) cannot hold.
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: { i, text: texts[i % texts.length]!.repeat(1 + (i % 37)), big: 2n ** 70n + BigInt(i) } }));
    for (const fields of [
      { withKey: false, withHeaders: false },
      { withKey: true, withHeaders: true },
    ]) {
      const bytes = jsonLinesBytes(messages, fields);
      expect(bytes.equals(Buffer.from(jsonLines(messages, fields), 'utf8'))).toBe(true);
      // Independently of jsonLines: JSON.stringify of each value, the bigint written by hand.
      if (!fields.withKey) {
        const expected = messages.map((m) => JSON.stringify({ ...m.value, big: 0 }).replace('"big":0', `"big":${m.value.big}`)).join('\n') + '\n';
        expect(bytes.toString('utf8')).toBe(expected);
      }
    }
    expect(jsonLinesBytes([], { withKey: false, withHeaders: false }).length).toBe(0);
    expect(jsonLinesBytes([{ key: null, value: '€'.repeat(1000) }], { withKey: false, withHeaders: false }).toString('utf8')).toBe(`"${'€'.repeat(1000)}"\n`);
  });
});
