import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../src/cli/status.ts';
import type { StatusSnapshot } from '../../src/http/live-status.ts';

const snapshot: StatusSnapshot = { pipeline: 'employee-activity', at: 0, phase: 'running', ready: { ready: true, reasons: [] }, uptimeSeconds: 125, restarts: 1, nodes: [] };

describe('renderStatus', () => {
  it('names the threads of a run on threads in its first line, and nothing for one run', () => {
    expect(renderStatus({ ...snapshot, threads: 2 }).split('\n')[0]).toBe('employee-activity: running, ready, up 2.1m, 2 threads, 1 restarts');
    expect(renderStatus(snapshot).split('\n')[0]).toBe('employee-activity: running, ready, up 2.1m, 1 restarts');
  });
});
