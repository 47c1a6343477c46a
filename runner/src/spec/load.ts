/**
 * Loading a spec: parse the YAML keeping node ranges, apply `--profile` and `--set`, interpolate
 * `${VAR}` from the environment. What comes out is the document (for positions), the plain value
 * (for validation) and the diagnostics of these first stages.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, parse as parseYaml, parseDocument, visit, YAMLMap, type Document, type Node, type Pair } from 'yaml';
import { errorMessage } from '../engine/errors.ts';
import type { Diagnostic, DiagnosticCode } from './diagnostic.ts';
import { interpolateDocument, type Env } from './interpolate.ts';
import { keyText, SpecPositions, type Position, type SpecPath } from './positions.ts';
import { didYouMean } from './suggest.ts';

export const SECTIONS = ['sources', 'steps', 'sinks'] as const;
export type Section = (typeof SECTIONS)[number];
/** What one entry of each section is called in messages. */
export const ROLE: Readonly<Record<Section, string>> = { sources: 'source', steps: 'step', sinks: 'sink' };

/** `--set path=value`: the path is dot-separated keys (numbers index lists); the value is YAML. */
export interface SetOverride {
  path: string;
  value: unknown;
}

export interface LoadOptions {
  /** Variables for `${VAR}`; defaults to nothing (the CLI passes process.env). */
  env?: Env;
  /** Name of an entry of `profiles:` whose sources, steps and sinks replace or add whole entries. */
  profile?: string;
  /** `--set`: changes to what the spec (after the profile) has. */
  sets?: readonly SetOverride[];
  /** `--add`: sources, steps, sinks or keys the spec does not have; applied before `sets`. */
  adds?: readonly SetOverride[];
}

export interface LoadedSpec {
  file: string;
  text: string;
  doc: Document;
  positions: SpecPositions;
  /** The parsed value after profile, overrides and interpolation. */
  value: unknown;
  /** False when the YAML does not parse: later stages are then skipped. */
  yamlOk: boolean;
  profile?: string;
  diagnostics: Diagnostic[];
}

/** Parses `path=value` as given on the command line; the value is read as YAML (`--set steps.x.filter='a > 1'`). */
export function parseSetArgument(arg: string, flag: '--set' | '--add' = '--set'): SetOverride {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new Error(`${flag} expects path=value, got \`${arg}\``);
  const text = arg.slice(eq + 1);
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch {
    value = text; // not YAML on its own (e.g. `a: b: c`): take it as a string
  }
  return { path: arg.slice(0, eq), value };
}

export async function loadSpecFile(file: string, options: LoadOptions = {}): Promise<LoadedSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(err);
    const doc = parseDocument('');
    const lineCounter = new LineCounter();
    return {
      file,
      text: '',
      doc,
      positions: new SpecPositions('', doc, lineCounter),
      value: undefined,
      yamlOk: false,
      diagnostics: [{ code: 'E_FILE', message: `cannot read \`${file}\`: ${reason}`, file, line: 1, col: 1 }],
    };
  }
  return loadSpecText(file, text, options);
}

export function loadSpecText(file: string, text: string, options: LoadOptions = {}): LoadedSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(protectReferences(text), { lineCounter, uniqueKeys: false, prettyErrors: false, keepSourceTokens: false });
  restoreReferences(doc);
  let positions = new SpecPositions(text, doc, lineCounter);
  const diagnostics: Diagnostic[] = [];
  const report: Report = (code, pos, message, hint) => {
    const where = pos === COMMAND_LINE ? {} : { line: pos.line, col: pos.col, span: pos.span };
    diagnostics.push({ code, message, file, ...where, ...(hint ? { hint } : {}) });
  };

  // Only the first: the parser's later errors are mostly consequences of it.
  for (const err of doc.errors.slice(0, 1)) {
    report('E_YAML', positions.atOffset(err.pos[0], err.pos[1]), `invalid YAML: ${err.message.replaceAll(OPEN, '{').replaceAll(CLOSE, '}')}`, YAML_HINTS[err.code]);
  }
  if (doc.errors.length > 0) {
    return { file, text, doc, positions, value: undefined, yamlOk: false, diagnostics };
  }

  reportDuplicateKeys(doc.contents, [], positions, report);

  if (options.profile !== undefined) applyProfile(doc, options.profile, report);
  // Additions first, so a `--set` can refine what an `--add` brought in.
  for (const add of options.adds ?? []) applyAdd(doc, add, report);
  for (const set of options.sets ?? []) applySet(doc, set, positions, report);

  const { problems, originals } = interpolateDocument(doc, options.env ?? {});
  positions = new SpecPositions(text, doc, lineCounter, originals);
  for (const p of problems) {
    const pos = positions.inOriginalScalar(p.node, p.start, p.end);
    if (p.kind === 'unset') {
      // An unused profile may need variables that only its runs set: report only what would run.
      if (p.path[0] === 'profiles') continue;
      report('E_ENV_UNSET', pos, `environment variable \`${p.text}\` is not set and has no default`, `set ${p.text}, or give a default: \`\${${p.text}:-value}\``);
    } else {
      report('E_ENV_SYNTAX', pos, `\`${p.text}\` is not a valid variable reference`, 'write `${NAME}` or `${NAME:-default}`; write `$${` for a literal `${`');
    }
  }

  return { file, text, doc, positions, value: doc.toJS({ maxAliasCount: -1 }), yamlOk: true, ...(options.profile !== undefined ? { profile: options.profile } : {}), diagnostics };
}

