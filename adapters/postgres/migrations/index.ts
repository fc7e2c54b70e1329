/** The shipped migrations, in order. A new migration is a new numbered file added here. */
import { initialMigration } from './0001_initial';
import { outboxRelayMigration } from './0002_outbox_relay';
import { rangeLeasesMigration } from './0003_range_leases';
import { listenersMigration } from './0004_listeners';
import type { Migration } from './types';

export type { Migration, MigrationOptions } from './types';

/** Every migration, by ascending id. */
export const migrations: readonly Migration[] = [
  initialMigration,
  outboxRelayMigration,
  rangeLeasesMigration,
  listenersMigration,
];
