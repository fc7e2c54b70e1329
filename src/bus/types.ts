/**
 * Public types of the bus: options, handler context and the {@link EventBus}
 * interface that `createEventBus` returns.
 */
import type {
  Catalog,
  EventPattern,
  EventTypeOf,
  MatchedTypes,
  PayloadInput,
  PayloadOf,
} from '../catalog';
import type { ActorType, BaseEvent, EventMetadata } from '../envelope';
import type { Logger } from '../logger';
import type {
  DeadLetter,
  DeadLetterFilter,
  HealthWarning,
  Storage,
  TimelinePage,
  TimelineScope,
} from '../ports/storage';
import type { Transport } from '../ports/transport';
import type { BusObserver, HandlerMiddleware, PublishMiddleware } from './observation';

/** Retry policy of a subscriber: exponential backoff with full jitter. */
export interface RetryPolicy {
  /** Tries in all, the first included (default 5). 1 means no retry. */
  attempts?: number;
  /** Backoff base: the cap of the first retry's delay (default 1000 ms). */
  minDelayMs?: number;
  /** Largest delay between two attempts (default 60 000 ms). */
  maxDelayMs?: number;
}

/** How the dispatcher claims and runs deliveries in this process. */
export interface DispatchOptions {
  /** Handlers running at once in this process, over all subscribers (default 10). */
  concurrency?: number;
  /** Most deliveries claimed per storage round trip (default 100). */
  batchSize?: number;
  /** Lease on a claimed delivery; renewed while its handler runs (default 30 000 ms). */
  leaseMs?: number;
  /** Look for due work at least this often even without a wake-up (default 1000 ms). */
  pollIntervalMs?: number;
  /**
   * How long `stop()` may take when not given its own `timeoutMs` (default
   * 10 000 ms): in-flight handlers get most of it, then their signal is
   * aborted and their claims are given back, all within this time.
   */
  shutdownTimeoutMs?: number;
  /**
   * Longest one handler attempt may run (default 300 000 ms, five minutes; at
   * most 2 147 483 647): past it, `ctx.signal` is aborted with a
   * `HandlerTimeoutError` and the attempt counts as failed (`HANDLER_TIMEOUT`),
   * whether or not the handler stops. `subscribe(..., { timeoutMs })` overrides it.
   */
  handlerTimeoutMs?: number;
}

/** Health thresholds. */
export interface HealthOptions {
  /** Unhealthy at this many unprocessed events or more (default 1000, as in the seed). */
  maxUnprocessed?: number;
  /** Unhealthy when the oldest due event waited longer (default: no limit). */
  maxPendingAgeMs?: number;
  /** Unhealthy at this many dead letters or more (default: no limit). */
  maxDeadLetters?: number;
  /**
   * Warn (`SUBSCRIBER_STALE`) about a subscriber name with pending deliveries
   * that no process has registered for this long (default 15 minutes; a
   * running bus registers its names every minute).
   */
  staleSubscriberMs?: number;
}

/** Options of {@link createEventBus}. */
export interface EventBusOptions<C extends Catalog> {
  /** The event catalog; `publish` and `subscribe` are typed from it. */
  catalog: C;
  /** Where events and delivery state live (default: `memoryStorage()`). */
  storage?: Storage;
  /** What wakes dispatchers (default: `inProcessTransport()`). */
  transport?: Transport;
  /**
   * A pino logger (or anything with the same methods). When absent, nothing is
   * logged except the first failure of each subscriber, reported as a process
   * warning (`EVENT_BUS_HANDLER_FAILED`); pass `silentLogger` for none at all.
   */
  logger?: Logger;
  /** Default `metadata.source` (default `'api'`). */
  source?: string;
  /** Default `metadata.environment` (default `process.env.NODE_ENV` or `'development'`). */
  environment?: string;
  /** Default retry policy of every subscriber. */
  retry?: RetryPolicy;
  dispatch?: DispatchOptions;
  health?: HealthOptions;
  /** Called with errors of background work (claims, heartbeats, wake-ups); they are also logged. */
  onError?: (error: unknown) => void;
  /** Observers registered from the start, as with `bus.observe()` (see docs/observing.md). */
  observers?: readonly BusObserver[];
  /** Handler middleware, outermost first, as with `bus.use()`. */
  middleware?: readonly HandlerMiddleware[];
  /** Publish middleware, outermost first, as with `bus.usePublish()`. */
  publishMiddleware?: readonly PublishMiddleware[];
}

