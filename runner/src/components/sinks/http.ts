/**
 * `http` sink: sends each record as one JSON request to a URL (a webhook), at most `max_in_flight`
 * at a time, through Node's global fetch.
 *
 * A 2xx answer delivers the message. A 4xx (but 408 and 429) refuses it for what it holds: its
 * record goes to `<sink>.errors` with the status and the start of the answer. Everything else (5xx,
 * 408, 429, timeouts, network errors) is retried without end, after `Retry-After` when a 429 or 503
 * gives one, else with jittered exponential backoff: while the target is down `write` does not
 * resolve, the sink queue fills and the runtime's backpressure slows the sources. Nothing is dropped.
 * `close()` aborts requests and waits in flight, and the write they belong to rejects.
 */
import type { ComponentContext, OutboundMessage, Prepared, RefusedMessage, Sink, SinkDef, WriteResult } from '../../engine/component.ts';
import { PrepareFailure } from '../../engine/component.ts';
import { formatDuration, parseDuration } from '../../engine/duration.ts';
import { ConfigError, ConnectionError, RecordError, SluiceError, errorMessage } from '../../engine/errors.ts';
import { EvalFailure, compileExpression, evaluateRecords, type Expression } from '../../engine/expression.ts';
import { stringifyJson } from '../../engine/json.ts';
import type { MetricDefinition } from '../../engine/metrics.ts';
import type { Headers as MessageHeaders, StreamRecord } from '../../engine/record.ts';
import { SINK_RETRIES } from '../../engine/runtime-metrics.ts';
import { duration, expression, object, secret } from '../../engine/schema.ts';

export const HTTP_METHODS = ['POST', 'PUT', 'PATCH'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface HttpSinkConfig {
  url: string;
  method?: HttpMethod;
  body?: string;
  headers?: Record<string, string>;
  timeout?: string;
  max_in_flight?: number;
  retry?: { initial?: string; max?: string };
}

const DEFAULT_TIMEOUT = '10s';
const DEFAULT_MAX_IN_FLIGHT = 4;
const DEFAULT_RETRY_INITIAL = '200ms';
const DEFAULT_RETRY_MAX = '30s';
/** A `Retry-After` further away is cut to this: a target must not park the pipeline for hours. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;
/** While the target keeps failing, one warning per this interval. */
export const WARN_INTERVAL_MS = 30_000;
/** The most of a refusing answer's body an error quotes. */
export const EXCERPT_CHARS = 200;
/** What is read of an answer's body: enough to quote, or to let a small body free its connection. */
const EXCERPT_BYTES = EXCERPT_CHARS * 4;
const DISCARD_BYTES = 64 * 1024;

export const HTTP_RETRIES = 'sluice_http_retries_total';
export const HTTP_REFUSED = 'sluice_http_refused_total';
const METRICS: readonly MetricDefinition[] = [
  { name: HTTP_RETRIES, type: 'counter', help: 'Requests an http sink sent again after a 5xx, 408 or 429 answer, a timeout or a network error.', labels: ['node'] },
  { name: HTTP_REFUSED, type: 'counter', help: 'Messages the http target refused with a 4xx answer (sent to the errors port).', labels: ['node'] },
];

/** An RFC 9110 token: what a header name may be. */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const HEADER_NAME_RE = new RegExp(HEADER_NAME);

const schema = object(
  'Send each record as one JSON request to an HTTP endpoint (a webhook).',
  {
    url: {
      type: 'string',
      minLength: 1,
      description:
        'Where requests go: an `http://` or `https://` URL. Credentials in it (`https://user:pass@host/`) are sent as basic authentication. The summary `sluice graph` prints shows it with credentials and query values as `***`; logs name only its scheme, host and port.',
      examples: ['${ALERT_WEBHOOK_URL}', 'https://hooks.example.com/alerts'],
    },
    method: { type: 'string', enum: [...HTTP_METHODS], default: 'POST', description: 'The request method.', examples: ['PUT'] },
    body: expression('JSONata over the record value (with $meta, $key, $headers) giving the JSON body to send. Default: the record value. A record for which it fails or gives no value goes to `<sink>.errors`.', [
      '{"text": rule & " fired for employee " & $string(employee_id), "alert": $}',
    ]),
    headers: {
      type: 'object',
      propertyNames: { pattern: HEADER_NAME },
      additionalProperties: secret('The header value: a secret, never shown in logs or `sluice graph`.', ['Bearer ${ALERT_TOKEN}']),
      description: 'Request headers: name -> value, the same on every request; `content-type` is `application/json` unless given here.',
      examples: [{ Authorization: 'Bearer ${ALERT_TOKEN}' }],
    },
    timeout: { ...duration('How long one request may take, answer included, before it is abandoned and retried.', ['10s', '2s']), default: DEFAULT_TIMEOUT },
    max_in_flight: {
      type: 'integer',
      minimum: 1,
      maximum: 1024,
      default: DEFAULT_MAX_IN_FLIGHT,
      description: 'Most requests sent at once. With more than 1, messages may arrive out of order; 1 keeps the order.',
      examples: [4, 1],
    },
    retry: object(
      'Backoff between attempts after a 5xx, 408 or 429 answer, a timeout or a network error. Retries never stop: while the target is down the pipeline slows down and nothing is dropped.',
      {
        initial: { ...duration('The shortest wait before another attempt.', ['200ms', '1s']), default: DEFAULT_RETRY_INITIAL },
        max: { ...duration('The longest wait between attempts, reached as the ceiling doubles per attempt.', ['30s', '5m']), default: DEFAULT_RETRY_MAX },
      },
      [],
      { examples: [{ initial: '200ms', max: '30s' }] },
    ),
  },
  ['url'],
  {
    examples: [
      {
        url: '${ALERT_WEBHOOK_URL}',
        body: '{"text": rule & " fired for employee " & $string(employee_id), "alert": $}',
        headers: { Authorization: 'Bearer ${ALERT_TOKEN}' },
        timeout: '10s',
        max_in_flight: 4,
        retry: { initial: '200ms', max: '30s' },
      },
    ],
  },
);

/**
 * A URL as logs and `sluice graph` may show it: credentials (userinfo) and query values as `***`
 * (webhook tokens often travel there). Never throws: text that is no URL is redacted by pattern.
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text.replace(/\/\/[^/?#]*@/, '//***@').replace(/\?[^#]*/, '?***');
  }
  const userinfo = url.username || url.password ? '***@' : '';
  const query = [...url.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=***`).join('&');
  return `${url.protocol}//${userinfo}${url.host}${url.pathname}${query ? `?${query}` : ''}`;
}

