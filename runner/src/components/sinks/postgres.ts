/**
 * `postgres` sink: writes records as rows of a table, one transaction per batch, with INSERT or an
 * upsert on a key (idempotent under re-delivery: the same window result overwrites its row).
 * Identifiers are quoted, values are parameters. It creates nothing unless `create_table: true`.
 *
 * A row the database refuses for what it holds (a value its column's type or a constraint refuses,
 * a field with no column) is no outage: the batch is written again row by row, each behind a
 * SAVEPOINT, and `write` names the refused rows, which go to `<sink>.errors`.
 *
 * Under `delivery: exactly-once` it writes no rows through a connection of its own: its batches go
 * into the `postgres` state store's open transaction (io/postgres/state-store.ts), which the next
 * checkpoint commits together with the state and the source positions. A failed statement there
 * loses the whole transaction, so rows with a field the table has no column for are refused before
 * writing (the columns read from the catalog); a value the database refuses still fails the run.
 */
import pg from 'pg';
import { PrepareFailure, type ComponentContext, type OutboundMessage, type Prepared, type RefusedMessage, type Sink, type SinkDef, type WriteResult } from '../../engine/component.ts';
import { ConfigError, ConnectionError, RecordError, SluiceError, errorMessage } from '../../engine/errors.ts';
import { EvalFailure, compileExpression, evaluateRecords, type Expression } from '../../engine/expression.ts';
import type { Logger } from '../../engine/logger.ts';
import type { StreamRecord } from '../../engine/record.ts';
import { expression, object } from '../../engine/schema.ts';
import { parseTableName, qualifiedName } from '../../io/postgres/catalog.ts';
import type { PgConnectionConfig } from '../../io/postgres/connection.ts';
import { describeConnection, pgConnectionSchemaProperties, qualifiedIdent, sqlState, toClientConfig } from '../../io/postgres/connection.ts';
import { POSTGRES_TRANSACTION, type PostgresCheckpointTransaction } from '../../io/postgres/state-store.ts';
import type { SqlRow, Statement } from '../../io/postgres/table-writer.ts';
import { columnsOf, createTableStatement, insertStatements, lastPerKey } from '../../io/postgres/table-writer.ts';
import { SINK_RETRIES } from '../../engine/runtime-metrics.ts';

const ROWS_REFUSED = 'sluice_postgres_rows_refused_total';

export interface PostgresSinkConfig extends PgConnectionConfig {
  table: string;
  mode?: 'insert' | 'upsert';
  key?: string[];
  columns?: Record<string, string>;
  create_table?: boolean;
  max_retries?: number;
}

const COLUMN = '^[A-Za-z_][A-Za-z0-9_$]*$';

const schema = object(
  'Write records as rows of a PostgreSQL table: INSERT, or upsert on a key.',
  {
    ...pgConnectionSchemaProperties(),
    table: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_$]*(\\.[A-Za-z_][A-Za-z0-9_$]*)?$',
      description: 'Target table, `schema.table` (schema defaults to public).',
      examples: ['public.employee_activity_summaries'],
    },
    mode: {
      type: 'string',
      enum: ['insert', 'upsert'],
      default: 'insert',
      description: '`insert` adds a row per record; `upsert` inserts or, on a conflict over `key`, updates the other columns (re-delivered records then leave one row).',
      examples: ['upsert'],
    },
    key: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: COLUMN },
      description: 'Columns of the primary key or a unique constraint; required for `upsert`. Within a batch the last record per key wins.',
      examples: [['employee_id', 'activity_type', 'window_start']],
    },
    columns: {
      type: 'object',
      description: 'Column name -> JSONata expression over the record value (with $meta, $key). Default: every field of the value, as a column of the same name.',
      propertyNames: { pattern: COLUMN },
      additionalProperties: expression('The column value.', ['employee_id', '$meta.window_start']),
      examples: [{ employee_id: 'employee_id', activity_type: 'activity_type', window_start: 'window_start', activity_count: 'activity_count' }],
    },
    create_table: {
      type: 'boolean',
      default: false,
      description: 'Create the table if it is missing, with column types guessed from the first batch (numbers bigint/double precision, ISO times timestamptz, objects jsonb, else text) and `key` as primary key.',
      examples: [false],
    },
    max_retries: {
      type: 'integer',
      minimum: 0,
      maximum: 100,
      default: 8,
      description: 'Attempts after a transient failure (lost connection, serialization failure, deadlock) before the run fails; backoff doubles from 200 ms up to 5 s.',
      examples: [8],
    },
  },
  ['host', 'database', 'user', 'table'],
  {
    examples: [
      {
        host: '${PGHOST:-127.0.0.1}',
        database: 'streaming_db',
        user: 'postgres',
        table: 'public.employee_activity_summaries',
        mode: 'upsert',
        key: ['employee_id', 'activity_type', 'window_start'],
      },
    ],
  },
);

