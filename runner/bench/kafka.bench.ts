/**
 * `npm run bench:kafka`: the employee pipeline on a real Kafka broker, as users run it: `sluice run
 * pipelines/employee-activity.yaml` (its spec as is; only its topics, group and delivery mode are
 * changed, with --set and a copy of the file), against a yardstick on the same backlog.
 *
 * 1. Throughput against a baseline: N Debezium events (default 200,000, seed-shaped, keyed by row
 *    id as Debezium keys them) go into a fresh 6-partition topic once. Then per delivery mode
 *    (at-least-once, then exactly-once), BENCH_REPEAT times (default 3): the plain kafkajs
 *    pass-through of pass-through.ts (parse, keep inserts, enrich in plain JS, produce) drains it,
 *    then one `sluice run` process drains it, each in a group of its own. sluice's rate is printed
 *    as a ratio of the baseline's of the same round. sluice's drain = from its first task assigned
 *    (its own log time, so start-up is left out) until its source group's committed offsets reach
 *    the end of every input partition (under exactly-once they commit in the transaction of the
 *    enriched records, so everything is visible downstream then); the time until every closed
 *    hour's summary is visible is reported too.
 * 2. Latency: with one process running, produce at a steady rate (default 5,000 events/s for 30 s)
 *    with the produce time in a header; the kafka sink passes headers through, so each processed
 *    message carries it. Latency = when a read_committed consumer receives the processed message
 *    minus that header (under exactly-once a message is visible only once its checkpoint
 *    committed, so this is what a downstream reader sees). Prints p50, p90, p99 and max, split at
 *    the output's timestamp (when the process wrote it) into produce -> written and written ->
 *    visible, and the worst latency of each second of produce time with the tenth of the second
 *    it fell in: spikes at the same tenth every second come from something periodic, the
 *    checkpoints. Then the
 *    same stream through the pass-through (which passes headers on), read the same way: the
 *    latency this client, broker and machine allow with no sluice at all.
 *
 * Uses KAFKA_BROKERS when set; otherwise starts scripts/kafka.sh (and stops it if it started it).
 * Topics it creates are deleted at the end.
 *
 *   npm run bench:kafka
 *   BENCH_EVENTS=300000 BENCH_RATE=5000 BENCH_LATENCY_SECONDS=20 npm run bench:kafka
 *   BENCH_DELIVERY=at-least-once BENCH_REPEAT=1 npm run bench:kafka     # one mode, one round
 *   BENCH_LATENCY_SECONDS=0 npm run bench:kafka      # the drains only, no latency runs
 *   BENCH_WITHOUT_SUMMARIES=1 npm run bench:kafka    # the spec without its hourly window: only what the pass-through does
 *   BENCH_WINDOW_IN_PLACE=1 npm run bench:kafka      # the window without its repartition topic: what it costs alone (its sums are then wrong)
 *   BENCH_REPARTITION_PARTITIONS=2 npm run bench:kafka   # the repartition topic with 2 partitions: 2 window tasks instead of 6
 *   BENCH_WARM_SECONDS=10 npm run bench:kafka        # latency also reported after the first 10 s (default 5)
 *   BENCH_CPU_PROF=/tmp/prof npm run bench:kafka     # CPU profiles of the sluice processes
 *   BENCH_INPUT_COMPRESSION=none npm run bench:kafka  # the backlog written uncompressed (default gzip; also snappy, lz4)
 *   BENCH_EVENTS=1000000 BENCH_BASELINE_FETCH=1048576 npm run bench:kafka   # 1,000,000 events: the pass-through fetches 1 MiB per partition
 *   BENCH_BASELINE_SUMMARIES=1 npm run bench:kafka   # the pass-through also writes the hourly summaries: the whole job, an equal-work yardstick
 *   BENCH_NODE_ARGS='--heap-prof --heap-prof-dir=/tmp/heap' npm run bench:kafka   # allocation profiles
 *
 * Scale-out (`--processes 1,2`): the same spec (exactly-once as it declares, or BENCH_DELIVERY)
 * started N times in one consumer group, for each N given; each N drains the backlog in a group of
 * its own, and the latency is taken with N processes sharing the tasks. Also reported: CPU seconds
 * used per process and by the broker, and how busy the machine's cores were, which is what limits
 * the figures on a small machine.
 *
 *   npm run bench:kafka -- --processes 1,2
 *   BENCH_EVENTS=200000 BENCH_LATENCY_SECONDS=20 npm run bench:kafka -- --processes 1,2,3
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, type Scalar, type YAMLSeq } from 'yaml';
import { createLogger } from '../src/engine/logger.ts';
import { COMPRESSIONS, createAdmin, createGroupConsumer, createProducer, type Compression, type KafkaAdmin } from '../src/io/kafka/client.ts';
import { parseBrokers } from '../src/io/kafka/connection.ts';
import type { Delivery } from '../src/engine/component.ts';
import { DebeziumEventStream } from '../test/integration/debezium-events.ts';
import { closedHours, produceBacklog, startSluice, type SluiceProcess } from '../test/integration/employee-outputs.ts';
import { exitWithin, jsonLogLines, recordsOutBy } from '../test/integration/sluice-process.ts';
import { PASS_THROUGH_FETCH_BYTES, passThrough } from './pass-through.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SPEC = resolve(repo, 'pipelines/employee-activity.yaml');
const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const RATE = Number(process.env.BENCH_RATE ?? 5_000);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 30);
const PARTITIONS = 6;
const PRODUCED_AT = 'bench-produced-at';
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
/** BENCH_INPUT_COMPRESSION: the codec the backlog is written with (default gzip, as Debezium users often set). */
const INPUT_COMPRESSION: Compression = parseCompression(process.env.BENCH_INPUT_COMPRESSION ?? 'gzip');
/**
 * BENCH_BACKLOG_CHUNK: messages per produce request for the backlog (default 2,000). A source
 * writing as events come (Debezium at a steady rate) makes small batches, each compressed on its
 * own: e.g. 60 makes batches of about 10 events per partition, for what a drain of those costs.
 */
