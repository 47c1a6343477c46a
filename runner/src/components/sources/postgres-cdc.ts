/**
 * `postgres-cdc` source: PostgreSQL change capture without Kafka Connect. Logical replication with
 * the built-in pgoutput plugin; every change becomes the same Debezium 2.7 envelope ({schema,
 * payload}) the real connector writes, so a pipeline reading `format: debezium` runs unchanged on
 * either. One partition per table.
 *
 * Positions: the slot's confirmed LSN moves to a transaction's end only after every record of that
 * transaction, and of all before it, was acknowledged by the sinks. A crash re-delivers, never
 * loses; duplicates carry the same (source.txId, source.lsn, source.table, key).
 */
import pg from 'pg';
import { Ack } from '../../engine/ack.ts';
import type { ComponentContext, Source, SourceDef, SourceHealth, SourceOutput } from '../../engine/component.ts';
import type { MetricDefinition } from '../../engine/metrics.ts';
import { parseDuration } from '../../engine/duration.ts';
import { ConfigError, ConnectionError, errorMessage } from '../../engine/errors.ts';
import type { Logger } from '../../engine/logger.ts';
import type { RawMessage } from '../../engine/record.ts';
import { duration, object } from '../../engine/schema.ts';
import { ConfirmTracker } from '../../io/pgoutput/confirm-tracker.ts';
import type { XLogDataFrame } from '../../io/pgoutput/frames.ts';
import type { Lsn } from '../../io/pgoutput/lsn.ts';
import { formatLsn } from '../../io/pgoutput/lsn.ts';
import type { PgOutputMessage, RelationMessage, TupleValue } from '../../io/pgoutput/protocol.ts';
import { parsePgOutputMessage } from '../../io/pgoutput/protocol.ts';
import { ReplicationSession } from '../../io/pgoutput/replication-stream.ts';
import type { TableInfo, TableRef } from '../../io/postgres/catalog.ts';
import { parseTableName, publicationTables, qualifiedName, slotInfo, slotLagBytes, tableInfoByName, tableInfoByOid, walLevel } from '../../io/postgres/catalog.ts';
import type { CapturedTable, ChangeFacts, Row, TextRow } from '../../io/postgres/change-events.ts';
import { captureTable, encodeKey, encodeRow, encodeValue, sameKey, tupleText } from '../../io/postgres/change-events.ts';
import type { PgConnectionConfig } from '../../io/postgres/connection.ts';
import { describeConnection, pgConnectionSchemaProperties, qualifiedIdent, quoteIdent, sqlState, toClientConfig } from '../../io/postgres/connection.ts';
import { stringifyJson } from '../../engine/json.ts';

export interface PostgresCdcConfig extends PgConnectionConfig {
  slot: string;
  publication: string;
  tables: string[];
  create?: boolean;
  snapshot?: 'initial' | 'never';
  heartbeat?: string;
  topic_prefix?: string;
  batch_size?: number;
  tombstones?: boolean;
  reconnect_timeout?: string;
}

const IDENT = '^[a-z_][a-z0-9_]*$';

