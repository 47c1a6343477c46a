/**
 * `postgres-query`: runs one parameterised SQL query and emits its rows, read through a cursor in
 * pages of `batch_size` so a large result never sits in memory. Without `schedule` it runs once and
 * ends (bounded); with one it runs at every tick until stopped (unbounded).
 *
 * One execution is a `PostgresQuery.execute` call on a connection of its own, which the schedule
 * calls again per tick. It keeps no position: every run reads the whole result.
 */
import pg from 'pg';
import type { FieldDef, QueryConfig } from 'pg';
import { Ack } from '../../engine/ack.ts';
import type { ComponentContext, JsonSchema, Source, SourceDef, SourceOutput } from '../../engine/component.ts';
import { parseDuration } from '../../engine/duration.ts';
import { ConfigError, ConnectionError, RecordError, SluiceError, errorMessage } from '../../engine/errors.ts';
import type { ArrivalTimeSource } from '../../engine/event-time.ts';
import { integerLiteral, parseJson } from '../../engine/json.ts';
import type { Logger } from '../../engine/logger.ts';
import type { MetricDefinition } from '../../engine/metrics.ts';
import { toIsoUtc } from '../../engine/time.ts';
import { RefusedValue, type RawMessage } from '../../engine/record.ts';
import { parseSchedule, ScheduleError, startSchedule, type Schedule, type ScheduleHandle } from '../../engine/schedule.ts';
import { cron, duration, object, timeZone } from '../../engine/schema.ts';
import type { PgConnectionConfig } from '../../io/postgres/connection.ts';
import { SESSION_OPTIONS, describeConnection, pgConnectionSchemaProperties, sqlState, toClientConfig } from '../../io/postgres/connection.ts';
import { parseTimestampMicros, zonedTimestampText } from '../../io/postgres/debezium-types.ts';

export type QueryParam = string | number | boolean | null;

export interface PostgresQueryConfig extends PgConnectionConfig {
  query: string;
  params?: QueryParam[];
  batch_size?: number;
  key?: string[];
  /** A cron expression: run at each of its ticks instead of once. */
  schedule?: string;
  /** The schedule's time zone; default UTC. */
  timezone?: string;
  /** Longest any one statement of a run (the DECLARE, each FETCH) may take: a duration. */
  timeout?: string;
  /** With a schedule: run once at start too, before the first tick; default true. */
  run_at_start?: boolean;
}

const DEFAULT_BATCH_SIZE = 1000;
const CURSOR = 'sluice_query';
const DECLARE = `DECLARE ${CURSOR} NO SCROLL CURSOR FOR `;

/* ------------------------------------------------------------------ values */

/** A column's text, as PostgreSQL prints it under this source's session settings, made a JSON value. */
export type ColumnReader = (text: string) => unknown;

/** The part of a result column's description the readers need (pg's FieldDef has it). */
export interface ColumnType {
  name: string;
  dataTypeID: number;
  /** typmod: a timestamp's fractional digits; -1 when the type has none. */
  dataTypeModifier: number;
}

const MAX_SIGNIFICANT_DIGITS = 15;

/**
 * numeric: whole values like int8 (a number when exact, else a bigint written as plain digits);
 * fractions as a number when they have at most 15 significant digits (a double holds those
 * exactly); anything else (more digits, NaN, Infinity) as the exact decimal text.
 */
export function numericValue(text: string): number | bigint | string {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return text;
  const fraction = (m[3] ?? '').replace(/0+$/, '');
  if (fraction === '') return integerLiteral(`${m[1]}${m[2]}`);
  const digits = `${m[2]}${fraction}`.replace(/^0+/, '');
  const n = Number(text);
  // Far outside a double's normal range a few digits are not exact either.
  const magnitude = Math.abs(n);
  return digits.length <= MAX_SIGNIFICANT_DIGITS && magnitude > 1e-300 && magnitude < 1e300 ? n : text;
}

