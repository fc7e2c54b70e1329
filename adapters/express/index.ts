/**
 * Express 5 adapter of the event bus: `eventBusMiddleware(bus)` gives every
 * request `req.events` (publishes with the request's metadata), and
 * `eventBusRouter(bus, options)` serves the timeline and health routes, with a
 * `close()` that stops the bus.
 *
 * Type `req.events` with your catalog once, by augmenting {@link EventBusRegistry}.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createEventBus } from '@blawby/event-bus';
 * import { eventBusMiddleware, eventBusRouter } from '@blawby/event-bus/express';
 * import { catalog } from './events/catalog';
 *
 * declare module '@blawby/event-bus/express' {
 *   interface EventBusRegistry {
 *     catalog: typeof catalog;
 *   }
 * }
 *
 * const bus = createEventBus({ catalog });
 * const app = express();
 * app.use(express.json());
 * app.use(eventBusMiddleware(bus));
 * const events = eventBusRouter(bus, {
 *   authorize: async (req) => {
 *     const session = await sessions.verify(req.headers.authorization);
 *     return session ? { actor: session.userId, organizationIds: session.organizationIds } : null;
 *   },
 * });
 * app.use('/events', events);
 *
 * app.post('/signup', async (req, res) => {
 *   const user = await users.create(req.body);
 *   await req.events.publish('auth.user_signed_up',
 *     { email: user.email, name: user.name, signupMethod: 'email' },
 *     { actor: user.id, actorType: 'user' });
 *   res.status(201).json({ id: user.id });
 * });
 *
 * await bus.start();
 * const server = app.listen(3000);
 * // on shutdown: server.close(); await events.close();   // stops the bus
 * ```
 *
 * @module @blawby/event-bus/express
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import type { Request, RequestHandler, Response, Router } from 'express';
import { InvalidOptionError } from '@blawby/event-bus';
import type { Catalog, EventBus, Logger } from '@blawby/event-bus';
import {
  createDashboard,
  createRequestEvents,
  openDashboardStream,
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
  unreadableBody,
  type DashboardOptions,
  type HttpResult,
  type Identity,
  type IngestBody,
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

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express's own extension point
  namespace Express {
    interface Request {
      /** Set by `eventBusMiddleware`: publishes with this request's `ipAddress`, `userAgent`, `requestId`, `source: 'api'`. */
      events: RequestEvents<RegisteredCatalog>;
    }
  }
}

/** Options of {@link eventBusMiddleware}. */
export interface EventBusMiddlewareOptions {
  /**
   * The request's correlation id. Default: the `X-Request-Id` header when it is
   * short and plain (at most 200 characters of `[A-Za-z0-9_.:/+=@-]`), else a random UUID.
   */
  requestId?: (req: Request) => string | undefined;
}

/**
 * Tells who is calling: `{ actor, organizationIds }`, or `null` for no identity
 * (the route answers 401). Throwing passes the error to Express's error handling.
 */
export type ExpressAuthorize = (req: Request) => Promise<Identity | null> | Identity | null;

