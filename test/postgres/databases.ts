/**
 * Fresh databases for the PostgreSQL suites: a new database with a random
 * name on `DATABASE_URL`'s server (dropped afterwards), reached through
 * postgres.js or node-postgres, or an in-memory PGlite.
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import postgres from 'postgres';
import type { DrizzleDatabase } from '@blawby/event-bus/postgres';
import { connect, type ServerDriver } from './fixtures/connect';

export { connect, type ServerDriver };

/** A driver the PostgreSQL suites run on. */
export type Driver = 'postgres-js' | 'node-postgres' | 'pglite';

/** A database for one test file or test. */
export interface TestDatabase {
  driver: Driver;
  db: DrizzleDatabase;
  /** Connection string (server drivers only), for child processes and second clients. */
  url?: string;
  /** Closes the client and drops the database. */
  dispose(): Promise<void>;
}

/** `DATABASE_URL`, or `undefined` (then only PGlite runs). */
export const DATABASE_URL = process.env.DATABASE_URL || undefined;

/** The drivers to run a suite on: always PGlite, postgres.js and node-postgres when `DATABASE_URL` is set. */
export const DRIVERS: Driver[] = DATABASE_URL ? ['postgres-js', 'node-postgres', 'pglite'] : ['pglite'];

/** The server drivers (for tests that need `DATABASE_URL`): postgres.js and node-postgres, or none. */
export const SERVER_DRIVERS: ServerDriver[] = DATABASE_URL ? ['postgres-js', 'node-postgres'] : [];

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
export async function createTestDatabase(driver: Driver, options: { max?: number } = {}): Promise<TestDatabase> {
  if (driver === 'pglite') {
    const client = new PGlite();
    await client.waitReady;
    const db = drizzlePglite(client) as unknown as DrizzleDatabase;
    return { driver, db, dispose: () => client.close() };
  }
  if (!DATABASE_URL) throw new Error('DATABASE_URL is not set');
  const server = await createServerDatabase();
  const { db, end } = connect(driver, server.url, options);
  return {
    driver,
    db,
    url: server.url,
    async dispose() {
      await end();
      await server.drop();
    },
  };
}
