/**
 * What is particular to node-postgres (`drizzle-orm/node-postgres` over a
 * `pg` Pool), beyond the suites that run on every driver: the storage's
 * statements are named prepared statements, LISTEN holds one connection of
 * its own (never one of the pool's) and comes back after the connection is
 * cut, and an unreachable server is STORAGE_UNAVAILABLE.
 * Needs a PostgreSQL server (`DATABASE_URL`).
 */
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBusError } from '@blawby/event-bus';
import { migrate, postgresStorage, type DrizzleDatabase } from '@blawby/event-bus/postgres';
import { makeEvent } from '../contract/storage.contract';
import { createServerDatabase, DATABASE_URL } from './databases';

const reason = 'DATABASE_URL is not set: node-postgres needs a PostgreSQL server';
if (!DATABASE_URL) process.stderr.write(`[node-postgres.int.test] SKIPPED: ${reason}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe.skipIf(!DATABASE_URL)(`postgres storage on node-postgres${DATABASE_URL ? '' : ` (skipped: ${reason})`}`, () => {
  let server: { url: string; drop(): Promise<void> };
  const pools: pg.Pool[] = [];

  function pool(max = 5): { pool: pg.Pool; db: DrizzleDatabase } {
    const p = new pg.Pool({ connectionString: server.url, max });
    p.on('error', () => {});
    pools.push(p);
    return { pool: p, db: drizzle(p) as unknown as DrizzleDatabase };
  }

  async function scalar(p: pg.Pool, text: string, values: unknown[] = []): Promise<number> {
    return Number((await p.query(text, values)).rows[0].n);
  }

  beforeAll(async () => {
    server = await createServerDatabase();
    const { db } = pool(1);
    await migrate(db, { schema: 'np' });
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await server?.drop();
  });

  it("runs the storage's statements as named prepared statements, or unnamed ones with prepare: false", async () => {
    const named = pool(1); // one connection: the statements it prepared are the ones pg_prepared_statements shows
    const storage = postgresStorage({ db: named.db, schema: 'np' });
    await storage.register([{ name: 'a', patterns: ['*'] }]);
    await storage.append([{ event: makeEvent() }]);
    await storage.append([{ event: makeEvent() }]);
    expect((await storage.backlog(['a'])).due).toBeGreaterThanOrEqual(2);
    expect(await scalar(named.pool, `SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'eb\\_%'`)).toBeGreaterThanOrEqual(3);

    const unnamed = pool(1);
    const plain = postgresStorage({ db: unnamed.db, schema: 'np', prepare: false });
    await plain.append([{ event: makeEvent() }]);
    expect((await plain.backlog(['a'])).due).toBeGreaterThanOrEqual(3);
    expect(await scalar(unnamed.pool, `SELECT count(*)::int AS n FROM pg_prepared_statements`)).toBe(0);
  });

  it("LISTENs on a connection of its own, not one of the pool's, and comes back after it is cut", async () => {
    const { pool: p, db } = pool(2);
    const storage = postgresStorage({ db, schema: 'np' });
    const publisher = postgresStorage({ db, schema: 'np' });
    await storage.register([{ name: 'listen', patterns: ['auth.*'] }]);
    let woken = 0;
    const stop = await storage.watch(() => void (woken += 1));
    try {
      // The pool lends no client to the LISTEN: every client it has is idle.
      expect(p.totalCount).toBe(p.idleCount);
      const listening = async () =>
        (await p.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`))
          .rows as { pid: number }[];
      expect(await listening()).toHaveLength(1);

      await publisher.append([{ event: makeEvent() }]);
      await until(() => woken > 0);

      // Cut the LISTEN connection: the storage reconnects, listens again, and wakes its watchers (work may have been missed).
      const [{ pid }] = (await listening()) as [{ pid: number }];
      const before = woken;
      await p.query('SELECT pg_terminate_backend($1)', [pid]);
      await until(() => woken > before);
      await until(async () => (await listening()).some((r) => r.pid !== pid));
      const afterReconnect = woken;
      await publisher.append([{ event: makeEvent() }]);
      await until(() => woken > afterReconnect);
    } finally {
      await stop();
    }
    // Stopping the watch ends the LISTEN connection.
    await until(
      async () =>
        (await scalar(p, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`)) ===
        0,
    );
  });

  it('rejects with STORAGE_UNAVAILABLE when the server cannot be reached', async () => {
    const unreachable = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', max: 1, connectionTimeoutMillis: 2000 });
    unreachable.on('error', () => {});
    const storage = postgresStorage({ db: drizzle(unreachable) as unknown as DrizzleDatabase });
    try {
      const err = await storage.append([{ event: makeEvent() }]).catch((e: unknown) => e);
      expect(EventBusError.is(err, 'STORAGE_UNAVAILABLE')).toBe(true);
      expect((err as Error).cause).toBeDefined();
      await expect(
        storage.claim({ owner: 'w', subscribers: [{ name: 'a', limit: 1 }], limit: 1, leaseMs: 10 }),
      ).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    } finally {
      await unreachable.end();
    }
  });

  it('works on a single pg.Client too, listening on a client of its own', async () => {
    const client = new pg.Client({ connectionString: server.url });
    client.on('error', () => {});
    await client.connect();
    try {
      const db = drizzle(client) as unknown as DrizzleDatabase;
      const storage = postgresStorage({ db, schema: 'np' });
      await storage.register([{ name: 'single', patterns: ['auth.*'] }]);
      let woken = 0;
      const stop = await storage.watch(() => void (woken += 1));
      await postgresStorage({ db, schema: 'np' }).append([{ event: makeEvent() }]);
      await until(() => woken > 0);
      await stop();
      const rows = await db.execute(sql`SELECT count(*)::int AS n FROM np.events`);
      expect(Number((rows as unknown as { rows: { n: number }[] }).rows[0]!.n)).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
  });
});
