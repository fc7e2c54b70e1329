/**
 * Where the tables live: the schema and table prefix a storage was given,
 * turned into quoted SQL identifiers once.
 */
import { createHash } from 'node:crypto';
import { InvalidOptionError } from '@blawby/event-bus';

/** Options that place the tables: shared by {@link postgresStorage}, `migrate` and the table definitions. */
export interface TableOptions {
  /** PostgreSQL schema of the tables (default `'public'`). */
  schema?: string;
  /** Prefix of every table name (default `''`, so the events table is `events` as in the seed). */
  tablePrefix?: string;
}

/** Quoted, schema-qualified names of every table and the notification channel. */
export interface TableNames {
  schema: string;
  prefix: string;
  /** Quoted schema, e.g. `"public"`. */
  qSchema: string;
  events: string;
  subscribers: string;
  deliveries: string;
  deadLetters: string;
  /** Batches of the log handed to an owner under one lease (see `statements/claim.ts`). */
  ranges: string;
  /** One row: where the first subscribers start reading when none is registered. */
  state: string;
  /** The outbox relay's lease and cursor (one row per relay). */
  relays: string;
  /** Events the relay's cursor passed before their `deliverAt`, sent when due. */
  relayScheduled: string;
  /** Storages listening for work notices, each until its row expires (a publish notifies only while one is). */
  listeners: string;
  eventSubscriptions: string;
  migrations: string;
  /** Index name prefix (index names are per schema). */
  indexPrefix: string;
  /** LISTEN/NOTIFY channel (empty when the storage was created with `notify: false`). */
  channel: string;
  /** Key of the advisory lock taken by `migrate`. */
  lockKey: number;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Validates the options and builds the names. */
export function tableNames(options: TableOptions = {}): TableNames {
  const schema = options.schema ?? 'public';
  const prefix = options.tablePrefix ?? '';
  if (!IDENTIFIER.test(schema) || schema.length > 50) {
    throw new InvalidOptionError('schema', 'must be a plain SQL identifier (letters, digits, underscores)');
  }
  if (prefix !== '' && (!/^[A-Za-z0-9_]*$/.test(prefix) || prefix.length > 30)) {
    throw new InvalidOptionError('tablePrefix', 'must contain only letters, digits and underscores (30 at most)');
  }
  const q = (name: string) => `"${schema}"."${prefix}${name}"`;
  const hash = createHash('sha1').update(`${schema}.${prefix}`).digest();
  return {
    schema,
    prefix,
    qSchema: `"${schema}"`,
    events: q('events'),
    subscribers: q('event_subscribers'),
    deliveries: q('event_deliveries'),
    deadLetters: q('event_dead_letters'),
    ranges: q('event_ranges'),
    state: q('event_bus_state'),
    relays: q('event_relays'),
    relayScheduled: q('event_relay_scheduled'),
    listeners: q('event_listeners'),
    eventSubscriptions: q('event_subscriptions'),
    migrations: q('event_bus_migrations'),
    indexPrefix: prefix,
    channel: `event_bus_${hash.toString('hex').slice(0, 12)}`,
    lockKey: hash.readInt32BE(0),
  };
}
