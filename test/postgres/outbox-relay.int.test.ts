/**
 * The outbox relay on every driver: PostgreSQL keeps the log and the record,
 * a cross-process transport carries the deliveries. Publishes inside a
 * caller's transaction reach the broker once committed, in commit order; one
 * relay leads among the processes and another takes over when it stops;
 * `deliverAt` is held back; heads follow the broker's acknowledgements (so
 * `processed` and `health()` read as with PostgreSQL alone); and after the
 * broker lost its data everything not yet handled is sent again. The broker
 * here is the in-process stand-in; the Redis and NATS suites drive the same
 * relay against real brokers and kill its process.
 */
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, type EventBus } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { brokerStandIn, type BrokerStandIn } from '../transport/broker-stand-in';
import { createTestDatabase, DRIVERS, type TestDatabase } from './databases';

const catalog = defineCatalog({
  'test.item_created': defineEvent({ version: '1.0.0', payload: z.object({ n: z.number().int() }) }),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

for (const driver of DRIVERS) {
  describe(`outbox relay on ${driver}`, () => {
    let database: TestDatabase;
    let schemas = 0;
    const buses: EventBus<typeof catalog>[] = [];

    async function freshSchema(): Promise<string> {
      const schema = `relay${++schemas}`;
      await migrate(database.db, { schema });
      return schema;
    }

    function bus(schema: string, transport: BrokerStandIn): EventBus<typeof catalog> {
      const b = createEventBus({
        catalog,
        storage: postgresStorage({ db: database.db, schema, relay: { leaseMs: 2000, progressEveryMs: 100, pollMs: 50 } }),
        transport,
        dispatch: { pollIntervalMs: 50, shutdownTimeoutMs: 2000 },
        retry: { attempts: 3, minDelayMs: 10, maxDelayMs: 20 },
      });
      buses.push(b);
      return b;
    }

    async function relayOwner(schema: string): Promise<string | null> {
      const result = (await database.db.execute(sql.raw(`SELECT owner FROM "${schema}".event_relays`))) as unknown;
      const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { owner: string | null }[];
      return rows[0]?.owner ?? null;
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

    it('sends what a caller\'s transaction published once it commits, in commit order, and heads follow the acknowledgements', { timeout: 30_000 }, async () => {
      const schema = await freshSchema();
      const b = bus(schema, brokerStandIn());
      const seen: number[] = [];
      b.subscribe('test.item_created', async (e) => void seen.push(e.payload.n), { name: 'audit' });
      await b.start();
      await database.db.transaction(async (tx) => {
        await b.publish('test.item_created', { n: 1 }, { tx });
        await b.publish('test.item_created', { n: 2 }, { tx });
        await sleep(300);
        expect(seen).toEqual([]); // not committed: not sent
      });
      await b.publish('test.item_created', { n: 3 });
      await eventually(() => seen.length === 3);
      expect(seen).toEqual([1, 2, 3]);
      await eventually(async () => (await b.health()).unprocessed === 0);
      const page = await b.timeline({ limit: 10 });
      expect(page.events.map((e) => e.processed)).toEqual([true, true, true]);
    });

    it('has one relay lead among the processes, and another take over at once when it stops', { timeout: 30_000 }, async () => {
      const schema = await freshSchema();
      const transport = brokerStandIn();
      const first = bus(schema, transport);
      const second = bus(schema, transport);
      const seen = new Set<number>();
      for (const x of [first, second]) x.subscribe('test.item_created', async (e) => void seen.add(e.payload.n), { name: 'audit' });
      await first.start(); // leads: the lease is free
      await second.start();
      const leader = await relayOwner(schema);
      expect(leader).not.toBeNull();
      for (let n = 0; n < 20; n++) await (n % 2 ? first : second).publish('test.item_created', { n });
      await eventually(() => seen.size === 20);
      expect(await relayOwner(schema)).toBe(leader); // the second one waits
      await first.stop(); // gives the lease up
      const handedOver = Date.now();
      for (let n = 20; n < 30; n++) await second.publish('test.item_created', { n });
      await eventually(() => seen.size === 30);
      // Well within the 2 s lease: the second took over when the first resigned, not when its lease ran out.
      expect(Date.now() - handedOver).toBeLessThan(1500);
      const owner = await relayOwner(schema);
      expect(owner).not.toBeNull();
      expect(owner).not.toBe(leader);
    });

    it('holds an event back until its deliverAt, counting it unprocessed and keeping it through a purge meanwhile', { timeout: 30_000 }, async () => {
      const schema = await freshSchema();
      const b = bus(schema, brokerStandIn());
      const seen: { n: number; at: number }[] = [];
      b.subscribe('test.item_created', async (e) => void seen.push({ n: e.payload.n, at: Date.now() }), { name: 'audit' });
      await b.start();
      const due = Date.now() + 1200;
      await b.publish('test.item_created', { n: 1 }, { deliverAt: new Date(due) });
      await b.publish('test.item_created', { n: 2 });
      await eventually(() => seen.length === 1);
      expect(seen[0]!.n).toBe(2);
      await sleep(300);
      expect((await b.health()).unprocessed).toBe(1);
      // A purge of everything processed keeps the held-back event (and deletes the delivered one).
      expect(await postgresStorage({ db: database.db, schema }).purge({ olderThan: new Date(Date.now() + 60_000) })).toBe(1);
      await eventually(() => seen.length === 2);
      expect(seen[1]!.n).toBe(1);
      expect(seen[1]!.at).toBeGreaterThanOrEqual(due - 50);
      await eventually(async () => (await b.health()).unprocessed === 0);
    });

    it('sends a subscriber that joins later what was sent before its group existed, once', { timeout: 30_000 }, async () => {
      const schema = await freshSchema();
      const transport = brokerStandIn();
      const first = bus(schema, transport);
      let gate = false;
      first.subscribe('test.item_created', async () => {
        while (!gate) await sleep(10);
      }, { name: 'audit', concurrency: 1 });
      await first.start();
      for (let n = 1; n <= 5; n++) await first.publish('test.item_created', { n });
      await eventually(() => transport.published >= 5);
      // 'late' starts where the oldest unsettled subscriber stands (audit, held at the first event): it is owed all five.
      const second = bus(schema, transport);
      const late: number[] = [];
      second.subscribe('test.item_created', async (e) => void late.push(e.payload.n), { name: 'late' });
      await second.start();
      await eventually(() => late.length >= 5);
      gate = true;
      await eventually(async () => (await first.health()).unprocessed === 0);
      expect([...late].sort()).toEqual([1, 2, 3, 4, 5]);
    });

    it('sends everything not yet handled again after the broker lost its data', { timeout: 30_000 }, async () => {
      const schema = await freshSchema();
      const transport = brokerStandIn();
      const b = bus(schema, transport);
      const handled = new Set<number>();
      const runs = new Map<number, number>();
      let gate = false;
      b.subscribe(
        'test.item_created',
        async (e) => {
          while (!gate) await sleep(10);
          handled.add(e.payload.n);
          runs.set(e.payload.n, (runs.get(e.payload.n) ?? 0) + 1);
        },
        { name: 'audit', concurrency: 1 },
      );
      await b.start();
      await b.publish('test.item_created', { n: 0 });
      gate = true;
      await eventually(() => handled.has(0));
      await eventually(async () => (await b.health()).unprocessed === 0); // its head passed n = 0
      gate = false;
      for (let n = 1; n <= 5; n++) await b.publish('test.item_created', { n });
      await eventually(() => transport.published >= 6);
      transport.lose();
      const sentBefore = transport.published;
      await eventually(() => transport.published > sentBefore); // the relay sent the unhandled ones again
      gate = true;
      await eventually(() => [1, 2, 3, 4, 5].every((n) => handled.has(n)));
      await eventually(async () => (await b.health()).unprocessed === 0);
      // n = 0 was handled by every group before the loss: it is not sent again.
      await sleep(300);
      expect(runs.get(0)).toBe(1);
    });
  });
}
