/**
 * The timeline and health routes as plain functions returning `{ status, body }`,
 * so that the Fastify and Express adapters only translate requests and replies.
 */
import { EventBusError } from '@blawby/event-bus';
import type { Catalog, EventBus, EventTypeOf, HealthReport, Logger, TimelinePage } from '@blawby/event-bus';
import type { RequestMetadata } from './request-events';
import { parseTimelineQuery } from './timeline-query';
import type { QueryIssue, RawQuery, TimelineQueryParams } from './timeline-query';

/** Who is calling, as the application's `authorize` hook says. */
export interface Identity {
  /** The caller's actor id (the `actor` of the events they publish, e.g. a user id). */
  actor: string;
  /** Organizations whose timeline the caller may read. */
  organizationIds: readonly string[];
}

/** A route's answer, before the framework sends it. */
export interface HttpResult<B = unknown> {
  status: number;
  body: B;
}

/** Stable codes of the routes' error bodies. */
export type RouteErrorCode = 'INVALID_QUERY' | 'UNAUTHORIZED' | 'FORBIDDEN' | 'STORAGE_UNAVAILABLE';

/** The body of every 4xx/5xx answer of the routes. */
export interface RouteErrorBody {
  error: { code: RouteErrorCode; message: string; issues?: QueryIssue[] };
}

/** The body of a successful timeline answer: events newest first, JSON-encoded (dates as ISO strings). */
export type TimelineBody = TimelinePage;

/** The event type published when a caller asks for an organization they do not belong to. */
export const ACCESS_DENIED_EVENT = 'org.access_denied';

/** The resource name the timeline route reports in `org.access_denied`. */
export const TIMELINE_RESOURCE = 'events.timeline';

/** Input of {@link timelineRoute}. */
export interface TimelineRouteInput {
  /** The parsed query string (repeated keys as arrays). */
  query: RawQuery;
  /** What `authorize` returned; `null` means no identity (401). */
  identity: Identity | null;
  /** The request's metadata, for the `org.access_denied` event. */
  metadata: RequestMetadata;
  /** Method and path, recorded in `org.access_denied`. */
  method?: string;
  path?: string;
  /** Where a failed `org.access_denied` publish is logged. */
  logger?: Logger;
}

function fail(status: number, code: RouteErrorCode, message: string, issues?: QueryIssue[]): HttpResult<RouteErrorBody> {
  return { status, body: { error: issues ? { code, message, issues } : { code, message } } };
}

/**
 * `GET {prefix}/timeline`. Order of checks: identity (401), query (400),
 * organization membership (403). Scope of the answer:
 *
 * - with `organizationId` (one of the caller's organizations): that
 *   organization's events, by any actor unless `actor` narrows it;
 * - without `organizationId`: only the caller's own events (`actor` is the
 *   caller; asking for another actor is a 403).
 */
export async function timelineRoute<C extends Catalog>(
  bus: EventBus<C>,
  input: TimelineRouteInput,
): Promise<HttpResult<TimelineBody | RouteErrorBody>> {
  const { identity } = input;
  if (!identity) return fail(401, 'UNAUTHORIZED', 'Authentication required');

  const parsed = parseTimelineQuery(bus.catalog, input.query);
  if (!parsed.success) return fail(400, 'INVALID_QUERY', 'Invalid timeline query', parsed.issues);
  const query: TimelineQueryParams = parsed.query;

  if (query.organizationId !== undefined) {
    if (!identity.organizationIds.includes(query.organizationId)) {
      await publishAccessDenied(bus, identity, query.organizationId, input);
      return fail(403, 'FORBIDDEN', 'Not a member of this organization');
    }
  } else if (query.actor !== undefined && query.actor !== identity.actor) {
    return fail(403, 'FORBIDDEN', "Another actor's events can only be read within an organization");
  } else {
    query.actor = identity.actor;
  }

  try {
    const page = await bus.timeline({
      ...query,
      eventTypes: query.eventTypes as EventTypeOf<C>[] | undefined,
    });
    return { status: 200, body: { events: page.events, nextCursor: page.nextCursor } };
  } catch (err) {
    // A cursor the storage cannot read is the client's fault; anything else is the server's.
    if (EventBusError.is(err, 'INVALID_OPTION')) {
      return fail(400, 'INVALID_QUERY', 'Invalid timeline query', [
        { path: ['cursor'], code: 'invalid_cursor', message: err.message },
      ]);
    }
    throw err;
  }
}

/**
 * Publishes `org.access_denied` when the catalog has it. The payload carries
 * the usual fields of such a schema; a catalog whose schema refuses it gets a
 * logged warning, never a failed request.
 */
async function publishAccessDenied<C extends Catalog>(
  bus: EventBus<C>,
  identity: Identity,
  organizationId: string,
  input: TimelineRouteInput,
): Promise<void> {
  if (!Object.hasOwn(bus.catalog, ACCESS_DENIED_EVENT)) return;
  const payload: Record<string, unknown> = {
    organizationId,
    resource: TIMELINE_RESOURCE,
    action: 'read',
    reason: 'not_a_member',
  };
  if (input.method) payload.method = input.method;
  if (input.path) payload.path = input.path;
  try {
    await bus.publish(ACCESS_DENIED_EVENT as EventTypeOf<C>, payload as never, {
      actor: identity.actor,
      actorType: 'user',
      organizationId,
      metadata: { ...input.metadata },
    });
  } catch (err) {
    input.logger?.warn(
      { err, eventType: ACCESS_DENIED_EVENT, code: EventBusError.is(err) ? err.code : undefined },
      'could not publish org.access_denied',
    );
  }
}

/** Body of the health route when the storage could not be asked. */
export interface HealthFailureBody extends RouteErrorBody {
  status: 'unhealthy';
  healthy: false;
}

/**
 * `GET {prefix}/health` (public): `bus.health()`, 200 when healthy, 503 when
 * not (thresholds are the bus's `health` options) or when the storage fails.
 */
export async function healthRoute<C extends Catalog>(
  bus: EventBus<C>,
  logger?: Logger,
): Promise<HttpResult<HealthReport | HealthFailureBody>> {
  try {
    const report = await bus.health();
    return { status: report.healthy ? 200 : 503, body: report };
  } catch (err) {
    logger?.error({ err }, 'event bus health check failed');
    return {
      status: 503,
      body: {
        status: 'unhealthy',
        healthy: false,
        error: { code: 'STORAGE_UNAVAILABLE', message: 'The event storage did not answer' },
      },
    };
  }
}
