/**
 * The one metrics registry of a process: counters, gauges and histograms by name and labels,
 * exported in Prometheus' text format through prom-client (`exposition()`, served at /metrics).
 *
 * Counters and gauges keep their values here, in plain maps, and are copied into prom-client's
 * metric objects only when someone scrapes: an `inc` on the hot path costs a map update, not
 * prom-client's label validation, and tests can read a value synchronously. Histograms are
 * prom-client's own (an observation is one bucket search). Collectors refresh values that are
 * read rather than counted (queue depths, watermarks, consumer lag) just before an exposition.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Labels = Record<string, string>;

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** What a metric is: Prometheus names it, and `help` is the line `# HELP` shows. */
export interface MetricDefinition {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** Label names every series of it carries, in this order. */
  readonly labels: readonly string[];
  /** Histograms: upper bounds of the buckets, in the metric's unit (seconds). */
  readonly buckets?: readonly number[];
}

/** Refreshes values before an exposition; a promise is awaited up to the exposition's timeout. */
export type Collector = () => void | Promise<void>;

interface SeriesValue {
  labels: Labels;
  value: number;
}

interface ValueFamily {
  definition: MetricDefinition;
  values: Map<string, SeriesValue>;
}

/** Help of a metric used without a definition, so an exposition still parses; tests look for it. */
export const UNDEFINED_HELP = 'sluice metric without a definition';

/** The default histogram buckets for latencies in seconds: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

function keyOf(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  if (keys.length === 1) return `${keys[0]}=${labels[keys[0]!]}`;
  return keys
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');
}

/** The labels a definition names, in its order; a missing one is empty, an extra one is left out. */
function labelsFor(definition: MetricDefinition, labels: Labels): Labels {
  const out: Labels = {};
  for (const name of definition.labels) out[name] = labels[name] ?? '';
  return out;
}

function sameDefinition(a: MetricDefinition, b: MetricDefinition): boolean {
  return a.type === b.type && a.labels.join(',') === b.labels.join(',');
}

export class Metrics {
  private readonly registry = new Registry();
  private readonly families = new Map<string, ValueFamily>();
  private readonly histograms = new Map<string, Histogram<string>>();
  private readonly definitions = new Map<string, MetricDefinition>();
  private readonly collectors = new Set<Collector>();
  private processMetrics = false;

  /**
   * Declares metrics. Declaring one again with the same type and labels is a no-op (a restarted
   * run's components declare theirs again); with another type or other labels it is a bug.
   */
  define(...definitions: readonly MetricDefinition[]): void {
    for (const d of definitions) {
      const known = this.definitions.get(d.name);
      if (known) {
        if (!sameDefinition(known, d)) {
          throw new Error(`metric ${d.name} is already defined as a ${known.type} with labels [${known.labels.join(', ')}]`);
        }
        continue;
      }
      this.definitions.set(d.name, d);
      this.register(d);
    }
  }

  /** Adds `by` to a counter. */
  inc(name: string, labels: Labels = {}, by = 1): void {
    const family = this.families.get(name) ?? this.undefinedFamily(name, 'counter', labels);
    const k = keyOf(labels);
    const v = family.values.get(k);
    if (v) v.value += by;
    else family.values.set(k, { labels: { ...labels }, value: by });
  }

  /** Sets a gauge. */
  set(name: string, labels: Labels, value: number): void {
    const family = this.families.get(name) ?? this.undefinedFamily(name, 'gauge', labels);
    const k = keyOf(labels);
    const v = family.values.get(k);
    if (v) v.value = value;
    else family.values.set(k, { labels: { ...labels }, value });
  }

  /** Removes a gauge's series that stands for something gone (a revoked partition). */
  remove(name: string, labels: Labels): void {
    this.families.get(name)?.values.delete(keyOf(labels));
  }

  /** Records one observation of a histogram (in its unit: seconds). */
  observe(name: string, labels: Labels, value: number): void {
    let h = this.histograms.get(name);
    if (!h) {
      this.define({ name, type: 'histogram', help: UNDEFINED_HELP, labels: Object.keys(labels) });
      h = this.histograms.get(name)!;
    }
    h.observe(labels, value);
  }

  counter(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.values.get(keyOf(labels))?.value ?? 0;
  }

  gauge(name: string, labels: Labels = {}): number | undefined {
    return this.families.get(name)?.values.get(keyOf(labels))?.value;
  }

  /** Every series of a counter or gauge, with its labels. */
  series(name: string): { labels: Labels; value: number }[] {
    return [...(this.families.get(name)?.values.values() ?? [])].map((v) => ({ labels: { ...v.labels }, value: v.value }));
  }

  /** Every counter and gauge series, `name{labels}` -> value, for the progress line and tests. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, family] of this.families) {
      for (const v of family.values.values()) {
        const labels = Object.keys(v.labels)
          .sort()
          .map((k) => `${k}="${v.labels[k]}"`);
        out[labels.length ? `${name}{${labels.join(',')}}` : name] = v.value;
      }
    }
    return out;
  }

  /** Registers a collector; the returned function unregisters it. */
  addCollector(collector: Collector): () => void {
    this.collectors.add(collector);
    return () => this.collectors.delete(collector);
  }

  /**
   * Runs every collector, waiting at most `timeoutMs` for slow ones (a broker that does not
   * answer must not hang a scrape: their last values are served). A failing collector is skipped.
   */
  async collect(timeoutMs = 1_000): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const c of this.collectors) {
      try {
        const r = c();
        if (r instanceof Promise) pending.push(r.catch(() => {}));
      } catch {
        // A collector that throws leaves its last values; the exposition goes on.
      }
    }
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(pending), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Labels every series of the exposition carries, e.g. `{ pipeline: 'employee-activity' }`. */
  setDefaultLabels(labels: Labels): void {
    this.registry.setDefaultLabels(labels);
  }

  /** Adds prom-client's process and Node.js metrics (CPU, memory, event loop lag, GC) to the exposition. */
  collectProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    collectDefaultMetrics({ register: this.registry });
  }

  /** The Prometheus text exposition, after running the collectors. */
  async exposition(collectTimeoutMs?: number): Promise<{ contentType: string; text: string }> {
    await this.collect(collectTimeoutMs);
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /** The definitions declared so far (docs and tests list them). */
  definedMetrics(): MetricDefinition[] {
    return [...this.definitions.values()];
  }

  private undefinedFamily(name: string, type: 'counter' | 'gauge', labels: Labels): ValueFamily {
    this.define({ name, type, help: UNDEFINED_HELP, labels: Object.keys(labels).sort() });
    return this.families.get(name)!;
  }

  private register(d: MetricDefinition): void {
    const labelNames = [...d.labels];
    if (d.type === 'histogram') {
      const h = new Histogram({ name: d.name, help: d.help, labelNames, buckets: [...(d.buckets ?? LATENCY_BUCKETS)], registers: [this.registry] });
      this.histograms.set(d.name, h);
      return;
    }
    const family: ValueFamily = { definition: d, values: new Map() };
    this.families.set(d.name, family);
    if (d.type === 'counter') {
      new Counter({
        name: d.name,
        help: d.help,
        labelNames,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const v of family.values.values()) this.inc(labelsFor(d, v.labels), v.value);
        },
      });
    } else {
      new Gauge({
        name: d.name,
        help: d.help,
        labelNames,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const v of family.values.values()) this.set(labelsFor(d, v.labels), v.value);
        },
      });
    }
  }
}
