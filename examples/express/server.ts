/**
 * Composition root of the Express variant: the same database, bus tables,
 * catalog and handlers as the Fastify backend (`../blawby/server.ts`), served
 * by Express with `@blawby/event-bus/express`.
 *
 * @example
 * ```ts
 * const blawby = await createExpressBlawby({ outboxDir: './outbox' });
 * await blawby.bus.start();
 * const url = await blawby.listen(3000);
 * // later
 * await blawby.close();
 * ```
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createEventBus } from '@blawby/event-bus';
import type { DispatchOptions, Logger, RetryPolicy } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { catalog } from '../blawby/catalog';
import { openDatabase, type AppDb } from '../blawby/db/connect';
import { migrateApp } from '../blawby/db/migrate';
import { registerHandlers, type BlawbyBus } from '../blawby/handlers';
import { accountStatusLookup } from '../blawby/server';
import { tableTracker } from '../blawby/sinks/analytics';
import { fileOutbox } from '../blawby/sinks/email';
import { slackWebhookNotifier } from '../blawby/sinks/slack';
import { buildExpressApp } from './app';
import type { ExpressApp } from './app';

/** Configuration of {@link createExpressBlawby}. */
export interface ExpressBlawbyConfig {
  /** PostgreSQL URL; PGlite (in process) when absent. */
  databaseUrl?: string;
  /** PostgreSQL only: a schema of its own, dropped on close. */
  pgSchema?: string;
  /** Where the file outbox writes `.eml` files. */
  outboxDir: string;
  /** Slack incoming-webhook URLs per channel. */
  slackUrls?: Record<string, string>;
  retry?: RetryPolicy;
  dispatch?: DispatchOptions;
  logger?: Logger;
}

/** The Express variant, built (not listening; the bus not started). */
export interface ExpressBlawby extends ExpressApp {
  bus: BlawbyBus;
  db: AppDb;
  /** Listens on `port` (0 for a free one) on 127.0.0.1; resolves with the base URL. */
  listen(port?: number): Promise<string>;
  /** Closes the server, stops the bus (through the events router), closes the database. */
  close(): Promise<void>;
}

/** Creates the Express variant of the Blawby backend. */
export async function createExpressBlawby(config: ExpressBlawbyConfig): Promise<ExpressBlawby> {
  const database = await openDatabase({
    ...(config.databaseUrl ? { url: config.databaseUrl } : {}),
    ...(config.databaseUrl && config.pgSchema ? { schema: config.pgSchema, dropSchemaOnClose: true } : {}),
  });
  const { db } = database;
  try {
    const tables = config.databaseUrl && config.pgSchema ? { schema: config.pgSchema } : {};
    await migrate(db, tables);
    await migrateApp(db);
    const bus: BlawbyBus = createEventBus({
      catalog,
      storage: postgresStorage({ db, ...tables }),
      source: 'api',
      ...(config.logger ? { logger: config.logger } : {}),
      ...(config.retry ? { retry: config.retry } : {}),
      ...(config.dispatch ? { dispatch: config.dispatch } : {}),
    });
    const email = fileOutbox({ dir: config.outboxDir });
    registerHandlers(bus, {
      email,
      accounts: accountStatusLookup(db),
      tracker: tableTracker(db),
      notifier: slackWebhookNotifier({ urls: config.slackUrls ?? {} }),
    });
    const { app, events } = buildExpressApp({ bus, db, ...(config.logger ? { logger: config.logger } : {}) });

    let server: Server | undefined;
    let closed: Promise<void> | undefined;
    return {
      app,
      events,
      bus,
      db,
      listen(port = 0) {
        return new Promise((resolve, reject) => {
          const listening = app.listen(port, '127.0.0.1', (err?: Error) => {
            if (err) return reject(err);
            server = listening;
            resolve(`http://127.0.0.1:${(listening.address() as AddressInfo).port}`);
          });
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
