/**
 * The dispatcher: claims due deliveries of this process's subscribers, runs
 * their handlers within the concurrency limits, and settles each one
 * (complete, retry later, or dead-letter) on its own, so one subscriber's
 * failure never re-runs another.
 *
 * It is woken by this process's publishes, by the storage's own watch (Postgres
 * LISTEN/NOTIFY), by timers for known due times, and by a poll as the
 * fallback. While handlers run, one heartbeat extends all their leases; a
 * delivery whose lease was lost has its signal aborted and cannot settle.
 */
import { hostname } from 'node:os';
import pRetry from 'p-retry';
import type { Catalog, EventDefinition } from '../catalog';
import type { BaseEvent } from '../envelope';
import { EventBusError, HandlerTimeoutError, NonRetryableError, toErrorInfo, type ErrorInfo } from '../errors';
import { SlotList } from '../collections/slot-list';
import { childLogger, type Logger } from '../logger';
import type { ClaimedDelivery, ClaimOptions, Storage, SubscriberClaim, SyncStorageOperations } from '../ports/storage';
import type { Transport } from '../ports/transport';
import type { DeliverySource } from './transport-deliveries';
import { uuidv7 } from '../uuidv7';
import { nextAttemptAt } from './backoff';
import type { DeliveryObservation, DeliveryOutcomeKind, HandlerMiddleware } from './observation';
import { runHandlerChain, type MiddlewareStack, type ObserverSet } from './observe';
import type { ResolvedDispatch } from './options';
import type { SubscriberRegistry, Subscription } from './registry';
import type { StatsCollector } from './stats';
import type { HandlerContext, PublishOptions } from './types';
import { currentVersionOf } from './upcast';
import type { FirstFailureWarnings } from './failure-warning';
import { freezeEventData } from '../json-safe';

/** How often subscribers re-announce themselves to the storage. */
const REGISTER_EVERY_MS = 60_000;
/** Weight of the newest sample in the dispatcher's running averages of handler and claim times. */
const AVERAGE_WEIGHT = 0.05;
/** The longest a timer may be armed for (Node's limit). */
const MAX_TIMER_MS = 2_147_483_647;

/** What the dispatcher needs from the bus. */
export interface DispatcherDeps {
  /** Who holds the leases (default: a new {@link dispatcherOwner}). */
  owner?: string;
  catalog: Catalog;
  storage: Storage;
  /** Where deliveries come from: the storage (default), or a cross-process transport's consumers. */
  source?: DeliverySource;
  transport: Transport;
  logger: Logger;
  dispatch: ResolvedDispatch;
  registry: SubscriberRegistry;
  stats: StatsCollector;
  observers: ObserverSet;
  middleware: MiddlewareStack<HandlerMiddleware>;
  report: (error: unknown, during: string) => void;
  /** Set when the bus has no logger: the first failure of each subscriber becomes a process warning. */
  failureWarnings?: FirstFailureWarnings;
  publishCaused: (parent: BaseEvent, type: string, payload: unknown, options?: PublishOptions) => Promise<BaseEvent>;
}

type State = 'created' | 'running' | 'stopping' | 'stopped';

/** A delivery claimed ahead, waiting for a slot. */
interface QueuedDelivery {
  delivery: ClaimedDelivery;
  leaseExpiresAt: number;
  /** Its lease was taken over while it waited: it must not run. */
  lost: boolean;
}

/**
 * One running delivery; it is also the handler's `ctx` (the signal, logger
 * and publish are made on first use, as most handlers never touch them).
 */
class RunningDelivery implements HandlerContext<Catalog> {
  readonly attempt: number;
  readonly subscriber: string;
  tx?: unknown;
  leaseExpiresAt: number;
  /** Another owner took the lease over: this run must not settle the delivery. */
  lost = false;
  /** Aborted by `stop()`: the claim is given back without spending the attempt. */
  stopping = false;
  /** Its place in the dispatcher's running list. */
  slot = -1;
  /** Its concurrency slot was given back (the handler is done). */
  slotFreed = false;
  /** `performance.now()` when the attempt started, and how long the handler ran (set when it returned or threw). */
  startedAt = 0;
  handlerMs = -1;
  /** `performance.now()` past which the handler has run out of time. */
  deadline = Infinity;
  /** It ran out of time: the attempt was failed for it, and nothing it does later counts. */
  timedOut = false;
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private contextLogger: Logger | undefined;

