/**
 * `generator`: a built-in simulator standing in for PostgreSQL + Debezium, so pipelines run with no
 * server. Scenario `employee-activity` emits the seed's employee_activities changes exactly as
 * Debezium 2.7 writes them (schema envelopes, epoch-microsecond timestamps), mostly inserts with a
 * few updates, deletes and tombstones. Deterministic for a given seed and start time.
 */
import { Ack } from '../../engine/ack.ts';
import type { Source, SourceDef, SourceOutput } from '../../engine/component.ts';
import type { RawMessage } from '../../engine/record.ts';
import { object } from '../../engine/schema.ts';
import { toEpochMillis } from '../../engine/time.ts';
import { EMPLOYEE_ACTIVITY_DEFAULTS, EmployeeActivitySimulator } from './generator/employee-activity.ts';

export interface GeneratorSourceConfig {
  scenario: 'employee-activity';
  seed?: number;
  rate?: number;
  count?: number;
  start_time?: string;
  partitions?: number;
  employees?: number;
  batch_size?: number;
  topic_prefix?: string;
}

const DEFAULT_RATE = 10;
const DEFAULT_BATCH_SIZE = 500;
/** Simulated clock start in test mode, where nothing may depend on the wall clock: a Monday, 08:00 UTC. */
export const TEST_START_TIME = '2025-01-06T08:00:00Z';

/** How many events to hand over at once: small batches at low rates so the stream stays smooth. */
export function chunkSize(rate: number, batchSize: number): number {
  return rate <= 0 ? batchSize : Math.max(1, Math.min(batchSize, Math.ceil(rate / 10)));
}

export const generatorSource: SourceDef<GeneratorSourceConfig> = {
  family: 'source',
  name: 'generator',
  summary: 'Simulates employee web activity captured by Debezium from PostgreSQL: no server needed.',
  description:
    'Scenario `employee-activity`: employees in five departments log in, view department pages, click, download ' +
    'and log out, with realistic durations, office or VPN IP addresses and browser user agents. Each row change is ' +
    'emitted as Debezium 2.7 emits it for the seed table `employee_activities` (topic ' +
    '`<topic_prefix>.public.employee_activities`, key `{id}`, JsonConverter schema envelopes, `activity_timestamp` ' +
    'as epoch microseconds): about 2% of page views are later updated (`op: u`, `before: null` as under REPLICA ' +
    'IDENTITY DEFAULT), 0.5% of activities deleted (`op: d`) and followed by a tombstone. Use it with ' +
    '`format: debezium`. The same `seed` and `start_time` give the same events; `rate` only paces them.\n\n' +
    'Event time is simulated, not read from the wall clock: with the default 50 employees a working hour holds ' +
    'about 500 events (nights and most weekends are quiet), so at `rate: 20` an hour of activity passes in about ' +
    '25 seconds and hourly windows close while you watch.',
  schema: object(
    'Generate simulated change events.',
    {
      scenario: { type: 'string', enum: ['employee-activity'], description: 'What to simulate.', examples: ['employee-activity'] },
      seed: { type: 'integer', default: 1, description: 'Seed of the pseudo-random generator: same seed, same events.', examples: [42] },
      rate: {
        type: 'number',
        minimum: 0,
        default: DEFAULT_RATE,
        description: 'Events per second of real time; 0 emits as fast as the pipeline takes them. Ignored in test mode.',
        examples: [50, 0],
      },
      count: { type: 'integer', minimum: 0, description: 'Stop after this many events (the source is then bounded); unlimited when absent.', examples: [10000] },
      start_time: {
        type: 'string',
        pattern: '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}',
        description: `Start of the simulated clock (ISO 8601). Default: now in \`sluice run\`, ${TEST_START_TIME} in tests.`,
        examples: ['2025-01-06T08:00:00Z'],
      },
      partitions: {
        type: 'integer',
        minimum: 1,
        maximum: 256,
        default: 1,
        description: 'Input partitions to spread events over (by row id, as Kafka partitions by key).',
        examples: [3],
      },
      employees: { type: 'integer', minimum: 1, maximum: 100000, default: EMPLOYEE_ACTIVITY_DEFAULTS.employees, description: 'Number of simulated employees.', examples: [50] },
      batch_size: { type: 'integer', minimum: 1, maximum: 100000, default: DEFAULT_BATCH_SIZE, description: 'Most events per batch.', examples: [500] },
      topic_prefix: {
        type: 'string',
        minLength: 1,
        default: EMPLOYEE_ACTIVITY_DEFAULTS.topicPrefix,
        description: "Debezium's `topic.prefix`: names the topic, the schemas and `source.name`.",
        examples: ['employee-server'],
      },
    },
    ['scenario'],
  ),
  describe: (c) =>
    `${c.scenario} simulation, seed ${c.seed ?? 1}, ${(c.rate ?? DEFAULT_RATE) === 0 ? 'unpaced' : `${c.rate ?? DEFAULT_RATE}/s`}` +
    (c.count === undefined ? '' : `, ${c.count} events`),
  create(config, ctx): Source {
    const startText = config.start_time ?? (ctx.mode === 'test' ? TEST_START_TIME : undefined);
    const startMs = startText === undefined ? Math.floor(ctx.clock.now() / 1000) * 1000 : toEpochMillis(startText);
    if (startMs === undefined) throw new Error(`start_time \`${startText}\` is not an ISO 8601 timestamp`);
    const rate = ctx.mode === 'test' ? 0 : (config.rate ?? DEFAULT_RATE);
    const batchSize = config.batch_size ?? DEFAULT_BATCH_SIZE;
    const partitionCount = config.partitions ?? 1;
    const simulator = new EmployeeActivitySimulator({
      ...EMPLOYEE_ACTIVITY_DEFAULTS,
      seed: config.seed ?? 1,
      startMs,
      employees: config.employees ?? EMPLOYEE_ACTIVITY_DEFAULTS.employees,
      topicPrefix: config.topic_prefix ?? EMPLOYEE_ACTIVITY_DEFAULTS.topicPrefix,
    });
    const partitions = Array.from({ length: partitionCount }, (_, i) => `${ctx.name}/${simulator.table.topic}/${i}`);
    const offsets = new Array<number>(partitionCount).fill(0);
    let stopping = false;
    let wake: (() => void) | undefined;

    const pause = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });

    return {
      bounded: config.count !== undefined,
      async run(out: SourceOutput): Promise<void> {
        out.assign(partitions);
        const chunk = chunkSize(rate, batchSize);
        const started = Date.now();
        let emitted = 0;
        while (!stopping && (config.count === undefined || emitted < config.count)) {
          const n = config.count === undefined ? chunk : Math.min(chunk, config.count - emitted);
          const byPartition = new Map<number, RawMessage[]>();
          for (let i = 0; i < n; i++) {
            const event = simulator.next();
            const p = event.id % partitionCount;
            let list = byPartition.get(p);
            if (!list) byPartition.set(p, (list = []));
            list.push({
              key: event.key,
              value: event.value,
              headers: {},
              timestamp: event.timestampMs,
              position: { source: ctx.name, partition: partitions[p]!, offset: String(offsets[p]!++) },
            });
          }
          for (const [p, messages] of byPartition) await out.emit({ partition: partitions[p]!, messages, ack: new Ack(() => {}) });
          emitted += n;
          if (rate > 0) {
            const due = started + (emitted / rate) * 1000;
            const wait = due - Date.now();
            if (wait > 0) await pause(wait);
          }
        }
      },
      async stop(): Promise<void> {
        stopping = true;
        wake?.();
      },
      async close(): Promise<void> {},
    };
  },
};
