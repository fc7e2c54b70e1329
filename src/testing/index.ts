/**
 * Helpers for your own tests: a bus on the in-memory storage with quick
 * retries, and ways to wait for publishes and delivery outcomes without
 * sleeping.
 *
 * @example
 * ```ts
 * import { createTestBus, waitForDelivery } from '@blawby/event-bus/testing';
 *
 * const bus = createTestBus({ catalog });
 * registerEmailHandlers(bus);
 * await bus.start();
 * await bus.publish('auth.user_signed_up', { email: 'a@b.co', name: 'Ada', signupMethod: 'email' });
 * const outcome = await waitForDelivery(bus, { subscriber: 'email.welcome' });
 * expect(outcome.kind).toBe('succeeded');
 * await bus.stop();
 * ```
 *
 * @module @blawby/event-bus/testing
 */
import type { Catalog, EventTypeOf } from '../catalog';
import type { BaseEvent } from '../envelope';
import { EventBusError, InvalidOptionError, type ErrorInfo } from '../errors';
import { createEventBus } from '../bus/create-event-bus';
import type { BusObserver, DeliverySettledObservation } from '../bus/observation';
import type { CatalogEvent, EventBus, EventBusOptions } from '../bus/types';
import { memoryStorage } from '../storage/memory-storage';

/** What the `waitFor...` helpers watch: a publish, or an attempt's outcome (`kind` is the outcome). */
export type BusObservation =
  | { kind: 'published'; event: BaseEvent }
  | { kind: 'succeeded'; event: BaseEvent; subscriber: string; attempt: number; deliveryId: string }
  | { kind: 'retrying'; event: BaseEvent; subscriber: string; attempt: number; deliveryId: string; error: ErrorInfo; retryAt: Date }
  | { kind: 'dead-lettered'; event: BaseEvent; subscriber: string; attempt: number; deliveryId: string; error: ErrorInfo };

/**
 * A bus for tests: in-memory storage, in-process transport, and retries
 * measured in milliseconds (3 attempts, 1–10 ms) unless you pass your own.
 * Not started: call `start()` when handlers should run.
 */
export function createTestBus<const C extends Catalog>(options: EventBusOptions<C>): EventBus<C> {
  return createEventBus({
    storage: memoryStorage(),
    ...options,
    retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 10, ...options.retry },
    dispatch: { pollIntervalMs: 20, shutdownTimeoutMs: 1000, ...options.dispatch },
  });
}

/** The settlement as the helpers report it; outcomes other than these three are not waited for. */
function outcomeOf(o: DeliverySettledObservation): BusObservation | undefined {
  const base = { event: o.event, subscriber: o.subscriber, attempt: o.attempt, deliveryId: o.deliveryId };
  if (o.outcome === 'succeeded') return { kind: 'succeeded', ...base };
  if (o.outcome === 'retrying' && o.error && o.retryAt) return { kind: 'retrying', ...base, error: o.error, retryAt: o.retryAt };
  if (o.outcome === 'dead-lettered' && o.error) return { kind: 'dead-lettered', ...base, error: o.error };
  return undefined;
}

/** Watches publishes and outcomes through the bus's public `observe()`. */
function observe(bus: EventBus<Catalog>, listener: (observation: BusObservation) => void): () => void {
  if (typeof (bus as Partial<EventBus<Catalog>> | undefined)?.observe !== 'function') {
    throw new InvalidOptionError('bus', 'not a bus made by createEventBus of this package');
  }
  const observer: BusObserver = {
    published: ({ event }) => listener({ kind: 'published', event }),
    deliverySettled: (settled) => {
      const outcome = outcomeOf(settled);
      if (outcome) listener(outcome);
    },
  };
  return bus.observe(observer);
}

/** Events a bus published since {@link captureEvents} was called. */
export interface CapturedEvents<C extends Catalog> {
  /** Every captured event, oldest first. */
  readonly events: readonly CatalogEvent<C>[];
  /** The captured events of one type. */
  ofType<T extends EventTypeOf<C>>(type: T): CatalogEvent<C, T>[];
  /** Forgets what was captured so far. */
  clear(): void;
  /** Stops capturing. */
  stop(): void;
}

/** Records every event the bus publishes from now on (repeated idempotency keys excluded). */
export function captureEvents<C extends Catalog>(bus: EventBus<C>): CapturedEvents<C> {
  const events: CatalogEvent<C>[] = [];
  const stop = observe(bus as unknown as EventBus<Catalog>, (o) => {
    if (o.kind === 'published') events.push(o.event as CatalogEvent<C>);
  });
  return {
    events,
    ofType: (type) => events.filter((e) => e.eventType === type) as never,
    clear: () => void events.splice(0),
    stop,
  };
}

/** Options of the `waitFor...` helpers. */
export interface WaitOptions {
  /** Rejects after this long (default 5000 ms). */
  timeoutMs?: number;
}

function waitForObservation<T>(
  bus: EventBus<Catalog>,
  pick: (o: BusObservation) => T | undefined,
  what: string,
  options: WaitOptions,
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new EventBusError('IDLE_TIMEOUT', `Timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const stop = observe(bus, (o) => {
      const picked = pick(o);
      if (picked === undefined) return;
      clearTimeout(timer);
      stop();
      resolve(picked);
    });
  });
}

/** Resolves with the next published event of `type` (or matching `predicate`). */
export function waitForEvent<C extends Catalog, T extends EventTypeOf<C>>(
  bus: EventBus<C>,
  type: T | ((event: CatalogEvent<C>) => boolean),
  options: WaitOptions = {},
): Promise<CatalogEvent<C, T>> {
  const matches = typeof type === 'function' ? type : (e: BaseEvent) => e.eventType === type;
  return waitForObservation(
    bus as unknown as EventBus<Catalog>,
    (o) => (o.kind === 'published' && matches(o.event as CatalogEvent<C>) ? (o.event as CatalogEvent<C, T>) : undefined),
    typeof type === 'function' ? 'a matching event' : `event "${type}"`,
    options,
  );
}

/** Which delivery outcome to wait for. */
export interface DeliveryMatch {
  subscriber?: string;
  eventType?: string;
  eventId?: string;
  /** Default: `'succeeded'` or `'dead-lettered'` (a final outcome). */
  outcome?: 'succeeded' | 'retrying' | 'dead-lettered';
}

/** A delivery outcome as {@link waitForDelivery} reports it. */
export type DeliveryOutcome = Exclude<BusObservation, { kind: 'published' }>;

/** Resolves with the next delivery outcome that matches. */
export function waitForDelivery<C extends Catalog>(
  bus: EventBus<C>,
  match: DeliveryMatch = {},
  options: WaitOptions = {},
): Promise<DeliveryOutcome> {
  return waitForObservation(
    bus as unknown as EventBus<Catalog>,
    (o) => {
      if (o.kind === 'published') return undefined;
      if (match.outcome ? o.kind !== match.outcome : o.kind === 'retrying') return undefined;
      if (match.subscriber !== undefined && o.subscriber !== match.subscriber) return undefined;
      if (match.eventType !== undefined && o.event.eventType !== match.eventType) return undefined;
      if (match.eventId !== undefined && o.event.eventId !== match.eventId) return undefined;
      return o;
    },
    `a delivery matching ${JSON.stringify(match)}`,
    options,
  );
}
