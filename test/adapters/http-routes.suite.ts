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
 * - with `options.metrics` (suites run with `{ metrics: true }`), `{prefix}/metrics` from it;
 * and `close()` must close the server and whatever the adapter closes.
 *
 * Every expectation runs on every storage: memory, PostgreSQL on PGlite, and
 * PostgreSQL on postgres.js when `DATABASE_URL` is set (one database per test
 * file, emptied tables per test).
 */
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, memoryStorage, EventBusError } from '@blawby/event-bus';
import type { BaseEvent, Catalog, EventBus, EventBusOptions, HealthReport, Storage } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import type { Identity, MetricsSource } from '../../adapters/http';
import { eventBusMetrics } from '@blawby/event-bus/prometheus';
import { forgedCursors } from '../contract/storage.contract';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../postgres/databases';

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
  /** When given, the app serves `{prefix}/metrics` from it (the adapter's `metrics` route option). */
  metrics?: MetricsSource;
}

/** Optional routes an adapter supports; the suite checks those that are on. */
export interface SuiteFeatures {
  /** `{prefix}/metrics` from {@link StartOptions.metrics}. */
  metrics?: boolean;
}

/** A running app. */
export interface AppUnderTest {
  baseUrl: string;
  /** Closes the server and what the adapter closes on shutdown (the bus). */
  close(): Promise<void>;
}

/** Starts the framework's app for one test. */
export type StartApp = <C extends Catalog>(options: StartOptions<C>) => Promise<AppUnderTest>;

/** A storage the suite runs on: `open()` gives an empty one for one test. */
interface SuiteStorage {
  name: string;
  setup?(): Promise<void>;
  open(): Promise<Storage>;
  teardown?(): Promise<void>;
}

function postgresSuiteStorage(driver: (typeof DRIVERS)[number]): SuiteStorage {
  let database: TestDatabase | undefined;
  const schema = 'http_suite';
  return {
    name: `postgres (${driver})`,
    async setup() {
      database = await createTestDatabase(driver);
      await migrate(database.db, { schema });
    },
    async open() {
      const storage = postgresStorage({ db: database!.db, schema, notify: false });
      const { events, subscribers, deliveries, deadLetters } = storage.tables;
      await database!.db.execute(sql.raw(`TRUNCATE ${events}, ${subscribers}, ${deliveries}, ${deadLetters}`));
      return storage;
    },
    async teardown() {
      await database?.dispose();
    },
  };
}

const SUITE_STORAGES: SuiteStorage[] = [
  { name: 'memory', open: async () => memoryStorage() },
  ...DRIVERS.map(postgresSuiteStorage),
];

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

/** Fails the test if an answer carries SQL text, a driver's parameters, a stack or a raw error message. */
function expectNoLeak(text: string, context: string): void {
  expect(text, context).not.toMatch(/select|insert|params|secret-param|\$1|\bat .+:\d+:\d+|Failed query|stack/i);
}

