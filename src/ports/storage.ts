/**
 * The storage port: where events and their delivery state live.
 *
 * Terminology (used the same way everywhere, see `docs/glossary.md`):
 * - **event**: an immutable envelope ({@link BaseEvent}) appended once.
 * - **subscriber**: a named handler; its name, not the process running it,
 *   owns delivery state. Several processes may run the same subscriber.
 * - **delivery**: one (event, subscriber) pair and its state: due time,
 *   attempts, lease, outcome.
 * - **lease**: a time-limited claim of a delivery by one owner (a process's
 *   dispatcher). An expired lease lets another owner claim the delivery again.
 * - **dead letter**: a delivery that used all its attempts (or failed with a
 *   non-retryable error); it waits for `redrive` or `discard`.
 * - **replay**: making past events due again for some subscribers.
 *
 * Retry policy, backoff, validation and dispatch live in the core, once; a
 * storage only keeps state and answers queries, and must be safe to use from
 * many owners (processes) at once when `capabilities.shared` is true.
 */
import type { BaseEvent } from '../envelope';
import type { ErrorInfo } from '../errors';
import type { Transport } from './transport';

/** What a storage can do, so the core and the contract suite know what to expect. */
export interface StorageCapabilities {
  /** Appends can join a caller's transaction (`append(..., { tx })`) and `transaction()` exists. */
  readonly transactions: boolean;
  /** State survives a process restart. */
  readonly durable: boolean;
  /** Other processes see the same state (and may claim the same deliveries). */
  readonly shared: boolean;
}

/** An event to append, with the options that shape its deliveries. */
export interface AppendInput {
  /** The complete, validated envelope. */
  event: BaseEvent;
  /**
   * A second append with the same key stores nothing and yields the first
   * event. Scope: the whole storage. A key repeated with another event type or
   * organization (`undefined` counts as one) is refused with
   * `IDEMPOTENCY_CONFLICT` and the whole append stores nothing: a key never
   * hands one tenant another's event.
   */
  idempotencyKey?: string;
  /** Deliveries of events with the same key reach each subscriber in append order. */
  orderingKey?: string;
  /** No delivery is due before this time. */
  deliverAt?: Date;
}

/** Options of {@link Storage.append}. */
export interface AppendOptions {
  /** A transaction of the storage's own kind (e.g. a drizzle transaction); only if `capabilities.transactions`. */
  tx?: unknown;
  /**
   * Ask the storage to claim at once, for `claim.owner`, the new deliveries it
   * can hand over (due now, for the listed subscribers, within their limits).
   * A storage may ignore it (and must, inside a caller's transaction, since
   * the rows are not visible yet); the core then claims them later as usual.
   */
  claim?: ClaimOptions;
}

/** Result of {@link Storage.append}. */
export interface AppendResult {
  /** One per input, in input order: the stored event, or the earlier one for a repeated idempotency key. */
  events: BaseEvent[];
  /** Deliveries claimed on the caller's behalf (see {@link AppendOptions.claim}). */
  claimed: ClaimedDelivery[];
  /** Deliveries created that are due now and were not claimed (someone must be woken for them). */
  unclaimed: number;
}

/** A subscriber as the storage knows it. */
export interface SubscriberRegistration {
  /** Unique subscriber name, e.g. `'email.welcome'`. */
  name: string;
  /** Event types, `'domain.*'` patterns or `'*'` that it receives. */
  patterns: readonly string[];
}

/** One subscriber's share of a claim. */
export interface SubscriberClaim {
  /** The subscriber's name. */
  name: string;
  /** At most this many of its deliveries in this claim. */
  limit: number;
}

/** Options of {@link Storage.claim}. */
export interface ClaimOptions {
  /** Who claims: unique per dispatcher instance. */
  owner: string;
  /** The subscribers to claim for, each with its own limit. */
  subscribers: readonly SubscriberClaim[];
  /** At most this many deliveries in total. */
  limit: number;
  /** Lease length: the delivery may be claimed by another owner this long after the claim. */
  leaseMs: number;
}

/** The proof of a claim: only the current holder of the lease may settle the delivery. */
export interface Lease {
  /** Stable per (event, subscriber): the same across attempts and processes. */
  deliveryId: string;
  /** Changes with every claim; a settle call with a stale token is refused (fencing). */
  token: string;
}

/** A delivery handed to an owner to run. */
export interface ClaimedDelivery extends Lease {
  /** The subscriber that must handle it. */
  subscriber: string;
  /** The event as stored (possibly an older version; the core upcasts). */
  event: BaseEvent;
  /** This attempt's number, 1 for the first. */
  attempt: number;
  /** When the lease runs out unless extended. */
  leaseExpiresAt: Date;
}

