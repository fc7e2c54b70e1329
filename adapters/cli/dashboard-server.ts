/**
 * The dashboard page on a bare `node:http` server, for `event-bus dashboard`:
 * the same page, JSON routes and live stream the framework adapters mount
 * (`createDashboard` of adapters/http), with no framework to install. There
 * is no application `authorize` here, so a token stands in for it: the JSON
 * routes and the stream want `Authorization: Bearer <token>`, which the page
 * sends once it was opened with `#token=<token>` (the fragment never reaches
 * the server or a log). The page itself holds no data and is served to anyone.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Catalog, EventBus, Logger } from '@blawby/event-bus';
import {
  createDashboard,
  openDashboardStream,
  payloadTooLarge,
  unreadableBody,
  type DashboardSignals,
  type HttpResult,
  type Identity,
  type RawQuery,
} from '../http';

/** Largest POST body the JSON routes read (a redrive filter or an id is far smaller). */
const BODY_LIMIT = 16 * 1024;
/** Who the dashboard's requests act as (the bus records no actor for redrives; this is for the routes' checks). */
const OPERATOR: Identity = { actor: 'event-bus-cli', organizationIds: [] };

/** What {@link startDashboardServer} serves, and where. */
export interface DashboardServerOptions {
  host: string;
  /** `0` picks a free port. */
  port: number;
  /** The bearer token the JSON routes and the stream want. */
  token: string;
  readOnly: boolean;
  /** Where request failures go (the routes answer 500 and log the cause). */
  logger: Logger;
  /** News for the live stream beyond this process (see {@link DashboardSignals}). */
  signals?: DashboardSignals;
}

/** A listening dashboard server. */
export interface DashboardServer {
  /** `http://host:port`, the port the server got. */
  readonly origin: string;
  /** Ends the live streams and open connections, then stops listening. */
  close(): Promise<void>;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

function send(res: ServerResponse, result: HttpResult): void {
  res.writeHead(result.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(result.body));
}

/** The query string as the routes take it: a repeated key becomes an array. */
function queryOf(url: URL): RawQuery {
  const query: RawQuery = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  return query;
}

/** The JSON body of a POST (`undefined` when empty), or the answer when it is too large or not JSON. */
async function readJson(req: IncomingMessage): Promise<{ body: unknown } | { refused: HttpResult }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) return { refused: payloadTooLarge() };
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { body: undefined };
  try {
    return { body: JSON.parse(text) as unknown };
  } catch {
    return { refused: unreadableBody() };
  }
}

/** Starts the server; resolves once it listens (rejects with the listen error, e.g. `EADDRINUSE`). */
export async function startDashboardServer<C extends Catalog>(
  bus: EventBus<C>,
  options: DashboardServerOptions,
): Promise<DashboardServer> {
  const dashboard = createDashboard(bus, { readOnly: options.readOnly }, options.signals);
  const expected = digest(`Bearer ${options.token}`);
  // Compared as digests, so the comparison takes the same time whatever was sent.
  const identityOf = (req: IncomingMessage): Identity | null =>
    timingSafeEqual(digest(req.headers.authorization ?? ''), expected) ? OPERATOR : null;
  const streams = new Set<() => void>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (req.method === 'GET' && path === '/') {
      res.writeHead(302, { location: '/dashboard' }).end();
      return;
    }
    if (req.method === 'GET' && path === '/dashboard') {
      const page = dashboard.page();
      res.writeHead(page.status, { 'content-type': page.contentType, 'cache-control': 'no-store' }).end(page.body);
      return;
    }
    if (!path.startsWith('/dashboard/api/')) {
      send(res, { status: 404, body: { error: { code: 'NOT_FOUND', message: 'Not found: the dashboard is at /dashboard' } } });
      return;
    }
    const identity = identityOf(req);
    if (req.method === 'GET' && path === '/dashboard/api/stream') {
      const refused = dashboard.refuse(identity, options.logger);
      if (refused) return send(res, refused);
      openDashboardStream(dashboard, req, res, streams);
      return;
    }
    let body: unknown;
    if (req.method === 'POST') {
      const read = await readJson(req);
      if ('refused' in read) return send(res, read.refused);
      body = read.body;
    }
    send(
      res,
      await dashboard.api({
        method: req.method ?? 'GET',
        path: path.slice('/dashboard/api/'.length),
        query: queryOf(url),
        contentType: req.headers['content-type'],
        body,
        identity,
        logger: options.logger,
      }),
    );
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      options.logger.error({ err, url: req.url }, 'dashboard request failed');
      if (!res.headersSent) send(res, { status: 500, body: { error: { code: 'INTERNAL_ERROR', message: 'Internal error' } } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const end of [...streams]) end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
