/**
 * drizzle-orm definitions of the bus's tables, matching the shipped
 * migrations, so that a user's drizzle-kit schema can include them (and
 * query them with drizzle).
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  customType,
  boolean,
  index,
  integer,
  jsonb,
  pgSchema,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';
import { tableNames, type TableOptions } from './names';

/** PostgreSQL's 64-bit transaction id (`xid8`), read and written as its decimal text. */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/** Builds the table definitions for a schema and table prefix (the same options as `migrate`). */
export function eventBusTables(options: TableOptions = {}) {
  const t = tableNames(options);
  const p = t.prefix;
  const table = (t.schema === 'public' ? pgTable : pgSchema(t.schema).table) as typeof pgTable;
  const i = (name: string) => `${p}${name}`;

  const events = table(
    `${p}events`,
    {
      id: uuid('id').primaryKey().defaultRandom(),
      eventId: varchar('event_id', { length: 100 })
        .notNull()
        .unique()
        .default(sql`gen_random_uuid()::text`),
      eventType: varchar('event_type', { length: 100 }).notNull(),
      eventVersion: varchar('event_version', { length: 20 }).notNull().default('1.0.0'),
      actor: text('actor'),
      actorType: text('actor_type'),
      organizationId: text('organization_id'),
      payload: jsonb('payload').notNull(),
      metadata: jsonb('metadata').notNull().default({}),
      processed: boolean('processed').notNull().default(false),
      retryCount: integer('retry_count').notNull().default(0),
      lastError: text('last_error'),
      processedAt: timestamp('processed_at'),
      createdAt: timestamp('created_at').notNull().defaultNow(),
      idempotencyKey: text('idempotency_key'),
      orderingKey: text('ordering_key'),
      deliverAt: timestamp('deliver_at', { withTimezone: true }),
      position: bigint('position', { mode: 'number' }).generatedAlwaysAsIdentity(),
      txId: xid8('tx_id').notNull().default(sql`pg_current_xact_id()`),
    },
    (e) => [
      index(i('idx_event_type')).on(e.eventType),
      index(i('idx_actor')).on(e.actor),
      index(i('idx_actor_type')).on(e.actorType),
      index(i('idx_organization_id')).on(e.organizationId),
      index(i('idx_created_at')).on(e.createdAt),
      index(i('idx_processed')).on(e.processed, e.createdAt),
      index(i('idx_event_type_created')).on(e.eventType, e.createdAt),
      index(i('idx_actor_events'))
        .on(e.actor, e.createdAt.desc())
        .where(sql`actor IS NOT NULL`),
      index(i('idx_org_events'))
        .on(e.organizationId, e.createdAt.desc())
        .where(sql`organization_id IS NOT NULL`),
      uniqueIndex(i('idx_events_idempotency_key'))
        .on(e.idempotencyKey)
        .where(sql`idempotency_key IS NOT NULL`),
      index(i('idx_events_log')).on(e.txId, e.position),
    ],
  );

  const eventSubscriptions = table(
    `${p}event_subscriptions`,
    {
      id: uuid('id').primaryKey().defaultRandom(),
      userId: text('user_id').notNull(),
      eventType: varchar('event_type', { length: 100 }).notNull(),
      channel: varchar('channel', { length: 50 }).notNull(),
      enabled: boolean('enabled').notNull().default(true),
      config: jsonb('config').default({}),
      createdAt: timestamp('created_at').notNull().defaultNow(),
      updatedAt: timestamp('updated_at').notNull().defaultNow(),
    },
    (s) => [unique().on(s.userId, s.eventType, s.channel)],
  );

  const subscribers = table(`${p}event_subscribers`, {
    name: text('name').primaryKey(),
    patterns: text('patterns').array().notNull(),
    registeredAt: timestamp('registered_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
    headTx: xid8('head_tx').notNull().default('0'),
    headPos: bigint('head_pos', { mode: 'number' }).notNull().default(0),
  });

  const ranges = table(
    `${p}event_ranges`,
    {
      id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
      subscriber: text('subscriber').notNull(),
      owner: text('owner').notNull(),
      token: uuid('token').notNull(),
      leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }).notNull(),
      attempts: integer('attempts').notNull(),
      loTx: xid8('lo_tx').notNull(),
      loPos: bigint('lo_pos', { mode: 'number' }).notNull(),
      hiTx: xid8('hi_tx').notNull(),
      hiPos: bigint('hi_pos', { mode: 'number' }).notNull(),
      members: bigint('members', { mode: 'number' }).array().notNull(),
      done: bigint('done', { mode: 'number' }).array().notNull().default(sql`'{}'`),
      keyed: bigint('keyed', { mode: 'number' }).array().notNull().default(sql`'{}'`),
      keys: text('keys').array().notNull().default(sql`'{}'`),
    },
    (r) => [index(i('idx_event_ranges_lease')).on(r.subscriber, r.leaseExpiresAt)],
  );

  const deliveries = table(
    `${p}event_deliveries`,
    {
      id: uuid('id').primaryKey(),
      eventId: uuid('event_id').notNull(),
      subscriber: text('subscriber').notNull(),
      orderingKey: text('ordering_key'),
      posTx: xid8('pos_tx').notNull(),
      pos: bigint('pos', { mode: 'number' }).notNull(),
      runAt: timestamp('run_at', { withTimezone: true }).notNull().defaultNow(),
      attempts: integer('attempts').notNull().default(0),
      leaseOwner: text('lease_owner'),
      leaseToken: uuid('lease_token'),
      leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
      lastError: jsonb('last_error'),
      createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    },
    (d) => [
      index(i('idx_event_deliveries_due')).on(d.subscriber, d.runAt, d.posTx, d.pos),
      index(i('idx_event_deliveries_ordering'))
        .on(d.subscriber, d.orderingKey, d.posTx, d.pos)
        .where(sql`ordering_key IS NOT NULL`),
      index(i('idx_event_deliveries_event')).on(d.eventId),
    ],
  );

  const deadLetters = table(
    `${p}event_dead_letters`,
    {
      id: uuid('id').primaryKey(),
      eventId: uuid('event_id').notNull(),
      subscriber: text('subscriber').notNull(),
      orderingKey: text('ordering_key'),
      attempts: integer('attempts').notNull(),
      error: jsonb('error').notNull(),
      failedAt: timestamp('failed_at', { withTimezone: true }).notNull().defaultNow(),
    },
    (d) => [
      index(i('idx_event_dead_letters_subscriber')).on(d.subscriber, d.failedAt),
      index(i('idx_event_dead_letters_event')).on(d.eventId),
    ],
  );

  const state = table(`${p}event_bus_state`, {
    id: integer('id').primaryKey(),
    horizonTx: xid8('horizon_tx').notNull(),
    horizonPos: bigint('horizon_pos', { mode: 'number' }).notNull(),
  });

  const relays = table(`${p}event_relays`, {
    name: text('name').primaryKey(),
    owner: text('owner'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    cursorTx: xid8('cursor_tx').notNull(),
    cursorPos: bigint('cursor_pos', { mode: 'number' }).notNull(),
    caughtUp: text('caught_up').array().notNull().default(sql`'{}'`),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  });

  const relayScheduled = table(
    `${p}event_relay_scheduled`,
    {
      relay: text('relay').notNull(),
      eventId: uuid('event_id').notNull(),
      runAt: timestamp('run_at', { withTimezone: true }).notNull(),
    },
    (r) => [
      primaryKey({ columns: [r.relay, r.eventId] }),
      index(i('idx_event_relay_scheduled_due')).on(r.relay, r.runAt),
      index(i('idx_event_relay_scheduled_event')).on(r.eventId),
    ],
  );

  const listeners = table(`${p}event_listeners`, {
    id: text('id').primaryKey(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  });

  const migrations = table(`${p}event_bus_migrations`, {
    id: integer('id').primaryKey(),
    name: text('name').notNull(),
    appliedAt: timestamp('applied_at', { withTimezone: true }).notNull().defaultNow(),
  });

  return { events, eventSubscriptions, subscribers, ranges, deliveries, deadLetters, state, relays, relayScheduled, listeners, migrations };
}

/** The tables in schema `public` without prefix (the defaults of `migrate` and `postgresStorage`). */
export const defaultTables = eventBusTables();

/** The seed's `events` table (with the bus's columns), default placement. */
export const eventsTable = defaultTables.events;
/** The seed's `event_subscriptions` table, default placement. */
export const eventSubscriptionsTable = defaultTables.eventSubscriptions;
/** Subscribers known to the bus, default placement. */
export const eventSubscribersTable = defaultTables.subscribers;
/** Leased ranges of the log, default placement. */
export const eventRangesTable = defaultTables.ranges;
/** Deliveries off the happy path (retries, scheduled, blocked keys, replays), default placement. */
export const eventDeliveriesTable = defaultTables.deliveries;
/** Dead letters, default placement. */
export const eventDeadLettersTable = defaultTables.deadLetters;
/** The outbox relay's lease and cursor, default placement. */
export const eventRelaysTable = defaultTables.relays;
/** Events waiting for their `deliverAt` before the relay sends them, default placement. */
export const eventRelayScheduledTable = defaultTables.relayScheduled;
/** Storages listening for work notices, default placement. */
export const eventListenersTable = defaultTables.listeners;
