import { describe, expect, it } from 'vitest';
import { Ack } from '../../src/engine/ack.ts';
import { MAX_ERROR_MESSAGE_LENGTH, RecordError } from '../../src/engine/errors.ts';
import { ERROR_MESSAGE_HEADER, failedRecord, undecodableRecord, type RecordFailure } from '../../src/engine/failed-record.ts';

const position = { source: 'in', partition: 'in/0', offset: '7' };

describe('failed records', () => {
  it("keep a step failure's record as it was, with the reason in headers and $meta.error", () => {
    const ack = new Ack(() => {});
    const rec = { key: 'k', value: { a: 1 }, time: 5, headers: { h: 'v' }, meta: { op: 'c' }, position, ack };
    const failed = failedRecord(rec, 'enriched', new RecordError('E_EXPR_EVAL', 'boom', 'steps.enriched'));
    expect(failed).toMatchObject({ key: 'k', value: { a: 1 }, time: 5, position, ack });
    expect(failed.headers).toEqual({ h: 'v', 'sluice-error-node': 'enriched', 'sluice-error-message': 'boom' });
    expect(failed.meta).toEqual({ op: 'c', error: { node: 'enriched', message: 'boom', code: 'E_EXPR_EVAL' } });
    expect(rec.headers).toEqual({ h: 'v' });
  });

  it('turn an undecodable message into text with the decode error', () => {
    const ack = new Ack(() => {});
    const msg = { key: Buffer.from('id-1'), value: Buffer.from('{oops'), headers: {}, timestamp: 99, position };
    const failed = undecodableRecord(msg, 'in', ack, new Error('Unexpected token'));
    expect(failed).toMatchObject({ key: 'id-1', value: '{oops', time: 99, ack });
    expect(failed.meta.error).toEqual({ node: 'in', message: 'Unexpected token' });
  });

  it('keep bytes that are not UTF-8 as bytes, so a dead letter holds the original message', () => {
    const ack = new Ack(() => {});
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const failed = undecodableRecord({ key: null, value: bytes, headers: {}, timestamp: 0, position }, 'in', ack, new Error('not JSON'));
    expect(failed.value).toBe(bytes);
  });

  it('carry a reason cut to MAX_ERROR_MESSAGE_LENGTH in headers and $meta.error, whatever threw it', () => {
    const ack = new Ack(() => {});
    const rec = { key: null, value: {}, time: 0, headers: {}, meta: {}, position, ack };
    // A plain Error (a JSONata error quoting a huge field, say), not a RecordError that cuts itself.
    const failed = failedRecord(rec, 'enriched', new Error(`Unable to cast value to a number: "${'9'.repeat(1_000_000)}"`));
    const header = failed.headers[ERROR_MESSAGE_HEADER]!;
    expect(header.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_LENGTH + 40);
    expect(header).toMatch(/^Unable to cast value to a number: "9+… \(\d+ more characters\)$/);
    expect((failed.meta.error as RecordFailure).message).toBe(header);
    const undecodable = undecodableRecord({ key: null, value: 'x', headers: {}, timestamp: 0, position }, 'in', ack, new Error('e'.repeat(5000)));
    expect(undecodable.headers[ERROR_MESSAGE_HEADER]!.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_LENGTH + 40);
  });
});