/** The storage, except that `timeline` throws what `failure()` returns (a fault in front of a real storage). */
function failingTimeline(storage: Storage, failure: () => unknown): Storage {
  return new Proxy(storage, {
    get(target, key, receiver) {
      if (key === 'timeline') {
        return async () => {
          throw failure();
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The storage, except that `timeline` drops the query's `scope` (a storage with that bug). */
function ignoringScope(storage: Storage): Storage {
  return new Proxy(storage, {
    get(target, key, receiver) {
      if (key === 'timeline') {
        return ({ scope: _ignored, ...query }: Parameters<Storage['timeline']>[0]) => target.timeline(query);
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Runs the shared route expectations against one framework, on every storage. */
export function httpRoutesSuite(framework: string, startApp: StartApp, features: SuiteFeatures = {}): void {
  for (const suiteStorage of SUITE_STORAGES) routesOnStorage(framework, startApp, suiteStorage, features);
}

function routesOnStorage(framework: string, startApp: StartApp, suiteStorage: SuiteStorage, features: SuiteFeatures): void {
  describe(`${framework} adapter over HTTP, on ${suiteStorage.name} storage`, () => {
    const running: AppUnderTest[] = [];
    beforeAll(async () => {
      await suiteStorage.setup?.();
    });
    afterAll(async () => {
      await suiteStorage.teardown?.();
    });
    afterEach(async () => {
      await Promise.all(running.splice(0).map((app) => app.close()));
    });

    /** Starts an app on a fresh storage; `wrapStorage` may put a fault in front of it. */
    async function start<C extends Catalog>(
      catalog: C,
      busOptions: Partial<EventBusOptions<C>> = {},
      wrapStorage: (storage: Storage) => Storage = (storage) => storage,
      metricsOf?: (bus: EventBus<C>) => MetricsSource,
    ) {
      const logs: { level: string; msg: string }[] = [];
      const storage = wrapStorage(await suiteStorage.open());
      const bus = createEventBus({ catalog, storage, source: 'test-suite', ...busOptions });
      const metrics = metricsOf?.(bus);
      const onLog = (entry: { level: string; msg: string }) => void logs.push(entry);
      const app = await startApp({ bus, identify, prefix: '/events', onLog, ...(metrics ? { metrics } : {}) });
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

      it("answers only within the caller's organizations, plus their own events without organization", async () => {
        const { bus, get } = await start(suiteCatalog);
        const seeded = await seed(bus);
        // alice once belonged to org_2: her event there stays with org_2. bob has an event of his own.
        seeded.push(await bus.publish('org.created', { name: 'Left' }, { actor: 'user_alice', organizationId: 'org_2' }));
        seeded.push(await bus.publish('auth.user_signed_up', { email: 'b@example.com', name: 'Bob' }, { actor: 'user_bob' }));
        const ids = async (query: string, auth: string) => {
          const res = await get(`/events/timeline${query}`, auth);
          expect(res.status, query).toBe(200);
          return ((await res.json()) as { events: JsonEvent[] }).events.map((e) => e.eventId);
        };
        const expected = (keep: (e: BaseEvent) => boolean) =>
          seeded.filter(keep).reverse().map((e) => e.eventId);
        const aliceSees = (e: BaseEvent) =>
          e.organizationId === 'org_1' || (e.organizationId === undefined && e.actor === 'user_alice');

        expect(await ids('', ALICE)).toEqual(expected(aliceSees));
        // By actor alone: her own events, but not the one in the organization she left.
        expect(await ids('?actor=user_alice', ALICE)).toEqual(expected((e) => aliceSees(e) && e.actor === 'user_alice'));
        // Another actor: only what the organizations they share show, never their events without organization.
        expect(await ids('?actor=user_bob', ALICE)).toEqual(expected((e) => e.organizationId === 'org_1' && e.actor === 'user_bob'));
        expect(await ids('', BOB)).toEqual(
          expected((e) => e.organizationId !== undefined || e.actor === 'user_bob'),
        );
        expect(await ids('?organizationId=org_2', BOB)).toEqual(expected((e) => e.organizationId === 'org_2'));
        expect(await ids('?limit=1', ALICE)).toEqual(expected(aliceSees).slice(0, 1));
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

      it('leaves out events outside the scope even from a storage that ignores it, and logs the fault', async () => {
        const { bus, get, logs } = await start(suiteCatalog, {}, ignoringScope);
        const seeded = await seed(bus);
        seeded.push(await bus.publish('org.created', { name: 'Left' }, { actor: 'user_alice', organizationId: 'org_2' }));
        const res = await get('/events/timeline', ALICE);
        expect(res.status).toBe(200);
        const ids = ((await res.json()) as { events: JsonEvent[] }).events.map((e) => e.eventId);
        const inScope = seeded.filter(
          (e) => e.organizationId === 'org_1' || (e.organizationId === undefined && e.actor === 'user_alice'),
        );
        expect(ids).toEqual(inScope.reverse().map((e) => e.eventId));
        expect(logs).toContainEqual({
          level: 'error',
          msg: 'the storage returned timeline events outside the requested scope; they were left out',
        });
      });

      it('answers 400 for a cursor the storage did not issue, and never shows SQL, parameters or stacks', async () => {
        const { bus, get, logs } = await start(suiteCatalog);
        await seed(bus);
        const first = (await (await get('/events/timeline?organizationId=org_1&limit=1', BOB)).json()) as {
          nextCursor: string;
        };
        const issued = first.nextCursor;
        // Out of shape (refused by the route), then in shape but not issued (refused by the storage).
        const forged = ['not-a-cursor', 'not a cursor', 'x'.repeat(1025), `${issued}!`, ...forgedCursors(issued)];
        for (const cursor of forged) {
          const res = await get(`/events/timeline?organizationId=org_1&cursor=${encodeURIComponent(cursor)}`, BOB);
          const text = await res.text();
          expect(res.status, cursor).toBe(400);
          expect(JSON.parse(text), cursor).toMatchObject({ error: { code: 'INVALID_QUERY', issues: [{ path: ['cursor'] }] } });
          expectNoLeak(text, cursor);
        }
        expect(logs.filter((l) => l.level === 'error')).toEqual([]);
      });

      it('answers 400 for dates outside years 0001 to 9999 and for NUL characters in any parameter', async () => {
        const { bus, get } = await start(suiteCatalog);
        await seed(bus);
        const cases: [string, string][] = [
          ['from=0000-06-01T00:00:00Z', 'from'],
          ['to=0001-01-01T00:30:00%2B01:00', 'to'], // year 0 in UTC
          ['from=10000-01-01T00:00:00Z', 'from'],
          ['to=%2B275760-09-13T00:00:00Z', 'to'],
          ['organizationId=org_1%00', 'organizationId'],
          ['organizationId=org_1&actor=user_%00alice', 'actor'],
          ['actor=%00', 'actor'],
          ['eventTypes=org.created%00', 'eventTypes'],
          ['organizationId=org_1&cursor=%00', 'cursor'],
          ['organizationId=org_1&limit=1%00', 'limit'],
          ['organizationId=org_1&from=2025-01-01%00', 'from'],
        ];
        for (const [query, param] of cases) {
          const res = await get(`/events/timeline?${query}`, BOB);
          const text = await res.text();
          expect(res.status, query).toBe(400);
          const body = JSON.parse(text) as { error: { code: string; issues: { path: unknown[] }[] } };
          expect(body.error.code, query).toBe('INVALID_QUERY');
          expect(body.error.issues.map((i) => i.path[0]), query).toContain(param);
          expect(text, query).not.toContain('\\u0000');
        }
        expect((await get('/events/timeline?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z', BOB)).status).toBe(200);
      });

      it("answers a storage failure with a fixed body, whatever the app's error handler, and logs the cause", async () => {
        const driverError = new Error('Failed query: select * from "events" where "actor" = $1\nparams: secret-param');
        const failures: unknown[] = [
          new EventBusError('STORAGE_UNAVAILABLE', 'connection refused', { cause: driverError }),
          new EventBusError('BUS_STOPPED', 'The storage is closed'),
          new EventBusError('STORAGE_REJECTED' as never, 'Failed query: select 1 params: secret-param', { cause: driverError }),
          driverError,
          new TypeError("Cannot read properties of undefined (reading 'secret-param')"),
        ];
        const expected = [
          [503, { error: { code: 'STORAGE_UNAVAILABLE', message: 'The event storage did not answer' } }],
          [503, { error: { code: 'SERVICE_UNAVAILABLE', message: 'The event bus is shutting down' } }],
          [500, { error: { code: 'INTERNAL_ERROR', message: 'Internal error' } }],
          [500, { error: { code: 'INTERNAL_ERROR', message: 'Internal error' } }],
          [500, { error: { code: 'INTERNAL_ERROR', message: 'Internal error' } }],
        ];
        let next = 0;
        const { get, logs } = await start(suiteCatalog, {}, (storage) => failingTimeline(storage, () => failures[next]));
        for (; next < failures.length; next++) {
          const res = await get('/events/timeline?organizationId=org_1', BOB);
          const text = await res.text();
          expect([res.status, JSON.parse(text)], String(failures[next])).toEqual(expected[next]);
          expectNoLeak(text, String(failures[next]));
        }
        const errors = logs.filter((l) => l.level === 'error');
        expect(errors).toHaveLength(failures.length);
        expect(new Set(errors.map((l) => l.msg))).toEqual(new Set(['event bus timeline query failed']));
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

      it('publishes org.access_denied at most once per caller and organization a minute, and ten times per caller', async () => {
        const { bus, get } = await start(suiteCatalog);
        const deny = async (organizationId: string, auth = ALICE) => {
          const res = await get(`/events/timeline?organizationId=${organizationId}`, auth);
          expect(res.status, organizationId).toBe(403);
        };
        const denied = async () =>
          (await bus.timeline({ eventTypes: ['org.access_denied'], limit: 100 })).events.map(
            (e) => `${e.actor}@${e.organizationId}`,
          );
        for (let i = 0; i < 5; i++) await deny('org_2');
        expect(await denied()).toEqual(['user_alice@org_2']);
        // Made-up organizations do not let one caller write without end either.
        for (let i = 0; i < 12; i++) await deny(`org_made_up_${i}`);
        const alice = await denied();
        expect(alice).toHaveLength(10);
        expect(alice.filter((d) => d === 'user_alice@org_2')).toHaveLength(1);
        // Another caller has a budget of their own.
        await deny('org_3', BOB);
        expect((await denied())[0]).toBe('user_bob@org_3');
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

    describe.runIf(features.metrics)('GET {prefix}/metrics', () => {
      it('is not served unless asked', async () => {
        const { get } = await start(suiteCatalog);
        expect((await get('/events/metrics')).status).toBe(404);
      });

      it('is public and serves the Prometheus text of what the bus did and what the storage holds', async () => {
        const { bus, get } = await start(suiteCatalog, {}, undefined, (b) => eventBusMetrics(b));
        let openGate!: () => void;
        const gate = new Promise<void>((resolve) => (openGate = resolve));
        let gated = 0;
        bus.subscribe('org.created', () => undefined, { name: 'suite.recorder' });
        bus.subscribe('auth.user_signed_up', () => {
          throw new Error('mail server down');
        }, { name: 'suite.failing', retry: { attempts: 1 } });
        bus.subscribe('org.member_joined', async () => {
          gated += 1;
          await gate;
        }, { name: 'suite.gated' });
        await bus.start();
        await bus.publish('org.created', { name: 'A' });
        await bus.publish('org.created', { name: 'B' });
        await bus.publish('auth.user_signed_up', { email: 'x@example.com', name: 'X' });
        await bus.publish('org.member_joined', { userId: 'u' });
        for (let i = 0; i < 200 && gated === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
        expect(gated).toBe(1);

        const res = await get('/events/metrics');
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(res.headers.get('cache-control')).toBe('no-store');
        const during = parseMetrics(await res.text());
        expect(during.value('event_bus_deliveries_pending', { subscriber: 'suite.gated', state: 'leased' })).toBe(1);
        expect(during.value('event_bus_deliveries_in_flight', {})).toBe(1);
        expect(during.value('event_bus_unprocessed_events', {})).toBeGreaterThanOrEqual(1);
        expect(during.value('event_bus_storage_up', {})).toBe(1);

        openGate();
        await bus.idle({ timeoutMs: 5000 });
        // The gauges of a scrape are reused for up to a second.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const after = parseMetrics(await (await get('/events/metrics')).text());
        const recorder = { event_type: 'org.created', subscriber: 'suite.recorder' };
        const failing = { event_type: 'auth.user_signed_up', subscriber: 'suite.failing' };
        expect(after.value('event_bus_events_published_total', { event_type: 'org.created' })).toBe(2);
        expect(after.value('event_bus_deliveries_succeeded_total', recorder)).toBe(2);
        expect(after.value('event_bus_handler_duration_seconds_count', { ...recorder, outcome: 'succeeded' })).toBe(2);
        expect(after.value('event_bus_delivery_lag_seconds_count', recorder)).toBe(2);
        expect(after.value('event_bus_delivery_failures_total', failing)).toBe(1);
        expect(after.value('event_bus_dead_letters_total', failing)).toBe(1);
        expect(after.value('event_bus_dead_letters_waiting', {})).toBe(1);
        expect(after.value('event_bus_deliveries_pending', { subscriber: 'suite.gated', state: 'leased' })).toBe(0);
        expect(after.value('event_bus_deliveries_succeeded_total', { event_type: 'org.member_joined', subscriber: 'suite.gated' })).toBe(1);
        expect(after.value('event_bus_deliveries_in_flight', {})).toBe(0);
      });

      it('answers 503 without detail, and logs, when the metrics source fails', async () => {
        const failing: MetricsSource = {
          contentType: 'text/plain; version=0.0.4; charset=utf-8',
          metrics: async () => {
            throw new Error('registry exploded: secret-param');
          },
        };
        const { get, logs } = await start(suiteCatalog, {}, undefined, () => failing);
        const res = await get('/events/metrics');
        expect(res.status).toBe(503);
        const text = await res.text();
        expect(text).toBe('metrics unavailable\n');
        expectNoLeak(text, 'metrics 503');
        expect(logs).toContainEqual({ level: 'error', msg: 'event bus metrics failed' });
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

/** The samples of a Prometheus text exposition, looked up by name and exact labels. */
function parseMetrics(text: string) {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return {
    /** The value of the one sample with exactly these labels (`undefined` when there is none). */
    value(name: string, labels: Record<string, string>): number | undefined {
      const wanted = JSON.stringify(Object.entries(labels).sort());
      return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === wanted)?.value;
    },
  };
}