const schema = object(
  'Capture row changes of PostgreSQL tables through a logical replication slot (pgoutput), as Debezium 2.7 envelopes.',
  {
    ...pgConnectionSchemaProperties(),
    slot: {
      type: 'string',
      pattern: IDENT,
      description: 'Replication slot name. The slot remembers the confirmed position across restarts; it is reused when it exists.',
      examples: ['sluice_employee_slot'],
    },
    publication: {
      type: 'string',
      minLength: 1,
      description: 'Publication naming the captured tables; reused when it exists, created `FOR TABLE <tables>` otherwise (with `create`).',
      examples: ['sluice_employee_publication'],
    },
    tables: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_$]*(\\.[A-Za-z_][A-Za-z0-9_$]*)?$' },
      description: 'Tables to capture, `schema.table` (schema defaults to public), as in Debezium\'s table.include.list.',
      examples: [['public.employees', 'public.employee_activities']],
    },
    create: {
      type: 'boolean',
      default: true,
      description: 'Create the publication, then the slot, when they do not exist. With false a missing one is an error that says what to run.',
      examples: [true],
    },
    snapshot: {
      type: 'string',
      enum: ['initial', 'never'],
      default: 'initial',
      description: '`initial`: when the slot is created, first emit every existing row (op `r`) from the slot\'s exported snapshot, then stream from its consistent point. `never`: stream only.',
      examples: ['initial'],
    },
    heartbeat: duration('How often a quiet slot is moved to the server\'s current position when nothing is in flight, so WAL does not pile up.', ['10s']),
    topic_prefix: {
      type: 'string',
      minLength: 1,
      description: 'Debezium\'s topic.prefix: names `source.name` and the schema names `<prefix>.<schema>.<table>.Value`. Defaults to the database name.',
      examples: ['employee-server'],
    },
    batch_size: {
      type: 'integer',
      minimum: 1,
      maximum: 100000,
      default: 1000,
      description: 'Most changes handed to the pipeline in one batch.',
      examples: [1000],
    },
    tombstones: {
      type: 'boolean',
      default: true,
      description: 'After a delete, also emit a record with the same key and a null value, as Debezium does (tombstones.on.delete).',
      examples: [true],
    },
    reconnect_timeout: duration('How long to keep reconnecting after the server went away (e.g. restarted) before the run fails.', ['60s']),
  },
  ['host', 'database', 'user', 'slot', 'publication', 'tables'],
  {
    examples: [
      {
        host: '${PGHOST:-127.0.0.1}',
        database: 'streaming_db',
        user: 'postgres',
        slot: 'sluice_employee_slot',
        publication: 'sluice_employee_publication',
        tables: ['public.employee_activities'],
        topic_prefix: 'employee-server',
      },
    ],
  },
);

/** The engine-wide partition id of a captured table. */
export function partitionId(source: string, topic: string): string {
  return `${source}/${topic}`;
}

/** Debezium's snapshot marker of the i-th of n snapshot rows. */
export function snapshotMarker(index: number, total: number): string {
  if (index === total - 1) return 'last';
  return index === 0 ? 'first' : 'true';
}

/** A change position: the transaction's commit LSN, then the change's own LSN. */
interface Position {
  commit: Lsn;
  change: Lsn;
}

function after(a: Position, b: Position): boolean {
  return a.commit > b.commit || (a.commit === b.commit && a.change > b.change);
}

interface PendingChange {
  partition: string;
  message: RawMessage;
}

/** Where a change lands, the same for every message one WAL change makes. */
interface ChangeAt {
  table: CapturedTable;
  partition: string;
  offset: string;
  facts: ChangeFacts;
}

/** Items the reader hands the processing loop: frames, or the note that the session was replaced. */
type QueueItem = { kind: 'frame'; frame: XLogDataFrame } | { kind: 'reconnected' };

const HIGH_WATER = 5000;
const LOW_WATER = 1000;

function slotMissingHelp(cfg: PostgresCdcConfig): string {
  return (
    `replication slot "${cfg.slot}" does not exist in ${cfg.database}. ` +
    `If it was dropped, the changes since its last confirmed position are gone: start again with a new initial snapshot ` +
    `(set \`create: true\`, the default), or create it by hand: SELECT pg_create_logical_replication_slot('${cfg.slot}', 'pgoutput');`
  );
}

function publicationMissingHelp(cfg: PostgresCdcConfig, tables: TableRef[]): string {
  const list = tables.map(qualifiedIdent).join(', ');
  return `publication "${cfg.publication}" does not exist in ${cfg.database}: set \`create: true\`, or run CREATE PUBLICATION ${quoteIdent(cfg.publication)} FOR TABLE ${list};`;
}

/** Classifies an error that ended the replication stream: fatal (with what to do) or worth a reconnect. */
export function classifyStreamError(err: unknown, cfg: PostgresCdcConfig, tables: TableRef[]): { fatal: Error } | { retry: string } {
  const msg = errorMessage(err);
  if (/replication slot .* does not exist/i.test(msg)) return { fatal: new ConnectionError('E_CDC_SLOT_MISSING', slotMissingHelp(cfg), cfg.slot, { cause: err }) };
  if (/publication .* does not exist/i.test(msg)) {
    return { fatal: new ConnectionError('E_CDC_PUBLICATION_MISSING', publicationMissingHelp(cfg, tables), cfg.publication, { cause: err }) };
  }
  if (/is active for PID/i.test(msg)) {
    return { fatal: new ConnectionError('E_CDC_SLOT_BUSY', `replication slot "${cfg.slot}" is in use by another connection: ${msg}`, cfg.slot, { cause: err }) };
  }
  const state = sqlState(err);
  // Class 08 (connection), 57 (operator intervention: shutdown, terminate) and socket errors: reconnect.
  if (state === undefined || state.startsWith('08') || state.startsWith('57')) return { retry: msg };
  return { fatal: new ConnectionError('E_CDC_STREAM', `replication stream failed: ${msg}`, cfg.slot, { cause: err }) };
}

