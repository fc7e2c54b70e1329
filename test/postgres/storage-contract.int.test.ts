/**
 * The shared storage contract on the PostgreSQL storage: on PGlite always, and
 * on postgres.js against `DATABASE_URL`'s server when it is set (a fresh
 * database per run, emptied tables per test).
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe } from 'vitest';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { describeStorageContract } from '../contract/storage.contract';
import { createTestDatabase, DRIVERS, type TestDatabase } from './databases';

for (const driver of DRIVERS) {
  describe(`postgres storage on ${driver}`, () => {
    let database: TestDatabase;
    const schema = 'contract';

    beforeAll(async () => {
      database = await createTestDatabase(driver);
      await migrate(database.db, { schema });
    });
    afterAll(async () => {
      await database?.dispose();
    });

    // One migration per run; each test starts from emptied tables (much faster than a schema per test).
    describeStorageContract(`postgres (${driver})`, async () => {
      const storage = postgresStorage({ db: database.db, schema });
      const { events, subscribers, deliveries, deadLetters, ranges } = storage.tables;
      return {
        storage,
        cleanup: async () => {
          await database.db.execute(sql.raw(`TRUNCATE ${events}, ${subscribers}, ${deliveries}, ${deadLetters}, ${ranges}`));
        },
      };
    });
  });
}
