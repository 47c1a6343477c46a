import { describe, expect, it } from 'vitest';
import type { ActivityRow } from '../../../scripts/activity-generator.ts';
import { activityStream } from '../../../scripts/activity-generator.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

const employees = [
  { id: 1, department: 'Engineering' },
  { id: 2, department: 'Marketing' },
  { id: 3, department: 'Sales' },
];

function take(seed: number, n: number): ActivityRow[] {
  const next = activityStream(employees, mulberry32(seed));
  return Array.from({ length: n }, (_, i) => next(Date.UTC(2025, 0, 2, 10, 0, 0) + i * 1000));
}

describe('activityStream', () => {
  it('is reproducible from its seed', () => {
    expect(take(42, 200)).toEqual(take(42, 200));
    expect(take(42, 200)).not.toEqual(take(43, 200));
  });

  it('opens each employee session with a login before any other activity from it', () => {
    const rows = take(7, 2000);
    const seen = new Map<string, string>();
    for (const r of rows) {
      const session = `${r.employee_id}|${r.ip_address}|${r.user_agent}`;
      if (!seen.has(session)) expect(r.activity_type, `first activity of ${session}`).toBe('login');
      seen.set(session, r.activity_type);
    }
    const types = new Set(rows.map((r) => r.activity_type));
    expect([...types].sort()).toEqual(['click', 'download', 'login', 'logout', 'page_view']);
  });

  it('gives durations that fit the activity and UTC wall-clock timestamps', () => {
    for (const r of take(3, 2000)) {
      if (r.activity_type === 'click') expect(r.duration_seconds).toBeLessThan(10);
      if (r.activity_type === 'page_view') expect(r.duration_seconds).toBeGreaterThanOrEqual(5);
      expect(r.activity_timestamp).toMatch(/^2025-01-02 \d{2}:\d{2}:\d{2}\.\d{6}$/);
    }
  });

  it('needs employees', () => {
    expect(() => activityStream([], mulberry32(1))).toThrow(/no employees/);
  });
});