const SLOT_LAG = 'sluice_cdc_slot_lag_bytes';

const CDC_METRICS: readonly MetricDefinition[] = [
  {
    name: SLOT_LAG,
    type: 'gauge',
    help: "Bytes of WAL between the server's current position and the replication slot's confirmed position: what the server keeps on disk for this source.",
    labels: ['node', 'slot'],
  },
  { name: 'sluice_cdc_truncates_skipped_total', type: 'counter', help: 'TRUNCATE statements on captured tables, skipped (as Debezium skips them by default).', labels: ['node'] },
];

class PostgresCdcSource implements Source {
  readonly bounded = false;
  private readonly log: Logger;
  private readonly prefix: string;
  private readonly batchSize: number;
  private readonly heartbeatMs: number;
  private readonly reconnectTimeoutMs: number;

  private admin: pg.Client | undefined;
  private adminBroken = false;
  private session: ReplicationSession | undefined;
  private tracker: ConfirmTracker | undefined;
  private stopping = false;
  private fatal: Error | undefined;

  /* streaming state */
  private readonly queue: QueueItem[] = [];
  private wake: (() => void) | undefined;
  private paused = false;
  private busy = false;
  private lastKeepalive: Lsn = 0n;
  private readonly relations = new Map<number, CapturedTable | null>();
  private txn: { xid: number; commitLsn: Lsn; commitMicros: bigint } | undefined;
  private lastCommitLsn: Lsn | null = null;
  /** Position of the last change handed to the pipeline: after a reconnect, older ones are skipped. */
  private emittedThrough: Position = { commit: 0n, change: 0n };
  private pending: PendingChange[] = [];
  /** End LSN of the last transaction whose changes are all in `pending` or already emitted. */
  private pendingThrough: Lsn | undefined;
  private tableRefs: TableRef[] = [];
  /** A replication session is open and streaming. */
  private streaming = false;
  private unregisterLag: (() => void) | undefined;
  private lagRead: Promise<void> | undefined;
  private lagReadAt = 0;

  constructor(
    private readonly cfg: PostgresCdcConfig,
    private readonly ctx: ComponentContext,
  ) {
    this.log = ctx.logger.child({ source: ctx.name, kind: 'postgres-cdc' });
    this.prefix = cfg.topic_prefix ?? cfg.database;
    this.batchSize = cfg.batch_size ?? 1000;
    this.heartbeatMs = parseDuration(cfg.heartbeat ?? '10s');
    this.reconnectTimeoutMs = parseDuration(cfg.reconnect_timeout ?? '60s');
    ctx.metrics.define(...CDC_METRICS);
  }

  /** Connected while a replication session streams, or while the catalog connection takes the initial snapshot. */
  health(): SourceHealth {
    if (this.streaming) return { connected: true };
    if (!this.tracker && this.admin && !this.adminBroken) return { connected: true, detail: 'setting up the slot and the initial snapshot' };
    return { connected: false, detail: `no replication session with ${describeConnection(this.cfg)}` };
  }

  /** The slot's lag in bytes of WAL, read before a scrape at most every 2 s (one catalog query). */
  private refreshSlotLag(): Promise<void> {
    if (this.lagRead) return this.lagRead;
    if (Date.now() - this.lagReadAt < 2_000 || !this.admin || this.adminBroken) return Promise.resolve();
    const admin = this.admin;
    this.lagRead = slotLagBytes(admin, this.cfg.slot)
      .then((lag) => {
        const labels = { node: this.ctx.name, slot: this.cfg.slot };
        if (lag === undefined) this.ctx.metrics.remove(SLOT_LAG, labels);
        else this.ctx.metrics.set(SLOT_LAG, labels, lag);
      })
      .finally(() => {
        this.lagRead = undefined;
        this.lagReadAt = Date.now();
      });
    return this.lagRead;
  }