/**
 * Milliseconds a `Retry-After` value asks to wait: delay-seconds or an HTTP date (relative to
 * `now`, epoch ms). Undefined when absent or unreadable; never negative.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form names a day or month; Date.parse alone would read `-5` as a year.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface Target {
  /** What fetch is given: no userinfo (fetch refuses it), no fragment. */
  href: string;
  /** Every request's headers. */
  headers: Record<string, string>;
  /** Scheme, host and port: what logs name (a path may hold a token too). */
  origin: string;
  /** `Basic ...` from the URL's userinfo. */
  basic?: string;
}

function parseTarget(text: string, where: string): Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError('E_HTTP_URL', '`url` is not an absolute URL like https://host/path', where);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('E_HTTP_URL', `\`url\` must be http:// or https://, not ${url.protocol}//`, where);
  }
  const target: Target = { href: '', headers: {}, origin: url.origin };
  if (url.username || url.password) {
    try {
      target.basic = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    } catch {
      throw new ConfigError('E_HTTP_URL', 'the credentials in `url` are not validly percent-encoded', where);
    }
    url.username = '';
    url.password = '';
  }
  url.hash = '';
  target.href = url.href;
  return target;
}

/** Header values fetch can send: visible Latin-1 and tabs (a line break would split the header). */
function sendableHeaderValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (!(c === 0x09 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff))) return false;
  }
  return true;
}

/** Up to `maxBytes` of an answer's body; the rest is cancelled. A body cut short gives what arrived. */
async function readUpTo(response: Response, maxBytes: number): Promise<Buffer> {
  const body = response.body;
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(chunks);
      chunks.push(value);
      size += value.length;
    }
    await reader.cancel().catch(() => {});
  } catch {
    // Aborted or reset mid-body: what arrived is all there is to quote.
  }
  return Buffer.concat(chunks).subarray(0, maxBytes);
}

