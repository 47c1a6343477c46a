import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/engine/clock.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import { RefusedValue } from '../../../src/engine/record.ts';
import { RecordError } from '../../../src/engine/errors.ts';
import { textFormat } from '../../../src/components/formats/text.ts';

const ctx = { name: 'logs', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'test' as const };
const position = { source: 'logs', partition: 'logs/p', offset: '1' };

describe('text format', () => {
  it('decodes bytes as UTF-8 and keeps strings as they are', () => {
    const format = textFormat.create({}, ctx);
    expect(format.decode({ key: Buffer.from('k'), value: Buffer.from('héllo'), headers: {}, timestamp: 0, position })).toEqual({
      key: 'k',
      value: 'héllo',
      meta: {},
    });
    expect(format.decode({ key: null, value: '{"not":"parsed"}', headers: {}, timestamp: 0, position }).value).toBe('{"not":"parsed"}');
    expect(format.decode({ key: null, value: null, headers: {}, timestamp: 0, position }).value).toBeNull();
  });
  it('sends a line its source refused (too long) to the errors port with the source\'s reason', () => {
    const refusal = new RecordError('E_LINE_TOO_LONG', 'line 2 of in.jsonl is longer than 10 characters (max_line_length): skipped to its end', 'sources.in');
    const refused = { key: null, value: new RefusedValue(refusal), headers: {}, timestamp: 0, position: { source: 'in', partition: 'in/p', offset: '2' } };
    expect(() => textFormat.create({}, ctx).decode(refused)).toThrow(refusal);
  });
});
