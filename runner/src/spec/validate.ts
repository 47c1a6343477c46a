/**
 * Validation in stages, like `vector validate`: YAML syntax -> schema (top level, then each entry
 * against its own kind's schema) -> JSONata expressions -> graph -> environment variables. Every
 * stage that can run does, so one pass reports all the errors. Nothing here connects to anything.
 */
import type { JsonSchema } from '../engine/component.ts';
import { EXPRESSION_KEYWORD } from '../engine/component.ts';
import { ExpressionSyntaxError } from '../engine/errors.ts';
import { compileExpression, functionNames, JSONATA_FUNCTIONS, SLUICE_FUNCTIONS } from '../engine/expression.ts';
import { compositionCallStarts, recognizeBuiltin } from '../engine/window/aggregates.ts';
import { parseSchedule, ScheduleError } from '../engine/schedule.ts';
import { CRON_KEYWORD, TIMEZONE_KEYWORD } from '../engine/schema.ts';
import { isTimeZone } from '../engine/time.ts';
import { MAIN_PORT, parsePortRef, type PortRef } from '../engine/graph.ts';
import { findAnnotated } from './annotations.ts';
import { sortDiagnostics, type Diagnostic, type DiagnosticCode } from './diagnostic.ts';
import { checkGraph, outputPorts, SINK_PORTS, type GraphEntry, type GraphInput } from './graph-check.ts';
import { ROLE, SECTIONS, type LoadedSpec, type Section } from './load.ts';
import { skeletonSchema } from './pipeline-schema.ts';
import { isScalar } from 'yaml';
import { type Position, type SpecPath, type Target } from './positions.ts';
import { builtinComponents, DEFAULT_FORMAT, findDef, NODE_NAME_PATTERN, PORT_REF_PATTERN, type ComponentRegistry } from './registry.ts';
import { checkSchema, describeObject, fieldName, show } from './schema-errors.ts';
import { closest, didYouMean } from './suggest.ts';
import type { PipelineSpec, SinkEntry, SourceEntry, StepEntry } from './types.ts';
import { checkWindowTimes } from './window-time.ts';

/** An entry whose kind is known, with its config: what the plan is compiled from. */
export interface ResolvedEntry {
  section: Section;
  name: string;
  /** Where the entry is in the document (a profile's entry keeps its own place). */
  path: SpecPath;
  kind: string;
  /** Sources and sinks: the value under the kind key. Steps: the entry without `from`. */
  config: unknown;
  /** Sources only. */
  format?: { kind: string; config: unknown };
  inputs: PortRef[];
  /** The entry's own output ports (`out`, `errors`, extra ones); a sink's: `errors`. */
  ports: string[];
}

/** What the graph stage needs of an entry, resolved or not (so one bad entry does not cascade). */
interface EntryCheck {
  section: Section;
  name: string;
  path: SpecPath;
  /** Undefined when `from` is malformed. */
  inputs: PortRef[] | undefined;
  /** Inputs a step's config names besides `from` (a join's table), with where each is written. */
  side?: { ref: PortRef; path: SpecPath }[];
  /** Undefined when the kind is unknown: any port is then accepted. */
  ports: string[] | undefined;
  resolved?: ResolvedEntry;
}

/** A spec that passed every stage. */
export interface ValidSpec {
  spec: PipelineSpec;
  /** Entries after `--profile`, in spec order per section. */
  entries: ResolvedEntry[];
}

export interface ValidationResult {
  /** Sorted by position; empty when the spec is valid. */
  diagnostics: Diagnostic[];
  valid?: ValidSpec;
}

const SKELETON = skeletonSchema();
const NODE_NAME_RE = new RegExp(NODE_NAME_PATTERN);
const PORT_REF_RE = new RegExp(PORT_REF_PATTERN);

type Record_ = Record<string, unknown>;
const isRecord = (v: unknown): v is Record_ => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Collects diagnostics with positions; the stages only say which path and what. */
class Reporter {
  readonly diagnostics: Diagnostic[] = [];
  constructor(private readonly loaded: LoadedSpec) {}