/** The start of an answer's body on one line, at most EXCERPT_CHARS characters. */
async function bodyExcerpt(response: Response): Promise<string> {
  const text = (await readUpTo(response, EXCERPT_BYTES)).toString('utf8').replace(/[\u0000-\u001f\u007f\s]+/g, ' ').trim();
  if (text.length <= EXCERPT_CHARS) return text;
  let end = EXCERPT_CHARS;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** Why a request failed without an answer: undici says `fetch failed` and puts the reason in `cause`. */
function networkReason(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  if (!(cause instanceof Error)) return errorMessage(err);
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

type Attempt =
  | { kind: 'delivered' }
  | { kind: 'refused'; error: RecordError }
  | { kind: 'retry'; reason: string; retryAfterMs?: number };

export class HttpSink implements Sink {
  private readonly where: string;
  private readonly method: HttpMethod;
  private readonly body: Expression | undefined;
  /** Configured headers as messages (and so golden files) show them: names only, values `***`. */
  private readonly shownHeaders: MessageHeaders | undefined;
  private readonly timeoutMs: number;
  private readonly requestsInFlight: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private target: Target | undefined;
  /** Aborted by close(): every request and wait in flight ends at once. */
  private closing = new AbortController();
  private readonly writes = new Set<Promise<unknown>>();
  /** Failed attempts since the target last answered (any answer but a retryable one). */
  private failures = 0;
  private failingSince: number | undefined;
  private lastWarnAt: number | undefined;
  private warnedThisOutage = false;

  constructor(
    private readonly config: HttpSinkConfig,
    private readonly ctx: ComponentContext,
    /** The jitter's source; tests may pin it. */
    private readonly random: () => number = Math.random,
  ) {
    this.where = `sinks.${ctx.name}`;
    ctx.metrics.define(...METRICS);
    this.method = config.method ?? 'POST';
    this.body = config.body === undefined ? undefined : compileExpression(config.body);
    const headers = Object.entries(config.headers ?? {});
    for (const [name, value] of headers) {
      if (!HEADER_NAME_RE.test(name)) throw new ConfigError('E_HTTP_HEADER', `\`${name}\` is not a valid HTTP header name`, this.where);
      // The value is a secret: say what is wrong with it, never what it is.
      if (!sendableHeaderValue(value)) throw new ConfigError('E_HTTP_HEADER', `the value of header \`${name}\` holds a line break or a character HTTP headers cannot carry`, this.where);
    }
    this.shownHeaders = headers.length ? Object.fromEntries(headers.map(([name]) => [name, '***'])) : undefined;
    this.timeoutMs = parseDuration(config.timeout ?? DEFAULT_TIMEOUT);
    this.requestsInFlight = config.max_in_flight ?? DEFAULT_MAX_IN_FLIGHT;
    this.initialMs = parseDuration(config.retry?.initial ?? DEFAULT_RETRY_INITIAL);
    this.maxMs = parseDuration(config.retry?.max ?? DEFAULT_RETRY_MAX);
    if (this.timeoutMs <= 0) throw new ConfigError('E_HTTP_CONFIG', '`timeout` must be longer than 0', this.where);
    if (this.initialMs <= 0) throw new ConfigError('E_HTTP_CONFIG', '`retry.initial` must be longer than 0', this.where);
    if (this.maxMs < this.initialMs) throw new ConfigError('E_HTTP_CONFIG', '`retry.max` must not be shorter than `retry.initial`', this.where);
  }

  /** Checks the URL only: a webhook target may well be down at start, and retries cover that. */
  async open(): Promise<void> {
    if (this.closing.signal.aborted) this.closing = new AbortController();
    this.resolveTarget();
  }

  prepare(records: readonly StreamRecord[]): Prepared[] | Promise<Prepared[]> {
    const body = this.body;
    if (!body) return records.map((rec) => this.message(rec, rec.value));
    const build = (values: unknown[]): Prepared[] =>
      records.map((rec, i) => {
        const v = values[i];
        const at = `${rec.position.partition}@${rec.position.offset}`;
        if (v instanceof EvalFailure) {
          return new PrepareFailure(new RecordError('E_HTTP_BODY', `body expression failed for the record at ${at}: ${v.error.message}`, this.where, { cause: v.error }));
        }
        // No result would send `null`: a mistake in the expression for this record, not a message.
        if (v === undefined) return new PrepareFailure(new RecordError('E_HTTP_BODY', `body expression gave no value for the record at ${at}`, this.where));
        return this.message(rec, v);
      });
    const values = evaluateRecords(body, records);
    return values instanceof Promise ? values.then(build) : build(values);
  }

  private message(rec: StreamRecord, value: unknown): OutboundMessage {
    return this.shownHeaders ? { key: rec.key, value, headers: { ...this.shownHeaders } } : { key: rec.key, value };
  }

  /**
   * Sends every message, `max_in_flight` at a time; resolves once each is delivered or refused.
   * Rejects only when close() aborted it (or the target redirects): nothing of it is acknowledged.
   */
  async write(messages: OutboundMessage[]): Promise<WriteResult | void> {
    if (messages.length === 0) return;
    const target = this.resolveTarget();
    const closing = this.closing.signal;
    if (closing.aborted) throw closing.reason as Error;
    // One signal for the whole write: close() or one request's fatal error stops every other.
    const control = new AbortController();
    const onClose = () => control.abort(closing.reason);
    closing.addEventListener('abort', onClose, { once: true });
    const refused: RefusedMessage[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < messages.length && !control.signal.aborted) {
        const index = next++;
        const error = await this.deliver(target, messages[index]!, control.signal);
        if (error) refused.push({ index, error });
      }
    };
    const workers = Math.min(this.requestsInFlight, messages.length);
    const running = Promise.all(
      Array.from({ length: workers }, () =>
        worker().catch((err: unknown) => {
          if (!control.signal.aborted) control.abort(err);
        }),
      ),
    );
    this.writes.add(running);
    try {
      await running;
    } finally {
      this.writes.delete(running);
      closing.removeEventListener('abort', onClose);
    }
    if (control.signal.aborted) throw control.signal.reason as Error;
    if (refused.length === 0) return;
    this.ctx.metrics.inc(HTTP_REFUSED, { node: this.ctx.name }, refused.length);
    refused.sort((a, b) => a.index - b.index);
    return { refused };
  }

  /** Aborts every request and wait in flight; their writes reject. */
  async close(): Promise<void> {
    if (!this.closing.signal.aborted) {
      this.closing.abort(new ConnectionError('E_HTTP_CLOSED', 'the sink closed before every message of the write was delivered; none of it is acknowledged', this.where));
    }
    await Promise.allSettled([...this.writes]);
  }

  private resolveTarget(): Target {
    if (this.target) return this.target;
    const target = parseTarget(this.config.url, this.where);
    target.headers = { 'content-type': 'application/json', 'user-agent': 'sluice' };
    if (target.basic) target.headers.authorization = target.basic;
    // Configured headers win, whatever their case (`Content-Type` replaces ours).
    for (const [name, value] of Object.entries(this.config.headers ?? {})) target.headers[name.toLowerCase()] = value;
    this.target = target;
    return target;
  }

  /** One message until the target takes it (undefined) or refuses it (why); throws when aborted. */
  private async deliver(target: Target, message: OutboundMessage, signal: AbortSignal): Promise<RecordError | undefined> {
    let body: string;
    try {
      body = stringifyJson(message.value);
    } catch (err) {
      return new RecordError('E_HTTP_BODY', `the body cannot be written as JSON: ${errorMessage(err)}`, this.where, { cause: err });
    }
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(target, body, signal);
      if (outcome.kind !== 'retry') {
        this.answered();
        return outcome.kind === 'refused' ? outcome.error : undefined;
      }
      const wait = outcome.retryAfterMs !== undefined ? Math.min(MAX_RETRY_AFTER_MS, Math.max(this.initialMs, outcome.retryAfterMs)) : this.backoff(attempt);
      this.failed(outcome.reason, wait);
      this.ctx.metrics.inc(HTTP_RETRIES, { node: this.ctx.name });
      this.ctx.metrics.inc(SINK_RETRIES, { node: this.ctx.name });
      await delay(wait, signal);
    }
  }

  /** A random wait between `initial` and a ceiling that doubles per attempt up to `max` (jitter spreads retries of many messages). */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** attempt);
    return this.initialMs + this.random() * (ceiling - this.initialMs);
  }

  private async attempt(target: Target, body: string, signal: AbortSignal): Promise<Attempt> {
    if (signal.aborted) throw signal.reason as Error;
    const request = new AbortController();
    const onAbort = () => request.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      request.abort(new Error('timeout'));
    }, this.timeoutMs);
    try {
      // No redirects: fetch would follow a 301/302 with a GET and no body, and call it delivered.
      const response = await fetch(target.href, { method: this.method, headers: target.headers, body, signal: request.signal, redirect: 'manual' });
      return await this.judge(response);
    } catch (err) {
      if (signal.aborted) throw signal.reason as Error;
      if (err instanceof SluiceError) throw err;
      return { kind: 'retry', reason: timedOut ? `no answer within ${formatDuration(this.timeoutMs)}` : networkReason(err) };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async judge(response: Response): Promise<Attempt> {
    const { status } = response;
    const statusText = `${status}${response.statusText ? ` ${response.statusText}` : ''}`;
    if (status >= 200 && status < 300) {
      await readUpTo(response, DISCARD_BYTES);
      return { kind: 'delivered' };
    }
    if (status >= 300 && status < 400) {
      await readUpTo(response, DISCARD_BYTES);
      const location = response.headers.get('location');
      throw new ConnectionError(
        'E_HTTP_REDIRECT',
        `the target answered ${statusText}${location ? ` (to ${redactUrl(location)})` : ''}; redirects are not followed (a POST would become a GET): set \`url\` to where it points`,
        this.where,
      );
    }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      const excerpt = await bodyExcerpt(response);
      return { kind: 'refused', error: new RecordError('E_HTTP_REFUSED', `the target refused the message: ${statusText}${excerpt ? `: ${excerpt}` : ''}`, this.where) };
    }
    const retryAfter = status === 429 || status === 503 ? parseRetryAfter(response.headers.get('retry-after'), Date.now()) : undefined;
    await readUpTo(response, DISCARD_BYTES);
    return retryAfter === undefined ? { kind: 'retry', reason: statusText } : { kind: 'retry', reason: statusText, retryAfterMs: retryAfter };
  }

  /** A failed attempt: a warning on the first, then at most one per WARN_INTERVAL_MS (across outages, so a flapping target cannot flood the log). */
  private failed(reason: string, waitMs: number): void {
    this.failures++;
    const now = this.ctx.clock.now();
    this.failingSince ??= now;
    if (this.lastWarnAt !== undefined && now - this.lastWarnAt < WARN_INTERVAL_MS) return;
    this.lastWarnAt = now;
    this.warnedThisOutage = true;
    this.ctx.logger.warn(
      { sink: this.ctx.name, target: this.target?.origin, error: reason, attempts: this.failures, next_attempt_ms: Math.round(waitMs) },
      `http sink: ${this.method} failed; retrying until the target takes it (the pipeline slows down meanwhile, nothing is dropped)`,
    );
  }

  /** The target answered (delivered or refused): an outage that was warned about is over. */
  private answered(): void {
    if (this.failures === 0) return;
    if (this.warnedThisOutage) {
      this.ctx.logger.info(
        { sink: this.ctx.name, target: this.target?.origin, failed_attempts: this.failures, failing_ms: this.ctx.clock.now() - (this.failingSince ?? 0) },
        'http sink: the target answers again',
      );
    }
    this.failures = 0;
    this.failingSince = undefined;
    this.warnedThisOutage = false;
  }
}

