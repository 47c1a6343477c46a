import { describe, expect, it } from 'vitest';
import { formatDuration, isCalendarDuration, isDuration, parseDuration } from '../../src/engine/duration.ts';

describe('durations', () => {
  it('parses every unit', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('7d')).toBe(604_800_000);
  });

  it('refuses anything else', () => {
    for (const bad of ['1 hour', '1H', '1.5h', '-1s', 'h', '']) {
      expect(isDuration(bad), bad).toBe(false);
      expect(() => parseDuration(bad)).toThrow(/not a duration/);
    }
  });

  it('knows calendar durations and formats back', () => {
    expect(isCalendarDuration('1d')).toBe(true);
    expect(isCalendarDuration('24h')).toBe(false);
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(90_000)).toBe('90s');
    expect(formatDuration(1500)).toBe('1500ms');
  });
});
