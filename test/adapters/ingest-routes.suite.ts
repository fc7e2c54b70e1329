/**
 * `POST {prefix}/ingest` over real HTTP, the same for every framework adapter,
 * with the `cloudevents` package as the client (structured and binary mode
 * from its HTTP binding; batch mode as the JSON array its batch format is).
 * Every expectation runs on the memory storage and on PostgreSQL (PGlite),
 * each test in its own schema.
 *
 * The app under test is the one of `http-routes.suite.ts`, with the ingest
 * route on: `startApp` passes `options.ingest` to the adapter's `ingest` option.
 */
import { PGlite } from '@electric-sql/pglite';
import { CloudEvent, HTTP } from 'cloudevents';
import { drizzle } from 'drizzle-orm/pglite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, memoryStorage, toCloudEvent } from '@blawby/event-bus';
import type { BaseEvent, Catalog, Storage } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import type { Identity, IngestOptions } from '../../adapters/http';
import { suiteCatalog } from './http-routes.suite';
import type { AppUnderTest, StartOptions } from './http-routes.suite';

/** Starts the framework's app; with `options.ingest`, with the ingest route on, so configured. */
export type IngestStartApp = <C extends Catalog>(
  options: StartOptions<C> & { ingest?: IngestOptions },
) => Promise<AppUnderTest>;

const BOB = 'Bearer bob';

/** bob belongs to org_1 and org_2. */
function identify(authorization: string | undefined): Identity | null {
  return authorization === BOB ? { actor: 'user_bob', organizationIds: ['org_1', 'org_2'] } : null;
}

