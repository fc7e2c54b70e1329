/**
 * The transport port: carries whole events from publishers (or the outbox
 * relay) to the subscribers, across processes when the transport can.
 *
 * Each subscriber name is one consumer group: every event matching its
 * patterns reaches one member of the group (at least once if `durable`),
 * whichever process that member runs in, and every group gets every event.
 * A delivery stays the member's until it acknowledges it, asks for it again
 * later, or its lease runs out (the member died): then the transport hands it
 * to another member.
 *
 * Retries and dead letters are the bus's, not the broker's: the core counts
 * attempts, picks the backoff, and records dead letters in its storage; the
 * transport only holds a delivery back for the delay it is given.
 *
 * When the transport is not `crossProcess` (the in-process default), the core
 * delivers from the storage and does not consume from the transport at all.
 */
import type { BaseEvent } from '../envelope';

/** An event as a transport carries it. */
export interface TransportEvent {
  /** The envelope as stored (JSON-safe: the transport may serialise it). */
  event: BaseEvent;
  /** Events with the same key reach each group one at a time, in publish order (if `orderedPerKey`). */
  orderingKey?: string;
  /** Its place in the outbox log when the relay sent it (opaque to the transport, handed back on delivery). */
  position?: string;
  /** Only this group receives it (a redrive or replay for one subscriber); absent: every matching group. */
  subscriber?: string;
}

/** What a transport can do, so the core and the contract suite know what to expect. */
export interface TransportCapabilities {
  /** Events reach members in other processes: the core consumes deliveries from the transport. */
  readonly crossProcess: boolean;
  /** Published events survive a transport restart and are redelivered until acknowledged. */
  readonly durable: boolean;
  /**
   * Events with one `orderingKey` go to a single member of a group at a time,
   * in publish order, and the next one is not handed out to any other member
   * while an earlier one is unacknowledged by its holder.
   */
  readonly orderedPerKey: boolean;
  /** `retry(delayMs)` is held back by the broker itself (without it, the member holds the delay). */
  readonly delayedDelivery: boolean;
  /** The broker drops a second publish of the same `eventId` within its window. */
  readonly deduplicates: boolean;
}

/** One event handed to one member of a group. */
export interface TransportDelivery {
  /** The event as published. */
  readonly event: BaseEvent;
  /** As given to {@link Transport.publish}. */
  readonly orderingKey?: string;
  /** As given to {@link Transport.publish}. */
  readonly position?: string;
  /**
   * How many times the transport has handed this event to this group, 1 the
   * first time. After a lease ran out it may have grown by more than one: a
   * broker can count a hand-out that reached no member (NATS redelivering to
   * a pull that had just ended).
   */
  readonly deliveryCount: number;
  /** Done: the group never sees this event again (unless it is published again). */
  ack(): Promise<void>;
  /** Hand it out again, to this or another member, no sooner than `delayMs` from now. */
  retry(delayMs: number): Promise<void>;
  /** Still working on it: renew the lease. Resolves `false` when the lease was already lost. */
  extend(): Promise<boolean>;
}

/** Options of {@link Transport.consume}. */
export interface ConsumeOptions {
  /** Event types, `'domain.*'` patterns or `'*'` this group receives (the same for every member). */
  patterns: readonly string[];
  /** A member's hold on a delivery: unacknowledged and not extended for this long, it goes to another member. */
  leaseMs: number;
  /** Unique per member (per dispatcher instance); shows up in the broker's own tools. */
  member: string;
}

/** A member's place in one consumer group. */
export interface TransportConsumer {
  /**
   * Up to `max` deliveries; waits up to `waitMs` for the first one when there
   * is none. Resolves with what it has (possibly none) when `signal` aborts.
   */
  fetch(max: number, waitMs: number, signal?: AbortSignal): Promise<TransportDelivery[]>;
  /**
   * Leaves the group. Deliveries not yet acknowledged go to other members
   * (at once where the broker allows, else when their lease runs out).
   */
  close(): Promise<void>;
}

/**
 * Transport port. Obligations of every implementation (checked by
 * `test/contract/transport.contract.ts`):
 *
 * - Every event published after a group first existed reaches one member of
 *   that group (at least once if `durable`); every group receives every event
 *   matching its patterns (only group `subscriber` when it is set), and none other.
 * - A delivery handed out is not handed to another member while its holder's
 *   lease runs; after `retry(delayMs)` it comes back no sooner than `delayMs`
 *   (to this or another member) with `deliveryCount` one higher; after `ack()`
 *   never again.
 * - With `orderedPerKey`, see {@link TransportCapabilities.orderedPerKey}.
 * - A group with no member keeps its pending events if `durable`.
 * - `close()` closes what the transport created (not clients the user passed
 *   in); unacknowledged deliveries stay pending in a durable broker. It is idempotent.
 */
export interface Transport {
  /** Short name for logs, e.g. `'in-process'`, `'redis'`. */
  readonly name: string;
  /** What this transport can do. */
  readonly capabilities: TransportCapabilities;
  /** Sends events, in order; resolves once the transport has accepted (durably, if `durable`) all of them. */
  publish(events: readonly TransportEvent[]): Promise<void>;
  /** Joins consumer group `group` as member `options.member`, creating the group if needed. */
  consume(group: string, options: ConsumeOptions): Promise<TransportConsumer>;
  /**
   * Where each group stands: the oldest position it has not acknowledged
   * (`null` when it has acknowledged everything it was sent). The outbox
   * relay uses it to move the storage's subscriber heads and, after the
   * broker lost its data, to know what to send again. Only transports fed by
   * the relay need it.
   */
  progress?(groups: readonly string[]): Promise<TransportProgress>;
  /** Closes what the transport created; idempotent. */
  close(): Promise<void>;
}

/** Answer of {@link Transport.progress}. */
export interface TransportProgress {
  /**
   * `false` when the broker no longer holds what it was sent (its data was
   * lost, e.g. a Redis restart without persistence): the relay then sends
   * again everything past the storage's subscriber heads.
   */
  intact: boolean;
  /**
   * Per group: the oldest unacknowledged event's `position` (its `eventId` if
   * it has none), or `null` if none is pending. A group the broker has no
   * consumer for (never joined, or lost with the broker's data) is left out:
   * it was not there for what was sent.
   */
  oldestPending: Record<string, string | null>;
}
