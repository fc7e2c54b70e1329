/**
 * The database restarts while worker processes run, on a throwaway
 * PostgreSQL this test starts itself (`initdb` + `pg_ctl`, free port): the
 * workers reconnect and finish, and a publish during the outage rejects with
 * STORAGE_UNAVAILABLE and leaves nothing half-written. Runs on postgres.js
 * and on node-postgres (the test and its workers alike).
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, EventBusError } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { workerCatalog } from './fixtures/catalog';
import { connect, type ServerDriver } from './fixtures/connect';
import { startWorker, stopWorker, type WorkerProcess } from './fixtures/processes';
import { startThrowawayServer, throwawayServerUnavailable, type ThrowawayServer } from './fixtures/throwaway-server';
import { createHandledTable } from './fixtures/handled';

const reason = throwawayServerUnavailable();
if (reason) process.stderr.write(`[database-restart.int.test] SKIPPED: ${reason}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const drivers: ServerDriver[] = ['postgres-js', 'node-postgres'];

describe.skipIf(reason !== null)(`database restart under load${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let server: ThrowawayServer;
  let workers: WorkerProcess[] = [];
  const ends: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    server = await startThrowawayServer();
  }, 120_000);
  afterAll(async () => {
    await Promise.all(workers.map(stopWorker));
    await Promise.all(ends.map((end) => end().catch(() => {})));
    server?.destroy();
  });

  it.each(drivers)('on %s: workers reconnect and finish; a publish during the outage is refused with STORAGE_UNAVAILABLE', async (driver) => {
    const { db, end } = connect(driver, server.url, { max: 5, connectTimeoutMs: 3000 });
    ends.push(end);
    const one = async (query: string): Promise<Record<string, unknown>> => {
      const result = (await db.execute(sql.raw(query))) as unknown as Record<string, unknown>[] | { rows: Record<string, unknown>[] };
      return (Array.isArray(result) ? result : result.rows)[0]!;
    };
    const schema = `restart_${driver.replace('-', '_')}`;
    await migrate(db, { schema });
    await createHandledTable(db, schema);
    const publisher = createEventBus({ catalog: workerCatalog, storage: postgresStorage({ db, schema }) });
    const env = {
      DB_URL: server.url,
      DRIVER: driver,
      SCHEMA: schema,
      SUBSCRIBERS: '1',
      CONCURRENCY: '4',
      HANDLER_MS: '10',
      LEASE_MS: '2000',
      POLL_MS: '100',
    };
    workers = await Promise.all(['w1', 'w2'].map((name) => startWorker(name, env)));

    const batch = (from: number) =>
      Array.from({ length: 100 }, (_, i) => ({ type: 'test.item_created' as const, payload: { n: from + i } }));
    for (let i = 0; i < 3; i++) await publisher.publishMany(batch(i * 100));
    for (;;) {
      if (Number((await one(`SELECT count(*)::int AS n FROM ${schema}.handled`)).n) >= 20) break;
      await sleep(20);
    }

    server.stop();
    const started = Date.now();
    const during = await publisher.publish('test.item_created', { n: -1 }).catch((e: unknown) => e);
    expect(EventBusError.is(during, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000 + 1500); // within the storage's default operationTimeoutMs
    const duringMany = await publisher.publishMany(batch(10_000)).catch((e: unknown) => e);
    expect(EventBusError.is(duringMany, 'STORAGE_UNAVAILABLE')).toBe(true);
    await sleep(1000); // workers keep failing to reach the database meanwhile
    server.start();

    await publisher.publishMany(batch(300));
    const deadline = Date.now() + 90_000;
    for (;;) {
      // `processed` is derived from the subscribers' cursors: the storage's health() counts what is not.
      const stored = Number((await one(`SELECT count(*)::int AS n FROM ${schema}.events`)).n);
      const r = { stored, unprocessed: (await publisher.health()).unprocessed };
      if (stored === 400 && r.unprocessed === 0) break;
      if (Date.now() > deadline)
        throw new Error(
          `workers did not finish after the restart: ${JSON.stringify(r)}\n${workers
            .map((w) => w.stderr())
            .join('\n')}`,
        );
      await sleep(100);
    }
    const r = await one(
      `SELECT count(*)::int AS events, count(*) FILTER (WHERE (payload->>'n')::int < 0 OR (payload->>'n')::int >= 10000)::int AS refused FROM ${schema}.events`,
    );
    expect(r).toEqual({ events: 400, refused: 0 }); // the refused publishes left no row
    const h = await one(`SELECT count(DISTINCT event_id)::int AS handled FROM ${schema}.handled`);
    expect(h.handled).toBe(400);
    expect((await one(`SELECT count(*)::int AS n FROM ${schema}.event_dead_letters`)).n).toBe(0);
    await publisher.stop();
    await Promise.all(workers.map(stopWorker));
    workers = [];
  }, 180_000);
});