  at(code: DiagnosticCode, path: SpecPath, target: Target, message: string, hint?: string): void {
    this.push(code, this.loaded.positions.at(path, target), message, hint);
  }

  push(code: DiagnosticCode, pos: Position, message: string, hint?: string): void {
    this.diagnostics.push({ code, message, file: this.loaded.file, line: pos.line, col: pos.col, span: pos.span, ...(hint ? { hint } : {}) });
  }
}

export function validateSpec(loaded: LoadedSpec, registry: ComponentRegistry = builtinComponents): ValidationResult {
  if (!loaded.yamlOk) return { diagnostics: sortDiagnostics(loaded.diagnostics) };
  const report = new Reporter(loaded);
  const root = loaded.value;

  // Stage: schema of the top level.
  if (!isRecord(root)) {
    report.at('E_SCHEMA_TYPE', [], 'value', `the spec must be a map with \`version\`, \`name\`, \`sources\` and \`sinks\`, got ${show(root)}`);
    return { diagnostics: sortDiagnostics([...loaded.diagnostics, ...report.diagnostics]) };
  }
  for (const p of checkSchema(SKELETON, root, [])) {
    if (p.path.length === 1 && p.path[0] === 'name' && p.code === 'E_SCHEMA_VALUE') {
      report.at('E_NAME', p.path, p.target, `pipeline name ${show(root.name)} must start with a lowercase letter and use only a-z, 0-9 and \`-\``);
    } else if (p.propertyName !== undefined) {
      continue; // node and profile names: checked below, with a message that says what a name may be
    } else {
      report.at(p.code, p.path, p.target, p.message, p.hint);
    }
  }

  // Stage: each entry against its kind (main sections, then every profile's entries).
  const main: EntryCheck[] = [];
  for (const section of SECTIONS) {
    for (const [name, entry] of entriesOf(root[section])) {
      const checked = checkEntry(section, name, entry, [section, name], registry, report);
      if (checked) main.push(checked);
    }
  }
  const profileEntries = new Map<string, EntryCheck[]>();
  for (const [profile, value] of entriesOf(root.profiles)) {
    if (!NODE_NAME_RE.test(profile)) {
      report.at('E_NAME', ['profiles', profile], 'key', `profile name \`${profile}\` must start with a lowercase letter and use only a-z, 0-9, \`_\` and \`-\``);
    }
    // The active profile's entries now stand in the sections: they were checked there.
    if (!isRecord(value) || profile === loaded.profile) continue;
    const list: EntryCheck[] = [];
    for (const section of SECTIONS) {
      for (const [name, entry] of entriesOf(value[section])) {
        const checked = checkEntry(section, name, entry, ['profiles', profile, section, name], registry, report);
        if (checked) list.push(checked);
      }
    }
    profileEntries.set(profile, list);
  }

  // Stage: expressions, and schedules (cron and time zone values).
  for (const entry of [...main, ...[...profileEntries.values()].flat()]) {
    if (entry.resolved) checkExpressions(entry.resolved, registry, loaded, report);
    if (entry.resolved) checkSchedules(entry.resolved, registry, loaded, report);
  }

  // Stage: graph. The spec as it will run; without --profile, also each profile merged into it.
  const mainProblems = graphDiagnostics(main, loaded, registry);
  report.diagnostics.push(...mainProblems);
  if (loaded.profile === undefined) {
    const seen = new Set(mainProblems.map((d) => `${d.line}:${d.col}:${d.code}`));
    for (const [profile, entries] of profileEntries) {
      for (const d of graphDiagnostics(mergeProfile(main, entries), loaded, registry)) {
        if (!seen.has(`${d.line}:${d.col}:${d.code}`)) report.diagnostics.push({ ...d, message: `${d.message} (with profile \`${profile}\`)` });
      }
    }
  }

  // Stage: environment (found while loading) and the load-time problems.
  const diagnostics = sortDiagnostics([...loaded.diagnostics, ...report.diagnostics]);
  if (diagnostics.length > 0) return { diagnostics };
  const resolved = main.flatMap((e) => (e.resolved ? [e.resolved] : []));
  return { diagnostics, valid: { spec: toPipelineSpec(root, resolved), entries: resolved } };
}

