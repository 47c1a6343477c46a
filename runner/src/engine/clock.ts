/**
 * Processing time, injected. Live runs use the wall clock; golden tests and unit tests use a
 * ManualClock they advance by hand, so nothing in a window test depends on real time.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  constructor(private current = 0) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
  set(ms: number): void {
    this.current = ms;
  }
}
