import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_FORMAT,
  checkpointFromJson,
  checkpointToJson,
  comparePositions,
  identityMismatches,
  StateError,
  stepStateFromJson,
  stepStateToJson,
  type Checkpoint,
} from '../../../src/engine/checkpoint/checkpoint.ts';
import type { JsonValue, StepState } from '../../../src/engine/component.ts';

const sign = (n: number) => Math.sign(n);

describe('comparePositions', () => {
  it('orders Kafka offsets beyond 2^53 exactly, where Number() would call them equal', () => {
    const a = '9007199254740993'; // 2^53 + 1
    const b = '9007199254740992'; // 2^53
    expect(Number(a)).toBe(Number(b)); // the trap a float comparison falls into
    expect(sign(comparePositions(a, b))).toBe(1);
    expect(sign(comparePositions(b, a))).toBe(-1);
    expect(sign(comparePositions('18446744073709551615', '18446744073709551614'))).toBe(1);
  });

  it('orders line numbers numerically, not as text', () => {
    expect(sign(comparePositions('9', '10'))).toBe(-1);
    expect(sign(comparePositions('100', '99'))).toBe(1);
    expect('9' < '10').toBe(false); // text order would get this wrong
  });

  it('orders `<commit>/<change>` LSN tuples component by component', () => {
    expect(sign(comparePositions('100/5', '100/40'))).toBe(-1);
    expect(sign(comparePositions('100/40', '100/5'))).toBe(1);
    // The first component decides even when the second is larger.
    expect(sign(comparePositions('99/900', '100/1'))).toBe(-1);
    expect(sign(comparePositions('24023128/24023200', '24023128/24023200'))).toBe(0);
  });

  it('is 0 for equal positions and antisymmetric over a sorted list', () => {
    expect(comparePositions('42', '42')).toBe(0);
    expect(comparePositions('1/2', '1/2')).toBe(0);
    const sorted = ['0', '7', '10', '99', '100', '9007199254740992', '9007199254740993'];
    const shuffled = [...sorted].reverse();
    expect(shuffled.sort(comparePositions)).toEqual(sorted);
  });
});

function sampleCheckpoint(): Checkpoint {
  const hourly: StepState = {
    header: { version: 1, seq: 17, watermarks: { watermark: null, partitions: [{ partition: 'p/0', maxEventTime: 1_736_150_400_000, assigned: true }] } },
    entries: new Map<string, JsonValue>([
      ['1736150400000|1736154000000|[1,"click"]', { start: 1_736_150_400_000, accs: [3, { count: 2, int: 17 }], rows: null }],
      ['1736150400000|1736154000000|[2,"login"]', { start: 1_736_150_400_000, accs: [1, null], rows: [] }],
    ]),
  };
  const daily: StepState = { header: null, entries: new Map() };
  return {
    applicationId: 'employee-activity',
    epoch: 12,
    positions: { 'activities/t/0': '9007199254740993', 'cdc/slot': '100/40' },
    states: new Map([
      ['hourly', hourly],
      ['daily', daily],
    ]),
    identities: { hourly: { kind: 'window', fingerprint: 'abc123', parts: { shape: 'tumbling 1h', group_by: ['employee_id'] } } },
    sinks: { summaries: { length: 4096 } },
    takenAt: 1_736_150_412_345,
  };
}