function entriesOf(section: unknown): [string, unknown][] {
  return isRecord(section) ? Object.entries(section) : [];
}

/* ------------------------------------------------------------------ entries */

function kindNames(section: Section, registry: ComponentRegistry): string[] {
  return registry[section].map((d) => d.name);
}

function listOf(names: readonly string[]): string {
  return names.map((n) => `\`${n}\``).join(', ');
}

/** The kinds of a section whose config has the field `key` (a step's: beside its kind key, as a window's `group_by`). */
function kindsWithField(section: Section, key: string, registry: ComponentRegistry): string[] {
  return registry[section].filter((d) => d.name !== key && isRecord(d.schema.properties) && key in d.schema.properties).map((d) => d.name);
}

function checkEntry(section: Section, name: string, entry: unknown, path: SpecPath, registry: ComponentRegistry, report: Reporter): EntryCheck | undefined {
  const role = ROLE[section];
  if (!NODE_NAME_RE.test(name)) {
    report.at('E_NAME', path, 'key', `${role} name \`${name}\` must start with a lowercase letter and use only a-z, 0-9, \`_\` and \`-\``, 'dots are not allowed: they address ports, as in `hourly.late`');
  }
  if (!isRecord(entry)) return undefined; // the top-level schema said it must be a map

  const kinds = kindNames(section, registry);
  const keys = Object.keys(entry);
  const kindKeys = keys.filter((k) => kinds.includes(k));
  const fixedKeys = section === 'sources' ? ['format'] : ['from'];
  const where = describeObject(path);

  if (kindKeys.length === 0) {
    // A misspelt kind is the likeliest reason: say so at the misspelt key. A key that no kind has as
    // a field (`s3:` under a sink) is a kind that does not exist; a field of some kind (`path:`
    // without `file:` above it) means the kind key itself is missing.
    const kindList = kinds.length ? `${role} kinds: ${listOf(kinds)}` : `no ${role} kinds are installed`;
    let reported = false;
    for (const k of keys) {
      if (fixedKeys.includes(k)) continue;
      const guess = closest(k, kinds);
      if (guess) {
        report.at('E_SCHEMA_UNKNOWN_KEY', [...path, k], 'key', `unknown key \`${k}\` in ${where} (did you mean \`${guess}\`?)`);
        reported = true;
      } else if (kindsWithField(section, k, registry).length === 0) {
        report.at('E_KIND_UNKNOWN', [...path, k], 'key', `\`${k}\` is not a ${role} kind`, kindList);
        reported = true;
      }
    }
    if (!reported) {
      // The kinds go in the hint, so the message stays the same when a kind is added.
      const shape = section === 'sources' ? '`{ <kind>: {config}, format: ... }`' : `\`{ from: ..., <kind>: ... }\``;
      const field = keys.find((k) => !fixedKeys.includes(k));
      const owners = field === undefined ? [] : kindsWithField(section, field, registry);
      report.at(
        'E_KIND_MISSING',
        path,
        'key',
        `${where} has no kind key`,
        owners.length
          ? `\`${field}\` belongs under a kind key, e.g. \`${owners[0]}: { ${field}: ... }\`; ${kindList}`
          : kinds.length ? `a ${role} is ${shape}, with one of ${listOf(kinds)} as <kind>` : kindList,
      );
    }
    return { section, name, path, inputs: checkFrom(section, entry, path, report), ports: undefined };
  }
  if (kindKeys.length > 1) {
    report.at(
      'E_KIND_MULTIPLE',
      [...path, kindKeys[1]!],
      'key',
      `${where} has two kinds, \`${kindKeys[0]}\` and \`${kindKeys[1]}\`: a ${role} has exactly one`,
      section === 'steps' ? 'split it into two steps, the second reading `from` the first' : `make a second ${role} for the other kind`,
    );
    return { section, name, path, inputs: checkFrom(section, entry, path, report), ports: undefined };
  }

  const kind = kindKeys[0]!;
  const inputs = checkFrom(section, entry, path, report);
  if (section === 'steps') {
    const def = findDef(registry.steps, kind)!;
    const { from: _from, ...config } = entry;
    // Unknown keys at the entry level: `from` is known here though the kind's schema does not list it.
    const known = ['from', ...Object.keys((def.schema.properties as Record_ | undefined) ?? {})];
    const stripped: Record_ = {};
    for (const [k, v] of Object.entries(config)) {
      if (known.includes(k)) stripped[k] = v;
      else report.at('E_SCHEMA_UNKNOWN_KEY', [...path, k], 'key', `unknown key \`${k}\` in ${where}${didYouMean(k, known)}`, closest(k, known) ? undefined : `keys of a ${kind} step: ${listOf(known)}`);
    }
    const problems = checkSchema(def.schema, stripped, path);
    for (const p of problems) report.at(p.code, p.path, p.target, p.message, p.hint);
    const side = problems.length === 0 && def.sideInputs ? def.sideInputs(stripped).map((s) => ({ ref: { node: s.node, port: MAIN_PORT }, path: [...path, ...s.path] })) : [];
    const ports = outputPorts(def.ports);
    const all = [...(inputs ?? []), ...side.map((s) => s.ref)];
    return { section, name, path, inputs, side, ports, resolved: { section, name, path, kind, config, inputs: all, ports } };
  }

  for (const k of keys) {
    if (k === kind || fixedKeys.includes(k) || (section === 'sources' && k === 'from')) continue;
    const known = [...kinds, ...fixedKeys];
    report.at('E_SCHEMA_UNKNOWN_KEY', [...path, k], 'key', `unknown key \`${k}\` in ${where}${didYouMean(k, known)}`, `a ${role} has one kind key and ${listOf(fixedKeys)}`);
  }
  const def = section === 'sources' ? findDef(registry.sources, kind)! : findDef(registry.sinks, kind)!;
  const config = entry[kind] === null ? {} : entry[kind];
  reportSchema(def.schema, config, [...path, kind], report);
  if (section === 'sources') {
    const format = checkFormat(entry.format, [...path, 'format'], registry, report);
    const ports = outputPorts();
    return { section, name, path, inputs: [], ports, resolved: { section, name, path, kind, config, ...(format ? { format } : {}), inputs: [], ports } };
  }
  const ports = [...SINK_PORTS];
  return { section, name, path, inputs, ports, resolved: { section, name, path, kind, config, inputs: inputs ?? [], ports } };
}

