/**
 * How the Blawby handlers subscribe: a named subscriber on the bus, with an
 * optional observer told about every attempt (the demo uses it to report
 * deliveries per subscriber with their attempts).
 */
import type { BaseEvent, EventBus, EventPattern, Handler, SubscribeOptions } from '@blawby/event-bus';
import type { BlawbyCatalog } from '../catalog';

/** The Blawby event bus. */
export type BlawbyBus = EventBus<BlawbyCatalog>;

/** One attempt of one delivery, as an observer sees it. */
export interface AttemptRecord {
  subscriber: string;
  eventId: string;
  eventType: string;
  attempt: number;
  outcome: 'succeeded' | 'failed';
  /** The error's message when it failed. */
  error?: string;
  /** When the attempt began. */
  startedAt: Date;
  durationMs: number;
}

/** Told about every attempt of every Blawby handler. */
export type AttemptObserver = (record: AttemptRecord) => void;

/**
 * Subscribes `handler` under `options.name`, reporting each attempt to
 * `observe`. Returns the unsubscribe function.
 */
export function subscribeObserved<const P extends EventPattern<BlawbyCatalog>>(
  bus: BlawbyBus,
  pattern: P,
  handler: Handler<BlawbyCatalog, P>,
  options: SubscribeOptions,
  observe?: AttemptObserver,
): () => void {
  const run: Handler<BlawbyCatalog, P> = async (event, ctx) => {
    const started = performance.now();
    const { eventId, eventType } = event as unknown as BaseEvent;
    const base = { subscriber: options.name, eventId, eventType, attempt: ctx.attempt, startedAt: new Date() };
    try {
      await handler(event, ctx);
      observe?.({ ...base, outcome: 'succeeded', durationMs: performance.now() - started });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      observe?.({ ...base, outcome: 'failed', error, durationMs: performance.now() - started });
      throw err;
    }
  };
  return bus.subscribe(pattern, run as never, options);
}
