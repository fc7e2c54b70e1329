/**
 * What is specific to the PostgreSQL storage, beyond the shared contract:
 * migrations (idempotent, concurrent, schema and prefix, SQL export, foreign
 * key), publishing in a user's drizzle transaction, transactional
 * subscribers, LISTEN wake-ups, coalesced appends, purge, and errors.
 * Runs on PGlite always and on postgres.js when `DATABASE_URL` is set.
 */
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, EventBusError } from '@blawby/event-bus';
import type { EventBus } from '@blawby/event-bus';
import { migrate, migrationSql, postgresStorage, type DrizzleDatabase, type PostgresStorage } from '@blawby/event-bus/postgres';
import { makeEvent } from '../contract/storage.contract';
import { createTestDatabase, DRIVERS, type TestDatabase } from './databases';

const catalog = defineCatalog({
  'auth.user_signed_up': defineEvent({ version: '1.0.0', payload: z.object({ email: z.string() }) }),
  'billing.payment_failed': defineEvent({ version: '1.0.0', payload: z.object({ amount: z.number() }) }),
});

async function rows(db: DrizzleDatabase, query: string): Promise<Record<string, unknown>[]> {
  const result = await db.execute(sql.raw(query));
  return Array.isArray(result) ? result : (result as { rows: Record<string, unknown>[] }).rows;
}