  constructor(
    readonly delivery: ClaimedDelivery,
    readonly sub: Subscription,
    private readonly dispatcher: Dispatcher,
    leaseExpiresAt: number,
  ) {
    this.attempt = delivery.attempt;
    this.subscriber = delivery.subscriber;
    // Counted from when it reached us rather than read from the claim (a Date per
    // delivery on the hot path): later by the claim's round trip, well within the renewal margin.
    this.leaseExpiresAt = leaseExpiresAt;
  }

  get deliveryId(): string {
    return this.delivery.deliveryId;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get logger(): Logger {
    this.contextLogger ??= childLogger(this.dispatcher.logger, {
      subscriber: this.subscriber,
      deliveryId: this.deliveryId,
      eventId: this.delivery.event.eventId,
      eventType: this.delivery.event.eventType,
      attempt: this.attempt,
    });
    return this.contextLogger;
  }

  get publish(): HandlerContext<Catalog>['publish'] {
    const parent = this.delivery.event;
    return ((type: string, payload: unknown, options?: PublishOptions) =>
      this.dispatcher.publishCaused(parent, type, payload, options)) as HandlerContext<Catalog>['publish'];
  }

  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}

/**
 * When a claimed delivery's lease runs out, as far as the heartbeat knows:
 * the storage's or broker's own time when it is sooner (a delivery fetched
 * ahead from a broker has held its lease since the fetch, not the claim).
 */
function leaseEnd(delivery: ClaimedDelivery, claimedUntil: number): number {
  const held = delivery.leaseExpiresAt?.getTime();
  return held !== undefined && Number.isFinite(held) ? Math.min(claimedUntil, held) : claimedUntil;
}

/** A name unique to one dispatcher: host, process id and a random tail. */
export function dispatcherOwner(): string {
  return `${hostname()}:${process.pid}:${uuidv7().slice(-12)}`;
}

/** Claims and runs deliveries for the subscribers of one bus in this process. */
export class Dispatcher {
  /** Unique per dispatcher: who holds the leases. */
  readonly owner: string;
  readonly logger: Logger;
  private state: State = 'created';
  private inFlight = 0;
  private readonly running = new SlotList<RunningDelivery>();
  /**
   * Deliveries claimed ahead of free slots, so a slot that frees up starts
   * the next handler without waiting for a claim round trip. Their leases
   * are renewed like running ones. How many: see {@link ahead}.
   */
  private readonly queue: QueuedDelivery[] = [];
  /** Running averages (ms) of one handler call and one claim, which size {@link ahead}. */
  private handlerAvgMs = 1;
  private claimAvgMs = 1;
  private pumping = false;
  private pumpAgain = false;
  /** The last claim filled all free slots: more work may be waiting for a slot. */
  private saturated = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastRegisteredAt = 0;
  private unwatch: (() => Promise<void>) | undefined;
  private settleWaiters: (() => void)[] = [];
  private liveClaim: ClaimOptions | undefined;
  private liveClaimVersion = -1;
  /** One timer for all handler time limits, armed for the earliest running deadline. */
  private timeoutTimer: NodeJS.Timeout | undefined;
  private timeoutAt = Infinity;

  /** Where deliveries are claimed and settled: the storage, or a transport (see {@link DispatcherDeps.source}). */
  private readonly source: DeliverySource;
  /** A process-local storage's synchronous completion, when deliveries come from it. */
  private readonly completesNow: SyncStorageOperations | undefined;
  /**
   * Whether to read each claimed delivery's own lease end (a broker's lease may
   * have started at an earlier fetch, a database's clock may run ahead); a
   * process-local storage's lease starts at the claim, by this clock.
   */
  private readonly readsLeaseEnd: boolean;

