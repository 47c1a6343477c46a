/**
 * The HTTP server over a real run of pipelines/employee-activity.yaml (profile `local`: the
 * generator, file sinks, the file state store), in-process: /metrics read with a parser of the
 * Prometheus text format must count exactly what went through, split as the events say;
 * /readyz, /healthz, /api/graph and /api/status, and `sluice status` against it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatorSource } from '../../src/components/sources/generator.ts';
import { createServer, type AddressInfo } from 'node:net';
import { dispatch } from '../../src/cli/command.ts';
import { command as runCommand } from '../../src/cli/run.ts';
import { command as statusCommand } from '../../src/cli/status.ts';
import { systemClock } from '../../src/engine/clock.ts';
import { silentLogger } from '../../src/engine/logger.ts';
import { Metrics, UNDEFINED_HELP } from '../../src/engine/metrics.ts';
import { Runtime, type RunOutcome } from '../../src/engine/runtime.ts';
import { RunStatus } from '../../src/http/run-status.ts';
import { parseHttpAddress, startHttpServer, type SluiceHttpServer } from '../../src/http/server.ts';
import { DebeziumDecoder } from '../../src/io/debezium/index.ts';
import { instantiate } from '../../src/plan/instantiate.ts';
import { loadPipeline, renderLoadErrors } from '../../src/plan/load-pipeline.ts';
import { planGraph } from '../../src/plan/render.ts';
import { prepareState } from '../../src/plan/state.ts';
import type { Plan } from '../../src/plan/types.ts';
import { RecordingOutput, sourceContext } from '../components/sources/source-harness.ts';
import { family, parseExposition, valueOf, type MetricFamily } from './prometheus-text.ts';

const N = 3_000;
const SEED = 42;
const START = '2025-01-06T08:00:00Z';

/** What the same generator config emits, decoded on its own: how many are inserts (op c). */
async function insertsAmong(count: number): Promise<number> {
  const out = new RecordingOutput();
  await generatorSource.create({ scenario: 'employee-activity', seed: SEED, count, rate: 0, start_time: START }, sourceContext('activities', 'run')).run(out);
  const decoder = new DebeziumDecoder();
  return out.messages.filter((m) => decoder.decodeValue(m.value)?.payload.op === 'c').length;
}

interface Started {
  plan: Plan;
  status: RunStatus;
  server: SluiceHttpServer;
  runtime: Runtime;
  running: Promise<RunOutcome>;
}

/** The employee pipeline with the generator's config and file sinks under `dir`, its HTTP server, and its runtime started. */
async function start(dir: string, generator: Record<string, unknown>): Promise<Started> {
  const loaded = await loadPipeline('pipelines/employee-activity.yaml', {
    profile: 'local',
    env: {},
    sets: [
      { path: 'sources.activities', value: { generator: { scenario: 'employee-activity', seed: SEED, start_time: START, ...generator }, format: 'debezium' } },
      ...['processed', 'summaries', 'late-activities'].map((name) => ({ path: `sinks.${name}.file.path`, value: path.join(dir, `${name}.jsonl`) })),
      // The terminal sink would write into the test's output.
      { path: 'sinks.terminal', value: { from: 'hourly', file: { path: path.join(dir, 'terminal.jsonl') } } },
      { path: 'sinks.dead-letters.file.path', value: path.join(dir, 'dead-letters.jsonl') },
    ],
  });
  if (!loaded.ok) throw new Error(`the employee pipeline does not load:\n${renderLoadErrors(loaded)}`);
  const plan = loaded.plan;
  const metrics = new Metrics();
  const status = new RunStatus(plan, metrics);
  const server = await startHttpServer({ address: { host: '127.0.0.1', port: 0 }, status, logger: silentLogger, sampleMs: 100 });
  const state = await prepareState(plan, { logger: silentLogger, clock: systemClock, stateDir: path.join(dir, 'state') });
  const graph = instantiate(plan, { mode: 'run', logger: silentLogger, clock: systemClock, metrics, ...(state.context ? { checkpoints: state.context } : {}) });
  const runtime = new Runtime(graph, { logger: silentLogger, metrics, clock: systemClock, ...(state.coordinator ? { checkpoints: state.coordinator } : {}) });
  status.started(runtime);
  return { plan, status, server, runtime, running: runtime.run() };
}

async function lines(file: string): Promise<number> {
  const text = await readFile(file, 'utf8');
  return text.split('\n').filter((l) => l.length > 0).length;
}

