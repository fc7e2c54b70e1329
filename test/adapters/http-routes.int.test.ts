/**
 * The framework-neutral health route against a real storage fault: PostgreSQL
 * storage on PGlite whose database is closed under it. (Both adapters send
 * what `healthRoute` returns; the shared HTTP suite checks that for 200 and 503.)
 */
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { describe, expect, it } from 'vitest';
import { createEventBus } from '@blawby/event-bus';
import type { Logger } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { healthRoute } from '../../adapters/http';
import { suiteCatalog } from './http-routes.suite';

describe('healthRoute', () => {
  it('answers 503 STORAGE_UNAVAILABLE, and logs, when the storage cannot answer', async () => {
    const pglite = new PGlite();
    const db = drizzle(pglite);
    await migrate(db);
    const bus = createEventBus({ catalog: suiteCatalog, storage: postgresStorage({ db, notify: false }) });
    const errors: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (_fields, msg) => void errors.push(msg ?? '') };
    try {
      expect(await healthRoute(bus, logger)).toMatchObject({ status: 200, body: { healthy: true } });
      await pglite.close();
      const result = await healthRoute(bus, logger);
      expect(result).toEqual({
        status: 503,
        body: {
          status: 'unhealthy',
          healthy: false,
          error: { code: 'STORAGE_UNAVAILABLE', message: 'The event storage did not answer' },
        },
      });
      expect(errors).toEqual(['event bus health check failed']);
    } finally {
      await bus.stop();
      if (!pglite.closed) await pglite.close();
    }
  }, 120_000);
});
