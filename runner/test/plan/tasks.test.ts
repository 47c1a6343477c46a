import { describe, expect, it } from 'vitest';
import { checkpointPhaseOf } from '../../src/plan/tasks.ts';

describe('checkpointPhaseOf', () => {
  it('spreads a stage\'s tasks over the interval, and puts the next stage\'s between them', () => {
    expect([0, 1, 2].map((p) => checkpointPhaseOf('0', p, 3))).toEqual([0, 1 / 3, 2 / 3]);
    expect([0, 1, 2].map((p) => checkpointPhaseOf('1', p, 3))).toEqual([0.5 / 3, 1.5 / 3, 2.5 / 3]);
    expect(checkpointPhaseOf('0', 0, 1)).toBe(0);
    expect([0, 1, 2].map((p) => checkpointPhaseOf('1', p, 3, 'at-least-once'))).toEqual([0.5 / 3, 1.5 / 3, 2.5 / 3]);
  });

  it('under exactly-once keeps a stage\'s tasks together (their transactions share output partitions), the next stage half an interval on', () => {
    expect([0, 1, 2].map((p) => checkpointPhaseOf('0', p, 3, 'exactly-once'))).toEqual([0, 0, 0]);
    expect([0, 1, 2].map((p) => checkpointPhaseOf('1', p, 3, 'exactly-once'))).toEqual([0.5, 0.5, 0.5]);
  });

  it('stays within [0, 1) for any stage id', () => {
    for (const stage of ['0', '1', '2', 'x']) {
      for (let p = 0; p < 7; p++) {
        for (const delivery of ['at-least-once', 'exactly-once'] as const) {
          const phase = checkpointPhaseOf(stage, p, 7, delivery);
          expect(phase).toBeGreaterThanOrEqual(0);
          expect(phase).toBeLessThan(1);
        }
      }
    }
  });
});
