/**
 * Durable storage for `@blawby/event-bus` on PostgreSQL, through drizzle-orm:
 * a transactional outbox (publish inside your transaction) whose `events`
 * table is a commit-ordered log, read by each subscriber through its own
 * cursor in leased ranges (no row per delivery on the happy path), retries
 * and dead letters that survive restarts, and LISTEN/NOTIFY wake-ups. The same
 * code runs on postgres.js or node-postgres against a server and on PGlite
 * (embedded).
 *
 * @example
 * ```ts
 * import postgres from 'postgres';
 * import { drizzle } from 'drizzle-orm/postgres-js';
 * import { createEventBus } from '@blawby/event-bus';
 * import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
 *
 * const db = drizzle(postgres(process.env.DATABASE_URL!));
 * await migrate(db); // idempotent; run at deploy or startup
 * const bus = createEventBus({ catalog, storage: postgresStorage({ db }) });
 *
 * await db.transaction(async (tx) => {
 *   await tx.insert(practices).values(row);
 *   await bus.publish('practice.details_created', payload, { tx }); // commits or rolls back with the row
 * });
 * ```
 *
 * @module
 */
export { postgresStorage } from './postgres-storage';
export type { PostgresStorage, PostgresStorageOptions, PostgresWarningOptions, PurgeOptions } from './postgres-storage';
export type { RetentionOptions, RetentionStats } from './retention';
export type { RelayTuning } from './relay';
export { migrate, migrationSql } from './migrate';
export type { MigrateOptions, MigrateResult } from './migrate';
export type { MigrationOptions } from './migrations';
export type { DrizzleDatabase } from './driver';
export type { TableNames, TableOptions } from './names';
export {
  eventBusTables,
  defaultTables,
  eventsTable,
  eventSubscriptionsTable,
  eventSubscribersTable,
  eventRangesTable,
  eventDeliveriesTable,
  eventDeadLettersTable,
  eventRelaysTable,
  eventRelayScheduledTable,
  eventListenersTable,
} from './tables';
