/**
 * Fastify plugin of the event bus: `fastify.events` (the bus), `request.events`
 * (publishes with the request's metadata), the timeline and health routes, and
 * the bus stopped when Fastify closes.
 *
 * Type `fastify.events` and `request.events` with your catalog once, by
 * augmenting {@link EventBusRegistry}.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createEventBus } from '@blawby/event-bus';
 * import { eventBusPlugin } from '@blawby/event-bus/fastify';
 * import { catalog } from './events/catalog';
 *
 * declare module '@blawby/event-bus/fastify' {
 *   interface EventBusRegistry {
 *     catalog: typeof catalog;
 *   }
 * }
 *
 * const bus = createEventBus({ catalog });
 * const app = Fastify();
 * await app.register(eventBusPlugin, {
 *   bus,
 *   routes: { prefix: '/events', timeline: true, health: true },
 *   authorize: async (request) => {
 *     const session = await sessions.verify(request.headers.authorization);
 *     return session ? { actor: session.userId, organizationIds: session.organizationIds } : null;
 *   },
 * });
 *
 * app.post('/signup', async (request) => {
 *   const user = await users.create(request.body);
 *   await request.events.publish('auth.user_signed_up',
 *     { email: user.email, name: user.name, signupMethod: 'email' },
 *     { actor: user.id, actorType: 'user' });
 *   return { id: user.id };
 * });
 *
 * await bus.start();
 * await app.listen({ port: 3000 });
 * // app.close() stops the bus.
 * ```
 *
 * @module @blawby/event-bus/fastify
 */
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidOptionError } from '@blawby/event-bus';
import type { EventBus } from '@blawby/event-bus';
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
  timelineRoute,
  unreadableBody,
  type DashboardOptions,
  type HttpResult,
  type Identity,
  type IngestOptions,
  type MetricsSource,
  type RawQuery,
  type RegisteredBus,
  type RegisteredCatalog,
  type RequestEvents,
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

declare module 'fastify' {
  interface FastifyInstance {
    /** The event bus registered by `eventBusPlugin`. */
    events: EventBus<RegisteredCatalog>;
  }
  interface FastifyRequest {
    /** Publishes with this request's `ipAddress`, `userAgent`, `requestId` and `source: 'api'`. */
    events: RequestEvents<RegisteredCatalog>;
  }
}

/** Which routes the plugin adds; each is off unless asked for. */
export interface EventBusRoutesOptions {
  /** Path prefix of the routes (default `'/events'`). */
  prefix?: string;
  /** `GET {prefix}/timeline`: needs `authorize`. */
  timeline?: boolean;
  /** `GET {prefix}/health`: public. */
  health?: boolean;
  /** `POST {prefix}/ingest`, CloudEvents in: needs `authorize`. `true` takes the default limits. */
  ingest?: boolean | IngestOptions;
  /** `GET {prefix}/metrics`, public: the Prometheus text of this source (e.g. `eventBusMetrics(bus)` of `@blawby/event-bus/prometheus`). */
  metrics?: MetricsSource;
  /**
   * `GET {prefix}/dashboard`, the dashboard page, with its JSON routes and
   * live stream under `{prefix}/dashboard/api/`: needs `authorize`, and shows
   * every organization's events, so admit operators only. `{ readOnly: true }`
   * hides redrive and discard.
   */
  dashboard?: boolean | DashboardOptions;
}

/**
 * Tells who is calling: `{ actor, organizationIds }`, or `null` for no identity
 * (the route answers 401). Throwing lets Fastify's error handling answer.
 */
export type FastifyAuthorize = (request: FastifyRequest) => Promise<Identity | null> | Identity | null;