/** How a failed attempt ends. */
export interface FailOutcome {
  /** What was thrown. */
  error: ErrorInfo;
  /** When to try again; `null` moves the delivery to the dead letters. */
  retryAt: Date | null;
}

/** Counts of a set of subscribers' unfinished deliveries (see {@link Storage.backlog}). */
export interface Backlog {
  /** Due now and not leased. */
  due: number;
  /** Leased by some owner (running). */
  leased: number;
  /** Waiting for a retry after a failed attempt. */
  retrying: number;
  /** Waiting for a `deliverAt` in the future, never attempted. */
  scheduled: number;
}

/** One subscriber's unfinished deliveries and lag (see {@link Storage.backlogBySubscriber}). */
export interface SubscriberBacklog extends Backlog {
  /** The subscriber's name. */
  subscriber: string;
  /**
   * Age, in ms since its `timestamp`, of the oldest event this subscriber has
   * not finished that is due or running (not one waiting for a retry or a
   * future `deliverAt`); `null` if none. How far behind the subscriber is.
   */
  oldestPendingAgeMs: number | null;
  /** When a process last registered the name (registration is the heartbeat of a name). */
  lastSeenAt: Date;
}

/**
 * Known codes of {@link HealthWarning}s (each described in `docs/operating.md`).
 * A storage of another project may report codes of its own.
 */
export type HealthWarningCode =
  | 'DEAD_LETTERS_WAITING'
  | 'SUBSCRIBER_STALE'
  | 'AUTOVACUUM_DISABLED'
  | 'XMIN_HORIZON_PINNED'
  | 'DEAD_TUPLES_HIGH'
  | 'LISTEN_UNAVAILABLE';

/** Something a person can act on, reported by `bus.health()` (it does not make the bus unhealthy). */
export interface HealthWarning {
  /** Stable code (see `docs/operating.md`). */
  code: HealthWarningCode | (string & {});
  /** What is wrong and what to do, for a person; no payload values. */
  message: string;
  /** The subscriber concerned, if one. */
  subscriber?: string;
  /** The table concerned, if one (a storage's quoted name). */
  table?: string;
  /** The number behind the warning (dead letters, dead tuples, pending deliveries), if any. */
  count?: number;
  /** The age behind the warning (a transaction's, a subscriber's last heartbeat), in ms, if any. */
  ageMs?: number;
}

/**
 * The events one reader may see at most (a tenant boundary, e.g. what the HTTP
 * timeline route allows its caller): events of the listed organizations, by
 * any actor, and events with no organization whose actor is `actor`. As SQL:
 * `organization_id = ANY(organizationIds) OR (organization_id IS NULL AND actor = actor)`.
 */
export interface TimelineScope {
  /** Organizations whose events are in scope; empty: none. */
  organizationIds: readonly string[];
  /** Events without an organization are in scope only if this is their actor; absent: none of them. */
  actor?: string;
}

/**
 * Query of {@link Storage.timeline}. Results are newest first. The filters
 * combine with AND; `scope` narrows whatever the other filters select.
 */
export interface TimelineQuery {
  actor?: string;
  organizationId?: string;
  eventTypes?: readonly string[];
  /** Only events inside this scope. */
  scope?: TimelineScope;
  /** Inclusive lower bound on `timestamp`. */
  from?: Date;
  /** Exclusive upper bound on `timestamp`. */
  to?: Date;
  /** Page size, 1 to 1000. */
  limit: number;
  /**
   * `nextCursor` of the previous page. A cursor this storage did not issue
   * (wrong shape, or the right shape with values it cannot have written, such
   * as an impossible timestamp) is refused with `InvalidOptionError` (option
   * `cursor`) before any query runs.
   */
  cursor?: string;
}

/** One page of a timeline. */
export interface TimelinePage {
  /** Newest first. */
  events: BaseEvent[];
  /**
   * Pass as `cursor` to get the next (older) page; `null` on the last page.
   * Always 1 to 1024 characters of the base64url alphabet (`[A-Za-z0-9_-]`), so
   * it travels unescaped in a URL and a route can refuse anything else unasked.
   */
  nextCursor: string | null;
}

/** Query of {@link Storage.replay}: which events to make due again, for whom. */
export interface ReplayQuery {
  eventTypes?: readonly string[];
  actor?: string;
  organizationId?: string;
  from?: Date;
  to?: Date;
  /** Subscribers to replay to (only those whose patterns match each event); all registered ones when absent. */
  subscribers?: readonly string[];
}

