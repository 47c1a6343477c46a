/**
 * The `window` step: event-time window aggregation (tumbling, hopping, session), grouped by
 * `group_by`, computing `aggregate`. It owns the keys `window`, `group_by` and `aggregate` of its
 * step entry, and `partition_by` and `partitions`, which only the stage split (plan/stages.ts)
 * reads. Late records go to the port `late`. The operator itself is engine/window.
 */
import type { JsonSchema, StepDef } from '../../engine/component.ts';
import { ConfigError } from '../../engine/errors.ts';
import { compileExpression } from '../../engine/expression.ts';
import { formatDuration, isCalendarDuration, parseDuration } from '../../engine/duration.ts';
import { cron, duration, expression, object, PLAIN_PATH_PATTERN, timeZone } from '../../engine/schema.ts';
import { parseSchedule } from '../../engine/schedule.ts';
import { isTimeZone } from '../../engine/time.ts';
import { planAggregate } from '../../engine/window/aggregates.ts';
import type { WindowShape } from '../../engine/window/assign.ts';
import { plainPathName } from '../../engine/window/group-key.ts';
import { DEFAULT_MAX_ROWS, LATE_PORT, WINDOW_METRICS, WindowAggregate, type GroupKeySpec } from '../../engine/window/window-aggregate.ts';

export interface WindowSettings {
  tumbling?: string;
  hopping?: { size: string; advance: string };
  session?: { gap: string };
  time?: string;
  lateness?: string;
  idle?: string;
  emit?: 'final' | 'update';
  timezone?: string;
  max_rows?: number;
  /** Cron schedule of early results (in `timezone`). */
  early?: string;
}

export interface WindowStepConfig {
  window: WindowSettings;
  group_by?: string[] | Record<string, string>;
  aggregate: Record<string, string>;
  /** Running as tasks, when the window reads through a repartition topic: what keys it (default: the group keys). */
  partition_by?: string[];
  /** Running as tasks, when the window reads through a repartition topic: its partition count (default: the stage before's task count). */
  partitions?: number;
}

/**
 * The default `idle`. Flink has none (a quiet source holds the watermark until it is declared idle)
 * but its documentation recommends `withIdleness(Duration.ofMinutes(1))` for exactly this; Kafka
 * Streams never waits (`max.task.idle.ms` is 0: stream time moves with the partitions that have
 * data). A minute is the middle: a quiet partition delays results by at most a minute, while one
 * that merely pauses for seconds, or a consumer catching up, still holds the watermark back.
 */
export const DEFAULT_IDLE = '1m';

/** Field names that every output carries; group keys and aggregates may not take them. */
const RESERVED_FIELDS = ['window_start', 'window_end'];

