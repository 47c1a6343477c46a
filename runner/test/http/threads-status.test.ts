import { describe, expect, it } from 'vitest';
import type { NodeStatus, StatusSnapshot } from '../../src/http/live-status.ts';
import { mergeStatuses, processPhase } from '../../src/http/threads-status.ts';

const READY = { ready: true, reasons: [] as string[] };

function node(name: string, fields: Partial<NodeStatus>): NodeStatus {
  return { name, role: 'step', kind: 'window', in: 0, out: 0, failed: 0, filtered: 0, late: 0, inRate: 0, outRate: 0, failedRate: 0, failing: false, ...fields };
}

function thread(fields: Partial<StatusSnapshot>): StatusSnapshot {
  return { pipeline: 'employee-activity', at: 1_000, phase: 'running', ready: READY, uptimeSeconds: 60, restarts: 0, nodes: [], ...fields };
}

describe('processPhase', () => {
  it('is the phase that needs attention first', () => {
    expect(processPhase(['running', 'running'])).toBe('running');
    expect(processPhase(['running', 'restarting'])).toBe('restarting');
    expect(processPhase(['starting', 'running'])).toBe('starting');
    expect(processPhase(['finished', 'failed'])).toBe('failed');
    expect(processPhase(['stopped', 'finished'])).toBe('stopped');
  });
});

describe('mergeStatuses', () => {
  it('adds counts, rates and sizes; takes the earliest watermark and the oldest checkpoint; fails a node failing anywhere', () => {
    const one = thread({
      at: 1_000,
      uptimeSeconds: 61,
      restarts: 1,
      lastFailure: { at: 400, message: 'broker gone' },
      checkpoint: { epoch: 40, ageSeconds: 0.5, lastDurationMs: 30, entries: 100, bytes: 4_000 },
      nodes: [
        node('activities', { role: 'source', kind: 'kafka', in: 1_000, out: 1_000, inRate: 50, outRate: 50, lag: { value: 30, unit: 'messages' }, connected: true }),
        node('hourly', { in: 900, out: 200, late: 2, inRate: 45, watermark: '2025-01-06T10:00:00.000Z', watermarkLagSeconds: 100, openWindows: 12 }),
        node('processed', { role: 'sink', kind: 'kafka', in: 900, out: 890, queued: 10, writing: 0 }),
      ],
    });
    const two = thread({
      at: 1_200,
      uptimeSeconds: 60,
      checkpoint: { epoch: 38, ageSeconds: 2.5, lastDurationMs: 45, entries: 50, bytes: 1_000 },
      nodes: [
        node('activities', { role: 'source', kind: 'kafka', in: 500, out: 500, inRate: 25, outRate: 25, lag: { value: 70, unit: 'messages' }, connected: false, connection: 'ECONNREFUSED', failing: true, lastError: { at: 900, message: 'not JSON' } }),
        node('hourly', { in: 450, out: 100, inRate: 20, watermark: '2025-01-06T09:30:00.000Z', watermarkLagSeconds: 1_900, openWindows: 3, failed: 1, lastError: { at: 800, message: 'bad time' } }),
        node('processed', { role: 'sink', kind: 'kafka', in: 450, out: 440, queued: 5, writing: 100 }),
      ],
    });
    const merged = mergeStatuses([one, two], READY);
    expect(merged).toEqual({
      pipeline: 'employee-activity',
      at: 1_200,
      phase: 'running',
      ready: READY,
      uptimeSeconds: 61,
      restarts: 1,
      lastFailure: { at: 400, message: 'broker gone' },
      checkpoint: { epoch: 40, ageSeconds: 2.5, lastDurationMs: 45, entries: 150, bytes: 5_000 },
      nodes: [
        node('activities', { role: 'source', kind: 'kafka', in: 1_500, out: 1_500, inRate: 75, outRate: 75, lag: { value: 100, unit: 'messages' }, connected: false, connection: 'ECONNREFUSED', failing: true, lastError: { at: 900, message: 'not JSON' } }),
        node('hourly', { in: 1_350, out: 300, late: 2, failed: 1, inRate: 65, watermark: '2025-01-06T09:30:00.000Z', watermarkLagSeconds: 1_900, openWindows: 15, lastError: { at: 800, message: 'bad time' } }),
        node('processed', { role: 'sink', kind: 'kafka', in: 1_350, out: 1_330, queued: 15, writing: 100 }),
      ],
    });
  });

  it("takes a watermark from the threads that have one, `end` being later than any time, and leaves out what no thread has", () => {
    const merged = mergeStatuses(
      [thread({ nodes: [node('hourly', { watermark: 'end' })] }), thread({ nodes: [node('hourly', {})] }), thread({ nodes: [node('hourly', { watermark: '2025-01-06T09:00:00.000Z' })] })],
      READY,
    );
    expect(merged.nodes[0]!.watermark).toBe('2025-01-06T09:00:00.000Z');
    expect(mergeStatuses([thread({ nodes: [node('hourly', { watermark: 'end' })] })], READY).nodes[0]!.watermark).toBe('end');
    const bare = mergeStatuses([thread({ nodes: [node('inserts', { kind: 'filter' })] }), thread({ nodes: [node('inserts', { kind: 'filter' })] })], READY);
    expect(Object.keys(bare.nodes[0]!).sort()).toEqual(Object.keys(node('inserts', {})).sort());
    expect(bare.checkpoint).toBeUndefined();
    expect(bare.lastFailure).toBeUndefined();
  });

  it('is restarting while one thread restarts, with the readiness it is given', () => {
    const notReady = { ready: false, reasons: ['thread 2: the pipeline is restarting after: broker gone'] };
    const merged = mergeStatuses([thread({}), thread({ phase: 'restarting' })], notReady);
    expect([merged.phase, merged.ready]).toEqual(['restarting', notReady]);
  });
});
