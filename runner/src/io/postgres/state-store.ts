/**
 * The `postgres` state store: checkpoints in two tables of the database a `postgres` sink writes
 * to, so that under exactly-once the sink rows, the step state and the source positions commit in
 * ONE PostgreSQL transaction.
 * - `sluice_checkpoints`, one row per application id: the owner epoch (fencing), the committed
 *   epoch, and the checkpoint as jsonb (positions, identities, sink states, each step's header).
 * - `sluice_state`, one row per state entry (a window pane), keyed (application id, step, key). A
 *   commit writes only entries that changed since the last one and deletes those that are gone,
 *   as the Kafka changelog store does.
 *
 * One dedicated connection holds the open transaction. Under exactly-once the postgres sinks write
 * their batches into it (it is BEGUN on first use); `commit` adds the state delta and the
 * checkpoint row and COMMITs. A crash before COMMIT leaves none of it; the restarted run resumes
 * from the previous checkpoint and writes those rows again.
 *
 * Fencing: `load` bumps the row's owner epoch; `commit` re-reads it with SELECT ... FOR UPDATE and
 * refuses when it moved, so an older instance that is still running (a zombie) can never commit
 * after a newer one took over. The session's statement_timeout and
 * idle_in_transaction_session_timeout make the server end a stuck zombie's transaction, so it
 * cannot hold row locks forever.
 *
 * The tables are never captured by the `postgres-cdc` source: it reads only the tables it lists
 * (its publication is created FOR TABLE <list>, and changes of any other relation are skipped).
 * Another publication FOR ALL TABLES would capture them: `open` warns when one does.
 */
import pg from 'pg';
import { checkpointFromJson, checkpointMetaToJson, StateError, type Checkpoint, type CheckpointMetaJson, type CommitFigures, type StateStore, type StepStateJson } from '../../engine/checkpoint/checkpoint.ts';
import { resourceKey, type JsonValue } from '../../engine/component.ts';
import { errorMessage, SluiceError } from '../../engine/errors.ts';
import type { Logger } from '../../engine/logger.ts';
import { describeConnection, qualifiedIdent, quoteIdent, sqlState, toClientConfig, type PgConnectionConfig } from './connection.ts';
import type { Statement } from './table-writer.ts';

/** Under exactly-once, postgres sinks write through this: their rows join the next checkpoint's transaction. */
export interface PostgresCheckpointTransaction {
  /** `user@host:port/database` of the transaction's connection; a sink elsewhere cannot join it. */
  readonly target: string;
  /**
   * Runs the statements inside the open checkpoint transaction (BEGUN on first use); the next
   * checkpoint commits them. A failure leaves the transaction unusable: the run must stop, and a
   * restart resumes from the last committed checkpoint.
   */
  execute(statements: readonly Statement[]): Promise<void>;
}

export const POSTGRES_TRANSACTION = resourceKey<PostgresCheckpointTransaction>('postgres-transaction');

export const CHECKPOINTS_TABLE = 'sluice_checkpoints';
export const STATE_TABLE = 'sluice_state';

export interface PostgresStateStoreOptions {
  connection: PgConnectionConfig;
  applicationId: string;
  /** The running spec's stateful steps: rows of other steps are deleted by the first commit. */
  steps: readonly string[];
  /** Schema of the two tables; default `public`. */
  schema?: string;
  /**
   * How long the session may sit idle inside the open transaction before the server ends it. The
   * transaction stays open for a checkpoint interval, so this must be several intervals.
   */
  idleTimeoutMs: number;
}

/* ------------------------------------------------------------------ pure parts */

/** What a commit writes for one step: changed or new entries (key, JSON text) and keys that are gone. */
export interface StateDelta {
  upserts: [string, string][];
  deletes: string[];
  /** Bytes of every entry's JSON text, written or not: the state's stored size. */
  bytes: number;
}

/** The entries that differ from what was last committed (`before`: key -> JSON text). */
export function stateDelta(before: ReadonlyMap<string, string> | undefined, entries: ReadonlyMap<string, JsonValue>): StateDelta {
  const upserts: [string, string][] = [];
  const deletes: string[] = [];
  let bytes = 0;
  for (const [key, value] of entries) {
    const text = JSON.stringify(value);
    bytes += Buffer.byteLength(text);
    if (before?.get(key) !== text) upserts.push([key, text]);
  }
  if (before) for (const key of before.keys()) if (!entries.has(key)) deletes.push(key);
  return { upserts, deletes, bytes };
}