/** An HTTP message as the cloudevents package makes it. */
interface Message {
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A JSON event as the route answers it. */
type JsonEvent = Omit<BaseEvent, 'timestamp'> & { timestamp: string };

const orgCreated = (id: string, name: string, extra: Record<string, unknown> = {}) =>
  new CloudEvent({ id, type: 'org.created', source: '/queue/orgs', data: { name }, ...extra });

function batch(events: unknown[]): Message {
  return { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify(events) };
}

interface SuiteStorage {
  name: string;
  open(): Promise<Storage>;
}

/** PostgreSQL on one PGlite per framework, a fresh schema per test. */
function pgliteStorage(): SuiteStorage & { close(): Promise<void> } {
  let pglite: PGlite | undefined;
  let schemas = 0;
  return {
    name: 'postgres (pglite)',
    async open() {
      pglite ??= new PGlite();
      const db = drizzle(pglite);
      const schema = `ingest_${++schemas}`;
      await migrate(db, { schema });
      return postgresStorage({ db, schema, notify: false });
    },
    async close() {
      await pglite?.close();
    },
  };
}

/** Runs the ingest expectations against one framework. */
export function ingestRoutesSuite(framework: string, startApp: IngestStartApp): void {
  const pg = pgliteStorage();
  const storages: SuiteStorage[] = [{ name: 'memory', open: async () => memoryStorage() }, pg];
  afterAll(() => pg.close());

  for (const suiteStorage of storages) {
    describe(`${framework} adapter: POST {prefix}/ingest on ${suiteStorage.name}`, () => {
      const running: AppUnderTest[] = [];
      afterEach(async () => {
        await Promise.all(running.splice(0).map((app) => app.close()));
      });
      beforeAll(async () => {
        // Creates the PGlite instance (and its first schema) outside the first test's time.
        await suiteStorage.open();
      }, 60_000);

      async function start(ingest: IngestOptions = {}, catalog: Catalog = suiteCatalog) {
        const storage = await suiteStorage.open();
        const bus = createEventBus({ catalog, storage, source: 'test-suite', environment: 'suite' });
        const app = await startApp({
          bus,
          identify,
          prefix: '/events',
          onLog: () => {},
          ingest: { maxBatchSize: 5, bodyLimit: 16_384, ...ingest },
        });
        running.push(app);
        const send = async (message: Message, authorization: string | undefined = BOB) => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(message.headers)) {
            if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
          }
          if (authorization) headers.authorization = authorization;
          const res = await fetch(`${app.baseUrl}/events/ingest`, {
            method: 'POST',
            headers,
            body: message.body as string,
          });
          const text = await res.text();
          // A framework's own error page (a 413 from the body parser) need not be JSON.
          const body = (res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : { text }) as Record<
            string,
            unknown
          >;
          return { status: res.status, body };
        };
        const stored = async () => (await bus.timeline({ limit: 1000 })).events;
        return { bus, send, stored };
      }

      it('answers 401 without an identity and stores nothing', async () => {
        const { send, stored } = await start();
        for (const auth of [undefined, 'Bearer mallory']) {
          const res = await send(HTTP.structured(orgCreated('ce-401', 'Nope')), auth ?? '');
          expect(res.status).toBe(401);
          expect(res.body).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
        }
        expect(await stored()).toHaveLength(0);
      });

      it('stores a structured-mode CloudEvent (201), mapped as fromCloudEvent maps it, and a repeat of its id once (200)', async () => {
        const { send, stored } = await start();
        const ce = orgCreated('ce-1', 'Acme', {
          subject: 'orgs/acme',
          organizationid: 'org_1',
          actor: 'user_carol',
          actortype: 'user',
          region: 'eu',
        });
        const first = await send(HTTP.structured(ce));
        expect(first.status).toBe(201);
        const event = first.body.event as JsonEvent;
        expect(first.body.duplicate).toBe(false);
        expect(event).toMatchObject({
          eventType: 'org.created',
          eventVersion: '1.0.0',
          payload: { name: 'Acme' },
          organizationId: 'org_1',
          actor: 'user_carol',
          actorType: 'user',
          metadata: {
            source: '/queue/orgs',
            environment: 'suite',
            cloudEvent: { source: '/queue/orgs', subject: 'orgs/acme', extensions: { region: 'eu' } },
            ingest: { cloudEventId: 'ce-1', time: ce.time },
          },
        });
        // The stored envelope gets its own id; the CloudEvents id is its idempotency key.
        expect(event.eventId).not.toBe('ce-1');

        const again = await send(HTTP.structured(orgCreated('ce-1', 'Acme again', { organizationid: 'org_1' })));
        expect(again.status).toBe(200);
        expect(again.body).toMatchObject({
          duplicate: true,
          event: { eventId: event.eventId, payload: { name: 'Acme' } },
        });
        const all = await stored();
        expect(all.map((e) => e.eventId)).toEqual([event.eventId]);
        expect(all[0]!.metadata.cloudEvent).toMatchObject({ subject: 'orgs/acme' });
      });

      it('stores a binary-mode CloudEvent, and treats the same id in structured mode as a repeat', async () => {
        const { send, stored } = await start();
        const ce = orgCreated('ce-bin', 'Binary', { organizationid: 'org_2', correlationid: 'corr-7' });
        const message = HTTP.binary(ce);
        expect(message.headers['ce-id']).toBe('ce-bin');
        const first = await send(message, BOB);
        expect(first.status).toBe(201);
        expect(first.body.event).toMatchObject({
          eventType: 'org.created',
          payload: { name: 'Binary' },
          organizationId: 'org_2',
          metadata: { source: '/queue/orgs', correlationId: 'corr-7', ingest: { cloudEventId: 'ce-bin' } },
        });
        const repeat = await send(HTTP.structured(ce));
        expect(repeat.status).toBe(200);
        expect((repeat.body.event as JsonEvent).eventId).toBe((first.body.event as JsonEvent).eventId);
        expect(await stored()).toHaveLength(1);
      });

      it('gives back the envelope of an event that toCloudEvent sent from another bus', async () => {
        const { send, stored } = await start();
        const other = createEventBus({ catalog: suiteCatalog, source: 'webhook', environment: 'production' });
        const original = await other.publish(
          'auth.user_signed_up',
          { email: 'ada@example.com', name: 'Ada' },
          { actor: 'user_ada', actorType: 'user', metadata: { requestId: 'req-origin', correlationId: 'corr-1' } },
        );
        await other.stop();
        const res = await send(HTTP.structured(new CloudEvent(toCloudEvent(original))));
        expect(res.status).toBe(201);
        const [event] = await stored();
        expect(event).toMatchObject({
          eventType: 'auth.user_signed_up',
          payload: original.payload,
          actor: 'user_ada',
          actorType: 'user',
          metadata: {
            source: 'webhook',
            environment: 'production',
            requestId: 'req-origin',
            correlationId: 'corr-1',
            ingest: { cloudEventId: original.eventId, time: original.timestamp.toISOString() },
          },
        });
        expect(event!.metadata).not.toHaveProperty('cloudEvent');
      });

      it("upcasts an older eventversion with the catalog's upcaster before validating", async () => {
        const versioned = defineCatalog({
          'org.created': defineEvent({
            version: '2.0.0',
            payload: z.object({ name: z.string(), plan: z.enum(['free', 'pro']) }),
            upcast: {
              '1.0.0': (payload) => {
                if (payload.name === 'boom') throw new Error('cannot upcast');
                return { ...payload, plan: 'free' };
              },
            },
          }),
        });
        const { send, stored } = await start({}, versioned);
        const v1 = await send(HTTP.structured(orgCreated('v-1', 'Old', { eventversion: '1.0.0' })));
        expect(v1.status).toBe(201);
        expect(v1.body.event).toMatchObject({ eventVersion: '2.0.0', payload: { name: 'Old', plan: 'free' } });
        const v2 = await send(
          HTTP.structured(
            new CloudEvent({
              id: 'v-2',
              type: 'org.created',
              source: '/q',
              eventversion: '2.0.0',
              data: { name: 'New', plan: 'pro' },
            }),
          ),
        );
        expect(v2.status).toBe(201);
        const failed = await send(HTTP.structured(orgCreated('v-3', 'boom', { eventversion: '1.0.0' })));
        expect(failed.status).toBe(400);
        expect(failed.body).toMatchObject({
          error: { code: 'EVENT_VALIDATION_FAILED', issues: [{ path: ['eventversion'], code: 'upcast_failed' }] },
        });
        expect((await stored()).map((e) => e.payload)).toEqual([
          { name: 'New', plan: 'pro' },
          { name: 'Old', plan: 'free' },
        ]);
      });

      it('stores a batch all at once (201), reporting the ids it had already stored', async () => {
        const { send, stored } = await start();
        const first = await send(
          batch([orgCreated('b-1', 'One'), orgCreated('b-2', 'Two'), orgCreated('b-3', 'Three')]),
        );
        expect(first.status).toBe(201);
        expect(first.body.duplicates).toEqual([]);
        const events = first.body.events as JsonEvent[];
        expect(events.map((e) => e.payload.name)).toEqual(['One', 'Two', 'Three']);
        expect(events.map((e) => e.metadata.ingest)).toMatchObject([
          { cloudEventId: 'b-1' },
          { cloudEventId: 'b-2' },
          { cloudEventId: 'b-3' },
        ]);

        const mixed = await send(
          batch([orgCreated('b-2', 'Two again'), orgCreated('b-4', 'Four'), orgCreated('b-4', 'Four twice')]),
        );
        expect(mixed.status).toBe(201);
        expect(mixed.body.duplicates).toEqual(['b-2', 'b-4']);
        const mixedEvents = mixed.body.events as JsonEvent[];
        expect(mixedEvents[0]!.eventId).toBe(events[1]!.eventId);
        expect(mixedEvents[1]!.eventId).toBe(mixedEvents[2]!.eventId);
        expect(mixedEvents[2]!.payload).toEqual({ name: 'Four' });

        const repeat = await send(batch([orgCreated('b-1', 'One'), orgCreated('b-4', 'Four')]));
        expect(repeat.status).toBe(200);
        expect(repeat.body.duplicates).toEqual(['b-1', 'b-4']);
        expect((await stored()).map((e) => e.payload.name).sort()).toEqual(['Four', 'One', 'Three', 'Two']);

        const empty = await send(batch([]));
        expect(empty.status).toBe(200);
        expect(empty.body).toEqual({ events: [], duplicates: [] });
      });

      it('refuses a batch with one invalid event: 400 with every issue, nothing stored', async () => {
        const { send, stored } = await start();
        const signup = (id: string, data: object) =>
          new CloudEvent({ id, type: 'auth.user_signed_up', source: '/queue/auth', data });
        const res = await send(
          batch([
            orgCreated('ok-1', 'Fine'),
            signup('bad-1', { email: 'not-an-email', name: 'X' }),
            orgCreated('ok-2', 'Fine too'),
            signup('bad-2', { email: 'x@example.com' }),
          ]),
        );
        expect(res.status).toBe(400);
        const error = res.body.error as { code: string; issues: { path: (string | number)[]; code: string }[] };
        expect(error.code).toBe('EVENT_VALIDATION_FAILED');
        expect(error.issues.map((i) => i.path)).toEqual([
          [1, 'data', 'email'],
          [3, 'data', 'name'],
        ]);
        expect(JSON.stringify(res.body)).not.toContain('not-an-email');

        const unknown = await send(
          batch([
            orgCreated('ok-3', 'Fine'),
            new CloudEvent({ id: 'u-1', type: 'org.teleported', source: '/q', data: {} }),
          ]),
        );
        expect(unknown.status).toBe(400);
        expect(unknown.body).toMatchObject({
          error: { code: 'UNKNOWN_EVENT_TYPE', issues: [{ path: [1, 'type'], code: 'unknown_event_type' }] },
        });

        const malformed = await send(
          batch([orgCreated('ok-4', 'Fine'), { id: 'm-1', type: 'org.created', source: '/q' }]),
        );
        expect(malformed.status).toBe(400);
        expect(malformed.body).toMatchObject({
          error: { code: 'INVALID_CLOUD_EVENT', issues: [{ path: [1], code: 'invalid_cloud_event' }] },
        });
        expect(await stored()).toHaveLength(0);
      });

      it('refuses an invalid single event (400) in either mode, and a body that is not JSON', async () => {
        const { send, stored } = await start();
        const bad = new CloudEvent({
          id: 's-1',
          type: 'auth.user_signed_up',
          source: '/q',
          data: { email: 'x', name: '' },
        });
        for (const message of [HTTP.structured(bad), HTTP.binary(bad)]) {
          const res = await send(message);
          expect(res.status).toBe(400);
          const error = res.body.error as { code: string; issues: { path: unknown[] }[] };
          expect(error.code).toBe('EVENT_VALIDATION_FAILED');
          expect(error.issues.map((i) => i.path)).toEqual([
            ['data', 'email'],
            ['data', 'name'],
          ]);
        }
        const notJson = await send({ headers: { 'content-type': 'application/cloudevents+json' }, body: '{"id":' });
        expect(notJson.status).toBe(400);
        expect(notJson.body).toMatchObject({
          error: { code: 'INVALID_CLOUD_EVENT', issues: [{ code: 'invalid_json' }] },
        });
        const notABatch = await send({ headers: { 'content-type': 'application/cloudevents-batch+json' }, body: '{}' });
        expect(notABatch.status).toBe(400);
        const badVersion = await send({
          headers: { 'content-type': 'application/cloudevents+json' },
          body: JSON.stringify({ ...orgCreated('s-2', 'V').toJSON(), specversion: '0.3' }),
        });
        expect(badVersion.status).toBe(400);
        expect(badVersion.body).toMatchObject({ error: { code: 'INVALID_CLOUD_EVENT' } });
        expect(await stored()).toHaveLength(0);
      });

      it('answers 415 to a body that is not a CloudEvent, nothing stored', async () => {
        const { send, stored } = await start();
        const plain = await send({
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'x' }),
        });
        expect(plain.status).toBe(415);
        expect(plain.body).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
        const xml = await send({ headers: { 'content-type': 'application/cloudevents+xml' }, body: '<event/>' });
        expect(xml.status).toBe(415);
        expect(await stored()).toHaveLength(0);
      });

