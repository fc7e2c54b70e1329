/**
 * Opening the database named on the command line: a PostgreSQL server through
 * postgres.js (`--database-url`, else `DATABASE_URL`) or an embedded PGlite
 * directory (`--pglite DIR`). Both drivers are optional peers of the package,
 * loaded only when asked for.
 */
import { resolve } from 'node:path';
import type { DrizzleDatabase } from '@blawby/event-bus/postgres';
import { CliError, usageError } from './cli-error';
import { ExitCode } from './exit-codes';

/** An open database and how to close it. */
export interface Connection {
  /** The drizzle database the bus's storage and `migrate` run on. */
  db: DrizzleDatabase;
  driver: 'postgres-js' | 'pglite';
  /** Where it points, for messages: the URL without its password, or the PGlite directory. */
  target: string;
  close(): Promise<void>;
}

/** What `connect` reads. */
export interface ConnectOptions {
  databaseUrl?: string;
  pglite?: string;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

/** The URL without its password (for messages). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** Imports an optional peer; a clear error names the package to install when it is missing. */
async function importPeer<T>(specifier: string, pkg: string, why: string): Promise<T> {
  try {
    return (await import(specifier)) as T;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new CliError(ExitCode.DATABASE, `${why} needs the package "${pkg}"`, `npm install ${pkg}`, { cause: err });
    }
    throw err;
  }
}

/** Opens the database the options name (checks the connection before returning). */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const url = options.databaseUrl ?? (options.pglite === undefined ? options.env.DATABASE_URL || undefined : undefined);
  if (options.databaseUrl !== undefined && options.pglite !== undefined) {
    throw usageError('give either --database-url or --pglite, not both');
  }
  if (options.pglite !== undefined) return connectPglite(resolve(options.cwd, options.pglite));
  if (url === undefined) {
    throw usageError('no database given', 'pass --database-url <url> (or set DATABASE_URL), or --pglite <dir>');
  }
  return connectPostgres(url);
}

async function connectPostgres(url: string): Promise<Connection> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(ExitCode.DATABASE, 'the database URL is not a valid URL', 'expected postgres://user:password@host:5432/database');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new CliError(
      ExitCode.DATABASE,
      `the database URL must start with postgres:// or postgresql://, not ${parsed.protocol}//`,
      'expected postgres://user:password@host:5432/database',
    );
  }
  const target = redactUrl(url);
  const { default: postgres } = await importPeer<{ default: typeof import('postgres') }>('postgres', 'postgres', '--database-url');
  const { drizzle } = await importPeer<typeof import('drizzle-orm/postgres-js')>(
    'drizzle-orm/postgres-js',
    'drizzle-orm',
    '--database-url',
  );
  const client = postgres(url, { max: 4, onnotice: () => {}, connect_timeout: 10 });
  try {
    await client`SELECT 1`;
  } catch (err) {
    await client.end({ timeout: 1 }).catch(() => {});
    const reason = (err as { code?: string; message?: string }).message ?? String(err);
    throw new CliError(ExitCode.DATABASE, `cannot connect to ${target}: ${reason}`, undefined, { cause: err });
  }
  return {
    db: drizzle(client) as unknown as DrizzleDatabase,
    driver: 'postgres-js',
    target,
    close: () => client.end({ timeout: 5 }),
  };
}

async function connectPglite(dir: string): Promise<Connection> {
  const { PGlite } = await importPeer<typeof import('@electric-sql/pglite')>(
    '@electric-sql/pglite',
    '@electric-sql/pglite',
    '--pglite',
  );
  const { drizzle } = await importPeer<typeof import('drizzle-orm/pglite')>('drizzle-orm/pglite', 'drizzle-orm', '--pglite');
  let client: InstanceType<typeof PGlite>;
  try {
    client = new PGlite(dir);
    await client.waitReady;
  } catch (err) {
    throw new CliError(ExitCode.DATABASE, `cannot open the PGlite database in ${dir}: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  return {
    db: drizzle(client) as unknown as DrizzleDatabase,
    driver: 'pglite',
    target: dir,
    close: () => client.close(),
  };
}