/** float4/float8: a number; NaN and ±Infinity, which JSON has no number for, as PostgreSQL's text. */
function floatValue(text: string): number | string {
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

function yearText(year: number): string {
  return year >= 0 && year <= 9999 ? String(year).padStart(4, '0') : (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(4, '0');
}

/** date: ISO 8601 `2025-01-06` (1 BC is year 0000, as in ISO's numbering); `infinity` as is. */
function dateValue(text: string): string {
  const m = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/.exec(text);
  if (!m || (!m[4] && m[1]!.length === 4)) return text;
  return `${yearText(m[4] ? 1 - Number(m[1]) : Number(m[1]))}-${m[2]}-${m[3]}`;
}

/**
 * timestamptz: ISO 8601 in UTC (`2025-01-06T09:05:12.345678Z`), with as many fraction digits as
 * the column's precision (6 by default), as postgres-cdc writes it. `zone: false` (timestamp
 * without time zone): the same wall clock without the `Z`, which sluice reads as UTC.
 */
function timestampValue(text: string, precision: number, zone: boolean): string {
  if (text === 'infinity' || text === '-infinity') return text;
  const iso = zonedTimestampText(parseTimestampMicros(text), precision);
  return zone ? iso : iso.slice(0, -1);
}

/** bytea (bytea_output=hex): base64, as postgres-cdc writes binary columns. */
function byteaValue(text: string): string {
  if (!text.startsWith('\\x')) throw new Error(`bytea is not in hex output form`);
  return Buffer.from(text.slice(2), 'hex').toString('base64');
}

const text: ColumnReader = (t) => t;

/** The reader of a scalar type; undefined: PostgreSQL's text form is the value. */
function scalarReader(oid: number, typeMod: number): ColumnReader | undefined {
  const precision = typeMod < 0 ? 6 : typeMod;
  switch (oid) {
    case 16: // bool
      return (t) => t === 't';
    case 21: // int2
    case 23: // int4
    case 26: // oid
      return Number;
    case 20: // int8
      return integerLiteral;
    case 700: // float4
    case 701: // float8
      return floatValue;
    case 1700:
      return numericValue;
    case 114: // json
    case 3802: // jsonb
      return parseJson;
    case 17:
      return byteaValue;
    case 1082:
      return dateValue;
    case 1114:
      return (t) => timestampValue(t, precision, false);
    case 1184:
      return (t) => timestampValue(t, precision, true);
    default:
      // text, varchar, uuid, time, timetz, interval (ISO 8601, see SESSION), inet, enums, ...
      return undefined;
  }
}

/** Array types of the built-in element types, array oid -> element oid. */
const ARRAY_ELEMENTS: ReadonlyMap<number, number> = new Map([
  [1000, 16], [1005, 21], [1007, 23], [1028, 26], [1016, 20], [1021, 700], [1022, 701], [1231, 1700],
  [199, 114], [3807, 3802], [1001, 17], [1182, 1082], [1115, 1114], [1185, 1184], [1187, 1186],
  [1009, 25], [1015, 1043], [1014, 1042], [1003, 19], [2951, 2950], [1183, 1083], [1270, 1266],
  [1041, 869], [651, 650],
]);

/** Nested arrays of element texts (null for NULL), from PostgreSQL's array output (`{1,2,NULL}`, `{{"a b",c}}`). */
export function parseArrayText(text: string): unknown[] {
  let i = 0;
  // A lower bound other than 1 is printed first: `[0:1]={a,b}`.
  if (text[0] === '[') i = text.indexOf('=') + 1;
  const fail = (): never => {
    throw new Error(`cannot read an array at character ${i + 1}`);
  };
  const parse = (): unknown[] => {
    if (text[i] !== '{') fail();
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') out.push(parse());
      else if (text[i] === '"') {
        let s = '';
        for (i++; text[i] !== '"'; i++) {
          if (i >= text.length) fail();
          if (text[i] === '\\') i++;
          s += text[i];
        }
        i++;
        out.push(s);
      } else {
        const start = i;
        while (i < text.length && text[i] !== ',' && text[i] !== '}') i++;
        const item = text.slice(start, i).trim();
        out.push(item.toUpperCase() === 'NULL' ? null : item);
      }
      if (text[i] === ',') i++;
      else if (text[i] === '}') {
        i++;
        return out;
      } else fail();
    }
  };
  const result = parse();
  if (i !== text.length) fail();
  return result;
}

function mapArray(items: unknown[], element: ColumnReader): unknown[] {
  return items.map((v) => (v === null ? null : Array.isArray(v) ? mapArray(v, element) : element(v as string)));
}

/** How to read one column's text; types without a JSON form of their own stay PostgreSQL's text. */
export function columnReader(oid: number, typeMod: number): ColumnReader {
  const elementOid = ARRAY_ELEMENTS.get(oid);
  if (elementOid !== undefined) {
    const element = scalarReader(elementOid, typeMod) ?? text;
    return (t) => mapArray(parseArrayText(t), element);
  }
  return scalarReader(oid, typeMod) ?? text;
}

/** Reads whole rows (values in column order, text or null) into plain objects keyed by column name. */
export function rowReader(columns: readonly ColumnType[]): (values: readonly (string | null)[]) => Record<string, unknown> {
  const readers = columns.map((c) => columnReader(c.dataTypeID, c.dataTypeModifier));
  const names = columns.map((c) => c.name);
  return (values) => {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) {
      const v = values[i];
      let value: unknown = null;
      if (v !== null && v !== undefined) {
        try {
          value = readers[i]!(v);
        } catch (err) {
          throw new Error(`column "${names[i]}": ${errorMessage(err)}`, { cause: err });
        }
      }
      // A column named __proto__ is an own property, not the object's prototype.
      if (names[i] === '__proto__') Object.defineProperty(row, '__proto__', { value, enumerable: true, writable: true, configurable: true });
      else row[names[i]!] = value;
    }
    return row;
  };
}

