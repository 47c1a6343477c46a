/**
 * Diagnostics: what `sluice validate` reports. Each has a stable code (listed in the README), a
 * position in the spec file and a message written as a sentence; the renderer prints them
 * rustc-style with the source line and a caret under the offending YAML node. A mistake made on
 * the command line (`--profile`, `--set`) has no position: no line of the file is wrong.
 */

/** Every code validation can report, with the one line the README shows for it. */
export const DIAGNOSTIC_CODES = {
  E_FILE: 'the spec file cannot be read',
  E_YAML: 'the file is not valid YAML',
  E_DUPLICATE_KEY: 'a key appears twice in the same map',
  E_DUPLICATE_NAME: 'two sources, steps or sinks share a name (names are one namespace)',
  E_NAME: 'a pipeline or node name has characters it may not have',
  E_SCHEMA_UNKNOWN_KEY: 'a key that the pipeline or the component does not know (typos get a suggestion)',
  E_SCHEMA_MISSING_KEY: 'a required key is missing',
  E_SCHEMA_TYPE: 'a value has the wrong type (a list where a string belongs, ...)',
  E_SCHEMA_VALUE: 'a value is out of its allowed set or range',
  E_DURATION: 'a duration is not written like 500ms, 10s, 5m, 1h or 1d',
  E_KIND_MISSING: 'a source, step or sink entry has no kind key (kafka, filter, window, ...)',
  E_KIND_UNKNOWN: 'an entry names a kind that does not exist (`s3:` under a sink); the kinds are listed',
  E_KIND_MULTIPLE: 'a source, step or sink entry has more than one kind key',
  E_FORMAT_UNKNOWN: 'a source names a format that does not exist',
  E_EXPR_SYNTAX: 'a JSONata expression does not parse; the position is inside the expression',
  E_EXPR_FUNCTION: 'a JSONata expression calls a function that does not exist; the position is inside the expression',
  E_WINDOW_TIME: 'a window has no `time:` and reads a source whose records carry no event time (file, stdin)',
  E_FROM_UNKNOWN: '`from` names no source or step (or the main output of a sink, whose only port is `errors`, read only by sinks)',
  E_PORT_UNKNOWN: '`from` names a port (`node.port`) that the node does not have',
  E_CYCLE: 'steps read from each other in a cycle, or sinks read each other\'s `errors` in a cycle',
  E_UNREAD_SOURCE: 'nothing reads a source',
  E_DANGLING_STEP: "nothing reads a step's main output",
  E_ENV_UNSET: '`${VAR}` has no value in the environment and no default',
  E_ENV_SYNTAX: 'a `${` that is not a valid reference (write `$${` for a literal `${`)',
  E_PROFILE_UNKNOWN: '`--profile` names a profile the spec does not define',
  E_SET_PATH: 'a `--set` or `--add` override cannot be applied (`--set` changes only what exists, `--add` only adds)',
  E_REPARTITION: 'running as tasks, a step would read nodes before and after a repartition (two stages), or a node takes the name of a repartition',
} as const;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

interface DiagnosticBase {
  code: DiagnosticCode;
  /** A sentence: what is wrong, naming the node and the value. */
  message: string;
  file: string;
  /** The fix to apply, when there is one. */
  hint?: string;
}

/** A place in the file: 1-based line and column (in characters), and how many characters the caret underlines (1 when unknown). */
interface InFile {
  line: number;
  col: number;
  span?: number;
}

/** A mistake on the command line (`--profile`, `--set`): no line of the file is wrong. */
interface OnCommandLine {
  line?: undefined;
  col?: undefined;
  span?: undefined;
}

export type Diagnostic = DiagnosticBase & (InFile | OnCommandLine);

/** Command-line mistakes come first in a file's list: they may be why the rest went wrong. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return (
    a.file.localeCompare(b.file) ||
    (a.line ?? 0) - (b.line ?? 0) ||
    (a.col ?? 0) - (b.col ?? 0) ||
    a.code.localeCompare(b.code) ||
    a.message.localeCompare(b.message)
  );
}

/** `line:col`, or `command line` for a diagnostic without a position. */
export function positionText(d: Diagnostic): string {
  return d.line === undefined ? 'command line' : `${d.line}:${d.col}`;
}

/** Sorted by position, without repeats (profile entries are checked both in place and where a profile puts them). */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of [...diagnostics].sort(compareDiagnostics)) {
    const key = `${d.file}\0${positionText(d)}\0${d.code}\0${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out;
}

/**
 * rustc-style text:
 *
 *     pipelines/x.yaml:12:5: error[E_SCHEMA_UNKNOWN_KEY]: unknown key `windw` in step `hourly` (did you mean `window`?)
 *        |
 *     12 |     windw:
 *        |     ^^^^^
 *        = help: ...
 *
 * `sourceText` is the file's text; without it only the first line is printed. A command-line
 * mistake names the file without a line (`pipelines/x.yaml: error[...]`), like a compiler's
 * command-line errors, and shows no source.
 */
export function renderDiagnostic(d: Diagnostic, sourceText?: string): string {
  if (d.line === undefined) {
    const head = `${d.file}: error[${d.code}]: ${d.message}`;
    return d.hint ? `${head}\n  = help: ${d.hint}` : head;
  }
  const head = `${d.file}:${d.line}:${d.col}: error[${d.code}]: ${d.message}`;
  const lines = [head];
  const sourceLine = sourceText?.split(/\r?\n/)[d.line - 1];
  const gutter = ' '.repeat(String(d.line).length);
  if (sourceLine !== undefined) {
    const expanded = sourceLine.replace(/\t/g, ' ');
    const caretStart = Math.min(d.col - 1, expanded.length);
    const span = Math.max(1, Math.min(d.span ?? 1, Math.max(1, expanded.length - caretStart)));
    lines.push(`${gutter} |`, `${d.line} | ${expanded}`, `${gutter} | ${' '.repeat(caretStart)}${'^'.repeat(span)}`);
  }
  if (d.hint) lines.push(`${gutter} = help: ${d.hint}`);
  return lines.join('\n');
}

/** All diagnostics of a run, each followed by a blank line, then a one-line count. */
export function renderDiagnostics(diagnostics: readonly Diagnostic[], sourceOf: (file: string) => string | undefined): string {
  const parts = diagnostics.map((d) => renderDiagnostic(d, sourceOf(d.file)));
  const files = new Set(diagnostics.map((d) => d.file)).size;
  const n = diagnostics.length;
  parts.push(`${n} error${n === 1 ? '' : 's'} in ${files} file${files === 1 ? '' : 's'}`);
  return parts.join('\n\n') + '\n';
}