const BACKLOG_CHUNK = Number(process.env.BENCH_BACKLOG_CHUNK ?? 2_000);
/** BENCH_BASELINE_FETCH: the pass-through's fetch per partition in bytes (see PASS_THROUGH_FETCH_BYTES; 1048576 for 1,000,000 events). */
const BASELINE_FETCH = parseBytes('BENCH_BASELINE_FETCH', process.env.BENCH_BASELINE_FETCH, PASS_THROUGH_FETCH_BYTES);
/**
 * BENCH_BASELINE_SUMMARIES=1: the pass-through also computes the hourly summaries in memory and
 * writes the closed hours (pass-through.ts), so that both sides do the whole job. Its count of
 * summaries is checked against the backlog's closed hours. Not the issue's yardstick, which is the
 * stateless half only; for comparison.
 */
const BASELINE_SUMMARIES = process.env.BENCH_BASELINE_SUMMARIES === '1';
const MODES: Delivery[] = process.env.BENCH_DELIVERY ? [process.env.BENCH_DELIVERY as Delivery] : ['at-least-once', 'exactly-once'];
/**
 * BENCH_WITHOUT_SUMMARIES=1: the spec without its hourly window and the sinks that read it, so that
 * sluice does only what the pass-through does (parse, keep inserts, enrich, write): what the engine
 * itself costs, apart from the summaries' repartition topic and window.
 */
const WITHOUT_SUMMARIES = process.env.BENCH_WITHOUT_SUMMARIES === '1';
/**
 * BENCH_WINDOW_IN_PLACE=1: the source declares itself partitioned by the window's group keys
 * (`partitioned_by`), so the window reads it directly, with no repartition topic in between. The
 * backlog is keyed by row id, so this is false: each task sums only its own partition's share of a
 * group, and the summaries are wrong (the bench counts only which hours have one). It splits what
 * the summaries cost between the repartition topic and the window itself, and is good for nothing else.
 */
const WINDOW_IN_PLACE = process.env.BENCH_WINDOW_IN_PLACE === '1';

function parseCompression(name: string): Compression {
  const found = COMPRESSIONS.find((c) => c === name);
  if (!found) throw new Error(`BENCH_INPUT_COMPRESSION: ${name} is not one of ${COMPRESSIONS.join(', ')}`);
  return found;
}

function parseBytes(variable: string, text: string | undefined, byDefault: number): number {
  if (text === undefined) return byDefault;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1024) throw new Error(`${variable}: ${text} is not a byte count of at least 1024`);
  return n;
}

const logger = createLogger(process.env.SLUICE_LOG_LEVEL ?? 'warn');
const say = (line: string) => process.stdout.write(`${line}\n`);

