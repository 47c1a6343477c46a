/**
 * A broker of a test's own, on its own port and data directory, from the jars scripts/kafka.sh
 * fetched for the suites' broker: for tests that stop and start a broker under a running client
 * without disturbing the other suites (an outage of the shared broker would).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const run = promisify(execFile);

export interface PrivateBroker {
  readonly brokers: string[];
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops the broker and removes its data. */
  remove(): Promise<void>;
}

export function privateBroker(port: number): PrivateBroker {
  const cache = path.join(tmpdir(), `sluice-private-kafka-${port}-${process.pid}`);
  const env = { ...process.env, SLUICE_CACHE: cache, SLUICE_KAFKA_PORT: String(port), SLUICE_KAFKA_HEAP: '-Xmx512m -Xms128m' };
  const kafka = async (cmd: string) => {
    await run('bash', [path.join(repo, 'scripts/kafka.sh'), cmd], { cwd: repo, env, timeout: 120_000 });
  };
  let linked = false;
  return {
    brokers: [`127.0.0.1:${port}`],
    async start() {
      if (!linked) {
        const jars = path.join(process.env.SLUICE_CACHE ?? path.join(homedir(), '.cache/sluice'), 'kafka-3.9.1/libs');
        mkdirSync(path.join(cache, 'kafka-3.9.1'), { recursive: true });
        symlinkSync(jars, path.join(cache, 'kafka-3.9.1/libs'));
        linked = true;
      }
      await kafka('start');
    },
    stop: () => kafka('stop'),
    async remove() {
      await kafka('stop').catch(() => {});
      await rm(cache, { recursive: true, force: true });
    },
  };
}
