/**
 * Processing time, injected. Live runs use the wall clock; golden tests and unit tests use a
 * ManualClock they advance by hand, so nothing in a window test depends on real time.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  private readonly listeners = new Set<(now: number) => void>();
  constructor(private current = 0) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
    this.notify();
  }
  set(ms: number): void {
    this.current = ms;
    this.notify();
  }
  /**
   * Calls `listener` with the new time after every `advance` and `set`, so what waits on this clock
   * (a schedule) fires when a test moves it, without timers. Returns the function that unsubscribes.
   */
  onChange(listener: (now: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  private notify(): void {
    for (const listener of [...this.listeners]) listener(this.current);
  }
}
