/** The rows of the storages that listen for work notices (what decides whether a publish notifies). */
import { sql, type SQL } from 'drizzle-orm';
import type { TableNames } from '../names';
import { id, ms } from './common';

/**
 * Records (or refreshes) that storage `listener` listens, until `ttlMs` from
 * now; and deletes rows that ran out long ago (a killed process's).
 */
export function listenerUpStatement(t: TableNames, listener: string, ttlMs: number): SQL {
  return sql`
WITH gone AS (DELETE FROM ${id(t.listeners)} WHERE expires_at < now() - ${ms(ttlMs)} AND id <> ${listener})
INSERT INTO ${id(t.listeners)} (id, expires_at) VALUES (${listener}, now() + ${ms(ttlMs)})
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`;
}

/** Storage `listener` stopped listening. */
export function listenerDownStatement(t: TableNames, listener: string): SQL {
  return sql`DELETE FROM ${id(t.listeners)} WHERE id = ${listener}`;
}