function ensureBroker(): { brokers: string; stop: () => void } {
  if (process.env.KAFKA_BROKERS) return { brokers: process.env.KAFKA_BROKERS, stop: () => {} };
  const script = resolve(repo, 'scripts/kafka.sh');
  const out = execFileSync('bash', [script, 'start'], { cwd: repo, encoding: 'utf8' }).trim();
  const [state, brokers] = out.split(/\s+/);
  if (!brokers) throw new Error(`scripts/kafka.sh start said: ${out}`);
  return { brokers, stop: () => (state === 'started' ? void execFileSync('bash', [script, 'stop'], { cwd: repo }) : undefined) };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(100);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A latency run's p50 and p99, in ms, over the whole run and after its first WARM_SECONDS. */
interface Percentiles {
  p50: number;
  p99: number;
  warmP50: number;
  warmP99: number;
}

/**
 * The first seconds of a latency run meet code that has not run in the process yet (V8 compiles
 * hot functions only after they ran a while), as the first seconds after any deploy do. Reported
 * apart: the run's figures count them, the warm ones start after them.
 */
const WARM_SECONDS = Number(process.env.BENCH_WARM_SECONDS ?? 5);

/**
 * Latency samples' p50 and p99, and the text both latency lines print: `p50 .., p90 .., p99 ..,
 * max ..`, the split at the output message's timestamp (the time the process handed it to the
 * client: what came before is reading, processing and batching, what came after is waiting for
 * the broker and, under exactly-once, for the commit), then the worst of each second.
 */
function latencySummary(samples: LatencySamples): Percentiles & { text: string } {
  if (process.env.BENCH_LATENCY_DUMP) dumpLatencies(process.env.BENCH_LATENCY_DUMP, samples);
  const sorted = [...samples.latencies].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  const before = samples.latencies.map((l, i) => l - samples.afterWrite[i]!).sort((a, b) => a - b);
  const after = [...samples.afterWrite].sort((a, b) => a - b);
  const split = (xs: number[]) => `p50 ${percentile(xs, 50)}, p90 ${percentile(xs, 90)}, p99 ${percentile(xs, 99)}`;
  const first = firstProducedAt(samples);
  const warm = samples.latencies.filter((_, i) => samples.producedAt[i]! - first >= WARM_SECONDS * 1000).sort((a, b) => a - b);
  const warmP50 = percentile(warm, 50);
  const warmP99 = percentile(warm, 99);
  return {
    p50,
    p99,
    warmP50,
    warmP99,
    text:
      `p50 ${p50} ms, p90 ${percentile(sorted, 90)} ms, p99 ${p99} ms, max ${sorted[sorted.length - 1]} ms; ` +
      `after the first ${WARM_SECONDS} s p50 ${warmP50} ms, p99 ${warmP99} ms ` +
      `(produce -> written ${split(before)}; written -> visible ${split(after)}); worst of each second of produce time, ms@tenth of the second: ${worstPerSecond(samples)}`,
  };
}

// Small ticks: a steady stream, not bursts (a 100 ms tick of 500 events made p50 the time to process a burst).
const TICK_MS = 10;
const PER_TICK = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
const TICKS = Math.round((LATENCY_SECONDS * 1000) / TICK_MS);

/**
 * Produces RATE events/s for LATENCY_SECONDS into `input`, each with its produce time in a header;
 * event times start now, so the pipeline sees a live stream, not a backlog.
 */
async function produceSteadily(conn: { brokers: string[]; clientId: string }, input: string): Promise<{ inserts: number; offered: number }> {
  const producer = createProducer(conn, { chunkSize: 2_000 }, logger);
  await producer.connect();
  const stream = new DebeziumEventStream(input, 2, Date.now());
  let inserts = 0;
  const t0 = performance.now();
  for (let i = 0; i < TICKS; i++) {
    const batch = stream.take(PER_TICK);
    inserts += batch.insertIds.length;
    const at = String(Date.now());
    for (const m of batch.messages) m.headers = { [PRODUCED_AT]: at };
    await producer.send(batch.messages);
    // Keep the schedule: sleep to the next tick boundary (no catch-up bursts beyond one tick).
    const next = t0 + (i + 1) * TICK_MS;
    const sleep = next - performance.now();
    if (sleep > 0) await wait(sleep);
  }
  const offered = (TICKS * PER_TICK) / ((performance.now() - t0) / 1000);
  await producer.close();
  return { inserts, offered };
}

/** Produce -> visible latencies (ms), each with its produce time (epoch ms) and the part after the output was written (its timestamp). */
interface LatencySamples {
  latencies: number[];
  producedAt: number[];
  afterWrite: number[];
}

/** A read_committed reader of `topic` collecting produce -> visible latencies from the PRODUCED_AT header. */
async function latencyReader(conn: { brokers: string[]; clientId: string }, groupId: string, topic: string): Promise<{ samples: LatencySamples; reader: ReturnType<typeof createGroupConsumer> }> {
  const samples: LatencySamples = { latencies: [], producedAt: [], afterWrite: [] };
  const reader = createGroupConsumer(conn, { groupId, topics: [topic], fromBeginning: true, concurrency: 1, maxWaitMs: 50 }, logger);
  await reader.start({
    onBatch: async (b) => {
      const now = Date.now();
      for (const m of b.messages) {
        const at = Number(m.headers[PRODUCED_AT]);
        if (!Number.isFinite(at)) continue;
        samples.latencies.push(now - at);
        samples.producedAt.push(at);
        // Output timestamps are the write time (CreateTime), on the same clock.
        samples.afterWrite.push(now - m.timestamp);
      }
    },
    onRebalancing: () => {},
    onAssignment: () => {},
    onCrash: () => {},
  });
  return { samples, reader };
}

/**
 * BENCH_LATENCY_DUMP=<file>: every sample as a CSV line (produce time in epoch ms and since the first produce, latency,
 * produce -> written, written -> visible), appended, with a header per run: to see when spikes fall.
 */
function dumpLatencies(file: string, samples: LatencySamples): void {
  const first = firstProducedAt(samples);
  const lines = samples.latencies.map((l, i) => `${samples.producedAt[i]!},${samples.producedAt[i]! - first},${l},${l - samples.afterWrite[i]!},${samples.afterWrite[i]!}`);
  appendFileSync(file, `produced_at,produced_ms,latency_ms,to_written_ms,to_visible_ms\n${lines.join('\n')}\n`);
}

/** The earliest produce time of the samples (epoch ms). */
function firstProducedAt(samples: LatencySamples): number {
  // A loop, not Math.min(...): a spread of 150,000 arguments overflows the stack.
  let first = Number.POSITIVE_INFINITY;
  for (const at of samples.producedAt) first = Math.min(first, at);
  return first;
}

/**
 * The worst latency of each second of produce time, and the tenth of that second it fell in
 * (`312@4`): spikes at the same tenth every second have a cause with a one-second period, such as
 * the checkpoints (`checkpoint.interval: 1s`), rather than noise.
 */
function worstPerSecond(samples: LatencySamples): string {
  const first = firstProducedAt(samples);
  const worst: ({ ms: number; tenth: number } | undefined)[] = [];
  for (let i = 0; i < samples.latencies.length; i++) {
    const offset = samples.producedAt[i]! - first;
    const second = Math.floor(offset / 1000);
    const w = (worst[second] ??= { ms: -1, tenth: 0 });
    if (samples.latencies[i]! > w.ms) {
      w.ms = samples.latencies[i]!;
      w.tenth = Math.floor((offset % 1000) / 100);
    }
  }
  // Array.from visits the seconds with no sample too (map would skip them).
  return Array.from(worst, (w) => (w === undefined ? '-' : `${w.ms}@${w.tenth}`)).join(' ');
}

/* ------------------------------------------------------------------ --processes: N `sluice run` processes in one group */

/** `--processes 1,2` or `--processes=1,2`: the process counts to run, or undefined for the in-process bench. */
function processCounts(argv: readonly string[]): number[] | undefined {
  const i = argv.findIndex((a) => a === '--processes' || a.startsWith('--processes='));
  if (i < 0) return undefined;
  const text = argv[i]!.includes('=') ? argv[i]!.slice(argv[i]!.indexOf('=') + 1) : argv[i + 1];
  const counts = (text ?? '').split(',').map((n) => Number(n.trim()));
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--processes takes process counts such as 1,2 (got ${text ?? 'nothing'})`);
  return counts;
}

/** startSluice shortens the source's session timeout to 6 s for the kill tests; the bench runs the spec's (the kafka source's default, 30 s). */
const SPEC_SESSION_TIMEOUT = ['--set', 'sources.activities.kafka.session_timeout=30s'];

/**
 * BENCH_REPARTITION_PARTITIONS=<n>: the window's repartition topic gets n partitions (its
 * `partitions:`), so its stage has n tasks, each with a transaction per checkpoint; default as
 * many as the input (6).
 */
const REPARTITION_SETTING = process.env.BENCH_REPARTITION_PARTITIONS;
const REPARTITION_PARTITIONS = REPARTITION_SETTING ? Number(REPARTITION_SETTING) : PARTITIONS;
if (!Number.isInteger(REPARTITION_PARTITIONS) || REPARTITION_PARTITIONS < 1) throw new Error(`BENCH_REPARTITION_PARTITIONS must be a positive integer, not ${REPARTITION_SETTING}`);

/** BENCH_SLUICE_ARGS: more `sluice run` arguments, e.g. `--set sinks.processed.kafka.linger=20ms`, to compare settings. */
const SLUICE_ARGS = [
  ...SPEC_SESSION_TIMEOUT,
  ...(REPARTITION_SETTING ? ['--set', `steps.hourly.partitions=${REPARTITION_PARTITIONS}`] : []),
  ...(process.env.BENCH_SLUICE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
];

/**
 * BENCH_CPU_PROF=<dir>: each `sluice run` process writes a V8 CPU profile there when it stops.
 * BENCH_NODE_ARGS: more node flags for them, e.g. `--heap-prof --heap-prof-dir=/tmp/heap` (where the
 * garbage comes from).
 */
const NODE_ARGS = {
  nodeArgs: [
    ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
    ...(process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
  ],
};

/** CPU time (user + system) of a process so far, in seconds; undefined once it is gone. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the command); clock ticks, 100 a second on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** A process's peak resident memory so far (VmHWM), in MiB; undefined once it is gone. */
function peakRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Math.round(Number(kb) / 1024);
  } catch {
    return undefined;
  }
}

/** The machine's CPU time so far (busy and total, in clock ticks, all cores). */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** The pid of the broker scripts/kafka.sh runs, when it is that one. */
function brokerPid(): number | undefined {
  const file = join(process.env.SLUICE_CACHE ?? join(homedir(), '.cache/sluice'), 'kafka-3.9.1/run/kafka.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && cpuSecondsOf(pid) !== undefined ? pid : undefined;
}

/** CPU seconds a stretch of time took: by the processes measured together, and by the broker. */
interface CpuUse {
  procs: number | undefined;
  broker: number | undefined;
}

/** CPU per event, in µs: `sluice 81 µs + broker 14 µs`. */
function perEventText(label: string, use: CpuUse | undefined, events: number): string {
  const us = (s: number | undefined) => (s === undefined ? '?' : `${Math.round((s * 1e6) / events)} µs`);
  return `${label} ${us(use?.procs)} + broker ${us(use?.broker)}`;
}

/** What a stretch of time cost in CPU: the sluice processes, the broker, and the whole machine. */
class CpuMeter {
  private readonly procs: (number | undefined)[];
  private readonly broker: number | undefined;
  private readonly machine: { busy: number; total: number } | undefined;
  private readonly brokerPid = brokerPid();
  private readonly startedAt = performance.now();
  constructor(private readonly pids: readonly (number | undefined)[]) {
    this.procs = pids.map(cpuSecondsOf);
    this.broker = cpuSecondsOf(this.brokerPid);
    this.machine = machineTicks();
  }

  /** CPU seconds each process used so far (undefined for one that is gone or was never seen). */
  private perProcess(): (number | undefined)[] {
    return this.pids.map((pid, i) => {
      const a = this.procs[i];
      const b = cpuSecondsOf(pid);
      return a !== undefined && b !== undefined ? b - a : undefined;
    });
  }

  /** CPU seconds the broker used so far; undefined when it is not scripts/kafka.sh's. */
  private brokerUsed(): number | undefined {
    const end = cpuSecondsOf(this.brokerPid);
    return this.broker !== undefined && end !== undefined ? end - this.broker : undefined;
  }

  /** CPU seconds used so far: by the processes together, and by the broker (undefined where unknown). */
  used(): CpuUse {
    const each = this.perProcess();
    const procs = each.every((u): u is number => u !== undefined) ? each.reduce((a, b) => a + b, 0) : undefined;
    return { procs, broker: this.brokerUsed() };
  }

  text(): string {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const used = this.perProcess();
    const broker = this.brokerUsed();
    const machineEnd = machineTicks();
    const parts = [`CPU over ${seconds.toFixed(1)} s: sluice ${used.map((u) => (u === undefined ? '?' : `${u.toFixed(1)} s`)).join(' + ')}`];
    if (broker !== undefined) parts.push(`broker ${broker.toFixed(1)} s`);
    if (this.machine && machineEnd) {
      const busy = (machineEnd.busy - this.machine.busy) / Math.max(1, machineEnd.total - this.machine.total);
      parts.push(`machine ${Math.round(busy * 100)}% busy (all cores)`);
    }
    parts.push(`load ${loadavg()[0]!.toFixed(2)}`);
    return parts.join(', ');
  }
}

/** The tasks a process runs per stage: each of its threads' (`--threads`; else the one) latest `tasks assigned` list, together. */
function currentTasks(run: SluiceProcess): Map<string, string[]> {
  const byStage = new Map<string, Map<string, string[]>>();
  // Both list the tasks a thread runs from then on: after an assign, and after a revoke.
  for (const l of jsonLogLines(run.stderr())) {
    if (l.msg !== 'tasks assigned' && l.msg !== 'tasks revoked') continue;
    const byThread = byStage.get(String(l.stage)) ?? new Map<string, string[]>();
    byThread.set(String(l.thread ?? ''), Array.isArray(l.tasks) ? l.tasks.map(String) : []);
    byStage.set(String(l.stage), byThread);
  }
  return new Map([...byStage].map(([stage, byThread]) => [stage, [...byThread.values()].flat()]));
}

/** When the first of the processes was given a task of stage 0 (its log's time, epoch ms). */
function firstAssignedAt(runs: readonly SluiceProcess[]): number | undefined {
  let first: number | undefined;
  for (const r of runs) {
    const line = jsonLogLines(r.stderr()).find((l) => l.msg === 'tasks assigned' && String(l.stage) === '0' && Array.isArray(l.tasks) && l.tasks.length > 0);
    if (line && typeof line.time === 'number') first = Math.min(first ?? Number.POSITIVE_INFINITY, line.time);
  }
  return first;
}

/** Whether every process holds tasks of `stage` and together they hold its `tasks`, once each (or, with more processes than tasks, all are held). */
function shared(runs: readonly SluiceProcess[], stage: string, tasks: number): boolean {
  const lists = runs.map((r) => currentTasks(r).get(stage) ?? []);
  const all = lists.flat();
  const everyoneHas = runs.length > tasks || lists.every((l) => l.length > 0);
  return everyoneHas && all.length === tasks && new Set(all).size === tasks;
}

/** Writes each process's log (stderr) to `<dir>/<name>-<n>.log`. */
function keepLogs(dir: string, name: string, runs: readonly SluiceProcess[]): void {
  for (const [i, r] of runs.entries()) writeFileSync(join(dir, `${name}-${i + 1}.log`), r.stderr());
}

async function stopProcesses(runs: readonly SluiceProcess[]): Promise<Record<string, number>[]> {
  for (const r of runs) if (r.child.exitCode === null) process.kill(-r.child.pid!, 'SIGINT');
  const out: Record<string, number>[] = [];
  for (const [i, r] of runs.entries()) {
    const { code, signal } = await exitWithin(r, 60_000, `sluice process ${i + 1}`);
    if (code !== 0) say(`WARNING: sluice process ${i + 1} exited with ${code ?? signal}; its log ends:\n${r.stderr().slice(-2000)}`);
    // One clean stop per thread under --threads: the process wrote what its threads did.
    out.push(recordsOutBy(r, (l) => (l.msg === 'pipeline stopped cleanly' ? 'process' : undefined)).get('process') ?? {});
  }
  return out;
}

async function createProcessTopics(admin: KafkaAdmin, group: string): Promise<{ processed: string; summaries: string; late: string; dead: string }> {
  const topics = { processed: `${group}-processed`, summaries: `${group}-summaries`, late: `${group}-late`, dead: `${group}-dead-letters` };
  await admin.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1, configs: { 'retention.ms': '-1' } })));
  return topics;
}

async function deleteProcessTopics(admin: KafkaAdmin, group: string, more: string[] = []): Promise<void> {
  const ours = (await admin.listTopics()).filter((t) => t.startsWith(`${group}-`));
  await admin.deleteTopics([...ours, ...more]);
}

async function drainWithProcesses(brokers: string, admin: KafkaAdmin, spec: string, dir: string, input: string, expected: { events: number; inserts: number; closedHours: number }, run: string, n: number): Promise<{ eventsPerSecond: number; cpu: CpuUse | undefined }> {
  const group = `bench-${run}-p${n}`;
  const topics = await createProcessTopics(admin, group);
  const conn = { brokers: parseBrokers(brokers), clientId: 'sluice-bench-processes' };
  // Summaries, read_committed: when every closed hour is visible. (The enriched records are not
  // read here: their commit is the source offsets' commit, and reading a million would cost CPU.)
  const summaryKeys = new Set<string>();
  const reader = createGroupConsumer(conn, { groupId: `${group}-reader`, topics: [topics.summaries], fromBeginning: true, concurrency: 1 }, logger);
  // Without the window (WITHOUT_SUMMARIES) there are none to wait for.
  let summariesAt: number | undefined = WITHOUT_SUMMARIES ? Date.now() : undefined;
  await reader.start({
    onBatch: async (b) => {
      for (const m of b.messages) {
        const v = JSON.parse(m.value!.toString('utf8')) as Record<string, unknown>;
        summaryKeys.add(`${v.employee_id}/${v.activity_type}/${v.window_start}`);
      }
      if (summariesAt === undefined && summaryKeys.size >= expected.closedHours) summariesAt = Date.now();
    },
    onRebalancing: () => {},
    onAssignment: () => {},
    onCrash: () => {},
  });
  const ends = await admin.endOffsets(input);
  const spawnedAt = Date.now();
  const runs = Array.from({ length: n }, () => startSluice(spec, { input, group, topics, brokers, cwd: dir, args: SLUICE_ARGS, ...NODE_ARGS }));
  const cpu = new CpuMeter(runs.map((r) => r.child.pid));
  // From the first task assigned, as the drain's seconds: starting (loading and compiling TypeScript) stays out.
  let drainCpu: CpuMeter | undefined;
  try {
    let committedAt: number | undefined;
    let lastReport = Date.now();
    let balancedAt: number | undefined;
    await untilAsync(
      'the processes to drain the topic',
      async () => {
        for (const [i, r] of runs.entries()) if (r.child.exitCode !== null) throw new Error(`sluice process ${i + 1} exited (${r.child.exitCode}); its log ends:\n${r.stderr().slice(-3000)}`);
        drainCpu ??= firstAssignedAt(runs) !== undefined ? new CpuMeter(runs.map((r) => r.child.pid)) : undefined;
        if (balancedAt === undefined && shared(runs, '0', PARTITIONS)) balancedAt = Date.now();
        if (committedAt === undefined) {
          const committed = await admin.committedOffsets(group, input);
          let behind = 0;
          for (const [p, end] of ends) behind += Math.max(0, Number(end) - Math.max(0, Number(committed.get(p) ?? -1)));
          if (behind === 0) committedAt = Date.now();
          if (Date.now() - lastReport > 5_000) {
            lastReport = Date.now();
            say(`  ... ${n} process(es): ${(expected.events - behind).toLocaleString('en')} of ${expected.events.toLocaleString('en')} events committed, ${summaryKeys.size} of ${expected.closedHours} closed-hour summaries; tasks per process (stage 0 / 1, as last logged) ${runs.map((r) => { const t = currentTasks(r); return `${t.get('0')?.length ?? 0}/${t.get('1')?.length ?? 0}`; }).join(', ')}`);
          }
        }
        return committedAt !== undefined && summariesAt !== undefined;
      },
      30 * 60_000,
    );
    const usage = cpu.text();
    const drainUse = drainCpu?.used();
    const peaks = runs.map((r) => peakRssMiB(r.child.pid));
    const firstAt = firstAssignedAt(runs) ?? spawnedAt;
    const seconds = (committedAt! - firstAt) / 1000;
    const recordsOut = await stopProcesses(runs);
    const share = recordsOut.map((r) => (r.processed ?? 0).toLocaleString('en')).join(' / ');
    say(
      `[processes ${n}] drained ${expected.events.toLocaleString('en')} events in ${seconds.toFixed(1)} s: ${Math.round(expected.events / seconds).toLocaleString('en')} events/s ` +
        `(first task assigned ${((firstAt - spawnedAt) / 1000).toFixed(1)} s after spawning; ${balancedAt ? `tasks spread over all ${n} ${((balancedAt - firstAt) / 1000).toFixed(1)} s after that` : 'tasks never seen spread over all'}; ` +
        `${WITHOUT_SUMMARIES ? 'no summaries: BENCH_WITHOUT_SUMMARIES' : `${WINDOW_IN_PLACE ? 'window in place, its sums wrong: BENCH_WINDOW_IN_PLACE; ' : ''}every closed hour's summary visible ${((summariesAt! - committedAt!) / 1000).toFixed(1)} s after the last offset commit`}); enriched written per process ${share}; ${usage}; peak RSS per process ${peaks.map((m) => (m === undefined ? '?' : `${m} MiB`)).join(' / ')}; ` +
        `CPU per event from the first task assigned: ${perEventText('sluice', drainUse, expected.events)}`,
    );
    return { eventsPerSecond: expected.events / seconds, cpu: drainUse };
  } finally {
    for (const r of runs) if (r.child.exitCode === null) process.kill(-r.child.pid!, 'SIGKILL');
    keepLogs(dir, `drain-${n}`, runs);
    await reader.disconnect();
    await deleteProcessTopics(admin, group);
  }
}

async function latencyWithProcesses(brokers: string, admin: KafkaAdmin, spec: string, dir: string, run: string, n: number): Promise<Percentiles> {
  const group = `bench-${run}-p${n}-l`;
  const topics = await createProcessTopics(admin, group);
  const input = `${group}-activities`;
  await admin.createTopics([{ topic: input, partitions: PARTITIONS, configs: { 'retention.ms': '-1' } }]);
  const conn = { brokers: parseBrokers(brokers), clientId: 'sluice-bench-processes-latency' };
  const runs = Array.from({ length: n }, () => startSluice(spec, { input, group, topics, brokers, cwd: dir, args: SLUICE_ARGS, ...NODE_ARGS }));
  const { samples, reader } = await latencyReader(conn, `${group}-reader`, topics.processed);
  try {
    // The clock starts once the group has spread both stages' tasks over the N processes.
    // Without the window (WITHOUT_SUMMARIES), or with it in place (WINDOW_IN_PLACE), there is no stage 1.
    await until('the processes to share the tasks', () => shared(runs, '0', PARTITIONS) && (WITHOUT_SUMMARIES || WINDOW_IN_PLACE || shared(runs, '1', REPARTITION_PARTITIONS)), 120_000);
    await wait(2_000);
    const cpu = new CpuMeter(runs.map((r) => r.child.pid));
    const { inserts, offered } = await produceSteadily(conn, input);
    await until('the reader to see every processed message', () => samples.latencies.length >= inserts, 120_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: ${samples.latencies.length} of ${inserts} seen; the processes' logs are in ${dir}/latency-${n}-*.log`);
    });
    const usage = cpu.text();
    await stopProcesses(runs);
    const { text, ...percentiles } = latencySummary(samples);
    say(
      `[processes ${n}] latency at a steady ${Math.round(offered).toLocaleString('en')} events/s for ${LATENCY_SECONDS} s (${samples.latencies.length.toLocaleString('en')} processed messages), produce -> processed topic (read_committed): ` +
        `${text}; ${usage}`,
    );
    return percentiles;
  } finally {
    for (const r of runs) if (r.child.exitCode === null) process.kill(-r.child.pid!, 'SIGKILL');
    keepLogs(dir, `latency-${n}`, runs);
    await reader.disconnect();
    await deleteProcessTopics(admin, group);
  }
}

