/**
 * How sluice connects to a Kafka cluster: the broker list, client id, SASL and TLS, as components
 * take them from a spec, and their translation into the client library's configuration.
 *
 * Pure functions except `loadTlsMaterial`, which reads certificate files when a path is given.
 */
import { readFileSync } from 'node:fs';
import type { JsonSchema } from '../../engine/component.ts';
import { ConfigError, errorMessage } from '../../engine/errors.ts';
import { object, secret } from '../../engine/schema.ts';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

export const SASL_MECHANISMS: readonly SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];

export interface SaslSettings {
  mechanism: SaslMechanism;
  username: string;
  password: string;
}

/**
 * TLS towards the brokers. `ca`, `cert` and `key` are each PEM text (starting `-----BEGIN`) or a
 * path to a PEM file, so they can come from `${ENV}` either way.
 */
export interface TlsSettings {
  ca?: string;
  cert?: string;
  key?: string;
  /** Verify the brokers' certificates (default true). Turn off only for a test cluster. */
  rejectUnauthorized?: boolean;
}

export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  sasl?: SaslSettings;
  /** `true`: TLS with the system's CAs. */
  tls?: TlsSettings | true;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;

/**
 * Broker addresses from a spec value: a list, or one string holding a comma-separated list (the
 * form `${KAFKA_BROKERS}` expands to). Each must be `host:port`.
 */
export function parseBrokers(value: string | readonly string[], where?: string): string[] {
  const parts = (typeof value === 'string' ? [value] : value).flatMap((v) => v.split(','));
  const brokers = parts.map((p) => p.trim()).filter((p) => p.length > 0);
  if (brokers.length === 0) throw new ConfigError('E_KAFKA_BROKERS', 'no broker address given', where);
  for (const b of brokers) {
    const m = HOST_PORT.exec(b);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) {
      throw new ConfigError('E_KAFKA_BROKERS', `broker address \`${b}\` is not host:port (e.g. localhost:9092)`, where);
    }
  }
  return brokers;
}

function isPem(text: string): boolean {
  return text.trimStart().startsWith('-----BEGIN');
}

/** PEM text as given, or the contents of the file it names. */
export function readPem(value: string, what: string, where?: string): string {
  if (isPem(value)) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    throw new ConfigError('E_KAFKA_TLS', `cannot read the TLS ${what} file \`${value}\`: ${errorMessage(err)}`, where);
  }
}

