/**
 * What the storage needs from node-postgres (`pg` 8, behind
 * `drizzle-orm/node-postgres`): named prepared statements on the pool, and
 * LISTEN on one dedicated client per storage, reconnected after a drop.
 * Typed structurally: the adapter never imports `pg` (an optional peer).
 */
import { createHash } from 'node:crypto';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Logger } from '@blawby/event-bus';

/** The parts of a `pg.Pool`, `pg.Client` or `pg.PoolClient` used here. */
interface PgQueryable {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<unknown>;
}

/** A `pg.Pool`: its options, the client class it creates connections with, and checkout. */
interface PgPool extends PgQueryable {
  options: Record<string, unknown>;
  Client: new (config: Record<string, unknown>) => PgClient;
  totalCount: number;
  connect(): Promise<PgPoolClient>;
}

/** A client checked out of a `pg.Pool`. */
interface PgPoolClient extends PgQueryable {
  /** Back to the pool; with an error, the pool discards the client. */
  release(err?: Error | boolean): void;
  once(event: 'error', fn: (err: Error) => void): unknown;
  removeListener(event: 'error', fn: (err: Error) => void): unknown;
}

/** A `pg.Client`. */
interface PgClient extends PgQueryable {
  connect(): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'notification', fn: (msg: { channel: string }) => void): unknown;
  on(event: 'error' | 'end', fn: (err?: unknown) => void): unknown;
  removeAllListeners(): unknown;
  connectionParameters?: Record<string, unknown>;
}

/** True when `client` (a drizzle `$client`) is a node-postgres pool or client. */
export function isNodePostgres(client: unknown): client is PgPool | PgClient {
  if (!client || typeof client !== 'object' || 'waitReady' in client) return false; // PGlite has `query` too
  const c = client as Record<string, unknown>;
  return typeof c.query === 'function' && typeof c.connect === 'function' && ('totalCount' in c || 'connectionParameters' in c);
}

const dialect = new PgDialect();

/**
 * Runs drizzle SQL on node-postgres, as a named prepared statement unless
 * `prepare` is false, named by a hash of its text (pg prepares a name once
 * per connection and refuses one name for two texts). Rows come back as
 * `{ rows }`, as drizzle's do. On a pool, a statement whose `signal` aborted
 * while it waited for a connection is never sent (see {@link poolQuery}).
 */
export function nodePostgresExecutor(
  client: PgPool | PgClient,
  prepare = true,
): {
  execute(query: SQL, signal?: AbortSignal): Promise<unknown>;
  text(text: string, params: unknown[], signal?: AbortSignal): Promise<unknown>;
} {
  const names = new Map<string, string>();
  const nameOf = (text: string): string => {
    let name = names.get(text);
    if (name === undefined) {
      name = `eb_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      // Statement texts are few (their values are parameters); the cap only guards against a surprise.
      if (names.size < 10_000) names.set(text, name);
    }
    return name;
  };
  const run = (text: string, params: unknown[], signal: AbortSignal | undefined) => {
    const config = prepare ? { name: nameOf(text), text, values: params } : { text, values: params };
    return 'totalCount' in client ? poolQuery(client, config, signal) : client.query(config);
  };
  return {
    execute(query: SQL, signal?: AbortSignal) {
      const { sql: text, params } = dialect.sqlToQuery(query);
      return run(text, params, signal);
    },
    text: run,
  };
}

/**
 * `pool.query`, with the checkout done here so that a statement whose
 * `signal` aborted while every connection was busy or still connecting (a
 * server that hangs) is withdrawn rather than sent once one frees up: the
 * caller was already told it failed. As `pool.query` does, a client whose
 * query failed is discarded, and an `error` event of the client during the
 * query (its connection died) is handled here.
 */
async function poolQuery(
  pool: PgPool,
  config: { name?: string; text: string; values?: unknown[] },
  signal: AbortSignal | undefined,
): Promise<unknown> {
  if (signal?.aborted) throw signal.reason;
  const client = await pool.connect();
  if (signal?.aborted) {
    client.release();
    throw signal.reason;
  }
  let failed: Error | undefined;
  const onError = (err: Error) => {
    failed = err;
  };
  client.once('error', onError);
  try {
    return await client.query(config);
  } catch (err) {
    failed ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(failed);
  }
}

/** Longest wait between two attempts to re-establish the LISTEN connection. */
const MAX_RECONNECT_MS = 5000;

/**
 * LISTENs on `channel` with a client of its own, created from the pool's (or
 * the client's) connection options: a pooled client would stay checked out
 * for good. When that connection drops, it reconnects with a growing delay
 * and calls `onReconnect` once it listens again (notifications may have been
 * missed meanwhile). Resolves once the first LISTEN is in place.
 */
export async function listenNodePostgres(
  client: PgPool | PgClient,
  channel: string,
  onNotify: () => void,
  onReconnect: () => void,
  logger: Logger,
): Promise<() => Promise<void>> {
  const make = (): PgClient =>
    'totalCount' in client
      ? new client.Client({ ...client.options })
      : new (client.constructor as new (config: Record<string, unknown>) => PgClient)({ ...client.connectionParameters });
  let stopped = false;
  let current: PgClient | null = null;
  let timer: NodeJS.Timeout | undefined;
  let delay = 100;

  /** Opens a connection and LISTENs; a first attempt that fails is not retried (the caller polls instead). */
  const open = async (first: boolean): Promise<void> => {
    const c = make();
    let listening = false;
    let dropped = false;
    const drop = (err?: unknown) => {
      if (dropped) return;
      dropped = true;
      if (current === c) current = null;
      close(c);
      if (stopped || (first && !listening)) return;
      if (listening) logger.warn({ err }, 'event-bus: LISTEN connection lost; reconnecting');
      else delay = Math.min(MAX_RECONNECT_MS, delay * 2);
      schedule();
    };
    c.on('error', drop);
    c.on('end', () => drop());
    c.on('notification', (msg) => {
      if (msg.channel === channel) onNotify();
    });
    try {
      await c.connect();
      await c.query({ text: `LISTEN "${channel}"` });
    } catch (err) {
      drop(err);
      throw err;
    }
    if (stopped) {
      drop();
      return;
    }
    listening = true;
    current = c;
    delay = 100;
  };

  const schedule = () => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      open(false).then(
        () => {
          if (!stopped) onReconnect();
        },
        () => {}, // drop() scheduled the next attempt
      );
    }, delay);
    timer.unref();
  };

  await open(true);
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    const c = current;
    current = null;
    if (c) await close(c);
  };
}

/** Ends a client whose events no longer matter; a late socket error must not become an uncaught 'error' event. */
function close(c: PgClient): Promise<void> {
  c.removeAllListeners();
  c.on('error', () => {});
  return c.end().catch(() => {});
}