function reportSchema(schema: JsonSchema, value: unknown, path: SpecPath, report: Reporter): void {
  for (const p of checkSchema(schema, value, path)) report.at(p.code, p.path, p.target, p.message, p.hint);
}

/** `from`: one reference or a non-empty list; each `node` or `node.port`. Returns the refs when well-formed. */
function checkFrom(section: Section, entry: Record_, path: SpecPath, report: Reporter): PortRef[] | undefined {
  if (section === 'sources') {
    if ('from' in entry) report.at('E_SCHEMA_UNKNOWN_KEY', [...path, 'from'], 'key', `unknown key \`from\` in ${describeObject(path)}: sources read from outside systems, not from other nodes`);
    return undefined;
  }
  const from = entry.from;
  if (from === undefined) {
    report.at('E_SCHEMA_MISSING_KEY', path, 'key', `${describeObject(path)} is missing required key \`from\``, 'name the source or step it reads, e.g. `from: activities`');
    return undefined;
  }
  const refs = typeof from === 'string' ? [from] : Array.isArray(from) ? from : undefined;
  if (!refs || refs.length === 0) {
    report.at('E_SCHEMA_TYPE', [...path, 'from'], 'value', `\`from\` must be a node name or a list of them, got ${show(from)}`, 'e.g. `from: inserts`, `from: hourly.late` or `from: [inserts, updates]`');
    return undefined;
  }
  const out: PortRef[] = [];
  refs.forEach((ref, i) => {
    const refPath = typeof from === 'string' ? [...path, 'from'] : [...path, 'from', i];
    if (typeof ref !== 'string' || !PORT_REF_RE.test(ref)) {
      report.at('E_SCHEMA_VALUE', refPath, 'value', `\`from\` must name a source or step like \`inserts\`, or a port like \`hourly.late\`, got ${show(ref)}`);
      return;
    }
    out.push(parsePortRef(ref));
  });
  return out.length === refs.length ? out : undefined;
}

