/**
 * The HTTP server of `sluice run --http [host:]port`:
 *
 *   /metrics       Prometheus text exposition (prom-client)
 *   /healthz       200 while the process answers
 *   /readyz        200 when running, sources connected and the last checkpoint fresh; else 503 and why
 *   /              the live view: the graph of `sluice graph`, with rates, failures, watermarks, lag
 *   /api/graph     the graph as JSON (nodes with their configs, secrets redacted; edges with ports)
 *   /api/status    the status snapshot (what `sluice status` prints)
 *   /api/events    the same snapshot every second, as server-sent events
 *   /api/nodes/N   one node: its config and its recent errors
 *
 * With --threads, the main thread serves the same for all threads (threads-server.ts).
 *
 * It binds 127.0.0.1 unless told otherwise: it has no authentication, and the live view shows
 * configs and error messages. Only GET and HEAD are answered.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, errorMessage } from '../engine/errors.ts';
import type { Logger } from '../engine/logger.ts';
import { planGraph } from '../plan/render.ts';
import type { RecentError } from '../engine/runtime.ts';
import type { Plan } from '../plan/types.ts';
import { LiveStatus, type StatusSnapshot } from './live-status.ts';
import { readiness, type Readiness } from './readiness.ts';
import type { RunStatus } from './run-status.ts';

export interface HttpAddress {
  host: string;
  port: number;
}

/** The port the docs, the compose stack and `sluice status` use: clear of Kafka's, Prometheus' and Grafana's. */
export const DEFAULT_HTTP_PORT = 9477;
export const DEFAULT_HTTP_HOST = '127.0.0.1';

/** `9477`, `0.0.0.0:9477`, `localhost:0`, `[::1]:9477`: a bare port binds 127.0.0.1. */
export function parseHttpAddress(text: string): HttpAddress {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65_535) {
    throw new ConfigError('E_HTTP_ADDRESS', `\`${text}\` is no [host:]port (e.g. 9477, 0.0.0.0:9477, [::1]:9477)`, '--http');
  }
  const host = m[1]?.replace(/^\[(.*)\]$/, '$1') ?? DEFAULT_HTTP_HOST;
  return { host, port };
}

export interface SluiceHttpServer {
  /** e.g. `http://127.0.0.1:9477/` */
  readonly url: string;
  readonly address: HttpAddress;
  close(): Promise<void>;
}

/**
 * What the server shows: one run (`runServed`, below), or the threads of a run on threads
 * (threads-server.ts), whose answers it gathers from them.
 */
export interface ServedRun {
  readonly plan: Plan;
  /** The Prometheus exposition, after refreshing what is read rather than counted. */
  exposition(): Promise<{ contentType: string; text: string }>;
  readiness(): Promise<Readiness>;
  /** A new status sample: rates over the time since the previous one. */
  sample(): Promise<StatusSnapshot>;
  /** A node's recent errors, oldest first. */
  recentErrors(node: string): Promise<RecentError[]>;
}

export interface HttpServerOptions {
  address: HttpAddress;
  status: RunStatus;
  logger: Logger;
  /** How often the live view is updated, ms. Default 1000. */
  sampleMs?: number;
}

/** One run, as `sluice run --http` serves it: its registry (with the process metrics) and its status. */
export function runServed(status: RunStatus): ServedRun {
  const metrics = status.metrics;
  metrics.collectProcessMetrics();
  metrics.setDefaultLabels({ pipeline: status.plan.name });
  const live = new LiveStatus(status);
  return {
    plan: status.plan,
    exposition: () => metrics.exposition(),
    readiness: () => Promise.resolve(readiness(status)),
    async sample() {
      // Collectors first: Kafka lag and slot lag are refreshed by them.
      await metrics.collect();
      return live.sample();
    },
    recentErrors: (node) => Promise.resolve(status.recentErrors(node)),
  };
}

const PAGE_FILES: Record<string, string> = {
  '/': 'index.html',
  '/live-view.js': 'live-view.js',
  '/live-view.css': 'live-view.css',
};

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

function readPage(): Map<string, { type: string; body: Buffer }> {
  const pages = new Map<string, { type: string; body: Buffer }>();
  for (const [path, file] of Object.entries(PAGE_FILES)) {
    const ext = file.slice(file.lastIndexOf('.') + 1);
    pages.set(path, { type: CONTENT_TYPES[ext]!, body: readFileSync(new URL(`./page/${file}`, import.meta.url)) });
  }
  return pages;
}

/** Answers with a body (none for HEAD), never cached. */
function send(res: ServerResponse, code: number, type: string, body: string | Buffer, head: boolean): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(head ? undefined : body);
}

