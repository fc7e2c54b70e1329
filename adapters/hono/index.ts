/**
 * Hono 4 adapter of the event bus: `eventBusMiddleware(bus)` gives every
 * request `c.var.events` (publishes with the request's metadata), and
 * `eventBusRouter(bus, options)` is a Hono app with the timeline and health
 * routes, to mount with `app.route('/events', ...)`, with a `close()` that
 * stops the bus.
 *
 * Type `c.var.events` with your catalog once, by augmenting {@link EventBusRegistry}
 * (then every Hono context sees it), or give your app the {@link EventBusEnv}
 * of your catalog (`new Hono<EventBusEnv<typeof catalog>>()`).
 *
 * @example
 * ```ts
 * import { Hono } from 'hono';
 * import { requestId } from 'hono/request-id';
 * import { createEventBus } from '@blawby/event-bus';
 * import { eventBusMiddleware, eventBusRouter } from '@blawby/event-bus/hono';
 * import { catalog } from './events/catalog';
 *
 * declare module '@blawby/event-bus/hono' {
 *   interface EventBusRegistry {
 *     catalog: typeof catalog;
 *   }
 * }
 *
 * const bus = createEventBus({ catalog });
 * const app = new Hono();
 * app.use(requestId());                // optional: its id becomes metadata.requestId
 * app.use(eventBusMiddleware(bus));
 * const events = eventBusRouter(bus, {
 *   authorize: async (c) => {
 *     const session = await sessions.verify(c.req.header('authorization'));
 *     return session ? { actor: session.userId, organizationIds: session.organizationIds } : null;
 *   },
 * });
 * app.route('/events', events);
 *
 * app.post('/signup', async (c) => {
 *   const user = await users.create(await c.req.json());
 *   await c.var.events.publish('auth.user_signed_up',
 *     { email: user.email, name: user.name, signupMethod: 'email' },
 *     { actor: user.id, actorType: 'user' });
 *   return c.json({ id: user.id }, 201);
 * });
 *
 * await bus.start();
 * // On Node, with `serve` of the @hono/node-server package:
 * const server = serve({ fetch: app.fetch, port: 3000 });
 * // on shutdown: server.close(); await events.close();   // stops the bus
 * ```
 *
 * @module @blawby/event-bus/hono
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Context, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { InvalidOptionError } from '@blawby/event-bus';
import type { Catalog, EventBus, Logger } from '@blawby/event-bus';
import {
  createDashboard,
  createRequestEvents,
  DASHBOARD_STREAM_HEADERS,
  type DashboardOptions,
  type EventBusRegistry,
  healthRoute,
  ingestRoute,
  isMetricsSource,
  metricsRoute,
  payloadTooLarge,
  requestMetadata,
  resolveDashboardOptions,
  resolveIngestOptions,
  sanitizeRequestId,
  timelineRoute,
  type HttpResult,
  type Identity,
  type IngestOptions,
  type MetricsSource,
  type RawQuery,
  type RegisteredCatalog,
  type RequestEvents,
  type RequestMetadata,
} from '../http';

export type {
  DashboardOptions,
  EventBusRegistry,
  HealthFailureBody,
  HttpResult,
  Identity,
  IngestedBatchBody,
  IngestedBody,
  IngestErrorBody,
  IngestErrorCode,
  IngestMetadata,
  IngestOptions,
  MetricsSource,
  QueryIssue,
  RegisteredBus,
  RegisteredCatalog,
  RequestEvents,
  RequestMetadata,
  RouteErrorBody,
  RouteErrorCode,
  TimelineBody,
} from '../http';
export {
  ACCESS_DENIED_EVENT,
  CLOUDEVENTS_BATCH_JSON,
  CLOUDEVENTS_JSON,
  INGEST_METADATA_KEY,
  TIMELINE_DEFAULT_LIMIT,
  TIMELINE_MAX_LIMIT,
} from '../http';

/** The variables {@link eventBusMiddleware} sets on the context. */
export interface EventBusVariables<C extends Catalog = RegisteredCatalog> {
  /** Publishes with this request's `ipAddress`, `userAgent`, `requestId` and `source: 'api'`. */
  events: RequestEvents<C>;
}