/* ------------------------------------------------------------------ errors */

/** Where errors about the query point in the spec. */
function queryWhere(source: string): string {
  return `sources.${source}.postgres-query.query`;
}

/**
 * An error of the query, as the run reports it: a lost connection or a server going away (retrying
 * may help) is a ConnectionError; anything else the server says about the query (syntax, a missing
 * table, a parameter count or value that does not fit, a division by zero on some row) is a
 * ConfigError with PostgreSQL's message and SQLSTATE, at `sources.<source>.postgres-query.query`.
 * Errors of sluice's own (and bugs: TypeError, RangeError) pass unchanged.
 */
export function queryError(err: unknown, cfg: PgConnectionConfig & { timeout?: string }, source: string): Error {
  if (err instanceof SluiceError || err instanceof TypeError || err instanceof RangeError) return err;
  const state = sqlState(err);
  const message = errorMessage(err) || 'connection failed';
  // 08 (connection, but 08P01: the bind message's parameter count), 57P (shutdown), 53 (resources),
  // 58 (I/O), 40 (a conflict with recovery on a standby): the server, not the query.
  if (state === undefined || (state.startsWith('08') && state !== '08P01') || /^(57P|53|58|40)/.test(state)) {
    return new ConnectionError('E_PG_QUERY_CONNECTION', `lost ${describeConnection(cfg)} while running the query: ${message}`, `sources.${source}`, { cause: err });
  }
  const where = queryWhere(source);
  const count = /bind message supplies (\d+) parameters?, but prepared statement "" requires (\d+)/.exec(message);
  if (count) {
    const [, given, needed] = count;
    const uses = needed === '0' ? 'no parameters' : needed === '1' ? 'one parameter ($1)' : `${needed} parameters ($1..$${needed})`;
    return new ConfigError('E_PG_QUERY', `query failed: the query uses ${uses} but \`params\` gives ${given} (SQLSTATE ${state})`, where, { cause: err });
  }
  const info = err as { position?: unknown; hint?: unknown };
  // The server counts from the start of the DECLARE this source wraps the query in.
  const position = typeof info.position === 'string' ? Number(info.position) - DECLARE.length : NaN;
  const at = position >= 1 ? ` at character ${position}` : '';
  const hint = typeof info.hint === 'string' ? `; hint: ${info.hint}` : '';
  // A statement a cursor cannot run fails on its first word.
  const select = state === '42601' && position === 1 ? '; the query must be a SELECT (or VALUES, TABLE, WITH ... SELECT): it is read with a cursor' : '';
  const timedOut = state === '57014' && cfg.timeout !== undefined && /statement timeout/.test(message) ? `; a statement of the run took longer than \`timeout\` (${cfg.timeout})` : '';
  return new ConfigError('E_PG_QUERY', `query failed: ${message} (SQLSTATE ${state})${at}${hint}${select}${timedOut}`, where, { cause: err });
}

