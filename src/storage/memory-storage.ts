/**
 * The in-memory storage: the default, and the storage of `@blawby/event-bus/testing`.
 * It keeps the same semantics as the durable storages (leases, retries,
 * ordering keys, dead letters) within one process, held to the same contract
 * suite. Memory stays flat in a long run: finished deliveries are dropped at
 * once and only a bounded window of recent events is kept for timeline and replay.
 */
import { matchesPattern } from '../catalog';
import type { BaseEvent } from '../envelope';
import { EventBusError, InvalidOptionError } from '../errors';
import { freezeJson, freezeMetadata, isFrozenPayload } from '../json-safe';
import type {
  AppendInput,
  AppendOptions,
  AppendResult,
  Backlog,
  ClaimedDelivery,
  ClaimOptions,
  DeadLetter,
  DeadLetterFilter,
  DeadLetterRecord,
  FailOutcome,
  Lease,
  ReplayQuery,
  Storage,
  StorageCapabilities,
  StorageHealth,
  SubscriberBacklog,
  SubscriberRegistration,
  SyncStorageOperations,
  TimelinePage,
  TimelineQuery,
  TimelineScope,
} from '../ports/storage';
import { Fifo } from '../collections/fifo';
import { MinHeap } from '../collections/min-heap';
import { RingBuffer } from '../collections/ring-buffer';
import { SlotList } from '../collections/slot-list';

/** Options of {@link memoryStorage}. */
export interface MemoryStorageOptions {
  /** Recent events kept for `timeline`, `replay` and idempotency keys (default 1000). Unfinished events are always kept. */
  maxEvents?: number;
}

interface EventRecord {
  seq: number;
  event: BaseEvent;
  /** Unfinished deliveries. */
  pending: number;
  idempotencyKey: string | undefined;
  orderingKey: string | undefined;
  deliverAt: number;
}

type Place = 'due' | 'waiting' | 'blocked' | 'leased' | 'done';

interface Delivery {
  /** Made on first use: most deliveries finish without anyone asking for it. */
  id: string | undefined;
  sub: SubscriberState;
  rec: EventRecord;
  attempts: number;
  runAt: number;
  orderingKey: string | undefined;
  /** The current lease's number; 0 when not leased. */
  token: number;
  leaseExpiresAt: number;
  place: Place;
  /** Its place in `deliveries` (see SlotList). */
  slot: number;
}

interface SubscriberState {
  name: string;
  patterns: readonly string[];
  /** Due now, oldest first. Entries whose `place` changed are skipped when met. */
  due: Fifo<Delivery>;
  /** Not yet due (deliverAt or retry backoff), by `runAt`. */
  waiting: MinHeap<Delivery>;
  /** Unfinished deliveries per ordering key, in append order: only the first may run. */
  ordering: Map<string, Delivery[]>;
  /** No lease of this subscriber expires before this time. */
  leaseCheckAt: number;
  /** When `register` last named it (ms). */
  lastSeenAt: number;
}

const CAPABILITIES: StorageCapabilities = Object.freeze({ transactions: false, durable: false, shared: false });

/**
 * Creates an in-memory {@link Storage}: state lives in this process and is
 * lost when it exits. Use it for tests, scripts, and services whose events may
 * be lost on a crash; use `postgresStorage` when they may not.
 *
 * @example
 * ```ts
 * const bus = createEventBus({ catalog, storage: memoryStorage({ maxEvents: 50_000 }) });
 * ```
 */
export function memoryStorage(options: MemoryStorageOptions = {}): Storage {
  const maxEvents = options.maxEvents ?? 1000;
  if (!Number.isInteger(maxEvents) || maxEvents < 1) {
    throw new InvalidOptionError('maxEvents', 'must be a positive integer');
  }
  return new MemoryStorage(maxEvents);
}

class MemoryStorage implements Storage {
  readonly name = 'memory';
  readonly capabilities = CAPABILITIES;