  constructor(private readonly deps: DispatcherDeps) {
    this.logger = deps.logger;
    this.source = deps.source ?? deps.storage;
    this.completesNow = deps.source ? undefined : deps.storage.sync;
    this.readsLeaseEnd = this.completesNow === undefined;
    this.owner = deps.owner ?? dispatcherOwner();
  }

  /** Publishes an event caused by `parent` (for `ctx.publish`). */
  publishCaused(parent: BaseEvent, type: string, payload: unknown, options?: PublishOptions): Promise<BaseEvent> {
    return this.deps.publishCaused(parent, type, payload, options);
  }

  get hasStopped(): boolean {
    return this.state === 'stopping' || this.state === 'stopped';
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  async start(): Promise<void> {
    if (this.state !== 'created') return;
    this.state = 'running';
    const { dispatch } = this.deps;
    const source = this.source;
    // A service often starts while its database or broker is still coming up:
    // these first calls ride out transient failures (handler retries, by
    // contrast, follow the bus's own stored schedule).
    await this.withStartupRetries('register subscribers', () => this.registerSubscribers());
    if (source.watch) this.unwatch = await this.withStartupRetries('watch for work', () => source.watch!(() => this.wake()));
    const beat = Math.max(50, Math.floor(dispatch.leaseMs / 3));
    this.heartbeat = setInterval(() => void this.extendLeases(), beat);
    this.heartbeat.unref();
    this.wake();
  }

  private withStartupRetries<T>(what: string, run: () => Promise<T>): Promise<T> {
    return pRetry(run, {
      retries: 5,
      minTimeout: 100,
      maxTimeout: 2000,
      // Only infrastructure faults are worth another try; a refused option is not.
      shouldRetry: ({ error }) => !EventBusError.is(error) || EventBusError.is(error, 'STORAGE_UNAVAILABLE') || EventBusError.is(error, 'TRANSPORT_UNAVAILABLE'),
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) =>
        this.logger.warn({ err: error, attemptNumber, retriesLeft }, `event bus: ${what} failed; retrying`),
    });
  }

  /** Tells the storage about subscribers added after `start()`. */
  async subscriberAdded(subscription: Subscription): Promise<void> {
    if (this.state !== 'running') return;
    await this.source.register([{ name: subscription.name, patterns: subscription.patterns }]);
    this.wake();
  }

  /** Something may be due: claim soon (coalesced). */
  wake(): void {
    if (this.state === 'running') void this.pump();
  }

  /**
   * A claim for the claim loop: as many deliveries as there are free slots,
   * per subscriber and in all (a snapshot); `undefined` when there is no room.
   */
  claimRequest(limit: number = this.deps.dispatch.batchSize): ClaimOptions | undefined {
    if (this.state !== 'running') return undefined;
    const { dispatch, registry } = this.deps;
    const ahead = this.ahead();
    const capacity = dispatch.concurrency + ahead - this.inFlight - this.queue.length;
    if (capacity <= 0) return undefined;
    const subscribers: SubscriberClaim[] = [];
    for (const sub of registry.all()) {
      const free = sub.concurrency + ahead - sub.inFlight - sub.queued;
      if (free > 0) subscribers.push({ name: sub.name, limit: free });
    }
    if (subscribers.length === 0) return undefined;
    return { owner: this.owner, subscribers, limit: Math.min(limit, capacity), leaseMs: dispatch.leaseMs };
  }

  /**
   * How many deliveries to hold beyond the running ones: enough to keep every
   * slot busy for one claim's round trip (`concurrency × claim time / handler
   * time`), at least one concurrency's worth and at most `batchSize`. Fast
   * handlers so get large claims that share one round trip; slow ones leave
   * the rest of the work to other processes instead of queueing it here.
   */
  private ahead(): number {
    const { concurrency, batchSize } = this.deps.dispatch;
    const cover = Math.ceil((concurrency * this.claimAvgMs) / Math.max(this.handlerAvgMs, 0.01));
    return Math.max(Math.min(concurrency, batchSize), Math.min(batchSize, cover));
  }