/* ------------------------------------------------------------------ one execution */

/** How `PostgresQuery.execute` hands rows over and names them. */
export interface QueryTarget {
  out: SourceOutput;
  /** The input partition of every batch. */
  partition: string;
  /** Which execution this is (1 for the first), in `$meta.run`. */
  run: number;
  /** Offsets `<run>/<row>` instead of `<row>`, so that positions order across runs (a scheduled source). */
  runInOffset?: boolean;
}

/**
 * One execution of the query: its own connection and READ ONLY transaction, a cursor fetched in
 * pages, one RawBatch per page. `verify` does the same up to the first fetch (the server parses,
 * binds and plans the query, but runs nothing).
 */
export class PostgresQuery {
  private readonly batchSize: number;
  private readonly params: QueryParam[];
  private readonly timeoutMs: number | undefined;
  private readonly log: Logger;
  private client: pg.Client | undefined;
  private aborted = false;

  constructor(
    private readonly cfg: PostgresQueryConfig,
    private readonly ctx: ComponentContext,
  ) {
    this.batchSize = cfg.batch_size ?? DEFAULT_BATCH_SIZE;
    this.params = cfg.params ?? [];
    this.timeoutMs = cfg.timeout === undefined ? undefined : parseDuration(cfg.timeout);
    // The engine's logger already names the node and its kind.
    this.log = ctx.logger;
  }

  /** Whether the query parses, binds its params and plans, and its columns fit `key`: before any sink opens. */
  async verify(): Promise<void> {
    const client = await this.connect();
    try {
      await this.open(client);
    } finally {
      await client.end().catch(() => {});
      if (this.client === client) this.client = undefined;
    }
  }

  /** Runs the query once, handing each page over (awaiting backpressure); resolves with the rows emitted. */
  async execute(target: QueryTarget): Promise<number> {
    if (this.aborted) return 0;
    let client: pg.Client;
    try {
      client = await this.connect();
    } catch (err) {
      if (this.aborted) return 0;
      throw err;
    }
    let rows = 0;
    try {
      const startedAt = this.ctx.clock.now();
      const began = Date.now();
      const columns = await this.open(client);
      const read = rowReader(columns);
      const keyIndexes = (this.cfg.key ?? []).map((k) => columns.findIndex((c) => c.name === k));
      for (;;) {
        if (this.aborted) return rows;
        const res = await client.query({ text: `FETCH ${this.batchSize} FROM ${CURSOR}`, rowMode: 'array' });
        const page = res.rows as (string | null)[][];
        if (page.length === 0) break;
        const messages: RawMessage[] = page.map((values) => {
          rows++;
          return this.message(read, values, keyIndexes, columns, startedAt, rows, target);
        });
        await target.out.emit({ partition: target.partition, messages, ack: new Ack(() => {}) });
      }
      await client.query('COMMIT');
      this.log.info({ run: target.run, rows, ms: Date.now() - began }, 'query done');
      return rows;
    } catch (err) {
      if (this.aborted) return rows;
      throw queryError(err, this.cfg, this.ctx.name);
    } finally {
      await client.end().catch(() => {});
      if (this.client === client) this.client = undefined;
    }
  }

