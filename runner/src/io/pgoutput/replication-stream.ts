/**
 * A logical replication session over `pg`: a walsender connection (`replication: 'database'`) that
 * creates slots and streams pgoutput changes through CopyBoth. It never confirms anything by itself:
 * the owner says which LSN is acknowledged (`acknowledge`), and that is the only flush position
 * reported in standby status updates, both periodically and when a keepalive asks for a reply. The
 * write position reports what was received: a server shutting down waits until it equals what it
 * sent, and it does not move the slot.
 */
import pg from 'pg';
import type { Duplex } from 'node:stream';
import type { PgConnectionConfig } from '../postgres/connection.ts';
import { quoteIdent, quoteLiteral, toClientConfig } from '../postgres/connection.ts';
import type { KeepaliveFrame, XLogDataFrame } from './frames.ts';
import { parseReplicationFrame, standbyStatusUpdate } from './frames.ts';
import type { Lsn } from './lsn.ts';
import { formatLsn, parseLsn } from './lsn.ts';

/** The part of pg's Connection that CopyBoth needs; pg has it, its typings do not. */
interface CopyBothConnection {
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): unknown;
  removeAllListeners(event: 'copyData'): unknown;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  stream: Duplex;
}

function asCopyBoth(connection: unknown): CopyBothConnection {
  const c = connection as Partial<Record<keyof CopyBothConnection, unknown>> | null;
  if (!c || typeof c.on !== 'function' || typeof c.sendCopyFromChunk !== 'function' || typeof c.endCopyFrom !== 'function' || !c.stream) {
    throw new Error('this version of pg does not expose CopyBoth (sendCopyFromChunk/endCopyFrom)');
  }
  return c as CopyBothConnection;
}

export interface CreatedSlot {
  slotName: string;
  consistentPoint: Lsn;
  /** The exported snapshot, valid until the next command on this connection. */
  snapshotName: string | null;
}

export interface StreamHandlers {
  /** Called synchronously, in WAL order, for every XLogData frame. */
  onData(frame: XLogDataFrame): void;
  onKeepalive?(frame: KeepaliveFrame): void;
}

export interface StartOptions {
  slot: string;
  publications: string[];
  /** 0 resumes from the slot's confirmed_flush_lsn (the server never goes back before it). */
  startLsn: Lsn;
  /** How often to report the acknowledged LSN even without a keepalive asking, in ms. */
  statusIntervalMs?: number;
}

export class ReplicationSession {
  private acknowledged: Lsn = 0n;
  private received: Lsn = 0n;
  private statusTimer: NodeJS.Timeout | undefined;
  private copy: CopyBothConnection | undefined;
  private streaming: Promise<void> | undefined;
  private stopping = false;
  /** The first connection-level error (e.g. server restart), kept so `start` can reject with it. */
  private failure: Error | undefined;

  private constructor(private readonly client: pg.Client) {
    client.on('error', (err: Error) => {
      this.failure ??= err;
    });
  }

  static async connect(cfg: PgConnectionConfig, applicationName: string): Promise<ReplicationSession> {
    const client = new pg.Client(toClientConfig(cfg, { replication: true, applicationName }));
    const session = new ReplicationSession(client);
    await client.connect();
    return session;
  }

  /** CREATE_REPLICATION_SLOT ... LOGICAL pgoutput, exporting a snapshot when asked. */
  async createSlot(name: string, exportSnapshot: boolean): Promise<CreatedSlot> {
    const mode = exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT';
    const res = await this.client.query(`CREATE_REPLICATION_SLOT ${quoteIdent(name)} LOGICAL pgoutput ${mode}`);
    const row: Record<string, unknown> | undefined = res.rows[0];
    const consistentPoint = row?.consistent_point;
    const snapshotName = row?.snapshot_name;
    if (typeof consistentPoint !== 'string') throw new Error('CREATE_REPLICATION_SLOT returned no consistent_point');
    return {
      slotName: name,
      consistentPoint: parseLsn(consistentPoint),
      snapshotName: typeof snapshotName === 'string' ? snapshotName : null,
    };
  }

  /**
   * Streams until `stop()` (resolves) or until the server or network ends the session (rejects).
   * Frames are delivered synchronously; call `pause()` to stop reading the socket (backpressure).
   */
  start(options: StartOptions, handlers: StreamHandlers): Promise<void> {
    if (this.streaming) throw new Error('replication already started on this session');
    const copy = asCopyBoth(this.client.connection);
    this.copy = copy;
    this.acknowledged = options.startLsn;
    const pubs = options.publications.map(quoteIdent).join(',');
    const sql =
      `START_REPLICATION SLOT ${quoteIdent(options.slot)} LOGICAL ${formatLsn(options.startLsn)} ` +
      `(proto_version '1', publication_names ${quoteLiteral(pubs)})`;
    copy.on('copyData', (msg) => {
      // pg hands out a view of its socket read buffer, which it overwrites as more data arrives;
      // frames are processed later (queued), so each keeps bytes of its own.
      const frame = parseReplicationFrame(Buffer.from(msg.chunk));
      if (frame.type === 'xlogdata') {
        if (frame.walStart > this.received) this.received = frame.walStart;
        handlers.onData(frame);
      } else {
        if (frame.walEnd > this.received) this.received = frame.walEnd;
        handlers.onKeepalive?.(frame);
        if (frame.replyRequested) this.sendStatus();
      }
    });
    const interval = options.statusIntervalMs ?? 10_000;
    this.statusTimer = setInterval(() => this.sendStatus(), interval);
    this.statusTimer.unref();
    this.streaming = this.client.query(sql).then(
      () => {
        this.clearTimer();
        if (!this.stopping) throw new Error('the server ended replication');
      },
      (err: unknown) => {
        this.clearTimer();
        if (this.stopping && !this.failure) return;
        throw this.failure ?? err;
      },
    );
    return this.streaming;
  }

  /** Raises the position reported to the server. Never lowers it. */
  acknowledge(lsn: Lsn, sendNow = false): void {
    if (lsn > this.acknowledged) {
      this.acknowledged = lsn;
      if (sendNow) this.sendStatus();
    }
  }

  get acknowledgedLsn(): Lsn {
    return this.acknowledged;
  }

  pause(): void {
    this.copy?.stream.pause();
  }

  resume(): void {
    this.copy?.stream.resume();
  }

  /** Ends the stream (CopyDone) after a last status update, then closes the connection. */
  async close(): Promise<void> {
    this.stopping = true;
    this.clearTimer();
    if (this.copy && this.streaming && !this.failure) {
      try {
        this.sendStatus();
        this.copy.stream.resume();
        this.copy.endCopyFrom();
        await Promise.race([this.streaming.catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
      } catch {
        // The connection is going away anyway.
      }
    }
    this.copy?.removeAllListeners('copyData');
    await this.client.end().catch(() => {});
  }

  private sendStatus(): void {
    if (!this.copy || this.failure) return;
    const nowMicros = BigInt(Date.now()) * 1000n;
    try {
      this.copy.sendCopyFromChunk(standbyStatusUpdate({ write: this.received, flush: this.acknowledged }, nowMicros));
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    }
  }

  private clearTimer(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = undefined;
  }

  /** Runs a command on the walsender (simple query protocol only). */
  async command(sql: string): Promise<Record<string, unknown>[]> {
    const res = await this.client.query(sql);
    return res.rows;
  }
}