/**
 * The same steady stream through the kafkajs pass-through, read the same way: the latency that the
 * client, the broker and this machine allow with no sluice, the yardstick of sluice's.
 */
async function passThroughLatency(brokers: string, admin: KafkaAdmin, run: string): Promise<Percentiles> {
  const group = `bench-${run}-pt-l`;
  const input = `${group}-activities`;
  const output = `${group}-processed`;
  await admin.createTopics([
    { topic: input, partitions: PARTITIONS, configs: { 'retention.ms': '-1' } },
    { topic: output, partitions: 1, configs: { 'retention.ms': '-1' } },
  ]);
  const conn = { brokers: parseBrokers(brokers), clientId: 'sluice-bench-pass-through-latency' };
  const drained = passThrough(conn.brokers, input, output, TICKS * PER_TICK, group);
  const { samples, reader } = await latencyReader(conn, `${group}-reader`, output);
  try {
    // Produce once the pass-through holds the partitions, as sluice's latency waits for its tasks.
    await untilAsync('the pass-through to join its group', async () => (await admin.groupMembers(group)).some((m) => m.partitions > 0), 60_000);
    await wait(2_000);
    const { inserts, offered } = await produceSteadily(conn, input);
    await until('the reader to see every passed-through message', () => samples.latencies.length >= inserts, 120_000);
    await drained;
    const { text, ...percentiles } = latencySummary(samples);
    say(
      `[baseline] kafkajs pass-through latency at a steady ${Math.round(offered).toLocaleString('en')} events/s for ${LATENCY_SECONDS} s (${samples.latencies.length.toLocaleString('en')} messages), produce -> output topic: ${text}`,
    );
    return percentiles;
  } finally {
    await reader.disconnect();
    await admin.deleteTopics([input, output]);
  }
}

