/**
 * Migration 2: the outbox relay's state. One row per relay: who leads it
 * (a lease, so exactly one process relays at a time and another takes over
 * when the leader dies), its cursor into the log, and the subscribers it
 * has caught up (sent what their group was not there for); plus the events
 * the cursor passed whose `deliverAt` was still ahead, sent when they are due.
 */
import type { TableNames } from '../names';
import type { Migration } from './types';

export const outboxRelayMigration: Migration = {
  id: 2,
  name: 'outbox_relay',
  statements(t: TableNames): string[] {
    return [
      `CREATE TABLE IF NOT EXISTS ${t.relays} (
  name TEXT PRIMARY KEY,
  owner TEXT,
  lease_expires_at TIMESTAMPTZ,
  cursor_tx XID8 NOT NULL,
  cursor_pos BIGINT NOT NULL,
  caught_up TEXT[] DEFAULT '{}' NOT NULL,
  updated_at TIMESTAMPTZ DEFAULT NOW() NOT NULL
) WITH (fillfactor = 50)`,
      `CREATE TABLE IF NOT EXISTS ${t.relayScheduled} (
  relay TEXT NOT NULL,
  event_id UUID NOT NULL,
  run_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (relay, event_id)
)`,
      `CREATE INDEX IF NOT EXISTS "${t.indexPrefix}idx_event_relay_scheduled_due" ON ${t.relayScheduled} (relay, run_at)`,
      `CREATE INDEX IF NOT EXISTS "${t.indexPrefix}idx_event_relay_scheduled_event" ON ${t.relayScheduled} (event_id)`,
    ];
  },
};