  /** Ends a running execution soon: the server cancels its statement, then its connection closes. */
  async abort(): Promise<void> {
    this.aborted = true;
    const client = this.client;
    if (!client) return;
    // A closed socket alone leaves the server running the statement until it next writes to the
    // client (a long sort, pg_sleep): cancel it first, as psql's Ctrl-C does.
    await this.cancel(client).catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'could not cancel the running query'));
    await client.end().catch(() => {});
  }

  /** pg_cancel_backend from a connection of its own (pg's Client has no documented cancel). */
  private async cancel(client: pg.Client): Promise<void> {
    // Set by pg from the server's BackendKeyData; missing from its typings.
    const pid = (client as pg.Client & { processID?: number }).processID;
    if (pid === undefined) return;
    const canceller = new pg.Client({ ...toClientConfig(this.cfg, { applicationName: `sluice-${this.ctx.name}-cancel` }), connectionTimeoutMillis: 5_000 });
    canceller.on('error', () => {});
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend($1)', [pid]);
    } finally {
      await canceller.end().catch(() => {});
    }
  }

  private message(
    read: (values: readonly (string | null)[]) => Record<string, unknown>,
    values: readonly (string | null)[],
    keyIndexes: readonly number[],
    columns: readonly ColumnType[],
    startedAt: number,
    row: number,
    target: QueryTarget,
  ): RawMessage {
    let value: unknown;
    let key: unknown = null;
    try {
      const obj = read(values);
      value = obj;
      if (keyIndexes.length > 0) key = Object.fromEntries(keyIndexes.map((i) => [columns[i]!.name, obj[columns[i]!.name]]));
    } catch (err) {
      // A value without a JSON form (json nested beyond 512 levels): this row goes to `<source>.errors`.
      value = new RefusedValue(new RecordError('E_PG_QUERY_VALUE', `row ${row}: ${errorMessage(err)}`, `sources.${this.ctx.name}`, { cause: err }));
    }
    return {
      key,
      value,
      headers: {},
      timestamp: startedAt,
      position: { source: this.ctx.name, partition: target.partition, offset: target.runInOffset ? `${target.run}/${row}` : String(row) },
      // A query result says what rows are, like a Debezium snapshot read: a table step then lets
      // them hold from the start of time.
      meta: { op: 'r', run: target.run, row, started_at: toIsoUtc(startedAt) },
    };
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      ...toClientConfig(this.cfg, { applicationName: `sluice-${this.ctx.name}` }),
      // Intervals as ISO 8601 durations (a later -c wins over SESSION_OPTIONS' postgres style).
      options: `${SESSION_OPTIONS} -c IntervalStyle=iso_8601`,
      // Every value as its type's text output: the readers above decide what each becomes.
      types: { getTypeParser: () => (t: string) => t },
    });
    // Without a listener a connection lost between two fetches would crash the process; the next fetch fails instead.
    client.on('error', (err: Error) => this.log.warn({ err: err.message }, 'connection lost'));
    this.client = client;
    try {
      await client.connect();
    } catch (err) {
      if (this.client === client) this.client = undefined;
      await client.end().catch(() => {});
      throw new ConnectionError('E_PG_QUERY_CONNECT', `cannot connect to ${describeConnection(this.cfg)}: ${connectFailure(err)}`, `sources.${this.ctx.name}`, { cause: err });
    }
    return client;
  }

  /** Begins the transaction and declares the cursor; the columns it will return, checked against `key`. */
  private async open(client: pg.Client): Promise<ColumnType[]> {
    let fields: FieldDef[];
    try {
      // READ ONLY: a source only reads, whatever functions the query calls.
      await client.query('BEGIN READ ONLY');
      // Server-side, so a query stuck in the server ends even while this process waits on it.
      if (this.timeoutMs !== undefined) await client.query(`SET LOCAL statement_timeout = ${this.timeoutMs}`);
      // Extended protocol even without params: the values are bound as $1..$n, never spliced into
      // the text, and a second statement after a `;` is refused. (`queryMode` is missing from pg's typings.)
      const declare: QueryConfig & { queryMode: 'extended' } = { text: DECLARE + this.cfg.query, values: this.params, queryMode: 'extended' };
      await client.query(declare);
      // FETCH 0 before the first row returns nothing and runs nothing, but describes the columns.
      fields = (await client.query({ text: `FETCH FORWARD 0 FROM ${CURSOR}`, rowMode: 'array' })).fields;
    } catch (err) {
      throw queryError(err, this.cfg, this.ctx.name);
    }
    const columns = fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID, dataTypeModifier: f.dataTypeModifier }));
    const names = columns.map((c) => c.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) {
      throw new ConfigError('E_PG_QUERY_COLUMNS', `the query returns more than one column named "${twice}": give each its own name with AS`, queryWhere(this.ctx.name));
    }
    const missing = (this.cfg.key ?? []).filter((k) => !names.includes(k));
    if (missing.length > 0) {
      throw new ConfigError(
        'E_PG_QUERY_KEY',
        `key column${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')} not among the query's columns (${names.join(', ')})`,
        `sources.${this.ctx.name}.postgres-query.key`,
      );
    }
    return columns;
  }
}