/** SQLSTATEs worth retrying: connection loss, serialization failures, deadlocks, shutdown. */
export function isTransient(err: unknown): boolean {
  const state = sqlState(err);
  if (state === undefined) return true; // socket-level failure
  return state.startsWith('08') || state === '40001' || state === '40P01' || state.startsWith('57P') || state === '53300';
}

/**
 * SQLSTATEs about what one row holds, not about the table or the connection: class 22 (a value its
 * column's type refuses), class 23 (a constraint the row breaks), 42703 (a field with no column),
 * 42804 (a value of the wrong type). Such a row is refused; the rest of its batch is written.
 */
export function isRowRefusal(err: unknown): boolean {
  const state = sqlState(err);
  if (state === undefined) return false;
  return state.startsWith('22') || state.startsWith('23') || state === '42703' || state === '42804';
}

/**
 * PostgreSQL's reason for refusing a row, as the record on `<sink>.errors` carries it. Class 22
 * messages quote the refused input (`invalid input syntax for type integer: "abc"`): a column
 * value, personal data of any size, so quoted text is left out; other classes quote identifiers.
 */
export function refusalMessage(err: unknown): string {
  const message = errorMessage(err);
  const state = sqlState(err);
  const text = state?.startsWith('22') ? message.replace(/"(?:[^"]|"")*"/g, '"…"') : message;
  return state ? `${text} (SQLSTATE ${state})` : text;
}

