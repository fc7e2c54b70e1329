/**
 * Migration 1: the seed's `events` table (columns and indexes as given, plus
 * the columns the bus needs), `event_subscriptions` as in the seed, and the
 * tables of the delivery model: subscribers with their cursor into the log,
 * leased ranges of the log, off-path deliveries and dead letters.
 *
 * Every statement is idempotent (`IF NOT EXISTS`), so an existing Blawby
 * database whose `events` table predates the bus keeps its rows and gains the
 * new columns.
 */
import { InvalidOptionError } from '@blawby/event-bus';
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
      // Columns of the bus: an existing seed table gains them. `position` and
      // `tx_id` place each event in the log: readers take events in
      // (tx_id, position) order and only below the oldest running transaction
      // (`pg_snapshot_xmin`), so an event whose transaction commits late is
      // never skipped (a sequence alone is not commit order). Rows of an adopted
      // table get the migration's own transaction id, and positions in the order
      // they were created (not their physical order, which updates reshuffle),
      // before `position` becomes an identity that continues after them.
      `ALTER TABLE ${t.events}
  ADD COLUMN IF NOT EXISTS idempotency_key TEXT,
  ADD COLUMN IF NOT EXISTS ordering_key TEXT,
  ADD COLUMN IF NOT EXISTS deliver_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS position BIGINT,
  ADD COLUMN IF NOT EXISTS tx_id XID8 DEFAULT pg_current_xact_id() NOT NULL`,
      `UPDATE ${t.events} e SET position = r.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM ${t.events}) r
WHERE e.id = r.id AND e.position IS NULL`,
      `ALTER TABLE ${t.events} ALTER COLUMN position SET NOT NULL`,
      `ALTER TABLE ${t.events} ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY`,
      `DO $$ BEGIN
  EXECUTE format('ALTER TABLE ${t.events.replace(/'/g, "''")} ALTER COLUMN position RESTART WITH %s',
    (SELECT coalesce(max(position), 0) + 1 FROM ${t.events}));
END $$`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_events_log')} ON ${t.events} (tx_id, position)`,
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
      // A subscriber's cursor: every event up to (head_tx, head_pos) was handed
      // out or settled for it. Moving it is a HOT update (no indexed column).
      `CREATE TABLE IF NOT EXISTS ${t.subscribers} (
  name TEXT PRIMARY KEY,
  patterns TEXT[] NOT NULL,
  registered_at TIMESTAMPTZ DEFAULT NOW() NOT NULL,
  last_seen_at TIMESTAMPTZ DEFAULT NOW() NOT NULL,
  head_tx XID8 DEFAULT '0' NOT NULL,
  head_pos BIGINT DEFAULT 0 NOT NULL
) WITH (fillfactor = 50)`,
      // A range: one claim's events of the log (after lo, up to hi), leased to
      // one owner. `members` were handed out, `done` settled; `keyed`/`keys`
      // are the members with an ordering key, so later events of those keys wait.
      // A range whose lease runs out is spilled into deliveries by the next claim.
      `CREATE TABLE IF NOT EXISTS ${t.ranges} (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscriber TEXT NOT NULL,
  owner TEXT NOT NULL,
  token UUID NOT NULL,
  lease_expires_at TIMESTAMPTZ NOT NULL,
  attempts INTEGER NOT NULL,
  lo_tx XID8 NOT NULL,
  lo_pos BIGINT NOT NULL,
  hi_tx XID8 NOT NULL,
  hi_pos BIGINT NOT NULL,
  members BIGINT[] NOT NULL,
  done BIGINT[] DEFAULT '{}' NOT NULL,
  keyed BIGINT[] DEFAULT '{}' NOT NULL,
  keys TEXT[] DEFAULT '{}' NOT NULL
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 200)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_ranges_subscriber')} ON ${t.ranges} (subscriber)`,
      // Deliveries off the happy path only: a retry waiting for its time, a
      // future deliverAt, a key blocked behind another delivery, a replay or
      // redrive, a range spilled after its lease ran out. (pos_tx, pos) is the
      // event's place in the log: deliveries of one key run in that order.
      `CREATE TABLE IF NOT EXISTS ${t.deliveries} (
  id UUID PRIMARY KEY,
  event_id UUID NOT NULL,
  subscriber TEXT NOT NULL,
  ordering_key TEXT,
  pos_tx XID8 NOT NULL,
  pos BIGINT NOT NULL,
  run_at TIMESTAMPTZ DEFAULT NOW() NOT NULL,
  attempts INTEGER DEFAULT 0 NOT NULL,
  lease_owner TEXT,
  lease_token UUID,
  lease_expires_at TIMESTAMPTZ,
  last_error JSONB,
  created_at TIMESTAMPTZ DEFAULT NOW() NOT NULL
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_deliveries_due')} ON ${t.deliveries} (subscriber, run_at, pos_tx, pos)`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_deliveries_ordering')} ON ${
        t.deliveries
      } (subscriber, ordering_key, pos_tx, pos) WHERE ordering_key IS NOT NULL`,
      `CREATE INDEX IF NOT EXISTS ${i('idx_event_deliveries_event')} ON ${t.deliveries} (event_id)`,
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
      // Where the first subscribers start when none is registered: before the
      // oldest event of an adopted table that is not processed (so its history
      // is not delivered again), or at the start of an empty log.
      `CREATE TABLE IF NOT EXISTS ${t.state} (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  horizon_tx XID8 NOT NULL,
  horizon_pos BIGINT NOT NULL
)`,
      `INSERT INTO ${t.state} (id, horizon_tx, horizon_pos)
SELECT 1, coalesce(u.tx_id, a.tx_id, '0'), coalesce(u.position - 1, a.position, 0)
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT tx_id, position FROM ${t.events} WHERE NOT processed ORDER BY tx_id, position LIMIT 1) u ON true
LEFT JOIN LATERAL (SELECT tx_id, position FROM ${t.events} ORDER BY tx_id DESC, position DESC LIMIT 1) a ON true
ON CONFLICT (id) DO NOTHING`,
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
