/**
 * Ambient transactions: with `currentTransaction`, a publish made without
 * `tx` inside a unit of work (a drizzle transaction kept in an
 * AsyncLocalStorage, as the Blawby backend does) joins that transaction: it
 * commits and rolls back with it, and its handlers run only after the
 * commit. An explicit `tx` wins. On every driver.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, type EventBus } from '@blawby/event-bus';
import { migrate, postgresStorage, type DrizzleDatabase } from '@blawby/event-bus/postgres';
import { createTestDatabase, DRIVERS, type TestDatabase } from './databases';

const catalog = defineCatalog({
  'user.signed_up': defineEvent({ version: '1.0.0', payload: z.object({ email: z.string() }) }),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function count(db: DrizzleDatabase, query: string): Promise<number> {
  const result = (await db.execute(sql.raw(query))) as unknown as Record<string, unknown>[] | { rows: Record<string, unknown>[] };
  return Number((Array.isArray(result) ? result : result.rows)[0]!.n);
}

/** The application's unit of work: one drizzle transaction per request, found through an AsyncLocalStorage. */
const unitOfWork = new AsyncLocalStorage<{ tx: DrizzleDatabase }>();

for (const driver of DRIVERS) {
  describe(`ambient transactions on ${driver}`, () => {
    let database: TestDatabase;
    let db: DrizzleDatabase;
    let bus: EventBus<typeof catalog>;
    let seen: string[];
    let schemas = 0;

    function inUnitOfWork<T>(fn: () => Promise<T>): Promise<T> {
      return db.transaction((tx: DrizzleDatabase) => unitOfWork.run({ tx }, fn));
    }

    /** A service function as the backend writes them: it never sees `tx`. */
    async function signUp(schema: string, email: string): Promise<void> {
      const tx = unitOfWork.getStore()!.tx;
      await tx.execute(sql`INSERT INTO ${sql.raw(schema)}.users (email) VALUES (${email})`);
      await bus.publish('user.signed_up', { email });
    }

    beforeAll(async () => {
      database = await createTestDatabase(driver);
      db = database.db;
    });
    afterEach(async () => {
      await bus?.stop();
    });
    afterAll(async () => {
      await database?.dispose();
    });

    async function start(): Promise<string> {
      const schema = `ambient${++schemas}`;
      await migrate(db, { schema });
      await db.execute(sql.raw(`CREATE TABLE ${schema}.users (email TEXT PRIMARY KEY)`));
      bus = createEventBus({
        catalog,
        storage: postgresStorage({ db, schema, currentTransaction: () => unitOfWork.getStore()?.tx }),
        dispatch: { pollIntervalMs: 50 },
      });
      seen = [];
      bus.subscribe('user.signed_up', (e) => void seen.push(e.payload.email), { name: 'welcome' });
      await bus.start();
      return schema;
    }

    it('rolls the event back with the unit of work: nothing stored, no handler runs', async () => {
      const schema = await start();
      await expect(
        inUnitOfWork(async () => {
          await signUp(schema, 'rolled@back');
          throw new Error('business failure after the publish');
        }),
      ).rejects.toThrow('business failure');
      await sleep(200); // several polls
      await bus.idle({ timeoutMs: 5000 });
      expect(seen).toEqual([]);
      expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.users`)).toBe(0);
      expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(0);
    });

    it('commits the event with the unit of work; its handler starts only after the commit', async () => {
      const schema = await start();
      let committed = false;
      const events = await inUnitOfWork(async () => {
        await signUp(schema, 'kept@here');
        await sleep(200); // the dispatcher polls meanwhile: the uncommitted event is invisible
        expect(seen).toEqual([]);
        return count(unitOfWork.getStore()!.tx, `SELECT count(*)::int AS n FROM ${schema}.events`);
      }).then((n) => {
        committed = true;
        return n;
      });
      expect(events).toBe(1); // written inside the unit of work's transaction
      await bus.idle({ timeoutMs: 10_000 });
      expect(committed).toBe(true);
      expect(seen).toEqual(['kept@here']);
      expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(1);
    });

    it('joins it with publishMany too, and publishes on its own outside a unit of work', async () => {
      const schema = await start();
      await expect(
        inUnitOfWork(async () => {
          await bus.publishMany([
            { type: 'user.signed_up', payload: { email: 'a@x' } },
            { type: 'user.signed_up', payload: { email: 'b@x' } },
          ]);
          throw new Error('rollback');
        }),
      ).rejects.toThrow('rollback');
      await bus.publish('user.signed_up', { email: 'alone@x' });
      await bus.idle({ timeoutMs: 10_000 });
      expect(seen).toEqual(['alone@x']);
      expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(1);
    });

    it('lets an explicit tx win over the ambient one', async () => {
      const schema = await start();
      // The unit of work commits; the explicit tx (a savepoint inside it) rolls back: the event goes with the savepoint.
      await inUnitOfWork(async () => {
        const ambient = unitOfWork.getStore()!.tx;
        await ambient.execute(sql`INSERT INTO ${sql.raw(schema)}.users (email) VALUES ('kept@unit')`);
        await expect(
          ambient.transaction(async (savepoint: DrizzleDatabase) => {
            await bus.publish('user.signed_up', { email: 'in@savepoint' }, { tx: savepoint });
            throw new Error('savepoint rolls back');
          }),
        ).rejects.toThrow('savepoint rolls back');
      });
      await sleep(200);
      await bus.idle({ timeoutMs: 5000 });
      expect(seen).toEqual([]);
      expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.users`)).toBe(1);
      expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(0);
    });

    it('refuses a currentTransaction that is not a function', () => {
      expect(() => postgresStorage({ db, currentTransaction: 'tx' as unknown as () => unknown })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      );
    });
  });
}
