/**
 * Several storages over one database, as worker processes of one service
 * (or two buses of one process) have: on PGlite they share the one
 * in-process instance. Keyed events handed from one worker to the other,
 * the storage's statements leaving the event loop free between them (PGlite
 * settles a query without returning to it), and how a row waiting behind a
 * key held by a range counts. Runs on PGlite always and on postgres.js and
 * node-postgres when `DATABASE_URL` is set.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, type EventBus } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { makeEvent } from '../contract/storage.contract';
import { createTestDatabase, DRIVERS, type TestDatabase } from './databases';

const catalog = defineCatalog({
  'test.item_created': defineEvent({ version: '1.0.0', payload: z.object({ n: z.number().int() }) }),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const driver of DRIVERS) {
  describe(`storages sharing one database on ${driver}`, () => {
    let database: TestDatabase;
    let schemas = 0;
    const buses: EventBus<typeof catalog>[] = [];

    /** A migrated schema of its own for one test. */
    async function freshSchema(): Promise<string> {
      const schema = `shared${++schemas}`;
      await migrate(database.db, { schema });
      return schema;
    }

    beforeAll(async () => {
      database = await createTestDatabase(driver);
    });
    afterEach(async () => {
      await Promise.all(buses.splice(0).map((b) => b.stop()));
    });
    afterAll(async () => {
      await database?.dispose();
    });

    it('runs the later event of an ordering key once the earlier one completes on the other bus', { timeout: 30_000 }, async () => {
      const schema = await freshSchema();
      const ran: number[] = [];
      for (let i = 0; i < 2; i++) {
        const bus = createEventBus({
          catalog,
          storage: postgresStorage({ db: database.db, schema }),
          dispatch: { concurrency: 1, pollIntervalMs: 20 },
        });
        bus.subscribe('*', async (event) => void ran.push(event.payload.n), { name: 'ordered' });
        buses.push(bus);
      }
      await Promise.all(buses.map((b) => b.start()));
      await buses[0]!.publish('test.item_created', { n: 1 }, { orderingKey: 'k1' });
      await buses[1]!.publish('test.item_created', { n: 2 }, { orderingKey: 'k1' });

      // The second waits in a delivery row until the first's completion (sent by whichever bus ran
      // it) lands; the bus not running the first must not keep the other one's completion from being sent.
      await Promise.all(buses.map((b) => b.idle({ timeoutMs: 5000 })));
      expect(ran).toEqual([1, 2]);
      expect((await buses[0]!.health()).unprocessed).toBe(0);
    });

    it("leaves the event loop free between the storage's statements", { timeout: 30_000 }, async () => {
      const storage = postgresStorage({ db: database.db, schema: await freshSchema() });
      await storage.register([{ name: 'a', patterns: ['*'] }]);
      let turns = 0;
      let counting = true;
      const count = () => {
        turns += 1;
        if (counting) setImmediate(count);
      };
      setImmediate(count);
      let timerFired = false;
      setTimeout(() => (timerFired = true), 0);
      try {
        // A chain of calls with nothing in between, as a dispatcher's claim loop is.
        for (let i = 0; i < 20; i++) await storage.backlog(['a']);
        expect(turns).toBeGreaterThanOrEqual(10);
        expect(timerFired).toBe(true);
      } finally {
        counting = false;
        await storage.close();
      }
    });

    it('counts a row held behind a range whose lease ran out as due', { timeout: 30_000 }, async () => {
      const storage = postgresStorage({ db: database.db, schema: await freshSchema() });
      try {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const claim = { owner: 'w1', subscribers: [{ name: 'a', limit: 10 }], limit: 10, leaseMs: 1000 };
        await storage.append([{ event: makeEvent('test.item_created'), orderingKey: 'k' }]);
        expect(await storage.claim(claim)).toHaveLength(1);
        await storage.append([{ event: makeEvent('test.item_created'), orderingKey: 'k' }]);
        expect(await storage.claim(claim)).toEqual([]); // held behind the first, which runs
        expect(await storage.backlog(['a'])).toEqual({ due: 0, leased: 2, retrying: 0, scheduled: 0 });
        await sleep(1100);
        expect(await storage.backlog(['a'])).toEqual({ due: 2, leased: 0, retrying: 0, scheduled: 0 });
      } finally {
        await storage.close();
      }
    });
  });
}
