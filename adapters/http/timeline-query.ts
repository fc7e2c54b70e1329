/**
 * The timeline route's query string, validated with zod against the bus's
 * catalog. Strict: an unknown parameter (a typo such as `eventType=`) is a 400
 * rather than a filter silently ignored. It refuses up front what no storage
 * can use, so such a query never reaches the database: NUL characters and lone
 * surrogates (PostgreSQL's `text` cannot hold them), dates outside years
 * 0001 to 9999, and cursors outside the shape every storage issues.
 */
import { z } from 'zod';
import type { Catalog } from '@blawby/event-bus';

/** Page size of the timeline route when the query sets no `limit`. */
export const TIMELINE_DEFAULT_LIMIT = 50;
/** Largest page size the timeline route accepts. */
export const TIMELINE_MAX_LIMIT = 1000;
/** Most event types one query may filter on. */
export const TIMELINE_MAX_EVENT_TYPES = 100;

/** The timeline query once parsed. */
export interface TimelineQueryParams {
  organizationId?: string;
  actor?: string;
  eventTypes?: string[];
  limit: number;
  cursor?: string;
  from?: Date;
  to?: Date;
}

/** One problem with a query, safe to send to the client (the rejected value is not echoed). */
export interface QueryIssue {
  /** Where: the parameter name, then an index for list items. */
  path: (string | number)[];
  /** zod's issue code (`invalid_type`, `too_big`, `unrecognized_keys`, `custom`, ...). */
  code: string;
  message: string;
}

/** Raw query as Fastify and Express parse it: repeated keys become arrays. */
export type RawQuery = Record<string, unknown>;

/**
 * The instants `from`/`to` may name: years 0001 to 9999 in UTC. PostgreSQL has
 * no year 0, and past 9999 `Date#toISOString` writes a six-digit year that it
 * does not read; the range is narrower than the storages' on purpose, so that
 * every storage accepts every query the route lets through.
 */
const EARLIEST = Date.parse('0001-01-01T00:00:00.000Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');

/** Unpaired UTF-16 surrogates (with the `u` flag, a well-formed pair is one code point, not `Cs`). */
const LONE_SURROGATE = /\p{Cs}/u;

/** What PostgreSQL `text` can store: no NUL, no unpaired surrogate. */
const storable = (value: string) => !value.includes('\u0000') && !LONE_SURROGATE.test(value);
const STORABLE_MESSAGE = 'must not contain NUL characters or unpaired surrogates';

const id = z.string().trim().min(1).max(255).refine(storable, STORABLE_MESSAGE);

const instant = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()], {
    error: 'expected an ISO 8601 date or date-time, e.g. 2025-01-31T12:00:00Z',
  })
  .transform((value) => new Date(value))
  .refine(
    (date) => date.getTime() >= EARLIEST && date.getTime() <= LATEST,
    'must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z',
  );

/**
 * Every storage issues cursors of this shape (see `TimelinePage.nextCursor`),
 * so anything else is refused here; the storage refuses the rest (a cursor of
 * the right shape that it did not issue).
 */
const cursor = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,1024}$/, 'not a cursor returned by this timeline');

const limit = z
  .string()
  .regex(/^\d+$/, 'expected a positive integer')
  .transform(Number)
  .pipe(z.number().int().min(1).max(TIMELINE_MAX_LIMIT));

/** Comma-separated, repeated, or both: `eventTypes=a.b_c,d.e_f` or `eventTypes=a.b_c&eventTypes=d.e_f`. */
function eventTypesOf(catalog: Catalog) {
  return z
    .union([z.string(), z.array(z.string())])
    .transform((value) =>
      (Array.isArray(value) ? value : [value])
        .flatMap((part) => part.split(','))
        .map((part) => part.trim())
        .filter((part) => part.length > 0),
    )
    .pipe(
      z
        .array(
          z.string().refine((type) => Object.hasOwn(catalog, type), { message: 'unknown event type: not in the catalog' }),
        )
        .min(1, 'expected at least one event type')
        .max(TIMELINE_MAX_EVENT_TYPES),
    );
}

function schemaFor(catalog: Catalog) {
  return z
    .strictObject({
      organizationId: id.optional(),
      actor: id.optional(),
      eventTypes: eventTypesOf(catalog).optional(),
      limit: limit.optional(),
      cursor: cursor.optional(),
      from: instant.optional(),
      to: instant.optional(),
    })
    .refine((q) => !q.from || !q.to || q.from.getTime() < q.to.getTime(), {
      path: ['to'],
      message: '`to` must be later than `from`',
    });
}

const schemas = new WeakMap<Catalog, ReturnType<typeof schemaFor>>();

/** Result of {@link parseTimelineQuery}. */
export type TimelineQueryResult =
  | { success: true; query: TimelineQueryParams }
  | { success: false; issues: QueryIssue[] };

/** Validates a raw query string object against `catalog`. */
export function parseTimelineQuery(catalog: Catalog, raw: RawQuery): TimelineQueryResult {
  let schema = schemas.get(catalog);
  if (!schema) {
    schema = schemaFor(catalog);
    schemas.set(catalog, schema);
  }
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    return {
      success: false,
      issues: parsed.error.issues.map((issue) => ({
        path: issue.path.filter((p): p is string | number => typeof p !== 'symbol'),
        code: issue.code,
        message: issue.message,
      })),
    };
  }
  const { limit: pageSize, ...rest } = parsed.data;
  const query: TimelineQueryParams = { limit: pageSize ?? TIMELINE_DEFAULT_LIMIT };
  for (const [key, value] of Object.entries(rest)) {
    if (value !== undefined) (query as unknown as Record<string, unknown>)[key] = value;
  }
  return { success: true, query };
}
