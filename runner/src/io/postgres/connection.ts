/**
 * How sluice components name a PostgreSQL server, and the `pg` client settings that follow.
 * Shared by the `postgres-cdc` source and the `postgres` sink.
 */
import type { ClientConfig } from 'pg';
import type { JsonSchema } from '../../engine/component.ts';
import { ConfigError } from '../../engine/errors.ts';
import { secret } from '../../engine/schema.ts';
import type { TableRef } from './catalog.ts';

export interface PgConnectionConfig {
  host: string;
  port?: number;
  database: string;
  user: string;
  password?: string;
  /** true: TLS with certificate verification; 'no-verify': TLS without it; false/absent: plain. */
  ssl?: boolean | 'no-verify';
}

export const DEFAULT_PG_PORT = 5432;

export const SESSION_OPTIONS = '-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=1 -c bytea_output=hex';

/** Config schema properties for a connection, shared by the postgres-cdc source and the postgres sink. */
export function pgConnectionSchemaProperties(): Record<string, JsonSchema> {
  return {
    host: { type: 'string', minLength: 1, description: 'PostgreSQL server host name or address.', examples: ['127.0.0.1', '${PGHOST:-127.0.0.1}'] },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: DEFAULT_PG_PORT, description: 'PostgreSQL server port.', examples: [5432] },
    database: { type: 'string', minLength: 1, description: 'Database to connect to.', examples: ['streaming_db'] },
    user: { type: 'string', minLength: 1, description: 'Role to connect as.', examples: ['postgres'] },
    password: secret('Password of the role; omit for trust or peer authentication.', ['${PGPASSWORD}']),
    ssl: {
      description: '`true`: TLS with certificate verification; `no-verify`: TLS without verification; `false`: no TLS.',
      oneOf: [{ type: 'boolean' }, { const: 'no-verify' }],
      default: false,
      examples: [false, true, 'no-verify'],
    },
  };
}

/**
 * The connection part of a validated component config (a `postgres` sink's, a `postgres-cdc`
 * source's), for a module that gets the config as it is in the plan: the state store.
 */
export function pgConnectionFromConfig(config: unknown, where: string): PgConnectionConfig {
  const fail = (what: string): never => {
    throw new ConfigError('E_PG_CONNECTION', `${where}: ${what}`, where);
  };
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return fail('not a connection config');
  const c = config as Record<string, unknown>;
  const text = (key: string): string => (typeof c[key] === 'string' && c[key] !== '' ? (c[key] as string) : fail(`\`${key}\` must be a non-empty string`));
  const conn: PgConnectionConfig = { host: text('host'), database: text('database'), user: text('user') };
  if (c.port !== undefined) conn.port = typeof c.port === 'number' && Number.isInteger(c.port) ? c.port : fail('`port` must be an integer');
  if (c.password !== undefined) conn.password = typeof c.password === 'string' ? c.password : fail('`password` must be a string');
  if (c.ssl !== undefined) conn.ssl = typeof c.ssl === 'boolean' || c.ssl === 'no-verify' ? c.ssl : fail('`ssl` must be true, false or no-verify');
  return conn;
}

/** `pg` client settings; `replication: 'database'` opens a logical replication (walsender) session. */
export function toClientConfig(cfg: PgConnectionConfig, options: { replication?: boolean; applicationName: string }): ClientConfig {
  const base: ClientConfig = {
    host: cfg.host,
    port: cfg.port ?? DEFAULT_PG_PORT,
    database: cfg.database,
    user: cfg.user,
    application_name: options.applicationName,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    // Pin the text forms values are decoded from: the snapshot and the replication stream must
    // print dates, intervals, floats and bytea alike whatever the server's defaults are.
    options: SESSION_OPTIONS,
  };
  if (cfg.password !== undefined) base.password = cfg.password;
  if (cfg.ssl === true) base.ssl = true;
  else if (cfg.ssl === 'no-verify') base.ssl = { rejectUnauthorized: false };
  // `replication` is accepted by pg's Client (it becomes the startup parameter) but is missing from
  // its typings; adding the key through a widened type keeps the rest checked.
  if (options.replication) return { ...base, replication: 'database' } as ClientConfig & { replication: string };
  return base;
}

/** `user@host:port/database`, for logs and errors (never the password). */
export function describeConnection(cfg: PgConnectionConfig): string {
  return `${cfg.user}@${cfg.host}:${cfg.port ?? DEFAULT_PG_PORT}/${cfg.database}`;
}

/** Quotes an SQL identifier: `my"table` -> `"my""table"`. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes a schema-qualified table name: `"public"."employee_activities"`. */
export function qualifiedIdent(t: TableRef): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
}

/** Quotes an SQL string literal for the simple-query-only replication protocol. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** The SQLSTATE of a server error, if the error is one. */
export function sqlState(err: unknown): string | undefined {
  // Server errors carry a severity; socket errors (EPIPE, ECONNRESET) have codes too, but no SQLSTATE.
  if (err && typeof err === 'object' && 'code' in err && 'severity' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
