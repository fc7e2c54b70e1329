/**
 * Attempt records for the demo's report (deliveries per subscriber, with
 * their attempts), taken from the bus's public observation seam rather than
 * by wrapping each handler.
 */
import type { DeliveryOutcomeKind } from '@blawby/event-bus';
import type { BlawbyBus } from './bus';

/** One attempt of one delivery, as an observer sees it. */
export interface AttemptRecord {
  subscriber: string;
  eventId: string;
  eventType: string;
  attempt: number;
  /** `failed` covers a retry scheduled and a dead letter alike. */
  outcome: 'succeeded' | 'failed';
  /** The error's message when it failed. */
  error?: string;
  /** When the attempt began. */
  startedAt: Date;
  /** How long the handler ran. */
  durationMs: number;
}

/** Told about every attempt of every handler on the bus. */
export type AttemptObserver = (record: AttemptRecord) => void;

const REPORTED: Partial<Record<DeliveryOutcomeKind, AttemptRecord['outcome']>> = {
  succeeded: 'succeeded',
  retrying: 'failed',
  'dead-lettered': 'failed',
};

/**
 * Reports each attempt that ends in success, a retry or a dead letter to
 * `observe` (an attempt given back at shutdown, or whose lease another worker
 * took over, recorded nothing and is not reported). Returns the function that stops it.
 */
export function observeAttempts(bus: BlawbyBus, observe: AttemptObserver): () => void {
  const startedAt = new Map<string, Date>();
  const key = (o: { deliveryId: string; attempt: number }) => `${o.deliveryId}:${o.attempt}`;
  return bus.observe({
    deliveryStarted: (o) => void startedAt.set(key(o), o.startedAt),
    deliverySettled: (o) => {
      const started = startedAt.get(key(o));
      startedAt.delete(key(o));
      const outcome = REPORTED[o.outcome];
      if (!outcome || !started) return;
      const { eventId, eventType } = o.event;
      const record: AttemptRecord = {
        subscriber: o.subscriber,
        eventId,
        eventType,
        attempt: o.attempt,
        outcome,
        startedAt: started,
        durationMs: o.durationMs,
      };
      if (o.error) record.error = o.error.message;
      observe(record);
    },
  });
}
