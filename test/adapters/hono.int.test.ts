/**
 * The Hono adapter over real HTTP (@hono/node-server): the shared route suite,
 * plus what is Hono's own (router defaults, working without the middleware,
 * `hono/request-id`, the typed `Env`, `close()`).
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { createEventBus, EventBusError, memoryStorage } from '@blawby/event-bus';
import type { BaseEvent, Catalog, EventBus, Logger } from '@blawby/event-bus';
import { eventBusMiddleware, eventBusRouter } from '@blawby/event-bus/hono';
import type { EventBusEnv, RequestEvents } from '@blawby/event-bus/hono';
import { httpRoutesSuite, suiteCatalog } from './http-routes.suite';
import { ingestRoutesSuite } from './ingest-routes.suite';
import type { IngestStartApp } from './ingest-routes.suite';

/** Serves `app` on a free port of 127.0.0.1. */
async function listen(app: {
  fetch: (request: Request) => Response | Promise<Response>;
}): Promise<{ server: ServerType; baseUrl: string }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
      resolve({ server, baseUrl: `http://127.0.0.1:${info.port}` }),
    );
  });
}

function closeServer(server: ServerType): Promise<void> {
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}

/** The shared suite passes buses of several catalogs, so its app takes any catalog. */
type AnyEnv = EventBusEnv<Catalog>;
/** An app of the suite's catalog, typed through Hono's `Env` (nothing is registered in `EventBusRegistry`). */
type SuiteEnv = EventBusEnv<typeof suiteCatalog>;

const startApp: IngestStartApp = async ({ bus, identify, prefix, onLog, metrics, ingest }) => {
  const entry = (level: string) => (_fields: Record<string, unknown>, msg?: string) => onLog({ level, msg: msg ?? '' });
  const logger: Logger = { debug: () => {}, info: () => {}, warn: entry('warn'), error: entry('error') };
  const anyBus = bus as unknown as EventBus<Catalog>;
  const app = new Hono<AnyEnv>();
  app.use(eventBusMiddleware(anyBus));
  const router = eventBusRouter(anyBus, {
    authorize: (c) => identify(c.req.header('authorization')),
    logger,
    ...(metrics ? { metrics } : {}),
    ingest: ingest ?? false,
  });
  app.route(prefix, router);
  app.post('/publish', async (c) => {
    const { type, payload, options } = await c.req.json<{ type: string; payload: object; options?: object }>();
    return c.json({ event: await c.var.events.publish(type, payload, options) }, 201);
  });
  app.post('/publish-many', async (c) => {
    const { items } = await c.req.json<{ items: Parameters<RequestEvents<Catalog>['publishMany']>[0] }>();
    return c.json({ events: await c.var.events.publishMany(items) }, 201);
  });
  app.onError((err, c) => {
    if (EventBusError.is(err)) return c.json({ error: { code: err.code } }, 400);
    throw err;
  });
  const { server, baseUrl } = await listen(app);
  return {
    baseUrl,
    close: async () => {
      await closeServer(server);
      await router.close();
    },
  };
};

httpRoutesSuite('Hono', startApp, { metrics: true });
ingestRoutesSuite('Hono', startApp);

