/**
 * Worker processes sharing each subscriber name through a broker, fed from
 * PostgreSQL by the outbox relay: 3 instances × 2 subscriber names × 10,000
 * events handled with each (event, name) at least once and per-key order
 * kept; and the same when the process leading the relay (and consuming) is
 * killed with SIGKILL mid-run: another process takes the relay and its
 * deliveries over, nothing is lost; and when a private broker restarts (Redis
 * without its data: the relay sends again what no group had handled). Runs
 * on every broker whose URL is set
 * (`REDIS_URL`, `NATS_URL`), with `DATABASE_URL` for the log; each test has
 * its own database schema and broker prefix.
 */
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, type EventBus } from '@blawby/event-bus';
import { migrate, postgresStorage, type DrizzleDatabase } from '@blawby/event-bus/postgres';
import { connect, createServerDatabase, DATABASE_URL } from '../postgres/databases';
import { workerCatalog } from '../postgres/fixtures/catalog';
import { startWorker, stopWorker, type WorkerProcess } from '../postgres/fixtures/processes';
import { startNatsServer } from '../nats/fixtures/nats-server';
import { startThrowawayRedis } from '../redis/fixtures/throwaway-redis';
import { createHandledTable } from '../postgres/fixtures/handled';

const brokers = [
  { kind: 'redis', url: process.env.REDIS_URL },
  { kind: 'nats', url: process.env.NATS_URL },
] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEYS = 10;