export interface TlsMaterial {
  ca?: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

/** Resolves TLS settings into what Node's tls module takes (reads files named by path). */
export function loadTlsMaterial(tls: TlsSettings | true, where?: string): TlsMaterial {
  if (tls === true) return { rejectUnauthorized: true };
  const out: TlsMaterial = { rejectUnauthorized: tls.rejectUnauthorized ?? true };
  if (tls.ca) out.ca = [readPem(tls.ca, 'CA', where)];
  if (tls.cert) out.cert = readPem(tls.cert, 'certificate', where);
  if (tls.key) out.key = readPem(tls.key, 'key', where);
  if ((out.cert === undefined) !== (out.key === undefined)) {
    throw new ConfigError('E_KAFKA_TLS', 'a TLS client certificate needs both `cert` and `key`', where);
  }
  return out;
}

/** A one-line description of a connection for logs and `sluice graph`: never the credentials. */
export function describeConnection(conn: Pick<KafkaConnection, 'brokers' | 'sasl' | 'tls'>): string {
  const extras: string[] = [];
  if (conn.tls) extras.push('tls');
  if (conn.sasl) extras.push(`sasl ${conn.sasl.mechanism} as ${conn.sasl.username}`);
  return conn.brokers.join(',') + (extras.length ? ` (${extras.join(', ')})` : '');
}

/* ------------------------------------------------------ spec-level settings, shared by source and sink */

/** The connection fields as they appear in a component's config (snake_case, as in specs). */
export interface ConnectionConfig {
  brokers: string | string[];
  client_id?: string;
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
  tls?: boolean | { ca?: string; cert?: string; key?: string; reject_unauthorized?: boolean };
}

/** Builds a KafkaConnection from a component's config. Throws ConfigError naming `where`. */
export function connectionFromConfig(config: ConnectionConfig, defaultClientId: string, where: string): KafkaConnection {
  const conn: KafkaConnection = {
    brokers: parseBrokers(config.brokers, where),
    clientId: config.client_id ?? defaultClientId,
  };
  if (config.sasl) {
    if (!SASL_MECHANISMS.includes(config.sasl.mechanism)) {
      throw new ConfigError('E_KAFKA_SASL', `unknown SASL mechanism \`${config.sasl.mechanism}\``, where);
    }
    conn.sasl = { mechanism: config.sasl.mechanism, username: config.sasl.username, password: config.sasl.password };
  }
  if (config.tls === true) conn.tls = true;
  else if (config.tls && typeof config.tls === 'object') {
    const t: TlsSettings = {};
    if (config.tls.ca !== undefined) t.ca = config.tls.ca;
    if (config.tls.cert !== undefined) t.cert = config.tls.cert;
    if (config.tls.key !== undefined) t.key = config.tls.key;
    if (config.tls.reject_unauthorized !== undefined) t.rejectUnauthorized = config.tls.reject_unauthorized;
    conn.tls = t;
  }
  return conn;
}

/** `describeConnection` straight from a component's config, for `describe()` (which runs before any parsing). */
export function describeConnectionConfig(config: ConnectionConfig): string {
  const brokers = typeof config.brokers === 'string' ? config.brokers.split(',').map((b) => b.trim()) : config.brokers;
  return describeConnection({
    brokers,
    ...(config.sasl ? { sasl: { ...config.sasl, password: '***' } } : {}),
    ...(config.tls ? { tls: true as const } : {}),
  });
}

/** Schema properties of the connection fields, the same in the kafka source and sink. */
export function connectionSchemaProperties(): Record<string, JsonSchema> {
  return {
    brokers: {
      description:
        'Bootstrap brokers, `host:port`: a list, or one comma-separated string (the usual form of `${KAFKA_BROKERS}`).',
      examples: ['${KAFKA_BROKERS:-localhost:9092}', ['kafka-1:9092', 'kafka-2:9092']],
      oneOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
      ],
    },
    client_id: {
      type: 'string',
      minLength: 1,
      description: 'Client id the brokers see in their logs and quotas. Default: `sluice-<node name>`.',
      examples: ['employee-activity'],
    },
    sasl: object(
      'SASL authentication. Use with `tls` on networks you do not trust: SASL/PLAIN sends the password as is.',
      {
        mechanism: {
          type: 'string',
          enum: [...SASL_MECHANISMS],
          description: 'SASL mechanism.',
          examples: ['scram-sha-512'],
        },
        username: { type: 'string', minLength: 1, description: 'SASL user name.', examples: ['${KAFKA_USER}'] },
        password: secret('SASL password. Redacted from logs and `sluice graph`.', ['${KAFKA_PASSWORD}']),
      },
      ['mechanism', 'username', 'password'],
    ),
    tls: {
      description:
        'TLS towards the brokers: `true` for the system CAs, or an object. `ca`, `cert` and `key` take PEM text or a file path.',
      examples: [true, { ca: '${KAFKA_CA_FILE}', reject_unauthorized: true }],
      oneOf: [
        { type: 'boolean' },
        object('TLS settings.', {
          ca: { type: 'string', minLength: 1, description: 'CA certificate(s), PEM text or file path.', examples: ['/etc/kafka/ca.pem'] },
          cert: { type: 'string', minLength: 1, description: 'Client certificate, PEM text or file path (mutual TLS).', examples: ['/etc/kafka/client.pem'] },
          key: secret('Client private key, PEM text or file path (mutual TLS). Redacted from logs.', ['${KAFKA_CLIENT_KEY}']),
          reject_unauthorized: {
            type: 'boolean',
            default: true,
            description: 'Verify the brokers\' certificates. Turn off only for a test cluster with self-signed certificates.',
            examples: [true],
          },
        }),
      ],
    },
  };
}
