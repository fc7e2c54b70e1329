/**
 * Migration 4: the processes listening for work notices. Each storage that
 * LISTENs keeps a row here while it does (refreshed, with an expiry, so a
 * killed process's row runs out). A publish sends its NOTIFY only while a
 * row is live: PostgreSQL serializes the commits of notifying transactions
 * (one lock held through the commit's WAL flush), so a NOTIFY that nobody
 * hears would cost concurrent publishers their shared commits for nothing.
 */
import type { TableNames } from '../names';
import type { Migration } from './types';

export const listenersMigration: Migration = {
  id: 4,
  name: 'listeners',
  statements(t: TableNames): string[] {
    return [
      `CREATE TABLE IF NOT EXISTS ${t.listeners} (
  id TEXT PRIMARY KEY,
  expires_at TIMESTAMPTZ NOT NULL
)`,
    ];
  },
};
