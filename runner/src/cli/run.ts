/**
 * `sluice run <file>`: runs a pipeline until its input ends (bounded sources) or SIGINT/SIGTERM.
 * On a signal it stops reading, drains what is in flight to the sinks, commits what they
 * acknowledged and exits 0; a second signal exits at once (130) without that.
 */
import { systemClock } from '../engine/clock.ts';
import { StateError } from '../engine/checkpoint/checkpoint.ts';
import { ConfigError, ConnectionError, causedBy, errorMessage, FencedError, SluiceError } from '../engine/errors.ts';
import { createLogger, type Logger } from '../engine/logger.ts';
import { Metrics } from '../engine/metrics.ts';
import type { PipelineRun } from '../engine/pipeline-run.ts';
import { Runtime, recordsOutOf, type RunOutcome, type RuntimeStats } from '../engine/runtime.ts';
import { TaskLostError } from '../engine/tasks/task-group.ts';
import { RunStatus } from '../http/run-status.ts';
import { DEFAULT_HTTP_PORT, parseHttpAddress, startHttpServer, type HttpAddress, type SluiceHttpServer } from '../http/server.ts';
import { threadReporter } from '../http/threads-server.ts';
import { instantiate } from '../plan/instantiate.ts';
import { runsAsTasks } from '../plan/stages.ts';
import { prepareState } from '../plan/state.ts';
import { prepareScaledRun, resetTaskState } from '../plan/tasks.ts';
import type { Plan } from '../plan/types.ts';
import { loadPipeline, renderLoadErrors } from '../plan/load-pipeline.ts';
import { EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, parseCommandLine, processIO, SPEC_FLAGS, specLoadOptions, UsageError, type CliCommand } from './command.ts';
import { parseThreadCount, runOnThreads } from './run-threads.ts';

const EXIT_FAILED = 1;

const usage = `Usage: sluice run <file> [--profile <name>] [--set <path=value>]... [--state-dir <dir>] [--reset-state] [--http [host:]port] [--threads <n>] [--log-level <level>]

Runs a pipeline. Logs go to stderr (pretty on a terminal, JSON lines otherwise); on a terminal a
live line shows records in and out per second, the watermark, the open windows and the last
checkpoint.

Options:
  --profile <name>     apply the spec's profile (e.g. local: no servers needed)
  --set <path=value>   override one spec value, e.g. --set sources.activities.kafka.start=latest
  --state-dir <dir>    where the file state store keeps its checkpoint (default .sluice/state/<app id>)
  --reset-state        drop the stored state first: windows start empty (see sluice diff)
  --http [host:]port   serve /metrics (Prometheus), /healthz, /readyz and a live view of the graph
                       at http://host:port/; a bare port binds 127.0.0.1 (e.g. --http ${DEFAULT_HTTP_PORT};
                       in a container --http 0.0.0.0:${DEFAULT_HTTP_PORT}); off unless given
  --threads <n>        run the pipeline's tasks on n threads of this process (default 1), as
                       Kafka Streams' num.stream.threads: each thread joins the groups as a
                       process would. Only for a pipeline that runs as tasks. With --http the
                       main thread serves all threads: metrics labelled thread, one readiness,
                       the live view and sluice status adding the threads up
  --log-level <level>  trace, debug, info (default), warn, error
State: every checkpoint.interval (1s) the windows and the source positions they cover are stored
together; a restart resumes from the last checkpoint, so no window is emitted with partial counts.
Ctrl-C stops cleanly: sources stop, in-flight records reach the sinks, a last checkpoint is taken.
Exit codes: 0 done or stopped cleanly, 1 the run failed, 2 invalid spec or arguments.
`;

/** The live progress text: rates over the last interval, the lowest step watermark, open windows. */
export function progressLine(now: RuntimeStats, previous: RuntimeStats | undefined, wallNow = Date.now()): string {
  const seconds = Math.max(0.001, (now.elapsedMs - (previous?.elapsedMs ?? 0)) / 1000);
  const inRate = (now.recordsIn - (previous?.recordsIn ?? 0)) / seconds;
  const outRate = (now.recordsOut - (previous?.recordsOut ?? 0)) / seconds;
  const watermarks: string[] = [];
  let open = 0;
  let late = 0;
  for (const node of Object.values(now.nodes)) {
    const wm = node.step?.watermark;
    if (typeof wm === 'string') watermarks.push(wm);
    if (typeof node.step?.open_windows === 'number') open += node.step.open_windows;
    if (typeof node.step?.late === 'number') late += node.step.late;
  }
  watermarks.sort();
  const parts = [
    `in ${Math.round(inRate)}/s (${now.recordsIn})`,
    `out ${Math.round(outRate)}/s (${now.recordsOut})`,
  ];
  if (watermarks.length > 0) parts.push(`watermark ${watermarks[0]}`, `open windows ${open}`, `late ${late}`);
  const cp = now.checkpoint;
  if (cp?.lastCommittedAt !== undefined) {
    const age = Math.max(0, (wallNow - cp.lastCommittedAt) / 1000);
    parts.push(`checkpoint #${cp.epoch} ${age.toFixed(1)}s ago in ${cp.lastDurationMs ?? 0}ms, state ${cp.entries} panes ${formatBytes(cp.bytes)}`);
  }
  return parts.join('  ');
}