/** The fix for the YAML mistakes specs make most (JSONata's `? :` in a plain value is the classic). */
const YAML_HINTS: Partial<Record<string, string>> = {
  BLOCK_AS_IMPLICIT_KEY: 'a plain value cannot contain `: ` (as in JSONata\'s `a ? b : c`): quote the value, or write it as a block scalar after `|`',
  MISSING_CHAR: 'close the quote or bracket that opens here',
  BAD_INDENT: 'keys of one map must start at the same column; indent nested maps further than their parent',
  TAB_AS_INDENT: 'indent with spaces: YAML does not allow tabs for indentation',
  BAD_SCALAR_START: 'a plain value cannot start with `@`, `` ` `` or `%`: quote it',
  UNEXPECTED_TOKEN: 'in a flow map `{ ... }` or list `[ ... ]`, quote values that contain `{`, `}`, `[`, `]` or `,` (such as `${VAR}`)',
};

/*
 * `kafka: { brokers: ${KAFKA_BROKERS:-localhost:9092} }` is how people write it, but in a YAML flow
 * map the braces of `${...}` are syntax. Before parsing, the braces of each reference become
 * private-use characters (one for one, so every offset stays the same); afterwards every scalar
 * gets its braces back.
 */
const OPEN = '\uE000';
const CLOSE = '\uE001';

export function protectReferences(text: string): string {
  return text.replace(/\$\{([^{}\n]*)\}/g, (_, body: string) => `$${OPEN}${body}${CLOSE}`);
}

function restoreReferences(doc: Document): void {
  visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === 'string' && (node.value.includes(OPEN) || node.value.includes(CLOSE))) {
        node.value = node.value.replaceAll(OPEN, '{').replaceAll(CLOSE, '}');
      }
    },
  });
}

/** Where a mistake made in `--profile` or `--set` is reported: not at a line of the file. */
const COMMAND_LINE = 'command line';
type Report = (code: DiagnosticCode, pos: Position | typeof COMMAND_LINE, message: string, hint?: string) => void;

/** Is this map the list of node names of a section (`sources:` or `profiles.x.sources:`)? */
function isSectionPath(path: SpecPath): boolean {
  const last = path[path.length - 1];
  return (path.length === 1 || (path.length === 3 && path[0] === 'profiles')) && SECTIONS.includes(last as Section);
}

/** With `uniqueKeys: false` the parser keeps duplicate keys; they are reported here, by what they mean. */
function reportDuplicateKeys(node: unknown, path: SpecPath, positions: SpecPositions, report: Report): void {
  if (isMap(node)) {
    const seen = new Map<string, Pair>();
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const k = keyText(item.key);
      const first = seen.get(k);
      if (first && isScalar(item.key) && item.key.range && isScalar(first.key) && first.key.range) {
        const pos = positions.atOffset(item.key.range[0], item.key.range[1]);
        const firstLine = positions.atOffset(first.key.range[0]).line;
        if (isSectionPath(path)) {
          report('E_DUPLICATE_NAME', pos, `\`${k}\` is defined twice in \`${String(path[path.length - 1])}\` (first on line ${firstLine})`, 'give each source, step and sink its own name');
        } else {
          report('E_DUPLICATE_KEY', pos, `key \`${k}\` appears twice (first on line ${firstLine})`, 'remove one of them; YAML would keep only the last');
        }
      }
      if (!first) seen.set(k, item);
      reportDuplicateKeys(item.value, [...path, k], positions, report);
    }
  } else if (node && typeof node === 'object' && 'items' in node && Array.isArray((node as { items: unknown[] }).items)) {
    (node as { items: unknown[] }).items.forEach((item, i) => reportDuplicateKeys(item, [...path, i], positions, report));
  }
}

