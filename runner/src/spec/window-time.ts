/**
 * A window needs a time it can trust. Without `time:` it uses each record's own event time, which
 * for lines of a file or of stdin (in the json and text formats) is only when sluice read them:
 * five hours of data read in a second would fall into one window. Such a window is refused; the
 * fix is a `time:` expression naming the event's timestamp.
 */
import { decodesEventTime, stampsArrivalTime } from '../engine/event-time.ts';
import type { GraphProblem } from './graph-check.ts';
import { findDef, type ComponentRegistry } from './registry.ts';
import type { ResolvedEntry } from './validate.ts';

/** The step kind whose `window.time` this checks. */
const WINDOW_KIND = 'window';

function hasTime(config: unknown): boolean {
  if (typeof config !== 'object' || config === null || !('window' in config)) return false;
  const window = config.window;
  return typeof window === 'object' && window !== null && 'time' in window && window.time !== undefined;
}

/** Does this source stamp its records with the time they were read (its format reading no event time)? */
function readsWallClock(source: ResolvedEntry, registry: ComponentRegistry): boolean {
  const def = findDef(registry.sources, source.kind);
  if (!def || !stampsArrivalTime(def)) return false;
  const format = source.format ? findDef(registry.formats, source.format.kind) : undefined;
  return !(format && decodesEventTime(format));
}

/**
 * The sources upstream of `step` (through steps that pass records' times on) whose records carry
 * only the wall clock. Another window upstream ends the search: its outputs carry its windows' time.
 */
function wallClockSources(step: ResolvedEntry, byName: ReadonlyMap<string, ResolvedEntry>, registry: ComponentRegistry): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const pending = step.inputs.map((i) => i.node);
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (seen.has(name)) continue;
    seen.add(name);
    const node = byName.get(name);
    if (!node) continue;
    if (node.section === 'sources') {
      if (readsWallClock(node, registry)) found.push(name);
    } else if (node.section === 'steps' && node.kind !== WINDOW_KIND) {
      pending.push(...node.inputs.map((i) => i.node));
    }
  }
  return found.sort();
}

export function checkWindowTimes(entries: readonly ResolvedEntry[], registry: ComponentRegistry): GraphProblem[] {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const problems: GraphProblem[] = [];
  for (const step of entries) {
    if (step.section !== 'steps' || step.kind !== WINDOW_KIND || hasTime(step.config)) continue;
    const sources = wallClockSources(step, byName, registry);
    if (sources.length === 0) continue;
    const kinds = sources.map((s) => `\`${s}\` (${byName.get(s)?.kind})`).join(', ');
    problems.push({
      code: 'E_WINDOW_TIME',
      path: [...step.path, 'window'],
      target: 'key',
      message: `the window of step \`${step.name}\` has no \`time:\`, and the records of ${sources.length === 1 ? 'source' : 'sources'} ${kinds} carry only the time they were read: they would be windowed by the wall clock`,
      hint: 'name the event time: `time: <field>`, a JSONata expression giving an ISO 8601 string or epoch milliseconds, e.g. `time: created_at`',
    });
  }
  return problems;
}
