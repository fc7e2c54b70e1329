/**
 * Several worker processes share one PostgreSQL storage: every (event,
 * subscriber) is handled exactly once when nothing crashes, and nothing is
 * lost when a worker is killed with SIGKILL or frozen past its lease. Runs
 * on postgres.js and on node-postgres (the test and its workers alike).
 * Needs a PostgreSQL server (`DATABASE_URL`): PGlite is one process only.
 */
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, type EventBus } from '@blawby/event-bus';
import { migrate, postgresStorage, type DrizzleDatabase } from '@blawby/event-bus/postgres';
import { connect, createServerDatabase, DATABASE_URL, SERVER_DRIVERS, type ServerDriver } from './databases';
import { workerCatalog } from './fixtures/catalog';
import { startWorker, stopWorker, type WorkerProcess } from './fixtures/processes';
import { createHandledTable } from './fixtures/handled';

const reason = 'DATABASE_URL is not set: multi-process tests need a PostgreSQL server (PGlite is single-process)';
if (!DATABASE_URL) process.stderr.write(`[multi-process.int.test] SKIPPED: ${reason}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const drivers: ServerDriver[] = DATABASE_URL ? SERVER_DRIVERS : ['postgres-js'];

for (const driver of drivers) describe.skipIf(!DATABASE_URL)(
  `worker processes sharing PostgreSQL on ${driver}${DATABASE_URL ? '' : ` (skipped: ${reason})`}`,
  () => {
    let server: { url: string; drop(): Promise<void> };
    let end: () => Promise<void>;
    let db: DrizzleDatabase;
    let workers: WorkerProcess[] = [];
    let schemas = 0;

    beforeAll(async () => {
      server = await createServerDatabase();
      ({ db, end } = connect(driver, server.url, { max: 10 }));
      // The test's own bookkeeping (a row per handled delivery) need not wait for the disk: this database is thrown away.
      await db.execute(sql.raw(`ALTER DATABASE ${new URL(server.url).pathname.slice(1)} SET synchronous_commit = off`));
    });
    afterEach(async () => {
      await Promise.all(workers.map(stopWorker));
      workers = [];
    });
    afterAll(async () => {
      await end?.();
      await server?.drop();
    });

    async function setup(): Promise<{ schema: string; publisher: EventBus<typeof workerCatalog> }> {
      const schema = `mp${++schemas}`;
      await migrate(db, { schema });
      await createHandledTable(db, schema);
      const publisher = createEventBus({ catalog: workerCatalog, storage: postgresStorage({ db, schema }) });
      return { schema, publisher };
    }

    async function one(query: string): Promise<Record<string, unknown>> {
      const result = (await db.execute(sql.raw(query))) as unknown as Record<string, unknown>[] | { rows: Record<string, unknown>[] };
      return (Array.isArray(result) ? result : result.rows)[0]!;
    }

    async function waitProcessed(schema: string, events: number, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      // An observer, not a worker: on a loaded CI machine its scan of the backlog can take longer than the
      // default 5 s operation timeout, and how long it takes is not what these tests check.
      const observer = postgresStorage({ db, schema, operationTimeoutMs: 60_000 });
      for (;;) {
        // `processed` is derived from the subscribers' cursors: the storage's health() counts what is not.
        const stored = Number((await one(`SELECT count(*)::int AS n FROM ${schema}.events`)).n);
        const { unprocessed } = await observer.health();
        const r = { stored, unprocessed };
        if (stored === events && unprocessed === 0) return;
        if (Date.now() > deadline) {
          throw new Error(`not finished in time: ${JSON.stringify(r)}; ${workers.map((w) => w.stderr()).join('\n')}`);
        }
        await sleep(100);
      }
    }

    async function publish(publisher: EventBus<typeof workerCatalog>, total: number, from = 0): Promise<void> {
      for (let at = from; at < from + total; at += 500) {
        const n = Math.min(500, from + total - at);
        await publisher.publishMany(
          Array.from({ length: n }, (_, i) => ({ type: 'test.item_created' as const, payload: { n: at + i } })),
        );
      }
    }

    it('3 workers, 10,000 events, 3 subscribers: every (event, subscriber) handled exactly once', async () => {
      const { schema, publisher } = await setup();
      const env = { DB_URL: server.url, DRIVER: driver, SCHEMA: schema, SUBSCRIBERS: '3', CONCURRENCY: '50', POLL_MS: '200' };
      workers = await Promise.all(['w1', 'w2', 'w3'].map((name) => startWorker(name, env)));
      await publish(publisher, 10_000);
      await waitProcessed(schema, 10_000, 240_000);

      const r = await one(`SELECT count(*)::int AS handled, count(DISTINCT (event_id, subscriber))::int AS pairs,
      count(DISTINCT worker)::int AS workers, max(attempt)::int AS max_attempt FROM ${schema}.handled`);
      expect(r).toEqual({ handled: 30_000, pairs: 30_000, workers: 3, max_attempt: 1 });
      const perSubscriber = await one(`SELECT count(DISTINCT subscriber)::int AS n FROM ${schema}.handled`);
      expect(perSubscriber.n).toBe(3);
      await publisher.stop();
    }, 300_000);

    it('a worker killed with SIGKILL mid-batch loses nothing; duplicates come only from its in-flight claims', async () => {
      const { schema, publisher } = await setup();
      const env = {
        DB_URL: server.url,
        DRIVER: driver,
        SCHEMA: schema,
        SUBSCRIBERS: '1',
        CONCURRENCY: '5',
        HANDLER_MS: '20',
        LEASE_MS: '1500',
        POLL_MS: '100',
      };
      workers = await Promise.all(['w1', 'w2', 'w3'].map((name) => startWorker(name, env)));
      await publish(publisher, 600);
      // Kill w1 while it is busy.
      for (;;) {
        const r = await one(`SELECT count(*)::int AS n FROM ${schema}.handled WHERE worker = 'w1'`);
        if (Number(r.n) >= 20) break;
        await sleep(20);
      }
      workers[0]!.child.kill('SIGKILL');
      await workers[0]!.exited;
      await waitProcessed(schema, 600, 60_000);

      const r = await one(
        `SELECT count(*)::int AS handled, count(DISTINCT event_id)::int AS events FROM ${schema}.handled`,
      );
      expect(r.events).toBe(600);
      const duplicates = Number(r.handled) - Number(r.events);
      // Only deliveries w1 was running when it died can run twice: at most its concurrency.
      expect(duplicates).toBeLessThanOrEqual(5);
      const dup = await one(`SELECT count(*)::int AS n FROM (SELECT event_id FROM ${schema}.handled GROUP BY event_id
      HAVING count(*) > 1 AND bool_or(worker = 'w1') = false) x`);
      expect(dup.n).toBe(0);
      await publisher.stop();
    }, 120_000);

    it('a worker frozen past its lease (SIGSTOP) does not block the others, and its late outcome is refused', async () => {
      const { schema, publisher } = await setup();
      const env = {
        DB_URL: server.url,
        DRIVER: driver,
        SCHEMA: schema,
        SUBSCRIBERS: '1',
        CONCURRENCY: '4',
        HANDLER_MS: '30',
        LEASE_MS: '1000',
        POLL_MS: '100',
      };
      workers = await Promise.all(['w1', 'w2'].map((name) => startWorker(name, env)));
      await publish(publisher, 200);
      for (;;) {
        const r = await one(`SELECT count(*)::int AS n FROM ${schema}.handled WHERE worker = 'w1'`);
        if (Number(r.n) >= 5) break;
        await sleep(10);
      }
      workers[0]!.child.kill('SIGSTOP');
      try {
        await waitProcessed(schema, 200, 60_000); // w2 takes w1's deliveries once their leases expire
      } finally {
        workers[0]!.child.kill('SIGCONT');
      }
      await sleep(500); // w1 wakes up, finishes its handlers, and its completes are refused
      const r = await one(`SELECT count(DISTINCT event_id)::int AS events FROM ${schema}.handled`);
      expect(r.events).toBe(200);
      const left = await one(`SELECT count(*)::int AS n FROM ${schema}.event_deliveries`);
      expect(left.n).toBe(0);
      expect((await one(`SELECT count(*)::int AS n FROM ${schema}.event_dead_letters`)).n).toBe(0);
      await publisher.stop();
    }, 120_000);
  },
);
