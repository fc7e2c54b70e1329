/**
 * Opens the database: a real PostgreSQL when a URL is given, else PGlite
 * (PostgreSQL compiled to WebAssembly, in this process: no server needed).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { schema } from './schema';

/** `examples/blawby/.data/` (git-ignored): where the demo and the tests cache PGlite's empty cluster. */
export const PGLITE_CACHE_DIR = fileURLToPath(new URL('../.data/', import.meta.url));

/** The drizzle database the app uses, whichever driver is below it. */
export type AppDb = PgDatabase<PgQueryResultHKT, typeof schema>;

/** A drizzle transaction of {@link AppDb}. */
export type AppTx = Parameters<Parameters<AppDb['transaction']>[0]>[0];

/** An open database and how to close it. */
export interface Database {
  db: AppDb;
  /** `'pglite'` or `'postgres'`. */
  driver: 'pglite' | 'postgres';
  /** Closes what {@link openDatabase} opened (and drops the schema it created, if asked to). */
  close(): Promise<void>;
}

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** A PostgreSQL URL; PGlite when absent. */
  url?: string;
  /** PGlite only: a directory to keep the data in (in memory when absent). */
  dataDir?: string;
  /**
   * PGlite in memory only: a directory where a freshly initialised, empty
   * cluster is cached (one file per PGlite version). Creating a cluster
   * (initdb) takes most of PGlite's start-up; loading the cached one skips it.
   */
  pgliteCacheDir?: string;
  /**
   * PostgreSQL only: a schema to create and use (via `search_path`), so that
   * a demo or a test never touches the tables of `public`.
   */
  schema?: string;
  /** PostgreSQL only: drop {@link schema} on close. */
  dropSchemaOnClose?: boolean;
}

/** Opens PGlite or PostgreSQL and returns a drizzle database over it. */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  if (!options.url) {
    const client = options.dataDir
      ? await startPglite(new PGlite(options.dataDir))
      : await openPglite(options.pgliteCacheDir);
    const db = drizzlePglite(client, { schema }) as unknown as AppDb;
    return { db, driver: 'pglite', close: () => client.close() };
  }
  const { url, schema: pgSchema } = options;
  if (pgSchema && !/^[a-z_][a-z0-9_]*$/.test(pgSchema)) throw new Error(`Invalid schema name "${pgSchema}"`);
  if (pgSchema) {
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`CREATE SCHEMA IF NOT EXISTS ${pgSchema}`);
    } finally {
      await admin.end();
    }
  }
  const client = postgres(url, {
    max: 10,
    onnotice: () => {},
    ...(pgSchema ? { connection: { search_path: pgSchema } } : {}),
  });
  const db = drizzlePostgres(client, { schema }) as unknown as AppDb;
  return {
    db,
    driver: 'postgres',
    async close() {
      if (pgSchema && options.dropSchemaOnClose) await client.unsafe(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`);
      await client.end();
    },
  };
}

async function startPglite(client: PGlite): Promise<PGlite> {
  await client.waitReady;
  return client;
}

function pgliteVersion(): string {
  try {
    const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
    const pkg = createRequire(import.meta.url)(join(dirname(entry), '..', 'package.json')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** An in-memory PGlite, started from the cached empty cluster when there is one (and caching it when not). */
async function openPglite(cacheDir: string | undefined): Promise<PGlite> {
  if (!cacheDir) return startPglite(new PGlite());
  const file = join(cacheDir, `pglite-${pgliteVersion()}-empty.tar.gz`);
  const cached = await readFile(file).catch(() => null);
  if (cached) {
    const client = new PGlite({ loadDataDir: new Blob([cached]) });
    try {
      return await startPglite(client);
    } catch {
      // A damaged cache: drop it and start from scratch.
      await client.close().catch(() => {});
      await rm(file, { force: true });
    }
  }
  const client = await startPglite(new PGlite());
  try {
    const dump = await client.dumpDataDir('gzip');
    await mkdir(cacheDir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, Buffer.from(await dump.arrayBuffer()));
    await rename(tmp, file); // atomic: a concurrent reader sees the whole file or none
  } catch {
    // Only a cache: the database itself is fine.
  }
  return client;
}