  /** The catalog connection, opened again when the server dropped it (e.g. after a restart). */
  private async catalog(): Promise<pg.Client> {
    if (this.admin && !this.adminBroken) return this.admin;
    await this.admin?.end().catch(() => {});
    const admin = new pg.Client(toClientConfig(this.cfg, { applicationName: `sluice-${this.ctx.name}` }));
    admin.on('error', (err: Error) => {
      this.adminBroken = true;
      this.log.warn({ err: err.message }, 'catalog connection lost');
    });
    try {
      await admin.connect();
    } catch (err) {
      throw new ConnectionError('E_CDC_CONNECT', `cannot connect to ${describeConnection(this.cfg)}: ${errorMessage(err)}`, this.ctx.name, { cause: err });
    }
    this.admin = admin;
    this.adminBroken = false;
    return admin;
  }

  async run(out: SourceOutput): Promise<void> {
    this.unregisterLag ??= this.ctx.metrics.addCollector(() => this.refreshSlotLag());
    const admin = await this.catalog();
    const level = await walLevel(admin);
    if (level !== 'logical') {
      throw new ConnectionError(
        'E_CDC_WAL_LEVEL',
        `wal_level is ${level} on ${describeConnection(this.cfg)}; logical replication needs wal_level=logical: ` +
          `run scripts/postgres-setup.sh, or ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL`,
        this.ctx.name,
      );
    }
    const tables = await this.resolveTables(admin);
    this.tableRefs = tables;
    // Before the snapshot: every table's partition holds the watermark back from its first record.
    out.assign(tables.map((t) => partitionId(this.ctx.name, `${this.prefix}.${t.schema}.${t.table}`)));
    await this.ensurePublication(admin, tables);
    const startLsn = await this.openSlot(admin, tables, out);
    if (this.stopping) return;
    this.tracker = new ConfirmTracker(startLsn);
    this.emittedThrough = { commit: startLsn, change: startLsn };
    this.log.info({ slot: this.cfg.slot, from: formatLsn(startLsn) }, 'streaming changes');
    const heartbeat = setInterval(() => this.heartbeat(), this.heartbeatMs);
    heartbeat.unref();
    try {
      await Promise.all([this.maintainSession(), this.processLoop(out)]);
    } finally {
      clearInterval(heartbeat);
    }
    if (this.fatal) throw this.fatal;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.session?.close();
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    this.unregisterLag?.();
    this.unregisterLag = undefined;
    await this.lagRead?.catch(() => {});
    await this.session?.close();
    await this.admin?.end().catch(() => {});
  }

  /* ------------------------------------------------------------ setup */

  private async resolveTables(admin: pg.Client): Promise<TableInfo[]> {
    const infos: TableInfo[] = [];
    for (const name of this.cfg.tables) {
      const ref = parseTableName(name);
      const info = await tableInfoByName(admin, ref);
      if (!info) throw new ConfigError('E_CDC_TABLE', `table ${qualifiedName(ref)} does not exist in ${this.cfg.database}`, this.ctx.name);
      // Refuse undecodable columns now, before a slot is created for a capture that cannot run.
      captureTable(info, info.columns.map((c) => c.name), this.prefix);
      infos.push(info);
    }
    return infos;
  }

  private async ensurePublication(admin: pg.Client, tables: TableInfo[]): Promise<void> {
    const published = await publicationTables(admin, this.cfg.publication);
    if (!published) {
      if (this.cfg.create === false) throw new ConfigError('E_CDC_PUBLICATION_MISSING', publicationMissingHelp(this.cfg, tables), this.ctx.name);
      const list = tables.map(qualifiedIdent).join(', ');
      await admin.query(`CREATE PUBLICATION ${quoteIdent(this.cfg.publication)} FOR TABLE ${list}`);
      this.log.info({ publication: this.cfg.publication }, 'created publication');
      return;
    }
    const missing = tables.filter((t) => !published.some((p) => p.schema === t.schema && p.table === t.table));
    if (missing.length > 0) {
      const list = missing.map(qualifiedIdent).join(', ');
      throw new ConfigError(
        'E_CDC_PUBLICATION_TABLES',
        `publication "${this.cfg.publication}" does not include ${missing.map(qualifiedName).join(', ')}: run ALTER PUBLICATION ${quoteIdent(this.cfg.publication)} ADD TABLE ${list};`,
        this.ctx.name,
      );
    }
  }