/** Profile entries replace or add whole entries: the profile's own pairs move in, so positions stay theirs. */
function applyProfile(doc: Document, name: string, report: Report): void {
  const profiles = doc.get('profiles', true);
  const profile = isMap(profiles) ? profiles.get(name, true) : undefined;
  if (!isMap(profile)) {
    const known = isMap(profiles) ? profiles.items.map((p) => keyText(p.key)) : [];
    report(
      'E_PROFILE_UNKNOWN',
      COMMAND_LINE,
      `--profile \`${name}\`: no such profile${didYouMean(name, known)}`,
      known.length ? `profiles in this spec: ${known.map((k) => `\`${k}\``).join(', ')}` : 'this spec has no `profiles:` section',
    );
    return;
  }
  for (const section of SECTIONS) {
    const entries = profile.get(section, true);
    if (!isMap(entries)) continue;
    const existing = doc.get(section, true);
    const targetMap = isMap(existing) ? existing : new YAMLMap();
    if (targetMap !== existing) doc.set(section, targetMap);
    for (const pair of entries.items) {
      const k = keyText(pair.key);
      const at = targetMap.items.findIndex((p) => keyText(p.key) === k);
      if (at >= 0) targetMap.items[at] = pair;
      else targetMap.items.push(pair);
    }
  }
}

/** `a.b.0.c` -> `['a', 'b', 0, 'c']`, or undefined when a segment is empty. */
function overridePath(text: string): (string | number)[] | undefined {
  const path = text.split('.').map((seg) => (/^[0-9]+$/.test(seg) ? Number(seg) : seg));
  return path.some((seg) => seg === '') ? undefined : path;
}

/** The YAML node at `path`, or undefined when some segment does not exist. */
function nodeIn(doc: Document, path: SpecPath): unknown {
  let node: unknown = doc.contents;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg));
      if (!pair) return undefined;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
    } else {
      return undefined;
    }
  }
  return node;
}

/** How many leading segments of `path` exist in the document. */
function existingDepth(doc: Document, path: SpecPath): number {
  let depth = 0;
  while (depth < path.length && nodeIn(doc, path.slice(0, depth + 1)) !== undefined) depth++;
  return depth;
}

function keysOf(node: unknown): string[] {
  return isMap(node) ? node.items.map((p) => keyText(p.key)) : [];
}

/** What is missing at `path[depth]`, as a message names it: "there is no source `activites`", "`a.b` does not exist". */
function missingText(doc: Document, path: SpecPath, depth: number): string {
  const parent = path.slice(0, depth);
  const name = String(path[depth]);
  const suggestion = didYouMean(name, keysOf(nodeIn(doc, parent)));
  if (isSectionPath(parent)) return `there is no ${ROLE[parent[parent.length - 1] as Section]} \`${name}\`${suggestion}`;
  return `\`${path.slice(0, depth + 1).join('.')}\` does not exist${suggestion}`;
}

/**
 * `--set` changes what exists: a value, or a key added to a map that exists. It never adds a whole
 * source, step or sink, so a mistyped name (`sources.activites...`) is refused instead of quietly
 * adding a node; `--add` is the form that adds.
 */
function applySet(doc: Document, set: SetOverride, positions: SpecPositions, report: Report): void {
  const path = overridePath(set.path);
  if (!path) {
    report('E_SET_PATH', COMMAND_LINE, `--set \`${set.path}\`: the path has an empty segment`);
    return;
  }
  const depth = existingDepth(doc, path);
  const addsEntry = depth === path.length - 1 && isSectionPath(path.slice(0, -1));
  // A missing last key is fine (the map exists; the schema checks the key), unless it is a new entry.
  if (depth < path.length - 1 || addsEntry) {
    const entry = isSectionPath(path.slice(0, depth)) ? path.slice(0, depth + 1).join('.') : undefined;
    report(
      'E_SET_PATH',
      COMMAND_LINE,
      `--set \`${set.path}\`: ${missingText(doc, path, depth)}`,
      entry ? `\`--set\` changes only what exists; to add \`${entry}\`, write \`--add ${entry}=<entry>\`` : '`--set` changes only what exists: check the path against the spec',
    );
    return;
  }
  try {
    doc.setIn(path, doc.createNode(set.value) as Node);
  } catch (err) {
    report('E_SET_PATH', positions.at(path), `cannot apply \`--set ${set.path}\`: ${errorMessage(err)}`);
  }
}

/** `--add`: adds what does not exist yet (a source, step, sink or key), in a map that does; a missing section is created. */
function applyAdd(doc: Document, add: SetOverride, report: Report): void {
  const path = overridePath(add.path);
  if (!path) {
    report('E_SET_PATH', COMMAND_LINE, `--add \`${add.path}\`: the path has an empty segment`);
    return;
  }
  if (nodeIn(doc, path) !== undefined) {
    report('E_SET_PATH', COMMAND_LINE, `--add \`${add.path}\`: it exists already`, `to change it, write \`--set ${add.path}=<value>\``);
    return;
  }
  const parent = path.slice(0, -1);
  const newSection = parent.length === 1 && SECTIONS.includes(parent[0] as Section);
  if (!isMap(nodeIn(doc, parent)) && !(newSection && nodeIn(doc, parent) === undefined)) {
    const depth = existingDepth(doc, parent);
    const problem = depth < parent.length ? missingText(doc, parent, depth) : `\`${parent.join('.')}\` is not a map`;
    report('E_SET_PATH', COMMAND_LINE, `--add \`${add.path}\`: ${problem}`);
    return;
  }
  doc.setIn(path, doc.createNode(add.value) as Node);
}