  private seq = 0;
  private tokens = 0;
  private rotation = 0;
  private readonly subscribers = new Map<string, SubscriberState>();
  private readonly targetsByType = new Map<string, SubscriberState[]>();
  /**
   * The subscriber list of the last claim and the states it names: the bus
   * passes the same list with every publish, so the states are looked up once.
   */
  private claimedFor: { subscribers: readonly { name: string }[]; names: string[]; states: (SubscriberState | undefined)[] } | undefined;
  /** Unfinished deliveries. */
  private readonly deliveries = new SlotList<Delivery>();
  /** Events waiting for their first subscriber (none was registered when they were appended). */
  private readonly parked = new Set<EventRecord>();
  private unprocessedCount = 0;
  private readonly byIdempotencyKey = new Map<string, EventRecord>();
  private readonly deadLetters = new Map<string, DeadLetter>();
  /** The newest `maxEvents` events, for timeline, replay and idempotency keys. */
  private readonly window: RingBuffer<EventRecord>;

  constructor(maxEvents: number) {
    this.window = new RingBuffer(maxEvents);
  }

  async register(registrations: readonly SubscriberRegistration[]): Promise<void> {
    const added: SubscriberState[] = [];
    for (const { name, patterns } of registrations) {
      const existing = this.subscribers.get(name);
      if (existing) {
        existing.patterns = [...patterns];
        existing.lastSeenAt = Date.now();
        continue;
      }
      const state: SubscriberState = {
        name,
        patterns: [...patterns],
        due: new Fifo(),
        waiting: new MinHeap((d) => d.runAt),
        ordering: new Map(),
        leaseCheckAt: Infinity,
        lastSeenAt: Date.now(),
      };
      this.subscribers.set(name, state);
      added.push(state);
    }
    this.subscribersChanged();
    if (added.length === 0) return;
    // A new name receives what is not yet processed (including events parked
    // while no subscriber existed), never older history.
    const now = Date.now();
    for (const rec of this.unprocessedRecords()) {
      this.parked.delete(rec);
      for (const state of added) {
        if (state.patterns.some((p) => matchesPattern(p, rec.event.eventType))) {
          this.createDelivery(rec, state, rec.deliverAt, now, rec.orderingKey);
        }
      }
      if (rec.pending === 0) this.markProcessed(rec);
    }
  }

  async retire(name: string): Promise<void> {
    const state = this.subscribers.get(name);
    if (!state) return;
    this.subscribers.delete(name);
    this.subscribersChanged();
    for (const d of this.deliveries.values()) {
      if (d.sub === state) this.finish(d);
    }
  }

  /** The hot path's synchronous operations: nothing here waits for anything. */
  readonly sync: SyncStorageOperations = {
    append: (inputs, options, now) => this.appendNow(inputs, options, now ?? Date.now()),
    complete: (lease) => this.completeNow(lease),
  };

  async append(inputs: readonly AppendInput[], options?: AppendOptions): Promise<AppendResult> {
    return this.appendNow(inputs, options, Date.now());
  }

