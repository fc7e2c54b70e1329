/** Reading events back from rows: the columns selected and the envelope built from them. */
import { sql, type SQL } from 'drizzle-orm';
import type { BaseEvent } from '@blawby/event-bus';
import type { Row } from './driver';

/**
 * The columns of an event, selected from alias `e`. Times come back as epoch
 * milliseconds (a float8), so neither driver's date parsing matters. A
 * statement that reports `processed` selects it as a column of that name
 * (derived: see `statements/common.ts`); elsewhere it reads as false.
 */
export const EVENT_COLUMNS: SQL = sql.raw(
  `e.event_id, e.event_type, e.event_version, e.actor, e.actor_type, e.organization_id, e.payload, e.metadata,
   e.retry_count, round(extract(epoch from e.created_at) * 1000)::float8 AS ts`,
);

/** The envelope of a row selected with {@link EVENT_COLUMNS}. */
export function eventOfRow(row: Row): BaseEvent {
  const event: BaseEvent = {
    eventId: row.event_id as string,
    eventType: row.event_type as string,
    eventVersion: row.event_version as string,
    timestamp: new Date(Number(row.ts)),
    payload: (row.payload ?? {}) as Record<string, unknown>,
    metadata: (row.metadata ?? {}) as BaseEvent['metadata'],
    processed: row.processed === true,
    retryCount: Number(row.retry_count ?? 0),
  };
  if (row.actor != null) event.actor = row.actor as string;
  if (row.actor_type != null) event.actorType = row.actor_type as string;
  if (row.organization_id != null) event.organizationId = row.organization_id as string;
  return event;
}

/** The SQL test "pattern list `patterns` matches event type `type`" (same rules as `matchesPattern`). */
export function patternMatch(patterns: string, type: string): SQL {
  return sql.raw(patternMatchText(patterns, type));
}

/** {@link patternMatch} as SQL text, for statement parts assembled as strings. */
export function patternMatchText(patterns: string, type: string): string {
  return `EXISTS (SELECT 1 FROM unnest(${patterns}) AS p(v) WHERE p.v = '*' OR p.v = ${type}
      OR (right(p.v, 2) = '.*' AND left(${type}, length(p.v) - 1) = left(p.v, -1)))`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a UUID string (ids given to the storage by users are checked before they reach a `::uuid` cast). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
