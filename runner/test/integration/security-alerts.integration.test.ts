/**
 * pipelines/security-alerts.yaml end to end: `sluice run` of the spec, reading Debezium
 * change events from a fresh Kafka topic and sending its alerts to a real HTTP server of the test's
 * own (node:http on 127.0.0.1), to a fresh alerts topic, and its dead letters to a fresh topic.
 *
 * The input is the golden cases' events (pipelines/tests/security-alerts/{bulk-downloads,
 * off-hours-logins}/activities.jsonl), exactly Debezium's JSON, produced to the topic once the run
 * has its partition, then one later download (12:00, one file) that moves the window's watermark
 * past every window of the morning, so none waits for the spec's `idle` (1m) to close. The server must receive exactly the
 * bodies the golden webhook.jsonl files list, each once, with the bearer token and a JSON content
 * type; the alerts topic must hold exactly the golden alerts-topic.jsonl messages.
 *
 *   a. the server answers 503 to the first three requests and 429 with `Retry-After: 1` to the
 *      fourth: every alert still arrives exactly once, the 429'd one not before a second later,
 *      and nothing reaches the dead letters;
 *   b. it answers 400 to one alert: that one is sent once (not retried) and lands in the
 *      dead-letter topic with the status in `sluice-error-message`; the others arrive.
 *   c. it answers 200 to everything, and the state is in a file instead of Kafka: the same alerts.
 *
 * a and b run the spec's own state settings: state in Kafka, so it runs as tasks, the window
 * behind a repartition topic (a stage of its own); c runs it as one task. Each run has its own
 * group, application id (given with --add checkpoint) and output topics; all read the same input.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/engine/logger.ts';
import { createProducer, readTopicsToEnd, type KafkaAdmin, type ProducedMessage, type ReadRecord } from '../../src/io/kafka/client.ts';
import { openAdmin, testBrokers, testConnection, uniqueName, waitFor } from '../io/kafka/test-broker.ts';
import { exitWithin, jsonLogLines, runSluice, type SluiceProcess, killLeftovers } from './sluice-process.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const GOLDEN = join(repo, 'pipelines/tests/security-alerts');
const CASES = ['bulk-downloads', 'off-hours-logins'];
const id = uniqueName('sa').slice(3);
const TOKEN = `tok-${id}-s3cret`;
const PATH = '/hooks/security-alerts';

let kafka: KafkaAdmin;
let dir: string;
let server: Server;
let url: string;
const input = `sa-activities-${id}`;
const runs: SluiceProcess[] = [];
const createdTopics: string[] = [input];
const applications: string[] = [];

/* ------------------------------------------------------------------ golden files */

function jsonLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every case's events, in file order: the Debezium value texts as they are. */
const EVENTS: string[] = CASES.flatMap((c) =>
  readFileSync(join(GOLDEN, c, 'activities.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== ''),
);
/** The bodies the webhook must receive. */
const WEBHOOK_BODIES: Record<string, unknown>[] = CASES.flatMap((c) => jsonLines(join(GOLDEN, c, 'webhook.jsonl')).map((l) => l.value as Record<string, unknown>));
/** The alerts topic's messages: key text and value. */
const TOPIC_ALERTS: { key: string; value: unknown }[] = CASES.flatMap((c) => jsonLines(join(GOLDEN, c, 'alerts-topic.jsonl')).map((l) => ({ key: l.key as string, value: l.value })));

/** A Debezium key as the JSON converter writes it: `{schema, payload: {id}}`. */
function debeziumKey(rowId: number): string {
  return JSON.stringify({
    schema: { type: 'struct', fields: [{ type: 'int32', optional: false, default: 0, field: 'id' }], optional: false, name: 'employee-server.public.employee_activities.Key' },
    payload: { id: rowId },
  });
}

/** One download long after the burst: a golden event with another id, employee and time. */
function laterDownload(rowId: number, employeeId: number, at: string): string {
  const template = JSON.parse(EVENTS[0]!) as { payload: { after: Record<string, unknown>; source: Record<string, unknown>; ts_ms: number } };
  const ms = Date.parse(at);
  if (template.payload.after.activity_type !== 'download') throw new Error('the template event is no download');
  Object.assign(template.payload.after, { id: rowId, employee_id: employeeId, page_url: '/files/later.pdf', activity_timestamp: ms * 1000 });
  Object.assign(template.payload.source, { ts_ms: ms, ts_us: ms * 1000, ts_ns: ms * 1_000_000 });
  template.payload.ts_ms = ms;
  return JSON.stringify(template);
}

/** A canonical text of a JSON value (object keys sorted): bodies compared as sets of these. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function sorted(values: unknown[]): string[] {
  return values.map(canonical).sort();
}

/* ------------------------------------------------------------------ the webhook target */

interface Request {
  at: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  text: string;
  body: Record<string, unknown> | undefined;
  /** What the server answered. */
  status: number;
  answeredAt: number;
}

/** How the server answers the n-th request (0-based) with this body: status and headers. */
type Answer = (n: number, body: Record<string, unknown> | undefined) => { status: number; headers?: Record<string, string>; text?: string };

let answer: Answer = () => ({ status: 200 });
const requests: Request[] = [];

function delivered(): Request[] {
  return requests.filter((r) => r.status >= 200 && r.status < 300);
}

function employeeOf(body: Record<string, unknown> | undefined): unknown {
  return (body?.alert as { employee_id?: unknown } | undefined)?.employee_id;
}

/* ------------------------------------------------------------------ running the spec */

interface RunTopics {
  alerts: string;
  dead: string;
}

/**
 * `asShipped`: the spec's own state settings (in Kafka, the default with a kafka source: it runs as
 * tasks, the window behind a repartition topic). Otherwise state in a file under the run's
 * directory: the spec then runs as one task, without a repartition. Either way named after the run.
 */
function start(label: string, options: { asShipped: boolean }): { run: SluiceProcess; topics: RunTopics; group: string } {
  const topics = { alerts: `sa-${label}-alerts-${id}`, dead: `sa-${label}-dead-${id}` };
  const group = `sa-${label}-${id}`;
  applications.push(group);
  const args = [
    ...[`sources.activities.kafka.topic=${input}`, `sinks.alerts-topic.kafka.topic=${topics.alerts}`, `sinks.dead-letters.kafka.topic=${topics.dead}`].flatMap((s) => ['--set', s]),
    // State (checkpoint, changelog, repartition topics) named after this run, not the spec's name.
    '--add',
    options.asShipped ? `checkpoint={application_id: ${group}}` : `checkpoint={application_id: ${group}, store: file}`,
  ];
  const run = runSluice(join(repo, 'pipelines/security-alerts.yaml'), {
    cwd: dir,
    args,
    env: { KAFKA_BROKERS: testBrokers().join(','), SLUICE_GROUP: group, ALERT_WEBHOOK_URL: url, ALERT_WEBHOOK_TOKEN: TOKEN },
  });
  runs.push(run);
  return { run, topics, group };
}

function tail(run: SluiceProcess): string {
  return `; the run's log ends:\n${run.stderr().slice(-3000)}`;
}

async function assigned(run: SluiceProcess): Promise<void> {
  await waitFor('the activities partition assigned', () => {
    if (run.child.exitCode !== null) throw new Error(`the run exited${tail(run)}`);
    return jsonLogLines(run.stderr()).some((l) => l.msg === 'kafka partitions assigned' && Number(l.assigned) > 0);
  }, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}${tail(run)}`);
  });
}

/** The inputs, produced once: the golden events, then a download at 12:00 that closes every window of the morning. */
async function produceInputs(): Promise<void> {
  const producer = createProducer(testConnection('sluice-test-security-alerts'), {}, silentLogger);
  await producer.connect();
  try {
    const messages: ProducedMessage[] = EVENTS.map((text) => {
      const rowId = (JSON.parse(text) as { payload: { after: { id: number } } }).payload.after.id;
      return { topic: input, key: debeziumKey(rowId), value: text };
    });
    messages.push({ topic: input, key: debeziumKey(999), value: laterDownload(999, 99, '2025-01-06T12:00:00Z') });
    await producer.send(messages);
  } finally {
    await producer.close();
  }
}

/** SIGINT and a clean exit; then the topics read to their end. */
async function stopAndRead(run: SluiceProcess, topics: RunTopics, what: string): Promise<{ alerts: ReadRecord[]; dead: ReadRecord[] }> {
  process.kill(-run.child.pid!, 'SIGINT');
  const exit = await exitWithin(run, 30_000, what);
  expect(exit, `${what} exit${tail(run)}`).toEqual({ code: 0, signal: null });
  const read: ReadRecord[] = [];
  await readTopicsToEnd(testConnection('sluice-test-reader'), [topics.alerts, topics.dead], (r) => read.push(r), silentLogger);
  return { alerts: read.filter((r) => r.topic === topics.alerts), dead: read.filter((r) => r.topic === topics.dead) };
}

/** What every request must carry, whatever was answered. */
function checkRequests(list: Request[]): void {
  expect(list.length).toBeGreaterThan(0);
  for (const r of list) {
    expect(r.method).toBe('POST');
    expect(r.url).toBe(PATH);
    expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(r.headers['content-type']).toMatch(/^application\/json\b/);
    expect(r.body, `a JSON body: ${r.text.slice(0, 200)}`).toBeDefined();
  }
  // Nothing but the golden alerts was ever sent.
  const known = new Set(sorted(WEBHOOK_BODIES));
  expect(list.map((r) => canonical(r.body)).filter((b) => !known.has(b))).toEqual([]);
}

function checkAlertsTopic(records: ReadRecord[]): void {
  const got = records.map((r) => canonical({ key: r.key?.toString('utf8'), value: JSON.parse(r.value!.toString('utf8')) as unknown }));
  expect(got.sort(), 'the alerts topic: the golden alerts, each once').toEqual(sorted(TOPIC_ALERTS));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-security-alerts-'));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> | undefined;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = undefined;
      }
      const a = answer(requests.length, body);
      const r: Request = { at: Date.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, text, body, status: a.status, answeredAt: 0 };
      requests.push(r);
      res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers });
      res.end(a.text ?? (a.status < 300 ? 'ok' : 'no'));
      r.answeredAt = Date.now();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PATH}`;

  kafka = await openAdmin();
  await kafka.createTopics([{ topic: input, partitions: 1, configs: { 'retention.ms': '-1' } }]);
  // The inputs' expectations, from the golden files.
  expect(EVENTS).toHaveLength(41);
  expect(WEBHOOK_BODIES.map((b) => `${(b.alert as { rule: string }).rule}/${String(employeeOf(b))}`).sort()).toEqual([
    'bulk-downloads/5',
    'off-hours-login/11',
    'off-hours-login/15',
    'off-hours-login/17',
    'off-hours-login/18',
  ]);
});

afterAll(async () => {
  killLeftovers(runs);
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (kafka) {
    const all = await kafka.listTopics();
    const state = all.filter((t) => applications.some((app) => t.startsWith(`${app}-`)));
    await kafka.deleteTopics([...createdTopics, ...state]).catch(() => {});
    await kafka.close();
  }
});

describe('pipelines/security-alerts.yaml with a real webhook target', () => {
  let produced = false;

  async function startWithInputs(label: string, asShipped = true): Promise<{ run: SluiceProcess; topics: RunTopics }> {
    const { run, topics } = start(label, { asShipped });
    createdTopics.push(topics.alerts, topics.dead);
    await kafka.createTopics([topics.alerts, topics.dead].map((topic) => ({ topic, partitions: 1 })));
    await assigned(run);
    // The first run reads the events live (produced once it has its partition); the second, from the start of the topic.
    if (!produced) {
      await produceInputs();
      produced = true;
    }
    return { run, topics };
  }

  it('a. 503s and a 429 with Retry-After: every alert arrives exactly once, none in the dead letters', async () => {
    const began = Date.now();
    requests.length = 0;
    answer = (n) => (n < 3 ? { status: 503 } : n === 3 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 });
    const { run, topics } = await startWithInputs('retry');

    await waitFor('every alert delivered', () => delivered().length >= WEBHOOK_BODIES.length, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${delivered().length} of ${WEBHOOK_BODIES.length}${tail(run)}`);
    });
    // Time for anything that should not come (a duplicate, a late retry).
    await new Promise((r) => setTimeout(r, 2_000));
    const { alerts, dead } = await stopAndRead(run, topics, 'the retry run');

    checkRequests(requests);
    expect(sorted(delivered().map((r) => r.body)), 'delivered bodies: the golden ones, each once').toEqual(sorted(WEBHOOK_BODIES));
    expect(requests.slice(0, 4).map((r) => r.status)).toEqual([503, 503, 503, 429]);
    // Every refused request was sent again, and nothing more: 5 deliveries after 4 failures.
    expect(requests).toHaveLength(WEBHOOK_BODIES.length + 4);
    // The 429's Retry-After (1 s) was waited out before its body was sent again.
    const throttled = requests[3]!;
    const again = requests.find((r, i) => i > 3 && canonical(r.body) === canonical(throttled.body));
    expect(again, 'the 429\'d alert sent again').toBeDefined();
    expect(again!.at - throttled.answeredAt, 'wait after 429 with Retry-After: 1').toBeGreaterThanOrEqual(950);
    for (const r of requests.slice(0, 3)) expect(delivered().filter((d) => canonical(d.body) === canonical(r.body)), 'a 503\'d alert delivered once').toHaveLength(1);

    expect(dead.map((r) => r.value?.toString('utf8')), 'dead letters').toEqual([]);
    checkAlertsTopic(alerts);
    const log = jsonLogLines(run.stderr());
    expect(log.some((l) => typeof l.msg === 'string' && l.msg.startsWith('http sink: POST failed; retrying')), 'the retries warned about').toBe(true);
    expect(run.stderr(), 'the token never logged').not.toContain(TOKEN);
    console.info(`security-alerts retry: ${requests.length} requests, ${Date.now() - began} ms`);
  });

  it('b. a 400 for one alert: it goes to the dead-letter topic with the status, the others arrive', async () => {
    const began = Date.now();
    requests.length = 0;
    answer = (_n, body) => (employeeOf(body) === 15 ? { status: 400, text: 'bad alert: channel refuses IPv6 text' } : { status: 200 });
    const { run, topics } = await startWithInputs('refused');

    await waitFor('every alert answered', () => requests.length >= WEBHOOK_BODIES.length, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${requests.length} of ${WEBHOOK_BODIES.length}${tail(run)}`);
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const { alerts, dead } = await stopAndRead(run, topics, 'the refused run');

    checkRequests(requests);
    const refusedBody = WEBHOOK_BODIES.find((b) => employeeOf(b) === 15)!;
    // The refused one was sent once (a 4xx is not retried); the others delivered, each once.
    expect(requests.filter((r) => r.status === 400).map((r) => canonical(r.body))).toEqual([canonical(refusedBody)]);
    expect(sorted(delivered().map((r) => r.body))).toEqual(sorted(WEBHOOK_BODIES.filter((b) => b !== refusedBody)));
    expect(requests).toHaveLength(WEBHOOK_BODIES.length);

    // The dead letter: the alert's record, the webhook named as the node that failed, the status and the answer's start.
    expect(dead, 'dead letters').toHaveLength(1);
    const letter = dead[0]!;
    const value = JSON.parse(letter.value!.toString('utf8')) as Record<string, unknown>;
    expect(value.alert).toEqual(refusedBody.alert);
    expect(letter.headers['sluice-error-node']).toBe('webhook');
    expect(letter.headers['sluice-error-message']).toMatch(/\b400\b/);
    expect(letter.headers['sluice-error-message']).toContain('bad alert: channel refuses IPv6 text');
    // The alerts topic does not depend on the webhook: all of them.
    checkAlertsTopic(alerts);
    expect(run.stderr(), 'the token never logged').not.toContain(TOKEN);
    console.info(`security-alerts refused: ${requests.length} requests, ${Date.now() - began} ms`);
  });

  it('c. with its state in a file (one task, no repartition): every alert delivered once as well', async () => {
    const began = Date.now();
    requests.length = 0;
    answer = () => ({ status: 200 });
    const { run, topics } = await startWithInputs('file', false);

    await waitFor('every alert delivered', () => delivered().length >= WEBHOOK_BODIES.length, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${delivered().length} of ${WEBHOOK_BODIES.length}${tail(run)}`);
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const { alerts, dead } = await stopAndRead(run, topics, 'the run with a file store');

    checkRequests(requests);
    expect(sorted(delivered().map((r) => r.body))).toEqual(sorted(WEBHOOK_BODIES));
    expect(requests).toHaveLength(WEBHOOK_BODIES.length);
    expect(dead.map((r) => r.value?.toString('utf8')), 'dead letters').toEqual([]);
    checkAlertsTopic(alerts);
    console.info(`security-alerts file store: ${Date.now() - began} ms`);
  });
});
