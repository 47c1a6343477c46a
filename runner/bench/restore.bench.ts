/**
 * `npm run bench:restore`: how long a restart takes to restore a 1-hour window holding 50,000
 * panes (50,000 employee/activity groups in one open hour, the employee pipeline's aggregates),
 * from each state store: the Kafka changelog (read the compacted topics to their end) and the file.
 * Also what the first checkpoint of that state costs to write.
 *
 *   npm run bench:restore
 *   BENCH_PANES=200000 npm run bench:restore
 *
 * Uses KAFKA_BROKERS (default 127.0.0.1:9092: start it with scripts/kafka.sh start).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { windowStep } from '../src/components/steps/window.ts';
import { Ack } from '../src/engine/ack.ts';
import type { Checkpoint, StateStore } from '../src/engine/checkpoint/checkpoint.ts';
import { ManualClock } from '../src/engine/clock.ts';
import { SharedResources, type Step, type StepOutput } from '../src/engine/component.ts';
import { createLogger } from '../src/engine/logger.ts';
import { Metrics } from '../src/engine/metrics.ts';
import type { StreamRecord } from '../src/engine/record.ts';
import { FileStateStore } from '../src/engine/state/file-store.ts';
import { ChangelogStateStore } from '../src/io/kafka/changelog-store.ts';
import { createAdmin } from '../src/io/kafka/client.ts';
import { parseBrokers } from '../src/io/kafka/connection.ts';

const PANES = Number(process.env.BENCH_PANES ?? 50_000);
const HOUR_START = Date.parse('2025-01-06T09:00:00Z');
const logger = createLogger(process.env.SLUICE_LOG_LEVEL ?? 'warn');
const say = (line: string) => process.stdout.write(`${line}\n`);
const brokers = parseBrokers(process.env.KAFKA_BROKERS ?? '127.0.0.1:9092');

const config = {
  window: { tumbling: '1h', time: 'activity_timestamp', lateness: '10m', idle: '1m', emit: 'final' as const },
  group_by: ['employee_id', 'activity_type'],
  aggregate: { activity_count: '$count()', total_duration: '$sum(duration_seconds)', avg_duration: '$average(duration_seconds)' },
};

function windowWith(clock: ManualClock): Step {
  return windowStep.create(config, { name: 'hourly', logger, clock, metrics: new Metrics(), mode: 'run', checkpoints: { delivery: 'at-least-once', applicationId: 'bench', shared: new SharedResources() } });
}

const out: StepOutput = { emit: () => {}, drop: (r) => r.ack.release(), fail: (r) => r.ack.release() };

/** A window holding PANES open panes: two records per group, all inside one hour. */
async function filledWindow(): Promise<Step> {
  const step = windowWith(new ManualClock(HOUR_START));
  const types = ['login', 'logout', 'page_view', 'download', 'upload'];
  for (let base = 0; base < PANES; base += 5_000) {
    const records: StreamRecord[] = [];
    const ack = new Ack(() => {});
    for (let i = base; i < Math.min(PANES, base + 5_000); i++) {
      for (let k = 0; k < 2; k++) {
        records.push({
          key: null,
          value: { employee_id: Math.floor(i / types.length), activity_type: types[i % types.length], activity_timestamp: new Date(HOUR_START + ((i * 7 + k) % 3_000_000)).toISOString(), duration_seconds: 30 + (i % 100) + k },
          time: HOUR_START,
          headers: {},
          meta: {},
          position: { source: 'bench', partition: 'bench/0', offset: String(i * 2 + k) },
          ack,
        });
      }
    }
    ack.retain(records.length);
    ack.seal();
    await step.process({ partition: 'bench/0', records }, out);
  }
  return step;
}

async function measure(name: string, makeStore: () => StateStore, checkpoint: Checkpoint): Promise<void> {
  const writer = makeStore();
  await writer.open();
  await writer.load();
  let t = performance.now();
  const figures = await writer.commit(checkpoint);
  const writeMs = performance.now() - t;
  await writer.close();

  const reader = makeStore();
  t = performance.now();
  await reader.open();
  const loaded = await reader.load();
  const loadMs = performance.now() - t;
  if (!loaded) throw new Error(`${name}: nothing restored`);
  const step = windowWith(new ManualClock(HOUR_START));
  t = performance.now();
  step.restore!(loaded.states.get('hourly')!);
  const restoreMs = performance.now() - t;
  const panes = Number(step.stats!().open_windows);
  await reader.reset();
  await reader.close();
  say(
    `${name}: first checkpoint of ${checkpoint.states.get('hourly')!.entries.size.toLocaleString('en')} panes wrote ${(figures.bytes / 1024 / 1024).toFixed(1)} MiB in ${writeMs.toFixed(0)} ms; ` +
      `restore: read ${loadMs.toFixed(0)} ms + rebuild the window ${restoreMs.toFixed(0)} ms = ${(loadMs + restoreMs).toFixed(0)} ms for ${panes.toLocaleString('en')} open panes`,
  );
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const step = await filledWindow();
  const state = step.snapshot!();
  say(`sluice restore bench: node ${process.version}; a 1-hour window with ${state.entries.size.toLocaleString('en')} open panes built in ${(performance.now() - t0).toFixed(0)} ms`);
  const appId = `bench-restore-${Date.now().toString(36)}`;
  const checkpoint: Checkpoint = {
    applicationId: appId,
    epoch: 1,
    positions: { 'bench/0': String(PANES * 2 - 1) },
    states: new Map([['hourly', state]]),
    identities: { hourly: { kind: 'window', fingerprint: 'bench', parts: {} } },
    sinks: {},
    takenAt: Date.now(),
  };
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-restore-bench-'));
  try {
    await measure('file store', () => new FileStateStore(dir), checkpoint);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await measure(
    'kafka store',
    () => new ChangelogStateStore({ connection: { brokers, clientId: 'sluice-restore-bench' }, applicationId: appId, steps: ['hourly'], groups: new Map(), startingOver: true }, logger),
    checkpoint,
  );
  const admin = createAdmin({ brokers, clientId: 'sluice-restore-bench' }, logger);
  await admin.connect();
  await admin.deleteTopics((await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`)));
  await admin.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:restore failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