const windowSchema = object(
  'How records are cut into event-time windows. Exactly one of `tumbling`, `hopping` or `session`.',
  {
    tumbling: duration(
      'Fixed, non-overlapping windows of this size, aligned to the epoch (UTC). Whole days (`1d`, `7d`) are calendar windows: they start at local midnight in `timezone`, so a day may last 23 or 25 hours; multiples of 7 days start on Monday.',
      ['1h', '5m', '1d', '7d'],
    ),
    hopping: object(
      'Overlapping windows of `size`, one starting every `advance` (aligned to the epoch, UTC). A record joins every window that holds it.',
      {
        size: duration('Length of each window.', ['1h']),
        advance: duration('Distance between the starts of consecutive windows.', ['15m']),
      },
      ['size', 'advance'],
      { examples: [{ size: '1h', advance: '15m' }] },
    ),
    session: object(
      'Per group, records less than `gap` apart form one session `[first event, last event + gap)`; a record bridging two sessions merges them.',
      { gap: duration('Inactivity that ends a session.', ['30m']) },
      ['gap'],
      { examples: [{ gap: '30m' }] },
    ),
    time: expression(
      "Event time of a record: JSONata giving an ISO 8601 string (no zone = UTC) or epoch milliseconds. Omitted: the record's own event time as its source and format set it (Kafka timestamp, Debezium `ts_ms`). A record for which it gives nothing or no timestamp goes to `<step>.errors`.",
      ['activity_timestamp', '$meta.ts_ms'],
    ),
    lateness: duration(
      "How far behind the highest event time seen (per input partition) the watermark stays: records up to this much out of order still count. Default `0s`.",
      ['0s', '10m'],
    ),
    idle: {
      ...duration(
        `A partition that sends nothing for this long (processing time) stops holding the watermark back, until it sends again. Default \`${DEFAULT_IDLE}\`: without one, a single quiet partition (a Kafka partition no key hashes to, a table nobody writes) would keep every window open forever. Longer waits more for a late partition; a partition quiet longer than this may find its windows closed, and its records then go to \`late\`. A partition that holds the watermark back for over a minute while another is ahead is logged as a warning and counted in \`sluice_watermark_holds_total\`.`,
        ['1m', '30s', '10m'],
      ),
      default: DEFAULT_IDLE,
    },
    emit: {
      type: 'string',
      enum: ['final', 'update'],
      default: 'final',
      description:
        '`final`: one result per window and group, once the watermark passes the window end. `update`: a result on every change (at most once per input batch), keyed by group and `window_start` so an upserting sink keeps the latest; nothing more once the window closes.',
      examples: ['final', 'update'],
    },
    timezone: timeZone('IANA time zone that calendar windows (`tumbling: 1d`, `7d`) align to, and `early` is read in. Outputs are always in UTC.', ['UTC', 'Europe/Berlin']),
    early: {
      ...cron('', ['*/5 * * * *', '0 * * * *']),
      description:
        'Early results on a cron schedule (processing time, in `timezone`): when it fires, every window still open that took records since its last early result emits its result so far, before its final one. Such a window\'s outputs all carry `early` (true, or false for the final result) in the value and in `$meta`, under the same key, so an upserting sink ends with the final result. Wall-clock punctuation, as Kafka Streams\' punctuators and Flink\'s continuous triggers: the final result is exact whatever the early ones said. Only with `emit: final`.',
    },
    max_rows: {
      type: 'integer',
      minimum: 1,
      default: DEFAULT_MAX_ROWS,
      description:
        'Only when an aggregate is evaluated over the group\'s records (anything but the built-ins and compositions of them, see `aggregate`): how many record values one group may keep per window, in memory and in every checkpoint. A group that gets more keeps none from then on, its result goes to `<step>.errors` (`E_WINDOW_ROWS`, the incremental aggregates filled in, the others null) and `sluice_window_row_limit_total` counts it; the run goes on.',
      examples: [100000, 1000000],
    },
  },
  [],
  {
    oneOf: [{ required: ['tumbling'] }, { required: ['hopping'] }, { required: ['session'] }],
    examples: [{ tumbling: '1h', time: 'activity_timestamp', lateness: '10m', idle: '1m', emit: 'final' }],
  },
);

const groupBySchema: JsonSchema = {
  description:
    'The group keys. A list of plain field paths (`employee_id`, `user.id`), each output under its last segment; or a map `name: JSONata expression` for computed keys (`{ hour: $hour(ts) }`). A computed expression in the list form is refused: give it a name in the map form. Omitted: one group per window.',
  examples: [['employee_id', 'activity_type'], { department: 'employee.department', hour: '$hour(activity_timestamp)' }],
  oneOf: [
    {
      type: 'array',
      minItems: 1,
      description: 'Plain field paths; each key is named after the path\'s last segment.',
      examples: [['employee_id', 'activity_type']],
      items: {
        type: 'string',
        pattern: PLAIN_PATH_PATTERN,
        'x-jsonata': true,
        description: 'A plain field path such as `employee_id` or `user.id` (use the map form for any other expression).',
        examples: ['employee_id', 'user.id'],
      },
    },
    {
      type: 'object',
      minProperties: 1,
      description: 'Output field name -> JSONata expression giving the key value.',
      examples: [{ department: 'employee.department' }],
      additionalProperties: expression('JSONata giving this key\'s value for a record.', ['employee.department', '$lowercase(country)']),
    },
  ],
};