/**
 * A Hono `Env` with `c.var.events` typed for catalog `C`:
 * `new Hono<EventBusEnv<typeof catalog>>()`, when you would rather not
 * augment {@link EventBusRegistry}. Intersect it with your own bindings and variables.
 */
export interface EventBusEnv<C extends Catalog = RegisteredCatalog> {
  /** The variables of {@link EventBusVariables}. */
  Variables: EventBusVariables<C>;
}

/**
 * `c.var.events` as every Hono context sees it: typed with the registered
 * catalog when {@link EventBusRegistry} has one; else `unknown`, so that the
 * type an app's {@link EventBusEnv} gives it is the one that counts (an
 * intersection with a catalog-less publisher would blur every payload type).
 */
export type RegisteredRequestEvents = EventBusRegistry extends { catalog: infer C extends Catalog }
  ? RequestEvents<C>
  : unknown;

declare module 'hono' {
  interface ContextVariableMap {
    /** Set by `eventBusMiddleware`: publishes with this request's `ipAddress`, `userAgent`, `requestId`, `source: 'api'`. */
    events: RegisteredRequestEvents;
  }
}

/** Options of {@link eventBusMiddleware}. */
export interface EventBusMiddlewareOptions {
  /**
   * The request's correlation id. Default: `c.var.requestId` when `hono/request-id`'s
   * middleware runs before this one; else the `X-Request-Id` header when it is short
   * and plain (at most 200 characters of `[A-Za-z0-9_.:/+=@-]`); else a random UUID.
   */
  requestId?: (c: Context) => string | undefined;
  /**
   * The client's address. Default: the socket's remote address under
   * `@hono/node-server`, else none. On other runtimes pass their own, e.g.
   * `(c) => getConnInfo(c).remote.address` with `getConnInfo` from `hono/bun`
   * or `hono/deno`; behind a proxy, read the header it sets.
   */
  ipAddress?: (c: Context) => string | undefined;
}

/**
 * Tells who is calling: `{ actor, organizationIds }`, or `null` for no identity
 * (the route answers 401). Throwing passes the error to the app's `onError`.
 */
export type HonoAuthorize = (c: Context) => Promise<Identity | null> | Identity | null;

/** Options of {@link eventBusRouter}. */
export interface EventBusRouterOptions extends EventBusMiddlewareOptions {
  /** Identity of the caller of the timeline and ingest routes; both need it. */
  authorize?: HonoAuthorize;
  /** Serve `GET /timeline` (default: on when `authorize` is given). */
  timeline?: boolean;
  /** Serve `GET /health` (default: on). */
  health?: boolean;
  /** Serve `POST /ingest`, CloudEvents in (default: off); needs `authorize`. */
  ingest?: boolean | IngestOptions;
  /** Serve `GET /metrics`, public: the Prometheus text of this source (e.g. `eventBusMetrics(bus)` of `@blawby/event-bus/prometheus`). */
  metrics?: MetricsSource;
  /**
   * Serve `GET /dashboard`, the dashboard page, with its JSON routes and live
   * stream under `/dashboard/api/` (default: off): needs `authorize`, and
   * shows every organization's events, so admit operators only.
   * `{ readOnly: true }` hides redrive and discard.
   */
  dashboard?: boolean | DashboardOptions;
  /** Where the router logs (a failed `org.access_denied` publish, a failed health check); silent when absent. */
  logger?: Logger;
}

/** The app of {@link eventBusRouter}: a Hono app with `close()`. */
export interface EventBusRouter extends Hono {
  /** Stops the bus (`bus.stop()`: in-flight handlers finish); idempotent. Call it when the server shuts down. */
  close(): Promise<void>;
}

/** What `@hono/node-server` puts in `c.env` (directly, or under `server` for some setups). */
interface NodeBindings {
  incoming?: { socket?: { remoteAddress?: string } };
  server?: { incoming?: { socket?: { remoteAddress?: string } } };
}

function nodeRemoteAddress(c: Context): string | undefined {
  const env = c.env as NodeBindings | undefined;
  if (typeof env !== 'object' || env === null) return undefined;
  const address = (env.server?.incoming ?? env.incoming)?.socket?.remoteAddress;
  return typeof address === 'string' ? address : undefined;
}

