import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HTTP_REFUSED, HTTP_RETRIES, httpSink, parseRetryAfter, redactUrl, type HttpSinkConfig } from '../../../src/components/sinks/http.ts';
import { Ack } from '../../../src/engine/ack.ts';
import { ManualClock } from '../../../src/engine/clock.ts';
import { PrepareFailure, requireMessages, type ComponentContext, type OutboundMessage, type Sink } from '../../../src/engine/component.ts';
import { silentLogger, type Logger } from '../../../src/engine/logger.ts';
import { Metrics } from '../../../src/engine/metrics.ts';
import type { StreamRecord } from '../../../src/engine/record.ts';
import { Runtime } from '../../../src/engine/runtime.ts';
import { loadPipelineText } from '../../../src/plan/load-pipeline.ts';
import { planGraph } from '../../../src/plan/render.ts';
import { ScriptedSource, graphOf } from '../../engine/fake-components.ts';

/* ---------------------------------------------------------------- a real local HTTP server */

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** performance.now() when the whole request had arrived. */
  at: number;
}

/** Answers a request: call `res` methods, or leave it hanging. `n` counts requests from 1. */
type Handler = (req: Received, res: http.ServerResponse, n: number) => void;

class TestServer {
  readonly received: Received[] = [];
  active = 0;
  maxActive = 0;
  url = '';
  private readonly server: http.Server;

  constructor(public handler: Handler = (_req, res) => res.end()) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: performance.now() };
        this.received.push(r);
        this.active++;
        this.maxActive = Math.max(this.maxActive, this.active);
        // 'close' fires once the answer is sent or the client went away.
        res.on('close', () => this.active--);
        this.handler(r, res, this.received.length);
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    servers.push(this);
    return this.url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  bodies(): unknown[] {
    return this.received.map((r) => JSON.parse(r.body) as unknown);
  }
}

const servers: TestServer[] = [];
const sinks: Sink[] = [];
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function serve(handler?: Handler): Promise<TestServer> {
  const server = new TestServer(handler);
  await server.start();
  return server;
}

/** A URL where nothing listens: a server's port, after it closed. */
async function deadUrl(): Promise<string> {
  const server = new TestServer();
  const url = await server.start();
  servers.pop();
  await server.stop();
  return url;
}

/* ---------------------------------------------------------------- helpers */

