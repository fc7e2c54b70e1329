/**
 * The unit of work, as the Blawby backend keeps it: one drizzle transaction
 * per request, found through an `AsyncLocalStorage`, so services and
 * repositories query and publish without a `tx` parameter. The bus's
 * storage joins it through `postgresStorage({ db, currentTransaction })`:
 * a `publish` inside commits and rolls back with the request's rows, and its
 * handlers run after the commit.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { MiddlewareHandler } from 'hono';
import type { AppDb, AppTx } from '../blawby/db/connect';

/** Thrown through drizzle's `transaction` to roll back a request whose handler failed. */
class RollBack extends Error {}

/** One transaction per unit of work, kept in an `AsyncLocalStorage`. */
export class UnitOfWork {
  private readonly store = new AsyncLocalStorage<{ tx: AppTx }>();

  constructor(private readonly db: AppDb) {}

  /** The ambient transaction, or `undefined` outside a unit of work (what `currentTransaction` returns). */
  current(): AppTx | undefined {
    return this.store.getStore()?.tx;
  }

  /** What repositories query with: the ambient transaction, else the pool. */
  get query(): AppDb | AppTx {
    return this.current() ?? this.db;
  }

  /** Runs `fn` in a transaction (joining the ambient one when there is one); a throw rolls it back. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.current()) return fn();
    return this.db.transaction((tx) => this.store.run({ tx }, fn));
  }

  /**
   * A Hono middleware that runs the rest of the request in a unit of work.
   * Hono hands a handler's error to `app.onError` inside `next()`, so the
   * middleware reads `c.error` to roll back: the error's response stands.
   */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      try {
        await this.run(async () => {
          await next();
          if (c.error) throw new RollBack();
        });
      } catch (err) {
        if (!(err instanceof RollBack)) throw err;
      }
    };
  }
}