function plainObject(v: unknown): v is SqlRow {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Reads a table's columns from the catalog: undefined when the table is not there (yet). */
export type ColumnReader = () => Promise<Set<string> | undefined>;

export class PostgresSink implements Sink {
  private client: pg.Client | undefined;
  private broken = false;
  /** Under exactly-once: the checkpoint's open transaction, which batches are written into. */
  private transaction: PostgresCheckpointTransaction | undefined;
  private readonly table;
  private readonly columns: [string, Expression][] | undefined;
  private readonly where: string;
  private readonly name: string;
  private readonly log: Logger;
  private tableReady: boolean;
  /** The table's columns as the catalog last gave them, and when (clock ms); for rows with fields the table lacks. */
  private known: { columns: Set<string>; at: number } | undefined;

  constructor(
    private readonly cfg: PostgresSinkConfig,
    private readonly ctx: ComponentContext,
    /** Exactly-once only: how the table's columns are read; default a connection of its own (tests pass a fake). */
    private readonly readColumns: ColumnReader = async () => this.tableColumns(await this.connection()),
  ) {
    this.name = ctx.name;
    this.log = ctx.logger;
    ctx.metrics.define({ name: ROWS_REFUSED, type: 'counter', help: 'Rows the database refused for what they hold (sent to the errors port).', labels: ['node'] });
    this.where = `sinks.${ctx.name}`;
    this.table = parseTableName(cfg.table);
    if ((cfg.mode ?? 'insert') === 'upsert' && !cfg.key?.length) {
      throw new ConfigError('E_PG_SINK_KEY', '`mode: upsert` needs `key`: the columns of the primary key or a unique constraint', this.where);
    }
    this.columns = cfg.columns ? Object.entries(cfg.columns).map(([name, src]) => [name, compileExpression(src)]) : undefined;
    if (this.columns && cfg.key) {
      const missing = cfg.key.filter((k) => !this.columns!.some(([c]) => c === k));
      if (missing.length) throw new ConfigError('E_PG_SINK_KEY', `key column(s) ${missing.join(', ')} are not in \`columns\``, this.where);
    }
    this.tableReady = !cfg.create_table;
  }

  /** Under exactly-once its rows join the checkpoint's transaction. */
  get writesInCheckpoint(): boolean {
    return this.transaction !== undefined;
  }

  async open(): Promise<void> {
    if (this.ctx.checkpoints?.delivery === 'exactly-once') {
      const tx = this.ctx.checkpoints.shared.get(POSTGRES_TRANSACTION);
      if (!tx) {
        throw new ConfigError('E_DELIVERY', 'delivery: exactly-once, but no PostgreSQL checkpoint transaction is set up (checkpoint.store must be postgres)', this.where);
      }
      const mine = describeConnection(this.cfg);
      if (tx.target !== mine) {
        throw new ConfigError(
          'E_DELIVERY',
          `delivery: exactly-once needs this sink on the database that keeps the state (${tx.target}), not ${mine}: one transaction cannot span two databases`,
          this.where,
        );
      }
      this.transaction = tx;
      return;
    }
    await this.connection();
  }

  /**
   * Records -> rows. Pure: the prepared message's value is the row, its key the key columns. A
   * record whose column expression fails, or whose value is not an object when no `columns` are
   * given, gets a PrepareFailure (the engine drops it; the rest of the batch is written).
   */
  prepare(records: readonly StreamRecord[]): Prepared[] | Promise<Prepared[]> {
    const cols = this.columns;
    if (!cols) return records.map((rec) => (plainObject(rec.value) ? this.message(rec.value) : new PrepareFailure(this.notARow(rec))));
    const evaluated = cols.map(([, e]) => evaluateRecords(e, records));
    const build = (results: unknown[][]): Prepared[] =>
      records.map((rec, i) => {
        const row: SqlRow = {};
        for (let c = 0; c < cols.length; c++) {
          const name = cols[c]![0];
          const v = results[c]![i];
          if (v instanceof EvalFailure) {
            return new PrepareFailure(
              new RecordError('E_SINK_EXPR', `column \`${name}\` failed for the record at ${rec.position.partition}@${rec.position.offset}: ${v.error.message}`, this.where, {
                cause: v.error,
              }),
            );
          }
          row[name] = v === undefined ? null : v;
        }
        return this.message(row);
      });
    return evaluated.some((e) => e instanceof Promise)
      ? Promise.all(evaluated).then(build)
      : build(evaluated as unknown[][]);
  }

  private notARow(rec: StreamRecord): RecordError {
    return new RecordError('E_PG_SINK_ROW', `the record at ${rec.position.partition}@${rec.position.offset} is not an object: give \`columns\` to map it to a row`, this.where);
  }

  private message(row: SqlRow): OutboundMessage {
    const key = this.cfg.key ? Object.fromEntries(this.cfg.key.map((k) => [k, row[k] ?? null])) : null;
    return { key, value: row };
  }

  async write(messages: OutboundMessage[]): Promise<WriteResult | void> {
    if (messages.length === 0) return;
    const rows = messages.map((m) => m.value as SqlRow);
    if (this.transaction) return this.writeInTransaction(this.transaction, rows);
    return this.withRetries(async (client) => {
      try {
        await this.writeBatch(client, rows);
        return;
      } catch (err) {
        if (!isRowRefusal(err)) throw err;
        this.log.warn({ sink: this.name, sqlstate: sqlState(err) }, 'postgres refused a row; writing the batch row by row to find which');
      }
      return this.writeRowByRow(client, rows);
    });
  }

  /** Runs `attempt` on the connection, retrying transient failures with backoff; anything else fails the run. */
  private async withRetries<T>(attempt: (client: pg.Client) => Promise<T>): Promise<T> {
    const maxRetries = this.cfg.max_retries ?? 8;
    for (let n = 0; ; n++) {
      try {
        return await attempt(await this.connection());
      } catch (err) {
        if (!isTransient(err)) throw this.permanent(err);
        if (n >= maxRetries) {
          throw new ConnectionError('E_PG_SINK', `writing to ${qualifiedName(this.table)} failed ${n + 1} times: ${errorMessage(err)}`, this.where, { cause: err });
        }
        this.broken = true;
        this.ctx.metrics.inc(SINK_RETRIES, { node: this.name });
        const delay = Math.min(200 * 2 ** n, 5000);
        this.log.warn({ sink: this.name, err: errorMessage(err), attempt: n, delay }, 'postgres write failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** The batch's columns: the mapped ones, or every field of the rows. */
  private columnsFor(rows: readonly SqlRow[]): string[] {
    return this.columns ? this.columns.map(([c]) => c) : columnsOf(rows);
  }

  /** The whole batch in one transaction (upserts: the last row per key); throws on any error, leaving nothing. */
  private async writeBatch(client: pg.Client, rows: readonly SqlRow[]): Promise<void> {
    const upsert = (this.cfg.mode ?? 'insert') === 'upsert';
    const batch = upsert ? lastPerKey(rows, this.cfg.key!) : rows;
    const columns = this.columnsFor(batch);
    if (!this.tableReady) {
      await client.query(createTableStatement(this.table, columns, batch, this.cfg.key));
      this.tableReady = true;
    }
    await client.query('BEGIN');
    try {
      for (const s of insertStatements(this.table, columns, batch, upsert ? this.cfg.key : undefined)) await client.query(s.text, s.values);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  /**
   * After a batch was refused: rows with a field the table has no column for are refused without a
   * try (that one column in the statement would fail every row); the others are inserted one by one
   * in one transaction, each behind a SAVEPOINT, so a refused row is rolled back alone. Rows keep
   * the batch's columns, so a missing field is NULL as in the batch statement; an upsert writes
   * every row in order (one row per statement, so the last per key still wins).
   */
  private async writeRowByRow(client: pg.Client, rows: readonly SqlRow[]): Promise<WriteResult> {
    const known = await this.tableColumns(client);
    const refused: RefusedMessage[] = [];
    const candidates: number[] = [];
    rows.forEach((row, index) => {
      const error = known ? this.unknownColumns(row, known) : undefined;
      if (error) refused.push({ index, error });
      else candidates.push(index);
    });
    const columns = this.columnsFor(candidates.map((i) => rows[i]!));
    const upsertKey = (this.cfg.mode ?? 'insert') === 'upsert' ? this.cfg.key : undefined;
    await client.query('BEGIN');
    try {
      for (const index of candidates) {
        const [statement] = insertStatements(this.table, columns, [rows[index]!], upsertKey);
        if (!statement) continue;
        await client.query('SAVEPOINT sluice_row');
        try {
          await client.query(statement.text, statement.values);
          await client.query('RELEASE SAVEPOINT sluice_row');
        } catch (err) {
          if (!isRowRefusal(err)) throw err;
          await client.query('ROLLBACK TO SAVEPOINT sluice_row');
          refused.push({ index, error: this.refusal(err) });
        }
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
    refused.sort((a, b) => a.index - b.index);
    this.ctx.metrics.inc(ROWS_REFUSED, { node: this.name }, refused.length);
    return { refused };
  }

  /**
   * Exactly-once: the batch joins the checkpoint's transaction. Nothing is retried: PostgreSQL
   * aborts the whole transaction on an error, so the rows of the epoch are gone and the run must
   * resume from the last checkpoint. The transaction offers no savepoints, so only what the catalog
   * tells beforehand can be refused: rows with a field the table has no column for.
   */
  private async writeInTransaction(tx: PostgresCheckpointTransaction, all: SqlRow[]): Promise<WriteResult | void> {
    const refused: RefusedMessage[] = [];
    let rows = all;
    if (this.tableReady) {
      const known = await this.knownColumns(all);
      if (known) {
        rows = [];
        all.forEach((row, index) => {
          const error = this.unknownColumns(row, known);
          if (error) refused.push({ index, error });
          else rows.push(row);
        });
      }
    }
    if (rows.length > 0) {
      const upsert = (this.cfg.mode ?? 'insert') === 'upsert';
      const batch = upsert ? lastPerKey(rows, this.cfg.key!) : rows;
      const columns = this.columnsFor(batch);
      const statements = insertStatements(this.table, columns, batch, upsert ? this.cfg.key : undefined);
      const create: Statement[] = this.tableReady ? [] : [{ text: createTableStatement(this.table, columns, batch, this.cfg.key), values: [] }];
      try {
        await tx.execute([...create, ...statements]);
      } catch (err) {
        if (err instanceof SluiceError) throw err;
        if (!isTransient(err)) throw this.permanent(err);
        throw new ConnectionError(
          'E_PG_SINK',
          `writing to ${qualifiedName(this.table)} in the checkpoint transaction failed: ${errorMessage(err)}; nothing since the last checkpoint is committed, and a restart resumes from it`,
          this.where,
          { cause: err },
        );
      }
      // A table created in the open transaction is invisible to the catalog connection until it commits.
      if (!this.tableReady) this.known = { columns: new Set(columns), at: this.ctx.clock.now() };
      this.tableReady = true;
    }
    if (refused.length === 0) return;
    this.ctx.metrics.inc(ROWS_REFUSED, { node: this.name }, refused.length);
    return { refused };
  }

  /**
   * Exactly-once: the table's columns, read again (on a connection of its own, outside the
   * transaction) when a row has a field the cached list lacks and the list is older than 10 s: a
   * column added by ALTER TABLE is seen, and a field the table never has costs no lookup per batch.
   */
  private async knownColumns(rows: readonly SqlRow[]): Promise<Set<string> | undefined> {
    const now = this.ctx.clock.now();
    const cached = this.known;
    const fresh = cached && now - cached.at < 10_000;
    if (cached && (fresh || rows.every((row) => this.unknownColumns(row, cached.columns) === undefined))) return cached.columns;
    let columns: Set<string> | undefined;
    try {
      columns = await this.readColumns();
    } catch (err) {
      this.broken = true;
      throw new ConnectionError('E_PG_SINK', `cannot read the columns of ${qualifiedName(this.table)}: ${errorMessage(err)}`, this.where, { cause: err });
    }
    if (columns) this.known = { columns, at: now };
    return this.known?.columns;
  }

  /** The table's columns from the catalog; undefined when the table is not there (yet). */
  private async tableColumns(client: pg.Client): Promise<Set<string> | undefined> {
    try {
      const res = await client.query<{ attname: string }>('SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped', [qualifiedIdent(this.table)]);
      return new Set(res.rows.map((r) => r.attname));
    } catch (err) {
      if (sqlState(err) === '42P01') return undefined;
      throw err;
    }
  }

  /** The refusal of a row naming the columns it would need that the table lacks; undefined when it has them all. */
  private unknownColumns(row: SqlRow, known: ReadonlySet<string>): RecordError | undefined {
    const needed = this.columns ? this.columns.map(([c]) => c) : Object.keys(row);
    const missing = needed.filter((c) => !known.has(c));
    if (missing.length === 0) return undefined;
    return new RecordError(
      'E_PG_SINK_COLUMN',
      `${qualifiedName(this.table)} has no column ${missing.map((c) => `\`${c}\``).join(', ')} (add it, or map fields with \`columns\`)`,
      this.where,
    );
  }

  /** A row PostgreSQL refused, as its record on `<sink>.errors` says it. */
  private refusal(err: unknown): RecordError {
    const code = sqlState(err) === '42703' ? 'E_PG_SINK_COLUMN' : 'E_PG_SINK_REFUSED';
    return new RecordError(code, `${qualifiedName(this.table)} refused the row: ${refusalMessage(err)}`, this.where, { cause: err });
  }

  private permanent(err: unknown): Error {
    const state = sqlState(err);
    const t = qualifiedName(this.table);
    if (state === '42P01') {
      return new ConnectionError('E_PG_SINK_TABLE', `table ${t} does not exist in ${this.cfg.database}: create it, or set \`create_table: true\``, this.where, { cause: err });
    }
    if (state === '42P10') {
      return new ConnectionError('E_PG_SINK_KEY', `${t} has no primary key or unique constraint on (${this.cfg.key?.join(', ')}), which \`mode: upsert\` needs`, this.where, { cause: err });
    }
    if (state === '42703') return new ConnectionError('E_PG_SINK_COLUMN', `${t}: ${errorMessage(err)} (map fields with \`columns\`)`, this.where, { cause: err });
    return new ConnectionError('E_PG_SINK', `writing to ${t} failed: ${errorMessage(err)}`, this.where, { cause: err });
  }

  private async connection(): Promise<pg.Client> {
    if (this.client && !this.broken) return this.client;
    await this.client?.end().catch(() => {});
    this.client = undefined;
    const client = new pg.Client(toClientConfig(this.cfg, { applicationName: `sluice-${this.name}` }));
    client.on('error', (err: Error) => {
      this.broken = true;
      this.log.warn({ sink: this.name, err: err.message }, 'postgres connection lost');
    });
    try {
      await client.connect();
    } catch (err) {
      throw Object.assign(new Error(`cannot connect to ${describeConnection(this.cfg)}: ${errorMessage(err)}`), { cause: err });
    }
    this.client = client;
    this.broken = false;
    return client;
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => {});
    this.client = undefined;
  }
}

export const postgresSink: SinkDef<PostgresSinkConfig> = {
  family: 'sink',
  name: 'postgres',
  summary: 'Write records as rows of a PostgreSQL table, one transaction per batch, by INSERT or upsert on a key.',
  description:
    [
      'Each batch is one transaction of multi-row INSERT statements with quoted identifiers and parameterised values.',
      '`mode: upsert` adds ON CONFLICT (key) DO UPDATE, so re-delivered records (after a crash, or window results',
      're-emitted) overwrite their row instead of adding one. Objects and arrays are written as JSON. Transient failures',
      'are retried with backoff; a missing table or key constraint fails the run with what to do. A row the database',
      'refuses for what it holds (a value its column type or a constraint refuses, a field the table has no column for) goes',
      'to `<sink>.errors` with the reason, PostgreSQL\'s message without the refused value: the batch is then written again',
      'row by row, each behind a SAVEPOINT, and the other rows are written. So does a record whose `columns` expression',
      'fails, or whose value is not an object when no `columns` are given. Nothing is created unless `create_table: true`.',
    ].join(' ') +
    '\n\n' +
    [
      'Under `delivery: exactly-once` (with `checkpoint.store: postgres`, the default then) the sink writes no row through a connection of its',
      "own (it reads only the table's columns on one): its batches join the state store's open transaction, which each checkpoint commits together with the window",
      'state and the source positions (tables `sluice_checkpoints` and `sluice_state`). After a crash nothing written since',
      'the last checkpoint is in the table and the restarted run writes it once, so plain `mode: insert` adds no duplicate',
      'row. Batches are then not retried: an error rolls the checkpoint back and fails the run, which resumes from the last',
      'checkpoint. The shared transaction has no savepoints, so only rows with a field the table has no column for (read',
      'from the catalog) go to `<sink>.errors`; a value the database refuses fails the run. Every postgres sink must then',
      "write to the same database as the store (the first postgres sink's), and",
      'the pipeline may have no kafka sink: a Kafka transaction and a PostgreSQL one cannot commit atomically together.',
    ].join(' '),
  schema,
  describe: (c) =>
    `${c.mode ?? 'insert'} into ${c.table} at ${describeConnection(c)}${c.key ? ` key (${c.key.join(', ')})` : ''}${c.create_table ? ' (create table)' : ''}`,
  create: (config, ctx) => new PostgresSink(config, ctx),
};