let dir: string;
let plan: Plan;
let status: RunStatus;
let server: SluiceHttpServer;
let outcome: RunOutcome;
let families: MetricFamily[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-http-'));
  const run = await start(dir, { count: N, rate: 0 });
  ({ plan, status, server } = run);
  outcome = await run.running;
  status.finished('finished');
  families = parseExposition(await (await fetch(`${server.url}metrics`)).text());
}, 60_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('/metrics after the generator ran N events through the employee pipeline', () => {
  it('counts N in at the source, and the filter splits them as the events say', async () => {
    const inserts = await insertsAmong(N);
    expect(inserts).toBeGreaterThan(N * 0.9);
    expect(inserts).toBeLessThan(N);
    expect(valueOf(families, 'sluice_records_in_total', { node: 'activities' })).toBe(N);
    expect(valueOf(families, 'sluice_records_out_total', { node: 'activities', port: 'out' })).toBe(N);
    expect(valueOf(families, 'sluice_records_failed_total', { node: 'activities' }) ?? 0).toBe(0);
    expect(valueOf(families, 'sluice_records_in_total', { node: 'inserts' })).toBe(N);
    expect(valueOf(families, 'sluice_records_out_total', { node: 'inserts', port: 'out' })).toBe(inserts);
    expect(valueOf(families, 'sluice_records_filtered_total', { node: 'inserts' })).toBe(N - inserts);
    expect(valueOf(families, 'sluice_records_in_total', { node: 'enriched' })).toBe(inserts);
    expect(valueOf(families, 'sluice_records_in_total', { node: 'hourly' })).toBe(inserts);
  });

  it('counts what the sinks wrote: the lines in their files', async () => {
    const written = (node: string) => valueOf(families, 'sluice_records_written_total', { node });
    expect(written('processed')).toBe(await lines(path.join(dir, 'processed.jsonl')));
    expect(written('processed')).toBe(await insertsAmong(N));
    expect(written('summaries')).toBe(await lines(path.join(dir, 'summaries.jsonl')));
    expect(written('summaries')).toBe(valueOf(families, 'sluice_records_out_total', { node: 'hourly', port: 'out' }));
    expect(written('summaries')).toBe(outcome.recordsOut.summaries);
    expect(valueOf(families, 'sluice_records_late_total', { node: 'hourly' }) ?? 0).toBe(await lines(path.join(dir, 'late-activities.jsonl')).catch(() => 0));
  });

  it('has the latency histograms, checkpoint figures, window gauges and process metrics', () => {
    expect(family(families, 'sluice_batch_duration_seconds').samples.find((s) => s.labels.node === 'activities')?.count).toBeGreaterThan(0);
    expect(family(families, 'sluice_sink_write_duration_seconds').samples.find((s) => s.labels.node === 'processed')?.count).toBeGreaterThan(0);
    expect(family(families, 'sluice_checkpoint_duration_seconds').samples[0]?.count).toBeGreaterThan(0);
    expect(valueOf(families, 'sluice_checkpoints_total')).toBeGreaterThan(0);
    expect(valueOf(families, 'sluice_checkpoint_age_seconds')).toBeGreaterThanOrEqual(0);
    // The input ended: the watermark is at the end of time and every window flushed.
    expect(valueOf(families, 'sluice_watermark_timestamp_seconds', { node: 'hourly' })).toBe(Infinity);
    expect(valueOf(families, 'sluice_open_windows', { node: 'hourly' })).toBe(0);
    expect(valueOf(families, 'sluice_sink_queued_records', { node: 'processed' })).toBe(0);
    expect(valueOf(families, 'sluice_source_connected', { node: 'activities' })).toBe(1);
    expect(valueOf(families, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(families, 'sluice_pipeline_info', { pipeline: 'employee-activity', profile: 'local' })).toBe(1);
  });

  it('follows the conventions: what the runtime, sources and sinks define is documented, sluice_ counters end in _total, base units', () => {
    for (const f of families) {
      if (!f.name.startsWith('sluice_')) continue;
      if (f.name.startsWith('sluice_records_') || f.name.startsWith('sluice_sink_') || f.name.startsWith('sluice_checkpoint')) {
        expect(f.help, f.name).not.toBe(UNDEFINED_HELP);
      }
      if (f.type === 'COUNTER') expect(f.name, f.name).toMatch(/_total$/);
      else expect(f.name, f.name).not.toMatch(/_total$/);
      if (f.type === 'HISTOGRAM') expect(f.name, f.name).toMatch(/_seconds$/);
      expect(f.name, f.name).not.toMatch(/_(ms|milliseconds|kb|mb)(_|$)/);
      // One pipeline per process, named on every series by the default label.
      for (const s of f.samples) expect(s.labels.pipeline, f.name).toBe('employee-activity');
    }
  });
});

describe('probes, graph and status', () => {
  it('/readyz answers 200 while an unbounded run runs, 503 once it stopped, and says why', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'sluice-http-'));
    const run = await start(other, { rate: 2_000 });
    try {
      for (let i = 0; i < 200 && run.status.phase() !== 'running'; i++) await new Promise((r) => setTimeout(r, 25));
      const ready = await fetch(`${run.server.url}readyz`);
      expect(await ready.text()).toBe('ready\n');
      expect(ready.status).toBe(200);
      await run.runtime.stop();
      run.status.finished('stopped');
      const stopped = await fetch(`${run.server.url}readyz`);
      expect(stopped.status).toBe(503);
      expect(await stopped.text()).toBe('not ready:\n  the pipeline is stopped\n');
      // A HEAD probe gets the status without a body.
      expect((await fetch(`${run.server.url}readyz`, { method: 'HEAD' })).status).toBe(503);
    } finally {
      await run.runtime.stop();
      await run.server.close();
      await rm(other, { recursive: true, force: true });
    }
  });

  it('/readyz answers 503 once the bounded run finished; /healthz 200; only GET and HEAD', async () => {
    const ready = await fetch(`${server.url}readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('the pipeline is finished');
    expect((await fetch(`${server.url}healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('/api/graph is the graph of sluice graph: every node and edge of the plan', async () => {
    const graph = await (await fetch(`${server.url}api/graph`)).json();
    expect(graph).toEqual(JSON.parse(JSON.stringify(planGraph(plan))));
    expect(graph.nodes.map((n: { name: string }) => n.name)).toEqual(plan.nodes.map((n) => n.name));
    const edges = plan.nodes.flatMap((n) => (n.role === 'source' ? [] : n.inputs.map((i) => `${i.node}.${i.port}->${n.name}`)));
    expect(graph.edges.map((e: { from: string; port: string; to: string }) => `${e.from}.${e.port}->${e.to}`)).toEqual(edges);
  });

  it('/api/status has the totals of /metrics per node, and sluice status prints them', async () => {
    const s = await (await fetch(`${server.url}api/status`)).json();
    expect(s.phase).toBe('finished');
    expect(s.nodes.find((n: { name: string }) => n.name === 'activities')).toMatchObject({ in: N, out: N, failed: 0, failing: false, connected: true });
    const out: string[] = [];
    const code = await statusCommand.run([String(server.address.port)], { stdout: (t) => out.push(t), stderr: (t) => out.push(t), env: {} });
    expect(code).toBe(3);
    const text = out.join('');
    expect(text).toContain('employee-activity (profile local): finished, NOT READY');
    expect(text).toMatch(new RegExp(`activities\\s+source generator\\s+${N.toLocaleString('en')}`));
  });
});

describe('--http [host:]port', () => {
  it('binds 127.0.0.1 for a bare port, and takes a host, an IPv6 address in brackets, or port 0', () => {
    expect(parseHttpAddress('9477')).toEqual({ host: '127.0.0.1', port: 9477 });
    expect(parseHttpAddress('0.0.0.0:9477')).toEqual({ host: '0.0.0.0', port: 9477 });
    expect(parseHttpAddress('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseHttpAddress('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    for (const bad of ['', 'http://x:1', 'x:', ':80', '70000', 'a b:1']) expect(() => parseHttpAddress(bad), bad).toThrow(/no \[host:\]port/);
  });

  it('is a usage error when malformed, and a failed start (before the pipeline runs) when the port is taken', async () => {
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), env: {} };
    expect(await dispatch([runCommand], ['run', 'pipelines/employee-activity.yaml', '--http', 'nope'], io)).toBe(2);
    expect(out.join('')).toContain('--http: `nope` is no [host:]port');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      expect(await dispatch([runCommand], ['run', 'pipelines/employee-activity.yaml', '--profile', 'local', '--log-level', 'silent', '--http', String(port)], io)).toBe(1);
    } finally {
      taken.close();
    }
  });
});
