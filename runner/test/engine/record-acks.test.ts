import { describe, expect, it } from 'vitest';
import { Ack } from '../../src/engine/ack.ts';
import type { StreamRecord } from '../../src/engine/record.ts';
import { releaseRecords, retainRecords } from '../../src/engine/record-acks.ts';

function rec(ack: Ack): StreamRecord {
  return { key: null, value: null, time: 0, headers: {}, meta: {}, position: { source: 's', partition: 'p', offset: '0' }, ack };
}

describe('record acks', () => {
  it('retains and releases one reference per record, across interleaved Acks', () => {
    const a = new Ack(() => {});
    const b = new Ack(() => {});
    const list = [rec(a), rec(a), rec(b), rec(a), rec(b), rec(b)];
    retainRecords(list, 2);
    expect(a.outstanding).toBe(6);
    expect(b.outstanding).toBe(6);
    releaseRecords(list);
    expect(a.outstanding).toBe(3);
    expect(b.outstanding).toBe(3);
  });

  it('completes an Ack when its last record is released', () => {
    let done = false;
    const a = new Ack(() => (done = true));
    a.retain(2);
    a.seal();
    releaseRecords([rec(a), rec(a)]);
    expect(done).toBe(true);
  });

  it('does nothing for empty arrays or zero extra readers', () => {
    const a = new Ack(() => {});
    retainRecords([], 3);
    retainRecords([rec(a)], 0);
    releaseRecords([]);
    expect(a.outstanding).toBe(0);
  });
});
