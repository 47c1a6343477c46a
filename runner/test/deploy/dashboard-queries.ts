/**
 * The PromQL queries of the Grafana dashboard kept in the repo, and the metric names they read,
 * found by Prometheus' own PromQL grammar (@prometheus-io/lezer-promql, what Prometheus' UI parses
 * queries with): a query that does not parse is an error here, not an empty panel in Grafana.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';

export const DASHBOARD = 'monitoring/grafana/dashboards/sluice.json';

export interface DashboardQuery {
  panel: string;
  expr: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readDashboard(repo: string): Record<string, unknown> {
  const doc: unknown = JSON.parse(readFileSync(resolve(repo, DASHBOARD), 'utf8'));
  if (!isRecord(doc)) throw new Error(`${DASHBOARD} is not a JSON object`);
  return doc;
}

/** Every panel target's `expr`, nested rows included. */
export function dashboardQueries(dashboard: Record<string, unknown>): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const visit = (panels: unknown) => {
    if (!Array.isArray(panels)) return;
    for (const p of panels) {
      if (!isRecord(p)) continue;
      visit(p.panels);
      for (const t of Array.isArray(p.targets) ? p.targets : []) {
        if (isRecord(t) && typeof t.expr === 'string') out.push({ panel: String(p.title), expr: t.expr });
      }
    }
  };
  visit(dashboard.panels);
  return out;
}

/** Grafana's variables replaced by what they stand for, so that the query is plain PromQL. */
export function withoutVariables(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$pipeline', '.*');
}

/** The metric names a query selects; throws naming the position when it does not parse. */
export function metricNames(expr: string): string[] {
  const text = withoutVariables(expr);
  const names: string[] = [];
  parser.parse(text).iterate({
    enter(node) {
      if (node.type.isError) throw new Error(`PromQL does not parse at ${node.from}: ${text}`);
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') names.push(text.slice(node.from, node.to));
    },
  });
  return names;
}

/** A histogram's series names stand for its family: `x_bucket`, `x_sum`, `x_count` -> `x`. */
export function familyOf(name: string, histograms: ReadonlySet<string>): string {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && histograms.has(base) ? base : name;
}