async function untilAsync(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(250);
  }
}

/** A spec file in `dir`: pipelines/employee-activity.yaml with only its delivery changed (and, with WITHOUT_SUMMARIES, no window; with WINDOW_IN_PLACE, no repartition). */
function specFor(dir: string, delivery: Delivery): string {
  const spec = join(dir, `employee-activity-${delivery}.yaml`);
  const doc = parseDocument(readFileSync(SPEC, 'utf8'));
  doc.set('delivery', delivery);
  if (WINDOW_IN_PLACE) doc.setIn(['sources', 'activities', 'kafka', 'partitioned_by'], ['employee_id', 'activity_type']);
  if (WITHOUT_SUMMARIES) {
    doc.deleteIn(['steps', 'hourly']);
    doc.deleteIn(['profiles']);
    // The two sinks stay (the processes are started with their topics set), reading an errors
    // port that nothing reaches in the bench.
    doc.setIn(['sinks', 'summaries', 'from'], 'enriched.errors');
    doc.setIn(['sinks', 'late-activities', 'from'], 'enriched.errors');
    const from = doc.getIn(['sinks', 'dead-letters', 'from']) as YAMLSeq<Scalar<string>>;
    from.items = from.items.filter((item) => !String(item.value).startsWith('hourly.'));
  }
  writeFileSync(spec, doc.toString());
  return spec;
}

