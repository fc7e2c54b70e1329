/**
 * Migration 1: the seed's `events` table (columns and indexes as given, plus
 * the columns the bus needs), `event_subscriptions` as in the seed, and the
 * tables of subscribers, deliveries and dead letters.
 *
 * Every statement is idempotent (`IF NOT EXISTS`), so an existing Blawby
 * database whose `events` table predates the bus keeps its rows and gains the
 * new columns.
 */
import { InvalidOptionError } from '../../../src/errors';
import type { TableNames } from '../names';
import type { Migration, MigrationOptions } from './types';

export const initialMigration: Migration = {
  id: 1,
  name: 'initial',
  statements(t: TableNames, options: MigrationOptions): string[] {
    const i = (name: string) => `"${t.indexPrefix}${name}"`;
    const fk = options.organizationForeignKey;
    const orgRef = fk ? ` REFERENCES ${qualify(fk.table, t.schema)}("${fk.column ?? 'id'}") ON DELETE SET NULL` : '';
    return [
      `CREATE SCHEMA IF NOT EXISTS ${t.qSchema}`,
      `CREATE TABLE IF NOT EXISTS ${t.events} (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  event_id VARCHAR(100) UNIQUE NOT NULL DEFAULT gen_random_uuid()::text,
  event_type VARCHAR(100) NOT NULL,
  event_version VARCHAR(20) DEFAULT '1.0.0' NOT NULL,
  actor TEXT,
  actor_type TEXT,
  organization_id TEXT${orgRef},
  payload JSONB NOT NULL,
  metadata JSONB NOT NULL DEFAULT '{}',
  processed BOOLEAN DEFAULT false NOT NULL,
  retry_count INTEGER DEFAULT 0 NOT NULL,
  last_error TEXT,
  processed_at TIMESTAMP,
  created_at TIMESTAMP DEFAULT NOW() NOT NULL
)`,
      // Columns of the bus: an existing seed table gains them.
      `ALTER TABLE ${t.events}
  ADD COLUMN IF NOT EXISTS idempotency_key TEXT,
  ADD COLUMN IF NOT EXISTS ordering_key TEXT,
  ADD COLUMN IF NOT EXISTS deliver_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS pending_deliveries INTEGER DEFAULT 0 NOT NULL`,
      // Room in each page for the updates that count deliveries down, so they can be HOT (no index writes).
      `ALTER TABLE ${t.events} SET (fillfactor = 90)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_type')} ON ${t.events} (event_type)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_actor')} ON ${t.events} (actor)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_actor_type')} ON ${t.events} (actor_type)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_organization_id')} ON ${t.events} (organization_id)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_created_at')} ON ${t.events} (created_at)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_processed')} ON ${t.events} (processed, created_at)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_type_created')} ON ${t.events} (event_type, created_at)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_actor_events')} ON ${
        t.events
      } (actor, created_at DESC) WHERE actor IS NOT NULL`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_org_events')} ON ${
        t.events
      } (organization_id, created_at DESC) WHERE organization_id IS NOT NULL`,
      `CREATE UNIQUE INDEX IF NOT EXISTS ${i('idx_events_idempotency_key')} ON ${
        t.events
      } (idempotency_key) WHERE idempotency_key IS NOT NULL`,
      // The seed's preferences table; its user foreign key is left to the application.
      `CREATE TABLE IF NOT EXISTS ${t.eventSubscriptions} (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id TEXT NOT NULL,
  event_type VARCHAR(100) NOT NULL,
  channel VARCHAR(50) NOT NULL,
  enabled BOOLEAN DEFAULT true NOT NULL,
  config JSONB DEFAULT '{}',
  created_at TIMESTAMP DEFAULT NOW() NOT NULL,
  updated_at TIMESTAMP DEFAULT NOW() NOT NULL,
  UNIQUE (user_id, event_type, channel)
)`,
      `CREATE TABLE IF NOT EXISTS ${t.subscribers} (
  name TEXT PRIMARY KEY,
  patterns TEXT[] NOT NULL,
  registered_at TIMESTAMPTZ DEFAULT NOW() NOT NULL,
  last_seen_at TIMESTAMPTZ DEFAULT NOW() NOT NULL
)`,
      // One row per unfinished (event, subscriber): finished rows are deleted,
      // so the table stays as small as the backlog. Lease columns are in no
      // index, so claiming is a HOT update.
      `CREATE TABLE IF NOT EXISTS ${t.deliveries} (
  id UUID PRIMARY KEY,
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  event_id UUID NOT NULL,
  subscriber TEXT NOT NULL,
  ordering_key TEXT,
  run_at TIMESTAMPTZ DEFAULT NOW() NOT NULL,
  attempts INTEGER DEFAULT 0 NOT NULL,
  lease_owner TEXT,
  lease_token UUID,
  lease_expires_at TIMESTAMPTZ,
  last_error JSONB,
  created_at TIMESTAMPTZ DEFAULT NOW() NOT NULL
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_deliveries_due')} ON ${t.deliveries} (subscriber, run_at, seq)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_deliveries_ordering')} ON ${
        t.deliveries
      } (subscriber, ordering_key, seq) WHERE ordering_key IS NOT NULL`,
      `CREATE TABLE IF NOT EXISTS ${t.deadLetters} (
  id UUID PRIMARY KEY,
  event_id UUID NOT NULL,
  subscriber TEXT NOT NULL,
  ordering_key TEXT,
  attempts INTEGER NOT NULL,
  error JSONB NOT NULL,
  failed_at TIMESTAMPTZ DEFAULT NOW() NOT NULL
)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_dead_letters_subscriber')} ON ${
        t.deadLetters
      } (subscriber, failed_at)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_dead_letters_event')} ON ${t.deadLetters} (event_id)`,
    ];
  },
};

function qualify(table: string, defaultSchema: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || parts.some((p) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(p))) {
    throw new InvalidOptionError('organizationForeignKey.table', 'must be "table" or "schema.table"');
  }
  return parts.length === 2 ? `"${parts[0]}"."${parts[1]}"` : `"${defaultSchema}"."${parts[0]}"`;
}
