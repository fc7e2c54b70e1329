/**
 * Framework-neutral pieces of the Fastify, Express and Hono adapters: the
 * request-scoped publisher and the timeline, health and ingest routes.
 * Internal: the public names are re-exported by `@blawby/event-bus/fastify`,
 * `/express` and `/hono`.
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
export {
  CLOUDEVENTS_BATCH_JSON,
  CLOUDEVENTS_JSON,
  INGEST_DEFAULT_BODY_LIMIT,
  INGEST_DEFAULT_MAX_BATCH,
  INGEST_MAX_ID_LENGTH,
  INGEST_METADATA_KEY,
  ingestRoute,
  payloadTooLarge,
  resolveIngestOptions,
  unreadableBody,
} from './ingest';
export type {
  IngestBody,
  IngestedBatchBody,
  IngestedBody,
  IngestErrorBody,
  IngestErrorCode,
  IngestMetadata,
  IngestOptions,
  IngestRouteInput,
} from './ingest';
export { isMetricsSource, metricsRoute } from './metrics-route';
export type { MetricsSource, TextResult } from './metrics-route';
export { createDashboard, DASHBOARD_MAX_REDRIVE, DASHBOARD_STREAM_HEADERS, resolveDashboardOptions } from './dashboard';
export { openDashboardStream } from './dashboard-stream';
export type { Dashboard, DashboardApiRequest, DashboardOptions, DashboardSignals } from './dashboard';
