/**
 * `join`: enriches each record of its input with the row a table has for its key: as the row was
 * at the record's event time (`mode: versioned`, the default) or as it is now (`latest`). The
 * table is a `table` step named in `join.table`, read as a second input. The operator itself is
 * engine/join/temporal-join.ts.
 */
import type { StepDef } from '../../engine/component.ts';
import { ConfigError } from '../../engine/errors.ts';
import { parseDuration } from '../../engine/duration.ts';
import { compileExpression } from '../../engine/expression.ts';
import { JOIN_LATE_PORT, JOIN_METRICS, TemporalJoin } from '../../engine/join/temporal-join.ts';
import { duration, expression, object } from '../../engine/schema.ts';

export interface JoinSettings {
  table: string;
  on: string;
  as?: string;
  type?: 'inner' | 'left';
  unmatched?: 'default' | 'errors';
  mode?: 'versioned' | 'latest';
  time?: string;
  lateness?: string;
  idle?: string;
  table_lag?: string;
}

export interface JoinStepConfig {
  join: JoinSettings;
}

/**
 * The default `idle`: how long a table partition that sends nothing still holds records back. A
 * table like `employees` changes rarely, so after each change records wait up to this long for the
 * table to say it is done; shorter than a window's minute, since every record waits, not a result.
 */
export const DEFAULT_JOIN_IDLE = '10s';

/**
 * The default `table_lag`. A connector writes a table's topic and the stream's independently: an
 * employee committed before an activity can reach Kafka some milliseconds after it (10 ms lost 2
 * in 150 new hires in a stress test with no margin). A second covers producer batching and
 * retries with room to spare, for at most that much more delay.
 */
export const DEFAULT_TABLE_LAG = '1s';

const NODE_NAME = '^[A-Za-z][A-Za-z0-9_-]*$';

const schema = object(
  'A join step.',
  {
    join: object(
      'Which table to look rows up in, and how.',
      {
        table: {
          type: 'string',
          pattern: NODE_NAME,
          description: 'The `table` step whose rows are looked up. It is read as a second input of this step: its changes never pass through.',
          examples: ['employees'],
        },
        on: expression('JSONata over the record value giving the key to look up, compared with the table\'s `key` (by value and type: `5` and `"5"` differ).', ['employee_id', '$string(user.id)']),
        as: {
          type: 'string',
          minLength: 1,
          description: 'Field of the output value that takes the row (null when a left join finds none). Default: the table\'s name.',
          examples: ['employee'],
        },
        type: {
          type: 'string',
          enum: ['inner', 'left'],
          default: 'inner',
          description: '`inner`: a record without a row is dropped (counted in `sluice_join_unmatched_total`). `left`: it goes on with `as` set to null.',
          examples: ['inner', 'left'],
        },
        unmatched: {
          type: 'string',
          enum: ['default', 'errors'],
          default: 'default',
          description: '`errors`: a record without a row goes to `<step>.errors` (`E_JOIN_UNMATCHED`, naming the key and time) instead of what `type` says.',
          examples: ['errors'],
        },
        mode: {
          type: 'string',
          enum: ['versioned', 'latest'],
          default: 'versioned',
          description:
            '`versioned`: the row as it was at the record\'s event time, waiting until the table is complete up to that time, so a replay gives the answers a live run gave. `latest`: the row as the join has it when the record arrives; no waiting, but the answer depends on which input was read first.',
          examples: ['versioned', 'latest'],
        },
        time: expression(
          'Event time of a record for the lookup (ISO 8601 or epoch ms). Default: the record\'s own event time (Debezium: the commit time), which is on the same clock as the table\'s versions.',
          ['activity_timestamp', '$meta.ts_ms'],
        ),
        lateness: duration(
          'How far behind the highest lookup time seen (per input partition) records may still arrive. Versions older than that are dropped; a record asking for a time before what was dropped goes to the port `late`. Default `0s`.',
          ['0s', '10m'],
        ),
        idle: {
          ...duration(
            `For table partitions whose source cannot say how far it has read (anything but \`kafka\`, which reports when it has read a partition to its end): one that sends nothing for this long (processing time) stops holding records back. Default \`${DEFAULT_JOIN_IDLE}\`. Longer: a table source that lags behind the stream still gets its changes in before the records they concern. See docs/joins.md.`,
            ['10s', '1m'],
          ),
          default: DEFAULT_JOIN_IDLE,
        },
        table_lag: {
          ...duration(
            `For table partitions whose source says when it has read them to their end (\`kafka\`): how much later than a stream record a table change committed before it may still reach the table's topic (the two topics are written independently). A record waits until the table was read to its end at least this long after the record arrived. Default \`${DEFAULT_TABLE_LAG}\`: shorter answers sooner, longer covers a connector that writes one topic late.`,
            ['1s', '5s'],
          ),
          default: DEFAULT_TABLE_LAG,
        },
      },
      ['table', 'on'],
      { examples: [{ table: 'employees', on: 'employee_id', as: 'employee', type: 'left' }] },
    ),
  },
  ['join'],
);

function ms(text: string | undefined, fallback: string, key: string, where: string): number {
  try {
    return parseDuration(text ?? fallback);
  } catch {
    throw new ConfigError('E_JOIN_CONFIG', `\`${key}\` must be a duration like 10s, got \`${text}\``, where);
  }
}

export const joinStep: StepDef<JoinStepConfig> = {
  family: 'step',
  name: 'join',
  summary: 'Enriches each record with the row a table has for its key, as it was at the record\'s event time (or as it is now).',
  description: [
    'Output: the record with its value extended by `as` (the row, or null). Under `mode: versioned` a record waits until every',
    'active partition of the table has passed its event time, so the row found is the one that held then; records leave in',
    'event-time order. A table change that arrives for a time already answered is counted in `sluice_join_late_table_changes_total`.',
    'A record asking for a time whose versions were already dropped goes to the port `late`. A record whose `on` or `time`',
    'fails, or whose value is not an object, goes to `<step>.errors`.',
  ].join(' '),
  schema,
  ports: [JOIN_LATE_PORT],
  describe(config) {
    const j = config.join;
    return `${j.type ?? 'inner'} join with table ${j.table} on ${j.on.trim()} as ${j.as ?? j.table} (${j.mode ?? 'versioned'}${j.mode === 'latest' ? '' : `, idle ${j.idle ?? DEFAULT_JOIN_IDLE}`})`;
  },
  sideInputs: (config) => [{ node: config.join.table, path: ['join', 'table'] }],
  create(config, ctx) {
    const where = `steps.${ctx.name}`;
    const j = config.join;
    ctx.metrics.define(...JOIN_METRICS);
    return new TemporalJoin({
      node: ctx.name,
      table: j.table,
      on: compileExpression(j.on),
      time: j.time === undefined ? undefined : compileExpression(j.time),
      as: j.as ?? j.table,
      type: j.type ?? 'inner',
      unmatched: j.unmatched ?? 'default',
      mode: j.mode ?? 'versioned',
      lateness: ms(j.lateness, '0s', 'lateness', where),
      idle: ms(j.idle, DEFAULT_JOIN_IDLE, 'idle', where),
      tableLag: ms(j.table_lag, DEFAULT_TABLE_LAG, 'table_lag', where),
      clock: ctx.clock,
      metrics: ctx.metrics,
      logger: ctx.logger,
      checkpointed: ctx.checkpoints !== undefined,
    });
  },
  stateIdentity: (config) => ({
    table: config.join.table,
    on: config.join.on.trim(),
    time: config.join.time?.trim() ?? null,
    mode: config.join.mode ?? 'versioned',
  }),
};
