/**
 * The dashboard's routes over real HTTP, the same expectations on every
 * framework adapter (Fastify, Express, Hono over @hono/node-server): the page
 * without data, the JSON routes behind `authorize`, the dry run before a
 * redrive, discard, read-only mode, JSON-only writes, and the live stream.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventBus, InvalidOptionError, memoryStorage, NonRetryableError } from '@blawby/event-bus';
import type { EventBus } from '@blawby/event-bus';
import { eventBusPlugin } from '@blawby/event-bus/fastify';
import { eventBusRouter as expressRouter } from '@blawby/event-bus/express';
import { eventBusRouter as honoRouter } from '@blawby/event-bus/hono';
import type { DashboardOptions, Identity } from '../../adapters/http';
import { catalog } from '../bus/fixtures';

type Bus = EventBus<typeof catalog>;
const TOKEN = 'ops';
const identify = (authorization: string | undefined): Identity | null =>
  authorization === `Bearer ${TOKEN}` ? { actor: 'ops', organizationIds: [] } : null;

interface Running {
  baseUrl: string;
  close(): Promise<void>;
}

type Start = (bus: Bus, dashboard: boolean | DashboardOptions) => Promise<Running>;

const adapters: Record<string, Start> = {
  fastify: async (bus, dashboard) => {
    const app = Fastify();
    await app.register(eventBusPlugin, {
      bus,
      routes: { prefix: '/events', dashboard },
      authorize: (request) => identify(request.headers.authorization),
    });
    const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
    return { baseUrl: `${baseUrl}/events`, close: () => app.close() };
  },
  express: async (bus, dashboard) => {
    const app = express();
    const router = expressRouter(bus, { dashboard, authorize: (req) => identify(req.get('authorization')) });
    app.use('/events', router);
    const server = await new Promise<Server>((resolve) => {
      const s: Server = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const { port } = server.address() as AddressInfo;
    return {
      baseUrl: `http://127.0.0.1:${port}/events`,
      close: async () => {
        await router.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  },
  hono: async (bus, dashboard) => {
    const router = honoRouter(bus, { dashboard, authorize: (c) => identify(c.req.header('authorization')) });
    const app = new Hono().route('/events', router);
    const { server, port } = await new Promise<{ server: ReturnType<typeof serve>; port: number }>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => resolve({ server: s, port: info.port }));
    });
    return {
      baseUrl: `http://127.0.0.1:${port}/events`,
      close: async () => {
        await router.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  },
};

/** Mounting the dashboard without `authorize`: each adapter refuses. */
const mountWithoutAuthorize: Record<string, (bus: Bus) => Promise<unknown>> = {
  fastify: async (bus) => {
    const app = Fastify();
    try {
      await app.register(eventBusPlugin, { bus, routes: { dashboard: true }, stopOnClose: false });
    } finally {
      await app.close().catch(() => {});
    }
  },
  express: async (bus) => expressRouter(bus, { dashboard: true }),
  hono: async (bus) => honoRouter(bus, { dashboard: true }),
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by the assertions
const jsonOf = (res: Response): Promise<any> => res.json();

const auth = { authorization: `Bearer ${TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };

for (const [name, start] of Object.entries(adapters)) {
  describe(`dashboard routes on ${name}`, () => {
    let running: Running | undefined;
    let bus: Bus;

    afterEach(async () => {
      await running?.close();
      running = undefined;
      await bus.stop();
    });

    async function withDeadLetters(dashboard: boolean | DashboardOptions, count = 2): Promise<string> {
      bus = createEventBus({ catalog, storage: memoryStorage(), dispatch: { pollIntervalMs: 20 } });
      let failing = true;
      bus.subscribe('auth.user_logged_in', () => {
        if (failing) throw new NonRetryableError('down');
      }, { name: 'audit' });
      await bus.start();
      for (let i = 0; i < count; i++) await bus.publish('auth.user_logged_in', { sessionId: `s${i}` });
      await bus.idle();
      failing = false;
      running = await start(bus, dashboard);
      return running.baseUrl;
    }

    it('serves the page to anyone, and the data only to an authorized caller', async () => {
      const base = await withDeadLetters(true);
      const page = await fetch(`${base}/dashboard`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toContain('<title>Event bus dashboard</title>');
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org)/); // nothing loaded from elsewhere

      const anonymous = await fetch(`${base}/dashboard/api/overview`);
      expect(anonymous.status).toBe(401);
      expect((await jsonOf(anonymous)).error.code).toBe('UNAUTHORIZED');
      expect((await fetch(`${base}/dashboard/api/stream`)).status).toBe(401);

      const overview = await fetch(`${base}/dashboard/api/overview`, { headers: auth });
      expect(overview.status).toBe(200);
      const body = await jsonOf(overview);
      expect(body).toMatchObject({ readOnly: false, storage: 'memory', health: { deadLetters: 2 } });
      expect(body.health.warnings.map((w: { code: string }) => w.code)).toEqual(['DEAD_LETTERS_WAITING']);
      expect(body.subscribers).toEqual([expect.objectContaining({ subscriber: 'audit', due: 0 })]);
      expect(body.minutes).toHaveLength(60);
      expect(body.catalogTypes).toContain('auth.user_logged_in');
      expect((await fetch(`${base}/dashboard/api/nope`, { headers: auth })).status).toBe(404);
    });

    it('counts a redrive in a dry run first, then redrives, and discards by id', async () => {
      const base = await withDeadLetters(true, 3);
      const list = await jsonOf(await fetch(`${base}/dashboard/api/dead-letters`, { headers: auth }));
      expect(list.deadLetters).toHaveLength(3);
      const [first, second] = list.deadLetters as { id: string; eventId: string; subscriber: string }[];

      const post = (path: string, body: unknown) =>
        fetch(`${base}/dashboard/api/dead-letters/${path}`, { method: 'POST', headers: json, body: JSON.stringify(body) });
      const dry = await post('redrive', { dryRun: true });
      expect(await jsonOf(dry)).toEqual({ dryRun: true, count: 3 });
      expect(await bus.deadLetters.list()).toHaveLength(3);
      const one = await post('redrive', { dryRun: true, eventId: first!.eventId, subscriber: first!.subscriber });
      expect(await jsonOf(one)).toEqual({ dryRun: true, count: 1 });

      const redriven = await post('redrive', { eventId: first!.eventId, subscriber: first!.subscriber });
      expect(await jsonOf(redriven)).toEqual({ dryRun: false, redriven: 1 });
      const discarded = await post('discard', { id: second!.id });
      expect(await jsonOf(discarded)).toEqual({ discarded: true });
      expect(await jsonOf(await post('discard', { id: second!.id }))).toEqual({ discarded: false });
      await bus.idle();
      expect((await bus.deadLetters.list()).map((d) => d.id)).toEqual([list.deadLetters[2].id]);

      const notJson = await fetch(`${base}/dashboard/api/dead-letters/redrive`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'text/plain' },
        body: '{}',
      });
      expect(notJson.status).toBe(415);
      expect((await post('discard', {})).status).toBe(400);
      expect((await post('redrive', { subscriber: 'x'.repeat(300) })).status).toBe(400);
      expect(await bus.deadLetters.list()).toHaveLength(1);
    });

    it('in read-only mode, shows everything and refuses redrive and discard', async () => {
      const base = await withDeadLetters({ readOnly: true }, 1);
      const overview = await jsonOf(await fetch(`${base}/dashboard/api/overview`, { headers: auth }));
      expect(overview.readOnly).toBe(true);
      for (const path of ['redrive', 'discard']) {
        const res = await fetch(`${base}/dashboard/api/dead-letters/${path}`, { method: 'POST', headers: json, body: JSON.stringify({ id: 'x' }) });
        expect(res.status, path).toBe(403);
      }
      expect(await bus.deadLetters.list()).toHaveLength(1);
    });

    it('serves the timeline with filters and one event with its attempts', async () => {
      const base = await withDeadLetters(true, 1);
      await bus.publish('auth.user_signed_up', { email: 'a@b.co', name: 'A', signupMethod: 'email' }, { actor: 'u1' });
      const page = await jsonOf(await fetch(`${base}/dashboard/api/timeline?eventTypes=auth.user_signed_up&actor=u1`, { headers: auth }));
      expect(page.events.map((e: { eventType: string }) => e.eventType)).toEqual(['auth.user_signed_up']);
      const bad = await fetch(`${base}/dashboard/api/timeline?limit=0`, { headers: auth });
      expect(bad.status).toBe(400);

      const [dl] = await bus.deadLetters.list();
      const detailOf = async () =>
        jsonOf(await fetch(`${base}/dashboard/api/events/${encodeURIComponent(dl!.eventId)}`, { headers: auth }));
      // Dead-lettered before the dashboard was mounted: the storage's dead letter, no attempt seen.
      expect(await detailOf()).toMatchObject({ eventId: dl!.eventId, deadLetters: [{ subscriber: 'audit', attempts: 1 }], attempts: [] });
      await bus.deadLetters.redrive(dl!.id);
      await bus.idle();
      const detail = await detailOf();
      expect(detail.deadLetters).toEqual([]);
      expect(detail.attempts).toEqual([expect.objectContaining({ subscriber: 'audit', attempt: 1, outcome: 'succeeded' })]);
    });

    it('streams a change event when something is published', async () => {
      const base = await withDeadLetters(true, 0);
      const controller = new AbortController();
      const res = await fetch(`${base}/dashboard/api/stream`, { headers: auth, signal: controller.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const read = async (until: RegExp) => {
        while (!until.test(text)) {
          const chunk = await reader.read();
          if (chunk.done) break;
          text += decoder.decode(chunk.value, { stream: true });
        }
      };
      await read(/event: ready/);
      await bus.publish('auth.user_logged_in', { sessionId: 'live' });
      await read(/event: change/);
      expect(text).toMatch(/event: change\ndata: \{"at":\d+\}/);
      controller.abort();
    });

    it('closing the app ends the open streams (it does not wait for the clients)', async () => {
      const base = await withDeadLetters(true, 0);
      const res = await fetch(`${base}/dashboard/api/stream`, { headers: auth });
      const reader = res.body!.getReader();
      await reader.read();
      const started = Date.now();
      await running!.close();
      running = undefined;
      let done = false;
      while (!done) done = (await reader.read()).done;
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('needs authorize', async () => {
      bus = createEventBus({ catalog, storage: memoryStorage() });
      const err = await mountWithoutAuthorize[name]!(bus).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).option).toBe('authorize');
    });
  });
}
