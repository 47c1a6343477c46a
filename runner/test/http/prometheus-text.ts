/**
 * Reads a Prometheus text exposition with a parser of the format (parse-prometheus-text-format,
 * which refuses malformed lines) and checks the shape of what it returns, so the tests compare
 * numbers, never regular-expression matches over the text.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export interface Sample {
  labels: Record<string, string>;
  /** Counters, gauges, untyped. */
  value?: number;
  /** Histograms: cumulative counts by upper bound, the count and the sum. */
  buckets?: Record<string, number>;
  count?: number;
  sum?: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  samples: Sample[];
}

const TYPES = new Set(['COUNTER', 'GAUGE', 'HISTOGRAM', 'SUMMARY', 'UNTYPED']);

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function stringRecord(value: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(value ?? {}, what))) {
    if (typeof v !== 'string') throw new Error(`${what}.${k} is not a string`);
    out[k] = v;
  }
  return out;
}

function number(value: unknown, what: string): number {
  if (typeof value !== 'string') throw new Error(`${what} is not a number text`);
  const n = value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value);
  // Prometheus reads floats with Go's ParseFloat, which takes NaN in any case (prom-client writes `Nan`).
  if (Number.isNaN(n) && value.toLowerCase() !== 'nan') throw new Error(`${what} is not a number: ${value}`);
  return n;
}

function families(text: string): { name: string; help: string; type: string; metrics: unknown[] }[] {
  const parsed = parsePrometheusTextFormat(text);
  if (!Array.isArray(parsed)) throw new Error('the parser returned no list of families');
  return parsed.map((f: unknown, i) => {
    const { name, help, type, metrics } = record(f, `family ${i}`);
    if (typeof name !== 'string' || typeof help !== 'string' || typeof type !== 'string' || !TYPES.has(type) || !Array.isArray(metrics)) {
      throw new Error(`family ${i} has no name, help, type or metrics`);
    }
    return { name, help, type, metrics };
  });
}

function plainSample(m: unknown, where: string): { labels: Record<string, string>; value: number } {
  const metric = record(m, where);
  return { labels: stringRecord(metric.labels, `${where}.labels`), value: number(metric.value, `${where}.value`) };
}

const labelKey = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));

/**
 * The families of an exposition. The parser groups a histogram's series into one sample per
 * family (it loses their labels), so histograms are parsed a second time with their TYPE line
 * read as untyped, which keeps every `_bucket`, `_sum` and `_count` line with its labels, and
 * are put together here.
 */
export function parseExposition(text: string): MetricFamily[] {
  const typed = families(text);
  const histograms = new Set(typed.filter((f) => f.type === 'HISTOGRAM').map((f) => f.name));
  // Read untyped, a histogram's `_bucket`, `_sum` and `_count` lines come as one family per run
  // of lines of one name: several per name when it has several series.
  const untyped = new Map<string, { metrics: unknown[] }>();
  const rewritten = text
    .split('\n')
    .map((line) => {
      const [hash, keyword, name] = line.split(' ');
      return hash === '#' && keyword === 'TYPE' && name !== undefined && histograms.has(name) ? `# TYPE ${name} untyped` : line;
    })
    .join('\n');
  for (const f of families(rewritten)) {
    const known = untyped.get(f.name);
    if (known) known.metrics.push(...f.metrics);
    else untyped.set(f.name, { metrics: [...f.metrics] });
  }
  return typed.map((f): MetricFamily => {
    const type = f.type as MetricFamily['type'];
    if (type !== 'HISTOGRAM') return { name: f.name, help: f.help, type, samples: f.metrics.map((m, j) => plainSample(m, `${f.name}[${j}]`)) };
    const series = new Map<string, Sample>();
    const at = (labels: Record<string, string>): Sample => {
      const key = labelKey(labels);
      let s = series.get(key);
      if (!s) series.set(key, (s = { labels, buckets: {}, count: 0, sum: 0 }));
      return s;
    };
    for (const [j, m] of (untyped.get(`${f.name}_bucket`)?.metrics ?? []).entries()) {
      const { labels, value } = plainSample(m, `${f.name}_bucket[${j}]`);
      const { le, ...rest } = labels;
      if (le === undefined) throw new Error(`${f.name}_bucket[${j}] has no le label`);
      at(rest).buckets![le] = value;
    }
    for (const [j, m] of (untyped.get(`${f.name}_sum`)?.metrics ?? []).entries()) {
      const { labels, value } = plainSample(m, `${f.name}_sum[${j}]`);
      at(labels).sum = value;
    }
    for (const [j, m] of (untyped.get(`${f.name}_count`)?.metrics ?? []).entries()) {
      const { labels, value } = plainSample(m, `${f.name}_count[${j}]`);
      at(labels).count = value;
    }
    return { name: f.name, help: f.help, type, samples: [...series.values()] };
  });
}

/** The family of that name, or throws naming what the exposition has. */
export function family(families: MetricFamily[], name: string): MetricFamily {
  const f = families.find((x) => x.name === name);
  if (!f) throw new Error(`no metric ${name}; the exposition has ${families.map((x) => x.name).join(', ')}`);
  return f;
}

/** The value of the one series of `name` whose labels include `labels`; undefined when none. */
export function valueOf(families: MetricFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const matches = (f?.samples ?? []).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matches.length > 1) throw new Error(`${matches.length} series of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value ?? matches[0]?.count;
}