/** Options of one `publish`. */
export interface PublishOptions {
  /** Who performed the action (user id, `'system'`, ...). */
  actor?: string;
  actorType?: ActorType;
  organizationId?: string;
  /** Merged over the bus's defaults (`source`, `environment`). */
  metadata?: Partial<EventMetadata>;
  /** A storage transaction (e.g. drizzle's `tx`): the event commits or rolls back with it. */
  tx?: unknown;
  /** The same key twice: stored once, the first event returned. */
  idempotencyKey?: string;
  /** Delayed delivery: no handler runs before this time (survives restarts on durable storage). */
  deliverAt?: Date;
  /** Events with the same key reach each subscriber in publish order. */
  orderingKey?: string;
}

/** One item of `publishMany`. */
export type PublishItem<C extends Catalog> = {
  [T in EventTypeOf<C>]: { type: T; payload: PayloadInput<C, T>; options?: Omit<PublishOptions, 'tx'> };
}[EventTypeOf<C>];

/** The event a handler of pattern `P` receives: a union over the matched types, payload typed. */
export type EventFor<C extends Catalog, P extends string> =
  MatchedTypes<C, P> extends infer T
    ? T extends EventTypeOf<C>
      ? BaseEvent<T, PayloadOf<C, T>>
      : never
    : never;

/** A typed event of catalog `C` (all types when `T` is omitted). */
export type CatalogEvent<C extends Catalog, T extends EventTypeOf<C> = EventTypeOf<C>> = EventFor<C, T>;

/** What a handler gets besides the event. */
export interface HandlerContext<C extends Catalog> {
  /** This attempt's number, 1 for the first. */
  attempt: number;
  /** Stable per (event, subscriber): use it to make downstream effects idempotent. */
  deliveryId: string;
  /** The subscriber's name. */
  subscriber: string;
  /** The bus logger, bound to this delivery. */
  logger: Logger;
  /** Aborted when the bus stops past its timeout, when the handler ran past its `timeoutMs`, or when this worker lost the lease. */
  signal: AbortSignal;
  /** Publishes an event caused by this one (`causationId`, `correlationId` set). */
  publish: EventBus<C>['publish'];
  /** The storage transaction of a `transactional` subscriber; the delivery is marked done in it. */
  tx?: unknown;
}

/** A handler of the events a pattern matches. */
export type Handler<C extends Catalog, P extends string> = (
  event: EventFor<C, P>,
  ctx: HandlerContext<C>,
) => Promise<void> | void;

/** Options of `bus.stop()`. */
export interface StopOptions {
  /** Most milliseconds `stop()` may take, an integer >= 0 (default `dispatch.shutdownTimeoutMs`). */
  timeoutMs?: number;
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Required, unique: delivery state, retries and dead letters are kept per name. */
  name: string;
  /** Overrides the bus's retry policy for this subscriber. */
  retry?: RetryPolicy;
  /** Most handlers of this subscriber running at once in this process (default: the bus's concurrency). */
  concurrency?: number;
  /** Run the handler inside a storage transaction in which the delivery is marked done (`ctx.tx`). */
  transactional?: boolean;
  /** Longest one attempt of this handler may run (default: the bus's `dispatch.handlerTimeoutMs`). */
  timeoutMs?: number;
}

/** Query of `bus.timeline()`; newest first. */
export interface TimelineOptions<C extends Catalog> {
  actor?: string;
  organizationId?: string;
  eventTypes?: readonly EventTypeOf<C>[];
  /** Only events of these organizations, or without organization and by this actor (what one reader may see). */
  scope?: TimelineScope;
  from?: Date;
  to?: Date;
  /** Page size (default 50, at most 1000). */
  limit?: number;
  cursor?: string;
}

/** Query of `bus.replay()`. */
export interface ReplayOptions<C extends Catalog> {
  eventTypes?: readonly EventTypeOf<C>[];
  actor?: string;
  organizationId?: string;
  from?: Date;
  to?: Date;
  /** Subscriber names to replay to (default: every registered subscriber). */
  subscribers?: readonly string[];
}

