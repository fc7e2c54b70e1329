/**
 * The timeline and health routes as plain functions returning `{ status, body }`,
 * so that the Fastify and Express adapters only translate requests and replies.
 * They never throw: every failure is an answer (see `route-errors.ts`).
 */
import { EventBusError } from '@blawby/event-bus';
import type { Catalog, EventBus, EventTypeOf, HealthReport, Logger, TimelinePage } from '@blawby/event-bus';
import { AccessDeniedLimiter } from './access-denied-limiter';
import type { RequestMetadata } from './request-events';
import { errorResult, fail } from './route-errors';
import type { HttpResult, RouteErrorBody } from './route-errors';
import { parseTimelineQuery } from './timeline-query';
import type { RawQuery } from './timeline-query';

export type { HttpResult, RouteErrorBody, RouteErrorCode } from './route-errors';

/** Who is calling, as the application's `authorize` hook says. */
export interface Identity {
  /** The caller's actor id (the `actor` of the events they publish, e.g. a user id). */
  actor: string;
  /** Organizations whose timeline the caller may read. */
  organizationIds: readonly string[];
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
  /** Where failures are logged: a failed `org.access_denied` publish (warn), a 5xx answer's cause (error). */
  logger?: Logger;
}

/** One limiter per bus: the routes of every adapter mounted on a bus share its budget. */
const accessDeniedLimiters = new WeakMap<object, AccessDeniedLimiter>();

function accessDeniedLimiter(bus: object): AccessDeniedLimiter {
  let limiter = accessDeniedLimiters.get(bus);
  if (!limiter) {
    limiter = new AccessDeniedLimiter();
    accessDeniedLimiters.set(bus, limiter);
  }
  return limiter;
}

function isIdentity(value: unknown): value is Identity {
  if (typeof value !== 'object' || value === null) return false;
  const { actor, organizationIds } = value as Record<string, unknown>;
  return (
    typeof actor === 'string' &&
    actor.length > 0 &&
    Array.isArray(organizationIds) &&
    organizationIds.every((id) => typeof id === 'string')
  );
}

/**
 * `GET {prefix}/timeline`. Order of checks: identity (401), query (400),
 * organization membership (403). The answer never leaves the caller's scope:
 * events of the caller's `organizationIds`, and events without organization
 * whose actor is the caller. Within it, `organizationId` (one of the caller's
 * organizations), `actor`, `eventTypes`, `from` and `to` narrow the answer. An
 * event stays with its organization: a caller who left one no longer sees
 * their own events there.
 *
 * Never throws: a storage failure is a 400 (a query the storage cannot use),
 * 503 (storage unreachable, bus stopping) or 500, with a fixed body; the cause
 * goes to `input.logger`.
 */
export async function timelineRoute<C extends Catalog>(
  bus: EventBus<C>,
  input: TimelineRouteInput,
): Promise<HttpResult<TimelineBody | RouteErrorBody>> {
  try {
    return await answerTimeline(bus, input);
  } catch (err) {
    return errorResult(err, input.logger, 'timeline query');
  }
}

async function answerTimeline<C extends Catalog>(
  bus: EventBus<C>,
  input: TimelineRouteInput,
): Promise<HttpResult<TimelineBody | RouteErrorBody>> {
  const { identity } = input;
  if (identity === null || identity === undefined) return fail(401, 'UNAUTHORIZED', 'Authentication required');
  if (!isIdentity(identity)) {
    input.logger?.error(
      { route: 'timeline' },
      'authorize returned an invalid identity: expected { actor: string, organizationIds: string[] } or null',
    );
    return fail(500, 'INTERNAL_ERROR', 'Internal error');
  }

  const parsed = parseTimelineQuery(bus.catalog, input.query);
  if (!parsed.success) return fail(400, 'INVALID_QUERY', 'Invalid timeline query', parsed.issues);
  const query = parsed.query;

  if (query.organizationId !== undefined && !identity.organizationIds.includes(query.organizationId)) {
    await publishAccessDenied(bus, identity, query.organizationId, input);
    return fail(403, 'FORBIDDEN', 'Not a member of this organization');
  }

  const scope = { organizationIds: [...identity.organizationIds], actor: identity.actor };
  const page = await bus.timeline({ ...query, eventTypes: query.eventTypes as EventTypeOf<C>[] | undefined, scope });
  // The storage applies the scope; checking again costs a pass over one page and
  // keeps a storage that ignores `scope` (a bug, or a third-party one) from leaking.
  const members = new Set(scope.organizationIds);
  const events = page.events.filter((e) =>
    e.organizationId === undefined || e.organizationId === null ? e.actor === scope.actor : members.has(e.organizationId),
  );
  if (events.length < page.events.length) {
    input.logger?.error(
      { route: 'timeline', dropped: page.events.length - events.length },
      'the storage returned timeline events outside the requested scope; they were left out',
    );
  }
  return { status: 200, body: { events, nextCursor: page.nextCursor } };
}

/**
 * Publishes `org.access_denied` when the catalog has it, at most once per
 * (caller, organization) a minute and ten times per caller a minute (see
 * {@link AccessDeniedLimiter}): the caller picks the organization, so without
 * a limit a 403 would let anyone write into any organization's log. The
 * payload carries the usual fields of such a schema; a catalog whose schema
 * refuses it gets a logged warning, never a failed request.
 */
async function publishAccessDenied<C extends Catalog>(
  bus: EventBus<C>,
  identity: Identity,
  organizationId: string,
  input: TimelineRouteInput,
): Promise<void> {
  if (!Object.hasOwn(bus.catalog, ACCESS_DENIED_EVENT)) return;
  if (!accessDeniedLimiter(bus).allow(identity.actor, organizationId)) return;
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
