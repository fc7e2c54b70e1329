/**
 * node-postgres, as the Blawby backend runs it: a `pg` `Pool` of 10 under
 * `drizzle-orm/node-postgres`. A `schema` keeps a test's tables apart
 * (through `search_path`) and is dropped on close.
 */
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { AppDb } from '../blawby/db/connect';
import { schema as tables } from '../blawby/db/schema';

/** An open pool and its drizzle database. */
export interface NodePgDatabase {
  db: AppDb;
  pool: pg.Pool;
  close(): Promise<void>;
}

/** Opens a pool on `url`; with `schema`, creates it, uses it, and drops it on close. */
export async function openNodePg(url: string, schema?: string): Promise<NodePgDatabase> {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`Invalid schema name "${schema}"`);
  if (schema) {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({ connectionString: url, max: 10, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  const db = drizzle(pool, { schema: tables }) as unknown as AppDb;
  return {
    db,
    pool,
    async close() {
      try {
        if (schema) await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await pool.end();
      }
    },
  };
}
