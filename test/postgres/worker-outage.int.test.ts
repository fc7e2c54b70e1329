/**
 * A worker process through an outage it cannot see coming, on a throwaway
 * PostgreSQL this test starts itself: the server dies under the worker's
 * connections (`pg_ctl -m immediate`), or hangs (a TCP proxy in front of it
 * stops forwarding and keeps the sockets open). The worker lives on, its
 * claims failing within its storage's `operationTimeoutMs`, and once the
 * database is back it handles every event, those published before the
 * outage and after. `test/postgres/database-restart.int.test.ts` covers a
 * clean restart under two workers. On postgres.js and node-postgres.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, EventBusError } from '@blawby/event-bus';
import { migrate, postgresStorage, type DrizzleDatabase } from '@blawby/event-bus/postgres';
import { workerCatalog } from './fixtures/catalog';
import { connect, type ServerDriver } from './fixtures/connect';
import { startFreezableProxy, type FreezableProxy } from './fixtures/freezable-proxy';
import { startWorker, stopWorker, type WorkerProcess } from './fixtures/processes';
import { startThrowawayServer, throwawayServerUnavailable, type ThrowawayServer } from './fixtures/throwaway-server';
import { sleep, until, untilAvailable } from './fixtures/waiting';
import { createHandledTable } from './fixtures/handled';

const reason = throwawayServerUnavailable();
if (reason) process.stderr.write(`[worker-outage.int.test] SKIPPED: ${reason}\n`);

const BOUND_MS = 1500;
const SLACK_MS = 1500;

type Kind = 'stopped' | 'frozen';
const cases: [ServerDriver, Kind][] = (['postgres-js', 'node-postgres'] as const).flatMap((driver) =>
  (['stopped', 'frozen'] as const).map((kind): [ServerDriver, Kind] => [driver, kind]),
);

async function count(db: DrizzleDatabase, query: string): Promise<number> {
  const result = (await db.execute(sql.raw(query))) as unknown as Record<string, unknown>[] | { rows: Record<string, unknown>[] };
  return Number((Array.isArray(result) ? result : result.rows)[0]!.n);
}

describe.skipIf(reason !== null)(`a worker process through an outage${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let server: ThrowawayServer;
  let proxy: FreezableProxy;
  let worker: WorkerProcess | undefined;
  const ends: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    server = await startThrowawayServer();
    proxy = await startFreezableProxy(server.port);
  }, 120_000);
  afterAll(async () => {
    if (worker) await stopWorker(worker);
    for (const end of ends) await end().catch(() => {});
    await proxy?.close();
    server?.destroy();
  });

  it.each(cases)('on %s, server %s: the worker lives on and handles everything once the database is back', async (driver, kind) => {
    const url = kind === 'frozen' ? proxy.urlFor(server.url) : server.url;
    const { db, end } = connect(driver, url, { max: 3 });
    ends.push(end);
    const schema = `wo_${driver.replace('-', '_')}_${kind}`;
    await migrate(db, { schema });
    await createHandledTable(db, schema);
    const publisher = createEventBus({ catalog: workerCatalog, storage: postgresStorage({ db, schema, operationTimeoutMs: BOUND_MS }) });
    worker = await startWorker('w1', {
      DB_URL: url,
      DRIVER: driver,
      SCHEMA: schema,
      SUBSCRIBERS: '1',
      CONCURRENCY: '4',
      HANDLER_MS: '5',
      LEASE_MS: '2000',
      POLL_MS: '250',
      OPERATION_TIMEOUT_MS: String(BOUND_MS),
    });
    const w = worker;
    const batch = (from: number) =>
      Array.from({ length: 100 }, (_, i) => ({
        type: 'test.item_created' as const,
        payload: { n: from + i },
        options: { idempotencyKey: `${schema}-${from + i}` }, // safe to send again after STORAGE_UNAVAILABLE
      }));
    await publisher.publishMany(batch(0));
    await until(async () => (await count(db, `SELECT count(*)::int AS n FROM ${schema}.handled`)) >= 10, 'handling before the outage');

    if (kind === 'stopped') server.stop('immediate');
    else proxy.freeze();
    const started = Date.now();
    const during = await publisher.publish('test.item_created', { n: -1 }).catch((e: unknown) => e);
    expect(EventBusError.is(during, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(Date.now() - started).toBeLessThan(BOUND_MS + SLACK_MS);
    // Frozen: longer than the worker's bound, so that its claims and settles time out meanwhile. Stopped:
    // its calls fail at once, and each failure lengthens postgres.js's reconnect backoff (up to 20 s).
    await sleep(kind === 'frozen' ? 2 * BOUND_MS : 500);
    expect(w.child.exitCode).toBeNull();
    if (kind === 'stopped') server.start();
    else proxy.thaw();

    await untilAvailable(() => publisher.publishMany(batch(100)), 'a publish after the outage');
    await until(
      async () => (await count(db, `SELECT count(DISTINCT event_id)::int AS n FROM ${schema}.handled`)) >= 200,
      'the worker handling every event after the outage',
      40_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\nworker stderr:\n${w.stderr()}`);
    });
    expect(w.child.exitCode).toBeNull(); // alive throughout
    expect(w.stderr()).not.toMatch(/TypeError|Uncaught|unhandled/i);
    expect(await count(db, `SELECT count(*)::int AS n FROM ${schema}.event_dead_letters`)).toBe(0);
    await publisher.stop();
    await stopWorker(w);
    expect(await w.exited).toBe(0);
    worker = undefined;
  }, 60_000);
});