  private appendNow(inputs: readonly AppendInput[], options: AppendOptions | undefined, now: number): AppendResult {
    if (options?.tx !== undefined) {
      throw new EventBusError('UNSUPPORTED_BY_STORAGE', 'The memory storage has no transactions: publish without `tx`');
    }
    this.checkIdempotencyKeys(inputs);
    // Sized up front: a push onto `[]` would reserve room for 16 (the usual append has one).
    const events = new Array<BaseEvent>(inputs.length);
    let dueCreated = 0;
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]!;
      const key = input.idempotencyKey;
      if (key !== undefined) {
        const earlier = this.byIdempotencyKey.get(key);
        if (earlier) {
          events[i] = envelopeOf(earlier.event);
          continue;
        }
      }
      const deliverAt = input.deliverAt ? input.deliverAt.getTime() : now;
      const rec: EventRecord = {
        seq: ++this.seq,
        event: ownEvent(input.event),
        pending: 0,
        idempotencyKey: key,
        orderingKey: input.orderingKey,
        deliverAt,
      };
      if (key !== undefined) this.byIdempotencyKey.set(key, rec);
      this.forget(this.window.push(rec));
      const targets = this.targetsOf(rec.event.eventType);
      if (targets.length > 0) {
        this.unprocessedCount += 1;
        for (const state of targets) this.createDelivery(rec, state, deliverAt, now, rec.orderingKey);
        if (deliverAt <= now) dueCreated += targets.length;
      } else if (this.subscribers.size === 0) {
        this.unprocessedCount += 1;
        this.parked.add(rec); // until the first subscriber registers
      } else {
        rec.event.processed = true;
        input.event.processed = true;
      }
      // The caller's envelope is its own: the record keeps a copy (ownEvent).
      events[i] = input.event;
    }
    const claimed = options?.claim ? this.claimNow(options.claim, now) : [];
    return { events, claimed, unclaimed: Math.max(0, dueCreated - claimed.length) };
  }

  async claim(options: ClaimOptions): Promise<ClaimedDelivery[]> {
    return this.claimNow(options, Date.now());
  }

  async extend(leases: readonly Lease[], leaseMs: number): Promise<string[]> {
    const until = Date.now() + leaseMs;
    const extended: string[] = [];
    for (const lease of leases) {
      const d = this.held(lease);
      if (!d) continue;
      d.leaseExpiresAt = until;
      extended.push(idOf(d));
    }
    return extended;
  }

  async complete(lease: Lease, options?: { tx?: unknown }): Promise<boolean> {
    if (options?.tx !== undefined) {
      throw new EventBusError('UNSUPPORTED_BY_STORAGE', 'The memory storage has no transactions');
    }
    return this.completeNow(lease);
  }

  private completeNow(lease: Lease): boolean {
    const d = this.held(lease);
    if (!d) return false;
    this.finish(d);
    return true;
  }

  async fail(lease: Lease, outcome: FailOutcome): Promise<boolean> {
    const d = this.held(lease);
    if (!d) return false;
    d.rec.event.retryCount += 1;
    if (outcome.retryAt === null) {
      const id = idOf(d);
      this.deadLetters.set(id, {
        id,
        eventId: d.rec.event.eventId,
        eventType: d.rec.event.eventType,
        subscriber: d.sub.name,
        attempts: d.attempts,
        error: outcome.error,
        failedAt: new Date(),
        event: envelopeOf(d.rec.event),
      });
      this.finish(d);
      return true;
    }
    d.token = 0;
    d.runAt = outcome.retryAt.getTime();
    this.place(d, Date.now());
    return true;
  }

  async release(lease: Lease): Promise<boolean> {
    const d = this.held(lease);
    if (!d) return false;
    d.attempts -= 1;
    d.token = 0;
    d.runAt = Math.min(d.runAt, Date.now());
    this.place(d, Date.now());
    return true;
  }

  async nextDueAt(names: readonly string[]): Promise<Date | null> {
    const now = Date.now();
    let next = Infinity;
    for (const name of names) {
      const state = this.subscribers.get(name);
      if (!state) continue;
      this.promote(state, now);
      if (state.due.size > 0) return new Date(now);
      const top = state.waiting.peek();
      if (top) next = Math.min(next, top.runAt);
    }
    for (const d of this.deliveries) {
      if (d.place === 'leased' && names.includes(d.sub.name)) next = Math.min(next, d.leaseExpiresAt);
    }
    return next === Infinity ? null : new Date(next);
  }

  async backlog(names: readonly string[]): Promise<Backlog> {
    const wanted = new Set(names);
    const now = Date.now();
    const backlog: Backlog = { due: 0, leased: 0, retrying: 0, scheduled: 0 };
    for (const d of this.deliveries) {
      if (!wanted.has(d.sub.name)) continue;
      // A delivery blocked behind an earlier one of its ordering key counts as that one does.
      const head = d.place === 'blocked' ? (d.sub.ordering.get(d.orderingKey!)?.[0] ?? d) : d;
      if (head.place === 'leased') backlog.leased += 1;
      else if (head.runAt <= now) backlog.due += 1;
      else if (head.attempts > 0) backlog.retrying += 1;
      else backlog.scheduled += 1;
    }
    return backlog;
  }

  async backlogBySubscriber(names?: readonly string[]): Promise<SubscriberBacklog[]> {
    const now = Date.now();
    const out = new Map<SubscriberState, SubscriberBacklog>();
    const wanted = names === undefined ? null : new Set(names);
    for (const state of this.subscribers.values()) {
      if (wanted && !wanted.has(state.name)) continue;
      out.set(state, {
        subscriber: state.name,
        due: 0,
        leased: 0,
        retrying: 0,
        scheduled: 0,
        oldestPendingAgeMs: null,
        lastSeenAt: new Date(state.lastSeenAt),
      });
    }
    for (const d of this.deliveries) {
      const entry = out.get(d.sub);
      if (!entry) continue;
      const head = d.place === 'blocked' ? (d.sub.ordering.get(d.orderingKey!)?.[0] ?? d) : d;
      if (head.place === 'leased') entry.leased += 1;
      else if (head.runAt <= now) entry.due += 1;
      else if (head.attempts > 0) entry.retrying += 1;
      else entry.scheduled += 1;
      if (d.place === 'leased' || d.runAt <= now) {
        const age = Math.max(0, now - d.rec.event.timestamp.getTime());
        if (entry.oldestPendingAgeMs === null || age > entry.oldestPendingAgeMs) entry.oldestPendingAgeMs = age;
      }
    }
    return [...out.values()].sort((a, b) => (a.subscriber < b.subscriber ? -1 : a.subscriber > b.subscriber ? 1 : 0));
  }

  async timeline(query: TimelineQuery): Promise<TimelinePage> {
    const before = query.cursor === undefined ? Infinity : decodeCursor(query.cursor, this.seq);
    const types = query.eventTypes && query.eventTypes.length > 0 ? new Set(query.eventTypes) : null;
    const events: BaseEvent[] = [];
    let last: EventRecord | undefined;
    let more = false;
    for (let i = this.window.size - 1; i >= 0; i--) {
      const rec = this.window.at(i);
      if (rec.seq >= before || !matchesFilter(rec.event, query, types)) continue;
      if (events.length === query.limit) {
        more = true;
        break;
      }
      events.push(envelopeOf(rec.event));
      last = rec;
    }
    return { events, nextCursor: more && last ? encodeCursor(last.seq) : null };
  }

  async replay(query: ReplayQuery): Promise<number> {
    const targets = query.subscribers
      ? query.subscribers.map((n) => this.subscribers.get(n)).filter((s): s is SubscriberState => s !== undefined)
      : [...this.subscribers.values()];
    const types = query.eventTypes && query.eventTypes.length > 0 ? new Set(query.eventTypes) : null;
    const now = Date.now();
    let scheduled = 0;
    for (let i = 0; i < this.window.size; i++) {
      const rec = this.window.at(i);
      if (!matchesFilter(rec.event, query, types)) continue;
      for (const state of targets) {
        if (!state.patterns.some((p) => matchesPattern(p, rec.event.eventType))) continue;
        if (this.findDelivery(deliveryIdOf(rec.event.eventId, state.name))) continue;
        this.reopen(rec);
        this.deadLetters.delete(deliveryIdOf(rec.event.eventId, state.name));
        this.createDelivery(rec, state, now, now, rec.orderingKey);
        scheduled += 1;
      }
    }
    return scheduled;
  }

  async listDeadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    const limit = filter.limit ?? 100;
    for (const dl of this.deadLetters.values()) {
      if (out.length >= limit) break;
      if (matchesDeadLetter(dl, filter)) out.push({ ...dl, event: envelopeOf(dl.event) });
    }
    return out;
  }

  async redrive(target: string | DeadLetterFilter): Promise<number> {
    const chosen =
      typeof target === 'string'
        ? [this.deadLetters.get(target)].filter((d): d is DeadLetter => d !== undefined)
        : [...this.deadLetters.values()].filter((dl) => matchesDeadLetter(dl, target));
    const now = Date.now();
    let count = 0;
    for (const dl of chosen) {
      const state = this.subscribers.get(dl.subscriber);
      if (!state) continue; // a retired subscriber cannot run it; the dead letter stays
      this.deadLetters.delete(dl.id);
      const rec = this.recordOf(dl.event);
      this.reopen(rec);
      this.createDelivery(rec, state, now, now, rec.orderingKey);
      count += 1;
    }
    return count;
  }

  async discard(id: string): Promise<boolean> {
    return this.deadLetters.delete(id);
  }

  async recordDeadLetter(record: DeadLetterRecord): Promise<void> {
    const id = deliveryIdOf(record.event.eventId, record.subscriber);
    this.deadLetters.set(id, {
      id,
      eventId: record.event.eventId,
      eventType: record.event.eventType,
      subscriber: record.subscriber,
      attempts: record.attempts,
      error: record.error,
      failedAt: new Date(),
      event: envelopeOf(record.event),
    });
  }

  async health(): Promise<StorageHealth> {
    const now = Date.now();
    let oldest: number | null = null;
    for (const rec of this.unprocessedRecords()) {
      if (rec.deliverAt > now) continue;
      const age = now - rec.event.timestamp.getTime();
      if (oldest === null || age > oldest) oldest = age;
    }
    return { unprocessed: this.unprocessedCount, deadLetters: this.deadLetters.size, oldestPendingAgeMs: oldest };
  }

  async close(): Promise<void> {
    // Nothing to release: no timers or connections.
  }

  // --- internals ---

  /**
   * Refuses the whole append, before anything changes, when a key comes back
   * with another event type or organization (stored, or earlier in the batch).
   */
  private checkIdempotencyKeys(inputs: readonly AppendInput[]): void {
    let batch: Map<string, BaseEvent> | undefined;
    for (const { idempotencyKey: key, event } of inputs) {
      if (key === undefined) continue;
      batch ??= new Map();
      const first = this.byIdempotencyKey.get(key)?.event ?? batch.get(key);
      if (first === undefined) batch.set(key, event);
      else if (!sameTenantAndType(first, event)) throw idempotencyConflict();
    }
  }

  /** Drops what was derived from the set of subscribers and their patterns. */
  private subscribersChanged(): void {
    this.targetsByType.clear();
    this.claimedFor = undefined;
  }

  /** The states of the subscribers a claim names (`undefined` for a name not registered). */
  private statesOf(subscribers: readonly { name: string }[]): (SubscriberState | undefined)[] {
    const known = this.claimedFor;
    if (known?.subscribers === subscribers && sameNames(known.names, subscribers)) return known.states;
    const names = subscribers.map((want) => want.name);
    this.claimedFor = { subscribers, names, states: names.map((name) => this.subscribers.get(name)) };
    return this.claimedFor.states;
  }

  private targetsOf(type: string): SubscriberState[] {
    let targets = this.targetsByType.get(type);
    if (!targets) {
      targets = [...this.subscribers.values()].filter((s) => s.patterns.some((p) => matchesPattern(p, type)));
      this.targetsByType.set(type, targets);
    }
    return targets;
  }

  private createDelivery(
    rec: EventRecord,
    sub: SubscriberState,
    runAt: number,
    now: number,
    orderingKey: string | undefined,
  ): void {
    const d: Delivery = {
      id: undefined,
      sub,
      rec,
      attempts: 0,
      runAt,
      orderingKey,
      token: 0,
      leaseExpiresAt: 0,
      place: 'done',
      slot: -1,
    };
    this.deliveries.add(d);
    rec.pending += 1;
    if (orderingKey !== undefined) {
      const queue = sub.ordering.get(orderingKey);
      if (queue) {
        queue.push(d);
        d.place = 'blocked';
        return;
      }
      sub.ordering.set(orderingKey, [d]);
    }
    this.place(d, now);
  }

  /** Puts an unleased delivery where a claim will find it. */
  private place(d: Delivery, now: number): void {
    if (d.runAt <= now) {
      d.place = 'due';
      d.sub.due.push(d);
    } else {
      d.place = 'waiting';
      d.sub.waiting.push(d);
    }
  }

  /** Moves deliveries whose time has come, or whose lease expired, to the due queue. */
  private promote(state: SubscriberState, now: number): void {
    for (let top = state.waiting.peek(); top && top.runAt <= now; top = state.waiting.peek()) {
      state.waiting.pop();
      if (top.place === 'waiting') {
        top.place = 'due';
        state.due.push(top);
      }
    }
    if (now >= state.leaseCheckAt) {
      // Rare (only once a lease of this subscriber may have expired): a scan of the unfinished deliveries.
      let next = Infinity;
      for (const d of this.deliveries) {
        if (d.sub !== state || d.place !== 'leased') continue;
        if (d.leaseExpiresAt <= now) {
          d.token = 0;
          d.place = 'due';
          state.due.push(d);
        } else if (d.leaseExpiresAt < next) next = d.leaseExpiresAt;
      }
      state.leaseCheckAt = next;
    }
  }

  private claimNow(options: ClaimOptions, now: number): ClaimedDelivery[] {
    // Made with its first claim (`[claim]`, one slot): a push onto `[]` would reserve room for 16.
    let claimed: ClaimedDelivery[] | undefined;
    let count = 0;
    const subs = options.subscribers;
    const states = this.statesOf(subs);
    const n = subs.length;
    const first = n > 1 ? this.rotation++ % n : 0; // rotate so no subscriber starves another
    const limit = options.limit; // read once: the bus's live claim computes it
    for (let i = 0; i < n && count < limit; i++) {
      const at = (first + i) % n;
      const want = subs[at]!;
      const state = states[at];
      if (!state) continue;
      this.promote(state, now);
      let take = Math.min(want.limit, limit - count);
      while (take > 0) {
        const d = state.due.shift();
        if (d === undefined) break;
        if (d.place !== 'due') continue;
        d.place = 'leased';
        d.attempts += 1;
        d.token = ++this.tokens;
        d.leaseExpiresAt = now + options.leaseMs;
        if (d.leaseExpiresAt < state.leaseCheckAt) state.leaseCheckAt = d.leaseExpiresAt;
        const claim = new Claim(d, d.token, d.attempts, d.leaseExpiresAt);
        if (claimed === undefined) claimed = [claim];
        else claimed.push(claim);
        count += 1;
        take -= 1;
      }
    }
    return claimed ?? [];
  }

  private findDelivery(id: string): Delivery | undefined {
    for (const d of this.deliveries) if (idOf(d) === id) return d;
    return undefined;
  }

  /** The delivery behind `lease`, if that lease is still the current one. */
  private held(lease: Lease): Delivery | undefined {
    const d = lease instanceof Claim ? lease.delivery : this.findDelivery(lease.deliveryId);
    if (!d || d.place !== 'leased') return undefined;
    const current = lease instanceof Claim ? lease.tokenNumber === d.token : lease.token === String(d.token);
    return current ? d : undefined;
  }

  /** Ends a delivery (succeeded, dead-lettered or retired) and frees what it held. */
  private finish(d: Delivery): void {
    const state = d.sub;
    this.deliveries.delete(d);
    d.place = 'done';
    d.token = 0;
    if (d.orderingKey !== undefined) {
      const queue = state.ordering.get(d.orderingKey);
      if (queue) {
        const at = queue.indexOf(d);
        if (at >= 0) queue.splice(at, 1);
        if (queue.length === 0) state.ordering.delete(d.orderingKey);
        else if (at === 0 && queue[0]!.place === 'blocked') this.place(queue[0]!, Date.now());
      }
    }
    d.rec.pending -= 1;
    if (d.rec.pending === 0) this.markProcessed(d.rec);
  }

  private markProcessed(rec: EventRecord): void {
    if (rec.event.processed) return;
    rec.event.processed = true;
    this.unprocessedCount -= 1;
  }

  private reopen(rec: EventRecord): void {
    if (!rec.event.processed) return;
    rec.event.processed = false;
    this.unprocessedCount += 1;
  }

  /** Unprocessed events, oldest first: those with unfinished deliveries, and the parked ones. */
  private unprocessedRecords(): EventRecord[] {
    const records = new Set<EventRecord>(this.parked);
    for (const d of this.deliveries) records.add(d.rec);
    return [...records].sort((a, b) => a.seq - b.seq);
  }

  /** The record of an event (a dead letter may outlive the window). */
  private recordOf(event: BaseEvent): EventRecord {
    for (const d of this.deliveries) if (d.rec.event.eventId === event.eventId) return d.rec;
    for (let i = this.window.size - 1; i >= 0; i--) {
      if (this.window.at(i).event.eventId === event.eventId) return this.window.at(i);
    }
    return { seq: 0, event, pending: 0, idempotencyKey: undefined, orderingKey: undefined, deliverAt: 0 };
  }

  /** Forgets the idempotency key of an event that left the window (unfinished events stay reachable through their deliveries). */
  private forget(rec: EventRecord | undefined): void {
    // Reading an old record is a cache miss: skip it when no key is kept at all.
    if (rec === undefined || this.byIdempotencyKey.size === 0 || rec.idempotencyKey === undefined) return;
    if (this.byIdempotencyKey.get(rec.idempotencyKey) === rec) this.byIdempotencyKey.delete(rec.idempotencyKey);
  }

}