/** Why a connect failed; Node gives an AggregateError with an empty message when every address of a host refused. */
function connectFailure(err: unknown): string {
  if (err instanceof AggregateError && !err.message) {
    const first: unknown = err.errors[0];
    return errorMessage(first) || 'connection refused';
  }
  return errorMessage(err) || String((err as { code?: unknown })?.code ?? 'connection failed');
}

/* ------------------------------------------------------------------ the source */

/** `<name>/query`: the one input partition. */
export function queryPartition(source: string): string {
  return `${source}/query`;
}

/** The query's first non-empty line, shortened, for `sluice graph`. */
export function queryHeadline(query: string): string {
  const lines = query.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const first = lines[0] ?? '';
  const cut = first.length > 80 ? `${first.slice(0, 79)}…` : first;
  return lines.length > 1 && cut === first ? `${cut} …` : cut;
}

const connection = pgConnectionSchemaProperties();

const schema: JsonSchema = object(
  'Run a SQL query, once or on a schedule, and emit its rows.',
  {
    ...connection,
    host: { ...connection.host, examples: ['${PGHOST:-localhost}', '127.0.0.1'] },
    database: { ...connection.database, examples: ['company'] },
    query: {
      type: 'string',
      minLength: 1,
      description:
        'The query: a SELECT (or VALUES, TABLE, WITH ... SELECT), run in a READ ONLY transaction and read with a cursor. ' +
        'Parameters are written $1, $2, ... and bound from `params`, never spliced into the text. One statement only.',
      examples: ['SELECT id, name, department, updated_at FROM employees WHERE active = $1'],
    },
    params: {
      type: 'array',
      items: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'null' }] },
      default: [],
      description:
        'Values of $1, $2, ... in order; `${ENV}` references are filled in when the spec loads. PostgreSQL infers each type from where it is used. ' +
        'Quote integers beyond 2^53 (`"9007199254740993"`): YAML reads unquoted numbers as doubles.',
      examples: [[true], ['${DEPARTMENT}', 100]],
    },
    batch_size: {
      type: 'integer',
      minimum: 1,
      maximum: 100000,
      default: DEFAULT_BATCH_SIZE,
      description: 'Rows fetched from the cursor and handed to the pipeline at a time: at most this many rows are in memory.',
      examples: [1000],
    },
    key: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description: "Columns that make each record's key, an object of those columns (`{id: 7}`); without it the key is null.",
      examples: [['id']],
    },
    schedule: cron(
      'Run the query at every tick of this cron schedule (5 fields `minute hour day-of-month month day-of-week`, or 6 with seconds first) ' +
        'instead of once: the source then never ends. A tick that comes while the previous run is still going is skipped.',
      ['0 3 * * *', '*/15 * * * *', '*/10 * * * * *'],
    ),
    timezone: timeZone('The time zone `schedule` is read in (IANA name).', ['Europe/Berlin', 'UTC']),
    timeout: duration('Longest any one statement of a run may take (PostgreSQL\'s statement_timeout: the DECLARE and each FETCH of `batch_size` rows); the run then fails with SQLSTATE 57014.', ['30s', '5m']),
    run_at_start: {
      type: 'boolean',
      default: true,
      description: 'With `schedule`: also run once at start, so the pipeline has the rows before the first tick.',
      examples: [false],
    },
  },
  ['host', 'database', 'user', 'query'],
  {
    // Without a schedule they would mean nothing: say so rather than ignore them.
    dependentRequired: { timezone: ['schedule'], run_at_start: ['schedule'] },
    examples: [
      {
        host: '${PGHOST:-localhost}',
        database: 'company',
        user: 'postgres',
        query: 'SELECT id, name, department, updated_at FROM employees WHERE active = $1',
        params: [true],
        batch_size: 1000,
      },
      {
        host: '${PGHOST:-localhost}',
        database: 'company',
        user: 'postgres',
        query: 'SELECT id, name, department FROM departments',
        schedule: '0 3 * * *',
        timezone: 'Europe/Berlin',
        timeout: '30s',
      },
    ],
  },
);

/* ------------------------------------------------------------------ on a schedule */

const RUNS = 'sluice_query_runs_total';
const RUNS_FAILED = 'sluice_query_runs_failed_total';
const RUNS_SKIPPED = 'sluice_query_runs_skipped_total';
const LAST_RUN_SECONDS = 'sluice_query_last_run_duration_seconds';
const LAST_RUN_ROWS = 'sluice_query_last_run_rows';