/**
 * Refuses a commit by an instance that no longer owns the application id. `stored` is the owner
 * epoch read under lock (undefined: the row is gone), `ours` the one this instance's load set.
 */
export function checkOwner(stored: number | undefined, ours: number | undefined, applicationId: string, where: string): void {
  if (ours === undefined) {
    throw new StateError('E_STATE_FENCED', `${where}: commit before load: this instance never took ownership of application \`${applicationId}\``, where);
  }
  if (stored === ours) return;
  throw new StateError(
    'E_STATE_FENCED',
    `${where}: another instance of application \`${applicationId}\` took over (owner epoch ${stored ?? 'gone'}, this instance's is ${ours}); this one stops without committing, and what it wrote since its last checkpoint is rolled back`,
    where,
  );
}

/** The tables of a store, quoted. */
export interface StoreTables {
  checkpoints: string;
  state: string;
}

export function storeTables(schema: string): StoreTables {
  return { checkpoints: qualifiedIdent({ schema, table: CHECKPOINTS_TABLE }), state: qualifiedIdent({ schema, table: STATE_TABLE }) };
}

/**
 * DDL for the two tables. Entries are `json`, not `jsonb`: jsonb reorders object keys and refuses
 * \u0000, and a pane may hold record values whose field order shows in the window's outputs.
 */
export function createTablesStatements(schema: string): string[] {
  const t = storeTables(schema);
  return [
    ...(schema === 'public' ? [] : [`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`]),
    `CREATE TABLE IF NOT EXISTS ${t.checkpoints} (application_id text PRIMARY KEY, owner_epoch bigint NOT NULL, epoch bigint, checkpoint jsonb, updated_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE TABLE IF NOT EXISTS ${t.state} (application_id text NOT NULL, step text NOT NULL, key text NOT NULL, value json NOT NULL, PRIMARY KEY (application_id, step, key))`,
  ];
}

/** Upserts changed entries of one step: one parameter, a JSON object whose member texts json_each keeps as they are. */
export function upsertEntriesStatement(tables: StoreTables, applicationId: string, step: string, upserts: readonly [string, string][]): Statement {
  const object = `{${upserts.map(([key, text]) => `${JSON.stringify(key)}:${text}`).join(',')}}`;
  return {
    text: `INSERT INTO ${tables.state} (application_id, step, key, value) SELECT $1, $2, e.key, e.value FROM json_each($3::json) AS e ON CONFLICT (application_id, step, key) DO UPDATE SET value = EXCLUDED.value`,
    values: [applicationId, step, object],
  };
}

export function deleteEntriesStatement(tables: StoreTables, applicationId: string, step: string, keys: readonly string[]): Statement {
  return { text: `DELETE FROM ${tables.state} WHERE application_id = $1 AND step = $2 AND key = ANY($3::text[])`, values: [applicationId, step, keys] };
}

/** The checkpoint row's jsonb: a checkpoint without its entries, each step's header instead. */
export interface CheckpointRowJson extends CheckpointMetaJson {
  headers: Record<string, JsonValue>;
}

export function checkpointRowJson(cp: Checkpoint): CheckpointRowJson {
  const headers: Record<string, JsonValue> = {};
  for (const [step, state] of cp.states) headers[step] = state.header;
  return { ...checkpointMetaToJson(cp), headers };
}

export function checkpointFromRow(row: unknown, epochColumn: unknown, entries: ReadonlyMap<string, ReadonlyMap<string, string>>, where: string): Checkpoint {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    throw new StateError('E_STATE_CORRUPT', `${where}: the checkpoint column is not a JSON object`, where);
  }
  const { headers, ...rest } = row as Record<string, unknown>;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new StateError('E_STATE_CORRUPT', `${where}: not a sluice checkpoint: headers missing`, where);
  }
  const states: Record<string, StepStateJson> = {};
  for (const [step, header] of Object.entries(headers as Record<string, JsonValue>)) {
    const texts = entries.get(step);
    states[step] = { header, entries: texts ? [...texts].map(([key, text]) => [key, parseEntry(text, `${where}: state of \`${step}\`, key ${key}`)]) : [] };
  }
  const cp = checkpointFromJson({ ...rest, states }, where);
  if (String(epochColumn) !== String(cp.epoch)) {
    throw new StateError('E_STATE_CORRUPT', `${where}: the epoch column (${String(epochColumn)}) does not match the checkpoint's (${cp.epoch})`, where);
  }
  return cp;
}