const aggregateSchema: JsonSchema = {
  type: 'object',
  minProperties: 1,
  description:
    'Output field name -> JSONata aggregate, in output order. Computed incrementally (memory per group, not per record) when the whole expression is one of `$count()` (records), `$count(x)` (non-null values), `$sum(x)`, `$average(x)` (or `$avg`), `$min(x)`, `$max(x)`, `$countDistinct(x)`, `$first(x)`, `$last(x)` (by event time), `$collect(x)`; nulls are ignored and `$sum` of nothing is null. Also incremental: a composition of these with literals, `+ - * / %`, comparisons, `and`/`or`, `&`, `? :` and `$round`, `$floor`, `$ceil`, `$abs`, `$sqrt`, `$power`, `$number`, `$string`, `$boolean`, `$not`, `$exists`, such as `$round($average(d), 1)`, `$sum(x) / $count()` or `$max(t) - $min(t)`: each built-in is accumulated and the rest is evaluated over their results. Any other expression is evaluated when the window emits, with the array of the group\'s record values as input: those values are kept in memory and in checkpoints until then, at most `window.max_rows` per group.',
  examples: [{ activity_count: '$count()', total_duration: '$sum(duration_seconds)', avg_duration: '$round($average(duration_seconds), 1)' }],
  additionalProperties: expression('A JSONata aggregate over the group\'s records.', ['$count()', '$sum(duration_seconds)', '$max(ts)']),
};

/** When the keys below matter: only a pipeline that runs as tasks ever reads through a repartition topic. */
const TASKS_ONLY =
  'Only matters when the pipeline runs as tasks, one per input partition (it reads one `kafka` source and keeps its state in Kafka, `checkpoint.store: kafka`, the default for such a pipeline) and this window reads through a repartition topic `<application id>-<step>-repartition`, which it does unless its input is already partitioned by its group keys (see the kafka source\'s `partitioned_by`); `sluice graph` shows which windows do.';

const partitionBySchema: JsonSchema = {
  type: 'array',
  minItems: 1,
  description: `JSONata expressions whose values, together, key the repartition topic this window reads through: records with equal values go to the same partition, so to the same task. Default: the group keys. Every record of one group must give the same values, so use group keys or something computed from them only; fewer keys (\`[employee_id]\` for \`group_by: [employee_id, activity_type]\`) put all of an employee's groups in one task. Needs \`group_by\`. ${TASKS_ONLY}`,
  examples: [['employee_id'], ['department', 'day']],
  items: expression('A JSONata expression over the record value, such as a group key\'s field path.', ['employee_id', 'user.id', '$lowercase(country)']),
};

const partitionsSchema: JsonSchema = {
  type: 'integer',
  minimum: 1,
  description: `How many partitions the repartition topic this window reads through has, and so how many tasks run this window and what follows it. Default: as many as the stage before it has tasks (for the first repartition, the source topic's partition count), set when the topic is created at start. Needs \`group_by\`: a window without one has a single group per window, which one partition holds. ${TASKS_ONLY}`,
  examples: [6, 12],
};

/* ------------------------------------------------------------ parsing */

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function optionalString(obj: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new ConfigError('E_WINDOW_CONFIG', `\`${key}\` must be a string`, where);
  return v;
}

function stringMap(v: unknown, what: string, where: string): Record<string, string> {
  if (!isRecord(v)) throw new ConfigError('E_WINDOW_CONFIG', `\`${what}\` must be a map of name to JSONata expression`, where);
  const out: Record<string, string> = {};
  for (const [k, e] of Object.entries(v)) {
    if (typeof e !== 'string') throw new ConfigError('E_WINDOW_CONFIG', `\`${what}.${k}\` must be a JSONata expression (a string)`, where);
    out[k] = e;
  }
  return out;
}

