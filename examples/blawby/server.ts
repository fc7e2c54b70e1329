/**
 * The composition root: opens the database, migrates the bus's tables and
 * the app's, creates the event bus on PostgreSQL storage, registers the
 * handlers with their sinks, and builds the Fastify app.
 *
 * @example
 * ```ts
 * const blawby = await createBlawby({ outboxDir: './outbox', stripeWebhookSecret: 'whsec_...' });
 * await blawby.bus.start();
 * await blawby.app.listen({ port: 3000 });
 * // later
 * await blawby.close();
 * ```
 */
import { and, eq } from 'drizzle-orm';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { createEventBus, type DispatchOptions, type Logger, type RetryPolicy } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { buildApp } from './app';
import { catalog } from './catalog';
import { openDatabase, type AppDb } from './db/connect';
import { migrateApp } from './db/migrate';
import { organizations, stripeAccounts } from './db/schema';
import { registerHandlers, type AttemptObserver, type BlawbyBus, type OnboardingStatusLookup } from './handlers';
import { tableTracker } from './sinks/analytics';
import { fileOutbox, smtpEmailSender, type EmailSender, type SmtpEmailSenderOptions } from './sinks/email';
import { slackWebhookNotifier } from './sinks/slack';
import { offlineStripeConnect, type StripeConnect } from './stripe/connect';

/** Configuration of {@link createBlawby}. */
export interface BlawbyConfig {
  /** PostgreSQL URL; PGlite (in process) when absent. */
  databaseUrl?: string;
  /** PGlite data directory (in memory when absent). */
  dataDir?: string;
  /** PGlite in memory: where to cache an initialised empty cluster, for a faster start. */
  pgliteCacheDir?: string;
  /** PostgreSQL only: a schema of its own (created; dropped on close when `dropSchemaOnClose`). */
  pgSchema?: string;
  dropSchemaOnClose?: boolean;
  /** Where the file outbox writes `.eml` files (used unless `smtp` is given). */
  outboxDir: string;
  /** Send real email over SMTP instead of the file outbox. */
  smtp?: SmtpEmailSenderOptions;
  /** Slack incoming-webhook URLs per channel (`#signups`, `#alerts`, `#sales`, or `default`). */
  slackUrls?: Record<string, string>;
  stripeWebhookSecret: string;
  stripe?: StripeConnect;
  /** Delay of the onboarding reminder (default 24 h). */
  reminderDelayMs?: number;
  appUrl?: string;
  retry?: RetryPolicy;
  dispatch?: DispatchOptions;
  /** The bus's logger. */
  logger?: Logger;
  /** Fastify's logger option. */
  httpLogger?: FastifyServerOptions['logger'];
  /** Told about every handler attempt. */
  observe?: AttemptObserver;
  /** A request slower than this publishes `system.performance_degraded` (default 2000 ms). */
  slowRequestMs?: number;
  environment?: string;
}

/** A running Blawby backend (not listening yet; the bus not started). */
export interface Blawby {
  app: FastifyInstance;
  bus: BlawbyBus;
  db: AppDb;
  email: EmailSender;
  driver: 'pglite' | 'postgres';
  /** Closes the app (which stops the bus), then the email sender and the database. */
  close(): Promise<void>;
}

/** Reads a Stripe account's onboarding status from the database. */
export function accountStatusLookup(db: AppDb): OnboardingStatusLookup {
  return {
    async onboardingStatus(stripeAccountId) {
      const [row] = await db
        .select({ completedAt: stripeAccounts.onboardingCompletedAt, name: organizations.name })
        .from(stripeAccounts)
        .innerJoin(organizations, and(eq(organizations.id, stripeAccounts.organizationId)))
        .where(eq(stripeAccounts.id, stripeAccountId));
      return row ? { completed: row.completedAt !== null, organizationName: row.name } : null;
    },
  };
}

/** Creates the Blawby backend. */
export async function createBlawby(config: BlawbyConfig): Promise<Blawby> {
  const database = await openDatabase({
    ...(config.databaseUrl ? { url: config.databaseUrl } : {}),
    ...(config.dataDir ? { dataDir: config.dataDir } : {}),
    ...(config.pgliteCacheDir ? { pgliteCacheDir: config.pgliteCacheDir } : {}),
    ...(config.pgSchema ? { schema: config.pgSchema } : {}),
    ...(config.dropSchemaOnClose ? { dropSchemaOnClose: true } : {}),
  });
  const { db } = database;
  try {
    const tables = config.pgSchema ? { schema: config.pgSchema } : {};
    await migrate(db, tables);
    await migrateApp(db);
    const bus: BlawbyBus = createEventBus({
      catalog,
      storage: postgresStorage({ db, ...tables }),
      source: 'api',
      ...(config.environment ? { environment: config.environment } : {}),
      ...(config.logger ? { logger: config.logger } : {}),
      ...(config.retry ? { retry: config.retry } : {}),
      ...(config.dispatch ? { dispatch: config.dispatch } : {}),
    });
    const email = config.smtp ? smtpEmailSender(config.smtp) : fileOutbox({ dir: config.outboxDir });
    const appUrl = config.appUrl ?? 'http://localhost:3000';
    registerHandlers(bus, {
      email,
      accounts: accountStatusLookup(db),
      tracker: tableTracker(db),
      notifier: slackWebhookNotifier({ urls: config.slackUrls ?? {} }),
      appUrl,
      ...(config.reminderDelayMs !== undefined ? { reminderDelayMs: config.reminderDelayMs } : {}),
      ...(config.observe ? { observe: config.observe } : {}),
    });
    const app = await buildApp({
      bus,
      db,
      email,
      stripe: config.stripe ?? offlineStripeConnect(),
      stripeWebhookSecret: config.stripeWebhookSecret,
      appUrl,
      ...(config.httpLogger !== undefined ? { logger: config.httpLogger } : {}),
      ...(config.slowRequestMs !== undefined ? { slowRequestMs: config.slowRequestMs } : {}),
    });
    let closed: Promise<void> | undefined;
    return {
      app,
      bus,
      db,
      email,
      driver: database.driver,
      close() {
        closed ??= (async () => {
          try {
            await app.close();
            await bus.stop();
            await email.close?.();
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