/** Result of `bus.health()`. */
export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  /** Events not yet processed by every subscriber. */
  unprocessed: number;
  /** Dead letters waiting for redrive or discard. */
  deadLetters: number;
  /** Age of the oldest due, unprocessed event; `null` if none. */
  oldestPendingAgeMs: number | null;
  healthy: boolean;
  /** Conditions a person should act on, each with a stable code (see `docs/operating.md`); they do not change `healthy`. */
  warnings: HealthWarning[];
}

/** Counters of one event type (or of all). */
export interface TypeStats {
  published: number;
  /** Deliveries that succeeded. */
  processed: number;
  /** Deliveries dead-lettered. */
  failed: number;
  /** Attempts that failed and were scheduled again. */
  retried: number;
}

/** In-process counters since the bus was created. */
export interface BusStats extends TypeStats {
  /** Handler time of succeeded deliveries. */
  processingTimeMs: { total: number; average: number; max: number };
  /** Deliveries running now. */
  inFlight: number;
  byType: Record<string, TypeStats>;
}

/** Dead-letter operations. */
export interface DeadLetters {
  /** Dead letters matching the filter, oldest first (at most `filter.limit`, default 100). */
  list(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  /** Puts a dead letter (by id) or every match of a filter back to be delivered; returns how many. */
  redrive(target: string | DeadLetterFilter): Promise<number>;
  /** Deletes a dead letter; returns whether it existed. */
  discard(id: string): Promise<boolean>;
}

/** The event bus. Create with `createEventBus`. */
export interface EventBus<C extends Catalog> {
  /** The catalog the bus was created with. */
  readonly catalog: C;
  /** Where events and delivery state live. */
  readonly storage: Storage;
  /** What wakes dispatchers. */
  readonly transport: Transport;

  /** Validates, stores and schedules one event; resolves with the stored envelope. */
  publish<T extends EventTypeOf<C>>(
    type: T,
    payload: PayloadInput<C, T>,
    options?: PublishOptions,
  ): Promise<BaseEvent<T, PayloadOf<C, T>>>;
  /** Publishes several events in one storage round trip: all or none. */
  publishMany(items: readonly PublishItem<C>[], options?: { tx?: unknown }): Promise<CatalogEvent<C>[]>;

  /** Registers a named handler for an event type, `'domain.*'`, `'*'` or a list of them. Returns an unsubscribe function. */
  subscribe<const P extends EventPattern<C> | readonly EventPattern<C>[]>(
    pattern: P,
    handler: Handler<C, P extends readonly (infer E extends string)[] ? E : P & string>,
    options: SubscribeOptions,
  ): () => void;

  /** Starts dispatching (idempotent). */
  start(): Promise<void>;
  /** Resolves when no delivery of this process's subscribers is in flight, due, or waiting on a retry. */
  idle(options?: { timeoutMs?: number }): Promise<void>;
  /**
   * Stops claiming, lets in-flight handlers finish (or aborts them and gives
   * their claims back), closes; resolves within `timeoutMs` (default
   * `dispatch.shutdownTimeoutMs`). Idempotent: a second call joins the first.
   */
  stop(options?: StopOptions): Promise<void>;

  /** Makes matching past events due again for the chosen subscribers; resolves with how many deliveries were scheduled. */
  replay(options?: ReplayOptions<C>): Promise<number>;
  /** Events newest first, a page at a time (pass `nextCursor` back as `cursor`). */
  timeline(options?: TimelineOptions<C>): Promise<TimelinePage>;
  /** List, redrive and discard dead letters. */
  readonly deadLetters: DeadLetters;
  /** Removes a subscriber name from the storage at once (a deleted handler must not hold events unprocessed). */
  retireSubscriber(name: string): Promise<void>;
  /** Unprocessed events, dead letters and the oldest due age, judged against the health thresholds. */
  health(): Promise<HealthReport>;
  /** This process's counters since the bus was created. */
  stats(): BusStats;

  /** Registers an observer of publishes and deliveries; returns the function that removes it. */
  observe(observer: BusObserver): () => void;
  /** Adds handler middleware inside the existing ones (it wraps handler runs that start from now on); returns its removal. */
  use(middleware: HandlerMiddleware): () => void;
  /** Adds publish middleware inside the existing ones; returns its removal. */
  usePublish(middleware: PublishMiddleware): () => void;
}
