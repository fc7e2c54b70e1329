/**
 * Composition root of the Hono variant: a node-postgres pool, the bus on
 * PostgreSQL storage joined to the unit of work (`currentTransaction`), the
 * shared Blawby catalog and handlers, and the Hono app on `@hono/node-server`.
 *
 * @example
 * ```ts
 * const blawby = await createHonoBlawby({ databaseUrl, outboxDir: './outbox', stripeWebhookSecret: 'whsec_...' });
 * await blawby.bus.start();
 * const url = await blawby.listen(3000);
 * // later
 * await blawby.close();
 * ```
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createEventBus, type DispatchOptions, type Logger, type RetryPolicy } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { catalog } from '../blawby/catalog';
import type { AppDb } from '../blawby/db/connect';
import { migrateApp } from '../blawby/db/migrate';
import { registerHandlers, type BlawbyBus } from '../blawby/handlers';
import { accountStatusLookup } from '../blawby/server';
import { tableTracker } from '../blawby/sinks/analytics';
import { fileOutbox } from '../blawby/sinks/email';
import { slackWebhookNotifier } from '../blawby/sinks/slack';
import { buildHonoApp, type HonoApp } from './app';
import { openNodePg } from './database';
import { UnitOfWork } from './unit-of-work';

/** Configuration of {@link createHonoBlawby}. */
export interface HonoBlawbyConfig {
  /** PostgreSQL URL (node-postgres needs a server). */
  databaseUrl: string;
  /** A schema of its own for every table, dropped on close (tests). */
  pgSchema?: string;
  /** Where the file outbox writes `.eml` files. */
  outboxDir: string;
  /** Slack incoming-webhook URLs per channel. */
  slackUrls?: Record<string, string>;
  stripeWebhookSecret: string;
  retry?: RetryPolicy;
  dispatch?: DispatchOptions;
  logger?: Logger;
}

/** The Hono variant, built (not listening; the bus not started). */
export interface HonoBlawby extends HonoApp {
  bus: BlawbyBus;
  db: AppDb;
  uow: UnitOfWork;
  /** Listens on `port` (0 for a free one) on 127.0.0.1; resolves with the base URL. */
  listen(port?: number): Promise<string>;
  /** Closes the server, stops the bus (through the events router), ends the pool. */
  close(): Promise<void>;
}

/** Creates the Hono variant of the Blawby backend. */
export async function createHonoBlawby(config: HonoBlawbyConfig): Promise<HonoBlawby> {
  const database = await openNodePg(config.databaseUrl, config.pgSchema);
  const { db } = database;
  try {
    const tables = config.pgSchema ? { schema: config.pgSchema } : {};
    await migrate(db, tables);
    await migrateApp(db);
    const uow = new UnitOfWork(db);
    const bus: BlawbyBus = createEventBus({
      catalog,
      // A publish without `tx` inside a unit of work joins its transaction.
      storage: postgresStorage({ db, ...tables, currentTransaction: () => uow.current() }),
      source: 'api',
      ...(config.logger ? { logger: config.logger } : {}),
      ...(config.retry ? { retry: config.retry } : {}),
      ...(config.dispatch ? { dispatch: config.dispatch } : {}),
    });
    registerHandlers(bus, {
      email: fileOutbox({ dir: config.outboxDir }),
      accounts: accountStatusLookup(db),
      tracker: tableTracker(db),
      notifier: slackWebhookNotifier({ urls: config.slackUrls ?? {} }),
    });
    const { app, events } = buildHonoApp({
      bus,
      db,
      uow,
      stripeWebhookSecret: config.stripeWebhookSecret,
      ...(config.logger ? { logger: config.logger } : {}),
    });

    let server: ServerType | undefined;
    let closed: Promise<void> | undefined;
    return {
      app,
      events,
      bus,
      db,
      uow,
      listen(port = 0) {
        return new Promise((resolve) => {
          server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info: AddressInfo) =>
            resolve(`http://127.0.0.1:${info.port}`),
          );
        });
      },
      close() {
        closed ??= (async () => {
          try {
            if (server) {
              const open = server;
              await new Promise<void>((resolve, reject) => open.close((err) => (err ? reject(err) : resolve())));
            }
            await events.close();
          } finally {
            await database.close();
          }
        })();
        return closed;
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}
