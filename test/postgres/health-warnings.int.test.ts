/**
 * The PostgreSQL storage's health warnings, read from the server's catalogs
 * and statistics: autovacuum off (the server's setting, or one of the bus's
 * tables), dead tuples, a long transaction pinning the xmin horizon, LISTEN
 * off; and `bus.health()` carrying them.
 */
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventBus, EventBusError } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { catalog } from '../bus/fixtures';
import { createTestDatabase, DRIVERS, type TestDatabase } from './databases';

for (const driver of DRIVERS) {
  describe(`health warnings on ${driver}`, () => {
    let database: TestDatabase;
    const schema = 'warned';

    beforeAll(async () => {
      database = await createTestDatabase(driver);
      await migrate(database.db, { schema });
    });
    afterAll(async () => {
      await database?.dispose();
    });

    async function serverAutovacuumOff(): Promise<boolean> {
      const result: unknown = await database.db.execute(
        sql`SELECT current_setting('autovacuum') = 'off' OR current_setting('track_counts') = 'off' AS off`,
      );
      // postgres.js answers an array of rows, node-postgres and PGlite an object with `rows`.
      const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { off: boolean }[];
      return rows[0]!.off === true;
    }

    it('reports autovacuum disabled on a bus table (or on the whole server), and nothing once it is back', async () => {
      const storage = postgresStorage({ db: database.db, schema });
      const serverOff = await serverAutovacuumOff();
      await database.db.execute(sql.raw(`ALTER TABLE ${storage.tables.events} SET (autovacuum_enabled = false)`));
      const off = (await storage.warnings()).filter((w) => w.code === 'AUTOVACUUM_DISABLED');
      // A server with autovacuum off says so once, not per table.
      expect(off).toEqual([
        serverOff
          ? { code: 'AUTOVACUUM_DISABLED', message: expect.stringContaining('off on this server') }
          : { code: 'AUTOVACUUM_DISABLED', table: storage.tables.events, message: expect.stringContaining('autovacuum_enabled') },
      ]);
      await database.db.execute(sql.raw(`ALTER TABLE ${storage.tables.events} RESET (autovacuum_enabled)`));
      const after = (await storage.warnings()).filter((w) => w.code === 'AUTOVACUUM_DISABLED');
      expect(after).toHaveLength(serverOff ? 1 : 0);
      await storage.close();
    });

    it('reports LISTEN off as LISTEN_UNAVAILABLE', async () => {
      const polling = postgresStorage({ db: database.db, schema, notify: false });
      const listening = postgresStorage({ db: database.db, schema });
      expect((await polling.warnings()).map((w) => w.code)).toContain('LISTEN_UNAVAILABLE');
      expect((await listening.warnings()).map((w) => w.code)).not.toContain('LISTEN_UNAVAILABLE');
      await polling.close();
      await listening.close();
    });

    it('refuses thresholds that are not positive numbers', () => {
      for (const warnings of [{ maxDeadTuples: 0 }, { maxTransactionAgeMs: -1 }, { maxDeadTuples: Number.NaN }]) {
        let thrown: unknown;
        try {
          postgresStorage({ db: database.db, schema, warnings });
        } catch (err) {
          thrown = err;
        }
        expect(EventBusError.is(thrown, 'INVALID_OPTION'), JSON.stringify(warnings)).toBe(true);
      }
    });

    it('reports dead tuples above the threshold, and bus.health() carries the warnings', async () => {
      const storage = postgresStorage({ db: database.db, schema, warnings: { maxDeadTuples: 20 } });
      const bus = createEventBus({ catalog, storage });
      for (let i = 0; i < 30; i++) await bus.publish('auth.user_logged_in', { sessionId: `s${i}` });
      await database.db.execute(sql.raw(`DELETE FROM ${storage.tables.events}`));
      // Statistics reach the views within a second or so of the deleting transaction.
      await vi.waitFor(
        async () => {
          const dead = (await bus.health()).warnings.find((w) => w.code === 'DEAD_TUPLES_HIGH');
          expect(dead).toMatchObject({ table: storage.tables.events, count: expect.any(Number) });
          expect(dead!.count).toBeGreaterThanOrEqual(20);
        },
        { timeout: 15_000, interval: 250 },
      );
      await bus.stop();
    });
  });
}

describe.runIf(process.env.DATABASE_URL)('a long transaction on the server', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase('postgres-js');
    await migrate(database.db);
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it('is reported as XMIN_HORIZON_PINNED while it runs', async () => {
    const storage = postgresStorage({ db: database.db, warnings: { maxTransactionAgeMs: 200 } });
    const other = postgres(database.url!, { max: 1, onnotice: () => {} });
    let finish!: () => void;
    const held = new Promise<void>((resolve) => (finish = resolve));
    // A snapshot held open (it pins vacuum's horizon) without a transaction id: one with an id would
    // also hold back the log's visible horizon, for every database of the server, and so stall the
    // PostgreSQL suites running beside this one.
    const tx = other.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (t) => {
      await t`SELECT 1`;
      await held;
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const pinned = (await storage.warnings()).find((w) => w.code === 'XMIN_HORIZON_PINNED');
    expect(pinned).toMatchObject({ count: expect.any(Number), ageMs: expect.any(Number) });
    expect(pinned!.ageMs).toBeGreaterThanOrEqual(200);
    finish();
    await tx;
    await other.end();
    await storage.close();
  });
});