export const command: CliCommand = {
  name: 'run',
  summary: 'run a pipeline until its input ends or Ctrl-C',
  usage,
  async run(argv, io = processIO) {
    const { values, positionals } = parseCommandLine(argv, {
      ...SPEC_FLAGS,
      'log-level': { type: 'string' },
      'state-dir': { type: 'string' },
      'reset-state': { type: 'boolean' },
      http: { type: 'string' },
      threads: { type: 'string' },
    });
    if (positionals.length !== 1) throw new UsageError('give exactly one spec file');
    const threads = values.threads === undefined ? 1 : parseThreadCount(values.threads);
    if (typeof threads === 'string') throw new UsageError(threads);
    // The threads run without --threads (run-threads.ts threadArgv): one never starts more.
    if (threads > 1 && io.thread !== undefined) throw new UsageError('--threads inside a thread of --threads');
    let httpAddress: HttpAddress | undefined;
    if (values.http !== undefined) {
      try {
        httpAddress = parseHttpAddress(values.http);
      } catch (err) {
        throw new UsageError(`--http: ${errorMessage(err)}`);
      }
    }
    const file = positionals[0]!;
    const loaded = await loadPipeline(file, specLoadOptions(values, io.env));
    if (!loaded.ok) {
      io.stderr(renderLoadErrors(loaded));
      return EXIT_INVALID;
    }

    const level = values['log-level'] ?? io.env.SLUICE_LOG_LEVEL ?? 'info';
    if (threads > 1) {
      if (!runsAsTasks(loaded.plan)) {
        io.stderr(
          `${file}: --threads needs a pipeline that runs as tasks (one kafka source reading one topic, checkpoint.store kafka, no file sink): this one runs whole, and two runs of it would each compute its windows\n`,
        );
        return EXIT_INVALID;
      }
      if (values['reset-state'] === true) {
        // Once, before any thread starts (the threads run without the flag: threadArgv).
        const logger = createLogger(level);
        try {
          await resetTaskState(loaded.plan, logger);
        } catch (err) {
          logger.error({ err }, `pipeline cannot start: ${errorMessage(err)}`);
          return EXIT_FAILED;
        } finally {
          await flushLogger(logger);
        }
      }
      // The main thread serves --http for all threads (http/threads-server.ts).
      const http = httpAddress ? { address: httpAddress, plan: loaded.plan, logger: createLogger(level) } : undefined;
      try {
        return await runOnThreads(argv, threads, (text) => io.stderr(`${text}\n`), undefined, http);
      } catch (err) {
        if (!http) throw err;
        http.logger.error({ err }, `pipeline cannot start: ${errorMessage(err)}`);
        return EXIT_FAILED;
      } finally {
        if (http) await flushLogger(http.logger);
      }
    }

    const logger = io.thread === undefined ? createLogger(level) : createLogger(level, { lineAtATime: true }).child({ thread: io.thread });
    const metrics = new Metrics();
    const status = new RunStatus(loaded.plan, metrics);
    // A thread of --threads: the main thread serves --http for all (http/threads-server.ts).
    if (io.thread !== undefined && io.reportWith) io.reportWith(threadReporter(status, io.thread));
    let server: SluiceHttpServer | undefined;
    if (httpAddress) {
      try {
        server = await startHttpServer({ address: httpAddress, status, logger });
      } catch (err) {
        logger.error({ err }, `pipeline cannot start: ${errorMessage(err)}`);
        await flushLogger(logger);
        return EXIT_FAILED;
      }
    }
    // Signals are handled from here on: a Ctrl-C while state is being restored stops cleanly too.
    let runtime: PipelineRun | undefined;
    let stopSignal: NodeJS.Signals | undefined;
    let signals = 0;
    // Resolves on the first signal: a wait between restarts ends early.
    let signalled!: () => void;
    const signalReceived = new Promise<void>((resolve) => (signalled = resolve));
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting without draining');
        process.exit(EXIT_INTERRUPTED);
      }
      logger.info({ signal }, 'stopping: draining in-flight records to the sinks (press again to exit at once)');
      stopSignal = signal;
      signalled();
      if (runtime) void runtime.stop(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const stopRequests = io.onStopRequest?.(onSignal);
    // A thread of --threads waits for the others before its first start only: a restart rejoins alone.
    let startedTogether = false;
    try {
      // A run that fails on a broker or database outage starts again from its last checkpoint,
      // as a Flink job restarts: with durable state nothing is lost or counted twice.
      for (let failures = 0; ; ) {
        try {
          // Only the first start drops state: a restart resumes from what this run stored.
          const resetState = values['reset-state'] === true && failures === 0;
          if (runsAsTasks(loaded.plan)) {
            // Scale-out: start the same command N times and the processes share the tasks.
            runtime = await prepareScaledRun(loaded.plan, { logger, metrics, clock: systemClock, ...(resetState ? { resetState } : {}) });
          } else {
            const state = await prepareState(loaded.plan, {
              logger,
              clock: systemClock,
              ...(values['state-dir'] !== undefined ? { stateDir: values['state-dir'] } : {}),
              ...(resetState ? { resetState } : {}),
            });
            const graph = instantiate(loaded.plan, { mode: 'run', logger, clock: systemClock, metrics, ...(state.context ? { checkpoints: state.context } : {}) });
            runtime = new Runtime(graph, { logger, metrics, clock: systemClock, ...(state.coordinator ? { checkpoints: state.coordinator } : {}) });
            logger.info(
              { delivery: state.settings.delivery, state: state.coordinator ? state.coordinator.store.description : 'none', checkpoint_interval_ms: state.settings.intervalMs },
              'state and delivery',
            );
          }
        } catch (err) {
          const where = err instanceof SluiceError && err.where ? ` (${err.where})` : '';
          // A restart that cannot reach the brokers yet (a run as tasks asks them for its
          // partitions first) waits and tries again, as a restart whose run fails at once would.
          const retrying = failures > 0 && !stopSignal && isRestartable(err) && failures < MAX_RESTARTS;
          if (retrying) logger.warn({ error: errorMessage(err) }, `pipeline cannot start again yet${where}: ${errorMessage(err)}`);
          else logger.error({ err }, `pipeline cannot start${where}: ${errorMessage(err)}`);
          status.failed(err, retrying);
          if (!retrying) return EXIT_FAILED;
          failures++;
          const delay = restartDelayMs(failures);
          logger.warn({ attempt: failures, of: MAX_RESTARTS, delay_ms: delay }, `restarting from the last checkpoint in ${delay / 1000}s`);
          await sleepUnless(delay, signalReceived);
          if (stopSignal) return EXIT_FAILED;
          continue;
        }
        if (io.startTogether && !startedTogether) {
          startedTogether = true;
          await Promise.race([io.startTogether(), signalReceived]);
        }
        status.started(runtime);
        if (stopSignal) void runtime.stop(stopSignal);
        const result = await runPipeline(runtime, loaded.plan, file, values.profile, logger);
        if (result.outcome) {
          status.finished(result.outcome.ended === 'end-of-input' ? 'finished' : 'stopped');
          return EXIT_OK;
        }
        const cp = runtime.stats().checkpoint;
        // A run that committed checkpoints made progress: its failure starts a new count.
        if (cp && cp.epoch > (cp.restored?.epoch ?? 0)) failures = 0;
        failures++;
        // Tasks always keep their state in Kafka, even when none started before the failure.
        const durable = cp !== undefined || runsAsTasks(loaded.plan);
        const restarting = !stopSignal && durable && isRestartable(result.error) && failures <= MAX_RESTARTS;
        status.failed(result.error, restarting);
        // A signal that came before the failure: the run ends as it would have after the restart's wait.
        if (!restarting) return stopSignal ? exitAfterStop(result.error) : EXIT_FAILED;
        const delay = restartDelayMs(failures);
        logger.warn({ attempt: failures, of: MAX_RESTARTS, delay_ms: delay }, `restarting from the last checkpoint in ${delay / 1000}s`);
        // A signal meanwhile ends the wait and the process.
        await sleepUnless(delay, signalReceived);
        if (stopSignal) return exitAfterStop(result.error);
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      stopRequests?.();
      await server?.close();
      await flushLogger(logger);
      // After a signal the process ends even when a client given up on (tasks left waiting on
      // brokers out of reach) still holds the event loop. Unref'd: it keeps nothing alive itself.
      if (stopSignal) setTimeout(() => process.exit(), 2_000).unref();
    }
  },
};

/**
 * The exit code of a process told to stop (SIGINT, SIGTERM) whose run failed before it could
 * restart. A task taken over by another process is how a group shares work, not a failure: the
 * process stopped cleanly (everything it acknowledged is in committed checkpoints). Anything else
 * is a failure.
 */
export function exitAfterStop(error: unknown): number {
  return error instanceof TaskLostError ? EXIT_OK : EXIT_FAILED;
}

/** Restarts in a row without a committed checkpoint before the run gives up. */
export const MAX_RESTARTS = 10;

/**
 * Whether a failed run is worth starting again from its last checkpoint: an outage of a broker or
 * database (a ConnectionError) may end. A fenced instance (another took over), unusable state or a
 * bad config will not.
 */
export function isRestartable(error: unknown): boolean {
  // A task taken over by another process while this one thought it owned it: rejoin and restore.
  if (error instanceof TaskLostError) return true;
  if (causedBy(error, FencedError, StateError, ConfigError)) return false;
  return causedBy(error, ConnectionError);
}

/** Waits `ms`, or less when `until` resolves first (a signal); leaves no timer behind. */
async function sleepUnless(ms: number, until: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), until]);
  clearTimeout(timer);
}