/** Checks the shape of a step entry (as the schema does) and returns it typed. */
export function parseWindowStepConfig(config: unknown, where = 'window'): WindowStepConfig {
  if (!isRecord(config) || !isRecord(config.window)) throw new ConfigError('E_WINDOW_CONFIG', 'a window step needs a `window:` map', where);
  const w = config.window;
  const kinds = ['tumbling', 'hopping', 'session'].filter((k) => w[k] !== undefined);
  if (kinds.length !== 1) throw new ConfigError('E_WINDOW_CONFIG', `\`window\` needs exactly one of \`tumbling\`, \`hopping\` or \`session\`, got ${kinds.length ? kinds.join(', ') : 'none'}`, where);
  const settings: WindowSettings = {};
  const tumbling = optionalString(w, 'tumbling', where);
  if (tumbling !== undefined) settings.tumbling = tumbling;
  if (w.hopping !== undefined) {
    const h = w.hopping;
    if (!isRecord(h) || typeof h.size !== 'string' || typeof h.advance !== 'string') throw new ConfigError('E_WINDOW_CONFIG', '`hopping` needs `size` and `advance` durations', where);
    settings.hopping = { size: h.size, advance: h.advance };
  }
  if (w.session !== undefined) {
    const s = w.session;
    if (!isRecord(s) || typeof s.gap !== 'string') throw new ConfigError('E_WINDOW_CONFIG', '`session` needs a `gap` duration', where);
    settings.session = { gap: s.gap };
  }
  for (const key of ['time', 'lateness', 'idle', 'timezone', 'early'] as const) {
    const v = optionalString(w, key, where);
    if (v !== undefined) settings[key] = v;
  }
  if (w.max_rows !== undefined) {
    if (typeof w.max_rows !== 'number' || !Number.isInteger(w.max_rows) || w.max_rows < 1) {
      throw new ConfigError('E_WINDOW_CONFIG', `\`max_rows\` must be a whole number of at least 1, got \`${String(w.max_rows)}\``, where);
    }
    settings.max_rows = w.max_rows;
  }
  const emit = optionalString(w, 'emit', where);
  if (emit !== undefined) {
    if (emit !== 'final' && emit !== 'update') throw new ConfigError('E_WINDOW_CONFIG', `\`emit\` must be final or update, got \`${emit}\``, where);
    settings.emit = emit;
  }
  const parsed: WindowStepConfig = { window: settings, aggregate: stringMap(config.aggregate, 'aggregate', where) };
  const g = config.group_by;
  if (Array.isArray(g)) {
    parsed.group_by = g.map((e, i) => {
      if (typeof e !== 'string') throw new ConfigError('E_WINDOW_CONFIG', `\`group_by[${i}]\` must be a field path (a string)`, where);
      return e;
    });
  } else if (g !== undefined) parsed.group_by = stringMap(g, 'group_by', where);
  const p = config.partition_by;
  if (p !== undefined) {
    if (!Array.isArray(p) || p.length === 0) throw new ConfigError('E_WINDOW_CONFIG', '`partition_by` must be a non-empty list of JSONata expressions', where);
    parsed.partition_by = p.map((e, i) => {
      if (typeof e !== 'string' || e.trim() === '') throw new ConfigError('E_WINDOW_CONFIG', `\`partition_by[${i}]\` must be a JSONata expression (a non-empty string)`, where);
      return e;
    });
  }
  const n = config.partitions;
  if (n !== undefined) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ConfigError('E_WINDOW_CONFIG', `\`partitions\` must be a whole number of at least 1, got \`${String(n)}\``, where);
    parsed.partitions = n;
  }
  if (parsed.group_by === undefined) {
    // One group per window: all its records must meet in one task, so its repartition has one partition, keyed by nothing.
    for (const key of ['partition_by', 'partitions'] as const) {
      if (parsed[key] !== undefined) {
        throw new ConfigError('E_WINDOW_CONFIG', `\`${key}\` needs \`group_by\`: a window without one has a single group per window, which one partition of its repartition topic holds`, where);
      }
    }
  }
  return parsed;
}

function durationMs(text: string, key: string, where: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new ConfigError('E_WINDOW_CONFIG', `\`${key}\` must be a duration like 1h, got \`${text}\``, where);
  }
}

function positiveDuration(text: string, key: string, where: string): number {
  const ms = durationMs(text, key, where);
  if (ms <= 0) throw new ConfigError('E_WINDOW_CONFIG', `\`${key}\` must be longer than 0, got \`${text}\``, where);
  return ms;
}