/** Produces the backlog (EVENTS Debezium events keyed by row id) into a new topic `input`. */
async function produceBenchBacklog(brokers: string, admin: KafkaAdmin, input: string): Promise<{ events: number; inserts: number; closedHours: number }> {
  await admin.createTopics([{ topic: input, partitions: PARTITIONS, configs: { 'retention.ms': '-1' } }]);
  const producer = createProducer({ brokers: parseBrokers(brokers), clientId: 'sluice-bench' }, { chunkSize: BACKLOG_CHUNK, compression: INPUT_COMPRESSION }, logger);
  await producer.connect();
  const produceStart = performance.now();
  const backlog = await produceBacklog(producer, input, { events: EVENTS, partitions: PARTITIONS, seed: 1, startMs: Date.parse('2025-01-06T08:00:00Z') });
  await producer.close();
  const expected = { events: EVENTS, inserts: backlog.inserts.size, closedHours: closedHours(backlog).length };
  say(`produced ${EVENTS.toLocaleString('en')} Debezium events (${expected.inserts.toLocaleString('en')} inserts, ${expected.closedHours.toLocaleString('en')} closed-hour summaries expected) keyed by row id into ${PARTITIONS} partitions (${INPUT_COMPRESSION}) in ${((performance.now() - produceStart) / 1000).toFixed(1)} s`);
  return expected;
}