      it("answers 403 for an event of an organization not the caller's, storing none of the batch", async () => {
        const { send, stored } = await start();
        const res = await send(
          batch([
            orgCreated('t-1', 'Mine', { organizationid: 'org_1' }),
            orgCreated('t-2', 'Theirs', { organizationid: 'org_9' }),
          ]),
        );
        expect(res.status).toBe(403);
        expect(res.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
        expect(await stored()).toHaveLength(0);
      });

      it('answers 409, never with the stored event, when an id is reused for another event type', async () => {
        const { send } = await start();
        expect((await send(HTTP.structured(orgCreated('k-1', 'First')))).status).toBe(201);
        const reused = new CloudEvent({ id: 'k-1', type: 'org.member_joined', source: '/q', data: { userId: 'u' } });
        for (const message of [HTTP.structured(reused), batch([orgCreated('k-2', 'Fresh'), reused])]) {
          const res = await send(message);
          expect(res.status).toBe(409);
          expect(res.body).toMatchObject({ error: { code: 'IDEMPOTENCY_CONFLICT' } });
          expect(JSON.stringify(res.body)).not.toContain('First');
        }
        // (That the storage then stores nothing of the call is the storage contract's to check.)
      });

      it('answers 409 for an id repeated within a batch with another type, storing nothing', async () => {
        const { send, stored } = await start();
        const other = new CloudEvent({ id: 'k-3', type: 'org.member_joined', source: '/q', data: { userId: 'u' } });
        const res = await send(batch([orgCreated('k-3', 'A'), other]));
        expect(res.status).toBe(409);
        expect(res.body).toMatchObject({ error: { code: 'IDEMPOTENCY_CONFLICT' } });
        expect(await stored()).toHaveLength(0);
      });

      it('refuses a batch over maxBatchSize (400) and a body over bodyLimit (413)', async () => {
        const { send, stored } = await start({ maxBatchSize: 2, bodyLimit: 2048 });
        const tooMany = await send(batch([orgCreated('l-1', 'A'), orgCreated('l-2', 'B'), orgCreated('l-3', 'C')]));
        expect(tooMany.status).toBe(400);
        expect(tooMany.body).toMatchObject({
          error: { code: 'INVALID_CLOUD_EVENT', issues: [{ code: 'too_many_events' }] },
        });
        const big = await send(HTTP.structured(orgCreated('l-4', 'x'.repeat(4096))));
        expect(big.status).toBe(413);
        expect(await stored()).toHaveLength(0);
      });
    });
  }
}