export const httpSink: SinkDef<HttpSinkConfig> = {
  family: 'sink',
  name: 'http',
  summary: 'Send each record as one JSON request to an HTTP endpoint (a webhook), retrying until it is taken.',
  description: [
    'Each record becomes one request (`POST` unless `method` says otherwise) whose body is `body` evaluated over the record, or the value itself, as JSON',
    '(`content-type: application/json`; integers beyond 2^53 are sent exactly), with `headers` on every request. Up to `max_in_flight` requests are',
    'in flight at once, so messages may arrive in another order than the records had; `max_in_flight: 1` keeps it. A 2xx answer delivers the message.',
    'A 4xx answer other than 408 and 429 refuses it for what it holds: its record goes to `<sink>.errors` with the status and the start of the answer',
    '(at most 200 characters), and so does a record whose `body` fails or gives no value. A 429 or 503 with `Retry-After` (seconds or a date) is',
    'retried after that long (at most 5 minutes); 5xx, 408, 429, timeouts and network errors otherwise after a random wait between `retry.initial` and a',
    'ceiling that doubles per attempt up to `retry.max`. Retries never stop: while the target is down the sink queue fills and the sources slow down,',
    'nothing is dropped; a warning is logged at the first failure and at most every 30 seconds after, and `sluice_http_retries_total` counts retries.',
    'Delivery is at least once: a request that timed out may have arrived, and is sent again, so receivers should tolerate duplicates. Redirects are not',
    'followed (a POST would become a GET): a 3xx answer fails the run. Nothing is contacted at start, since the target may be down then.',
  ].join(' '),
  schema,
  describe(config) {
    const names = Object.keys(config.headers ?? {});
    return (
      `${config.method ?? 'POST'} ${redactUrl(config.url)} as JSON${config.body ? ', body by expression' : ''}` +
      `${names.length ? `, headers ${names.join(', ')}` : ''}, up to ${config.max_in_flight ?? DEFAULT_MAX_IN_FLIGHT} in flight`
    );
  },
  create: (config, ctx) => new HttpSink(config, ctx),
};