export const QUERY_SCHEDULE_METRICS: readonly MetricDefinition[] = [
  { name: RUNS, type: 'counter', help: 'Runs of a scheduled query started (at start and at ticks that were not skipped).', labels: ['node'] },
  { name: RUNS_FAILED, type: 'counter', help: 'Runs of a scheduled query that failed or timed out; the next tick runs it again.', labels: ['node'] },
  { name: RUNS_SKIPPED, type: 'counter', help: 'Ticks of a schedule skipped because the previous run was still going.', labels: ['node'] },
  { name: LAST_RUN_SECONDS, type: 'gauge', help: 'How long the last successful run of a scheduled query took, in seconds.', labels: ['node'] },
  { name: LAST_RUN_ROWS, type: 'gauge', help: 'Rows the last successful run of a scheduled query emitted.', labels: ['node'] },
];

/**
 * The query at every tick of its schedule, until stopped. Runs never overlap: a tick during a run
 * is skipped. A run the database refuses or loses (a dropped table, a timeout, a restart) is
 * logged and counted, and the next tick tries again; the pipeline goes on.
 */
class ScheduledQuerySource implements Source {
  readonly bounded = false;
  private readonly schedule: Schedule;
  private readonly labels: { node: string };
  private handle: ScheduleHandle | undefined;
  private current: Promise<void> | undefined;
  private runs = 0;
  private stopping = false;
  /** Set when a run failed for a reason that is not the database's (a bug): `run` rejects with it. */
  private failure: { error: unknown } | undefined;
  private readonly ended: Promise<void>;
  private end: () => void = () => {};

  constructor(
    private readonly cfg: PostgresQueryConfig & { schedule: string },
    private readonly ctx: ComponentContext,
    private readonly query: PostgresQuery,
  ) {
    try {
      this.schedule = parseSchedule(cfg.schedule, cfg.timezone ?? 'UTC');
    } catch (err) {
      if (!(err instanceof ScheduleError)) throw err;
      const field = err.problem === 'timezone' ? 'timezone' : 'schedule';
      throw new ConfigError('E_SCHEDULE', `\`${field}\` ${err.reason}`, `sources.${ctx.name}.postgres-query.${field}`, { cause: err });
    }
    this.labels = { node: ctx.name };
    this.ended = new Promise((resolve) => (this.end = resolve));
    ctx.metrics.define(...QUERY_SCHEDULE_METRICS);
  }

  check(): Promise<void> {
    return this.query.verify();
  }

  async run(out: SourceOutput): Promise<void> {
    const partition = queryPartition(this.ctx.name);
    out.assign([partition]);
    if (!this.stopping) {
      this.handle = startSchedule(this.schedule, this.ctx.clock, () => this.tick(out, partition));
      if (this.cfg.run_at_start ?? true) this.tick(out, partition);
      await this.ended;
    }
    this.handle?.stop();
    await this.current;
    if (this.failure) throw this.failure.error;
  }

  private tick(out: SourceOutput, partition: string): void {
    if (this.stopping) return;
    if (this.current) {
      this.ctx.metrics.inc(RUNS_SKIPPED, this.labels);
      this.ctx.logger.warn({ run: this.runs }, 'query run still going at the next tick of its schedule: tick skipped');
      return;
    }
    const run = ++this.runs;
    this.ctx.metrics.inc(RUNS, this.labels);
    const began = performance.now();
    this.current = this.query
      .execute({ out, partition, run, runInOffset: true })
      .then(
        (rows) => {
          this.ctx.metrics.set(LAST_RUN_SECONDS, this.labels, (performance.now() - began) / 1000);
          this.ctx.metrics.set(LAST_RUN_ROWS, this.labels, rows);
        },
        (err: unknown) => this.failed(err, run),
      )
      .finally(() => {
        this.current = undefined;
      });
  }

  private failed(err: unknown, run: number): void {
    if (err instanceof ConfigError || err instanceof ConnectionError) {
      this.ctx.metrics.inc(RUNS_FAILED, this.labels);
      this.ctx.logger.warn({ run, code: err.code, sqlstate: sqlState(err.cause), err: err.message }, 'query run failed; the next tick runs it again');
      return;
    }
    // Not the database's doing (a bug): fail the source, as a run without a schedule would.
    this.failure = { error: err };
    this.stopping = true;
    this.end();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.handle?.stop();
    this.end();
    // Closes a running query's connection: the server cancels it.
    await this.query.abort();
  }

