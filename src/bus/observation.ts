/**
 * The observation seam: how metrics, traces, dashboards and test helpers
 * watch a bus and wrap its work, without reaching into it.
 *
 * - **Observers** ({@link BusObserver}) are told what happened: an event
 *   published, a delivery started and settled (with its outcome and handler
 *   time), a retry scheduled, a dead letter, a lost lease. They are called
 *   synchronously on the bus's own path and cannot change an outcome.
 * - **Handler middleware** ({@link HandlerMiddleware}) wraps every handler
 *   run, as Watermill's middleware does: `(event, ctx, next) => Promise<void>`.
 * - **Publish middleware** ({@link PublishMiddleware}) wraps every publish
 *   between validation and storage, and may add to the events' metadata
 *   (a trace context, for instance).
 *
 * A bus with none of these pays one check per step.
 */
import type { Catalog } from '../catalog';
import type { BaseEvent } from '../envelope';
import type { ErrorInfo } from '../errors';
import type { HandlerContext } from './types';

/** Told when an event was stored (a repeated idempotency key is not a new event, and is not reported). */
export interface PublishedObservation {
  /** The event as it was stored. */
  event: BaseEvent;
  /**
   * Published inside the caller's transaction: it is reported when appended,
   * before the commit, and disappears if the transaction rolls back.
   */
  inTransaction: boolean;
}

/** What every observation of a delivery carries. */
export interface DeliveryObservation {
  /** The event as stored (before any upcasting to the catalog's current version). */
  event: BaseEvent;
  /** The subscriber's name. */
  subscriber: string;
  /** Stable per (event, subscriber), the same across attempts. */
  deliveryId: string;
  /** This attempt's number, 1 for the first. */
  attempt: number;
}

/** Told when this process starts an attempt of a delivery. */
export interface DeliveryStartedObservation extends DeliveryObservation {
  /** When the attempt started (so `startedAt - event.timestamp` is the event's lag). */
  startedAt: Date;
}

/**
 * How an attempt ended:
 *
 * - `succeeded`: the handler returned and the delivery is done;
 * - `retrying`: the handler threw and another attempt is scheduled;
 * - `dead-lettered`: the handler threw and no attempt is left (or it threw `NonRetryableError`);
 * - `lease-lost`: another worker took the lease over, so this run recorded nothing;
 * - `released`: the bus stopped and gave the delivery back without spending the attempt;
 * - `unrecorded`: the storage failed while recording the outcome; the delivery
 *   runs again once its lease expires.
 */
export type DeliveryOutcomeKind = 'succeeded' | 'retrying' | 'dead-lettered' | 'lease-lost' | 'released' | 'unrecorded';

/**
 * Told once for every started attempt (after {@link DeliveryStartedObservation}),
 * when its outcome is known. A handler that never returns is never settled.
 */
export interface DeliverySettledObservation extends DeliveryObservation {
  outcome: DeliveryOutcomeKind;
  /** Handler time in ms: from the attempt's start to the handler's return or throw (middleware included). */
  durationMs: number;
  /** What the handler threw, when it threw. */
  error?: ErrorInfo;
  /** With `retrying`: when the next attempt is due. */
  retryAt?: Date;
}

/** Told when a failed attempt is scheduled to run again (just before its `retrying` settlement). */
export interface RetryScheduledObservation extends DeliveryObservation {
  /** What the handler threw. */
  error: ErrorInfo;
  /** When the next attempt is due. */
  retryAt: Date;
}

/** Told when a delivery is moved to the dead letters (just before its `dead-lettered` settlement). */
export interface DeadLetteredObservation extends DeliveryObservation {
  /** The last error. */
  error: ErrorInfo;
}

/**
 * Told when this process finds that another worker took a delivery's lease
 * over: at a lease renewal, or when recording its outcome. Once per delivery
 * run; a delivery that was running then settles as `lease-lost`.
 */
export interface LeaseLostObservation extends DeliveryObservation {
  /** Its handler had started (`false`: it was claimed ahead and waiting for a slot, and will not run here). */
  running: boolean;
}

/**
 * Watches a bus (pass it to `bus.observe()` or the `observers` option). Every
 * method is optional. Methods run synchronously on the bus's path, so keep
 * them quick; what they throw is reported to the bus's logger and `onError`
 * and changes nothing else.
 *
 * @example
 * ```ts
 * const stop = bus.observe({
 *   deliverySettled: ({ subscriber, outcome, durationMs }) => histogram.observe({ subscriber, outcome }, durationMs),
 *   deadLettered: ({ event, subscriber, error }) => alert(`${subscriber} gave up on ${event.eventId}: ${error.message}`),
 * });
 * ```
 */
export interface BusObserver {
  /** An event was stored. */
  published?(observation: PublishedObservation): void;
  /** An attempt of a delivery started in this process. */
  deliveryStarted?(observation: DeliveryStartedObservation): void;
  /** An attempt ended, with its outcome. */
  deliverySettled?(observation: DeliverySettledObservation): void;
  /** A failed attempt will run again. */
  retryScheduled?(observation: RetryScheduledObservation): void;
  /** A delivery was dead-lettered. */
  deadLettered?(observation: DeadLetteredObservation): void;
  /** A delivery's lease was taken over by another worker. */
  leaseLost?(observation: LeaseLostObservation): void;
}

/**
 * Wraps every handler run of every subscriber (pass it to `bus.use()` or the
 * `middleware` option). Call `next()` once to run the rest of the chain and
 * the handler; what it rejects with is the handler's failure. Throwing fails
 * the attempt like a handler would; returning without calling `next()` skips
 * the handler and the delivery succeeds. The first middleware is the outermost.
 *
 * @example
 * ```ts
 * bus.use(async (event, ctx, next) => {
 *   const started = performance.now();
 *   try {
 *     await next();
 *   } finally {
 *     ctx.logger.info({ ms: performance.now() - started }, `${ctx.subscriber} handled ${event.eventType}`);
 *   }
 * });
 * ```
 */
export type HandlerMiddleware = (event: BaseEvent, ctx: HandlerContext<Catalog>, next: () => Promise<void>) => Promise<void>;

/** What a {@link PublishMiddleware} sees of one `publish` or `publishMany`. */
export interface PublishContext {
  /** The events about to be stored, already validated (their payload and metadata are frozen). */
  readonly events: readonly Readonly<BaseEvent>[];
  /** Published inside the caller's transaction (`publish(..., { tx })`). */
  readonly inTransaction: boolean;
  /**
   * Adds string fields to one of {@link events}' metadata before it is stored
   * (e.g. a `traceparent`); call it before `next()`. Refuses, with
   * `INVALID_OPTION`, an event not of this publish or a value not a string.
   */
  setMetadata(event: Readonly<BaseEvent>, fields: Readonly<Record<string, string>>): void;
}

/**
 * Wraps every publish between validation and storage (pass it to
 * `bus.usePublish()` or the `publishMiddleware` option). `next()` stores the
 * events; it must be called once, or the publish rejects with
 * `INVALID_OPTION` and nothing is stored. The first middleware is the outermost.
 */
export type PublishMiddleware = (publish: PublishContext, next: () => Promise<void>) => Promise<void>;
