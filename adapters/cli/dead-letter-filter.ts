/**
 * The dead-letter filter the `dlq` commands share (`--subscriber`, `--type`,
 * `--event-id`), its count for `--dry-run`, and finding one dead letter by id.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { DeadLetter, DeadLetterFilter } from '@blawby/event-bus';
import type { CommandContext, OpenedBus, OptionSpec } from './command';
import { usageError } from './cli-error';
import { flagOption, stringOption } from './options';
import { queryRows } from './sql-rows';

/** The filter options. */
export const FILTER_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  subscriber: { type: 'string', value: '<name>', description: 'Only dead letters of this subscriber.' },
  type: { type: 'string', value: '<event type>', description: 'Only dead letters of events of this type.' },
  'event-id': { type: 'string', value: '<id>', description: 'Only dead letters of this event.' },
};

/** The filter the options give (no limit). */
export function filterOf(ctx: CommandContext): Omit<DeadLetterFilter, 'limit'> {
  const filter: Omit<DeadLetterFilter, 'limit'> = {};
  const subscriber = stringOption(ctx, 'subscriber');
  const eventType = stringOption(ctx, 'type');
  const eventId = stringOption(ctx, 'event-id');
  if (subscriber !== undefined) filter.subscriber = subscriber;
  if (eventType !== undefined) filter.eventType = eventType;
  if (eventId !== undefined) filter.eventId = eventId;
  return filter;
}

/** The target of `redrive`/`discard`: one id, or a filter (refused empty unless `--all`, so no typo empties the queue). */
export function targetOf(ctx: CommandContext): { id: string } | { filter: Omit<DeadLetterFilter, 'limit'> } {
  const filter = filterOf(ctx);
  const id = ctx.positionals[0];
  const hasFilter = Object.keys(filter).length > 0;
  if (id !== undefined) {
    if (hasFilter || flagOption(ctx, 'all')) throw usageError('give a dead letter id or filters (or --all), not both');
    return { id };
  }
  if (!hasFilter && !flagOption(ctx, 'all')) {
    throw usageError('no dead letters chosen', 'give an id, filters (--subscriber, --type, --event-id), or --all for every one');
  }
  return { filter };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function whereOf(filter: Omit<DeadLetterFilter, 'limit'>): SQL {
  const parts: SQL[] = [sql`true`];
  if (filter.subscriber !== undefined) parts.push(sql`dl.subscriber = ${filter.subscriber}`);
  if (filter.eventType !== undefined) parts.push(sql`e.event_type = ${filter.eventType}`);
  if (filter.eventId !== undefined) parts.push(sql`e.event_id = ${filter.eventId}`);
  return sql.join(parts, sql` AND `);
}

/**
 * How many dead letters match, and how many of those belong to a subscriber
 * the database still knows (only those can be redriven).
 */
export async function countDeadLetters(
  opened: OpenedBus,
  filter: Omit<DeadLetterFilter, 'limit'>,
): Promise<{ total: number; redrivable: number }> {
  const t = opened.storage.tables;
  const rows = await queryRows(
    opened.connection.db,
    sql`SELECT count(*)::int AS total,
      count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ${sql.raw(t.subscribers)} s WHERE s.name = dl.subscriber))::int AS redrivable
    FROM ${sql.raw(t.deadLetters)} dl JOIN ${sql.raw(t.events)} e ON e.id = dl.event_id
    WHERE ${whereOf(filter)}`,
  );
  return { total: Number(rows[0]?.total ?? 0), redrivable: Number(rows[0]?.redrivable ?? 0) };
}

/** The dead letter with this id, and whether its subscriber is still registered; `undefined` when there is none. */
export async function findDeadLetter(
  opened: OpenedBus,
  id: string,
): Promise<{ deadLetter: DeadLetter; registered: boolean } | undefined> {
  if (!UUID.test(id)) return undefined;
  const t = opened.storage.tables;
  const rows = await queryRows(
    opened.connection.db,
    sql`SELECT dl.subscriber, e.event_id,
      EXISTS (SELECT 1 FROM ${sql.raw(t.subscribers)} s WHERE s.name = dl.subscriber) AS registered
    FROM ${sql.raw(t.deadLetters)} dl JOIN ${sql.raw(t.events)} e ON e.id = dl.event_id WHERE dl.id = ${id}::uuid`,
  );
  const row = rows[0];
  if (!row) return undefined;
  const list = await opened.bus.deadLetters.list({
    subscriber: String(row.subscriber),
    eventId: String(row.event_id),
    limit: 1000,
  });
  const deadLetter = list.find((d) => d.id === id);
  return deadLetter ? { deadLetter, registered: row.registered === true } : undefined;
}
