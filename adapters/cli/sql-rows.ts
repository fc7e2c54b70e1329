/** Rows of a query through a drizzle database, whichever driver (postgres.js returns an array, PGlite `{ rows }`). */
import type { SQL } from 'drizzle-orm';
import type { DrizzleDatabase } from '@blawby/event-bus/postgres';

/** A result row. */
export type Row = Record<string, unknown>;

/** Runs `query` and returns its rows. */
export async function queryRows(db: DrizzleDatabase, query: SQL): Promise<Row[]> {
  const result = (await db.execute(query)) as unknown;
  if (Array.isArray(result)) return result as Row[];
  const rows = (result as { rows?: unknown } | null)?.rows;
  return Array.isArray(rows) ? (rows as Row[]) : [];
}