/** The window shape a config asks for; whole-day tumbling sizes become calendar windows. */
export function windowShape(w: WindowSettings, where = 'window'): WindowShape {
  const timeZone = w.timezone ?? 'UTC';
  if (!isTimeZone(timeZone)) throw new ConfigError('E_WINDOW_CONFIG', `\`timezone\` \`${timeZone}\` is not an IANA time zone like Europe/Berlin`, where);
  if (w.tumbling !== undefined) {
    const size = positiveDuration(w.tumbling, 'tumbling', where);
    return isCalendarDuration(w.tumbling) ? { kind: 'calendar', days: size / 86_400_000, timeZone } : { kind: 'tumbling', size };
  }
  if (w.hopping !== undefined) {
    return { kind: 'hopping', size: positiveDuration(w.hopping.size, 'hopping.size', where), advance: positiveDuration(w.hopping.advance, 'hopping.advance', where) };
  }
  if (w.session !== undefined) return { kind: 'session', gap: positiveDuration(w.session.gap, 'session.gap', where) };
  throw new ConfigError('E_WINDOW_CONFIG', '`window` needs one of `tumbling`, `hopping` or `session`', where);
}

/** Group keys with their output names; list entries must be plain paths. */
export function groupKeySpecs(groupBy: WindowStepConfig['group_by'], where = 'window'): GroupKeySpec[] {
  if (groupBy === undefined) return [];
  if (Array.isArray(groupBy)) {
    return groupBy.map((source) => {
      const name = plainPathName(source);
      if (name === undefined) {
        throw new ConfigError(
          'E_WINDOW_GROUP_BY',
          `group_by entry \`${source}\` is not a plain field path; name a computed key in the map form, e.g. \`group_by: { my_key: ${source} }\``,
          where,
        );
      }
      return { name, expression: compileExpression(source) };
    });
  }
  return Object.entries(groupBy).map(([name, source]) => ({ name, expression: compileExpression(source) }));
}

function checkFieldNames(names: string[], where: string, early: boolean): void {
  const seen = new Set<string>();
  const reserved = early ? [...RESERVED_FIELDS, 'early'] : RESERVED_FIELDS;
  for (const n of names) {
    if (reserved.includes(n)) throw new ConfigError('E_WINDOW_CONFIG', `\`${n}\` is set by the window itself; name the group key or aggregate differently`, where);
    if (seen.has(n)) throw new ConfigError('E_WINDOW_CONFIG', `output field \`${n}\` is defined twice (group keys and aggregates share one record)`, where);
    seen.add(n);
  }
}

function shapeText(w: WindowSettings): string {
  if (w.tumbling !== undefined) return `tumbling ${w.tumbling}${isCalendarDuration(w.tumbling) ? ` calendar (${w.timezone ?? 'UTC'})` : ''}`;
  if (w.hopping !== undefined) return `hopping ${w.hopping.size} every ${w.hopping.advance}`;
  return `session gap ${w.session?.gap ?? '?'}`;
}

/** A window shape in the units a spec is written in, so `60m` and `1h` read and compare the same. */
function shapeIdentity(shape: WindowShape): Record<string, string | number> {
  switch (shape.kind) {
    case 'tumbling':
      return { kind: 'tumbling', size: formatDuration(shape.size) };
    case 'calendar':
      return { kind: 'calendar', days: shape.days, timezone: shape.timeZone };
    case 'hopping':
      return { kind: 'hopping', size: formatDuration(shape.size), advance: formatDuration(shape.advance) };
    case 'session':
      return { kind: 'session', gap: formatDuration(shape.gap) };
  }
}

/**
 * What a window's stored panes mean: which windows exist (shape), which window a record falls in
 * (time), which group it joins (group keys) and what is accumulated for it (aggregates). `lateness`,
 * `idle`, `emit` and `max_rows` are left out on purpose: they change when results are emitted, not what a pane
 * holds. Expressions are compared by their trimmed source, so a block scalar's newline is no change.
 */
