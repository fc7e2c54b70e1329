/**
 * The little this adapter needs from a drizzle database, and the differences
 * between its drivers (postgres.js, node-postgres and PGlite) smoothed over:
 * result shapes, connection errors, prepared statements and LISTEN.
 */
import { sql, type SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { EventBusError, type Logger } from '@blawby/event-bus';
import { NoAnswerError } from './deadline';
import { isNodePostgres, listenNodePostgres, nodePostgresExecutor } from './node-postgres';

/**
 * A drizzle-orm PostgreSQL database or transaction (`drizzle-orm/postgres-js`,
 * `drizzle-orm/node-postgres`, `drizzle-orm/pglite`, ...). Typed structurally
 * so that any drizzle version with `execute` and `transaction` fits.
 */
export interface DrizzleDatabase {
  /** Runs one SQL statement (drizzle's `db.execute(sql\`...\`)`). */
  execute(query: SQL): PromiseLike<unknown>;
  /** Runs `fn` in a transaction (drizzle's `db.transaction`). */
  transaction<T>(fn: (tx: any) => Promise<T>): Promise<T>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The driver's client, set by drizzle's constructors; used for LISTEN. */
  $client?: unknown;
}

/**
 * Something that can run a query: the database or a transaction of it.
 * `signal` aborts when the caller stopped waiting; an executor may then
 * withdraw a statement it has not sent yet (drizzle's own ignore it).
 */
export interface Executor {
  execute(query: SQL, signal?: AbortSignal): PromiseLike<unknown>;
  /**
   * Runs SQL text with numbered parameters as the driver's own prepared
   * statement, without drizzle; absent on executors that only run drizzle
   * SQL (see {@link rowsOfText}).
   */
  text?(text: string, params: unknown[], signal?: AbortSignal): PromiseLike<unknown>;
}

interface PostgresJsClient {
  unsafe(query: string, params: unknown[], options: { prepare: boolean }): PromiseLike<unknown>;
  options?: { prepare?: boolean };
}

const dialect = new PgDialect();

/**
 * The executor for the storage's own statements on `db`. On postgres.js and
 * node-postgres it runs them as named prepared statements (drizzle's
 * `execute` sends unnamed ones, so the server would plan the storage's CTEs
 * on every call), unless `prepare` is false or a postgres.js client was
 * created with `prepare: false` (e.g. behind PgBouncer). The same client
 * runs them, so results keep their shapes (the storage reads times as epoch
 * numbers, so date parsers do not matter). On PGlite, see `eventLoopExecutor`.
 * On a node-postgres pool, a statement whose caller stopped waiting before it
 * got a connection is withdrawn. postgres.js offers no safe way to do that:
 * `cancel()` on a query a connecting connection holds leaves that connection
 * unusable, and on a query already sent it opens a cancel connection whose
 * failure is an unhandled rejection inside the driver.
 */
export function storageExecutor(db: DrizzleDatabase, prepare = true): Executor {
  if (isPglite(db)) return eventLoopExecutor(db);
  if (isNodePostgres(db.$client)) return nodePostgresExecutor(db.$client, prepare);
  if (!preparesOn(db, prepare)) return db;
  return preparedPostgresJs(db.$client as PostgresJsClient);
}

/** Statements on a postgres.js `Sql` (or a transaction's) as prepared statements, without drizzle. */
function preparedPostgresJs(client: PostgresJsClient): Executor {
  const unsafe = client.unsafe.bind(client);
  return {
    execute(query: SQL) {
      const { sql: text, params } = dialect.sqlToQuery(query);
      return unsafe(text, params, { prepare: true });
    },
    text(text: string, params: unknown[]) {
      return unsafe(text, params, { prepare: true });
    },
  };
}

/** Whether {@link storageExecutor} prepares statements on `db` (postgres.js or node-postgres, `prepare` on, the client not created with `prepare: false`). */
export function preparesOn(db: DrizzleDatabase, prepare: boolean): boolean {
  if (!prepare || isPglite(db)) return false;
  if (isNodePostgres(db.$client)) return true;
  return isPostgresJs(db.$client) && db.$client.options?.prepare !== false;
}

/** A postgres.js `Sql` (or a transaction's): a function with `unsafe`; PGlite and node-postgres are objects. */
function isPostgresJs(client: unknown): client is PostgresJsClient {
  return typeof client === 'function' && typeof (client as Partial<PostgresJsClient>).unsafe === 'function';
}

const txExecutors = new WeakMap<object, Executor>();

/**
 * Runs the storage's statements in a caller's drizzle transaction `tx` on its
 * driver connection directly, as prepared statements when `prepare` (see
 * {@link preparesOn}). Through drizzle's `execute` they would go unnamed:
 * postgres.js then first asks the server for the parameter types (one more
 * round trip), and the server plans each one anew. Any other `tx` (PGlite, a
 * wrapper) runs through drizzle.
 */
export function transactionExecutor(tx: Executor, prepare: boolean): Executor {
  const client = (tx as { session?: { client?: unknown } }).session?.client;
  if (!prepare || !client || (typeof client !== 'function' && typeof client !== 'object')) return tx;
  const known = txExecutors.get(client);
  if (known) return known;
  let executor: Executor;
  if (isNodePostgres(client)) executor = nodePostgresExecutor(client, true);
  else if (isPostgresJs(client)) executor = preparedPostgresJs(client);
  else return tx;
  // node-postgres hands the same pooled client to many transactions: its executor knows the names it prepared.
  txExecutors.set(client, executor);
  return executor;
}

/** True when `db` runs on PGlite (in process: no network between it and the storage). */
export function isPglite(db: DrizzleDatabase): boolean {
  const client = db.$client;
  return typeof client === 'object' && client !== null && 'waitReady' in client;
}

/**
 * Runs statements on an in-process database (PGlite) and settles each one
 * only after a turn of the event loop. PGlite runs a query in WebAssembly and
 * resolves it in microtasks, never returning to the event loop; so a chain of
 * storage calls (a dispatcher claiming again and again, two buses over one
 * instance) would starve every timer and `setImmediate` of the process: the
 * storage's coalesced completions and publishes, which are sent from a
 * `setImmediate`, would never be sent. A socket driver's round trip always
 * gives the event loop that turn.
 */
function eventLoopExecutor(db: DrizzleDatabase): Executor {
  return {
    async execute(query: SQL) {
      try {
        return await db.execute(query);
      } finally {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    },
  };
}

/** A result row as the drivers return it. */
export type Row = Record<string, unknown>;

/** Runs `query` and returns its rows, whichever driver (an array from postgres.js, `{ rows }` from node-postgres and PGlite). */
export async function rowsOf(executor: Executor, query: SQL, signal?: AbortSignal): Promise<Row[]> {
  return resultRows(await executor.execute(query, signal));
}

/** The rows of a driver's result: an array from postgres.js, `{ rows }` from node-postgres and PGlite. */
function resultRows(result: unknown): Row[] {
  if (Array.isArray(result)) return result as Row[];
  const rows = (result as { rows?: unknown } | null)?.rows;
  return Array.isArray(rows) ? (rows as Row[]) : [];
}

/**
 * Runs SQL text with numbered parameters (`$1`...) and returns its rows:
 * directly on an executor that can, else as drizzle SQL (a caller's
 * transaction, PGlite), each placeholder bound to its parameter.
 */
export async function rowsOfText(executor: Executor, text: string, params: unknown[], signal?: AbortSignal): Promise<Row[]> {
  return resultRows(executor.text ? await executor.text(text, params, signal) : await executor.execute(sqlOfText(text, params), signal));
}

/** Placeholders of SQL text; the text of this adapter's statements has no `$` elsewhere. */
const PLACEHOLDER = /\$(\d+)/g;
const textPieces = new Map<string, { strings: string[]; order: number[] }>();

/** Drizzle SQL for text with numbered parameters (a parameter used twice is bound twice). */
function sqlOfText(text: string, params: unknown[]): SQL {
  let pieces = textPieces.get(text);
  if (pieces === undefined) {
    const strings: string[] = [];
    const order: number[] = [];
    let last = 0;
    for (const m of text.matchAll(PLACEHOLDER)) {
      strings.push(text.slice(last, m.index));
      order.push(Number(m[1]) - 1);
      last = m.index + m[0].length;
    }
    strings.push(text.slice(last));
    pieces = { strings, order };
    // Texts are a few per storage; the cap only guards against a surprise.
    if (textPieces.size < 1000) textPieces.set(text, pieces);
  }
  const strings = Object.assign([...pieces.strings], { raw: pieces.strings }) as unknown as TemplateStringsArray;
  return sql(strings, ...pieces.order.map((i) => params[i]));
}

// Connection-level failures: the server is down, restarting, or unreachable.
const NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '08007']);
/**
 * Messages without a code: PGlite closed; node-postgres's lost or refused
 * connections (`Connection terminated unexpectedly`, a client not queryable
 * after a connection error, a pool's connect timeout, a pool already ended).
 */
