/**
 * The Express adapter over real HTTP: the shared route suite, plus what is
 * Express's own (router defaults, working without the middleware, `close()`).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import type { ErrorRequestHandler } from 'express';
import { describe, expect, it } from 'vitest';
import { createEventBus, EventBusError, memoryStorage } from '@blawby/event-bus';
import type { Catalog, EventBus, Logger } from '@blawby/event-bus';
import { eventBusMiddleware, eventBusRouter } from '@blawby/event-bus/express';
import type { RequestEvents } from '@blawby/event-bus/express';
import { httpRoutesSuite, suiteCatalog } from './http-routes.suite';
import { ingestRoutesSuite } from './ingest-routes.suite';
import type { IngestStartApp } from './ingest-routes.suite';

async function listen(app: express.Express): Promise<{ server: Server; baseUrl: string }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', (err?: Error) => {
      if (err) return reject(err);
      const { port } = server.address() as AddressInfo;
      resolve({ server, baseUrl: `http://127.0.0.1:${port}` });
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}

const errors: ErrorRequestHandler = (err, _req, res, next) => {
  if (EventBusError.is(err)) return void res.status(400).json({ error: { code: err.code } });
  next(err);
};

const startApp: IngestStartApp = async ({ bus, identify, prefix, onLog, metrics, ingest }) => {
  const entry = (level: string) => (_fields: Record<string, unknown>, msg?: string) => onLog({ level, msg: msg ?? '' });
  const logger: Logger = { debug: () => {}, info: () => {}, warn: entry('warn'), error: entry('error') };
  const app = express();
  app.use(express.json());
  app.use(eventBusMiddleware(bus));
  const router = eventBusRouter(bus, {
    authorize: (req) => identify(req.get('authorization')),
    logger,
    ...(metrics ? { metrics } : {}),
    ingest: ingest ?? false,
  });
  app.use(prefix, router);
  // The suite's catalog is not the registered one, so widen req.events to any catalog.
  const events = (req: express.Request) => req.events as unknown as RequestEvents<Catalog>;
  app.post('/publish', async (req, res) => {
    const { type, payload, options } = req.body as { type: string; payload: object; options?: object };
    res.status(201).json({ event: await events(req).publish(type, payload, options) });
  });
  app.post('/publish-many', async (req, res) => {
    const { items } = req.body as { items: Parameters<RequestEvents<Catalog>['publishMany']>[0] };
    res.status(201).json({ events: await events(req).publishMany(items) });
  });
  app.use(errors);
  const { server, baseUrl } = await listen(app);
  return {
    baseUrl,
    close: async () => {
      await closeServer(server);
      await router.close();
    },
  };
};

httpRoutesSuite('Express', startApp, { metrics: true });
ingestRoutesSuite('Express', startApp);

describe('eventBusRouter and eventBusMiddleware (Express specifics)', () => {
  const newBus = () => createEventBus({ catalog: suiteCatalog, storage: memoryStorage() });

  it('serves health by default, the timeline only with authorize, and ingest only when asked', async () => {
    const bus = newBus();
    const app = express();
    const router = eventBusRouter(bus);
    app.use('/events', router);
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
    const app = express();
    const router = eventBusRouter(bus, { health: false, authorize: () => null });
    app.use('/events', router);
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
  });

  it('publishes org.access_denied with request metadata even without the middleware', async () => {
    const bus = newBus();
    const app = express();
    const router = eventBusRouter(bus, { authorize: () => ({ actor: 'user_a', organizationIds: [] }) });
    app.use('/events', router);
    const { server, baseUrl } = await listen(app);
    try {
      const res = await fetch(`${baseUrl}/events/timeline?organizationId=org_9`, {
        headers: { 'user-agent': 'bare/1.0', 'x-request-id': 'bare-1' },
      });
      expect(res.status).toBe(403);
      const [denied] = (await bus.timeline({ eventTypes: ['org.access_denied'] })).events;
      expect(denied).toMatchObject({
        organizationId: 'org_9',
        payload: { organizationId: 'org_9', resource: 'events.timeline' },
        metadata: { source: 'api', userAgent: 'bare/1.0', requestId: 'bare-1' },
      });
    } finally {
      await closeServer(server);
      await router.close();
    }
  });

  it('generates a request id when the header is absent or unsafe', async () => {
    const bus = newBus();
    const app = express();
    app.use(eventBusMiddleware(bus));
    app.get('/id', (req, res) => void res.json(req.events.metadata));
    const { server, baseUrl } = await listen(app);
    try {
      const plain = (await (await fetch(`${baseUrl}/id`)).json()) as { requestId: string };
      expect(plain.requestId).toMatch(/^[0-9a-f-]{36}$/);
      const odd = (await (await fetch(`${baseUrl}/id`, { headers: { 'x-request-id': 'has space' } })).json()) as {
        requestId: string;
      };
      expect(odd.requestId).toMatch(/^[0-9a-f-]{36}$/);
      const custom = express();
      custom.use(eventBusMiddleware(bus, { requestId: (req) => req.get('x-correlation-id') }));
      custom.get('/id', (req, res) => void res.json(req.events.metadata));
      const second = await listen(custom);
      try {
        const res = await fetch(`${second.baseUrl}/id`, { headers: { 'x-correlation-id': 'corr-1' } });
        expect(await res.json()).toMatchObject({ requestId: 'corr-1', source: 'api' });
      } finally {
        await closeServer(second.server);
      }
    } finally {
      await closeServer(server);
      await bus.stop();
    }
  });
});