export function windowStateIdentity(config: unknown, where = 'window'): Record<string, unknown> {
  const c = parseWindowStepConfig(config, where);
  return {
    window: shapeIdentity(windowShape(c.window, where)),
    time: c.window.time?.trim() ?? null,
    group_by: groupKeySpecs(c.group_by, where).map((g) => ({ name: g.name, expression: g.expression.source.trim() })),
    aggregate: Object.entries(c.aggregate).map(([name, source]) => ({ name, expression: source.trim() })),
  };
}

export const windowStep: StepDef<WindowStepConfig> = {
  family: 'step',
  name: 'window',
  summary: 'Aggregates records per group over event-time windows (tumbling, hopping, session, calendar days in a time zone).',
  description: [
    'Output records: value `{<group keys>, window_start, window_end, <aggregates in spec order>}` with times as ISO 8601 UTC,',
    'key `{<group keys>, window_start}`, event time `window_end - 1ms`, `$meta` `{window_start, window_end}`.',
    'The watermark is, per input partition, the highest event time minus `lateness`; the step uses the minimum over partitions,',
    `ignoring those idle for \`idle\` (default ${DEFAULT_IDLE}). A partition that holds the watermark back for over a minute while another is ahead`,
    'is logged as a warning (once per hold) and counted in `sluice_watermark_holds_total`; `sluice_watermark_held_seconds` says for how long it has been held.',
    'A record whose every window has closed is late: counted in `sluice_records_late_total`',
    'and sent to the port `late` (read it as `<step>.late`). At the end of a bounded input every window flushes.',
  ].join(' '),
  schema: object(
    'A window aggregation step.',
    { window: windowSchema, group_by: groupBySchema, aggregate: aggregateSchema, partition_by: partitionBySchema, partitions: partitionsSchema },
    ['window', 'aggregate'],
    { dependentRequired: { partition_by: ['group_by'], partitions: ['group_by'] } },
  ),
  ports: [LATE_PORT],

  describe(config) {
    const w = config.window;
    const groups = config.group_by === undefined ? 'all records' : Array.isArray(config.group_by) ? config.group_by.join(', ') : Object.keys(config.group_by).join(', ');
    const time = w.time ? `\`${w.time}\`` : 'record time';
    const early = w.early === undefined ? '' : `, early results at \`${w.early}\``;
    return `${shapeText(w)} windows on ${time} (lateness ${w.lateness ?? '0s'}, idle ${w.idle ?? DEFAULT_IDLE}, emit ${w.emit ?? 'final'}${early}) by ${groups} -> ${Object.keys(config.aggregate).join(', ')}`;
  },

  create(config, ctx) {
    const where = `steps.${ctx.name}`;
    const c = parseWindowStepConfig(config, where);
    const w = c.window;
    const groupBy = groupKeySpecs(c.group_by, where);
    const aggregates = Object.entries(c.aggregate).map(([name, source]) => planAggregate(name, source));
    checkFieldNames([...groupBy.map((g) => g.name), ...aggregates.map((a) => a.name)], where, w.early !== undefined);
    if (w.early !== undefined && (w.emit ?? 'final') !== 'final') throw new ConfigError('E_WINDOW_CONFIG', '`early` results come before a final one: use it with `emit: final` (update mode already emits every change)', where);
    const early = w.early === undefined ? undefined : parseSchedule(w.early, w.timezone ?? 'UTC');
    ctx.metrics.define(...WINDOW_METRICS);
    return new WindowAggregate({
      node: ctx.name,
      shape: windowShape(w, where),
      time: w.time === undefined ? undefined : compileExpression(w.time),
      lateness: w.lateness === undefined ? 0 : durationMs(w.lateness, 'lateness', where),
      idle: durationMs(w.idle ?? DEFAULT_IDLE, 'idle', where),
      emit: w.emit ?? 'final',
      groupBy,
      aggregates,
      maxRows: w.max_rows ?? DEFAULT_MAX_ROWS,
      clock: ctx.clock,
      metrics: ctx.metrics,
      logger: ctx.logger,
      checkpointed: ctx.checkpoints !== undefined,
      ...(early ? { early } : {}),
    });
  },

  stateIdentity: (config) => windowStateIdentity(config),
};