function parseEntry(text: string, where: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new StateError('E_STATE_CORRUPT', `${where}: not JSON: ${errorMessage(err)}`, where);
  }
}

/** A bigint column as a number (owner and checkpoint epochs stay far below 2^53). */
function epochOf(v: unknown, where: string): number | undefined {
  if (v === null || v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new StateError('E_STATE_CORRUPT', `${where}: epoch ${String(v)} is not an integer`, where);
  return n;
}

/* ------------------------------------------------------------------ the store */

export class PostgresStateStore implements StateStore, PostgresCheckpointTransaction {
  readonly description: string;
  readonly target: string;
  private readonly tables: StoreTables;
  private readonly where: string;
  private client: pg.Client | undefined;
  /** Why the session or its open transaction can no longer commit (connection lost, a statement failed). */
  private broken: Error | undefined;
  private inTransaction = false;
  /** The owner epoch this instance's load (or reset) set; commits are checked against it. */
  private ownerEpoch: number | undefined;
  /** Work on the connection runs one piece at a time, so a batch's statements never interleave with another's or with a commit. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Per step, the JSON text of each entry as last committed: the base of the next delta. */
  private readonly written = new Map<string, Map<string, string>>();
  /** Rows of steps that are not in this spec (removed, renamed) were found: the first commit deletes them. */
  private orphans = false;

  constructor(
    private readonly options: PostgresStateStoreOptions,
    private readonly logger: Logger,
  ) {
    const schema = options.schema ?? 'public';
    this.tables = storeTables(schema);
    this.target = describeConnection(options.connection);
    this.where = `${this.target} ${schema}.${CHECKPOINTS_TABLE}`;
    this.description = `postgres ${this.target} tables ${schema}.${CHECKPOINTS_TABLE}, ${schema}.${STATE_TABLE} (application ${options.applicationId})`;
  }

  async open(): Promise<void> {
    if (this.client) return;
    const idle = this.options.idleTimeoutMs;
    const client = new pg.Client({
      ...toClientConfig(this.options.connection, { applicationName: `sluice-${this.options.applicationId}-state` }),
      idle_in_transaction_session_timeout: idle,
      // Longer than the idle timeout: a load waiting on a stuck zombie's row lock outlasts it.
      statement_timeout: idle * 2,
    });
    client.on('error', (err: Error) => {
      this.broken ??= err;
      this.logger.warn({ error: err.message }, 'state store connection lost');
    });
    try {
      await client.connect();
    } catch (err) {
      throw new StateError('E_STATE_CONNECT', `cannot connect to ${this.target} for the state store: ${errorMessage(err)}`, this.where, { cause: err });
    }
    this.client = client;
    await this.createTables(client);
    await this.warnIfPublished(client);
  }

  private async createTables(client: pg.Client): Promise<void> {
    for (const ddl of createTablesStatements(this.options.schema ?? 'public')) {
      try {
        await client.query(ddl);
      } catch (err) {
        // Two instances creating the tables at once: the loser sees a duplicate, the tables exist.
        const state = sqlState(err);
        if (state === '23505' || state === '42P07' || state === '42P06') continue;
        throw new StateError('E_STATE_SETUP', `${this.where}: cannot create the state tables: ${errorMessage(err)}`, this.where, { cause: err });
      }
    }
  }

  /** A publication FOR ALL TABLES (Debezium's default) would stream every checkpoint's writes: say so. */
  private async warnIfPublished(client: pg.Client): Promise<void> {
    const res = await client.query<{ pubname: string }>(
      'SELECT DISTINCT pubname FROM pg_publication_tables WHERE schemaname = $1 AND tablename = ANY($2::text[])',
      [this.options.schema ?? 'public', [CHECKPOINTS_TABLE, STATE_TABLE]],
    );
    if (res.rows.length > 0) {
      this.logger.warn(
        { publications: res.rows.map((r) => r.pubname), tables: [CHECKPOINTS_TABLE, STATE_TABLE] },
        'a publication captures the sluice state tables: every checkpoint will appear in its change stream; publish the captured tables by name (FOR TABLE ...) instead',
      );
    }
  }

  async load(): Promise<Checkpoint | undefined> {
    return this.serial(async (client) => {
      const app = this.options.applicationId;
      let row: { owner_epoch: unknown; epoch: unknown; checkpoint: unknown };
      const texts = new Map<string, Map<string, string>>();
      await client.query('BEGIN');
      try {
        // Take ownership first (waiting for a zombie's commit in flight): every commit of an older
        // instance after this is refused, so what is read next is the last checkpoint there will be.
        const owned = await client.query<{ owner_epoch: unknown; epoch: unknown; checkpoint: unknown }>(
          `INSERT INTO ${this.tables.checkpoints} AS c (application_id, owner_epoch) VALUES ($1, 1) ON CONFLICT (application_id) DO UPDATE SET owner_epoch = c.owner_epoch + 1 RETURNING owner_epoch, epoch, checkpoint`,
          [app],
        );
        row = owned.rows[0]!;
        const entries = await client.query<{ step: string; key: string; value: string }>(
          `SELECT step, key, value::text AS value FROM ${this.tables.state} WHERE application_id = $1 ORDER BY step, key`,
          [app],
        );
        for (const e of entries.rows) {
          let m = texts.get(e.step);
          if (!m) texts.set(e.step, (m = new Map()));
          m.set(e.key, e.value);
        }
        await this.commitOrThrow(client);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw this.asStateError(err, 'cannot load the last checkpoint');
      }
      this.ownerEpoch = epochOf(row.owner_epoch, this.where);
      this.written.clear();
      if (row.checkpoint === null || row.checkpoint === undefined) {
        this.orphans = texts.size > 0;
        return undefined;
      }
      const cp = checkpointFromRow(row.checkpoint, row.epoch, texts, this.where);
      for (const step of cp.states.keys()) this.written.set(step, texts.get(step) ?? new Map());
      this.orphans = [...texts.keys()].some((step) => !cp.states.has(step) || !this.options.steps.includes(step));
      return cp;
    });
  }

  /** The sinks' statements join the open transaction. */
  execute(statements: readonly Statement[]): Promise<void> {
    return this.serial(async (client) => {
      await this.begin(client);
      try {
        for (const s of statements) await client.query(s.text, s.values);
      } catch (err) {
        // PostgreSQL aborts the whole transaction on an error: nothing of this epoch can commit now.
        this.broken ??= err instanceof Error ? err : new Error(String(err));
        throw err;
      }
    });
  }

  async commit(checkpoint: Checkpoint): Promise<CommitFigures> {
    return this.serial(async (client) => {
      const app = this.options.applicationId;
      const deltas = new Map<string, StateDelta>();
      for (const [step, state] of checkpoint.states) deltas.set(step, stateDelta(this.written.get(step), state.entries));
      let written = 0;
      let deleted = 0;
      let bytes = 0;
      await this.begin(client);
      try {
        const owner = await client.query<{ owner_epoch: unknown }>(`SELECT owner_epoch FROM ${this.tables.checkpoints} WHERE application_id = $1 FOR UPDATE`, [app]);
        checkOwner(epochOf(owner.rows[0]?.owner_epoch, this.where), this.ownerEpoch, app, this.where);
        if (this.orphans) {
          await client.query(`DELETE FROM ${this.tables.state} WHERE application_id = $1 AND NOT (step = ANY($2::text[]))`, [app, [...checkpoint.states.keys()]]);
        }
        for (const [step, delta] of deltas) {
          if (delta.upserts.length > 0) {
            const s = upsertEntriesStatement(this.tables, app, step, delta.upserts);
            await client.query(s.text, s.values);
          }
          if (delta.deletes.length > 0) {
            const s = deleteEntriesStatement(this.tables, app, step, delta.deletes);
            await client.query(s.text, s.values);
          }
          written += delta.upserts.length;
          deleted += delta.deletes.length;
          bytes += delta.bytes;
        }
        await client.query(`UPDATE ${this.tables.checkpoints} SET epoch = $2, checkpoint = $3::jsonb, updated_at = now() WHERE application_id = $1`, [
          app,
          checkpoint.epoch,
          JSON.stringify(checkpointRowJson(checkpoint)),
        ]);
        await this.commitOrThrow(client);
      } catch (err) {
        await this.rollback(client);
        // Whatever the sinks wrote into it is gone with it: this instance must not commit again.
        this.broken ??= err instanceof Error ? err : new Error(String(err));
        throw this.asStateError(err, `checkpoint ${checkpoint.epoch} did not commit`);
      }
      this.orphans = false;
      for (const [step, delta] of deltas) {
        let m = this.written.get(step);
        if (!m) this.written.set(step, (m = new Map()));
        for (const [key, text] of delta.upserts) m.set(key, text);
        for (const key of delta.deletes) m.delete(key);
      }
      return { written, deleted, bytes };
    });
  }

  /**
   * Drops the application's checkpoint and state. After a load (the input ended) it commits the
   * open transaction, so the last rows the sinks wrote and the removal are one commit; before one
   * (`--reset-state`) it also takes ownership, fencing any older instance.
   */
  async reset(): Promise<void> {
    await this.open();
    await this.serial(async (client) => {
      const app = this.options.applicationId;
      await this.begin(client);
      try {
        if (this.ownerEpoch === undefined) {
          const owned = await client.query<{ owner_epoch: unknown }>(
            `INSERT INTO ${this.tables.checkpoints} AS c (application_id, owner_epoch) VALUES ($1, 1) ON CONFLICT (application_id) DO UPDATE SET owner_epoch = c.owner_epoch + 1 RETURNING owner_epoch`,
            [app],
          );
          this.ownerEpoch = epochOf(owned.rows[0]!.owner_epoch, this.where);
        } else {
          const owner = await client.query<{ owner_epoch: unknown }>(`SELECT owner_epoch FROM ${this.tables.checkpoints} WHERE application_id = $1 FOR UPDATE`, [app]);
          checkOwner(epochOf(owner.rows[0]?.owner_epoch, this.where), this.ownerEpoch, app, this.where);
        }
        await client.query(`DELETE FROM ${this.tables.state} WHERE application_id = $1`, [app]);
        await client.query(`UPDATE ${this.tables.checkpoints} SET epoch = NULL, checkpoint = NULL, updated_at = now() WHERE application_id = $1`, [app]);
        await this.commitOrThrow(client);
      } catch (err) {
        await this.rollback(client);
        throw this.asStateError(err, 'cannot drop the stored state');
      }
      this.written.clear();
      this.orphans = false;
    });
  }

  /** Ends the session; a transaction still open (the run failed) is rolled back. */
  async close(): Promise<void> {
    const client = this.client;
    if (!client) return;
    await this.tail.catch(() => {});
    this.client = undefined;
    if (this.inTransaction && !this.broken) await client.query('ROLLBACK').catch(() => {});
    this.inTransaction = false;
    await client.end().catch(() => {});
  }

  /* ------------------------------------------------------------ internals */

  private serial<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      if (!this.client) throw new StateError('E_STATE_CLOSED', `${this.where}: the state store is not open`, this.where);
      return work(this.client);
    });
    this.tail = run.catch(() => {});
    return run;
  }

  private async begin(client: pg.Client): Promise<void> {
    if (this.broken) {
      throw new StateError(
        'E_STATE_TRANSACTION',
        `${this.where}: the checkpoint transaction is lost (${errorMessage(this.broken)}): nothing since the last checkpoint is committed; a restart resumes from it`,
        this.where,
        { cause: this.broken },
      );
    }
    if (this.inTransaction) return;
    await client.query('BEGIN');
    this.inTransaction = true;
  }

  /** COMMIT, refusing the silent ROLLBACK PostgreSQL answers for a transaction an error aborted. */
  private async commitOrThrow(client: pg.Client): Promise<void> {
    const res = await client.query('COMMIT');
    this.inTransaction = false;
    if (res.command !== 'COMMIT') throw new StateError('E_STATE_TRANSACTION', `${this.where}: the transaction was rolled back by the server (${res.command})`, this.where);
  }

  private async rollback(client: pg.Client): Promise<void> {
    this.inTransaction = false;
    await client.query('ROLLBACK').catch(() => {});
  }

  private asStateError(err: unknown, what: string): SluiceError {
    if (err instanceof SluiceError) return err;
    return new StateError('E_STATE_TRANSACTION', `${this.where}: ${what}: ${errorMessage(err)}`, this.where, { cause: err });
  }
}
