/**
 * A bus's observers: what `@blawby/event-bus/testing` uses to wait for
 * publishes and delivery outcomes without polling. Kept off the public
 * `EventBus` type; reached through a well-known symbol.
 */
import type { BaseEvent } from '../envelope';
import type { ErrorInfo } from '../errors';

/** Something that happened on a bus, as an observer sees it. */
export type BusObservation =
  | { kind: 'published'; event: BaseEvent }
  | { kind: 'succeeded'; event: BaseEvent; subscriber: string; attempt: number; deliveryId: string }
  | { kind: 'retrying'; event: BaseEvent; subscriber: string; attempt: number; deliveryId: string; error: ErrorInfo; retryAt: Date }
  | { kind: 'dead-lettered'; event: BaseEvent; subscriber: string; attempt: number; deliveryId: string; error: ErrorInfo };

/** A function that receives every observation. */
export type BusObserver = (observation: BusObservation) => void;

/** The symbol under which a bus exposes `(observer) => unsubscribe`. */
export const observeBus: unique symbol = Symbol.for('@blawby/event-bus/observe');

/** A set of observers that costs one size check when empty (the hot path). */
export class Observers {
  private readonly set = new Set<BusObserver>();

  add(observer: BusObserver): () => void {
    this.set.add(observer);
    return () => void this.set.delete(observer);
  }

  get active(): boolean {
    return this.set.size > 0;
  }

  emit(observation: BusObservation): void {
    for (const observer of this.set) {
      try {
        observer(observation);
      } catch {
        // An observer's bug must not change delivery outcomes.
      }
    }
  }
}