/** Options of {@link eventBusPlugin}. */
export interface EventBusPluginOptions {
  /** The bus to expose as `fastify.events` (of the catalog in {@link EventBusRegistry}, when one is registered). */
  bus: RegisteredBus;
  /** The timeline and health routes (both off unless asked for). */
  routes?: EventBusRoutesOptions;
  /** Identity of the caller of the timeline and ingest routes; required when either is on. */
  authorize?: FastifyAuthorize;
  /** Stop the bus in Fastify's `onClose` hook (default `true`). */
  stopOnClose?: boolean;
}

/** `'/events/'` and `'events'` become `'/events'`; `'/'` and `''` become `''`. */
function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '/events').trim().replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

function send(reply: FastifyReply, result: HttpResult): FastifyReply {
  return reply.code(result.status).header('cache-control', 'no-store').send(result.body);
}

function metadataOf(request: FastifyRequest) {
  return requestMetadata({ ipAddress: request.ip, userAgent: request.headers['user-agent'], requestId: request.id });
}

const plugin: FastifyPluginAsync<EventBusPluginOptions> = async (fastify: FastifyInstance, options) => {
  const { bus, routes = {}, authorize, stopOnClose = true } = options;
  if (!bus || typeof bus.publish !== 'function') {
    throw new InvalidOptionError('bus', 'eventBusPlugin needs the event bus as its `bus` option');
  }
  if (routes.metrics !== undefined && !isMetricsSource(routes.metrics)) {
    throw new InvalidOptionError('routes.metrics', 'must be a metrics source such as eventBusMetrics(bus) or a prom-client Registry');
  }
  if (routes.timeline && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the timeline route needs an `authorize` function');
  }
  const ingest = resolveIngestOptions(routes.ingest);
  if (ingest && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the ingest route needs an `authorize` function');
  }
  const dashboardOptions = resolveDashboardOptions(routes.dashboard);
  if (dashboardOptions && typeof authorize !== 'function') {
    throw new InvalidOptionError('authorize', 'the dashboard needs an `authorize` function');
  }

  fastify.decorate('events', bus);
  // A lazy getter: usable from any hook, and free for requests that publish nothing.
  const perRequest = new WeakMap<FastifyRequest, RequestEvents<RegisteredCatalog>>();
  fastify.decorateRequest('events', {
    getter(this: FastifyRequest) {
      let events = perRequest.get(this);
      if (!events) {
        events = createRequestEvents(bus, metadataOf(this)) as unknown as RequestEvents<RegisteredCatalog>;
        perRequest.set(this, events);
      }
      return events;
    },
  });
  if (stopOnClose) fastify.addHook('onClose', async () => bus.stop());

  const prefix = normalizePrefix(routes.prefix);
  if (routes.timeline && authorize) {
    fastify.get(`${prefix}/timeline`, async (request, reply) => {
      const identity = await authorize(request);
      const result = await timelineRoute(bus, {
        query: request.query as RawQuery,
        identity,
        metadata: request.events.metadata,
        method: request.method,
        path: request.routeOptions.url ?? `${prefix}/timeline`,
        logger: request.log,
      });
      return send(reply, result);
    });
  }
  if (routes.health) {
    fastify.get(`${prefix}/health`, async (request, reply) => send(reply, await healthRoute(bus, request.log)));
  }
  if (ingest && authorize) {
    // A child context, so that its catch-all text parser and error handler touch no route of the application.
    fastify.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: ingest.bodyLimit }, (_request, body, done) =>
        done(null, body),
      );
      scope.setErrorHandler((err: FastifyError, _request, reply) => {
        if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, payloadTooLarge());
        if (err.code?.startsWith('FST_ERR_CTP_')) return send(reply, unreadableBody());
        throw err; // what authorize throws: the application's error handler answers
      });
      scope.post(`${prefix}/ingest`, async (request, reply) => {
        const identity = await authorize(request);
        const result = await ingestRoute(
          bus,
          {
            headers: request.headers,
            body: { text: typeof request.body === 'string' ? request.body : '' },
            identity,
            metadata: request.events.metadata,
            logger: request.log,
          },
          ingest,
        );
        return send(reply, result);
      });
    });
  }
  if (dashboardOptions && authorize) mountDashboard(fastify, bus, prefix, authorize, dashboardOptions);
  const { metrics } = routes;
  if (metrics) {
    fastify.get(`${prefix}/metrics`, async (request, reply) => {
      const result = await metricsRoute(metrics, request.log);
      return reply.code(result.status).header('content-type', result.contentType).header('cache-control', 'no-store').send(result.body);
    });
  }
};