function defaultRequestId(c: Context): string {
  // hono/request-id has already checked (or generated) its id.
  const fromMiddleware = (c.var as Record<string, unknown>).requestId;
  if (typeof fromMiddleware === 'string' && fromMiddleware.length > 0) return fromMiddleware;
  return sanitizeRequestId(c.req.header('x-request-id')) ?? crypto.randomUUID();
}

function metadataOf(c: Context, options: EventBusMiddlewareOptions): RequestMetadata {
  return requestMetadata({
    ipAddress: options.ipAddress ? options.ipAddress(c) : nodeRemoteAddress(c),
    userAgent: c.req.header('user-agent'),
    requestId: (options.requestId ?? defaultRequestId)(c),
  });
}

function assertBus(bus: unknown, fn: string): void {
  if (!bus || typeof (bus as { publish?: unknown }).publish !== 'function') {
    throw new InvalidOptionError('bus', `${fn} needs the event bus`);
  }
}

/**
 * Middleware that sets `c.var.events`: `bus.publish` and `bus.publishMany`
 * with `metadata.ipAddress`, `userAgent`, `requestId` and `source: 'api'`
 * filled in; metadata passed explicitly wins.
 */
export function eventBusMiddleware<C extends Catalog = RegisteredCatalog>(
  bus: EventBus<C>,
  options: EventBusMiddlewareOptions = {},
): MiddlewareHandler<EventBusEnv<C>> {
  assertBus(bus, 'eventBusMiddleware');
  return async (c, next) => {
    c.set('events', createRequestEvents(bus, metadataOf(c, options)));
    await next();
  };
}

/** The query string as Fastify and Express give it: a repeated key becomes an array. */
function rawQuery(c: Context): RawQuery {
  const query: RawQuery = {};
  for (const [key, values] of Object.entries(c.req.queries())) {
    query[key] = values.length === 1 ? values[0] : values;
  }
  return query;
}

function send(c: Context, result: HttpResult): Response {
  return c.json(result.body as object, result.status as ContentfulStatusCode, { 'cache-control': 'no-store' });
}

/**
 * A Hono app with the bus's routes, to mount under a prefix
 * (`app.route('/events', eventBusRouter(bus, { authorize }))`):
 *
 * - `GET /timeline?organizationId&actor&eventTypes&limit&cursor&from&to`:
 *   200 `{ events, nextCursor }`, 400 `{ error: { code: 'INVALID_QUERY', issues } }`,
 *   401 when `authorize` returns `null`, 403 for an organization not in the
 *   caller's `organizationIds` (publishing `org.access_denied` when the catalog
 *   has it). Without `organizationId`, only the caller's own events.
 * - `GET /health` (public): 200 with `bus.health()`, 503 when unhealthy.
 * - `GET /metrics` (public, with the `metrics` option): the Prometheus text, 503 when the source fails.
 * - `POST /ingest` (with `ingest`): CloudEvents 1.0 in structured, binary or
 *   batch mode, validated against the catalog and stored once per `id`:
 *   201 `{ event, duplicate: false }` (a batch: `{ events, duplicates }`),
 *   200 for a repeat, 400 with `issues` (nothing stored), 401, 403, 409, 413, 415.
 *
 * It works with or without {@link eventBusMiddleware} in front. Its `close()`
 * stops the bus.
 */
