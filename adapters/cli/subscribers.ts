/** The subscribers the database knows, for commands that reason about who gets what (replay's dry run). */
import { sql } from 'drizzle-orm';
import type { OpenedBus } from './command';
import { queryRows } from './sql-rows';

/** A subscriber as stored. */
export interface StoredSubscriber {
  name: string;
  patterns: string[];
  lastSeenAt: Date;
}

/** Every subscriber of the database, by name. */
export async function storedSubscribers(opened: OpenedBus): Promise<StoredSubscriber[]> {
  const rows = await queryRows(
    opened.connection.db,
    sql`SELECT name, patterns, round(extract(epoch from last_seen_at) * 1000)::float8 AS seen_ms
      FROM ${sql.raw(opened.storage.tables.subscribers)} ORDER BY name`,
  );
  return rows.map((r) => ({
    name: String(r.name),
    patterns: (r.patterns as string[] | null) ?? [],
    lastSeenAt: new Date(Number(r.seen_ms)),
  }));
}
