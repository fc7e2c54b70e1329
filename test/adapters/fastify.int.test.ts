/**
 * The Fastify plugin over real HTTP: the shared route suite, plus what is
 * Fastify's own (registration checks, decorators, `onClose`).
 */
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createEventBus, EventBusError, memoryStorage } from '@blawby/event-bus';
import type { Catalog, EventBus } from '@blawby/event-bus';
import { eventBusPlugin } from '@blawby/event-bus/fastify';
import type { RegisteredBus, RequestEvents } from '@blawby/event-bus/fastify';
import { httpRoutesSuite, suiteCatalog } from './http-routes.suite';
import { ingestRoutesSuite } from './ingest-routes.suite';
import type { IngestStartApp } from './ingest-routes.suite';

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** A real pino logger whose warn-and-above lines go to `onLog`. */
function capturingLogger(onLog: (entry: { level: string; msg: string }) => void) {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const { level, msg } = JSON.parse(line) as { level: number; msg: string };
        onLog({ level: LEVELS[level] ?? String(level), msg });
      }
      done();
    },
  });
  return pino({ level: 'warn' }, stream);
}

/**
 * The test catalog is not the one an application of this repository may have
 * registered in `EventBusRegistry`; a real application passes its bus as is.
 */
const registered = (bus: EventBus<Catalog>) => bus as unknown as RegisteredBus;

