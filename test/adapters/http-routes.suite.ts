/**
 * The route expectations every framework adapter must meet, over real HTTP
 * (the app listens on port 0 and is called with the global `fetch`).
 * `fastify.int.test.ts` and `express.int.test.ts` each pass a `startApp`.
 *
 * The app under test must serve:
 * - `{prefix}/timeline` and `{prefix}/health` from the adapter, with
 *   `authorize` built from `options.identify(Authorization header)`;
 * - `POST /publish` (JSON `{ type, payload, options }`): publishes through
 *   `request.events.publish`, answers 201 `{ event }`, or 400
 *   `{ error: { code } }` for an `EventBusError`;
 * - `POST /publish-many` (JSON `{ items }`): `request.events.publishMany`, 201 `{ events }`;
 * - the request id from the `X-Request-Id` header;
 * and `close()` must close the server and whatever the adapter closes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, memoryStorage, EventBusError } from '@blawby/event-bus';
import type { BaseEvent, Catalog, EventBus, EventBusOptions, HealthReport } from '@blawby/event-bus';
import type { Identity } from '../../adapters/http';

/** A catalog with `org.access_denied`, as an application like Blawby has. */
export const suiteCatalog = defineCatalog({
  'auth.user_signed_up': defineEvent({
    version: '1.0.0',
    payload: z.object({ email: z.email(), name: z.string().min(1) }),
  }),
  'org.created': defineEvent({ version: '1.0.0', payload: z.object({ name: z.string() }) }),
  'org.member_joined': defineEvent({ version: '1.0.0', payload: z.object({ userId: z.string() }) }),
  'org.access_denied': defineEvent({
    version: '1.0.0',
    payload: z.object({ organizationId: z.string(), resource: z.string(), reason: z.string().optional() }),
  }),
});

/** The same catalog without `org.access_denied`. */
const { 'org.access_denied': _omitted, ...withoutDenied } = suiteCatalog;
export const catalogWithoutAccessDenied = defineCatalog(withoutDenied);

/** A catalog whose `org.access_denied` schema refuses what the adapter publishes. */
export const catalogWithStrictAccessDenied = defineCatalog({
  ...withoutDenied,
  'org.access_denied': defineEvent({
    version: '1.0.0',
    payload: z.strictObject({ attemptedBy: z.string(), ticket: z.number() }),
  }),
});

/** What the suite gives the app. */
export interface StartOptions<C extends Catalog> {
  bus: EventBus<C>;
  /** The caller's identity from the raw `Authorization` header (for `authorize`). */
  identify: (authorization: string | undefined) => Identity | null;
  /** Route prefix, e.g. `'/events'`. */
  prefix: string;
  /** Receives what the adapter logs at warn level or above. */
  onLog: (entry: { level: string; msg: string }) => void;
}

/** A running app. */
export interface AppUnderTest {
  baseUrl: string;
  /** Closes the server and what the adapter closes on shutdown (the bus). */
  close(): Promise<void>;
}

/** Starts the framework's app for one test. */
export type StartApp = <C extends Catalog>(options: StartOptions<C>) => Promise<AppUnderTest>;

const ALICE = 'Bearer alice';
const BOB = 'Bearer bob';

/** alice belongs to org_1; bob to org_1 and org_2. */
function identify(authorization: string | undefined): Identity | null {
  if (authorization === ALICE) return { actor: 'user_alice', organizationIds: ['org_1'] };
  if (authorization === BOB) return { actor: 'user_bob', organizationIds: ['org_1', 'org_2'] };
  return null;
}

/** A timeline event as JSON (dates are strings). */
type JsonEvent = Omit<BaseEvent, 'timestamp'> & { timestamp: string };