function checkFormat(format: unknown, path: SpecPath, registry: ComponentRegistry, report: Reporter): { kind: string; config: unknown } | undefined {
  const names = registry.formats.map((f) => f.name);
  const unknown = (name: string, at: Target): undefined => {
    report.at('E_FORMAT_UNKNOWN', at === 'key' ? [...path, name] : path, at, `unknown format \`${name}\`${didYouMean(name, names)}`, names.length ? `formats: ${listOf(names)}` : undefined);
    return undefined;
  };
  if (format === undefined) return { kind: DEFAULT_FORMAT, config: {} };
  if (typeof format === 'string') {
    const def = findDef(registry.formats, format);
    if (!def) return unknown(format, 'value');
    reportSchema(def.schema, {}, path, report);
    return { kind: format, config: {} };
  }
  if (isRecord(format) && Object.keys(format).length === 1) {
    const [name, options] = Object.entries(format)[0]!;
    const def = findDef(registry.formats, name);
    if (!def) return unknown(name, 'key');
    const config = options ?? {};
    reportSchema(def.schema, config, [...path, name], report);
    return { kind: name, config };
  }
  report.at('E_SCHEMA_TYPE', path, 'value', `\`format\` must be a format name or a map with one format name as key, got ${show(format)}`, 'e.g. `format: debezium` or `format: { debezium: { ... } }`');
  return undefined;
}

/* ------------------------------------------------------------------ expressions */

function defSchema(entry: ResolvedEntry, registry: ComponentRegistry): JsonSchema | undefined {
  const def = findDef<{ name: string; schema: JsonSchema }>(registry[entry.section], entry.kind);
  return def?.schema;
}

/** An entry's config and its format's options, each with its schema and where it is: what annotations are looked up in. */
function annotationTargets(entry: ResolvedEntry, registry: ComponentRegistry): { schema: JsonSchema; value: unknown; path: SpecPath }[] {
  const schema = defSchema(entry, registry);
  const configPath = entry.section === 'steps' ? entry.path : [...entry.path, entry.kind];
  const targets: { schema: JsonSchema; value: unknown; path: SpecPath }[] = [];
  if (schema) targets.push({ schema, value: entry.config, path: configPath });
  if (entry.format && isRecord(entry.format.config)) {
    const formatDef = findDef(registry.formats, entry.format.kind);
    if (formatDef) targets.push({ schema: formatDef.schema, value: entry.format.config, path: [...entry.path, 'format', entry.format.kind] });
  }
  return targets;
}

function checkExpressions(entry: ResolvedEntry, registry: ComponentRegistry, loaded: LoadedSpec, report: Reporter): void {
  const targets = annotationTargets(entry, registry);
  for (const t of targets) {
    for (const { path, value } of findAnnotated(t.schema, t.value, EXPRESSION_KEYWORD)) {
      if (typeof value !== 'string') continue;
      const fullPath = [...t.path, ...path];
      // A value the schema already refused (e.g. a computed key where only plain paths go) gets one error, not two.
      const at = loaded.positions.at(fullPath);
      if (report.diagnostics.some((d) => d.line === at.line && d.col === at.col)) continue;
      try {
        compileExpression(value);
      } catch (err) {
        if (!(err instanceof ExpressionSyntaxError)) throw err;
        const node = loaded.positions.exactNodeAt(fullPath);
        const pos = isScalar(node) ? loaded.positions.inScalar(node, err.position) : loaded.positions.at(fullPath);
        report.push('E_EXPR_SYNTAX', pos, `\`${fieldName(fullPath)}\` in ${describeObject(fullPath.slice(0, -1))} is not valid JSONata: ${err.message}`, expressionHint(err));
        continue;
      }
      checkFunctionNames(value, fullPath, isWindowAggregate(entry, path), loaded, report);
    }
  }
}

/* ------------------------------------------------------------------ schedules */