/** A server on `address` that answers with `handle` (a failure becomes a 500); rejects with a ConfigError naming the address. */
async function listenOn(
  requested: HttpAddress,
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  logger: Logger,
): Promise<{ server: Server; address: HttpAddress; url: string }> {
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.warn({ path: req.url, error: errorMessage(err) }, 'http request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${errorMessage(err)}\n`, false);
      else res.end();
    });
  });
  // Probes and scrapes are short; a silent client must not hold a socket for ever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(new ConfigError('E_HTTP_LISTEN', `cannot listen on ${requested.host}:${requested.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`, '--http', { cause: err }));
    server.once('error', onError);
    server.listen(requested.port, requested.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound: string | AddressInfo | null = server.address();
  if (bound === null || typeof bound === 'string') throw new ConfigError('E_HTTP_LISTEN', `listening on ${requested.host}:${requested.port} gave no TCP address`, '--http');
  const address = { host: requested.host, port: bound.port };
  const hostInUrl = address.host.includes(':') ? `[${address.host}]` : address.host;
  return { server, address, url: `http://${hostInUrl}:${address.port}/` };
}

/** Ends a server's connections and closes it. */
function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Starts the server for one run; rejects (ConfigError naming the address) when it cannot listen there. */
export function startHttpServer(options: HttpServerOptions): Promise<SluiceHttpServer> {
  return serve(runServed(options.status), options);
}

/** Starts the server for what `run` shows; rejects (ConfigError naming the address) when it cannot listen there. */
export async function serve(run: ServedRun, options: { address: HttpAddress; logger: Logger; sampleMs?: number }): Promise<SluiceHttpServer> {
  const { logger } = options;
  const pages = readPage();
  const graph = planGraph(run.plan);
  const graphJson = JSON.stringify(graph);
  const clients = new Set<ServerResponse>();

  let latest: StatusSnapshot | undefined;
  let sampling: Promise<StatusSnapshot | undefined> | undefined;
  const sampleNow = (): Promise<StatusSnapshot | undefined> =>
    (sampling ??= (async () => {
      try {
        latest = await run.sample();
        const event = `event: status\ndata: ${JSON.stringify(latest)}\n\n`;
        for (const c of clients) c.write(event);
      } catch (err) {
        logger.warn({ error: errorMessage(err) }, 'live status sample failed');
      } finally {
        sampling = undefined;
      }
      return latest;
    })());
  const timer = setInterval(() => void sampleNow(), options.sampleMs ?? 1_000);
  timer.unref();

  const json = (res: ServerResponse, code: number, value: unknown, head: boolean) => send(res, code, 'application/json; charset=utf-8', JSON.stringify(value), head);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const page = pages.get(path);
    if (page) {
      res.writeHead(200, {
        'content-type': page.type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        // The page loads only its own script and style, and talks only to this server.
        'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
      });
      res.end(head ? undefined : page.body);
      return;
    }
    switch (path) {
      case '/favicon.ico':
        res.writeHead(204).end();
        return;
      case '/metrics': {
        const { contentType, text } = await run.exposition();
        send(res, 200, contentType, text, head);
        return;
      }
      case '/healthz':
        send(res, 200, 'text/plain; charset=utf-8', 'ok\n', head);
        return;
      case '/readyz': {
        const r = await run.readiness();
        send(res, r.ready ? 200 : 503, 'text/plain; charset=utf-8', r.ready ? 'ready\n' : `not ready:\n${r.reasons.map((x) => `  ${x}\n`).join('')}`, head);
        return;
      }
      case '/api/graph':
        send(res, 200, 'application/json; charset=utf-8', graphJson, head);
        return;
      case '/api/status': {
        json(res, 200, await sampleNow(), head);
        return;
      }
      case '/api/events': {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff' });
        if (head) {
          res.end();
          return;
        }
        const current = latest ?? (await sampleNow());
        res.write(current ? `retry: 2000\nevent: status\ndata: ${JSON.stringify(current satisfies StatusSnapshot)}\n\n` : 'retry: 2000\n\n');
        clients.add(res);
        req.on('close', () => clients.delete(res));
        return;
      }
    }
    const nodeName = /^\/api\/nodes\/([^/]+)$/.exec(path)?.[1];
    const node = nodeName === undefined ? undefined : graph.nodes.find((n) => n.name === decodeURIComponent(nodeName));
    if (node) {
      json(res, 200, { node, errors: await run.recentErrors(node.name) }, head);
      return;
    }
    send(res, 404, 'text/plain; charset=utf-8', `no ${path} here: see / , /metrics, /healthz, /readyz\n`, head);
  };

  const listening = await listenOn(options.address, handle, logger).catch((err: unknown) => {
    clearInterval(timer);
    throw err;
  });
  const { server, address, url } = listening;
  logger.info({ url, metrics: `${url}metrics`, ready: `${url}readyz` }, 'http server listening');
  return {
    url,
    address,
    async close() {
      clearInterval(timer);
      for (const c of clients) c.end();
      clients.clear();
      await sampling;
      await closeServer(server);
    },
  };
}
