/**
 * The transport port: carries "there is work" between publishers and
 * dispatchers, and across processes the notices of committed events.
 *
 * The storage stays the source of truth: a notice only says which events were
 * committed, so a lost or repeated notice costs latency, never an event
 * (dispatchers also poll). Transports with consumer groups (Redis Streams,
 * NATS JetStream) spread notices over the members of a group.
 */

/** A notice that an event was committed. */
export interface TransportMessage {
  eventId: string;
  eventType: string;
  /** Present when the event was published with an ordering key. */
  orderingKey?: string;
}

/** What a transport can do, so the core and the contract suite know what to expect. */
export interface TransportCapabilities {
  /** Messages reach other processes. */
  readonly crossProcess: boolean;
  /** Messages survive a transport restart and are redelivered until acknowledged. */
  readonly durable: boolean;
}

/** Handles a batch of messages; resolving acknowledges them, rejecting asks for redelivery (if durable). */
export type TransportHandler = (messages: readonly TransportMessage[]) => Promise<void> | void;

/** A consumer's membership of a group. */
export interface TransportSubscription {
  /** Leaves the group after the handler calls in progress have settled. */
  unsubscribe(): Promise<void>;
}

/**
 * Transport port. Obligations of every implementation (checked by
 * `test/contract/transport.contract.ts`):
 *
 * - Every message published after a consumer joined group `g` reaches exactly
 *   one member of `g` (at least once if `durable`; a rejected handler call is
 *   redelivered, to this or another member), and every group receives it.
 * - Messages with the same `orderingKey` reach a group in publish order.
 * - After `unsubscribe()` resolves, that consumer's handler is not called
 *   again; when the last member leaves, a durable group keeps its pending
 *   messages (they are not deleted with the consumer).
 * - `close()` waits for handler calls in progress, then closes what the
 *   transport created (not clients the user passed in). It is idempotent.
 */
export interface Transport {
  /** Short name for logs, e.g. `'in-process'`, `'redis'`. */
  readonly name: string;
  /** What this transport can do. */
  readonly capabilities: TransportCapabilities;
  /** Sends messages; resolves once the transport has accepted them. */
  publish(messages: readonly TransportMessage[]): Promise<void>;
  /** Joins consumer group `group` with `handler`. */
  subscribe(group: string, handler: TransportHandler): Promise<TransportSubscription>;
  /** Waits for handler calls in progress, then closes what the transport created; idempotent. */
  close(): Promise<void>;
}
