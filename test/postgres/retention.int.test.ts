/**
 * Retention (`postgresStorage({ retention })`): while a bus runs, processed
 * events past the age are purged in bounded batches, one process at a time
 * (an advisory lock); undelivered events, retries and dead letters stay; the
 * storage's `retentionStats()` says what was purged. On every driver.
 */
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, type EventBus } from '@blawby/event-bus';
import { migrate, postgresStorage, type DrizzleDatabase, type PostgresStorage } from '@blawby/event-bus/postgres';
import { makeEvent } from '../contract/storage.contract';
import { createTestDatabase, DRIVERS, type TestDatabase } from './databases';

const catalog = defineCatalog({
  'auth.user_signed_up': defineEvent({ version: '1.0.0', payload: z.object({ email: z.string() }) }),
  'billing.payment_failed': defineEvent({ version: '1.0.0', payload: z.object({ amount: z.number() }) }),
});

const DAY = 86_400_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

async function count(db: DrizzleDatabase, query: string): Promise<number> {
  const result = (await db.execute(sql.raw(query))) as unknown as Record<string, unknown>[] | { rows: Record<string, unknown>[] };
  return Number((Array.isArray(result) ? result : result.rows)[0]!.n);
}

for (const driver of DRIVERS) {
  describe(`retention on ${driver}`, () => {
    let database: TestDatabase;
    let db: DrizzleDatabase;
    let schemas = 0;
    const buses: EventBus<typeof catalog>[] = [];

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

    function busOn(storage: PostgresStorage): EventBus<typeof catalog> {
      const bus = createEventBus({ catalog, storage, dispatch: { pollIntervalMs: 50 } });
      // The bus runs billing events; auth events belong to a subscriber no process runs here.
      bus.subscribe('billing.payment_failed', () => {}, { name: 'ledger' });
      buses.push(bus);
      return bus;
    }

    /**
     * A schema holding `processed` old processed events, then (unless
     * `unfinished` is false) 2 old undelivered ones, 1 old waiting for a
     * retry and 1 old dead letter, then 1 recent one.
     */
    async function seed(processed: number, unfinished = true): Promise<{ schema: string; old: Date }> {
      const schema = `ret${++schemas}`;
      await migrate(db, { schema });
      const storage = postgresStorage({ db, schema });
      // A registered subscriber that has not read past an event holds its purge back, whatever its patterns.
      await storage.register([
        ...(unfinished ? [{ name: 'offline', patterns: ['auth.*'] }] : []),
        { name: 'ledger', patterns: ['billing.*'] },
      ]);
      const old = new Date(Date.now() - 10 * DAY);
      // Processed events first: the log is purged only up to the oldest place a subscriber has not settled.
      const billing = Array.from({ length: processed }, () => ({
        event: makeEvent('billing.payment_failed', { timestamp: old, payload: { amount: 1 } }),
      }));
      for (let i = 0; i < billing.length; i += 500) await storage.append(billing.slice(i, i + 500));
      for (;;) {
        // The ledger subscriber processes them (the storage's API, not a bus: no retention yet).
        const claimed = await storage.claim({ owner: 'w', subscribers: [{ name: 'ledger', limit: 500 }], limit: 500, leaseMs: 30_000 });
        if (claimed.length === 0) break;
        await Promise.all(claimed.map((d) => storage.complete(d)));
      }
      if (!unfinished) {
        await storage.append([{ event: makeEvent('billing.payment_failed', { payload: { amount: 2 } }) }]);
        return { schema, old };
      }
      await storage.append(
        Array.from({ length: 4 }, () => ({ event: makeEvent('auth.user_signed_up', { timestamp: old }) })),
      );
      const [retry, dead] = await storage.claim({
        owner: 'w',
        subscribers: [{ name: 'offline', limit: 2 }],
        limit: 2,
        leaseMs: 30_000,
      });
      await storage.fail(retry!, { error: { name: 'E', message: 'later' }, retryAt: new Date(Date.now() + DAY) });
      await storage.fail(dead!, { error: { name: 'E', message: 'gave up' }, retryAt: null });
      await storage.append([{ event: makeEvent('billing.payment_failed', { payload: { amount: 2 } }) }]);
      // 2 undelivered, 1 retrying and the recent one are unprocessed; the dead letter is counted apart.
      expect(await storage.health()).toMatchObject({ unprocessed: 4, deadLetters: 1 });
      return { schema, old };
    }

    it('purges processed events past the age in batches while the bus runs, and nothing else', async () => {
      const { schema } = await seed(7);
      const storage = postgresStorage({ db, schema, retention: { processedOlderThanMs: DAY, intervalMs: 60_000, batchSize: 3 } });
      expect(storage.retentionStats()).toEqual({ runs: 0, skipped: 0, purged: 0, lastRunAt: null, lastPurged: 0 });
      await busOn(storage).start();
      await until(() => storage.retentionStats().runs === 1);
      expect(storage.retentionStats()).toMatchObject({ runs: 1, skipped: 0, purged: 7, lastPurged: 7 });
      expect(storage.retentionStats().lastRunAt).toBeInstanceOf(Date);
      // Left: 2 undelivered, 1 waiting for its retry, 1 dead-lettered, 1 recent processed.
      expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(5);
      expect(await storage.listDeadLetters()).toHaveLength(1);
      expect((await storage.backlog(['offline'])).retrying).toBe(1);
      expect((await storage.backlog(['offline'])).due).toBe(2);
    });

    it('runs every intervalMs, and stops with the bus', async () => {
      const { schema, old } = await seed(2, false);
      const storage = postgresStorage({ db, schema, retention: { processedOlderThanMs: DAY, intervalMs: 100 } });
      const bus = busOn(storage);
      await bus.start();
      await until(() => storage.retentionStats().purged === 2);
      // New old events, processed by the bus: the next rounds purge them.
      await bus.publishMany(
        Array.from({ length: 3 }, () => ({ type: 'billing.payment_failed' as const, payload: { amount: 3 } })),
      );
      await bus.idle({ timeoutMs: 10_000 });
      await db.execute(sql.raw(`UPDATE ${schema}.events SET created_at = '${old.toISOString()}' WHERE (payload->>'amount')::int = 3`));
      await until(() => storage.retentionStats().purged === 5);
      expect(storage.retentionStats().runs).toBeGreaterThanOrEqual(2);
      await bus.stop();
      const runs = storage.retentionStats().runs;
      await sleep(300);
      expect(storage.retentionStats().runs).toBe(runs);
    });

    it('leaves the round to the process holding the lock', async (ctx) => {
      if (driver === 'pglite') {
        ctx.skip('PGlite has one connection and one process: there is no other holder of the lock');
        return;
      }
      const { schema } = await seed(4);
      const storage = postgresStorage({ db, schema, retention: { processedOlderThanMs: DAY, intervalMs: 100 } });
      // Another process is purging: it holds the storage's retention lock.
      const other = new pg.Client({ connectionString: database.url! });
      await other.connect();
      try {
        await other.query('SELECT pg_advisory_lock($1::int, 1)', [storage.tables.lockKey]);
        await busOn(storage).start();
        await until(() => storage.retentionStats().skipped >= 2);
        expect(storage.retentionStats()).toMatchObject({ runs: 0, purged: 0 });
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(9);
        await other.query('SELECT pg_advisory_unlock($1::int, 1)', [storage.tables.lockKey]);
        await until(() => storage.retentionStats().purged === 4);
        expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(5);
      } finally {
        await other.end();
      }
    });

    it('shares the work between processes: together they purge each event once', async () => {
      const { schema } = await seed(40);
      const retention = { processedOlderThanMs: DAY, intervalMs: 50, batchSize: 5 };
      const storages = [1, 2, 3].map(() => postgresStorage({ db, schema, retention }));
      await Promise.all(storages.map((s) => busOn(s).start()));
      await until(() => storages.reduce((n, s) => n + s.retentionStats().purged, 0) === 40);
      await sleep(200);
      expect(storages.reduce((n, s) => n + s.retentionStats().purged, 0)).toBe(40);
      expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.events`)).toBe(5);
    });

    it('refuses bad retention options with INVALID_OPTION', () => {
      for (const retention of [{}, { processedOlderThanMs: 0 }, { processedOlderThanMs: DAY, intervalMs: 1.5 }, { processedOlderThanMs: DAY, batchSize: -1 }]) {
        expect(() => postgresStorage({ db, retention: retention as { processedOlderThanMs: number } })).toThrow(
          expect.objectContaining({ code: 'INVALID_OPTION' }),
        );
      }
    });
  });
}
