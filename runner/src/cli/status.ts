/** `sluice status [[host:]port]`: a running pipeline's summary from its HTTP server, for a terminal (over SSH too). */
import { errorMessage } from '../engine/errors.ts';
import type { NodeStatus, StatusSnapshot } from '../http/live-status.ts';
import { DEFAULT_HTTP_PORT, parseHttpAddress } from '../http/server.ts';
import { formatBytes } from './run.ts';
import { EXIT_OK, parseCommandLine, processIO, UsageError, type CliCommand, type CliIO } from './command.ts';

const EXIT_UNREACHABLE = 1;
const EXIT_NOT_READY = 3;

const usage = `Usage: sluice status [[host:]port] [--json]

Prints the status of a pipeline that runs with \`sluice run --http\`: its phase and readiness, the
last checkpoint, and per node the records in and out (totals and rates), failures, late records,
watermark lag and consumer lag. Reads http://host:port/api/status (default 127.0.0.1:${DEFAULT_HTTP_PORT}).

Options:
  --json   print the status as JSON, as the server gives it

Exit codes: 0 running and ready, 3 reachable but not ready, 1 no answer.
`;

function count(n: number): string {
  return Math.round(n).toLocaleString('en');
}

function perSecond(n: number): string {
  return n >= 10 || n === 0 ? `${count(n)}/s` : `${n.toFixed(1)}/s`;
}

function duration(seconds: number): string {
  if (seconds >= 3600) return `${(seconds / 3600).toFixed(1)}h`;
  if (seconds >= 60) return `${(seconds / 60).toFixed(1)}m`;
  return `${seconds.toFixed(1)}s`;
}

function notes(n: NodeStatus): string {
  const parts: string[] = [];
  if (n.connected === false) parts.push(`DISCONNECTED${n.connection ? ` (${n.connection})` : ''}`);
  if (n.failing && n.connected !== false) parts.push('FAILING');
  if (n.lag) parts.push(`lag ${n.lag.unit === 'bytes' ? formatBytes(n.lag.value) : `${count(n.lag.value)} msgs`}`);
  if (n.watermark) parts.push(n.watermark === 'end' ? 'watermark end' : `watermark ${n.watermark} (${duration(n.watermarkLagSeconds ?? 0)} behind)`);
  if (n.openWindows !== undefined) parts.push(`${count(n.openWindows)} open windows`);
  if (n.filtered > 0) parts.push(`filtered ${count(n.filtered)}`);
  if (n.late > 0) parts.push(`late ${count(n.late)}`);
  if (n.queued) parts.push(`queued ${count(n.queued)}`);
  if (n.lastError && n.failing) parts.push(`last error: ${n.lastError.message.slice(0, 120)}`);
  return parts.join(', ');
}

/** The status as a few lines and a table, one row per node in graph order. */
export function renderStatus(s: StatusSnapshot): string {
  const lines = [
    `${s.pipeline}${s.profile ? ` (profile ${s.profile})` : ''}: ${s.phase}, ${s.ready.ready ? 'ready' : 'NOT READY'}, up ${duration(s.uptimeSeconds)}${s.threads ? `, ${s.threads} threads` : ''}${s.restarts ? `, ${s.restarts} restarts` : ''}`,
  ];
  for (const r of s.ready.reasons) lines.push(`  not ready: ${r}`);
  if (s.lastFailure && s.phase !== 'running') lines.push(`  last failure${s.lastFailure.where ? ` at ${s.lastFailure.where}` : ''}: ${s.lastFailure.message}`);
  const cp = s.checkpoint;
  if (cp) {
    lines.push(
      `checkpoint #${cp.epoch}${cp.ageSeconds !== undefined ? `, state ${duration(cp.ageSeconds)} old` : ''}${cp.lastDurationMs !== undefined ? `, last took ${cp.lastDurationMs} ms` : ''}, ${count(cp.entries)} panes, ${formatBytes(cp.bytes)}`,
    );
  }
  const header = ['node', 'role', 'in', 'in/s', 'out', 'out/s', 'failed', ''];
  const rows = s.nodes.map((n) => [n.name, `${n.role} ${n.kind}`, count(n.in), perSecond(n.inRate), count(n.out), perSecond(n.outRate), count(n.failed), notes(n)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([2, 3, 4, 5, 6]);
  const format = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  lines.push('', format(header), ...rows.map(format));
  return lines.join('\n') + '\n';
}

function isSnapshot(value: unknown): value is StatusSnapshot {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.pipeline === 'string' && typeof v.phase === 'string' && Array.isArray(v.nodes) && typeof v.ready === 'object' && v.ready !== null;
}

export const command: CliCommand = {
  name: 'status',
  summary: 'print the status of a pipeline running with --http',
  usage,
  async run(argv: string[], io: CliIO = processIO): Promise<number> {
    const { values, positionals } = parseCommandLine(argv, { json: { type: 'boolean' } });
    if (positionals.length > 1) throw new UsageError('give at most one [host:]port');
    let address;
    try {
      address = parseHttpAddress(positionals[0] ?? String(DEFAULT_HTTP_PORT));
    } catch (err) {
      throw new UsageError(errorMessage(err));
    }
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    const url = `http://${host}:${address.port}/api/status`;
    let body: unknown;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = await res.json();
    } catch (err) {
      io.stderr(`sluice status: no status from ${url}: ${errorMessage(err)}\nIs the pipeline running with --http ${positionals[0] ?? DEFAULT_HTTP_PORT}?\n`);
      return EXIT_UNREACHABLE;
    }
    if (!isSnapshot(body)) {
      io.stderr(`sluice status: ${url} answered something that is not a sluice status\n`);
      return EXIT_UNREACHABLE;
    }
    io.stdout(values.json ? `${JSON.stringify(body, null, 2)}\n` : renderStatus(body));
    return body.ready.ready ? EXIT_OK : EXIT_NOT_READY;
  },
};
