/**
 * `npm run bench`: the employee pipeline, unchanged but for its source and sinks, from a generated
 * file of Debezium events (schema envelopes, as Kafka Connect's JSON converter writes them) to file
 * sinks. Prints events/s and nanoseconds per event for each stage.
 *
 *   npm run bench                       # 1,000,000 events
 *   npm run bench -- --http             # the same with sluice run --http's server on, scraped every
 *                                       # second, and a live view open (the cost of metrics)
 *   BENCH_EVENTS=200000 npm run bench   # fewer
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { systemClock } from '../src/engine/clock.ts';
import { silentLogger } from '../src/engine/logger.ts';
import { Metrics } from '../src/engine/metrics.ts';
import { Runtime } from '../src/engine/runtime.ts';
import { RunStatus } from '../src/http/run-status.ts';
import { startHttpServer } from '../src/http/server.ts';
import { instantiate } from '../src/plan/instantiate.ts';
import { loadPipeline, renderLoadErrors } from '../src/plan/load-pipeline.ts';

const events = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const withHttp = process.argv.slice(2).includes('--http');
const dataDir = path.resolve('bench-data');
const input = path.join(dataDir, `employee-events-${events}.jsonl`);
const outDir = path.join(dataDir, 'out');

if (!existsSync(input)) {
  mkdirSync(dataDir, { recursive: true });
  process.stderr.write(`generating ${events} Debezium events into ${input} ...\n`);
  execFileSync('npx', ['tsx', 'scripts/generate-debezium-events.ts', '--count', String(events), '--out', input, '--seed', '1'], {
    stdio: 'inherit',
  });
}
rmSync(outDir, { recursive: true, force: true });

// The spec as written, to learn its sinks; then every sink becomes a file sink reading the same inputs.
const SPEC = 'pipelines/employee-activity.yaml';
const asWritten = await loadPipeline(SPEC, { env: process.env });
if (!asWritten.ok) {
  process.stderr.write(renderLoadErrors(asWritten));
  process.exit(2);
}
const sinkOverrides = Object.entries(asWritten.spec.sinks).map(([name, entry]) => ({
  path: `sinks.${name}`,
  value: { from: entry.from, file: { path: path.join(outDir, `${name}.jsonl`) } },
}));
const loaded = await loadPipeline(SPEC, {
  env: process.env,
  sets: [{ path: 'sources.activities', value: { file: { path: input }, format: 'debezium' } }, ...sinkOverrides],
});
if (!loaded.ok) {
  process.stderr.write(renderLoadErrors(loaded));
  process.exit(2);
}

const metrics = new Metrics();
const graph = instantiate(loaded.plan, { mode: 'run', clock: systemClock, metrics, logger: silentLogger });
const runtime = new Runtime(graph, { logger: silentLogger, metrics, clock: systemClock });

// With --http: the server of `sluice run --http`, Prometheus' part played by a scrape of /metrics
// every second (a real Prometheus scrapes every 5-15 s), and a live view open (server-sent events).
let scrapes = 0;
let updates = 0;
const observe = async () => {
  const status = new RunStatus(loaded.plan, metrics);
  status.started(runtime);
  const server = await startHttpServer({ address: { host: '127.0.0.1', port: 0 }, status, logger: silentLogger });
  const scraper = setInterval(() => {
    void fetch(`${server.url}metrics`)
      .then((r) => r.text())
      .then(() => scrapes++);
  }, 1_000);
  const view = new AbortController();
  const events = fetch(`${server.url}api/events`, { signal: view.signal }).then(async (res) => {
    for await (const chunk of res.body!) updates += (Buffer.from(chunk).toString('utf8').match(/^event: status$/gm) ?? []).length;
  });
  return async () => {
    clearInterval(scraper);
    view.abort();
    await events.catch(() => {});
    await server.close();
  };
};
const stopObserving = withHttp ? await observe() : undefined;
const cpu0 = process.cpuUsage();
const outcome = await runtime.run();
const cpu = process.cpuUsage(cpu0);
await stopObserving?.();

const seconds = outcome.elapsedMs / 1000;
const perEvent = (nanos: number) => (nanos / outcome.recordsIn).toFixed(0).padStart(7);
const rows: [string, number][] = [];
for (const [name, node] of Object.entries(outcome.stats.nodes)) {
  const plan = loaded.plan.nodes.find((n) => n.name === name);
  const label =
    node.role === 'source' ? `parse (${plan?.kind} + ${plan?.role === 'source' ? plan.format.kind : ''} decode)` : `${node.role} ${name} (${plan?.kind})`;
  rows.push([label, node.nanos]);
}
const staged = rows.reduce((n, [, ns]) => n + ns, 0);

const lines = [
  `employee pipeline, ${outcome.recordsIn.toLocaleString('en')} Debezium events from ${path.relative('.', input)} (${(statSync(input).size / 2 ** 20).toFixed(0)} MiB) to file sinks`,
  withHttp ? `  with --http: /metrics scraped ${scrapes} times (every second), ${updates} live-view updates sent` : `  without --http (npm run bench -- --http for the cost of metrics)`,
  `  ${Math.round(outcome.recordsIn / seconds).toLocaleString('en')} events/s   (${seconds.toFixed(2)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s CPU, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB)`,
  `  written: ${Object.entries(outcome.recordsOut)
    .map(([k, v]) => `${k} ${v.toLocaleString('en')}`)
    .join(', ')}; filtered ${outcome.discarded.toLocaleString('en')}, failed ${outcome.failed}`,
  // Sinks' figures run from prepare to the write's completion, awaits included: the disk write
  // overlaps the other stages, so the sum exceeds the elapsed time.
  `  ns per input event, by stage (a sink's from prepare to written, overlapping the rest):`,
  ...rows.map(([label, ns]) => `    ${perEvent(ns)}  ${label}`),
  `    ${perEvent(staged)}  sum of the stages (elapsed: ${perEvent(outcome.elapsedMs * 1e6)})`,
];
process.stdout.write(lines.join('\n') + '\n');
