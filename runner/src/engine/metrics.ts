/**
 * Counters and gauges by name and labels. Kept as plain numbers now; a Prometheus exporter
 * (roadmap) reads the same registry.
 */
export type Labels = Record<string, string>;

function keyOf(name: string, labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, number>();

  inc(name: string, labels: Labels = {}, by = 1): void {
    const k = keyOf(name, labels);
    this.counters.set(k, (this.counters.get(k) ?? 0) + by);
  }

  set(name: string, labels: Labels, value: number): void {
    this.gauges.set(keyOf(name, labels), value);
  }

  counter(name: string, labels: Labels = {}): number {
    return this.counters.get(keyOf(name, labels)) ?? 0;
  }

  gauge(name: string, labels: Labels = {}): number | undefined {
    return this.gauges.get(keyOf(name, labels));
  }

  /** Every series, `name{labels}` -> value, for the progress line, tests and the exporter. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counters, ...this.gauges]);
  }
}