/** The dashboard's page, JSON routes and live stream (see {@link EventBusRoutesOptions.dashboard}). */
function mountDashboard(
  fastify: FastifyInstance,
  bus: RegisteredBus,
  prefix: string,
  authorize: FastifyAuthorize,
  options: DashboardOptions,
): void {
  const dashboard = createDashboard(bus, options);
  const streams = new Set<() => void>();
  // Open streams would keep Fastify's close waiting for their connections.
  fastify.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });
  fastify.get(`${prefix}/dashboard`, async (_request, reply) => {
    const page = dashboard.page();
    return reply.code(page.status).header('content-type', page.contentType).header('cache-control', 'no-store').send(page.body);
  });
  fastify.get(`${prefix}/dashboard/api/stream`, async (request, reply) => {
    const refused = dashboard.refuse(await authorize(request), request.log);
    if (refused) return send(reply, refused);
    reply.hijack();
    openDashboardStream(dashboard, request.raw, reply.raw, streams);
  });
  const api = async (request: FastifyRequest, reply: FastifyReply) => {
    const result = await dashboard.api({
      method: request.method,
      path: (request.params as { '*'?: string })['*'] ?? '',
      query: request.query as RawQuery,
      contentType: request.headers['content-type'],
      body: request.body,
      identity: await authorize(request),
      logger: request.log,
    });
    return send(reply, result);
  };
  fastify.get(`${prefix}/dashboard/api/*`, api);
  fastify.post(`${prefix}/dashboard/api/*`, api);
}

/**
 * The Fastify plugin (a `fastify-plugin` plugin, so its decorations are seen
 * by the whole application). Decorates `fastify.events` with the bus and
 * `request.events` with a publisher that fills `metadata.ipAddress`
 * (`request.ip`), `userAgent`, `requestId` (`request.id`) and `source: 'api'`.
 * With `routes`, adds:
 *
 * - `GET {prefix}/timeline?organizationId&actor&eventTypes&limit&cursor&from&to`:
 *   200 `{ events, nextCursor }`, 400 `{ error: { code: 'INVALID_QUERY', issues } }`,
 *   401 when `authorize` returns `null`, 403 for an organization not in the
 *   caller's `organizationIds` (publishing `org.access_denied` when the catalog
 *   has it, rate-limited). Only events of the caller's organizations and the
 *   caller's own events without organization; 503/500 with a fixed body when
 *   the storage fails (the cause is logged, never sent).
 * - `GET {prefix}/health`: 200 with `bus.health()`, 503 when unhealthy.
 * - `POST {prefix}/ingest` (with `routes.ingest`): CloudEvents 1.0 in structured,
 *   binary or batch mode, validated against the catalog and stored once per `id`:
 *   201 `{ event, duplicate: false }` (a batch: `{ events, duplicates }`),
 *   200 for a repeat, 400 with `issues` (nothing stored), 401, 403, 409, 413, 415.
 * - `GET {prefix}/metrics` (with `routes.metrics`): the Prometheus text, 503 when the source fails.
 * - `GET {prefix}/dashboard` (with `routes.dashboard`): the dashboard page; its JSON
 *   routes and live stream under `{prefix}/dashboard/api/`, behind `authorize`.
 *
 * Stops the bus in `onClose` (unless `stopOnClose: false`). It does not start it:
 * call `bus.start()` in the processes that run handlers.
 */
export const eventBusPlugin = fp(plugin, { fastify: '5.x', name: '@blawby/event-bus' });

export default eventBusPlugin;