/** A delivery that ended in failure, waiting for `redrive` or `discard`. */
export interface DeadLetter {
  /** The dead letter's id (the delivery id). */
  id: string;
  eventId: string;
  eventType: string;
  subscriber: string;
  /** Attempts made. */
  attempts: number;
  /** The last error, with its stack. */
  error: ErrorInfo;
  failedAt: Date;
  /** The event itself. */
  event: BaseEvent;
}

/** Filter of dead letters (all fields optional, combined with AND). */
export interface DeadLetterFilter {
  subscriber?: string;
  eventType?: string;
  eventId?: string;
  /** At most this many (default 100). */
  limit?: number;
}

/** What the storage reports for `bus.health()`. */
export interface StorageHealth {
  /** Events not yet processed by every subscriber. */
  unprocessed: number;
  /** Dead letters waiting. */
  deadLetters: number;
  /** Age of the oldest unprocessed event that is due, in ms; `null` if none. */
  oldestPendingAgeMs: number | null;
}

/**
 * Storage port. Obligations of every implementation (checked by
 * `test/contract/storage.contract.ts`):
 *
 * - `append` is atomic: all inputs and their deliveries are stored, or none
 *   (and with `tx`, they commit or roll back with the caller's transaction).
 *   It creates one delivery per event for every registered subscriber whose
 *   patterns match. An event with no matching subscriber is processed at once,
 *   unless no subscriber is registered at all (a publishing-only setup), in
 *   which case it waits for the first subscribers to register.
 * - `register` is idempotent. A name registered for the first time receives
 *   the matching events that are not yet processed, never older history.
 * - `claim` hands out due, unleased (or lease-expired) deliveries, oldest
 *   first, each to exactly one owner at a time, never more than each
 *   subscriber's limit, and never a delivery whose `orderingKey` has an earlier
 *   unfinished delivery for the same subscriber. Claiming counts an attempt.
 * - `complete`, `fail`, `release` and `extend` succeed only for the current
 *   lease (matching token, not taken over); otherwise they change nothing and
 *   return `false`. `release` gives the attempt back.
 * - A finished delivery (completed or dead-lettered) is never claimed again,
 *   unless redriven or replayed. When every delivery of an event is finished,
 *   the event is `processed`.
 * - `close` releases what the storage created (connections, timers), not
 *   clients the user passed in.
 */
export interface Storage {
  /** Short name for logs, e.g. `'memory'`, `'postgres'`. */
  readonly name: string;
  /** What this storage can do. */
  readonly capabilities: StorageCapabilities;

  /** Registers (or re-announces) subscribers; also a heartbeat that keeps their names alive. */
  register(subscribers: readonly SubscriberRegistration[]): Promise<void>;
  /** Forgets a subscriber: its unfinished deliveries are dropped and it gets no new ones. */
  retire(name: string): Promise<void>;

  /** Appends events atomically (see the obligations above). */
  append(inputs: readonly AppendInput[], options?: AppendOptions): Promise<AppendResult>;

  /** Claims due deliveries for `owner`. */
  claim(options: ClaimOptions): Promise<ClaimedDelivery[]>;
  /** Extends leases still held; returns the delivery ids that were extended. */
  extend(leases: readonly Lease[], leaseMs: number): Promise<string[]>;
  /** Marks a delivery done (with `tx`, inside that transaction). */
  complete(lease: Lease, options?: { tx?: unknown }): Promise<boolean>;
  /** Records a failed attempt: schedules a retry, or dead-letters when `retryAt` is `null`. */
  fail(lease: Lease, outcome: FailOutcome): Promise<boolean>;
  /** Gives a claimed delivery back unrun, due now, without spending its attempt. */
  release(lease: Lease): Promise<boolean>;

  /** Earliest time one of these subscribers' unleased, unfinished deliveries becomes due; `null` if none. */
  nextDueAt(subscribers: readonly string[]): Promise<Date | null>;
  /** Counts these subscribers' unfinished deliveries. */
  backlog(subscribers: readonly string[]): Promise<Backlog>;
  /**
   * The same counts per subscriber, with each one's oldest pending age and
   * last heartbeat: one entry per listed subscriber the storage knows (every
   * registered one when `subscribers` is absent, including names no process
   * runs any more), by name. The entries add up to what `backlog` counts.
   */
  backlogBySubscriber(subscribers?: readonly string[]): Promise<SubscriberBacklog[]>;