interface Logged {
  level: 'warn' | 'info';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function capturingLogger(): { logger: Logger; logged: Logged[] } {
  const logged: Logged[] = [];
  const keep = (level: Logged['level']) => (obj: object | string, msg?: string) => logged.push({ level, obj: typeof obj === 'string' ? { msg: obj } : (obj as Record<string, unknown>), msg });
  const logger: Logger = { debug: () => {}, info: keep('info'), warn: keep('warn'), error: () => {}, child: () => logger };
  return { logger, logged };
}

function context(extra: Partial<ComponentContext> = {}): ComponentContext {
  return { name: 'webhook', logger: silentLogger, clock: new ManualClock(0), metrics: new Metrics(), mode: 'run', ...extra };
}

function create(config: HttpSinkConfig, ctx: ComponentContext = context()): Sink {
  const sink = httpSink.create(config, ctx);
  sinks.push(sink);
  return sink;
}

function record(value: unknown, offset = 1, key: unknown = null): StreamRecord {
  return { key, value, time: 0, headers: {}, meta: {}, position: { source: 's', partition: 's/p', offset: String(offset) }, ack: Ack.none() };
}

function messages(values: unknown[]): OutboundMessage[] {
  return values.map((value, i) => ({ key: i, value }));
}

/** Fast retries, so a test of retrying takes milliseconds. */
const FAST_RETRY = { initial: '5ms', max: '20ms' };

const BODY = '{"text": rule & " fired for employee " & $string(employee_id), "alert": $}';

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/* ---------------------------------------------------------------- tests */

describe('http sink: prepare (what golden files record)', () => {
  it('shapes the body with the expression, keeps the key, and shows header names with values hidden', async () => {
    const sink = create({ url: await deadUrl(), body: BODY, headers: { Authorization: 'Bearer s3cr3t' } });
    const prepared = await sink.prepare([record({ rule: 'late-login', employee_id: 7 }, 1, 'k7')]);
    expect(prepared).toEqual([
      {
        key: 'k7',
        value: { text: 'late-login fired for employee 7', alert: { rule: 'late-login', employee_id: 7 } },
        headers: { Authorization: '***' },
      },
    ]);
    expect(JSON.stringify(prepared)).not.toContain('s3cr3t');
  });

  it('sends the value itself without `body`, and no headers field without `headers`', async () => {
    const sink = create({ url: 'http://127.0.0.1:9/' });
    expect(await sink.prepare([record({ a: 1 }, 1, 'k')])).toEqual([{ key: 'k', value: { a: 1 } }]);
  });

  it('fails only the record whose body expression throws or gives nothing, naming the sink and the record', async () => {
    const sink = create({ url: 'http://127.0.0.1:9/', body: '$exists(boom) ? $error("bad record") : alert' });
    const prepared = await sink.prepare([record({ alert: 'a' }, 1), record({ boom: true }, 2), record({ other: 1 }, 3)]);
    expect(prepared[0]).toEqual({ key: null, value: 'a' });
    expect(prepared[1]).toBeInstanceOf(PrepareFailure);
    expect((prepared[1] as PrepareFailure).error).toMatchObject({ code: 'E_HTTP_BODY', where: 'sinks.webhook' });
    expect((prepared[1] as PrepareFailure).error.message).toMatch(/s\/p@2: .*bad record/);
    expect((prepared[2] as PrepareFailure).error.message).toMatch(/gave no value for the record at s\/p@3/);
  });
});

describe('http sink: delivery', () => {
  it('POSTs each message as JSON with the configured headers and a shaped body; bigints keep every digit', async () => {
    const server = await serve();
    const sink = create({ url: `${server.url}/alerts?channel=ops`, body: BODY, headers: { Authorization: 'Bearer s3cr3t', 'X-Trace': 'abc' } });
    await sink.open();
    const records = [record({ rule: 'r1', employee_id: 1, ts_ns: 1735813800123456789n }, 1), record({ rule: 'r2', employee_id: 2 }, 2)];
    expect(await sink.write(requireMessages(await sink.prepare(records)))).toBeUndefined();
    expect(server.received).toHaveLength(2);
    const byText = new Map(server.received.map((r) => [(JSON.parse(r.body) as { text: string }).text, r]));
    const first = byText.get('r1 fired for employee 1')!;
    expect(first.method).toBe('POST');
    expect(first.url).toBe('/alerts?channel=ops');
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers.authorization).toBe('Bearer s3cr3t');
    expect(first.headers['x-trace']).toBe('abc');
    expect(first.body).toBe('{"text":"r1 fired for employee 1","alert":{"rule":"r1","employee_id":1,"ts_ns":1735813800123456789}}');
    expect(byText.has('r2 fired for employee 2')).toBe(true);
  });

  it('uses the configured method, sends URL credentials as basic authentication, and lets headers replace content-type', async () => {
    const server = await serve((_req, res) => res.end('x'.repeat(200_000)));
    const port = new URL(server.url).port;
    const sink = create({ url: `http://al%40ice:p%3Ass@127.0.0.1:${port}/hook#frag`, method: 'PUT', headers: { 'Content-Type': 'application/vnd.alert+json' } });
    await sink.open();
    await sink.write(messages([{ n: 1 }]));
    expect(server.received).toHaveLength(1);
    const r = server.received[0]!;
    expect(r).toMatchObject({ method: 'PUT', url: '/hook', body: '{"n":1}' });
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from('al@ice:p:ss').toString('base64')}`);
    expect(r.headers['content-type']).toBe('application/vnd.alert+json');
  });

  it('refuses a message answered with a 4xx, quoting the status and at most ~200 characters of the answer; the others are delivered, none retried', async () => {
    const server = await serve((req, res) => {
      const v = JSON.parse(req.body) as { n: number; bad?: string };
      if (v.bad === 'long') {
        res.writeHead(422, { 'content-type': 'application/json' });
        res.end(`{"error":"field \`amount\` is required"${' '.repeat(3)}${'x'.repeat(5_000)}}`);
      } else if (v.bad === 'missing') {
        res.writeHead(404);
        res.end();
      } else res.end('ok');
    });
    const metrics = new Metrics();
    const sink = create({ url: server.url, retry: FAST_RETRY }, context({ metrics }));
    await sink.open();
    const result = await sink.write(messages([{ n: 0 }, { n: 1, bad: 'long' }, { n: 2 }, { n: 3, bad: 'missing' }]));
    expect(result?.refused.map((r) => r.index)).toEqual([1, 3]);
    const [long, missing] = result!.refused.map((r) => r.error);
    expect(long).toMatchObject({ code: 'E_HTTP_REFUSED', where: 'sinks.webhook' });
    expect(long!.message).toMatch(/^the target refused the message: 422 Unprocessable Entity: \{"error":"field `amount` is required" x+…$/);
    expect(long!.message.length).toBeLessThan(300);
    expect(missing!.message).toBe('the target refused the message: 404 Not Found');
    // One request per message: a refusal is not retried.
    expect(server.received).toHaveLength(4);
    expect(metrics.counter(HTTP_REFUSED, { node: 'webhook' })).toBe(2);
    expect(metrics.counter(HTTP_RETRIES, { node: 'webhook' })).toBe(0);
  });

  it('retries 5xx, 408 and 429 until the target takes the message, warning once per 30 s and counting every retry', async () => {
    const failures = [500, 408, 429, 502];
    const server = await serve((_req, res, n) => {
      res.statusCode = n <= failures.length ? failures[n - 1]! : 200;
      res.end();
    });
    const metrics = new Metrics();
    const clock = new ManualClock(0);
    const { logger, logged } = capturingLogger();
    const sink = create({ url: `${server.url}/path?token=t0ps3cret`, retry: FAST_RETRY }, context({ metrics, clock, logger }));
    await sink.open();
    expect(await sink.write(messages([{ n: 1 }]))).toBeUndefined();
    expect(server.received).toHaveLength(5);
    expect(server.received.every((r) => r.body === '{"n":1}')).toBe(true);
    expect(metrics.counter(HTTP_RETRIES, { node: 'webhook' })).toBe(4);
    expect(metrics.counter('sluice_sink_retries_total', { node: 'webhook' })).toBe(4);
    const warnings = logged.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj).toMatchObject({ sink: 'webhook', error: '500 Internal Server Error', attempts: 1, target: server.url });
    expect(warnings[0]!.obj.next_attempt_ms).toBeGreaterThanOrEqual(5);
    expect(JSON.stringify(logged)).not.toContain('t0ps3cret');
    expect(logged.filter((l) => l.level === 'info').map((l) => l.obj)).toEqual([expect.objectContaining({ failed_attempts: 4 })]);

    // Another outage within 30 s is not warned about again; one after is.
    const before = server.received.length;
    server.handler = (_req, res, n) => {
      res.statusCode = n === before + 1 ? 503 : 200;
      res.end();
    };
    await sink.write(messages([{ n: 2 }]));
    expect(logged.filter((l) => l.level === 'warn')).toHaveLength(1);
    clock.advance(30_000);
    const again = server.received.length;
    server.handler = (_req, res, n) => {
      res.statusCode = n === again + 1 ? 500 : 200;
      res.end();
    };
    await sink.write(messages([{ n: 3 }]));
    expect(logged.filter((l) => l.level === 'warn')).toHaveLength(2);
  });

  it('waits as long as a 429 Retry-After says before retrying', async () => {
    const server = await serve((_req, res, n) => {
      if (n === 1) res.writeHead(429, { 'retry-after': '1' });
      res.end();
    });
    const sink = create({ url: server.url, retry: FAST_RETRY });
    await sink.open();
    await sink.write(messages([{ n: 1 }]));
    expect(server.received).toHaveLength(2);
    expect(server.received[1]!.at - server.received[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-06T09:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Mon, 06 Jan 2025 09:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Mon, 06 Jan 2025 08:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('abandons a request that gets no answer within `timeout` and sends it again', async () => {
    const server = await serve((_req, res, n) => {
      if (n > 1) res.end(); // the first is left hanging
    });
    const sink = create({ url: server.url, timeout: '150ms', retry: FAST_RETRY });
    await sink.open();
    const t0 = performance.now();
    await sink.write(messages([{ n: 1 }]));
    expect(server.received).toHaveLength(2);
    expect(server.received[1]!.at - t0).toBeGreaterThanOrEqual(140);
  });

  it('keeps at most max_in_flight requests open at once, and uses all of them', async () => {
    const server = await serve((_req, res) => setTimeout(() => res.end(), 40));
    const sink = create({ url: server.url, max_in_flight: 3 });
    await sink.open();
    await sink.write(messages(Array.from({ length: 12 }, (_, n) => ({ n }))));
    expect(server.received).toHaveLength(12);
    expect(server.maxActive).toBe(3);
    expect(new Set(server.bodies().map((b) => (b as { n: number }).n)).size).toBe(12);
  });

  it('fails the write on a redirect instead of following it (a POST would become a GET)', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(302, { location: 'https://elsewhere.example/hook?key=k3y' });
      res.end();
    });
    const sink = create({ url: server.url, retry: FAST_RETRY });
    await sink.open();
    const err = await sink.write(messages([{ n: 1 }])).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toMatchObject({ code: 'E_HTTP_REDIRECT', where: 'sinks.webhook' });
    expect(err!.message).toContain('https://elsewhere.example/hook?key=***');
    expect(server.received).toHaveLength(1);
  });
});

describe('http sink: close', () => {
  it('aborts a request stuck on a target that never answers: the write rejects at once', async () => {
    const server = await serve(() => {}); // never answers
    const sink = create({ url: server.url, timeout: '60s' });
    await sink.open();
    const writing = sink.write(messages([{ n: 1 }, { n: 2 }]));
    const outcome = writing.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await until(() => server.received.length === 2);
    const t0 = performance.now();
    await sink.close();
    expect(await outcome).toMatchObject({ code: 'E_HTTP_CLOSED' });
    expect(performance.now() - t0).toBeLessThan(500);
    await until(() => server.active === 0);
    // Closed for good: a later write is refused without a request.
    await expect(sink.write(messages([{ n: 3 }]))).rejects.toMatchObject({ code: 'E_HTTP_CLOSED' });
    expect(server.received).toHaveLength(2);
  });

  it('aborts the wait between retries against a target that is down', async () => {
    const { logger, logged } = capturingLogger();
    const sink = create({ url: await deadUrl(), retry: { initial: '10s', max: '1m' } }, context({ logger }));
    await sink.open();
    const outcome = sink.write(messages([{ n: 1 }])).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await until(() => logged.some((l) => l.level === 'warn'));
    expect(logged[0]!.obj.error).toMatch(/ECONNREFUSED/);
    const t0 = performance.now();
    await sink.close();
    expect(await outcome).toMatchObject({ code: 'E_HTTP_CLOSED' });
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('http sink: config, open and describe', () => {
  it('open checks the URL and contacts nothing (the target may be down at start)', async () => {
    await expect(create({ url: await deadUrl() }).open()).resolves.toBeUndefined();
    await expect(create({ url: 'ftp://files.example/in' }).open()).rejects.toMatchObject({ code: 'E_HTTP_URL', where: 'sinks.webhook' });
    await expect(create({ url: 'hooks.example.com/alerts' }).open()).rejects.toMatchObject({ code: 'E_HTTP_URL' });
  });

  it('refuses header names and values HTTP cannot carry, without quoting the value, and a retry.max below retry.initial', () => {
    expect(() => create({ url: 'http://h/', headers: { 'Bad Name': 'x' } })).toThrow(/`Bad Name` is not a valid HTTP header name/);
    let err: unknown;
    try {
      create({ url: 'http://h/', headers: { Authorization: 'Bearer abc\r\nX-Injected: 1' } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'E_HTTP_HEADER' });
    expect((err as Error).message).not.toContain('abc');
    expect(() => create({ url: 'http://h/', retry: { initial: '1s', max: '500ms' } })).toThrow(/retry.max/);
  });

  it('describes method and URL with credentials and query values redacted, never header values', () => {
    const line = httpSink.describe({ url: 'https://bot:pw@hooks.example.com/alerts?token=abc&channel=ops', method: 'PATCH', headers: { Authorization: 'Bearer s3cr3t' }, max_in_flight: 2 });
    expect(line).toBe('PATCH https://***@hooks.example.com/alerts?token=***&channel=*** as JSON, headers Authorization, up to 2 in flight');
    expect(redactUrl('not a url://u:p@x?q=1')).not.toMatch(/u:p|q=1/);
  });

  it('validates as a pipeline sink; the graph hides header values', () => {
    const spec = [
      'version: 1',
      'name: alerts',
      'sources:',
      '  alerts:',
      '    file: { path: in.jsonl }',
      'sinks:',
      '  webhook:',
      '    from: alerts',
      '    http:',
      '      url: ${ALERT_WEBHOOK_URL}',
      '      method: POST',
      `      body: '${BODY}'`,
      '      headers:',
      '        Authorization: Bearer ${ALERT_TOKEN}',
      '      timeout: 10s',
      '      max_in_flight: 4',
      '      retry: { initial: 200ms, max: 30s }',
      '',
    ].join('\n');
    const result = loadPipelineText('alerts.yaml', spec, { env: { ALERT_WEBHOOK_URL: 'https://hooks.example.com/alerts?token=abc', ALERT_TOKEN: 's3cr3t' } });
    if (!result.ok) throw new Error(JSON.stringify(result.diagnostics));
    const node = result.plan.nodes.find((n) => n.name === 'webhook')!;
    expect(node.summary).toBe('POST https://hooks.example.com/alerts?token=*** as JSON, body by expression, headers Authorization, up to 4 in flight');
    const view = planGraph(result.plan).nodes.find((n) => n.name === 'webhook')!;
    expect(view.config).toMatchObject({ headers: { Authorization: '***' } });
    expect(JSON.stringify(view)).not.toContain('s3cr3t');

    const typo = loadPipelineText('alerts.yaml', spec.replace('max_in_flight', 'max_inflight'), { env: { ALERT_WEBHOOK_URL: 'https://h/', ALERT_TOKEN: 't' } });
    expect(typo.ok).toBe(false);
  });
});

describe('http sink: backpressure through a Runtime', () => {
  it('while the target answers 503 the source stops being let through; after recovery every record arrives exactly once', async () => {
    let down = true;
    const taken: number[] = [];
    const server = await serve((req, res) => {
      if (!down) taken.push((JSON.parse(req.body) as { id: number }).id);
      res.statusCode = down ? 503 : 200;
      res.end();
    });
    const batches = Array.from({ length: 30 }, (_, b) => ({ partition: 'p', values: Array.from({ length: 4 }, (_, j) => JSON.stringify({ id: b * 4 + j })) }));
    const source = new ScriptedSource('in', batches);
    const sink = create({ url: server.url, max_in_flight: 2, retry: FAST_RETRY });
    const graph = graphOf([
      { source: 'in', impl: source },
      { sink: 'webhook', impl: sink, from: ['in'] },
    ]);
    const maxQueuedBatches = 1;
    const sinkQueueRecords = 8;
    const sinkBatchRecords = 4;
    const runtime = new Runtime(graph, { logger: silentLogger, metrics: new Metrics(), clock: new ManualClock(0), tickMs: 0, maxQueuedBatches, sinkQueueRecords, sinkBatchRecords });
    let finished = false;
    const running = runtime.run().finally(() => (finished = true));

    await until(() => server.received.length >= 10);
    await sleep(200);
    const stalledAt = source.emitted;
    await sleep(300);
    // Emits stopped resolving: no further batch was taken while the target was down.
    expect(source.emitted).toBe(stalledAt);
    // At most: the batch being written, the sink queue's capacity, the queued batches and the one awaited.
    expect(stalledAt).toBeLessThanOrEqual(1 + sinkQueueRecords / sinkBatchRecords + maxQueuedBatches + 1);
    expect(source.completed).toEqual([]);
    expect(finished).toBe(false);
    expect(taken).toEqual([]);

    down = false;
    const outcome = await running;
    expect(outcome.ended).toBe('end-of-input');
    expect(source.emitted).toBe(30);
    expect(source.completed).toHaveLength(30);
    // Exactly once: every id, none twice.
    expect(taken).toHaveLength(120);
    expect(new Set(taken)).toEqual(new Set(Array.from({ length: 120 }, (_, i) => i)));
  });
});