/** Options of {@link eventBusRouter}. */
export interface EventBusRouterOptions extends EventBusMiddlewareOptions {
  /** Identity of the caller of the timeline and ingest routes; both need it. */
  authorize?: ExpressAuthorize;
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

/** The router of {@link eventBusRouter}: an Express router with `close()`. */
export interface EventBusRouter extends Router {
  /** Stops the bus (`bus.stop()`: in-flight handlers finish); idempotent. Call it when the server shuts down. */
  close(): Promise<void>;
}

function defaultRequestId(req: Request): string {
  return sanitizeRequestId(req.get('x-request-id')) ?? randomUUID();
}

function metadataOf(req: Request, requestId: (req: Request) => string | undefined): RequestMetadata {
  return requestMetadata({ ipAddress: req.ip, userAgent: req.get('user-agent'), requestId: requestId(req) });
}

/**
 * Middleware that sets `req.events`: `bus.publish` and `bus.publishMany` with
 * `metadata.ipAddress` (`req.ip`, mind Express's `trust proxy`), `userAgent`,
 * `requestId` and `source: 'api'` filled in; metadata passed explicitly wins.
 */
export function eventBusMiddleware<C extends Catalog = RegisteredCatalog>(
  bus: EventBus<C>,
  options: EventBusMiddlewareOptions = {},
): RequestHandler {
  if (!bus || typeof bus.publish !== 'function') {
    throw new InvalidOptionError('bus', 'eventBusMiddleware needs the event bus');
  }
  const requestId = options.requestId ?? defaultRequestId;
  return (req, _res, next) => {
    req.events = createRequestEvents(bus, metadataOf(req, requestId)) as unknown as RequestEvents<RegisteredCatalog>;
    next();
  };
}

function send(res: Response, result: HttpResult): void {
  res.status(result.status).set('cache-control', 'no-store').json(result.body);
}

/** The ingest body: the text `express.text` read, or what a parser mounted earlier (`express.json()`) made of it. */
function bodyOf(req: Request): IngestBody {
  const body: unknown = req.body;
  if (typeof body === 'string') return { text: body };
  return body === undefined ? { text: '' } : { value: body };
}

/** body-parser's errors carry an HTTP status: 413 over the limit, else a body it could not read. */
function bodyFailure(err: unknown): HttpResult {
  return (err as { status?: unknown }).status === 413 ? payloadTooLarge() : unreadableBody();
}

/**
 * A router with the bus's routes, to mount under a prefix
 * (`app.use('/events', eventBusRouter(bus, { authorize }))`):
 *
 * - `GET /timeline?organizationId&actor&eventTypes&limit&cursor&from&to`:
 *   200 `{ events, nextCursor }`, 400 `{ error: { code: 'INVALID_QUERY', issues } }`,
 *   401 when `authorize` returns `null`, 403 for an organization not in the
 *   caller's `organizationIds` (publishing `org.access_denied` when the catalog
 *   has it, rate-limited). Only events of the caller's organizations and the
 *   caller's own events without organization; 503/500 with a fixed body when
 *   the storage fails (the cause is logged, never sent).
 * - `GET /health` (public): 200 with `bus.health()`, 503 when unhealthy.
 * - `POST /ingest` (with `ingest`): CloudEvents 1.0 in structured, binary or
 *   batch mode, validated against the catalog and stored once per `id`:
 *   201 `{ event, duplicate: false }` (a batch: `{ events, duplicates }`),
 *   200 for a repeat, 400 with `issues` (nothing stored), 401, 403, 409, 413, 415.
 * - `GET /metrics` (public, with the `metrics` option): the Prometheus text, 503 when the source fails.
 *
 * It works with or without {@link eventBusMiddleware} in front. Its `close()`
 * stops the bus.
 */
export function eventBusRouter<C extends Catalog = RegisteredCatalog>(
  bus: EventBus<C>,
  options: EventBusRouterOptions = {},
): EventBusRouter {
  if (!bus || typeof bus.publish !== 'function') {
    throw new InvalidOptionError('bus', 'eventBusRouter needs the event bus');
  }
  const { authorize, logger } = options;
  const timeline = options.timeline ?? authorize !== undefined;
  const health = options.health ?? true;
  if (options.metrics !== undefined && !isMetricsSource(options.metrics)) {
    throw new InvalidOptionError('metrics', 'must be a metrics source such as eventBusMetrics(bus) or a prom-client Registry');
  }
  if (timeline && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the timeline route needs an `authorize` function');
  }
  const ingest = resolveIngestOptions(options.ingest);
  if (ingest && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the ingest route needs an `authorize` function');
  }
  const dashboardOptions = resolveDashboardOptions(options.dashboard);
  if (dashboardOptions && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the dashboard needs an `authorize` function');
  }
  const requestId = options.requestId ?? defaultRequestId;

  const router = express.Router() as EventBusRouter;
  const endStreams = dashboardOptions && authorize ? mountDashboard(router, bus, authorize, dashboardOptions, logger) : () => {};
  if (timeline && authorize) {
    router.get('/timeline', async (req, res) => {
      const identity = await authorize(req);
      const events = (req as Partial<Request>).events;
      const result = await timelineRoute(bus, {
        query: req.query as RawQuery,
        identity,
        metadata: events?.metadata ?? metadataOf(req, requestId),
        method: req.method,
        path: `${req.baseUrl}/timeline`,
        ...(logger ? { logger } : {}),
      });
      send(res, result);
    });
  }
  if (health) {
    router.get('/health', async (_req, res) => send(res, await healthRoute(bus, logger)));
  }
  const { metrics } = options;
  if (metrics) {
    router.get('/metrics', async (_req, res) => {
      const result = await metricsRoute(metrics, logger);
      res.status(result.status).type(result.contentType).set('cache-control', 'no-store').send(result.body);
    });
  }
  if (ingest && authorize) {
    // Any content type, as text: the route tells the CloudEvents modes apart itself.
    const readBody = express.text({ type: () => true, limit: ingest.bodyLimit });
    router.post(
      '/ingest',
      (req, res, next) => readBody(req, res, (err?: unknown) => (err ? send(res, bodyFailure(err)) : next())),
      async (req, res) => {
        const identity = await authorize(req);
        const events = (req as Partial<Request>).events;
        const result = await ingestRoute(
          bus,
          {
            headers: req.headers,
            body: bodyOf(req),
            identity,
            metadata: events?.metadata ?? metadataOf(req, requestId),
            ...(logger ? { logger } : {}),
          },
          ingest,
        );
        send(res, result);
      },
    );
  }
  router.close = () => {
    endStreams();
    return bus.stop();
  };
  return router;
}

/** The dashboard's page, JSON routes and live stream; returns what ends the open streams. */
function mountDashboard<C extends Catalog>(
  router: Router,
  bus: EventBus<C>,
  authorize: ExpressAuthorize,
  options: DashboardOptions,
  logger: Logger | undefined,
): () => void {
  const dashboard = createDashboard(bus, options);
  const streams = new Set<() => void>();
  router.get('/dashboard', (_req, res) => {
    const page = dashboard.page();
    res.status(page.status).type(page.contentType).set('cache-control', 'no-store').send(page.body);
  });
  router.get('/dashboard/api/stream', async (req, res) => {
    const refused = dashboard.refuse(await authorize(req), logger);
    if (refused) return send(res, refused);
    openDashboardStream(dashboard, req, res, streams);
  });
  const readJson = express.json({ limit: '16kb' });
  const api = async (req: Request, res: Response) => {
    const result = await dashboard.api({
      method: req.method,
      path: req.path.replace(/^\/dashboard\/api\/?/, ''),
      query: req.query as RawQuery,
      contentType: req.get('content-type'),
      body: req.body as unknown,
      identity: await authorize(req),
      ...(logger ? { logger } : {}),
    });
    send(res, result);
  };
  router.get('/dashboard/api/*path', api);
  router.post('/dashboard/api/*path', (req, res, next) => readJson(req, res, (err?: unknown) => (err ? send(res, unreadableBody()) : next())), api);
  return () => {
    for (const end of [...streams]) end();
  };
}