const startApp: IngestStartApp = async ({ bus, identify, prefix, onLog, metrics, ingest }) => {
  const app = Fastify({ loggerInstance: capturingLogger(onLog), requestIdHeader: 'x-request-id' });
  await app.register(eventBusPlugin, {
    bus: registered(bus as unknown as EventBus<Catalog>),
    routes: { prefix, timeline: true, health: true, ...(metrics ? { metrics } : {}), ingest: ingest ?? false },
    authorize: async (request) => identify(request.headers.authorization),
  });
  // The suite's catalog is not the registered one, so widen request.events to any catalog.
  const events = (request: { events: unknown }) => request.events as unknown as RequestEvents<Catalog>;
  app.setErrorHandler((err, _request, reply) => {
    if (EventBusError.is(err)) return reply.code(400).send({ error: { code: err.code } });
    return reply.send(err);
  });
  app.post('/publish', async (request, reply) => {
    const { type, payload, options } = request.body as { type: string; payload: object; options?: object };
    const event = await events(request).publish(type, payload, options);
    return reply.code(201).send({ event });
  });
  app.post('/publish-many', async (request, reply) => {
    const { items } = request.body as { items: Parameters<RequestEvents<Catalog>['publishMany']>[0] };
    return reply.code(201).send({ events: await events(request).publishMany(items) });
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { baseUrl: address, close: () => app.close() };
};

httpRoutesSuite('Fastify', startApp, { metrics: true });
ingestRoutesSuite('Fastify', startApp);

/** What a promise-like rejects with (`undefined` if it resolves). */
const rejection = (p: PromiseLike<unknown>) => Promise.resolve(p).then(() => undefined, (e: unknown) => e);

describe('eventBusPlugin (Fastify specifics)', () => {
  const newBus = () =>
    createEventBus({ catalog: suiteCatalog, storage: memoryStorage() }) as unknown as EventBus<Catalog>;

  it('decorates fastify.events with the bus, and registers no route unless asked', async () => {
    const bus = newBus();
    const app = Fastify();
    await app.register(eventBusPlugin, { bus: registered(bus) });
    try {
      expect(app.events).toBe(bus);
      expect(app.hasRequestDecorator('events')).toBe(true);
      expect((await app.inject('/events/health')).statusCode).toBe(404);
      expect((await app.inject('/events/timeline')).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });

  it('serves the routes under a custom prefix', async () => {
    const bus = newBus();
    const app = Fastify();
    await app.register(eventBusPlugin, { bus: registered(bus), routes: { prefix: 'api/bus/', health: true } });
    try {
      expect((await app.inject('/api/bus/health')).statusCode).toBe(200);
      expect((await app.inject('/events/health')).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });

  it('refuses a timeline route without authorize, and a missing bus, at registration', async () => {
    const app = Fastify();
    const err = await rejection(
      app.register(eventBusPlugin, { bus: registered(newBus()), routes: { timeline: true } }).ready(),
    );
    expect(EventBusError.is(err, 'INVALID_OPTION')).toBe(true);
    await app.close();
    const other = Fastify();
    const missing = await rejection(other.register(eventBusPlugin, {} as never).ready());
    expect(EventBusError.is(missing, 'INVALID_OPTION')).toBe(true);
    await other.close();
  });

  it('adds no ingest route unless asked, and refuses one without authorize', async () => {
    const app = Fastify();
    await app.register(eventBusPlugin, { bus: registered(newBus()), routes: { health: true } });
    const res = await app.inject({ method: 'POST', url: '/events/ingest', payload: '[]', headers: { 'content-type': 'application/cloudevents-batch+json' } });
    expect(res.statusCode).toBe(404);
    await app.close();
    const other = Fastify();
    const err = await rejection(other.register(eventBusPlugin, { bus: registered(newBus()), routes: { ingest: true } }).ready());
    expect(EventBusError.is(err, 'INVALID_OPTION')).toBe(true);
    await other.close();
  });

  it("keeps the application's parsers and error handler with ingest on", async () => {
    const app = Fastify();
    // Set before the routes, as Fastify's encapsulated error handlers want.
    app.setErrorHandler((err, _request, reply) => reply.code(502).send({ handledBy: 'app', message: (err as Error).message }));
    await app.register(eventBusPlugin, {
      bus: registered(newBus()),
      routes: { ingest: true },
      authorize: () => {
        throw new Error('session store down');
      },
    });
    app.post('/echo', async (request) => request.body);
    try {
      const echo = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
      expect(echo.json()).toEqual({ a: 1 });
      const ingest = await app.inject({
        method: 'POST',
        url: '/events/ingest',
        payload: '[]',
        headers: { 'content-type': 'application/cloudevents-batch+json' },
      });
      expect(ingest.statusCode).toBe(502);
      expect(ingest.json()).toEqual({ handledBy: 'app', message: 'session store down' });
    } finally {
      await app.close();
    }
  });

  it('leaves the bus running on close with stopOnClose: false', async () => {
    const bus = newBus();
    const app = Fastify();
    await app.register(eventBusPlugin, { bus: registered(bus), stopOnClose: false });
    await app.close();
    try {
      await expect(bus.publish('org.created', { name: 'still open' })).resolves.toMatchObject({ eventType: 'org.created' });
    } finally {
      await bus.stop();
    }
  });

  it('gives one request.events per request, usable from hooks added before the plugin', async () => {
    const bus = newBus();
    const app = Fastify();
    const seen: unknown[] = [];
    app.addHook('onRequest', async (request) => {
      seen.push(request.events);
      await (request.events as unknown as RequestEvents<Catalog>).publish('org.created', { name: 'from a hook' });
    });
    await app.register(eventBusPlugin, { bus: registered(bus) });
    app.get('/', async (request) => ({ same: seen.at(-1) === request.events }));
    try {
      const first = await app.inject({ url: '/', headers: { 'x-request-id': 'ignored-by-default' } });
      expect(first.json()).toEqual({ same: true });
      await app.inject('/');
      expect(seen[0]).not.toBe(seen[1]);
      const stored = (await bus.timeline({})).events;
      expect(stored).toHaveLength(2);
      expect(new Set(stored.map((e) => e.metadata.requestId)).size).toBe(2);
    } finally {
      await app.close();
    }
  });

  it('uses Fastify request ids (genReqId) as metadata.requestId', async () => {
    const bus = newBus();
    const app = Fastify({ genReqId: () => 'generated-id' });
    await app.register(eventBusPlugin, { bus: registered(bus) });
    app.get('/signup', async (request) => {
      const events = request.events as unknown as RequestEvents<Catalog>;
      return events.publish('auth.user_signed_up', { email: 'g@example.com', name: 'G' });
    });
    try {
      const res = await app.inject({ url: '/signup', headers: { 'user-agent': 'inject' } });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ metadata: { requestId: 'generated-id', userAgent: 'inject', source: 'api' } });
    } finally {
      await app.close();
    }
  });
});
