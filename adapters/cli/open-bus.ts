/**
 * A bus for one command: the PostgreSQL storage over the connection, the
 * catalog from `--catalog` (or a stand-in holding just the event types named
 * on the command line), never started (the CLI runs no subscriber).
 */
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { createEventBus, defineCatalog, defineEvent, isValidEventName, matchesPattern, silentLogger } from '@blawby/event-bus';
import type { Catalog } from '@blawby/event-bus';
import { postgresStorage, type PostgresStorage } from '@blawby/event-bus/postgres';
import { CliError, usageError } from './cli-error';
import type { OpenedBus } from './command';
import type { Connection } from './connect';
import { ExitCode } from './exit-codes';
import { queryRows } from './sql-rows';

/** Where the tables are. */
export interface TablePlacement {
  schema?: string;
  tablePrefix?: string;
}

/**
 * The event types a `--type` list names: exact types, or with a catalog also
 * `domain.*` and `*` patterns. A type the catalog lacks is a usage error.
 */
export function resolveEventTypes(catalog: Catalog | undefined, given: readonly string[]): string[] {
  const out = new Set<string>();
  for (const item of given) {
    const pattern = item === '*' || item.endsWith('.*');
    if (!catalog) {
      if (pattern) throw usageError(`--type ${item}: patterns need the catalog`, 'pass --catalog <module>, or name exact types');
      if (!isValidEventName(item)) throw usageError(`--type ${item} is not an event type name (domain.object_verb)`);
      out.add(item);
      continue;
    }
    const matched = Object.keys(catalog).filter((t) => (pattern ? matchesPattern(item, t) : t === item));
    if (matched.length === 0) {
      throw usageError(`unknown event type "${item}": it is not in the catalog`);
    }
    for (const t of matched) out.add(t);
  }
  return [...out];
}

/** A catalog that only names `types` (their payloads are never checked: the CLI publishes nothing). */
function standInCatalog(types: readonly string[]): Catalog {
  const loose = z.looseObject({});
  return defineCatalog(Object.fromEntries(types.map((t) => [t, defineEvent({ version: '0.0.0', payload: loose })])));
}

/** Fails with exit code 3 when the bus's events table is not there. */
async function assertMigrated(connection: Connection, storage: PostgresStorage): Promise<void> {
  const rows = await queryRows(connection.db, sql`SELECT to_regclass(${storage.tables.events})::text AS t`);
  if (rows[0]?.t == null) {
    throw new CliError(
      ExitCode.DATABASE,
      `the event bus tables are not in ${connection.target} (looked for ${storage.tables.events})`,
      'run `event-bus migrate` first (with the same --schema and --table-prefix)',
    );
  }
}

/** Opens the bus (see the module comment). */
export async function openBus(
  connection: Connection,
  placement: TablePlacement,
  catalog: Catalog | undefined,
  eventTypes: readonly string[] = [],
): Promise<OpenedBus> {
  const storage = postgresStorage({ db: connection.db, ...placement, logger: silentLogger });
  await assertMigrated(connection, storage);
  const bus = createEventBus({ catalog: catalog ?? standInCatalog(eventTypes), storage, logger: silentLogger });
  return { bus, storage, connection, catalog };
}