/** A claim as handed out: a snapshot, so a stale holder keeps its stale token. Strings and the Date are made only if read. */
class Claim implements ClaimedDelivery {
  private envelope: BaseEvent | undefined;

  constructor(
    /** @internal the claimed delivery: settling needs no lookup by id */
    readonly delivery: Delivery,
    readonly tokenNumber: number,
    readonly attempt: number,
    private readonly expiresAtMs: number,
  ) {}

  get deliveryId(): string {
    return idOf(this.delivery);
  }

  get token(): string {
    return String(this.tokenNumber);
  }

  get subscriber(): string {
    return this.delivery.sub.name;
  }

  /** This claim's own envelope (payload and metadata are the stored frozen snapshot, shared). */
  get event(): BaseEvent {
    return (this.envelope ??= envelopeOf(this.delivery.rec.event));
  }

  get leaseExpiresAt(): Date {
    return new Date(this.expiresAtMs);
  }
}

/**
 * The storage's own copy of an appended event. Payload and metadata are kept
 * as deep-frozen JSON, the form a durable storage keeps them in: the bus hands
 * over frozen snapshots, shared as they are; anything else (a direct caller of
 * the port) goes through JSON as it would on PostgreSQL (a Date becomes a string).
 */
function ownEvent(event: BaseEvent): BaseEvent {
  const own = { ...event };
  if (isFrozenPayload(event.payload)) {
    // From the bus: frozen snapshots (metadata too, unless a publish middleware set an open one).
    own.metadata = freezeMetadata(event.metadata);
  } else {
    own.payload = freezeJson(JSON.parse(JSON.stringify(event.payload)) as BaseEvent['payload']);
    own.metadata = freezeJson(JSON.parse(JSON.stringify(event.metadata)) as BaseEvent['metadata']);
  }
  return own;
}

