import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/engine/errors.ts';
import {
  connectionFromConfig,
  describeConnection,
  describeConnectionConfig,
  loadTlsMaterial,
  parseBrokers,
  readPem,
} from '../../../src/io/kafka/connection.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('parseBrokers', () => {
  it('takes a list or a comma-separated string, trimming blanks', () => {
    expect(parseBrokers('a:9092, b:9093 ,')).toEqual(['a:9092', 'b:9093']);
    expect(parseBrokers(['a:1', 'b:2,c:3'])).toEqual(['a:1', 'b:2', 'c:3']);
    expect(parseBrokers('[::1]:9092')).toEqual(['[::1]:9092']);
  });

  it('refuses empty lists and addresses without a valid port', () => {
    expect(() => parseBrokers(' , ')).toThrow(ConfigError);
    expect(() => parseBrokers('localhost')).toThrow(/host:port/);
    expect(() => parseBrokers('localhost:99999')).toThrow(/host:port/);
    expect(() => parseBrokers('local host:9092')).toThrow(/host:port/);
  });
});

describe('TLS material', () => {
  it('takes PEM text as is and reads a path otherwise', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
    const file = join(dir, 'ca.pem');
    writeFileSync(file, PEM);
    expect(readPem(PEM, 'CA')).toBe(PEM);
    expect(readPem(file, 'CA')).toBe(PEM);
    expect(() => readPem(join(dir, 'missing.pem'), 'CA')).toThrow(/cannot read the TLS CA file/);
  });

  it('verifies certificates unless told not to, and needs cert and key together', () => {
    expect(loadTlsMaterial(true)).toEqual({ rejectUnauthorized: true });
    expect(loadTlsMaterial({ ca: PEM, rejectUnauthorized: false })).toEqual({ ca: [PEM], rejectUnauthorized: false });
    expect(() => loadTlsMaterial({ cert: PEM })).toThrow(/both `cert` and `key`/);
  });
});

describe('connectionFromConfig', () => {
  it('maps spec fields, defaulting the client id', () => {
    expect(
      connectionFromConfig(
        { brokers: 'k:9092', sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' }, tls: { ca: PEM, reject_unauthorized: false } },
        'sluice-x',
        'sources.x',
      ),
    ).toEqual({
      brokers: ['k:9092'],
      clientId: 'sluice-x',
      sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
      tls: { ca: PEM, rejectUnauthorized: false },
    });
    expect(connectionFromConfig({ brokers: 'k:9092', client_id: 'mine', tls: true }, 'd', 'w')).toEqual({ brokers: ['k:9092'], clientId: 'mine', tls: true });
  });

  it('names where a bad config came from', () => {
    try {
      connectionFromConfig({ brokers: 'nope' }, 'd', 'sinks.processed');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).where).toBe('sinks.processed');
    }
  });
});

describe('describeConnection', () => {
  it('never includes the password', () => {
    const line = describeConnection({ brokers: ['a:1'], sasl: { mechanism: 'plain', username: 'bob', password: 's3cret' }, tls: true });
    expect(line).toBe('a:1 (tls, sasl plain as bob)');
  });
});

describe('describeConnectionConfig', () => {
  it('describes a spec config: comma-separated brokers, tls settings as tls, never the password', () => {
    const line = describeConnectionConfig({
      brokers: 'a:1, b:2',
      sasl: { mechanism: 'scram-sha-512', username: 'bob', password: 's3cret' },
      tls: { ca: '/ca.pem' },
    });
    expect(line).toBe('a:1,b:2 (tls, sasl scram-sha-512 as bob)');
  });
});