  /** Reuses or creates the slot (taking the initial snapshot when created); returns where streaming starts. */
  private async openSlot(admin: pg.Client, tables: TableInfo[], out: SourceOutput): Promise<Lsn> {
    const existing = await slotInfo(admin, this.cfg.slot);
    if (existing) {
      if (existing.slotType !== 'logical' || existing.plugin !== 'pgoutput' || existing.database !== this.cfg.database) {
        throw new ConfigError(
          'E_CDC_SLOT_KIND',
          `replication slot "${this.cfg.slot}" is a ${existing.slotType} slot for plugin ${existing.plugin ?? '-'} on database ${existing.database ?? '-'}; ` +
            `postgres-cdc needs a logical pgoutput slot on ${this.cfg.database}: choose another \`slot\``,
          this.ctx.name,
        );
      }
      if (existing.active) {
        throw new ConnectionError('E_CDC_SLOT_BUSY', `replication slot "${this.cfg.slot}" is in use by process ${existing.activePid ?? '?'}: another reader holds it`, this.ctx.name);
      }
      this.log.info({ slot: this.cfg.slot }, 'reusing replication slot');
      return existing.confirmedFlush ?? 0n;
    }
    if (this.cfg.create === false) throw new ConfigError('E_CDC_SLOT_MISSING', slotMissingHelp(this.cfg), this.ctx.name);
    const session = await ReplicationSession.connect(this.cfg, `sluice-${this.ctx.name}`);
    try {
      const wantSnapshot = (this.cfg.snapshot ?? 'initial') === 'initial';
      const created = await session.createSlot(this.cfg.slot, wantSnapshot);
      this.log.info({ slot: this.cfg.slot, consistentPoint: formatLsn(created.consistentPoint) }, 'created replication slot');
      if (wantSnapshot && created.snapshotName) await this.snapshot(tables, created.snapshotName, created.consistentPoint, out);
      return created.consistentPoint;
    } finally {
      // The exported snapshot lives until this connection runs another command; the snapshot
      // transaction imported it before, so it can go now.
      await session.close();
    }
  }

  /* ------------------------------------------------------------ initial snapshot */