const MESSAGES =
  /PGlite is closed|^Connection terminated|is not queryable|timeout exceeded when trying to connect|Cannot use a pool after calling end/i;

/** `err` and its causes, outermost first (drizzle and the drivers wrap each other's errors), six at most. */
function* causesOf(err: unknown): Generator<{ code?: unknown; message?: unknown }> {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    yield e as { code?: unknown; message?: unknown };
  }
}

/** True when `err` (or one of its causes) says the database could not be reached. */
export function isConnectionError(err: unknown): boolean {
  for (const { code, message } of causesOf(err)) {
    if (typeof code === 'string' && (NODE_CODES.has(code) || SQLSTATES.has(code))) return true;
    if (typeof message === 'string' && MESSAGES.test(message)) return true;
  }
  return false;
}

/** SQLSTATEs of a statement naming a table or column the schema lacks: `migrate()` has not run (or not this version's). */
const NOT_MIGRATED = new Set(['42P01', '42703']);

/**
 * A `STORAGE_REJECTED` that says to run `migrate()` when a statement of the
 * storage's own named a table or column the schema lacks; `undefined`
 * otherwise.
 */
export function notMigratedError(err: unknown, what: string): EventBusError | undefined {
  for (const { code } of causesOf(err)) {
    if (typeof code === 'string' && NOT_MIGRATED.has(code)) {
      return new EventBusError(
        'STORAGE_REJECTED',
        `The bus's tables are missing or older than this version of @blawby/event-bus (${what}, code ${code}): run migrate() first`,
        { cause: err },
      );
    }
  }
  return undefined;
}

