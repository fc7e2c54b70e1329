/**
 * The delivery property (see delivery-property.ts) on the PostgreSQL storage:
 * on PGlite always, and on postgres.js against `DATABASE_URL`'s server when it
 * is set. Each worker bus of a plan gets its own storage over the one database,
 * like separate processes of a service; tables are emptied between plans.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe } from 'vitest';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../postgres/databases';
import { deliveryPropertyTests } from './delivery-property';

const schema = 'delivery_property';

/** A deadlock (40P01) anywhere in an error's cause chain. */
function isDeadlock(err: unknown): boolean {
  for (let e = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === '40P01') return true;
  }
  return false;
}

for (const driver of DRIVERS) {
  describe(`delivery (property, postgres storage on ${driver})`, () => {
    let database: TestDatabase;

    beforeAll(async () => {
      database = await createTestDatabase(driver);
      await migrate(database.db, { schema });
    });
    afterAll(async () => {
      await database?.dispose();
    });

    deliveryPropertyTests(
      async () => {
        const { events, subscribers, deliveries, deadLetters, ranges } = postgresStorage({ db: database.db, schema }).tables;
        // The previous plan's buses may still be giving claims back (stop() returns at its deadline
        // and lets the last releases land): TRUNCATE can then deadlock with them; try again.
        for (let attempt = 1; ; attempt++) {
          try {
            await database.db.execute(sql.raw(`TRUNCATE ${events}, ${subscribers}, ${deliveries}, ${deadLetters}, ${ranges}`));
            break;
          } catch (err) {
            if (attempt >= 5 || !isDeadlock(err)) throw err;
            await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
          }
        }
        return { makeStorage: () => postgresStorage({ db: database.db, schema }) };
      },
      // Fewer plans than on memory: each costs real SQL round trips and idle
      // waits. 25 plans make sure every kind of step is exercised; PROPERTY_RUNS=400 for a long search.
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 25), timeoutMs: 300_000 },
    );
  });
}
