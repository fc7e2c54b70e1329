/**
 * The event envelope, kept exactly as the seed's `BaseEvent` and
 * `EventMetadata` (so existing Blawby rows and code keep working), plus
 * tracing links in the metadata.
 */

/** Who performed an action. The application may use its own kinds too. */
export type ActorType = 'user' | 'system' | 'webhook' | 'cron' | 'api' | (string & {});

/** Context of an event: where it came from and how it links to others. */
export interface EventMetadata {
  /** Request IP address. */
  ipAddress?: string;
  /** Browser or client identification. */
  userAgent?: string;
  /** Request correlation id. */
  requestId?: string;
  /** Where the event came from, e.g. `'api'`, `'webhook'`. */
  source: string;
  /** `'development' | 'staging' | 'production'` or the application's own. */
  environment: string;
  /** Id shared by every event of one causal chain (the first event's id by default). */
  correlationId?: string;
  /** Id of the event whose handler published this one. */
  causationId?: string;
  /** W3C trace context of the publisher, for OpenTelemetry. */
  traceparent?: string;
  /** Anything else the application records. */
  [key: string]: unknown;
}

/**
 * One event, as stored and as handlers receive it (the seed's `BaseEvent`).
 * `T` is the event type and `P` its payload.
 */
export interface BaseEvent<T extends string = string, P = Record<string, unknown>> {
  /** Unique id, a time-ordered UUIDv7. */
  eventId: string;
  /** The event type, e.g. `'auth.user_signed_up'`. */
  eventType: T;
  /** Version of the payload's schema, e.g. `'1.0.0'`. */
  eventVersion: string;
  /** When it happened. */
  timestamp: Date;
  /** Who or what performed the action (user id, `'system'`, ...). */
  actor?: string;
  /** The kind of actor. */
  actorType?: ActorType;
  /** The organization in whose context it happened. */
  organizationId?: string;
  /** Event-specific data, checked against the catalog's schema. */
  payload: P;
  /** Additional context. */
  metadata: EventMetadata;
  /** True once every subscriber has finished with it (succeeded or dead-lettered). */
  processed: boolean;
  /** Failed attempts so far, summed over its deliveries. */
  retryCount: number;
}