/**
 * A fresh envelope of a stored event for whoever asks (the publisher, a claim,
 * the timeline): changing one never changes what another sees, and the frozen
 * payload and metadata are shared instead of copied (about 30 ns an envelope).
 */
function envelopeOf(event: BaseEvent): BaseEvent {
  return { ...event };
}

function idOf(d: Delivery): string {
  return (d.id ??= deliveryIdOf(d.rec.event.eventId, d.sub.name));
}

function deliveryIdOf(eventId: string, subscriber: string): string {
  return `${eventId}:${subscriber}`;
}

/** Whether a claim's list still names what it named when it was seen (a caller may reuse its array). */
function sameNames(names: readonly string[], subscribers: readonly { name: string }[]): boolean {
  if (names.length !== subscribers.length) return false;
  for (let i = 0; i < names.length; i++) if (names[i] !== subscribers[i]!.name) return false;
  return true;
}

function sameTenantAndType(a: BaseEvent, b: BaseEvent): boolean {
  return a.eventType === b.eventType && (a.organizationId ?? null) === (b.organizationId ?? null);
}

function idempotencyConflict(): EventBusError {
  return new EventBusError(
    'IDEMPOTENCY_CONFLICT',
    'This idempotency key was already used for an event of another type or organization; nothing was stored',
  );
}