describe('eventBusRouter and eventBusMiddleware (Hono specifics)', () => {
  const newBus = () => createEventBus({ catalog: suiteCatalog, storage: memoryStorage() });

  it('serves health by default, the timeline only with authorize, and ingest only when asked', async () => {
    const bus = newBus();
    const app = new Hono();
    const router = eventBusRouter(bus);
    app.route('/events', router);
    const { server, baseUrl } = await listen(app);
    try {
      expect((await fetch(`${baseUrl}/events/health`)).status).toBe(200);
      expect((await fetch(`${baseUrl}/events/timeline`)).status).toBe(404);
      const ingest = await fetch(`${baseUrl}/events/ingest`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents-batch+json' },
        body: '[]',
      });
      expect(ingest.status).toBe(404);
    } finally {
      await closeServer(server);
      await router.close();
    }
  });

  it('can turn health off', async () => {
    const bus = newBus();
    const app = new Hono();
    const router = eventBusRouter(bus, { health: false, authorize: () => null });
    app.route('/events', router);
    const { server, baseUrl } = await listen(app);
    try {
      expect((await fetch(`${baseUrl}/events/health`)).status).toBe(404);
      expect((await fetch(`${baseUrl}/events/timeline`)).status).toBe(401);
    } finally {
      await closeServer(server);
      await router.close();
    }
  });

  it('refuses timeline: true without authorize, and a missing bus', () => {
    const bus = newBus();
    const err = (() => {
      try {
        eventBusRouter(bus, { timeline: true });
      } catch (e) {
        return e;
      }
    })();
    expect(EventBusError.is(err, 'INVALID_OPTION')).toBe(true);
    expect(() => eventBusRouter(bus, { ingest: true })).toThrow(/ingest route needs an `authorize`/);
    expect(() => eventBusMiddleware(undefined as unknown as EventBus<Catalog>)).toThrow(/needs the event bus/);
    expect(() => eventBusRouter(undefined as unknown as EventBus<Catalog>)).toThrow(/needs the event bus/);
  });

  it('publishes org.access_denied with request metadata and the mounted path, even without the middleware', async () => {
    const bus = newBus();
    const app = new Hono();
    const router = eventBusRouter(bus, { authorize: () => ({ actor: 'user_a', organizationIds: [] }) });
    app.route('/api/bus', router);
    const { server, baseUrl } = await listen(app);
    try {
      const res = await fetch(`${baseUrl}/api/bus/timeline?organizationId=org_9`, {
        headers: { 'user-agent': 'bare/1.0', 'x-request-id': 'bare-1' },
      });
      expect(res.status).toBe(403);
      const [denied] = (await bus.timeline({ eventTypes: ['org.access_denied'] })).events;
      expect(denied).toMatchObject({
        organizationId: 'org_9',
        payload: { organizationId: 'org_9', resource: 'events.timeline' },
        metadata: { source: 'api', userAgent: 'bare/1.0', requestId: 'bare-1' },
      });
      expect(denied!.metadata.ipAddress).toMatch(/127\.0\.0\.1|::1/);
    } finally {
      await closeServer(server);
      await router.close();
    }
  });

  it("takes hono/request-id's id, else the X-Request-Id header, else a random UUID", async () => {
    const bus = newBus();
    const metadataOf = async (app: Hono<SuiteEnv>, headers: Record<string, string> = {}) => {
      const { server, baseUrl } = await listen(app);
      try {
        return (await (await fetch(`${baseUrl}/id`, { headers })).json()) as Record<string, string>;
      } finally {
        await closeServer(server);
      }
    };
    const withRequestId = new Hono<SuiteEnv>();
    withRequestId.use(requestId({ generator: () => 'from-hono-request-id' }));
    withRequestId.use(eventBusMiddleware(bus));
    withRequestId.get('/id', (c) => c.json(c.var.events.metadata));
    expect(await metadataOf(withRequestId)).toMatchObject({ requestId: 'from-hono-request-id', source: 'api' });
    expect(await metadataOf(withRequestId, { 'x-request-id': 'client-1' })).toMatchObject({ requestId: 'client-1' });

    const plain = new Hono<SuiteEnv>();
    plain.use(eventBusMiddleware(bus));
    plain.get('/id', (c) => c.json(c.var.events.metadata));
    expect(await metadataOf(plain, { 'x-request-id': 'header-1' })).toMatchObject({ requestId: 'header-1' });
    expect((await metadataOf(plain)).requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await metadataOf(plain, { 'x-request-id': 'has space' })).requestId).toMatch(/^[0-9a-f-]{36}$/);

    const custom = new Hono<SuiteEnv>();
    custom.use(
      eventBusMiddleware(bus, { requestId: (c) => c.req.header('x-correlation-id'), ipAddress: () => '203.0.113.7' }),
    );
    custom.get('/id', (c) => c.json(c.var.events.metadata));
    expect(await metadataOf(custom, { 'x-correlation-id': 'corr-1', 'user-agent': 'custom/1' })).toEqual({
      requestId: 'corr-1',
      ipAddress: '203.0.113.7',
      userAgent: 'custom/1',
      source: 'api',
    });
    await bus.stop();
  });

  it('runs without @hono/node-server (app.request): no socket, so no ipAddress', async () => {
    const bus = newBus();
    const app = new Hono<SuiteEnv>();
    app.use(eventBusMiddleware(bus));
    app.get('/id', (c) => c.json(c.var.events.metadata));
    const res = await app.request('/id', { headers: { 'x-request-id': 'fetch-only' } });
    expect(await res.json()).toEqual({ requestId: 'fetch-only', source: 'api' });
    await bus.stop();
  });

  it('types c.var.events with the catalog of EventBusEnv', () => {
    const app = new Hono<SuiteEnv>();
    app.use(eventBusMiddleware(newBus()));
    app.get('/', async (c) => {
      const event = await c.var.events.publish('org.created', { name: 'typed' });
      expectTypeOf(event).toEqualTypeOf<BaseEvent<'org.created', { name: string }>>();
      // @ts-expect-error not in the catalog
      await c.var.events.publish('org.teleported', {});
      // @ts-expect-error payload of the wrong shape
      await c.var.events.publish('org.created', { name: 42 });
      return c.text(event.eventId);
    });
    expect(app.routes.map((r) => r.path)).toContain('/');
  });
});