  /**
   * The claim a publish passes to `storage.append`, so that a storage can hand
   * new deliveries straight to this process. Unlike {@link claimRequest} it is
   * made once per set of subscribers and reads the free slots when the storage
   * looks (getters), so the publish path allocates nothing for it.
   */
  appendClaim(): ClaimOptions | undefined {
    if (this.state !== 'running' || this.inFlight >= this.deps.dispatch.concurrency) return undefined;
    const { registry, dispatch } = this.deps;
    if (this.liveClaimVersion !== registry.version) {
      this.liveClaimVersion = registry.version;
      const subscribers = [...registry.all()].map((sub) => ({
        name: sub.name,
        get limit() {
          return Math.max(0, sub.concurrency - sub.inFlight);
        },
      }));
      const freeSlots = () => Math.max(0, Math.min(dispatch.batchSize, dispatch.concurrency - this.inFlight));
      this.liveClaim = {
        owner: this.owner,
        subscribers,
        leaseMs: dispatch.leaseMs,
        get limit() {
          return freeSlots();
        },
      };
    }
    return this.liveClaim;
  }

  /** Runs deliveries claimed for this dispatcher (by a claim, or by an append at `claimedAt`). */
  runClaimed(claimed: readonly ClaimedDelivery[], claimedAt: number = Date.now()): void {
    if (claimed.length === 0) return;
    const until = claimedAt + this.deps.dispatch.leaseMs;
    for (const delivery of claimed) this.run(delivery, this.readsLeaseEnd ? leaseEnd(delivery, until) : until);
  }

  /** Makes sure the dispatcher looks for work at `time` (a known due time). */
  scheduleAt(time: number): void {
    if (this.state !== 'running' || time >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = time;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, time - Date.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      void this.pump();
    }, delay);
    this.timer.unref();
  }