async function count(db: DrizzleDatabase, query: string): Promise<number> {
  return Number((await rows(db, query))[0]!.n);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

for (const driver of DRIVERS) {
  describe(`postgres storage on ${driver}`, () => {
    let database: TestDatabase;
    let db: DrizzleDatabase;
    let schemas = 0;
    const buses: EventBus<typeof catalog>[] = [];

    /** A migrated schema of its own for one test. */
    async function freshSchema(): Promise<string> {
      const schema = `s${++schemas}`;
      await migrate(db, { schema });
      return schema;
    }

    function bus(schema: string, options: { pollIntervalMs?: number } = {}) {
      const b = createEventBus({
        catalog,
        storage: postgresStorage({ db, schema }),
        dispatch: { pollIntervalMs: options.pollIntervalMs ?? 50, leaseMs: 5000 },
        retry: { attempts: 2, minDelayMs: 10, maxDelayMs: 20 },
      });
      buses.push(b);
      return b;
    }

    beforeAll(async () => {
      database = await createTestDatabase(driver);
      db = database.db;
    });
    afterEach(async () => {
      for (const b of buses.splice(0)) await b.stop();
    });
    afterAll(async () => {
      await database?.dispose();
    });

    describe('migrations', () => {
      it('creates the tables once, records them, and does nothing the second time', { timeout: 120_000 }, async () => {
        const first = await migrate(db, { schema: 'mig_once' });
        const second = await migrate(db, { schema: 'mig_once' });
        expect(first.applied).toEqual([1, 2, 3, 4]);
        expect(second.applied).toEqual([]);
        const tables = await rows(
          db,
          `SELECT table_name FROM information_schema.tables WHERE table_schema = 'mig_once' ORDER BY table_name`,
        );
        expect(tables.map((r) => r.table_name)).toEqual([
          'event_bus_migrations',
          'event_bus_state',
          'event_dead_letters',
          'event_deliveries',
          'event_listeners',
          'event_ranges',
          'event_relay_scheduled',
          'event_relays',
          'event_subscribers',
          'event_subscriptions',
          'events',
        ]);
        expect(await count(db, `SELECT count(*)::int AS n FROM mig_once.event_bus_migrations`)).toBe(4);
        // The seed's indexes are all there.
        const indexes = (
          await rows(db, `SELECT indexname FROM pg_indexes WHERE schemaname = 'mig_once' AND tablename = 'events'`)
        ).map((r) => r.indexname);
        for (const name of [
          'idx_event_type',
          'idx_actor',
          'idx_actor_type',
          'idx_organization_id',
          'idx_created_at',
          'idx_processed',
          'idx_event_type_created',
          'idx_actor_events',
          'idx_org_events',
        ]) {
          expect(indexes).toContain(name);
        }
      });

      it("adopts an existing seed events table: its unprocessed rows reach the first subscribers, processed ones do not", async () => {
        await db.execute(sql.raw(`CREATE SCHEMA adopt`));
        await db.execute(
          sql.raw(`CREATE TABLE adopt.events (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(), event_id VARCHAR(100) UNIQUE NOT NULL DEFAULT gen_random_uuid()::text,
  event_type VARCHAR(100) NOT NULL, event_version VARCHAR(20) DEFAULT '1.0.0' NOT NULL, actor TEXT, actor_type TEXT,
  organization_id TEXT, payload JSONB NOT NULL, metadata JSONB NOT NULL DEFAULT '{}', processed BOOLEAN DEFAULT false NOT NULL,
  retry_count INTEGER DEFAULT 0 NOT NULL, last_error TEXT, processed_at TIMESTAMP, created_at TIMESTAMP DEFAULT NOW() NOT NULL)`),
        );
        // Ten rows in creation order; the outbox then marks the first five processed (an update moves each
        // row to the end of the heap, so physical order is no longer creation order).
        await db.execute(
          sql.raw(`INSERT INTO adopt.events (event_id, event_type, payload, created_at)
  SELECT 'legacy_' || n, 'auth.user_signed_up', jsonb_build_object('email', 'u' || n || '@x.io'),
    now() - interval '1 hour' + n * interval '1 second' FROM generate_series(1, 10) n`),
        );
        await db.execute(sql.raw(`UPDATE adopt.events SET processed = true, processed_at = now() WHERE event_id IN
  ('legacy_1', 'legacy_2', 'legacy_3', 'legacy_4', 'legacy_5')`));
        await migrate(db, { schema: 'adopt' });
        const storage = postgresStorage({ db, schema: 'adopt' });
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const fresh = makeEvent();
        await storage.append([{ event: fresh }]);
        const claimed = await storage.claim({ owner: 'w', subscribers: [{ name: 'a', limit: 100 }], limit: 100, leaseMs: 30_000 });
        expect(claimed.map((d) => d.event.eventId)).toEqual([6, 7, 8, 9, 10].map((n) => `legacy_${n}`).concat(fresh.eventId));
        for (const d of claimed) expect(await storage.complete(d)).toBe(true);
        expect((await storage.health()).unprocessed).toBe(0);
      });

      it('applies each migration once when several processes migrate at the same time', async () => {
        if (driver === 'pglite') {
          // One PGlite has one connection: concurrent calls queue on it, which must still be safe.
          const results = await Promise.all([1, 2, 3].map(() => migrate(db, { schema: 'mig_race' })));
          expect(results.flatMap((r) => r.applied)).toEqual([1, 2, 3, 4]);
          return;
        }
        const clients = [1, 2, 3, 4].map(() => postgres(database.url!, { max: 1, onnotice: () => {} }));
        try {
          const results = await Promise.all(
            clients.map((c) => migrate(drizzlePostgres(c) as unknown as DrizzleDatabase, { schema: 'mig_race' })),
          );
          expect(results.flatMap((r) => r.applied)).toEqual([1, 2, 3, 4]);
        } finally {
          await Promise.all(clients.map((c) => c.end()));
        }
      });

      it('places every table in a non-default schema with a prefix, and the storage works there', async () => {
        await migrate(db, { schema: 'custom_place', tablePrefix: 'eb_' });
        const tables = (
          await rows(db, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'custom_place'`)
        ).map((r) => r.table_name);
        expect(tables.sort()).toEqual(
          [
            'eb_event_bus_migrations',
            'eb_event_bus_state',
            'eb_event_dead_letters',
            'eb_event_deliveries',
            'eb_event_listeners',
            'eb_event_ranges',
            'eb_event_relay_scheduled',
            'eb_event_relays',
            'eb_event_subscribers',
            'eb_event_subscriptions',
            'eb_events',
          ].sort(),
        );
        const storage = postgresStorage({ db, schema: 'custom_place', tablePrefix: 'eb_' });
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([{ event: makeEvent() }]);
        expect(await count(db, `SELECT count(*)::int AS n FROM custom_place.eb_events`)).toBe(1);
        const [claimed] = await storage.claim({ owner: 'w', subscribers: [{ name: 'a', limit: 1 }], limit: 1, leaseMs: 1000 });
        expect(await count(db, `SELECT count(*)::int AS n FROM custom_place.eb_event_ranges`)).toBe(1);
        expect(await storage.complete(claimed!)).toBe(true);
        expect(await count(db, `SELECT count(*)::int AS n FROM custom_place.eb_event_ranges`)).toBe(0);
        expect(
          await count(
            db,
            `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'events'`,
          ),
        ).toBe(0);
      });

      it('says to run migrate() when its tables are missing, or older than this version', async () => {
        const notMigrated = { code: 'STORAGE_REJECTED', message: expect.stringMatching(/run migrate\(\) first/) };
        const never = postgresStorage({ db, schema: 'never_migrated' });
        await expect(never.append([{ event: makeEvent() }])).rejects.toMatchObject(notMigrated);
        await expect(never.health()).rejects.toMatchObject(notMigrated);
        // A schema from before migration 4: the publish that would notify a listener needs its table.
        const schema = await freshSchema();
        await db.execute(sql.raw(`DROP TABLE ${schema}.event_listeners`));
        await db.execute(sql.raw(`DELETE FROM ${schema}.event_bus_migrations WHERE id = 4`));
        const old = postgresStorage({ db, schema });
        await old.register([{ name: 'a', patterns: ['*'] }]);
        await expect(old.append([{ event: makeEvent() }])).rejects.toMatchObject(notMigrated);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(0);
        // The same storages work once migrated.
        expect((await migrate(db, { schema })).applied).toEqual([4]);
        expect((await old.append([{ event: makeEvent() }])).events).toHaveLength(1);
        await migrate(db, { schema: 'never_migrated' });
        expect((await never.append([{ event: makeEvent() }])).events).toHaveLength(1);
      });

      it('exports SQL that creates the same tables, after which migrate() finds nothing to do', async () => {
        const script = migrationSql({ schema: 'from_sql' });
        expect(script).toContain('CREATE TABLE IF NOT EXISTS "from_sql"."events"');
        // Users run the script with their own tools: here, statement by statement.
        for (const statement of script.split(/;\n\n/)) {
          const text = statement.replace(/^--.*$/gm, '').trim();
          if (text) await db.execute(sql.raw(text));
        }
        expect((await migrate(db, { schema: 'from_sql' })).applied).toEqual([]);
        const storage = postgresStorage({ db, schema: 'from_sql' });
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([{ event: makeEvent() }]);
        expect(
          await storage.claim({ owner: 'w', subscribers: [{ name: 'a', limit: 5 }], limit: 5, leaseMs: 1000 }),
        ).toHaveLength(1);
      });

      it('adds the organization foreign key only when asked', async () => {
        await db.execute(sql.raw(`CREATE SCHEMA fk`));
        await db.execute(sql.raw(`CREATE TABLE fk.organization (id TEXT PRIMARY KEY)`));
        await migrate(db, { schema: 'fk', organizationForeignKey: { table: 'organization' } });
        await db.execute(sql.raw(`INSERT INTO fk.organization (id) VALUES ('org_1')`));
        const storage = postgresStorage({ db, schema: 'fk' });
        await storage.append([{ event: makeEvent('auth.user_signed_up', { organizationId: 'org_1' }) }]);
        await expect(
          storage.append([{ event: makeEvent('auth.user_signed_up', { organizationId: 'org_unknown' }) }]),
        ).rejects.toThrow();
        expect(await count(db, `SELECT count(*)::int AS n FROM fk.events`)).toBe(1);
        const fks = await rows(
          db,
          `SELECT count(*)::int AS n FROM information_schema.table_constraints WHERE table_schema = 'mig_once' AND constraint_type = 'FOREIGN KEY'`,
        );
        expect(Number(fks[0]!.n)).toBe(0);
      });

      it('refuses table options that are not plain identifiers', () => {
        expect(() => postgresStorage({ db, schema: 'bad"; drop' })).toThrow(
          expect.objectContaining({ code: 'INVALID_OPTION' }),
        );
        expect(() => migrationSql({ tablePrefix: 'x-y' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
        expect(() => postgresStorage({ db: {} as DrizzleDatabase })).toThrow(
          expect.objectContaining({ code: 'INVALID_OPTION' }),
        );
      });
    });

    describe('publishing in a drizzle transaction', () => {
      it("commits the event with the caller's rows, or rolls both back; handlers see it only after commit", async () => {
        const schema = await freshSchema();
        await db.execute(sql.raw(`CREATE TABLE ${schema}.practices (id TEXT PRIMARY KEY)`));
        const b = bus(schema);
        const seen: string[] = [];
        b.subscribe('auth.user_signed_up', (e) => void seen.push(e.payload.email), { name: 'welcome' });
        await b.start();

        await expect(
          db.transaction(async (tx) => {
            await tx.execute(sql.raw(`INSERT INTO ${schema}.practices (id) VALUES ('p1')`));
            await b.publish('auth.user_signed_up', { email: 'rolled@back' }, { tx });
            throw new Error('business failure');
          }),
        ).rejects.toThrow('business failure');

        await db.transaction(async (tx) => {
          await tx.execute(sql.raw(`INSERT INTO ${schema}.practices (id) VALUES ('p2')`));
          await b.publish('auth.user_signed_up', { email: 'kept@here' }, { tx });
          await sleep(70); // the dispatcher polls meanwhile (every 50 ms): the uncommitted event is invisible
          expect(seen).toEqual([]);
        });
        await b.idle({ timeoutMs: 10_000 });
        expect(seen).toEqual(['kept@here']);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.practices`)).toBe(1);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(1);
        const [event] = (await b.timeline({ limit: 10 })).events;
        expect(event).toMatchObject({ processed: true, retryCount: 0 });
      });

      it('gives a transactional subscriber ctx.tx: its rows and its delivery commit together', async () => {
        const schema = await freshSchema();
        await db.execute(sql.raw(`CREATE TABLE ${schema}.effects (event_id TEXT, attempt INT)`));
        const b = bus(schema);
        let calls = 0;
        b.subscribe(
          'billing.payment_failed',
          async (e, ctx) => {
            calls += 1;
            const tx = ctx.tx as DrizzleDatabase;
            await tx.execute(
              sql`INSERT INTO ${sql.raw(schema)}.effects (event_id, attempt) VALUES (${e.eventId}, ${ctx.attempt})`,
            );
            if (ctx.attempt === 1) throw new Error('fails after writing: the write must roll back');
          },
          { name: 'ledger', transactional: true },
        );
        await b.start();
        await b.publish('billing.payment_failed', { amount: 5 });
        await b.idle({ timeoutMs: 10_000 });
        expect(calls).toBe(2);
        const effects = await rows(db, `SELECT attempt FROM ${schema}.effects`);
        expect(effects.map((r) => Number(r.attempt))).toEqual([2]);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.event_deliveries`)).toBe(0);
        expect((await b.timeline({ limit: 10 })).events[0]).toMatchObject({ processed: true, retryCount: 1 });
        const [event] = await rows(db, `SELECT retry_count, last_error FROM ${schema}.events`);
        expect(event).toMatchObject({ retry_count: 1 });
        expect(String(event!.last_error)).toContain('fails after writing');
      });

      it('refuses a tx that is not a drizzle transaction, storing nothing', async () => {
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        await expect(storage.append([{ event: makeEvent() }], { tx: { not: 'a tx' } })).rejects.toMatchObject({
          code: 'INVALID_OPTION',
        });
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(0);
      });
    });

    describe('wake-ups and coalescing', () => {
      /** A publishing storage, and another one watching for subscriber `a` (`auth.*`) that counts its wake-ups. */
      async function watchedPair() {
        const schema = await freshSchema();
        const publisher = postgresStorage({ db, schema });
        const worker = postgresStorage({ db, schema });
        await worker.register([{ name: 'a', patterns: ['auth.*'] }]);
        const watcher = { woken: 0, stop: async () => {} };
        watcher.stop = await worker.watch(() => void (watcher.woken += 1));
        return { publisher, watcher };
      }

      it('wakes a watcher through LISTEN/NOTIFY when another storage commits due work', async () => {
        const { publisher, watcher } = await watchedPair();
        await publisher.append([{ event: makeEvent() }]);
        await until(() => watcher.woken > 0, 5000);
        // Future work does not wake anyone; neither does an event no one receives.
        const before = watcher.woken;
        await publisher.append([{ event: makeEvent(), deliverAt: new Date(Date.now() + 60_000) }]);
        await publisher.append([{ event: makeEvent('billing.payment_failed') }]);
        await sleep(200);
        expect(watcher.woken).toBe(before);
        await watcher.stop();
        await publisher.append([{ event: makeEvent() }]);
        await sleep(200);
        expect(watcher.woken).toBe(before);
      });

      it('wakes for an append of several events only when one of them is due for a subscriber', async () => {
        const { publisher, watcher } = await watchedPair();
        await sleep(100);
        const before = watcher.woken;
        const idle = await publisher.append([
          { event: makeEvent(), deliverAt: new Date(Date.now() + 60_000) },
          { event: makeEvent('billing.payment_failed') },
        ]);
        expect(idle.events.map((e) => e.processed)).toEqual([false, true]);
        expect(idle.unclaimed).toBe(0);
        await sleep(200);
        expect(watcher.woken).toBe(before);
        const due = await publisher.append([{ event: makeEvent('billing.payment_failed') }, { event: makeEvent() }]);
        expect(due.events.map((e) => e.processed)).toEqual([true, false]);
        expect(due.unclaimed).toBe(1);
        await until(() => watcher.woken > before, 5000);
        await watcher.stop();
      });

      it('sends and listens for nothing with notify: false (for PgBouncer in transaction mode)', async () => {
        const schema = await freshSchema();
        const quiet = postgresStorage({ db, schema, notify: false });
        const listener = postgresStorage({ db, schema });
        await listener.register([{ name: 'a', patterns: ['*'] }]);
        let woken = 0;
        const stop = await listener.watch(() => void (woken += 1));
        let quietWoken = 0;
        const stopQuiet = await quiet.watch(() => void (quietWoken += 1));
        await quiet.append([{ event: makeEvent() }]);
        await sleep(200);
        expect(woken).toBe(0);
        await listener.append([{ event: makeEvent() }]);
        await until(() => woken > 0, 5000);
        expect(quietWoken).toBe(0);
        await stop();
        await stopQuiet();
        expect((await listener.backlog(['a'])).due).toBe(2);
      });

      /** Counts the NOTIFYs on `channel` from a connection of its own, which no listener row announces. */
      async function countNotifications(channel: string): Promise<{ n: number; stop(): Promise<void> }> {
        const seen = { n: 0, stop: async () => {} };
        if (database.url) {
          const client = postgres(database.url, { max: 1, onnotice: () => {} });
          await client.listen(channel, () => void (seen.n += 1));
          seen.stop = () => client.end();
        } else {
          const pglite = db.$client as unknown as { listen(c: string, fn: () => void): Promise<() => Promise<void>> };
          seen.stop = await pglite.listen(channel, () => void (seen.n += 1));
        }
        return seen;
      }

      it('sends NOTIFY only while some storage listens: none before, none after it stopped or its row expired', async () => {
        const schema = await freshSchema();
        const publisher = postgresStorage({ db, schema });
        const worker = postgresStorage({ db, schema });
        await worker.register([{ name: 'a', patterns: ['*'] }]);
        const heard = await countNotifications(publisher.tables.channel);
        const listeners = () => count(db, `SELECT count(*)::int AS n FROM ${schema}.event_listeners WHERE expires_at > now()`);
        try {
          await publisher.append([{ event: makeEvent() }]);
          await sleep(200);
          expect(heard.n).toBe(0);

          const stop = await worker.watch(() => {});
          expect(await listeners()).toBe(1);
          await publisher.append([{ event: makeEvent() }]);
          await until(() => heard.n === 1, 5000);
          await publisher.append([{ event: makeEvent() }, { event: makeEvent() }]);
          await until(() => heard.n === 2, 5000); // one per statement

          // A process killed while listening leaves its row, which stops counting once it expires.
          await db.execute(sql.raw(`UPDATE ${schema}.event_listeners SET expires_at = now() - interval '1 second'`));
          await publisher.append([{ event: makeEvent() }]);
          await sleep(200);
          expect(heard.n).toBe(2);

          await stop();
          expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.event_listeners`)).toBe(0);
          await publisher.append([{ event: makeEvent() }]);
          await sleep(200);
          expect(heard.n).toBe(2);
          expect((await worker.backlog(['a'])).due).toBe(6); // nothing was lost for want of a notice
        } finally {
          await heard.stop();
        }
      });

      it('runs a handler in another bus within milliseconds of the publish, without polling', async () => {
        const schema = await freshSchema();
        const publisher = bus(schema, { pollIntervalMs: 60_000 });
        const worker = bus(schema, { pollIntervalMs: 60_000 });
        const started: number[] = [];
        worker.subscribe('auth.user_signed_up', () => void started.push(Date.now()), { name: 'fast' });
        await worker.start();
        await publisher.start();
        await sleep(50);
        const t0 = Date.now();
        await publisher.publish('auth.user_signed_up', { email: 'a@b.c' });
        await until(() => started.length === 1, 5000);
        expect(started[0]! - t0).toBeLessThan(1000);
      });

      it('coalesces concurrent appends into one statement and still answers each caller', async () => {
        const schema = await freshSchema();
        let statements = 0;
        const counting: DrizzleDatabase = {
          execute: (query) => {
            statements += 1;
            return db.execute(query);
          },
          transaction: (fn) => db.transaction(fn),
        };
        const storage = postgresStorage({ db: counting, schema });
        await storage.register([{ name: 'a', patterns: ['auth.*'] }]);
        statements = 0;
        const inputs = Array.from({ length: 20 }, (_, i) => ({
          event: makeEvent(i % 2 ? 'auth.user_signed_up' : 'billing.payment_failed'),
        }));
        const results = await Promise.all(inputs.map((input) => storage.append([input])));
        expect(statements).toBe(1);
        results.forEach((r, i) => expect(r.events[0]!.eventId).toBe(inputs[i]!.event.eventId));
        expect(results.map((r) => r.unclaimed)).toEqual(inputs.map((_, i) => i % 2));
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(20);
        // Nothing is written per delivery: the subscriber reads them from the log.
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.event_deliveries`)).toBe(0);
        expect((await storage.backlog(['a'])).due).toBe(10);
      });

      it('answers concurrent appends with one idempotency key with the first event, each call on its own', async () => {
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        const inputs = Array.from({ length: 6 }, () => ({ event: makeEvent(), idempotencyKey: 'same' }));
        const results = await Promise.all(inputs.map((input) => storage.append([input])));
        const ids = new Set(results.map((r) => r.events[0]!.eventId));
        expect(ids.size).toBe(1);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(1);
      });

      it("runs its statements in a caller's transaction as prepared statements, as outside one", async (ctx) => {
        if (driver === 'pglite') {
          ctx.skip('PGlite runs statements in process: nothing to prepare for');
          return;
        }
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        // Named prepared statements of this connection that insert into the events table.
        const prepared = (tx: unknown) =>
          rows(tx as DrizzleDatabase, `SELECT count(*)::int AS n FROM pg_prepared_statements
            WHERE NOT from_sql AND statement LIKE '%INSERT INTO "${schema}"."events"%'`);
        for (let i = 0; i < 2; i++) {
          await db.transaction(async (tx) => {
            await storage.append([{ event: makeEvent() }], { tx });
            expect((await prepared(tx))[0]!.n).toBe(1);
          });
        }
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(2);
      });

      it("never makes a publish wait on another transaction's idempotency key", async (ctx) => {
        if (driver === 'pglite') {
          ctx.skip('PGlite has one connection: a second transaction cannot hold a key while another publishes');
          return;
        }
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        const other = postgres(database.url!, { max: 1, onnotice: () => {} });
        const otherDb = drizzlePostgres(other) as unknown as DrizzleDatabase;
        const holder = postgresStorage({ db: otherDb, schema });
        let commit!: () => void;
        const held = new Promise<void>((resolve) => (commit = resolve));
        let inserted!: () => void;
        const holding = new Promise<void>((resolve) => (inserted = resolve));
        const open = otherDb.transaction(async (tx) => {
          await holder.append([{ event: makeEvent(), idempotencyKey: 'held' }], { tx });
          inserted();
          await held;
        });
        try {
          await holding;
          // The same key waits for the holder (it may be committed); unrelated publishes at the same moment do not.
          const sameKey = storage.append([{ event: makeEvent(), idempotencyKey: 'held' }]);
          const unrelated = await Promise.race([
            Promise.all([storage.append([{ event: makeEvent() }]), storage.append([{ event: makeEvent(), idempotencyKey: 'free' }])]),
            sleep(3000).then(() => 'waited' as const),
          ]);
          expect(unrelated).not.toBe('waited');
          commit();
          await open;
          expect((await sameKey).events).toHaveLength(1);
        } finally {
          commit();
          await open.catch(() => {});
          await other.end();
        }
      });

      it("keeps one caller's bad row from failing the others coalesced with it", async () => {
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        const good = makeEvent();
        const bad = makeEvent('auth.user_signed_up', { eventType: 'x'.repeat(200) }); // longer than VARCHAR(100)
        const [ok, failed] = await Promise.allSettled([
          storage.append([{ event: good }]),
          storage.append([{ event: bad }]),
        ]);
        expect(ok.status).toBe('fulfilled');
        expect(failed.status).toBe('rejected');
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(1);
      });
    });

    describe('the log', () => {
      const claimAll = (storage: PostgresStorage, owner: string, names: string[], leaseMs = 30_000) =>
        storage.claim({ owner, subscribers: names.map((name) => ({ name, limit: 100 })), limit: 100, leaseMs });

      it('neither skips nor delivers early an event whose transaction commits after later ones', async (ctx) => {
        if (driver === 'pglite') {
          ctx.skip('PGlite has one connection: a second transaction cannot be open while another commits');
          return;
        }
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const early = makeEvent();
        const late = makeEvent();
        // A second connection holds a transaction open with `early` in it: its id is older than `late`'s.
        const other = postgres(database.url!, { max: 1, onnotice: () => {} });
        const otherDb = drizzlePostgres(other) as unknown as DrizzleDatabase;
        const otherStorage = postgresStorage({ db: otherDb, schema });
        let commit!: () => void;
        const held = new Promise<void>((resolve) => (commit = resolve));
        let appended!: () => void;
        const inTx = new Promise<void>((resolve) => (appended = resolve));
        const open = otherDb.transaction(async (tx) => {
          await otherStorage.append([{ event: early }], { tx });
          appended();
          await held;
        });
        try {
          await inTx;
          await storage.append([{ event: late }]);
          // `late` is committed, but an older transaction is still running: nothing is read past it.
          expect(await claimAll(storage, 'w1', ['a'])).toEqual([]);
          // It counts as due (so idle() waits for it), only not readable yet.
          expect((await storage.backlog(['a'])).due).toBe(1);
          commit();
          await open;
          const claimed = await claimAll(storage, 'w1', ['a']);
          expect(claimed.map((d) => d.event.eventId)).toEqual([early.eventId, late.eventId]);
        } finally {
          commit();
          await open.catch(() => {});
          await other.end();
        }
      });

      it('writes one row per event however many subscribers, and no row per delivery on the happy path', async () => {
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        const names = ['a', 'b', 'c'];
        await storage.register(names.map((name) => ({ name, patterns: ['*'] })));
        await storage.append(Array.from({ length: 20 }, () => ({ event: makeEvent() })));
        const claimed = await claimAll(storage, 'w1', names);
        expect(claimed).toHaveLength(60);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.event_ranges`)).toBe(3);
        await Promise.all(claimed.map((d) => storage.complete(d)));
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.event_ranges`)).toBe(0);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.event_deliveries`)).toBe(0);
        expect((await storage.health()).unprocessed).toBe(0);
        expect((await storage.timeline({ limit: 100 })).events.every((e) => e.processed)).toBe(true);
      });

      it('hands over a batch whose lease ran out mid-way: its unsettled events only, fencing the stale owner', async () => {
        const schema = await freshSchema();
        const s1 = postgresStorage({ db, schema });
        const s2 = postgresStorage({ db, schema });
        await s1.register([{ name: 'a', patterns: ['*'] }]);
        await s1.append(Array.from({ length: 5 }, () => ({ event: makeEvent() })));
        const batch = await claimAll(s1, 'w1', ['a'], 400);
        expect(batch).toHaveLength(5);
        expect(await s1.complete(batch[0]!)).toBe(true);
        expect(await s1.complete(batch[1]!)).toBe(true);
        expect(await claimAll(s2, 'w2', ['a'])).toEqual([]);
        await sleep(600);
        const taken = await claimAll(s2, 'w2', ['a']);
        expect(taken.map((d) => d.deliveryId).sort()).toEqual(batch.slice(2).map((d) => d.deliveryId).sort());
        expect(taken.every((d) => d.attempt === 2)).toBe(true);
        // The stale owner's outcomes change nothing.
        expect(await s1.complete(batch[2]!)).toBe(false);
        expect(await s1.fail(batch[3]!, { error: { name: 'E', message: 'late' }, retryAt: null })).toBe(false);
        expect(await s1.release(batch[4]!)).toBe(false);
        expect(await s1.extend(batch.slice(2), 10_000)).toEqual([]);
        for (const d of taken) expect(await s2.complete(d)).toBe(true);
        expect(await s1.listDeadLetters()).toEqual([]);
        expect((await s1.health()).unprocessed).toBe(0);
      });

      it('keeps a key blocked behind a retry for another process, and lets other keys through', async () => {
        const schema = await freshSchema();
        const s1 = postgresStorage({ db, schema });
        const s2 = postgresStorage({ db, schema });
        await s1.register([{ name: 'a', patterns: ['*'] }]);
        const [k1, k2, other] = [makeEvent(), makeEvent(), makeEvent()];
        await s1.append([{ event: k1, orderingKey: 'k' }]);
        const [d1] = await claimAll(s1, 'w1', ['a']);
        expect(d1!.event.eventId).toBe(k1.eventId);
        expect(await s1.fail(d1!, { error: { name: 'E', message: 'x' }, retryAt: new Date(Date.now() + 500) })).toBe(true);
        await s1.append([{ event: k2, orderingKey: 'k' }, { event: other, orderingKey: 'j' }]);
        // Another process reads on: k2 waits behind k1's retry, other runs.
        expect((await claimAll(s2, 'w2', ['a'])).map((d) => d.event.eventId)).toEqual([other.eventId]);
        expect(await claimAll(s2, 'w2', ['a'])).toEqual([]);
        await sleep(600);
        const [retried] = await claimAll(s2, 'w2', ['a']);
        expect(retried).toMatchObject({ attempt: 2, deliveryId: d1!.deliveryId });
        expect(await claimAll(s1, 'w1', ['a'])).toEqual([]); // still behind the running retry
        expect(await s2.complete(retried!)).toBe(true);
        expect((await claimAll(s1, 'w1', ['a'])).map((d) => d.event.eventId)).toEqual([k2.eventId]);
      });

      it('replays what a subscriber has passed while its head moves on, without delivering anything twice', async () => {
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const first = Array.from({ length: 3 }, () => ({ event: makeEvent() }));
        await storage.append(first);
        for (const d of await claimAll(storage, 'w1', ['a'])) await storage.complete(d);
        const later = Array.from({ length: 2 }, () => ({ event: makeEvent() }));
        await storage.append(later);
        // The head has passed the first three; the later two are still ahead of it.
        expect(await storage.replay({ subscribers: ['a'] })).toBe(3);
        const claimed = await claimAll(storage, 'w1', ['a']);
        expect(claimed.map((d) => d.event.eventId).sort()).toEqual(
          [...first, ...later].map((i) => i.event.eventId).sort(),
        );
        for (const d of claimed) expect(await storage.complete(d)).toBe(true);
        expect(await claimAll(storage, 'w1', ['a'])).toEqual([]);
      });

      it('starts a new subscriber at the oldest place another one has not settled', async () => {
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const events = Array.from({ length: 4 }, () => ({ event: makeEvent() }));
        await storage.append(events);
        const [d1, d2] = await storage.claim({ owner: 'w', subscribers: [{ name: 'a', limit: 2 }], limit: 2, leaseMs: 30_000 });
        await storage.complete(d1!);
        await storage.complete(d2!);
        await storage.register([{ name: 'b', patterns: ['*'] }]);
        const forB = await claimAll(storage, 'w', ['b']);
        expect(forB.map((d) => d.event.eventId)).toEqual(events.slice(2).map((i) => i.event.eventId));
      });
    });

    describe('concurrency of settling', () => {
      it('marks an event processed when its last deliveries complete at the same time', async () => {
        const schema = await freshSchema();
        const s1 = postgresStorage({ db, schema });
        const s2 = postgresStorage({ db, schema });
        await s1.register([
          { name: 'a', patterns: ['*'] },
          { name: 'b', patterns: ['*'] },
        ]);
        await s1.append(Array.from({ length: 30 }, () => ({ event: makeEvent() })));
        const a = await s1.claim({
          owner: 'w1',
          subscribers: [{ name: 'a', limit: 100 }],
          limit: 100,
          leaseMs: 30_000,
        });
        const b = await s2.claim({
          owner: 'w2',
          subscribers: [{ name: 'b', limit: 100 }],
          limit: 100,
          leaseMs: 30_000,
        });
        await Promise.all([...a.map((d) => s1.complete(d)), ...b.map((d) => s2.complete(d))]);
        expect((await s1.health()).unprocessed).toBe(0);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.event_ranges`)).toBe(0);
      });
    });

    describe('purge', () => {
      it('deletes processed events older than the cut-off in batches, never undelivered or dead-lettered ones', async () => {
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        await storage.register([{ name: 'a', patterns: ['auth.*'] }]);
        const old = new Date(Date.now() - 10 * 86_400_000);
        // 7 old processed events (no subscriber matches them), 2 old undelivered, 1 old dead-lettered, 1 recent processed.
        await storage.append(
          Array.from({ length: 7 }, () => ({ event: makeEvent('billing.payment_failed', { timestamp: old }) })),
        );
        await storage.append([
          { event: makeEvent('auth.user_signed_up', { timestamp: old }) },
          { event: makeEvent('auth.user_signed_up', { timestamp: old }) },
          { event: makeEvent('auth.user_signed_up', { timestamp: old }) },
        ]);
        await storage.append([{ event: makeEvent('billing.payment_failed') }]);
        const [d] = await storage.claim({
          owner: 'w',
          subscribers: [{ name: 'a', limit: 1 }],
          limit: 1,
          leaseMs: 30_000,
        });
        await storage.fail(d!, { error: { name: 'E', message: 'x' }, retryAt: null });

        const purged = await storage.purge({ olderThan: new Date(Date.now() - 86_400_000), batchSize: 3 });
        expect(purged).toBe(7);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(4);
        expect(await storage.listDeadLetters()).toHaveLength(1);
        expect((await storage.health()).unprocessed).toBe(2);
        await expect(storage.purge({ olderThan: 'yesterday' as unknown as Date })).rejects.toMatchObject({
          code: 'INVALID_OPTION',
        });
      });
    });

    describe('errors', () => {
      it('rejects a bad timeline cursor with INVALID_OPTION', async () => {
        const schema = await freshSchema();
        const storage = postgresStorage({ db, schema });
        await expect(storage.timeline({ limit: 10, cursor: 'bm9wZQ' })).rejects.toMatchObject({
          code: 'INVALID_OPTION',
        });
      });

      it('rejects with STORAGE_UNAVAILABLE when the database cannot be reached', async () => {
        const client = postgres('postgres://postgres@127.0.0.1:1/none', {
          max: 1,
          connect_timeout: 2,
          onnotice: () => {},
        });
        const storage = postgresStorage({ db: drizzlePostgres(client) as unknown as DrizzleDatabase });
        try {
          const err = await storage.append([{ event: makeEvent() }]).catch((e: unknown) => e);
          expect(EventBusError.is(err, 'STORAGE_UNAVAILABLE')).toBe(true);
          expect((err as Error).cause).toBeDefined();
          expect((err as Error).message).not.toContain('a@example.com');
          await expect(
            storage.claim({ owner: 'w', subscribers: [{ name: 'a', limit: 1 }], limit: 1, leaseMs: 10 }),
          ).rejects.toMatchObject({
            code: 'STORAGE_UNAVAILABLE',
          });
        } finally {
          await client.end();
        }
      });
    });
  });
}