  close(): Promise<void> {
    return this.stop();
  }
}

export const postgresQuerySource: SourceDef<PostgresQueryConfig> & ArrivalTimeSource = {
  family: 'source',
  name: 'postgres-query',
  // Rows carry the time the query started, not an event time: a window needs `time:` from a column.
  messageTime: 'arrival',
  summary: 'Runs a parameterised SQL query against PostgreSQL, once (bounded) or on a cron schedule, and emits its rows.',
  description:
    [
      'Each row becomes one record: its value an object of the columns by name (the key is null, or the `key` columns),',
      'its timestamp the time the query started (also `$meta.started_at`, ISO 8601), `$meta.run` and `$meta.row` (1-based) saying which, and `$meta.op` `r`',
      '(a read, as Debezium marks snapshot rows: a `table` step fed by this source lets each row hold from the start of time). The query runs',
      'in a READ ONLY transaction, through a cursor fetched `batch_size` rows at a time and handed over as the pipeline takes',
      'them. The transaction (and its snapshot) stays open until the last page is handed over. Before any sink opens the query is parsed,',
      'bound and planned, so a typo, a missing table or a wrong parameter count fails first, with PostgreSQL\'s message and SQLSTATE.',
    ].join(' ') +
    '\n\n' +
    [
      'Without `schedule` the query runs once; then the source ends: windows flush and the run exits 0. With `schedule`',
      '(cron, in `timezone`) it runs at every tick, and once at start unless `run_at_start: false`, until the pipeline stops;',
      'each run emits the whole result as of its own snapshot, `$meta.run` counting runs from 1 and offsets `<run>/<row>`.',
      'Runs never overlap: a tick while a run is still going is skipped (`sluice_query_runs_skipped_total`). A run that fails',
      '(a missing table, a lost connection, `timeout`) is logged with its SQLSTATE and counted (`sluice_query_runs_failed_total`),',
      'and the next tick runs it again; rows it emitted before failing stay emitted. Daylight saving: a time that does not',
      'exist that day (02:30 when the clocks go forward) does not fire; one that happens twice fires once.',
      '`sluice_query_runs_total`, `sluice_query_last_run_duration_seconds` and `sluice_query_last_run_rows` show the rest.',
    ].join(' ') +
    '\n\n' +
    [
      'Values: NULL is null; boolean, int2, int4 and oid are JSON values; int8 is a number, or beyond 2^53 an exact big',
      'integer (written as plain digits); numeric is a number when whole (a big integer beyond 2^53) or when it has at most',
      '15 significant digits, else the exact decimal text (as are NaN and Infinity); float4/float8 are numbers (NaN and Infinity as text);',
      'json and jsonb are parsed; timestamptz is ISO 8601 in UTC (`2025-01-06T09:05:12.345678Z`), timestamp the same',
      'without the `Z` (read as UTC), both with the column\'s fraction digits; date is `2025-01-06`; interval is an ISO 8601',
      'duration (`P1DT2H`); bytea is base64; arrays of these are arrays. Anything else (text, uuid, time, enums, ...) is',
      'PostgreSQL\'s text form.',
    ].join(' '),
  schema,
  describe: (c) =>
    `postgres-query ${describeConnection(c)} query ${queryHeadline(c.query)}` + (c.schedule === undefined ? '' : ` on schedule ${c.schedule} (${c.timezone ?? 'UTC'})`),
  create(config, ctx): Source {
    const query = new PostgresQuery(config, ctx);
    if (config.schedule !== undefined) return new ScheduledQuerySource({ ...config, schedule: config.schedule }, ctx, query);
    return {
      bounded: true,
      // Before any sink opens: a query that cannot run must not cost a file sink its output.
      check: () => query.verify(),
      async run(out: SourceOutput): Promise<void> {
        const partition = queryPartition(ctx.name);
        out.assign([partition]);
        await query.execute({ out, partition, run: 1 });
      },
      stop: () => query.abort(),
      close: () => query.abort(),
    };
  },
};
