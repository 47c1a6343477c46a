/**
 * Golden-file cases of a pipeline spec. Beside `pipelines/<stem>.yaml` live
 * `pipelines/tests/<stem>/<case>/` folders holding:
 *   <source>.jsonl   the raw message values each source reads, one per line (a missing file = no input)
 *   <sink>.jsonl     what each sink is expected to write: one OutboundMessage (`{"key":…,"value":…}`) per line
 *   case.yaml        optional: `description`, `set: { path: value }` overrides, `profile`, `env`,
 *                    `interleave` (the order in which the sources hand over their lines)
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../engine/errors.ts';
import type { SetOverride } from '../spec/load.ts';

export interface GoldenCase {
  pipelineFile: string;
  name: string;
  dir: string;
  description?: string;
  profile?: string;
  sets: SetOverride[];
  env: Record<string, string>;
  /**
   * `interleave: [{ employees: 3 }, { activities: 5 }, ...]`: the sources hand over their lines in
   * this order, each entry one batch of that many lines (what is left follows, source by source).
   * Without it every source reads its whole file concurrently with the others.
   */
  interleave?: InterleaveEntry[];
}

/** One entry of `interleave`: lines of a source, or `{ clock: <ISO time> }`, moving the manual clock there and ticking. */
export type InterleaveEntry = { source: string; lines: number } | { clock: number };

/** The folder holding a pipeline's cases: `<dir>/tests/<stem>/`. */
export function casesDirOf(pipelineFile: string): string {
  const stem = path.basename(pipelineFile).replace(/\.ya?ml$/, '');
  return path.join(path.dirname(pipelineFile), 'tests', stem);
}

export async function findCases(pipelineFile: string): Promise<GoldenCase[]> {
  const root = casesDirOf(pipelineFile);
  let entries: string[];
  try {
    entries = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
  entries.sort();
  return Promise.all(entries.map((name) => readCase(pipelineFile, name, path.join(root, name))));
}

async function readCase(pipelineFile: string, name: string, dir: string): Promise<GoldenCase> {
  const found: GoldenCase = { pipelineFile, name, dir, sets: [], env: {} };
  let text: string;
  try {
    text = await readFile(path.join(dir, 'case.yaml'), 'utf8');
  } catch {
    return found;
  }
  const where = path.join(dir, 'case.yaml');
  const doc: unknown = parseYaml(text);
  if (doc === null || doc === undefined) return found;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('E_CASE', 'case.yaml must be a map', where);
  for (const [key, value] of Object.entries(doc)) {
    switch (key) {
      case 'description':
        found.description = String(value);
        break;
      case 'profile':
        found.profile = String(value);
        break;
      case 'set':
        found.sets = Object.entries(asMap(value, 'set', where)).map(([p, v]) => ({ path: p, value: v }));
        break;
      case 'env':
        found.env = Object.fromEntries(Object.entries(asMap(value, 'env', where)).map(([k, v]) => [k, String(v)]));
        break;
      case 'interleave':
        found.interleave = interleaving(value, where);
        break;
      default:
        throw new ConfigError('E_CASE', `unknown key \`${key}\` in case.yaml (known: description, profile, set, env, interleave)`, where);
    }
  }
  return found;
}

function interleaving(value: unknown, where: string): InterleaveEntry[] {
  const shape =
    '`interleave` in case.yaml must be a list of `{ <source>: <lines> }` and `{ clock: <ISO time> }` entries, e.g. `[{ employees: 2 }, { activities: 5 }, { clock: 2025-01-06T08:05:00Z }]`';
  if (!Array.isArray(value)) throw new ConfigError('E_CASE', shape, where);
  return value.map((entry): InterleaveEntry => {
    const pairs = entry !== null && typeof entry === 'object' && !Array.isArray(entry) ? Object.entries(entry) : [];
    const [source, lines] = pairs[0] ?? [];
    if (pairs.length === 1 && source === 'clock') {
      // YAML reads an unquoted timestamp as a Date.
      const ms = lines instanceof Date ? lines.getTime() : typeof lines === 'string' ? Date.parse(lines) : Number.NaN;
      if (Number.isNaN(ms)) throw new ConfigError('E_CASE', `\`clock\` in case.yaml interleave must be an ISO time like 2025-01-06T08:05:00Z, got ${String(lines)}`, where);
      return { clock: ms };
    }
    if (pairs.length !== 1 || typeof source !== 'string' || typeof lines !== 'number' || !Number.isInteger(lines) || lines < 1) throw new ConfigError('E_CASE', shape, where);
    return { source, lines };
  });
}

function asMap(value: unknown, key: string, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('E_CASE', `\`${key}\` in case.yaml must be a map`, where);
  }
  return value as Record<string, unknown>;
}