for (const broker of brokers) {
  const missing = !DATABASE_URL ? 'DATABASE_URL is not set' : !broker.url ? `${broker.kind.toUpperCase()}_URL is not set` : '';
  if (missing) process.stderr.write(`[broker-processes.int.test] ${broker.kind} SKIPPED: ${missing}\n`);

  describe.skipIf(missing !== '')(`worker processes sharing subscribers through ${broker.kind}${missing ? ` (skipped: ${missing})` : ''}`, () => {
    let server: { url: string; drop(): Promise<void> };
    let end: () => Promise<void>;
    let db: DrizzleDatabase;
    let workers: WorkerProcess[] = [];
    let runs = 0;

    beforeAll(async () => {
      server = await createServerDatabase();
      ({ db, end } = connect('postgres-js', server.url, { max: 10 }));
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

    async function rows(query: string): Promise<Record<string, unknown>[]> {
      const result = (await db.execute(sql.raw(query))) as unknown as Record<string, unknown>[] | { rows: Record<string, unknown>[] };
      return Array.isArray(result) ? result : result.rows;
    }

    async function setup(): Promise<{ schema: string; prefix: string; publisher: EventBus<typeof workerCatalog> }> {
      const schema = `bp${++runs}`;
      await migrate(db, { schema });
      await createHandledTable(db, schema);
      // The publisher only writes the log; the workers' relay sends it to the broker.
      const publisher = createEventBus({ catalog: workerCatalog, storage: postgresStorage({ db, schema }) });
      return { schema, prefix: `bp_${process.pid}_${Date.now()}_${runs}`, publisher };
    }

    async function start(schema: string, prefix: string, count: number, url = broker.url!): Promise<void> {
      const env = {
        DB_URL: server.url,
        SCHEMA: schema,
        SUBSCRIBERS: '2',
        TRANSPORT: broker.kind,
        BROKER_URL: url,
        PREFIX: prefix,
        LEASE_MS: '3000',
        RELAY_LEASE_MS: '3000',
        CONCURRENCY: '20',
      };
      workers.push(...(await Promise.all(Array.from({ length: count }, (_, i) => startWorker(`w${workers.length + i + 1}`, env)))));
    }

    async function publish(publisher: EventBus<typeof workerCatalog>, from: number, total: number): Promise<void> {
      for (let at = from; at < from + total; at += 500) {
        const n = Math.min(500, from + total - at);
        await publisher.publishMany(
          Array.from({ length: n }, (_, i) => ({
            type: 'test.item_created' as const,
            payload: { n: at + i },
            options: { orderingKey: `k${(at + i) % KEYS}` },
          })),
        );
      }
    }

    /** Waits until every (event, subscriber) was handled at least once (or, `'at least'`, that many were). */
    async function waitHandled(schema: string, events: number, timeoutMs: number, mode: 'all' | 'at least' = 'all'): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [r] = await rows(`SELECT count(DISTINCT (event_id, subscriber))::int AS n FROM ${schema}.handled`);
        if (mode === 'all' ? Number(r!.n) === events * 2 : Number(r!.n) >= events * 2) return;
        if (Date.now() > deadline) {
          throw new Error(`handled ${String(r!.n)} of ${events * 2} in time; ${workers.map((w) => w.stderr().slice(-2000)).join('\n')}`);
        }
        await sleep(200);
      }
    }

    /** Per subscriber and key, events were first handled in publish order. */
    async function expectOrderPerKey(schema: string): Promise<void> {
      const firsts = await rows(`
        SELECT h.subscriber, e.ordering_key AS key, (e.payload->>'n')::int AS n, min(h.seq) AS first
        FROM ${schema}.handled h JOIN ${schema}.events e ON e.event_id = h.event_id
        GROUP BY h.subscriber, e.ordering_key, e.payload->>'n' ORDER BY h.subscriber, key, first`);
      const last = new Map<string, number>();
      let outOfOrder = 0;
      for (const row of firsts) {
        const lane = `${String(row.subscriber)}/${String(row.key)}`;
        const n = Number(row.n);
        if ((last.get(lane) ?? -1) > n) outOfOrder += 1;
        last.set(lane, n);
      }
      expect(outOfOrder).toBe(0);
    }

    it('shares each name\'s work over 3 processes: 2 names × 10,000 events, each handled, per-key order kept', { timeout: 240_000 }, async () => {
      const { schema, prefix, publisher } = await setup();
      await start(schema, prefix, 3);
      await publish(publisher, 0, 10_000);
      await waitHandled(schema, 10_000, 180_000);
      await expectOrderPerKey(schema);
      const perWorker = await rows(`SELECT worker, count(*)::int AS n FROM ${schema}.handled GROUP BY worker`);
      expect(perWorker.length).toBe(3); // every process took part
      const [dup] = await rows(
        `SELECT (count(*) - count(DISTINCT (event_id, subscriber)))::int AS n FROM ${schema}.handled`,
      );
      expect(Number(dup!.n)).toBe(0); // nothing crashed: no duplicate
      await publisher.stop();
    });

    it('loses nothing when the process leading the relay is killed with SIGKILL mid-run', { timeout: 240_000 }, async () => {
      const { schema, prefix, publisher } = await setup();
      await start(schema, prefix, 3);
      await publish(publisher, 0, 2_000);
      const [relay] = await rows(`SELECT owner FROM ${schema}.event_relays`);
      const leaderPid = Number(String(relay?.owner ?? '').split(':')[1]);
      const leader = workers.find((w) => w.child.pid === leaderPid);
      expect(leader, `relay owner ${String(relay?.owner)} is one of the workers`).toBeDefined();
      leader!.child.kill('SIGKILL');
      await leader!.exited;
      await publish(publisher, 2_000, 2_000);
      await waitHandled(schema, 4_000, 180_000);
      await expectOrderPerKey(schema);
      const [owner] = await rows(`SELECT owner FROM ${schema}.event_relays`);
      expect(String(owner!.owner)).not.toBe(String(relay!.owner));
      // Each duplicate is a whole event handled again, with the same eventId.
      const [ids] = await rows(`SELECT count(*)::int AS n FROM ${schema}.handled h WHERE NOT EXISTS
        (SELECT 1 FROM ${schema}.events e WHERE e.event_id = h.event_id)`);
      expect(Number(ids!.n)).toBe(0);
      await publisher.stop();
    });

    it(`loses nothing when a private ${broker.kind} server restarts mid-run${broker.kind === 'redis' ? ' without its data' : ''}`, { timeout: 240_000 }, async () => {
      const server = broker.kind === 'redis' ? await startThrowawayRedis() : await startNatsServer();
      try {
        const { schema, prefix, publisher } = await setup();
        await start(schema, prefix, 2, server.url);
        await publish(publisher, 0, 1_000);
        await waitHandled(schema, 500, 60_000, 'at least'); // under way
        await server.stop();
        await publish(publisher, 1_000, 500); // stored while the broker is down: the relay sends them once it is back
        await sleep(1000);
        await server.start();
        await publish(publisher, 1_500, 500);
        await waitHandled(schema, 2_000, 180_000);
        // A broker that kept its data keeps each key's order; one that lost it gets the lost events again
        // after some it was sent since (docs/redis.md, "Progress and data loss").
        if (broker.kind === 'nats') await expectOrderPerKey(schema);
        await publisher.stop();
      } finally {
        await Promise.all(workers.map(stopWorker));
        workers = [];
        await server.destroy();
      }
    });
  });
}
