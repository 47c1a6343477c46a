/**
 * Global setup of the `integration` vitest project: a real Kafka broker for the suites.
 *
 * When KAFKA_BROKERS is set, the suites use that cluster as is. Otherwise `scripts/kafka.sh start`
 * fetches (first run only) and starts a single-node KRaft broker on 127.0.0.1:9092; it is stopped
 * in teardown only when this setup started it (a broker that was already running stays up).
 * In CI (CI=true) a broker that cannot start fails the run: integration tests are never skipped.
 */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const script = resolve(repo, 'scripts/kafka.sh');

export default async function setup(): Promise<() => Promise<void>> {
  if (process.env.KAFKA_BROKERS) return async () => {};
  let startedHere = false;
  try {
    const { stdout } = await run('bash', [script, 'start'], { cwd: repo, timeout: 600_000 });
    const [state, brokers] = stdout.trim().split(/\s+/);
    if (!brokers) throw new Error(`unexpected output from scripts/kafka.sh start: ${stdout}`);
    process.env.KAFKA_BROKERS = brokers;
    startedHere = state === 'started';
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    const why = `could not start Kafka with scripts/kafka.sh: ${e.stderr || e.message}`;
    // Never skip in CI. Locally the suites that need Kafka fail on their own, with this reason logged.
    if (process.env.CI === 'true') throw new Error(why);
    console.error(why);
  }
  return async () => {
    if (startedHere) await run('bash', [script, 'stop'], { cwd: repo, timeout: 60_000 });
  };
}
