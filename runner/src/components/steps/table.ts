/**
 * `table`: declares a table fed by any input. Each record is a change of one row: it leaves keyed
 * by the row's primary key, with the row as its value, or null when the change deletes the row
 * (Kafka Streams' KTable semantics: upsert by key, null = delete), at the time from which the new
 * version holds. A `join` step that names the table keeps its versions in its durable state; any
 * sink may read it too (a compacted topic of the table, say).
 */
import type { StepDef, StepOutput } from '../../engine/component.ts';
import { RecordError } from '../../engine/errors.ts';
import { EvalFailure, compileExpression, evaluateRecords, isTruthy, type Expression } from '../../engine/expression.ts';
import type { Batch, StreamRecord } from '../../engine/record.ts';
import { expression, object } from '../../engine/schema.ts';
import { toEpochMillis } from '../../engine/time.ts';

export interface TableSettings {
  key: string;
  delete?: string;
  time?: string;
}

export interface TableStepConfig {
  table: TableSettings;
}

/** Debezium and postgres-cdc: `op` d is a delete, r a snapshot read. */
export const DEFAULT_DELETE = '$meta.op = "d"';
const schema = object(
  'A table step.',
  {
    table: object(
      'The table a change stream stands for: how to read a change.',
      {
        key: expression('JSONata giving the primary key of the changed row, over the record value (for a delete, Debezium gives the before image: its key columns are there). `$key` is the record key.', [
          'id',
          'employee_id',
          '$key.id',
        ]),
        delete: expression(
          `JSONata predicate: the change deletes the row. Default \`${DEFAULT_DELETE}\` (Debezium and postgres-cdc). A record with a null value (a Kafka tombstone) always deletes.`,
          ['$meta.op = "d"', 'deleted = true'],
        ),
        time: expression(
          'JSONata giving when the new version starts to hold (ISO 8601 or epoch ms). Default: the record\'s event time (Debezium: the commit time), except a snapshot read (`$meta.op = "r"`), which holds from the start of time, so every record joined before the snapshot finds the row.',
          ['updated_at', '$meta.ts_ms'],
        ),
      },
      ['key'],
      { examples: [{ key: 'id' }, { key: 'id', time: 'updated_at', delete: 'deleted = true' }] },
    ),
  },
  ['table'],
);

function changeOf(
  rec: StreamRecord,
  key: unknown,
  isDelete: unknown,
  time: unknown,
  node: string,
  out: StepOutput,
): StreamRecord | undefined {
  const where = `steps.${node}`;
  for (const [what, v] of [
    ['key', key],
    ['delete', isDelete],
    ['time', time],
  ] as const) {
    if (v instanceof EvalFailure) {
      out.fail(rec, new RecordError('E_EXPR_EVAL', `table \`${node}\`: \`${what}\` failed: ${v.error.message}`, where, { cause: v.error }));
      return undefined;
    }
  }
  if (key === undefined || key === null) {
    // A tombstone after a Debezium delete carries no row: the delete before it did the work.
    if (rec.value === null || rec.value === undefined) out.drop(rec, 'tombstone without key');
    else out.fail(rec, new RecordError('E_TABLE_KEY', `table \`${node}\`: the change has no key (\`key\` gave nothing)`, where));
    return undefined;
  }
  let at = rec.time;
  if (time !== undefined) {
    const ms = toEpochMillis(time);
    if (ms === undefined) {
      out.fail(rec, new RecordError('E_TABLE_TIME', `table \`${node}\`: \`time\` gave no timestamp`, where));
      return undefined;
    }
    at = ms;
  }
  const deleted = rec.value === null || rec.value === undefined || isTruthy(isDelete);
  return { ...rec, key, value: deleted ? null : rec.value, time: at };
}

export const tableStep: StepDef<TableStepConfig> = {
  family: 'step',
  name: 'table',
  summary: 'Declares a table fed by a change stream: each record upserts or deletes one row by its primary key; joins look rows up in it.',
  description: [
    'Output: one record per change, keyed by `key`, whose value is the row, or null for a delete (a tombstone), at the time',
    'from which the version holds. A `join` step names the table in `join.table` and keeps its versions in its own durable',
    'state (restored after a restart, bounded by the watermark). A change whose `key` gives nothing goes to `<step>.errors`;',
    'a keyless tombstone is dropped. Read `docs/joins.md` for why a table is a step and what a join waits for.',
  ].join(' '),
  schema,
  describe: (config) => `table keyed by ${config.table.key.trim()}${config.table.time ? `, versions from ${config.table.time.trim()}` : ''}`,
  create(config, ctx) {
    const node = ctx.name;
    const key: Expression = compileExpression(config.table.key);
    const isDelete: Expression = compileExpression(config.table.delete ?? DEFAULT_DELETE);
    const time: Expression | undefined = config.table.time === undefined ? undefined : compileExpression(config.table.time);
    // A snapshot read says what a row is, not when it became so: it holds from the start of time (as
    // Flink CDC stamps snapshot rows with 0), else an activity snapshotted a moment before its
    // employee would find no row. Any other change holds from its own event time.
    const snapshotRead = (rec: StreamRecord) => rec.meta.op === 'r';
    const route = (records: StreamRecord[], keys: unknown[], deletes: unknown[], times: unknown[] | undefined, out: StepOutput) => {
      const changes: StreamRecord[] = [];
      for (let i = 0; i < records.length; i++) {
        const rec = records[i]!;
        const t = times ? times[i] : snapshotRead(rec) ? 0 : undefined;
        const change = changeOf(rec, keys[i], deletes[i], t, node, out);
        if (change) changes.push(change);
      }
      out.emit(changes);
    };
    return {
      process(batch: Batch, out: StepOutput): void | Promise<void> {
        const keys = evaluateRecords(key, batch.records);
        const deletes = evaluateRecords(isDelete, batch.records);
        const times = time ? evaluateRecords(time, batch.records) : undefined;
        if (keys instanceof Promise || deletes instanceof Promise || times instanceof Promise) {
          return Promise.all([keys, deletes, times]).then(([k, d, t]) => route(batch.records, k, d, t, out));
        }
        route(batch.records, keys, deletes, times, out);
      },
    };
  },
};