/** IANA names for "did you mean" (the runtime also takes aliases and any case, which isTimeZone accepts). */
let timeZoneNames: string[] | undefined;

/**
 * `x-cron` strings must be cron schedules as engine/schedule.ts (node-cron) takes them, pointed at
 * the bad field inside the string; `x-timezone` strings must be time zones the runtime knows. A
 * value the schema already refused gets no second error.
 */
function checkSchedules(entry: ResolvedEntry, registry: ComponentRegistry, loaded: LoadedSpec, report: Reporter): void {
  for (const t of annotationTargets(entry, registry)) {
    const annotated = (keyword: string) =>
      findAnnotated(t.schema, t.value, keyword).flatMap(({ path, value }) => {
        const fullPath = [...t.path, ...path];
        const at = loaded.positions.at(fullPath);
        const reported = report.diagnostics.some((d) => d.line === at.line && d.col === at.col);
        return typeof value === 'string' && !reported ? [{ fullPath, value }] : [];
      });
    for (const { fullPath, value } of annotated(CRON_KEYWORD)) {
      try {
        parseSchedule(value, 'UTC');
      } catch (err) {
        if (!(err instanceof ScheduleError)) throw err;
        const node = loaded.positions.exactNodeAt(fullPath);
        const pos = isScalar(node) && err.index !== undefined ? loaded.positions.inScalar(node, err.index, err.length) : loaded.positions.at(fullPath);
        report.push('E_SCHEMA_VALUE', pos, `\`${fieldName(fullPath)}\` ${err.reason}`, err.hint);
      }
    }
    for (const { fullPath, value } of annotated(TIMEZONE_KEYWORD)) {
      if (isTimeZone(value)) continue;
      timeZoneNames ??= ['UTC', ...Intl.supportedValuesOf('timeZone')];
      report.at(
        'E_SCHEMA_VALUE',
        fullPath,
        'value',
        `\`${fieldName(fullPath)}\` must be an IANA time zone like Europe/Berlin or UTC, got ${show(value)}${didYouMean(value, timeZoneNames)}`,
        'time zones are named as in the tz database: Region/City (America/New_York), or UTC',
      );
    }
  }
}

/** The functions every expression may call: JSONata's and sluice's own. */
const KNOWN_FUNCTIONS: readonly string[] = [...JSONATA_FUNCTIONS, ...Object.keys(SLUICE_FUNCTIONS)];

/** Is `path` (inside the entry's config) an `aggregate:` entry of a window step? Only there may `$countDistinct` and the like be called, as built-in aggregates. */
function isWindowAggregate(entry: ResolvedEntry, path: SpecPath): boolean {
  return entry.section === 'steps' && entry.kind === 'window' && path[0] === 'aggregate' && path.length === 2;
}

/**
 * Every function an expression calls must exist: JSONata's, sluice's time functions, one the
 * expression binds itself, or (in a window aggregate, as the whole expression or as a call of a
 * composition) a built-in aggregate. An unknown one would fail every record at run time, sending
 * it to the errors port.
 */
function checkFunctionNames(source: string, fullPath: SpecPath, aggregate: boolean, loaded: LoadedSpec, report: Reporter): void {
  const { calls, bound } = functionNames(source);
  let builtinCalls: number[] | undefined;
  for (const call of calls) {
    if (KNOWN_FUNCTIONS.includes(call.name) || bound.has(call.name)) continue;
    const isAggregate = recognizeBuiltin(`$${call.name}(x)`) !== undefined;
    if (aggregate && isAggregate && (call.whole || (builtinCalls ??= compositionCallStarts(source)).includes(call.start))) continue;
    const guess = closest(call.name, [...KNOWN_FUNCTIONS, ...bound]);
    const node = loaded.positions.exactNodeAt(fullPath);
    const pos = isScalar(node) ? loaded.positions.inScalar(node, call.start, call.name.length + 1) : loaded.positions.at(fullPath);
    report.push(
      'E_EXPR_FUNCTION',
      pos,
      `\`${fieldName(fullPath)}\` in ${describeObject(fullPath.slice(0, -1))} calls \`$${call.name}\`, which is not a function${guess ? ` (did you mean \`$${guess}\`?)` : ''}`,
      isAggregate
        ? `\`$${call.name}\` is a window aggregate: it works only in an \`aggregate:\` entry, as the whole expression (\`n: $${call.name}(x)\`) or combined with other aggregates by arithmetic and scalar functions (\`n: $round($${call.name}(x), 1)\`)`
        : `functions are JSONata's (https://docs.jsonata.org/overview), sluice's ${listOf(Object.keys(SLUICE_FUNCTIONS).map((f) => `$${f}`))}, and those the expression binds with \`:=\``,
    );
  }
}

