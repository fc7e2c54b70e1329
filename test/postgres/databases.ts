/**
 * Fresh databases for the PostgreSQL suites: a new database with a random
 * name on `DATABASE_URL`'s server (dropped afterwards), or an in-memory PGlite.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import type { DrizzleDatabase } from '@blawby/event-bus/postgres';

/** A database for one test file or test. */
export interface TestDatabase {
  driver: 'postgres-js' | 'pglite';
  db: DrizzleDatabase;
  /** Connection string (postgres.js only), for child processes. */
  url?: string;
  /** Closes the client and drops the database. */
  dispose(): Promise<void>;
}

/** `DATABASE_URL`, or `undefined` (then only PGlite runs). */
export const DATABASE_URL = process.env.DATABASE_URL || undefined;

/** The drivers to run a suite on: always PGlite, postgres.js when `DATABASE_URL` is set. */
export const DRIVERS: ('postgres-js' | 'pglite')[] = DATABASE_URL ? ['postgres-js', 'pglite'] : ['pglite'];

/** Creates an empty database on `DATABASE_URL`'s server; returns its URL and a function that drops it. */
export async function createServerDatabase(baseUrl = DATABASE_URL!): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `eb_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const a = postgres(baseUrl, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** A fresh database on `driver`. */
export async function createTestDatabase(
  driver: 'postgres-js' | 'pglite',
  options: { max?: number } = {},
): Promise<TestDatabase> {
  if (driver === 'pglite') {
    const client = new PGlite();
    await client.waitReady;
    const db = drizzlePglite(client) as unknown as DrizzleDatabase;
    return { driver, db, dispose: () => client.close() };
  }
  if (!DATABASE_URL) throw new Error('DATABASE_URL is not set');
  const server = await createServerDatabase();
  const client = postgres(server.url, { max: options.max ?? 10, onnotice: () => {} });
  const db = drizzlePostgres(client) as unknown as DrizzleDatabase;
  return {
    driver,
    db,
    url: server.url,
    async dispose() {
      await client.end({ timeout: 5 });
      await server.drop();
    },
  };
}