/** Runs the shared route expectations against one framework. */
export function httpRoutesSuite(framework: string, startApp: StartApp): void {
  describe(`${framework} adapter over HTTP`, () => {
    const running: AppUnderTest[] = [];
    afterEach(async () => {
      await Promise.all(running.splice(0).map((app) => app.close()));
    });

    async function start<C extends Catalog>(catalog: C, busOptions: Partial<EventBusOptions<C>> = {}) {
      const logs: { level: string; msg: string }[] = [];
      const bus = createEventBus({ catalog, storage: memoryStorage(), source: 'test-suite', ...busOptions });
      const app = await startApp({ bus, identify, prefix: '/events', onLog: (entry) => logs.push(entry) });
      running.push(app);
      const get = (path: string, authorization?: string, headers: Record<string, string> = {}) =>
        fetch(`${app.baseUrl}${path}`, { headers: { ...headers, ...(authorization ? { authorization } : {}) } });
      const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
        fetch(`${app.baseUrl}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        });
      return { bus, app, logs, get, post };
    }

    /** Seeds events with distinct, increasing timestamps (newest last). */
    async function seed(bus: EventBus<typeof suiteCatalog>) {
      const published: BaseEvent[] = [];
      const add = async (event: Promise<BaseEvent>) => {
        published.push(await event);
        await new Promise((resolve) => setTimeout(resolve, 3));
      };
      await add(bus.publish('org.created', { name: 'One' }, { actor: 'user_bob', organizationId: 'org_1' }));
      await add(bus.publish('org.member_joined', { userId: 'user_alice' }, { actor: 'user_alice', organizationId: 'org_1' }));
      await add(bus.publish('auth.user_signed_up', { email: 'a@example.com', name: 'Alice' }, { actor: 'user_alice' }));
      await add(bus.publish('org.created', { name: 'Two' }, { actor: 'user_bob', organizationId: 'org_2' }));
      await add(bus.publish('org.member_joined', { userId: 'user_carol' }, { actor: 'user_carol', organizationId: 'org_1' }));
      return published;
    }

    describe('GET {prefix}/timeline', () => {
      it('answers 401 without an identity, whatever the query', async () => {
        const { get } = await start(suiteCatalog);
        for (const auth of [undefined, 'Bearer mallory']) {
          const res = await get('/events/timeline?organizationId=org_1', auth);
          expect(res.status).toBe(401);
          expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
        }
        expect((await get('/events/timeline?limit=nope')).status).toBe(401);
      });

      it("returns an organization's events, newest first, to a member", async () => {
        const { bus, get } = await start(suiteCatalog);
        const seeded = await seed(bus);
        const res = await get('/events/timeline?organizationId=org_1', ALICE);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/application\/json/);
        const body = (await res.json()) as { events: JsonEvent[]; nextCursor: string | null };
        const expected = seeded.filter((e) => e.organizationId === 'org_1').reverse();
        expect(body.events.map((e) => e.eventId)).toEqual(expected.map((e) => e.eventId));
        expect(body.nextCursor).toBeNull();
        const first = body.events[0]!;
        expect(first).toMatchObject({ eventType: 'org.member_joined', actor: 'user_carol', payload: { userId: 'user_carol' } });
        expect(new Date(first.timestamp).toISOString()).toBe(first.timestamp);
      });

      it('pages with limit and cursor until nextCursor is null', async () => {
        const { bus, get } = await start(suiteCatalog);
        const seeded = await seed(bus);
        const expected = seeded.filter((e) => e.organizationId === 'org_1').reverse().map((e) => e.eventId);
        const seen: string[] = [];
        let cursor: string | null = null;
        for (let page = 0; page < 10; page++) {
          const query: string = `organizationId=org_1&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const res = await get(`/events/timeline?${query}`, BOB);
          expect(res.status).toBe(200);
          const body = (await res.json()) as { events: JsonEvent[]; nextCursor: string | null };
          expect(body.events.length).toBeLessThanOrEqual(2);
          seen.push(...body.events.map((e) => e.eventId));
          cursor = body.nextCursor;
          if (!cursor) break;
        }
        expect(seen).toEqual(expected);
      });

      it('filters by eventTypes, comma-separated or repeated, and by actor within an organization', async () => {
        const { bus, get } = await start(suiteCatalog);
        const seeded = await seed(bus);
        const types = async (query: string) => {
          const res = await get(`/events/timeline?${query}`, BOB);
          expect(res.status).toBe(200);
          return ((await res.json()) as { events: JsonEvent[] }).events.map((e) => e.eventId);
        };
        const joinedOrg1 = seeded.filter((e) => e.eventType === 'org.member_joined').reverse().map((e) => e.eventId);
        expect(await types('organizationId=org_1&eventTypes=org.member_joined')).toEqual(joinedOrg1);
        const created = seeded.filter((e) => e.organizationId === 'org_1' && e.eventType !== 'auth.user_signed_up');
        const all = created.reverse().map((e) => e.eventId);
        expect(await types('organizationId=org_1&eventTypes=org.member_joined,org.created')).toEqual(all);
        expect(await types('organizationId=org_1&eventTypes=org.member_joined&eventTypes=org.created')).toEqual(all);
        const carol = seeded.filter((e) => e.actor === 'user_carol').map((e) => e.eventId);
        expect(await types('organizationId=org_1&actor=user_carol')).toEqual(carol);
      });

      it('filters by from (inclusive) and to (exclusive)', async () => {
        const { bus, get } = await start(suiteCatalog);
        const seeded = await seed(bus);
        const [, second, , , fifth] = seeded;
        const from = second!.timestamp.toISOString();
        const to = fifth!.timestamp.toISOString();
        const res = await get(`/events/timeline?organizationId=org_1&from=${from}&to=${to}`, ALICE);
        expect(res.status).toBe(200);
        const ids = ((await res.json()) as { events: JsonEvent[] }).events.map((e) => e.eventId);
        expect(ids).toEqual([second!.eventId]);
      });

      it("without organizationId returns only the caller's own events, across organizations", async () => {
        const { bus, get } = await start(suiteCatalog);
        const seeded = await seed(bus);
        const res = await get('/events/timeline', ALICE);
        expect(res.status).toBe(200);
        const body = (await res.json()) as { events: JsonEvent[] };
        const own = seeded.filter((e) => e.actor === 'user_alice').reverse();
        expect(body.events.map((e) => e.eventId)).toEqual(own.map((e) => e.eventId));
        expect(new Set(body.events.map((e) => e.actor))).toEqual(new Set(['user_alice']));
        // Naming oneself is the same query; naming someone else outside an organization is refused.
        expect((await get('/events/timeline?actor=user_alice', ALICE)).status).toBe(200);
        const other = await get('/events/timeline?actor=user_bob', ALICE);
        expect(other.status).toBe(403);
        expect(await other.json()).toMatchObject({ error: { code: 'FORBIDDEN' } });
      });

      it('answers 400 with the zod issues for a bad query, and never reaches the storage', async () => {
        const { get } = await start(suiteCatalog);
        const cases: [string, string][] = [
          ['limit=0', 'limit'],
          ['limit=1001', 'limit'],
          ['limit=ten', 'limit'],
          ['from=yesterday', 'from'],
          ['from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z', 'to'],
          ['eventTypes=org.exploded', 'eventTypes'],
          ['eventTypes=org.created,nope', 'eventTypes'],
          ['eventTypes=,', 'eventTypes'],
          ['organizationId=org_1&organizationId=org_2', 'organizationId'],
          ['organizationId=', 'organizationId'],
        ];
        for (const [query, param] of cases) {
          const res = await get(`/events/timeline?${query}`, BOB);
          expect(res.status, query).toBe(400);
          const body = (await res.json()) as { error: { code: string; issues: { path: unknown[]; message: string }[] } };
          expect(body.error.code, query).toBe('INVALID_QUERY');
          expect(body.error.issues.map((i) => i.path[0]), query).toContain(param);
        }
        const typo = await get('/events/timeline?eventType=org.created', BOB);
        expect(typo.status).toBe(400);
        expect(await typo.json()).toMatchObject({ error: { code: 'INVALID_QUERY', issues: [{ code: 'unrecognized_keys' }] } });
        const unknownType = (await (await get('/events/timeline?eventTypes=org.exploded', BOB)).json()) as {
          error: { issues: { path: unknown[] }[] };
        };
        expect(unknownType.error.issues[0]!.path).toEqual(['eventTypes', 0]);
      });

      it('answers 400 for a cursor the storage did not issue', async () => {
        const { get } = await start(suiteCatalog);
        const res = await get('/events/timeline?organizationId=org_1&cursor=not-a-cursor', BOB);
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ error: { code: 'INVALID_QUERY', issues: [{ path: ['cursor'] }] } });
      });

      it('answers 403 for a foreign organization and publishes org.access_denied with the request metadata', async () => {
        const { bus, get } = await start(suiteCatalog);
        await seed(bus);
        const res = await get('/events/timeline?organizationId=org_2', ALICE, {
          'user-agent': 'suite-agent/1.0',
          'x-request-id': 'req-denied-1',
        });
        expect(res.status).toBe(403);
        const body = await res.json();
        expect(body).toMatchObject({ error: { code: 'FORBIDDEN' } });
        expect(body).not.toHaveProperty('events');
        const denied = await bus.timeline({ eventTypes: ['org.access_denied'] });
        expect(denied.events).toHaveLength(1);
        expect(denied.events[0]).toMatchObject({
          eventType: 'org.access_denied',
          actor: 'user_alice',
          actorType: 'user',
          organizationId: 'org_2',
          payload: { organizationId: 'org_2', resource: 'events.timeline', reason: 'not_a_member' },
          metadata: { source: 'api', userAgent: 'suite-agent/1.0', requestId: 'req-denied-1' },
        });
        expect(denied.events[0]!.metadata.ipAddress).toMatch(/127\.0\.0\.1|::1/);
      });

      it('answers 403 without publishing when the catalog has no org.access_denied', async () => {
        const { bus, get } = await start(catalogWithoutAccessDenied);
        const res = await get('/events/timeline?organizationId=org_2', ALICE);
        expect(res.status).toBe(403);
        expect((await bus.timeline({})).events).toHaveLength(0);
      });

      it("still answers 403 when the catalog's org.access_denied schema refuses the payload, and logs it", async () => {
        const { bus, get, logs } = await start(catalogWithStrictAccessDenied);
        const res = await get('/events/timeline?organizationId=org_2', ALICE);
        expect(res.status).toBe(403);
        expect((await bus.timeline({})).events).toHaveLength(0);
        expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'could not publish org.access_denied' }));
      });

      it('is not cached', async () => {
        const { get } = await start(suiteCatalog);
        const res = await get('/events/timeline', ALICE);
        expect(res.headers.get('cache-control')).toBe('no-store');
      });
    });

    describe('GET {prefix}/health', () => {
      it('is public and answers 200 with the bus health when healthy', async () => {
        const { bus, get } = await start(suiteCatalog);
        const res = await get('/events/health');
        expect(res.status).toBe(200);
        const body = (await res.json()) as HealthReport;
        expect(body).toEqual(await bus.health());
        expect(body).toMatchObject({ status: 'healthy', healthy: true, unprocessed: 0, deadLetters: 0 });
      });

      it('answers 503 with the report when the bus is unhealthy', async () => {
        // Nothing subscribes and nothing runs, so published events stay unprocessed.
        const { bus, get } = await start(suiteCatalog, { health: { maxUnprocessed: 2 } });
        await bus.publish('org.created', { name: 'A' });
        expect((await get('/events/health')).status).toBe(200);
        await bus.publish('org.created', { name: 'B' });
        const res = await get('/events/health');
        expect(res.status).toBe(503);
        const body = (await res.json()) as HealthReport;
        expect(body).toMatchObject({ status: 'unhealthy', healthy: false, unprocessed: 2 });
        expect(body.oldestPendingAgeMs).toEqual(expect.any(Number));
      });
    });

    describe('request.events', () => {
      it("publishes with the request's ipAddress, userAgent, requestId and source 'api'", async () => {
        const { bus, post } = await start(suiteCatalog);
        const res = await post(
          '/publish',
          { type: 'auth.user_signed_up', payload: { email: 'x@example.com', name: 'X' }, options: { actor: 'user_x' } },
          { 'user-agent': 'suite-agent/2.0', 'x-request-id': 'req-42' },
        );
        expect(res.status).toBe(201);
        const { event } = (await res.json()) as { event: JsonEvent };
        const [stored] = (await bus.timeline({ actor: 'user_x' })).events;
        expect(stored?.eventId).toBe(event.eventId);
        expect(stored!.metadata).toMatchObject({ source: 'api', userAgent: 'suite-agent/2.0', requestId: 'req-42' });
        expect(stored!.metadata.ipAddress).toMatch(/127\.0\.0\.1|::1/);
        expect(stored!.metadata.environment).toEqual(expect.any(String));
      });

      it("lets the caller's explicit metadata win over the request's", async () => {
        const { bus, post } = await start(suiteCatalog);
        const res = await post(
          '/publish',
          {
            type: 'org.created',
            payload: { name: 'Mine' },
            options: { metadata: { source: 'webhook', requestId: 'caller-chosen', extra: 'kept' } },
          },
          { 'user-agent': 'suite-agent/3.0', 'x-request-id': 'req-43' },
        );
        expect(res.status).toBe(201);
        const [stored] = (await bus.timeline({})).events;
        expect(stored!.metadata).toMatchObject({
          source: 'webhook',
          requestId: 'caller-chosen',
          extra: 'kept',
          userAgent: 'suite-agent/3.0',
        });
      });

      it('refuses an invalid payload with the typed error and stores nothing', async () => {
        const { bus, post } = await start(suiteCatalog);
        const res = await post('/publish', { type: 'auth.user_signed_up', payload: { email: 'not-an-email', name: '' } });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ error: { code: 'EVENT_VALIDATION_FAILED' } });
        const unknown = await post('/publish', { type: 'auth.user_teleported', payload: {} });
        expect(await unknown.json()).toMatchObject({ error: { code: 'UNKNOWN_EVENT_TYPE' } });
        expect((await bus.timeline({})).events).toHaveLength(0);
      });

      it('publishMany fills the metadata of every item', async () => {
        const { bus, post } = await start(suiteCatalog);
        const res = await post(
          '/publish-many',
          {
            items: [
              { type: 'org.created', payload: { name: 'A' } },
              { type: 'org.created', payload: { name: 'B' }, options: { metadata: { requestId: 'own' } } },
            ],
          },
          { 'x-request-id': 'req-many' },
        );
        expect(res.status).toBe(201);
        const events = (await bus.timeline({})).events;
        expect(events.map((e) => e.metadata.requestId).sort()).toEqual(['own', 'req-many']);
        expect(events.every((e) => e.metadata.source === 'api')).toBe(true);
      });
    });

    describe('shutdown', () => {
      it('stops the bus when the app closes', async () => {
        const { bus, app } = await start(suiteCatalog);
        const handled: string[] = [];
        bus.subscribe('org.created', (event) => void handled.push(event.eventId), { name: 'suite.recorder' });
        await bus.start();
        const before = await bus.publish('org.created', { name: 'before' });
        await bus.idle();
        expect(handled).toEqual([before.eventId]);
        await app.close();
        running.splice(running.indexOf(app), 1);
        const err = await bus.publish('org.created', { name: 'after' }).catch((e: unknown) => e);
        expect(EventBusError.is(err, 'BUS_STOPPED')).toBe(true);
      });
    });
  });
}