/** 1 s before the first restart, doubling to at most 30 s. */
export function restartDelayMs(attempt: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, attempt - 1));
}

/** Runs until the end of input or a stop, with the live progress line; the run summary is logged. */
async function runPipeline(runtime: PipelineRun, plan: Plan, file: string, profile: string | undefined, logger: Logger): Promise<{ outcome: RunOutcome; error?: undefined } | { outcome?: undefined; error: unknown }> {
  // On a terminal, one live line on stderr; when a stdout sink shares the terminal, a full line
  // every 5 s instead, so data lines and the progress line do not overwrite each other.
  const stdoutSink = plan.nodes.some((n) => n.role === 'sink' && n.kind === 'stdout');
  const live = process.stderr.isTTY === true;
  const sameTerminal = stdoutSink && process.stdout.isTTY === true;
  let previous: RuntimeStats | undefined;
  const progress = live
    ? setInterval(
        () => {
          const now = runtime.stats();
          const line = progressLine(now, previous);
          previous = now;
          process.stderr.write(sameTerminal ? `${line}\n` : `\r\x1b[K${line}`);
        },
        sameTerminal ? 5000 : 1000,
      )
    : undefined;

  logger.info({ pipeline: plan.name, file, profile }, 'pipeline starting');
  try {
    const outcome = await runtime.run();
    if (progress) process.stderr.write(sameTerminal ? '' : '\r\x1b[K');
    logger.info(
      {
        ended: outcome.ended,
        recordsIn: outcome.recordsIn,
        recordsOut: outcome.recordsOut,
        failed: outcome.failed,
        dropped: outcome.dropped,
        filtered: outcome.discarded,
        seconds: Math.round(outcome.elapsedMs) / 1000,
        ...(outcome.stats.checkpoint ? { checkpoint: summaryOf(outcome.stats.checkpoint) } : {}),
      },
      outcome.ended === 'stopped' ? 'pipeline stopped cleanly' : 'pipeline finished: end of input',
    );
    return { outcome };
  } catch (err) {
    const where = err instanceof SluiceError && err.where ? ` (${err.where})` : '';
    // What the failed run did, as a clean stop's summary says it: a restart counts from zero again.
    const stats = runtime.stats();
    logger.error({ err, recordsIn: stats.recordsIn, recordsOut: recordsOutOf(stats) }, `pipeline failed${where}: ${errorMessage(err)}`);
    return { error: err };
  } finally {
    if (progress) clearInterval(progress);
  }
}

/** The run summary's view of checkpoints: what was restored, how many were taken, the last one's figures. */
function summaryOf(cp: NonNullable<RuntimeStats['checkpoint']>): Record<string, unknown> {
  return {
    epoch: cp.epoch,
    taken: cp.checkpoints,
    lastMs: cp.lastDurationMs,
    statePanes: cp.entries,
    stateBytes: cp.bytes,
    skippedAlreadyProcessed: cp.skipped,
    ...(cp.restored ? { restored: cp.restored } : {}),
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** pino writes asynchronously; give the last lines a moment to leave before the process exits. */
async function flushLogger(logger: Logger): Promise<void> {
  if (logger.flush) await new Promise<void>((resolve) => logger.flush!(() => resolve()));
}