/**
 * The default bench: on one backlog, per delivery mode, BENCH_REPEAT times (default 3) the plain
 * kafkajs pass-through and then one `sluice run` process of the spec drain it, each in a group of
 * its own, one after the other; each pair gives sluice's rate as a ratio of the baseline's (a
 * ratio holds on a noisy machine where an absolute rate does not). Then the latency of one process.
 */
async function versusBaseline(broker: { brokers: string }, admin: KafkaAdmin, run: string): Promise<void> {
  process.env.KAFKA_BROKERS = broker.brokers;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-kafka-'));
  say(`sluice kafka bench: broker ${broker.brokers}, node ${process.version}, ${availableParallelism()} CPU core(s) shared with the broker; ${EVENTS.toLocaleString('en')} events, ${REPEAT} rounds per mode, then ${RATE}/s for ${LATENCY_SECONDS} s; logs in ${dir}`);
  const input = `bench-${run}-activities`;
  const expected = await produceBenchBacklog(broker.brokers, admin, input);
  const results: { delivery: Delivery; ratios: number[]; rates: number[]; cpuRatios: number[]; latency: Percentiles | undefined }[] = [];
  let floor: Percentiles | undefined;
  try {
    for (const delivery of MODES) {
      const spec = specFor(dir, delivery);
      const ratios: number[] = [];
      const rates: number[] = [];
      const cpuRatios: number[] = [];
      for (let round = 1; round <= REPEAT; round++) {
        const tag = `${run}-${delivery === 'exactly-once' ? 'eo' : 'al'}${round}`;
        const output = `bench-${tag}-pass-through`;
        const summariesTopic = `${output}-summaries`;
        await admin.createTopics([output, ...(BASELINE_SUMMARIES ? [summariesTopic] : [])].map((topic) => ({ topic, partitions: 1, configs: { 'retention.ms': '-1' } })));
        const summaries = BASELINE_SUMMARIES ? { topic: summariesTopic, partitions: PARTITIONS } : undefined;
        // The pass-through runs in this process, which does nothing else meanwhile.
        const baseCpu = new CpuMeter([process.pid]);
        const base = await passThrough(parseBrokers(broker.brokers), input, output, expected.events, `bench-${tag}-pass-through`, BASELINE_FETCH, summaries);
        const baseUse = baseCpu.used();
        await admin.deleteTopics([output, ...(BASELINE_SUMMARIES ? [summariesTopic] : [])]);
        const baseRate = base.messages / base.seconds;
        if (base.written !== expected.inserts) say(`WARNING: the pass-through wrote ${base.written} rows, expected ${expected.inserts}`);
        if (base.summaries && base.summaries.written !== expected.closedHours) say(`WARNING: the pass-through wrote ${base.summaries.written} summaries, expected ${expected.closedHours}`);
        const what = base.summaries ? `with hourly summaries (${base.summaries.written.toLocaleString('en')} written, ${base.summaries.late} late)` : 'no summaries';
        say(`[baseline, round ${round}] kafkajs pass-through, ${what} (fetch ${BASELINE_FETCH.toLocaleString('en')} bytes per partition) drained ${base.messages.toLocaleString('en')} events in ${base.seconds.toFixed(1)} s: ${Math.round(baseRate).toLocaleString('en')} events/s; CPU per event (from connecting): ${perEventText('pass-through', baseUse, base.messages)}`);
        const { eventsPerSecond, cpu } = await drainWithProcesses(broker.brokers, admin, spec, dir, input, expected, tag, 1);
        ratios.push(eventsPerSecond / baseRate);
        rates.push(eventsPerSecond);
        // The other way up from the rate ratio, so that both say "1 is as good as the pass-through".
        const cpuRatio = baseUse.procs !== undefined && cpu?.procs !== undefined && cpu.procs > 0 ? (baseUse.procs * expected.events) / (cpu.procs * base.messages) : undefined;
        if (cpuRatio !== undefined) cpuRatios.push(cpuRatio);
        say(`[${delivery}, round ${round}] sluice / baseline = ${(eventsPerSecond / baseRate).toFixed(2)}; CPU per event, baseline / sluice = ${cpuRatio === undefined ? '?' : cpuRatio.toFixed(2)}`);
      }
      // BENCH_LATENCY_SECONDS=0: the drains alone (for profiles of them, say).
      const latency = LATENCY_SECONDS > 0 ? await latencyWithProcesses(broker.brokers, admin, spec, dir, `${run}-${delivery === 'exactly-once' ? 'eo' : 'al'}`, 1) : undefined;
      results.push({ delivery, ratios, rates, cpuRatios, latency });
    }
    if (LATENCY_SECONDS > 0) floor = await passThroughLatency(broker.brokers, admin, run);
  } finally {
    await admin.deleteTopics([input]);
  }
  say(`summary: \`sluice run\` (1 process) against the kafkajs pass-through${BASELINE_SUMMARIES ? ' with hourly summaries (BENCH_BASELINE_SUMMARIES)' : ''} on the same backlog`);
  const latencyText = (l: Percentiles | undefined) =>
    l ? `p50 ${l.p50} ms, p99 ${l.p99} ms (after the first ${WARM_SECONDS} s: p50 ${l.warmP50} ms, p99 ${l.warmP99} ms)` : 'not measured (BENCH_LATENCY_SECONDS=0)';
  say(`  pass-through latency at ${RATE.toLocaleString('en')}/s ${latencyText(floor)}`);
  for (const r of results) {
    say(`  ${r.delivery}: ratios ${r.ratios.map((x) => x.toFixed(2)).join(', ')}; CPU per event, baseline / sluice ${r.cpuRatios.map((x) => x.toFixed(2)).join(', ') || '?'}; events/s ${r.rates.map((x) => Math.round(x).toLocaleString('en')).join(', ')}; latency at ${RATE.toLocaleString('en')}/s ${latencyText(r.latency)}`);
  }
}