  private async snapshot(tables: TableInfo[], snapshotName: string, consistentPoint: Lsn, out: SourceOutput): Promise<void> {
    const reader = new pg.Client({
      ...toClientConfig(this.cfg, { applicationName: `sluice-${this.ctx.name}-snapshot` }),
      // Every value as the text the type's output function prints, like pgoutput sends it.
      types: { getTypeParser: () => (text: string) => text },
    });
    await reader.connect();
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query(`SET TRANSACTION SNAPSHOT '${snapshotName.replace(/'/g, "''")}'`);
      // Debezium puts the snapshot transaction's id in source.txId.
      const txRes = await reader.query('SELECT txid_current() AS x');
      const txId = Number(txRes.rows[0]?.x);
      const snapshotMicros = BigInt(Date.now()) * 1000n;
      const counts: number[] = [];
      for (const t of tables) {
        const res = await reader.query(`SELECT count(*) AS n FROM ${qualifiedIdent(t)}`);
        counts.push(Number(res.rows[0]?.n ?? 0));
      }
      const total = counts.reduce((a, b) => a + b, 0);
      let index = 0;
      for (const t of tables) {
        const names = t.columns.map((c) => c.name);
        const table = captureTable(t, names, this.prefix);
        const partition = partitionId(this.ctx.name, table.topic);
        const cursor = `sluice_snapshot_${t.oid}`;
        await reader.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${names.map(quoteIdent).join(', ')} FROM ${qualifiedIdent(t)}`);
        for (;;) {
          if (this.stopping) return;
          const res = await reader.query({ text: `FETCH ${this.batchSize} FROM ${cursor}`, rowMode: 'array' });
          if (res.rows.length === 0) break;
          const messages: RawMessage[] = [];
          for (const values of res.rows as (string | null)[][]) {
            const row = encodeRow(table, values);
            const facts: ChangeFacts = {
              op: 'r',
              snapshot: snapshotMarker(index, total),
              db: this.cfg.database,
              topicPrefix: this.prefix,
              txId,
              lsn: consistentPoint,
              lastCommitLsn: null,
              commitMicros: snapshotMicros,
              processedNanos: BigInt(this.ctx.clock.now()) * 1_000_000n,
            };
            messages.push(this.message(table, partition, `snapshot/${index}`, encodeKey(table, row), encodeValue(table, facts, null, row), snapshotMicros));
            index++;
          }
          // Snapshot rows need no slot confirmation: the slot already starts after them.
          await out.emit({ partition, messages, ack: new Ack(() => {}) });
        }
        await reader.query(`CLOSE ${cursor}`);
      }
      await reader.query('COMMIT');
      this.log.info({ rows: total, tables: tables.length }, 'initial snapshot emitted');
    } finally {
      await reader.end().catch(() => {});
    }
  }

  /* ------------------------------------------------------------ streaming */

  /** Keeps a replication session open, reconnecting after the server went away. */
  private async maintainSession(): Promise<void> {
    let failingSince: number | undefined;
    let attempt = 0;
    while (!this.stopping && !this.fatal) {
      let session: ReplicationSession | undefined;
      try {
        session = await ReplicationSession.connect(this.cfg, `sluice-${this.ctx.name}`);
        this.session = session;
        const streaming = session.start(
          { slot: this.cfg.slot, publications: [this.cfg.publication], startLsn: this.tracker!.confirmed, statusIntervalMs: Math.min(this.heartbeatMs, 10_000) },
          {
            onData: (frame) => this.enqueue({ kind: 'frame', frame }),
            onKeepalive: (frame) => {
              this.lastKeepalive = frame.walEnd;
              // Runs before the session answers a reply request: a server shutting down waits until the
              // client confirms everything sent, so when all is acknowledged we confirm its position.
              if (frame.replyRequested) this.heartbeat(false);
            },
          },
        );
        if (this.paused) session.pause();
        this.streaming = true;
        if (failingSince !== undefined) this.log.info({ slot: this.cfg.slot, from: formatLsn(this.tracker!.confirmed) }, 'reconnected: resuming from the slot');
        failingSince = undefined;
        attempt = 0;
        await streaming;
        this.streaming = false;
        return;
      } catch (err) {
        this.streaming = false;
        await session?.close();
        if (this.stopping) return;
        const verdict = classifyStreamError(err, this.cfg, this.tableRefs);
        if ('fatal' in verdict) {
          this.fail(verdict.fatal);
          return;
        }
        failingSince ??= Date.now();
        if (Date.now() - failingSince > this.reconnectTimeoutMs) {
          this.fail(new ConnectionError('E_CDC_CONNECT', `lost ${describeConnection(this.cfg)} and could not reconnect within ${this.cfg.reconnect_timeout ?? '60s'}: ${verdict.retry}`, this.ctx.name, { cause: err }));
          return;
        }
        this.log.warn({ err: verdict.retry, attempt }, 'replication connection lost; reconnecting');
        this.enqueue({ kind: 'reconnected' });
        attempt++;
        await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 2000)));
      }
    }
  }

  private fail(err: Error): void {
    this.fatal ??= err;
    this.wake?.();
  }

  private enqueue(item: QueueItem): void {
    this.queue.push(item);
    if (!this.paused && this.queue.length >= HIGH_WATER) {
      this.paused = true;
      this.session?.pause();
    }
    this.wake?.();
  }

  private async next(): Promise<QueueItem | undefined> {
    while (this.queue.length === 0) {
      if (this.stopping || this.fatal) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
    const item = this.queue.shift();
    if (this.paused && this.queue.length <= LOW_WATER) {
      this.paused = false;
      this.session?.resume();
    }
    return item;
  }

  private async processLoop(out: SourceOutput): Promise<void> {
    for (;;) {
      const item = await this.next();
      if (!item || this.stopping || this.fatal) return;
      this.busy = true;
      try {
        if (item.kind === 'reconnected') {
          this.abandonTransaction();
        } else {
          await this.handle(parsePgOutputMessage(item.frame.data), item.frame.walStart, out);
        }
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      } finally {
        this.busy = false;
      }
    }
  }

  /** The session died inside a transaction: the server sends it again whole, so drop what was not handed over. */
  private abandonTransaction(): void {
    if (!this.txn) return;
    const commit = this.txn.commitLsn;
    this.pending = this.pending.filter((p) => BigInt(p.message.position.offset.split('/')[0]!) !== commit);
    this.txn = undefined;
  }

  private async handle(msg: PgOutputMessage, walStart: Lsn, out: SourceOutput): Promise<void> {
    switch (msg.tag) {
      case 'begin':
        if (this.txn) this.abandonTransaction();
        this.txn = { xid: msg.xid, commitLsn: msg.finalLsn, commitMicros: msg.commitTimeMicros };
        return;
      case 'relation':
        await this.onRelation(msg);
        return;
      case 'insert':
      case 'update':
      case 'delete':
        this.onChange(msg, walStart);
        if (this.pending.length >= this.batchSize) await this.flush(out);
        return;
      case 'commit':
        this.txn = undefined;
        this.lastCommitLsn = msg.endLsn;
        if (msg.endLsn > (this.pendingThrough ?? 0n)) this.pendingThrough = msg.endLsn;
        if (this.pending.length >= this.batchSize || this.queue.length === 0) await this.flush(out);
        return;
      case 'truncate':
        // Debezium skips truncates by default (skipped.operations=t); so does this source.
        this.ctx.metrics.inc('sluice_cdc_truncates_skipped_total', { node: this.ctx.name });
        this.log.warn({ relations: msg.relationOids }, 'TRUNCATE is not captured (as Debezium by default)');
        return;
      default:
        return; // origin, type, message: nothing to emit
    }
  }

  private async onRelation(msg: RelationMessage): Promise<void> {
    const wanted = this.tableRefs.some((t) => t.schema === msg.namespace && t.table === msg.name);
    if (!wanted) {
      this.relations.set(msg.relationOid, null);
      return;
    }
    const info = await tableInfoByOid(await this.catalog(), msg.relationOid);
    if (!info) throw new ConnectionError('E_CDC_TABLE', `table ${msg.namespace}.${msg.name} (oid ${msg.relationOid}) disappeared from the catalog`, this.ctx.name);
    this.relations.set(msg.relationOid, captureTable(info, msg.columns.map((c) => c.name), this.prefix));
  }

  private onChange(msg: Extract<PgOutputMessage, { tag: 'insert' | 'update' | 'delete' }>, walStart: Lsn): void {
    const txn = this.txn;
    if (!txn) throw new ConnectionError('E_CDC_PROTOCOL', `a ${msg.tag} arrived outside a transaction at ${formatLsn(walStart)}`, this.ctx.name);
    const table = this.relations.get(msg.relationOid);
    if (table === undefined) throw new ConnectionError('E_CDC_PROTOCOL', `a ${msg.tag} for relation ${msg.relationOid} arrived before its Relation message`, this.ctx.name);
    if (table === null) return;
    const position = { commit: txn.commitLsn, change: walStart };
    if (!after(position, this.emittedThrough)) return; // re-sent after a reconnect: already handed over
    const facts: ChangeFacts = {
      op: 'c',
      snapshot: 'false',
      db: this.cfg.database,
      topicPrefix: this.prefix,
      txId: txn.xid,
      lsn: walStart,
      lastCommitLsn: this.lastCommitLsn,
      commitMicros: txn.commitMicros,
      processedNanos: BigInt(this.ctx.clock.now()) * 1_000_000n,
    };
    const at: ChangeAt = { table, partition: partitionId(this.ctx.name, table.topic), offset: `${txn.commitLsn}/${walStart}`, facts };
    if (msg.tag === 'insert') {
      const row = encodeRow(table, tupleText(msg.newTuple));
      this.pushChange(at, 'c', null, row, row);
      return;
    }
    if (msg.tag === 'delete') {
      const before = this.oldImage(table, msg.oldTuple);
      this.pushChange(at, 'd', before, null, before);
      this.pushTombstone(at, before);
      return;
    }
    const old = msg.oldTuple ? this.oldImage(table, msg.oldTuple) : null;
    const row = encodeRow(table, tupleText(msg.newTuple));
    if (old && table.keySchema && !sameKey(table, old, row)) {
      // A changed primary key: Debezium emits a delete (and tombstone) for the old key, then a create.
      // stringifyJson: an int8 key beyond 2^53 is a bigint, which JSON.stringify throws on.
      const newKey = stringifyJson(encodeKey(table, row)?.payload ?? null);
      const oldKey = stringifyJson(encodeKey(table, old)?.payload ?? null);
      // Debezium puts the new key on the delete and on its tombstone, the old key on the create.
      this.pushChange(at, 'd', old, null, old, { '__debezium.newkey': newKey });
      this.pushTombstone(at, old, { '__debezium.newkey': newKey });
      this.pushChange(at, 'c', null, row, row, { '__debezium.oldkey': oldKey });
      return;
    }
    // REPLICA IDENTITY DEFAULT sends no old image when the key is unchanged: before is null, as in Debezium.
    this.pushChange(at, 'u', msg.oldKind === 'old' ? old : null, row, row);
  }

  // Methods, not closures made per change: a backlog is hundreds of thousands of changes.
  private pushChange(at: ChangeAt, op: ChangeFacts['op'], before: Row | null, afterRow: Row | null, keyRow: Row, headers: Record<string, string> = {}): void {
    this.push(at, keyRow, encodeValue(at.table, { ...at.facts, op }, before, afterRow), headers);
  }

  private pushTombstone(at: ChangeAt, keyRow: Row, headers: Record<string, string> = {}): void {
    if (this.cfg.tombstones !== false) this.push(at, keyRow, null, headers);
  }

  private push(at: ChangeAt, keyRow: Row, value: unknown, headers: Record<string, string>): void {
    const message = this.message(at.table, at.partition, at.offset, encodeKey(at.table, keyRow), value, at.facts.commitMicros);
    message.headers = headers;
    this.pending.push({ partition: at.partition, message });
  }

  /** The old row: whole under REPLICA IDENTITY FULL; key columns only otherwise (the rest falls back). */
  private oldImage(table: CapturedTable, tuple: readonly TupleValue[]): Row {
    const values: (string | null)[] = tuple.map((v) => (v.kind === 'text' ? v.text : null));
    return encodeRow(table, values as TextRow);
  }

  private message(table: CapturedTable, partition: string, offset: string, key: unknown, value: unknown, commitMicros: bigint): RawMessage {
    return {
      key,
      value,
      headers: {},
      timestamp: Number(commitMicros / 1000n),
      position: { source: this.ctx.name, partition, offset },
      meta: { topic: table.topic },
    };
  }

  /** Hands pending changes over, one batch per table; their completion lets the slot move. */
  private async flush(out: SourceOutput): Promise<void> {
    const tracker = this.tracker!;
    const changes = this.pending;
    const through = this.pendingThrough;
    this.pending = [];
    this.pendingThrough = undefined;
    if (changes.length === 0 && through === undefined) return;
    const last = changes[changes.length - 1];
    if (last) {
      const [commit, change] = last.message.position.offset.split('/');
      this.emittedThrough = { commit: BigInt(commit!), change: BigInt(change!) };
    }
    const byPartition = new Map<string, RawMessage[]>();
    for (const c of changes) {
      let list = byPartition.get(c.partition);
      if (!list) byPartition.set(c.partition, (list = []));
      list.push(c.message);
    }
    const unit = tracker.open(through);
    let remaining = byPartition.size;
    const done = () => {
      if (tracker.complete(unit)) this.session?.acknowledge(tracker.confirmed, true);
    };
    if (remaining === 0) {
      done();
      return;
    }
    for (const [partition, messages] of byPartition) {
      const ack = new Ack(() => {
        if (--remaining === 0) done();
      });
      await out.emit({ partition, messages, ack });
    }
  }

  /** On a quiet slot, confirm the server's position once nothing is in flight. */
  private heartbeat(sendNow = true): void {
    const tracker = this.tracker;
    if (!tracker || this.busy || this.txn || this.queue.length > 0 || this.pending.length > 0) return;
    if (tracker.advanceIdle(this.lastKeepalive)) this.session?.acknowledge(tracker.confirmed, sendNow);
  }
}

export const postgresCdcSource: SourceDef<PostgresCdcConfig> = {
  family: 'source',
  name: 'postgres-cdc',
  summary: 'Capture PostgreSQL row changes through logical replication (pgoutput), emitting Debezium 2.7 envelopes without Kafka Connect.',
  description: [
    'Creates (or reuses) the publication, then the slot. With `snapshot: initial` a newly created slot first yields every',
    'existing row (op `r`) from the snapshot the slot exported, then the stream continues at the slot\'s consistent point:',
    'no gap, no overlap. Values use Debezium\'s default encodings (TIMESTAMP as io.debezium.time.MicroTimestamp, NUMERIC',
    'as Decimal, JSON as strings ...); a column type without one stops the source with an error naming it. The slot is',
    'confirmed only up to transactions whose every record the sinks acknowledged. Needs wal_level=logical.',
  ].join(' '),
  schema,
  describe: (c) =>
    `postgres-cdc ${describeConnection(c)} slot ${c.slot} publication ${c.publication} tables ${c.tables.join(',')} snapshot ${c.snapshot ?? 'initial'}`,
  create: (config, ctx) => new PostgresCdcSource(config, ctx),
};