  /** Resolves when nothing of this process's subscribers is running, due, or waiting for a retry. */
  async idle(timeoutMs?: number): Promise<void> {
    const { registry } = this.deps;
    const source = this.source;
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    if (this.state === 'created' && registry.size > 0) {
      throw new EventBusError('BUS_NOT_STARTED', 'idle() waits for this process\'s subscribers, but the bus was not started');
    }
    for (;;) {
      if (registry.size === 0) return;
      if (this.running.size === 0 && this.queue.length === 0 && !this.pumping) {
        const backlog = await source.backlog(registry.names());
        if (this.running.size === 0 && this.queue.length === 0 && backlog.due + backlog.leased + backlog.retrying === 0) return;
        if (this.hasStopped) throw new EventBusError('BUS_STOPPED', 'idle() cannot finish: the bus is stopped');
        if (backlog.due > 0) this.wake();
        else if (backlog.retrying > 0) {
          const next = await source.nextDueAt(registry.names());
          if (next) this.scheduleAt(next.getTime());
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new EventBusError('IDLE_TIMEOUT', `idle() timed out after ${timeoutMs} ms`);
      await this.nextSettle(Math.min(left, 25));
    }
  }

  /**
   * Stops claiming, waits for in-flight handlers (aborting them near the end)
   * and gives back what is left, all within `timeoutMs`: the last fifth (at
   * most a second) is kept for aborted handlers to settle and for handing
   * their claims back. Storage calls still running at the deadline go on in
   * the background.
   */
  async stop(timeoutMs: number = this.deps.dispatch.shutdownTimeoutMs): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const deadline = Date.now() + timeoutMs;
    const grace = Math.min(1000, Math.floor(timeoutMs / 5));
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (wasRunning) {
      const report = (during: string) => (err: unknown) => this.deps.report(err, during);
      await untilDeadline(this.unwatch?.().catch(report('storage unwatch')), deadline);
      await untilDeadline(this.afterStop(this.releaseQueued()), deadline);
      await this.drain(deadline - grace - Date.now());
      if (this.running.size > 0) await this.abortRunning(deadline, grace);
    }
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.timeoutTimer = undefined;
    this.state = 'stopped';
    this.notifySettled();
  }

  // --- claiming ---

  private async pump(): Promise<void> {
    if (this.state !== 'running') return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        await this.claimUntilFull();
      } while (this.pumpAgain && this.state === 'running');
    } catch (err) {
      this.deps.report(err, 'claim');
    } finally {
      this.pumping = false;
      if (this.state === 'running') this.scheduleAt(Date.now() + this.deps.dispatch.pollIntervalMs);
      this.notifySettled();
    }
  }

  private async claimUntilFull(): Promise<void> {
    const source = this.source;
    if (Date.now() - this.lastRegisteredAt > REGISTER_EVERY_MS) await this.registerSubscribers();
    for (;;) {
      const request = this.claimRequest();
      if (!request) {
        this.saturated = this.inFlight > 0;
        return;
      }
      const claimStarted = performance.now();
      const claimed = await source.claim(request);
      this.claimAvgMs += (performance.now() - claimStarted - this.claimAvgMs) * AVERAGE_WEIGHT;
      this.enqueue(claimed);
      this.saturated = claimed.length > 0;
      if (claimed.length < request.limit || this.state !== 'running') {
        if (claimed.length === 0) {
          const next = await source.nextDueAt(this.deps.registry.names());
          if (next) this.scheduleAt(next.getTime());
        }
        return;
      }
    }
  }

  private async registerSubscribers(): Promise<void> {
    this.lastRegisteredAt = Date.now();
    const registrations = this.deps.registry.registrations();
    if (registrations.length > 0) await this.source.register(registrations);
  }

  // --- running ---

  private run(delivery: ClaimedDelivery, leaseExpiresAt: number): void {
    const sub = this.deps.registry.get(delivery.subscriber);
    if (!sub) {
      // Unsubscribed since the claim: give it back for whoever runs that name.
      this.source.release(delivery).catch((err) => this.deps.report(err, 'release'));
      return;
    }
    const running = new RunningDelivery(delivery, sub, this, leaseExpiresAt);
    this.inFlight += 1;
    sub.inFlight += 1;
    this.running.add(running);
    void this.execute(running);
  }

  private async execute(running: RunningDelivery): Promise<void> {
    const { delivery, sub } = running;
    const { stats, observers } = this.deps;
    const source = this.source;
    running.startedAt = performance.now();
    running.deadline = running.startedAt + sub.timeoutMs;
    if (running.deadline < this.timeoutAt) this.armTimeouts(running.deadline);
    if (observers.active) observers.emit('deliveryStarted', { ...observationOf(delivery), startedAt: new Date() });
    let handled = false;
    try {
      if (delivery.attempt > sub.retry.attempts) {
        throw new NonRetryableError(
          `Attempt ${delivery.attempt} exceeds the ${sub.retry.attempts} allowed: earlier attempts ended without an outcome (e.g. a crashed worker)`,
        );
      }
      // Read-only on every storage: one handler cannot change what another sees.
      const event = freezeEventData(currentVersionOf(this.definitionOf(delivery.event.eventType), delivery.event));
      let completed: boolean;
      if (sub.transactional) {
        completed = await this.runInTransaction(running, event);
      } else {
        await this.invoke(running, event);
        if (running.timedOut) return; // its attempt was already failed
        running.handlerMs = performance.now() - running.startedAt;
        this.handlerAvgMs += (running.handlerMs - this.handlerAvgMs) * AVERAGE_WEIGHT;
        handled = true;
        this.freeSlot(running); // the next handler need not wait for this round trip
        completed = this.completesNow ? this.completesNow.complete(delivery) : await source.complete(delivery);
      }
      handled = true;
      if (!completed) {
        this.leaseLost(running);
        running.logger.warn({}, 'delivery finished after its lease was taken over; its outcome was not recorded');
        this.settled(running, 'lease-lost');
      } else {
        stats.processed(delivery.event.eventType, running.handlerMs);
        this.settled(running, 'succeeded');
      }
    } catch (err) {
      if (running.timedOut) return; // its attempt was already failed
      if (running.handlerMs < 0) running.handlerMs = performance.now() - running.startedAt;
      this.freeSlot(running);
      if (handled) {
        this.deps.report(err, 'complete'); // the lease will expire and the delivery run again
        this.settled(running, 'unrecorded');
      } else await this.settleFailure(running, err);
    } finally {
      if (!running.timedOut) this.running.delete(running); // a timed-out one leaves once its failure is recorded
      this.freeSlot(running);
      if (this.settleWaiters.length > 0) this.notifySettled();
    }
  }

  /** The last event type run and its definition: a run of one type looks the catalog up once. */
  private lastType: string | undefined;
  private lastDefinition: EventDefinition | undefined;

  /** The catalog's definition of `type` (the catalog is frozen: what was looked up stays right). */
  private definitionOf(type: string): EventDefinition | undefined {
    if (type !== this.lastType) {
      const { catalog } = this.deps;
      this.lastDefinition = Object.hasOwn(catalog, type) ? catalog[type] : undefined;
      this.lastType = type;
    }
    return this.lastDefinition;
  }

  /** Runs the handler, inside the middleware when there is any (no extra promise when there is none). */
  private invoke(running: RunningDelivery, event: BaseEvent): Promise<void> | void {
    const chain = this.deps.middleware.list;
    if (chain.length === 0) return running.sub.handler(event as never, running);
    return runHandlerChain(chain, running.sub.handler as never, event, running);
  }

  /** Tells the observers how an attempt ended (exactly once per started attempt). */
  private settled(running: RunningDelivery, outcome: DeliveryOutcomeKind, error?: ErrorInfo, retryAt?: Date): void {
    const { observers } = this.deps;
    if (!observers.active) return;
    const observation = { ...observationOf(running.delivery), outcome, durationMs: running.handlerMs };
    observers.emit('deliverySettled', error === undefined ? observation : retryAt ? { ...observation, error, retryAt } : { ...observation, error });
  }

  /** Marks a delivery's lease as taken over, telling the observers the first time. */
  private leaseLost(item: RunningDelivery | QueuedDelivery): void {
    if (item.lost) return;
    item.lost = true;
    const { observers } = this.deps;
    if (observers.active) observers.emit('leaseLost', { ...observationOf(item.delivery), running: item instanceof RunningDelivery });
  }

  /**
   * Gives a delivery's concurrency slot back once its handler is done: the
   * outcome's storage round trip still runs (and keeps the delivery in
   * `running`, so shutdown and idle() wait for it) but no longer holds a slot.
   */
  private freeSlot(running: RunningDelivery): void {
    if (running.slotFreed) return;
    running.slotFreed = true;
    this.inFlight -= 1;
    running.sub.inFlight -= 1;
    if (this.queue.length > 0) this.startQueued();
    if (this.saturated) this.wake();
  }

  /** Holds claimed deliveries until a slot is free, and starts what fits now. */
  private enqueue(claimed: readonly ClaimedDelivery[]): void {
    if (claimed.length === 0) return;
    if (this.state !== 'running') {
      // A claim that returned after stop() began: give it straight back.
      for (const d of claimed) this.source.release(d).catch((err) => this.deps.report(err, 'release'));
      return;
    }
    const until = Date.now() + this.deps.dispatch.leaseMs;
    for (const delivery of claimed) {
      const sub = this.deps.registry.get(delivery.subscriber);
      if (sub) sub.queued += 1;
      this.queue.push({ delivery, leaseExpiresAt: this.readsLeaseEnd ? leaseEnd(delivery, until) : until, lost: false });
    }
    this.startQueued();
  }

  /** Starts queued deliveries, oldest first, while their subscribers and the process have free slots. */
  private startQueued(): void {
    const { registry, dispatch } = this.deps;
    for (let i = 0; i < this.queue.length && this.inFlight < dispatch.concurrency; ) {
      const queued = this.queue[i]!;
      const sub = registry.get(queued.delivery.subscriber);
      if (sub && sub.inFlight >= sub.concurrency) {
        i += 1;
        continue;
      }
      this.queue.splice(i, 1);
      if (sub) sub.queued -= 1;
      if (!queued.lost) this.run(queued.delivery, queued.leaseExpiresAt); // run() releases an unsubscribed one
    }
  }

  /** On stop: gives back what was claimed ahead, without spending attempts. */
  private async releaseQueued(): Promise<void> {
    const queued = this.queue.splice(0);
    const releases: Promise<unknown>[] = [];
    for (const q of queued) {
      const sub = this.deps.registry.get(q.delivery.subscriber);
      if (sub) sub.queued -= 1;
      if (!q.lost) releases.push(this.source.release(q.delivery).catch((err) => this.deps.report(err, 'release')));
    }
    await Promise.all(releases); // side by side: a shutdown must not wait one round trip per claim
  }

  private async runInTransaction(running: RunningDelivery, event: BaseEvent): Promise<boolean> {
    const { storage } = this.deps;
    if (!storage.transaction || !storage.capabilities.transactions) {
      throw new NonRetryableError(`Subscriber "${running.subscriber}" is transactional, but storage "${storage.name}" has no transactions`);
    }
    try {
      // From a transport, the acknowledgement follows the commit (at least once);
      // from the storage, the delivery is completed inside the handler's transaction.
      const fromStorage = this.source === storage;
      const committed = await storage.transaction(async (tx) => {
        running.tx = tx;
        await this.invoke(running, event);
        // Late: the attempt was failed already; roll the handler's writes back.
        if (running.timedOut) throw new HandlerTimeoutError(running.subscriber, running.sub.timeoutMs);
        running.handlerMs = performance.now() - running.startedAt;
        if (fromStorage && !(await storage.complete(running.delivery, { tx }))) {
          throw new EventBusError('LEASE_LOST', 'The lease was taken over; the transaction is rolled back');
        }
        return true;
      });
      return fromStorage ? committed : await this.source.complete(running.delivery);
    } catch (err) {
      if (EventBusError.is(err, 'LEASE_LOST')) return false;
      throw err;
    }
  }

  private async settleFailure(running: RunningDelivery, err: unknown): Promise<void> {
    const { delivery, sub } = running;
    const { stats, observers } = this.deps;
    const source = this.source;
    const error = toErrorInfo(err);
    try {
      if (running.stopping) {
        await source.release(delivery);
        this.settled(running, 'released', error);
        return;
      }
      if (running.lost) {
        this.settled(running, 'lease-lost', error);
        return;
      }
      const retryAt = nextAttemptAt(sub.retry, delivery.attempt, err);
      if (!(await source.fail(delivery, { error, retryAt }))) {
        this.leaseLost(running);
        running.logger.warn({ err: error }, 'delivery failed after its lease was taken over');
        this.settled(running, 'lease-lost', error);
        return;
      }
      if (retryAt) {
        stats.retried(delivery.event.eventType);
        running.logger.warn({ err: error, retryAt }, 'handler failed; will retry');
        this.deps.failureWarnings?.handlerFailed(sub.name, delivery.event.eventType, delivery.attempt, error, retryAt);
        this.scheduleAt(retryAt.getTime());
        if (observers.active) observers.emit('retryScheduled', { ...observationOf(delivery), error, retryAt });
        this.settled(running, 'retrying', error, retryAt);
      } else {
        stats.failed(delivery.event.eventType);
        running.logger.error({ err: error }, 'handler failed; delivery dead-lettered');
        this.deps.failureWarnings?.handlerFailed(sub.name, delivery.event.eventType, delivery.attempt, error, null);
        if (observers.active) observers.emit('deadLettered', { ...observationOf(delivery), error });
        this.settled(running, 'dead-lettered', error);
      }
    } catch (storageError) {
      // The outcome could not be recorded: the lease expires and the delivery runs again.
      this.deps.report(storageError, 'settle failure');
      this.settled(running, 'unrecorded', error);
    }
  }

  /** One heartbeat for all running deliveries: extend the leases that are past a third of their time. */
  private async extendLeases(): Promise<void> {
    if (this.running.size === 0 && this.queue.length === 0) return;
    const { dispatch } = this.deps;
    const source = this.source;
    const renewBefore = Date.now() + (dispatch.leaseMs * 2) / 3;
    const due = [...this.running, ...this.queue].filter((r) => !r.lost && r.leaseExpiresAt < renewBefore);
    if (due.length === 0) return;
    try {
      const extended = new Set(await source.extend(due.map((r) => r.delivery), dispatch.leaseMs));
      const until = Date.now() + dispatch.leaseMs;
      for (const r of due) {
        if (extended.has(r.delivery.deliveryId)) {
          r.leaseExpiresAt = until;
          continue;
        }
        this.leaseLost(r);
        if (r instanceof RunningDelivery) {
          if (this.running.has(r)) r.abort(new EventBusError('LEASE_LOST', 'The lease of this delivery was taken over by another worker'));
        } else {
          const at = this.queue.indexOf(r);
          if (at >= 0) this.queue.splice(at, 1);
          const sub = this.deps.registry.get(r.delivery.subscriber);
          if (sub) sub.queued -= 1;
        }
      }
    } catch (err) {
      this.deps.report(err, 'extend leases');
    }
  }

  // --- shutdown and waiting ---

  private async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.running.size > 0 && Date.now() < deadline) await this.nextSettle(deadline - Date.now());
  }

  private async abortRunning(deadline: number, grace: number): Promise<void> {
    const reason = new EventBusError('BUS_STOPPED', 'The bus is stopping');
    const left = [...this.running];
    for (const r of left) {
      r.stopping = true;
      r.abort(reason);
    }
    // Half the grace for aborted handlers to settle (they give their claims back), the rest to give back the others'.
    await this.drain(deadline - grace / 2 - Date.now());
    const releases = left
      .filter((r) => this.running.has(r) && !r.timedOut)
      .map((r) => this.source.release(r.delivery).catch((err) => this.deps.report(err, 'release')));
    await untilDeadline(this.afterStop(Promise.all(releases)), deadline);
  }

  /** Storage calls `stop()` started (it may return before they end). */
  private readonly stopWork: Promise<unknown>[] = [];

  private afterStop<T>(work: Promise<T>): Promise<T> {
    this.stopWork.push(work);
    return work;
  }

  /**
   * Settles when the storage calls `stop()` started have ended: the bus
   * closes the storage only after them, so a release that outlived the
   * deadline still lands (else its claim would wait for its lease to expire).
   */
  stopWorkSettled(): Promise<void> {
    return Promise.allSettled(this.stopWork).then(() => undefined);
  }

  // --- handler time limits ---

  /** (Re)arms the time-limit timer for `at` (a `performance.now()` time). */
  private armTimeouts(at: number): void {
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.timeoutAt = at;
    this.timeoutTimer = setTimeout(() => this.checkTimeouts(), Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(at - performance.now()))));
    this.timeoutTimer.unref();
  }

  /** Fails every handler past its deadline; re-arms for the next one. A scan per deadline, not a timer per delivery. */
  private checkTimeouts(): void {
    this.timeoutTimer = undefined;
    this.timeoutAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const r of this.running) {
      if (r.timedOut || r.handlerMs >= 0) continue; // the handler is done; its outcome's round trip is not limited
      if (r.deadline <= now) this.timeOut(r);
      else if (r.deadline < next) next = r.deadline;
    }
    if (next < Infinity && this.state !== 'stopped') this.armTimeouts(next);
  }

  /** Aborts a handler past its time limit and fails its attempt now, whether or not the handler ever settles. */
  private timeOut(running: RunningDelivery): void {
    const error = new HandlerTimeoutError(running.subscriber, running.sub.timeoutMs);
    running.timedOut = true;
    running.handlerMs = performance.now() - running.startedAt;
    running.abort(error);
    this.freeSlot(running);
    void this.settleFailure(running, error).finally(() => {
      this.running.delete(running);
      if (this.settleWaiters.length > 0) this.notifySettled();
    });
  }

  private nextSettle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.settleWaiters.push(done);
    });
  }

  private notifySettled(): void {
    const waiters = this.settleWaiters;
    if (waiters.length === 0) return;
    this.settleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** The fields every delivery observation shares. */
function observationOf(delivery: ClaimedDelivery): DeliveryObservation {
  return { event: delivery.event, subscriber: delivery.subscriber, deliveryId: delivery.deliveryId, attempt: delivery.attempt };
}

/** Waits for `work` until `deadline` (epoch ms) at most; what is still running goes on in the background. */
export async function untilDeadline(work: Promise<unknown> | undefined, deadline: number): Promise<void> {
  if (work === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))));
  try {
    await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