describe('checkpoint JSON form', () => {
  it('survives JSON.stringify and JSON.parse unchanged, Maps included', () => {
    const original = sampleCheckpoint();
    const text = JSON.stringify(checkpointToJson(original));
    const back = checkpointFromJson(JSON.parse(text), 'test');
    expect(back).toEqual(original);
    expect(back.states).toBeInstanceOf(Map);
    expect(back.states.get('hourly')!.entries).toBeInstanceOf(Map);
    expect([...back.states.get('hourly')!.entries.keys()]).toEqual([...original.states.get('hourly')!.entries.keys()]);
    // The stored form is plain JSON: no Map was lost to `{}` on the way.
    expect(text).toContain('1736150400000|1736154000000|[1,\\"click\\"]');
    expect(JSON.parse(text)).toMatchObject({ format: CHECKPOINT_FORMAT });
  });

  it('round-trips one step state on its own', () => {
    const state = sampleCheckpoint().states.get('hourly')!;
    expect(stepStateFromJson(JSON.parse(JSON.stringify(stepStateToJson(state))), 'x')).toEqual(state);
  });

  const stored = () => JSON.parse(JSON.stringify(checkpointToJson(sampleCheckpoint()))) as Record<string, unknown>;
  const refusal = (json: unknown): StateError => {
    try {
      checkpointFromJson(json, '/state/app/checkpoint.json');
    } catch (err) {
      expect(err).toBeInstanceOf(StateError);
      return err as StateError;
    }
    throw new Error('checkpointFromJson accepted it');
  };

  it('refuses another format with E_STATE_FORMAT naming where', () => {
    const err = refusal({ ...stored(), format: CHECKPOINT_FORMAT + 1 });
    expect(err.code).toBe('E_STATE_FORMAT');
    expect(err.where).toBe('/state/app/checkpoint.json');
    expect(err.message).toContain('/state/app/checkpoint.json');
    expect(err.message).toContain(`format ${CHECKPOINT_FORMAT + 1}`);
    const missing = stored();
    delete missing.format;
    expect(refusal(missing).code).toBe('E_STATE_FORMAT');
  });

  it.each([
    ['not an object', () => [1, 2, 3], 'not a JSON object'],
    ['applicationId missing', () => ({ ...stored(), applicationId: undefined }), 'applicationId missing'],
    ['epoch 0', () => ({ ...stored(), epoch: 0 }), 'epoch must be a positive integer'],
    ['epoch not an integer', () => ({ ...stored(), epoch: 1.5 }), 'epoch must be a positive integer'],
    ['takenAt missing', () => ({ ...stored(), takenAt: undefined }), 'takenAt missing'],
    ['positions missing', () => ({ ...stored(), positions: undefined }), 'positions missing'],
    ['a position that is a number', () => ({ ...stored(), positions: { 'p/0': 5 } }), 'positions must map names to strings'],
    ['identities missing', () => ({ ...stored(), identities: null }), 'identities missing'],
    ['an identity without fingerprint', () => ({ ...stored(), identities: { hourly: { kind: 'window' } } }), 'an identity needs kind and fingerprint'],
    ['states missing', () => ({ ...stored(), states: undefined }), 'states missing'],
    ['sinks missing', () => ({ ...stored(), sinks: undefined }), 'sinks missing'],
  ])('refuses %s with E_STATE_CORRUPT naming where', (_name, make, reason) => {
    const err = refusal(make());
    expect(err.code).toBe('E_STATE_CORRUPT');
    expect(err.where).toBe('/state/app/checkpoint.json');
    expect(err.message).toContain('/state/app/checkpoint.json');
    expect(err.message).toContain(reason);
  });

  it.each([
    ['a step state without entries', { header: null }],
    ['an entry that is not a pair', { header: null, entries: [['k', 1, 2]] }],
    ['an entry whose key is not a string', { header: null, entries: [[7, {}]] }],
  ])('refuses %s with E_STATE_CORRUPT naming the file and the step', (_name, hourly) => {
    const err = refusal({ ...stored(), states: { hourly } });
    expect(err.code).toBe('E_STATE_CORRUPT');
    expect(err.message).toContain('/state/app/checkpoint.json: state of `hourly`');
    expect(err.where).toContain('/state/app/checkpoint.json');
  });
});

describe('identityMismatches', () => {
  const id = (fingerprint: string, kind = 'window') => ({ kind, fingerprint, parts: null });
  it('names steps whose fingerprint or kind changed; new and removed steps are not mismatches', () => {
    const stored = { a: id('1'), b: id('2'), c: id('3'), removed: id('4') };
    const current = { a: id('1'), b: id('2x'), c: id('3', 'session'), added: id('5') };
    expect(identityMismatches(stored, current)).toEqual(['b', 'c']);
  });
});