export function eventBusRouter<C extends Catalog = RegisteredCatalog>(
  bus: EventBus<C>,
  options: EventBusRouterOptions = {},
): EventBusRouter {
  assertBus(bus, 'eventBusRouter');
  const { authorize, logger } = options;
  const timeline = options.timeline ?? authorize !== undefined;
  const health = options.health ?? true;
  if (timeline && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the timeline route needs an `authorize` function');
  }
  if (options.metrics !== undefined && !isMetricsSource(options.metrics)) {
    throw new InvalidOptionError(
      'metrics',
      'must be a metrics source such as eventBusMetrics(bus) or a prom-client Registry',
    );
  }
  const ingest = resolveIngestOptions(options.ingest);
  if (ingest && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the ingest route needs an `authorize` function');
  }
  const dashboardOptions = resolveDashboardOptions(options.dashboard);
  if (dashboardOptions && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the dashboard needs an `authorize` function');
  }
  const metadataFor = (c: Context): RequestMetadata =>
    (c.var as { events?: { metadata: RequestMetadata } }).events?.metadata ?? metadataOf(c, options);

  const app = new Hono();
  if (timeline && authorize) {
    app.get('/timeline', async (c) => {
      const identity = await authorize(c);
      const result = await timelineRoute(bus, {
        query: rawQuery(c),
        identity,
        metadata: metadataFor(c),
        method: c.req.method,
        path: c.req.routePath,
        ...(logger ? { logger } : {}),
      });
      return send(c, result);
    });
  }
  if (health) {
    app.get('/health', async (c) => send(c, await healthRoute(bus, logger)));
  }
  const { metrics } = options;
  if (metrics) {
    app.get('/metrics', async (c) => {
      const result = await metricsRoute(metrics, logger);
      return c.body(result.body, result.status as ContentfulStatusCode, {
        'content-type': result.contentType,
        'cache-control': 'no-store',
      });
    });
  }
  if (ingest && authorize) {
    const limit = bodyLimit({ maxSize: ingest.bodyLimit, onError: (c) => send(c, payloadTooLarge()) });
    app.post('/ingest', limit, async (c) => {
      // The body first, as Express and Fastify read it before the handler: a 413 comes before authorize.
      const text = await c.req.text();
      const identity = await authorize(c);
      const result = await ingestRoute(
        bus,
        {
          headers: Object.fromEntries(c.req.raw.headers),
          body: { text },
          identity,
          metadata: metadataFor(c),
          ...(logger ? { logger } : {}),
        },
        ingest,
      );
      return send(c, result);
    });
  }
  const endStreams = dashboardOptions && authorize ? mountDashboard(app, bus, authorize, dashboardOptions, logger) : () => {};
  return Object.assign(app, {
    close: () => {
      endStreams();
      return bus.stop();
    },
  });
}

/** The dashboard's page, JSON routes and live stream; returns what ends the open streams. */
function mountDashboard<C extends Catalog>(
  app: Hono,
  bus: EventBus<C>,
  authorize: HonoAuthorize,
  options: DashboardOptions,
  logger: Logger | undefined,
): () => void {
  const dashboard = createDashboard(bus, options);
  const streams = new Set<() => void>();
  app.get('/dashboard', (c) => {
    const page = dashboard.page();
    return c.body(page.body, page.status as ContentfulStatusCode, { 'content-type': page.contentType, 'cache-control': 'no-store' });
  });
  app.get('/dashboard/api/stream', async (c) => {
    const refused = dashboard.refuse(await authorize(c), logger);
    if (refused) return send(c, refused);
    const encoder = new TextEncoder();
    let end = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const stop = dashboard.stream((chunk) => controller.enqueue(encoder.encode(chunk)));
        end = () => {
          if (!streams.delete(end)) return;
          stop();
          try {
            controller.close();
          } catch {
            // already closed by the client going away
          }
        };
        streams.add(end);
        c.req.raw.signal?.addEventListener('abort', () => end());
      },
      cancel() {
        end();
      },
    });
    return new Response(body, { status: 200, headers: DASHBOARD_STREAM_HEADERS });
  });
  const api = async (c: Context) => {
    let body: unknown;
    const contentType = c.req.header('content-type');
    if (c.req.method === 'POST') body = await c.req.json().catch(() => undefined);
    const result = await dashboard.api({
      method: c.req.method,
      path: c.req.param('rest') ?? '',
      query: rawQuery(c),
      contentType,
      body,
      identity: await authorize(c),
      ...(logger ? { logger } : {}),
    });
    return send(c, result);
  };
  app.get('/dashboard/api/:rest{.+}', api);
  app.post('/dashboard/api/:rest{.+}', bodyLimit({ maxSize: 16 * 1024, onError: (c) => send(c, payloadTooLarge()) }), api);
  return () => {
    for (const end of [...streams]) end();
  };
}