/**
 * Turns a connection failure into `EventBusError('STORAGE_UNAVAILABLE')`
 * (keeping the driver's error, or the {@link NoAnswerError}, as `cause`);
 * other errors pass unchanged.
 */
export function wrapError(err: unknown, what: string): unknown {
  if (EventBusError.is(err)) return err;
  if (err instanceof NoAnswerError) {
    return new EventBusError(
      'STORAGE_UNAVAILABLE',
      `PostgreSQL did not answer within ${err.timeoutMs} ms (${what}); the operation may still complete`,
      { cause: err },
    );
  }
  if (isConnectionError(err)) {
    return new EventBusError('STORAGE_UNAVAILABLE', `PostgreSQL is unavailable (${what})`, { cause: err });
  }
  return err;
}

/** Stops a LISTEN. */
export type Unlisten = () => Promise<void>;

/**
 * LISTENs on `channel` with the client behind `db`: postgres.js's `sql.listen`
 * (one dedicated connection, re-established after a drop), a dedicated
 * client for node-postgres (see `node-postgres.ts`), or PGlite's `listen`.
 * `onReconnect` runs after the LISTEN was re-established. Resolves to `null`
 * when the client cannot listen.
 */
export async function listen(
  db: DrizzleDatabase,
  channel: string,
  onNotify: () => void,
  onReconnect: () => void,
  logger: Logger,
): Promise<Unlisten | null> {
  if (isNodePostgres(db.$client)) return listenNodePostgres(db.$client, channel, onNotify, onReconnect, logger);
  const client = db.$client as
    | {
        listen?: (channel: string, fn: (payload: string) => void, onlisten?: () => void) => Promise<unknown>;
        waitReady?: unknown;
      }
    | undefined;
  if (!client || typeof client.listen !== 'function') return null;
  if (isPglite(db)) {
    // PGlite: listen() resolves to an unsubscribe function.
    const unsubscribe = (await client.listen(channel, () => onNotify())) as () => Promise<void>;
    return async () => {
      await unsubscribe();
    };
  }
  // postgres.js: `onlisten` runs on the first LISTEN and after every reconnect,
  // when notifications may have been missed.
  let first = true;
  const handle = (await client.listen(
    channel,
    () => onNotify(),
    () => {
      if (first) first = false;
      else onReconnect();
    },
  )) as { unlisten?: () => Promise<void> };
  return async () => {
    await handle.unlisten?.();
  };
}