  /** Events newest first, keyset-paginated. */
  timeline(query: TimelineQuery): Promise<TimelinePage>;
  /** Makes matching events due again for the chosen subscribers; returns deliveries scheduled. */
  replay(query: ReplayQuery): Promise<number>;

  /** Dead letters matching the filter, oldest first. */
  listDeadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  /** Puts dead letters back as due deliveries with fresh attempts; returns how many. */
  redrive(target: string | DeadLetterFilter): Promise<number>;
  /** Deletes a dead letter for good; returns whether it existed. */
  discard(id: string): Promise<boolean>;

  /** Counts for `bus.health()`. */
  health(): Promise<StorageHealth>;
  /**
   * Conditions of the storage itself a person should act on (for PostgreSQL:
   * autovacuum off, a long transaction, dead tuples, no LISTEN), for
   * `bus.health()`. Optional. Dead letters and stale subscribers are found by
   * the core for every storage, from `health` and `backlogBySubscriber`.
   */
  warnings?(): Promise<HealthWarning[]>;

  /**
   * Runs `fn` in a transaction of this storage and passes it the transaction
   * handle (used by transactional subscribers). Only if `capabilities.transactions`.
   */
  transaction?<T>(fn: (tx: unknown) => Promise<T>): Promise<T>;
  /**
   * Calls `onWork` when another process may have made deliveries due (e.g.
   * Postgres LISTEN/NOTIFY). Optional: without it the core relies on the
   * transport and on polling. Returns a function that stops watching.
   */
  watch?(onWork: () => void): Promise<() => Promise<void>>;

  /**
   * Records a dead letter for a delivery the core ran from a cross-process
   * transport (not claimed from this storage), so `listDeadLetters`,
   * `redrive`, `discard` and `health` see it as any other. Optional: a bus
   * with a cross-process transport needs it once a subscriber dead-letters.
   */
  recordDeadLetter?(record: DeadLetterRecord): Promise<void>;
  /**
   * Starts the outbox relay: forwards committed events to `transport` in
   * commit order, at least once, with one relay active at a time among all
   * processes on this storage. Optional: only storages with a commit-ordered
   * log have one (PostgreSQL); without it the core publishes to the
   * transport itself after each append.
   */
  startRelay?(transport: Transport, options: RelayOptions): Promise<RelayHandle>;
  /** Committed events the relay has not sent yet (0 when this process's relay is caught up or there is none). */
  relayBacklog?(): Promise<number>;

  /**
   * Synchronous twins of `append` and `complete`, for a storage whose state
   * lives in this process (the memory storage). Optional: when present, the
   * bus calls them on its hot path instead (a publish without `tx` or publish
   * middleware, a completion outside a transaction), which saves a promise and
   * an event-loop turn per call. Same semantics and errors as the async ones.
   */
  readonly sync?: SyncStorageOperations;

  /** Releases what the storage created (connections, timers); idempotent. */
  close(): Promise<void>;
}

/** The synchronous operations of a process-local storage (see {@link Storage.sync}). */
export interface SyncStorageOperations {
  /**
   * {@link Storage.append}, settled before it returns (it throws what `append` would reject with).
   * `now` is the caller's `Date.now()`, read just before (the bus's publish reads the clock once for
   * the event's timestamp; the storage need not read it again).
   */
  append(inputs: readonly AppendInput[], options?: AppendOptions, now?: number): AppendResult;
  /** {@link Storage.complete} outside a transaction, settled before it returns. */
  complete(lease: Lease): boolean;
}

/** A dead letter of a transport delivery (see {@link Storage.recordDeadLetter}). */
export interface DeadLetterRecord {
  /** The subscriber whose attempts ran out. */
  subscriber: string;
  /** The event as delivered. */
  event: BaseEvent;
  /** The event's ordering key, if it had one. */
  orderingKey?: string;
  /** Its place in the storage's log, when the relay sent it. */
  position?: string;
  /** Attempts made. */
  attempts: number;
  /** What the last attempt threw. */
  error: ErrorInfo;
}

/** Options of {@link Storage.startRelay}. */
export interface RelayOptions {
  /** Unique per process: who holds the relay's lease. */
  owner: string;
  /** The subscriber names whose progress the relay follows (this process's; heads of others move too). */
  subscribers: () => readonly string[];
}

/** A running relay (see {@link Storage.startRelay}). */
export interface RelayHandle {
  /** Stops relaying and gives up the lease, so another process takes over at once. */
  stop(): Promise<void>;
}