function matchesFilter(
  event: BaseEvent,
  query: { actor?: string; organizationId?: string; scope?: TimelineScope; from?: Date; to?: Date },
  types: Set<string> | null,
): boolean {
  if (types && !types.has(event.eventType)) return false;
  if (query.actor !== undefined && event.actor !== query.actor) return false;
  if (query.organizationId !== undefined && event.organizationId !== query.organizationId) return false;
  if (query.scope && !inScope(event, query.scope)) return false;
  const t = event.timestamp.getTime();
  if (query.from && t < query.from.getTime()) return false;
  if (query.to && t >= query.to.getTime()) return false;
  return true;
}

function inScope(event: BaseEvent, scope: TimelineScope): boolean {
  if (event.organizationId === undefined) return scope.actor !== undefined && event.actor === scope.actor;
  return scope.organizationIds.includes(event.organizationId);
}

function matchesDeadLetter(dl: DeadLetter, filter: DeadLetterFilter): boolean {
  return (
    (filter.subscriber === undefined || dl.subscriber === filter.subscriber) &&
    (filter.eventType === undefined || dl.eventType === filter.eventType) &&
    (filter.eventId === undefined || dl.eventId === filter.eventId)
  );
}

function encodeCursor(seq: number): string {
  return Buffer.from(`m${seq}`).toString('base64url');
}

/** The position in a cursor; refused unless this storage could have issued it (never past the newest event). */
function decodeCursor(cursor: string, newest: number): number {
  const text = Buffer.from(cursor, 'base64url').toString();
  const seq = Number(text.slice(1));
  // Decoding skips characters outside the alphabet: only the exact encoding of `m<seq>` is ours.
  if (encodeCursor(seq) !== cursor || !/^m[1-9]\d*$/.test(text) || !Number.isSafeInteger(seq) || seq > newest) {
    throw new InvalidOptionError('cursor', 'not a cursor returned by this storage');
  }
  return seq;
}
