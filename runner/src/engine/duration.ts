/** Durations as written in specs: `500ms`, `10s`, `5m`, `1h`, `1d`, `7d`. */
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$';
const DURATION_RE = new RegExp(DURATION_PATTERN);

export function isDuration(text: string): boolean {
  return DURATION_RE.test(text);
}

/** Milliseconds for a duration string; throws on anything else (the spec validator reports it first). */
export function parseDuration(text: string): number {
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new Error(`\`${text}\` is not a duration like 1h`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** Whole days (`1d`, `7d`) are calendar windows: they align to midnight in a time zone, not to UTC epoch. */
export function isCalendarDuration(text: string): boolean {
  return /^[0-9]+d$/.test(text);
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (ms % size === 0 && ms >= size) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
