import { describe, expect, it } from 'vitest';
import { MAX_ERROR_MESSAGE_LENGTH, RecordError, SluiceError, boundedMessage, describeValueKind } from '../../src/engine/errors.ts';

describe('boundedMessage', () => {
  it('keeps a message up to the limit and cuts a longer one, saying how much was cut', () => {
    expect(boundedMessage('short', 10)).toBe('short');
    expect(boundedMessage('0123456789', 10)).toBe('0123456789');
    expect(boundedMessage('0123456789abc', 10)).toBe('0123456789… (3 more characters)');
  });

  it('never splits a surrogate pair', () => {
    const cut = boundedMessage(`${'x'.repeat(9)}😀tail`, 10);
    expect(cut).toBe(`${'x'.repeat(9)}… (6 more characters)`);
    expect(cut.charCodeAt(8)).toBe(0x78);
  });
});

describe('RecordError', () => {
  it('cuts its message to MAX_ERROR_MESSAGE_LENGTH, wherever it is logged or put in a header', () => {
    const err = new RecordError('E_EXPR_EVAL', `failed: ${'v'.repeat(5_000_000)}`, 'steps.s');
    expect(err.message.length).toBeLessThan(MAX_ERROR_MESSAGE_LENGTH + 40);
    expect(err.message).toMatch(/^failed: v+… \(4998984 more characters\)$/);
    expect(err).toMatchObject({ code: 'E_EXPR_EVAL', where: 'steps.s' });
    // Other errors (spec errors with a listing) are not cut.
    expect(new SluiceError('E_X', 'y'.repeat(2000)).message).toHaveLength(2000);
  });
});

describe('describeValueKind', () => {
  it('says what a value is without any of its content', () => {
    expect(
      [null, undefined, 'secret', 'x', 42, 1.5, 12345678901234567890n, true, [1, 2], [3], { name: 'Ada' }].map(describeValueKind),
    ).toEqual([
      'null',
      'no value',
      'a string of 6 characters',
      'a string of 1 character',
      'an integer',
      'a number',
      'an integer',
      'a boolean',
      'an array of 2 items',
      'an array of 1 item',
      'an object',
    ]);
  });
});