function expressionHint(err: ExpressionSyntaxError): string | undefined {
  if (/quote/.test(err.message)) return 'close the string literal; in YAML, quote the whole expression or use a block scalar (`|`) when it contains `: ` or starts with a quote';
  if (err.jsonataCode === 'S0203') return 'a bracket is not closed';
  return undefined;
}

/* ------------------------------------------------------------------ graph */

/** The graph's problems, and windows over inputs without event time (which depend on what feeds them). */
function graphDiagnostics(entries: readonly EntryCheck[], loaded: LoadedSpec, registry: ComponentRegistry): Diagnostic[] {
  const graphEntries: GraphEntry[] = entries.map((e) => ({
    section: e.section,
    name: e.name,
    path: e.path,
    ports: e.ports,
    inputs: e.inputs === undefined ? undefined : [...inputsWithPaths(e.path, e.inputs, loaded), ...(e.side ?? []).map((s) => ({ ...s.ref, path: s.path }))],
  }));
  const report = new Reporter(loaded);
  const resolved = entries.flatMap((e) => (e.resolved ? [e.resolved] : []));
  for (const p of [...checkGraph(graphEntries), ...checkWindowTimes(resolved, registry)]) report.at(p.code, p.path, p.target, p.message, p.hint);
  return report.diagnostics;
}

function inputsWithPaths(path: SpecPath, inputs: readonly PortRef[], loaded: LoadedSpec): GraphInput[] {
  const from = entryValue(loaded.value, path)?.from;
  const many = Array.isArray(from);
  return inputs.map((ref, i) => ({
    node: ref.node,
    port: ref.port,
    path: many ? [...path, 'from', i] : [...path, 'from'],
  }));
}

function entryValue(root: unknown, path: SpecPath): Record_ | undefined {
  let cur = root;
  for (const seg of path) cur = isRecord(cur) ? cur[String(seg)] : undefined;
  return isRecord(cur) ? cur : undefined;
}

/** Main entries with a profile's entries replacing or adding whole entries by name. */
function mergeProfile(main: readonly EntryCheck[], profile: readonly EntryCheck[]): EntryCheck[] {
  const merged = [...main];
  for (const p of profile) {
    const at = merged.findIndex((m) => m.section === p.section && m.name === p.name);
    if (at >= 0) merged[at] = p;
    else merged.push(p);
  }
  return merged;
}

/* ------------------------------------------------------------------ result */

function toPipelineSpec(root: Record_, entries: readonly ResolvedEntry[]): PipelineSpec {
  // Every entry passed its kind's schema, so each is the map its section's type describes.
  const section = <T>(s: Section) => Object.fromEntries(entries.filter((e) => e.section === s).map((e) => [e.name, entryValue(root, e.path) as T]));
  const spec: PipelineSpec = {
    version: 1,
    name: String(root.name),
    sources: section<SourceEntry>('sources'),
    sinks: section<SinkEntry>('sinks'),
  };
  if (typeof root.description === 'string') spec.description = root.description;
  if (isRecord(root.steps)) spec.steps = section<StepEntry>('steps');
  if (isRecord(root.profiles)) spec.profiles = root.profiles as PipelineSpec['profiles'];
  // The skeleton schema checked both.
  if (root.delivery === 'at-least-once' || root.delivery === 'exactly-once') spec.delivery = root.delivery;
  if (isRecord(root.checkpoint)) spec.checkpoint = root.checkpoint as PipelineSpec['checkpoint'];
  return spec;
}