async function scaleOut(broker: { brokers: string }, admin: KafkaAdmin, run: string, counts: readonly number[]): Promise<void> {
  // The test helpers below (the backlog producer) read the broker address from the environment.
  process.env.KAFKA_BROKERS = broker.brokers;
  const delivery = (process.env.BENCH_DELIVERY as Delivery | undefined) ?? 'exactly-once';
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-processes-'));
  const spec = specFor(dir, delivery);
  say(`scale-out: ${counts.join(', ')} \`sluice run\` process(es) of pipelines/employee-activity.yaml (${delivery}) in one group; ${PARTITIONS} input partitions; ${availableParallelism()} CPU core(s) shared with the broker; logs in ${dir}`);

  const input = `bench-${run}-p-activities`;
  try {
    const expected = await produceBenchBacklog(broker.brokers, admin, input);
    const results: { n: number; rate: number; p50: number; p99: number }[] = [];
    for (const n of counts) {
      const { eventsPerSecond } = await drainWithProcesses(broker.brokers, admin, spec, dir, input, expected, run, n);
      const { p50, p99 } = await latencyWithProcesses(broker.brokers, admin, spec, dir, run, n);
      results.push({ n, rate: eventsPerSecond, p50, p99 });
    }
    say('scale-out summary (processes: drain events/s, latency p50 / p99):');
    for (const r of results) say(`  ${r.n}: ${Math.round(r.rate).toLocaleString('en')} events/s, p50 ${r.p50} ms / p99 ${r.p99} ms${r.n === results[0]!.n ? '' : ` (drain x${(r.rate / results[0]!.rate).toFixed(2)} of ${results[0]!.n})`}`);
  } finally {
    await admin.deleteTopics([input]);
  }
}

async function main(): Promise<void> {
  const counts = processCounts(process.argv.slice(2));
  const broker = ensureBroker();
  const admin = createAdmin({ brokers: parseBrokers(broker.brokers), clientId: 'sluice-bench-admin' }, logger);
  await admin.connect();
  const run = randomBytes(3).toString('hex');
  if (counts) {
    try {
      await scaleOut(broker, admin, run, counts);
    } finally {
      await admin.close();
      broker.stop();
    }
    return;
  }
  try {
    await versusBaseline(broker, admin, run);
  } finally {
    await admin.close();
    broker.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:kafka failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
