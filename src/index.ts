/**
 * `@blawby/event-bus`: typed event catalogs, a publisher, and named
 * subscribers with their own retries and dead letters, over a pluggable
 * storage (in-memory by default; PostgreSQL from `@blawby/event-bus/postgres`)
 * and transport (in-process by default).
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * import { createEventBus, defineCatalog, defineEvent, eventTypes } from '@blawby/event-bus';
 *
 * const catalog = defineCatalog({
 *   'auth.user_signed_up': defineEvent({
 *     version: '1.0.0',
 *     payload: z.object({ email: z.string().email(), name: z.string() }),
 *   }),
 * });
 * export const EventType = eventTypes(catalog);
 *
 * const bus = createEventBus({ catalog });
 * bus.subscribe(EventType.AUTH_USER_SIGNED_UP, async (event) => {
 *   await sendWelcome(event.payload.email);
 * }, { name: 'email.welcome', retry: { attempts: 8 } });
 * await bus.start();
 * await bus.publish('auth.user_signed_up', { email: 'a@b.co', name: 'Ada' }, { actor: 'user_1', actorType: 'user' });
 * ```
 *
 * @module @blawby/event-bus
 */
export {
  defineCatalog,
  defineEvent,
  eventTypes,
  isValidEventName,
  matchesPattern,
  type Catalog,
  type ConstantName,
  type DomainOf,
  type EventDefinition,
  type EventPattern,
  type EventTypeConstants,
  type EventTypeOf,
  type MatchedTypes,
  type PayloadInput,
  type PayloadOf,
  type PayloadSchema,
  type Upcaster,
} from './catalog';
export type { ActorType, BaseEvent, EventMetadata } from './envelope';
export {
  CLOUD_EVENT_METADATA_KEY,
  fromCloudEvent,
  toCloudEvent,
  type CloudEventAttributes,
  type FromCloudEventOptions,
  type StructuredCloudEvent,
  type ToCloudEventOptions,
} from './cloudevents';
export {
  EventBusError,
  EventValidationError,
  HandlerTimeoutError,
  InvalidEventNameError,
  InvalidOptionError,
  MAX_RETRY_AFTER_MS,
  NonRetryableError,
  RetryAfterError,
  UnknownEventTypeError,
  UnsupportedSchemaError,
  toErrorInfo,
  type ErrorClassOf,
  type ErrorCode,
  type ErrorInfo,
  type EventBusErrorOf,
} from './errors';
export { silentLogger, type LogFn, type Logger } from './logger';
export { uuidv7 } from './uuidv7';
export { createEventBus } from './bus/create-event-bus';
export { HANDLER_FAILED_WARNING } from './bus/failure-warning';
export { backoffDelay, type ResolvedRetryPolicy } from './bus/backoff';
export type {
  BusObserver,
  DeadLetteredObservation,
  DeliveryObservation,
  DeliveryOutcomeKind,
  DeliverySettledObservation,
  DeliveryStartedObservation,
  HandlerMiddleware,
  LeaseLostObservation,
  PublishContext,
  PublishedObservation,
  PublishMiddleware,
  RetryScheduledObservation,
} from './bus/observation';
export type {
  BusStats,
  CatalogEvent,
  DeadLetters,
  DispatchOptions,
  EventBus,
  EventBusOptions,
  EventFor,
  Handler,
  HandlerContext,
  HealthOptions,
  HealthReport,
  PublishItem,
  PublishOptions,
  ReplayOptions,
  RetryPolicy,
  StopOptions,
  SubscribeOptions,
  TimelineOptions,
  TypeStats,
} from './bus/types';
export type * from './ports/storage';
export type * from './ports/transport';
export { memoryStorage, type MemoryStorageOptions } from './storage/memory-storage';
export { inProcessTransport } from './transport/in-process-transport';
