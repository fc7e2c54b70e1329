/**
 * Framework-neutral pieces of the Fastify and Express adapters: the
 * request-scoped publisher and the timeline and health routes. Internal: the
 * public names are re-exported by `@blawby/event-bus/fastify` and `/express`.
 *
 * @module
 */
export type { EventBusRegistry, RegisteredBus, RegisteredCatalog } from './registry';
export { createRequestEvents, requestMetadata, sanitizeRequestId, withRequestMetadata } from './request-events';
export type { RequestEvents, RequestMetadata } from './request-events';
export {
  parseTimelineQuery,
  TIMELINE_DEFAULT_LIMIT,
  TIMELINE_MAX_EVENT_TYPES,
  TIMELINE_MAX_LIMIT,
} from './timeline-query';
export type { QueryIssue, RawQuery, TimelineQueryParams, TimelineQueryResult } from './timeline-query';
export { ACCESS_DENIED_EVENT, healthRoute, TIMELINE_RESOURCE, timelineRoute } from './routes';
export type {
  HealthFailureBody,
  HttpResult,
  Identity,
  RouteErrorBody,
  RouteErrorCode,
  TimelineBody,
  TimelineRouteInput,
} from './routes';
