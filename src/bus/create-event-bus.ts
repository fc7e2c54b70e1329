/**
 * `createEventBus`: wires the catalog, storage, transport, registry and
 * dispatcher into the {@link EventBus} of the public contract.
 */
import { matchesPattern, type Catalog, type EventTypeOf, type PayloadInput, type PayloadOf } from '../catalog';
import type { BaseEvent } from '../envelope';
import { EventBusError, InvalidOptionError, UnknownEventTypeError } from '../errors';
import { silentLogger } from '../logger';
import type { AppendInput, AppendOptions, AppendResult, DeadLetterFilter, RelayHandle, Storage } from '../ports/storage';
import type { Transport, TransportEvent } from '../ports/transport';
import { memoryStorage } from '../storage/memory-storage';
import { inProcessTransport } from '../transport/in-process-transport';
import { TransportDeliveries } from './transport-deliveries';
import { buildEvent, buildItem, metadataDefaults, type MetadataDefaults } from './build-event';
import { Dispatcher, dispatcherOwner, untilDeadline } from './dispatcher';
import type { BusObserver, HandlerMiddleware, PublishMiddleware } from './observation';
import { MiddlewareStack, ObserverSet, runPublishChain } from './observe';
import {
  checkDate,
  checkQueryStrings,
  checkStorableString,
  resolveDispatch,
  resolveHealth,
  resolveRetry,
  resolveStopTimeout,
} from './options';
import { FirstFailureWarnings } from './failure-warning';
import { coreWarnings } from './health-warnings';
import { SubscriberRegistry } from './registry';
import { StatsCollector } from './stats';
import type {
  BusStats,
  CatalogEvent,
  DeadLetters,
  EventBus,
  EventBusOptions,
  HealthReport,
  PublishItem,
  PublishOptions,
  ReplayOptions,
  StopOptions,
  TimelineOptions,
} from './types';

const MAX_PAGE = 1000;
/** The string fields of a dead-letter filter. */
const DEAD_LETTER_FILTER = ['subscriber', 'eventType', 'eventId'] as const;

/**
 * Creates an event bus over a catalog. Storage defaults to the in-memory one
 * and transport to the in-process one; pass `postgresStorage(...)` for
 * durability. Call `start()` in processes that run handlers.
 *
 * @example
 * ```ts
 * const bus = createEventBus({ catalog, logger: pino() });
 * bus.subscribe('auth.user_signed_up', async (event, ctx) => {
 *   await sendWelcomeEmail(event.payload.email, { idempotencyKey: ctx.deliveryId });
 * }, { name: 'email.welcome' });
 * await bus.start();
 * await bus.publish('auth.user_signed_up', { email, name, signupMethod: 'email' }, { actor: userId });
 * ```
 */
export function createEventBus<const C extends Catalog>(options: EventBusOptions<C>): EventBus<C> {
  return new Bus(options);
}

class Bus<C extends Catalog> implements EventBus<C> {
  readonly catalog: C;
  readonly storage: Storage;
  readonly transport: Transport;
  readonly deadLetters: DeadLetters;

  private readonly defaults: MetadataDefaults;
  private readonly registry: SubscriberRegistry;
  private readonly dispatcher: Dispatcher;
  private readonly stats_ = new StatsCollector();
  private readonly observers: ObserverSet;
  private readonly middleware = new MiddlewareStack<HandlerMiddleware>('middleware');
  private readonly publishMiddleware = new MiddlewareStack<PublishMiddleware>('publishMiddleware');
  private readonly health_: ReturnType<typeof resolveHealth>;
  private readonly onError: ((error: unknown) => void) | undefined;
  private readonly logger;
  private stopping: Promise<void> | undefined;
  private readonly shutdownTimeoutMs: number;
  /** Set once handlers have drained: publishing is refused from then on (handlers may still publish while draining). */
  private closed = false;
  /** Deliveries from a cross-process transport (absent with the in-process one: the storage delivers). */
  private transportDeliveries: TransportDeliveries | undefined;
  /** No relay feeds the transport: each publish sends its events itself. */
  private publishesToTransport = false;
  private relay: Promise<RelayHandle> | undefined;
  /** The options of the last synchronous append (see {@link appendOptions}). */
  private lastAppendOptions: AppendOptions = {};

  constructor(options: EventBusOptions<C>) {
    if (typeof options !== 'object' || options === null || typeof options.catalog !== 'object' || options.catalog === null) {
      throw new InvalidOptionError('catalog', 'createEventBus needs a catalog made with defineCatalog()');
    }
    this.catalog = options.catalog;
    this.storage = options.storage ?? memoryStorage();
    this.transport = options.transport ?? inProcessTransport();
    this.logger = options.logger ?? silentLogger;
    this.onError = options.onError;
    this.defaults = metadataDefaults(options.source ?? 'api', options.environment ?? process.env.NODE_ENV ?? 'development');
    this.observers = new ObserverSet((error, during) => this.report(error, during));
    for (const observer of listOption(options.observers, 'observers')) this.observers.add(observer);
    for (const mw of listOption(options.middleware, 'middleware')) this.middleware.add(mw);
    for (const mw of listOption(options.publishMiddleware, 'publishMiddleware')) this.publishMiddleware.add(mw);
    const dispatch = resolveDispatch(options.dispatch);
    this.health_ = resolveHealth(options.health);
    this.registry = new SubscriberRegistry(this.catalog, resolveRetry(options.retry), dispatch.concurrency, dispatch.handlerTimeoutMs);
    this.shutdownTimeoutMs = dispatch.shutdownTimeoutMs;
    const owner = dispatcherOwner();
    if (this.transport.capabilities.crossProcess) {
      // Deliveries come from the broker; the storage keeps the record (and, with a relay, feeds the broker).
      this.publishesToTransport = !this.storage.startRelay;
      this.transportDeliveries = new TransportDeliveries({
        transport: this.transport,
        storage: this.storage,
        logger: this.logger,
        registerWithStorage: this.storage.startRelay !== undefined,
        leaseMs: dispatch.leaseMs,
        member: owner,
      });
    }
    this.dispatcher = new Dispatcher({
      owner,
      catalog: this.catalog,
      storage: this.storage,
      ...(this.transportDeliveries ? { source: this.transportDeliveries } : {}),
      transport: this.transport,
      logger: this.logger,
      dispatch,
      registry: this.registry,
      stats: this.stats_,
      observers: this.observers,
      middleware: this.middleware,
      report: (error, during) => this.report(error, during),
      ...(options.logger === undefined ? { failureWarnings: new FirstFailureWarnings() } : {}),
      publishCaused: (parent, type, payload, opts) => this.publishCaused(parent, type, payload, opts),
    });
    this.deadLetters = {
      list: async (filter) => {
        checkQueryStrings(filter, DEAD_LETTER_FILTER, [], 'filter.');
        return this.fromStorage('list dead letters', () => this.storage.listDeadLetters(filter));
      },
      redrive: async (target) => {
        if (typeof target === 'string') checkStorableString('id', target);
        else checkQueryStrings(target, DEAD_LETTER_FILTER, [], 'filter.');
        if (this.transportDeliveries) return this.redriveThroughTransport(target);
        const count = await this.fromStorage('redrive', () => this.storage.redrive(target));
        if (count > 0) this.dispatcher.wake();
        return count;
      },
      discard: async (id) => {
        checkStorableString('id', id);
        return this.fromStorage('discard', () => this.storage.discard(id));
      },
    };
  }

  async publish<T extends EventTypeOf<C>>(
    type: T,
    payload: PayloadInput<C, T>,
    options?: PublishOptions,
  ): Promise<BaseEvent<T, PayloadOf<C, T>>> {
    this.assertOpen();
    const input = buildEvent(this.catalog, this.defaults, type, payload, options);
    const tx = options?.tx;
    this.assertTx(tx);
    const inputs = [input];
    let result: AppendResult;
    // The clock as buildEvent read it for the timestamp: the synchronous path reads it only once.
    let now: number | undefined;
    try {
      if (this.appendsNow(tx)) {
        now = input.event.timestamp.getTime();
        result = this.storage.sync!.append(inputs, this.appendOptions(), now);
      } else result = await this.append(inputs, tx);
    } catch (err) {
      throw this.publishFailure(err);
    }
    this.afterAppend(inputs, result, tx, now);
    // Validated against the schema of `type` just above.
    return result.events[0]! as BaseEvent<T, PayloadOf<C, T>>;
  }

  async publishMany(items: readonly PublishItem<C>[], options?: { tx?: unknown }): Promise<CatalogEvent<C>[]> {
    this.assertOpen();
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'publishMany takes an array');
    // Every item is checked before anything is stored: all or none.
    const inputs = items.map((item, i) => buildItem(this.catalog, this.defaults, item, i));
    if (inputs.length === 0) return [];
    const tx = options?.tx;
    this.assertTx(tx);
    let result: AppendResult;
    try {
      result = this.appendsNow(tx) ? this.storage.sync!.append(inputs, this.appendOptions()) : await this.append(inputs, tx);
    } catch (err) {
      throw this.publishFailure(err);
    }
    this.afterAppend(inputs, result, tx);
    return result.events as CatalogEvent<C>[];
  }

  subscribe(
    pattern: string | readonly string[],
    handler: Parameters<SubscriberRegistry['add']>[1],
    options: Parameters<SubscriberRegistry['add']>[2],
  ): () => void {
    if (this.dispatcher.hasStopped) throw new EventBusError('BUS_STOPPED', 'Cannot subscribe: the bus is stopped');
    const subscription = this.registry.add(pattern, handler, options);
    this.dispatcher
      .subscriberAdded(subscription)
      .catch((err) => this.report(err, `register subscriber "${subscription.name}"`));
    return () => this.registry.remove(subscription);
  }

  async start(): Promise<void> {
    if (this.dispatcher.hasStopped) throw new EventBusError('BUS_STOPPED', 'A stopped bus cannot start again');
    await this.dispatcher.start();
    if (this.transportDeliveries && this.storage.startRelay && !this.relay) {
      this.relay = this.storage.startRelay(this.transport, {
        owner: this.dispatcher.owner,
        subscribers: () => this.registry.names(),
      });
      await this.relay;
    }
  }

  idle(options?: { timeoutMs?: number }): Promise<void> {
    return this.dispatcher.idle(options?.timeoutMs);
  }

  stop(options?: StopOptions): Promise<void> {
    if (this.stopping) return this.stopping;
    let timeoutMs: number;
    try {
      timeoutMs = resolveStopTimeout(options, this.shutdownTimeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    const deadline = Date.now() + timeoutMs;
    this.stopping = (async () => {
      const relay = this.relay?.then((r) => r.stop()).catch((err) => this.report(err, 'stop relay'));
      await untilDeadline(relay, deadline);
      await this.dispatcher.stop(timeoutMs);
      await untilDeadline(this.transportDeliveries?.close().catch((err) => this.report(err, 'leave transport groups')), deadline);
      this.closed = true;
      // Closing is bounded by the same deadline (a hung connection must not hold a shutdown); it goes on in the background.
      await untilDeadline(this.transport.close().catch((err) => this.report(err, 'close transport')), deadline);
      const closed = this.dispatcher.stopWorkSettled().then(() => this.storage.close().catch((err) => this.report(err, 'close storage')));
      await untilDeadline(closed, deadline);
    })();
    return this.stopping;
  }

  async replay(options: ReplayOptions<C> = {}): Promise<number> {
    checkQueryStrings(options, ['actor', 'organizationId'], ['subscribers']);
    this.checkTypes(options.eventTypes);
    checkRange(options.from, options.to);
    if (this.transportDeliveries) return this.replayThroughTransport(options);
    const count = await this.fromStorage('replay', () => this.storage.replay({ ...options }));
    if (count > 0) this.dispatcher.wake();
    return count;
  }

  /**
   * With a cross-process transport the broker delivers: a dead letter goes
   * back to it addressed to its subscriber, then leaves the storage (so a
   * crash in between redrives it twice, never not at all).
   */
  private async redriveThroughTransport(target: string | DeadLetterFilter): Promise<number> {
    const all = await this.fromStorage('list dead letters', () => this.storage.listDeadLetters(typeof target === 'string' ? {} : target));
    const chosen = typeof target === 'string' ? all.filter((dl) => dl.id === target) : all;
    if (chosen.length === 0) return 0;
    await this.publishToTransport(chosen.map((dl) => ({ event: dl.event, subscriber: dl.subscriber })));
    for (const dl of chosen) await this.fromStorage('discard', () => this.storage.discard(dl.id));
    return chosen.length;
  }

  /** Replay with a cross-process transport: the matching events, oldest first, addressed to each chosen subscriber. */
  private async replayThroughTransport(options: ReplayOptions<C>): Promise<number> {
    const names =
      options.subscribers ?? (await this.fromStorage('list subscribers', () => this.storage.backlogBySubscriber())).map((s) => s.subscriber);
    const matching: BaseEvent[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.fromStorage('timeline', () =>
        this.storage.timeline({ ...options, limit: MAX_PAGE, ...(cursor ? { cursor } : {}) }),
      );
      matching.push(...page.events);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    matching.reverse(); // the timeline is newest first
    const addressed = names.flatMap((subscriber) =>
      matching.filter((event) => this.registry.get(subscriber)?.patterns.some((p) => matchesPattern(p, event.eventType)) ?? true).map((event) => ({ event, subscriber })),
    );
    await this.publishToTransport(addressed);
    return addressed.length;
  }

  async timeline(options: TimelineOptions<C> = {}) {
    checkQueryStrings(options, ['actor', 'organizationId', 'cursor']);
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new InvalidOptionError('limit', `must be an integer from 1 to ${MAX_PAGE}`);
    }
    this.checkTypes(options.eventTypes);
    checkRange(options.from, options.to);
    if (options.scope !== undefined) {
      checkScope(options.scope);
      checkQueryStrings(options.scope, ['actor'], ['organizationIds'], 'scope.');
    }
    return this.fromStorage('timeline', () => this.storage.timeline({ ...options, limit }));
  }

  async retireSubscriber(name: string): Promise<void> {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', 'must be a subscriber name');
    checkStorableString('name', name);
    return this.fromStorage('retire a subscriber', () => this.storage.retire(name));
  }

  async health(): Promise<HealthReport> {
    // The warnings' queries must not fail the health check: what fails is logged and left out.
    const optional = <T>(what: string, call: () => Promise<T>, none: T): Promise<T> =>
      call().catch((err: unknown) => {
        this.logger.warn({ err }, `event-bus: health warnings: ${what} failed`);
        return none;
      });
    const [h, backlogs, own] = await Promise.all([
      this.fromStorage('health', () => this.storage.health()),
      optional('backlogBySubscriber', () => this.storage.backlogBySubscriber(), []),
      optional('storage warnings', async () => (await this.storage.warnings?.()) ?? [], []),
    ]);
    const limits = this.health_;
    const healthy =
      h.unprocessed < limits.maxUnprocessed &&
      h.deadLetters < limits.maxDeadLetters &&
      (h.oldestPendingAgeMs ?? 0) <= limits.maxPendingAgeMs;
    const warnings = [...coreWarnings(h, backlogs, limits.staleSubscriberMs), ...own];
    return { status: healthy ? 'healthy' : 'unhealthy', ...h, healthy, warnings };
  }

  stats(): BusStats {
    return this.stats_.snapshot(this.dispatcher.inFlightCount);
  }

  observe(observer: BusObserver): () => void {
    return this.observers.add(observer);
  }

  use(middleware: HandlerMiddleware): () => void {
    return this.middleware.add(middleware);
  }

  usePublish(middleware: PublishMiddleware): () => void {
    return this.publishMiddleware.add(middleware);
  }

  // --- internals ---

  private publishCaused(parent: BaseEvent, type: string, payload: unknown, options?: PublishOptions): Promise<BaseEvent> {
    const links = {
      causationId: parent.eventId,
      correlationId: parent.metadata.correlationId ?? parent.eventId,
      ...(parent.metadata.traceparent ? { traceparent: parent.metadata.traceparent } : {}),
    };
    return this.publish(type as EventTypeOf<C>, payload as never, { ...options, metadata: { ...links, ...options?.metadata } });
  }

  /** Stores validated events, through the publish middleware when there is any. */
  /** Made once: the append's rejection handler when publish middleware runs (no closure per publish). */
  private readonly appendFailed = (err: unknown): never => {
    throw storageFailure(this.storage.name, 'append', err);
  };

  /** What a failed append rejects with: a storage error coded, a publish middleware's error as it was thrown. */
  private publishFailure(err: unknown): unknown {
    if (err instanceof MiddlewareFailure) return err.error;
    return storageFailure(this.storage.name, 'append', err);
  }

  /** Runs a storage call; an error that is not already coded reaches the caller as `STORAGE_REJECTED`. */
  private async fromStorage<T>(during: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw storageFailure(this.storage.name, during, err);
    }
  }

  /**
   * Whether this append can be the storage's synchronous one (a process-local
   * storage, no transaction, no publish middleware, no broker to hand it to):
   * the hot path of an in-process bus, one promise fewer per publish.
   */
  private appendsNow(tx: unknown): boolean {
    return this.storage.sync !== undefined && tx === undefined && !this.publishesToTransport && this.publishMiddleware.list.length === 0;
  }

  /** The options of a synchronous append, kept while the dispatcher's claim stays the same object. */
  private appendOptions(): AppendOptions {
    const claim = this.dispatcher.appendClaim();
    if (this.lastAppendOptions.claim !== claim) this.lastAppendOptions = claim === undefined ? {} : { claim };
    return this.lastAppendOptions;
  }

  private append(inputs: readonly AppendInput[], tx: unknown): Promise<AppendResult> {
    const store = this.publishesToTransport
      ? () => this.storage.append(inputs, { tx }).then((result) => this.sendToTransport(inputs, result))
      : () => this.storage.append(inputs, { tx, claim: tx === undefined ? this.dispatcher.appendClaim() : undefined });
    const chain = this.publishMiddleware.list;
    // Without middleware every rejection is the storage's: publish codes it in its own catch (no extra promise here).
    if (chain.length === 0) return store();
    const events = inputs.map((input) => input.event);
    const setMetadata = (event: Readonly<BaseEvent>, fields: Readonly<Record<string, string>>) => {
      const at = events.indexOf(event as BaseEvent);
      if (at < 0) throw new InvalidOptionError('event', 'setMetadata takes one of the events of this publish');
      if (typeof fields !== 'object' || fields === null) throw new InvalidOptionError('fields', 'must be an object of strings');
      for (const [key, value] of Object.entries(fields)) {
        if (typeof value !== 'string') throw new InvalidOptionError(`metadata.${key}`, 'must be a string');
      }
      // The metadata is a frozen snapshot: replace it rather than change it.
      events[at]!.metadata = Object.freeze({ ...events[at]!.metadata, ...fields });
    };
    // With middleware, code the storage's errors at the source: the middleware's own errors stay as they are.
    const coded = () => store().then(undefined, this.appendFailed);
    return runPublishChain(chain, { events, inTransaction: tx !== undefined, setMetadata }, coded).then(undefined, markCoded);
  }

  /**
   * Without a relay (a storage with no log, e.g. memory), the publish itself
   * hands the new events to the broker: it resolves once the broker has them,
   * and rejects with `TRANSPORT_UNAVAILABLE` when it refused them.
   */
  private async sendToTransport(inputs: readonly AppendInput[], result: AppendResult): Promise<AppendResult> {
    const fresh = inputs.filter((input, i) => result.events[i]!.eventId === input.event.eventId);
    await this.publishToTransport(fresh.map(({ event, orderingKey }) => (orderingKey === undefined ? { event } : { event, orderingKey })));
    return result;
  }

  private async publishToTransport(events: readonly TransportEvent[]): Promise<void> {
    try {
      await this.transport.publish(events);
    } catch (err) {
      if (EventBusError.is(err)) throw err;
      throw new EventBusError('TRANSPORT_UNAVAILABLE', `Transport "${this.transport.name}" refused the events`, { cause: err });
    }
  }

  /** `claimedAt`: when the append's claim was made, if known (saves a clock read). */
  private afterAppend(inputs: readonly AppendInput[], result: AppendResult, tx: unknown, claimedAt?: number): void {
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]!;
      if (result.events[i]!.eventId !== input.event.eventId) continue; // a repeated idempotency key
      this.stats_.published(input.event.eventType);
      if (this.observers.active) this.observers.emit('published', { event: input.event, inTransaction: tx !== undefined });
      if (input.deliverAt) this.dispatcher.scheduleAt(input.deliverAt.getTime());
    }
    // After the loop, so that observers hear of the publish before its deliveries start.
    if (result.claimed.length > 0) this.dispatcher.runClaimed(result.claimed, claimedAt);
    // Inside a caller's transaction nothing is visible yet: the storage's watch
    // (e.g. NOTIFY on commit) or the poll finds it.
    if (tx !== undefined) return;
    if (result.unclaimed > 0 || this.storage.capabilities.shared) this.dispatcher.wake();
  }

  private assertOpen(): void {
    if (this.closed) throw new EventBusError('BUS_STOPPED', 'Cannot publish: the bus is stopped');
  }

  private assertTx(tx: unknown): void {
    if (tx !== undefined && !this.storage.capabilities.transactions) {
      throw new EventBusError(
        'UNSUPPORTED_BY_STORAGE',
        `Storage "${this.storage.name}" has no transactions: publish without \`tx\` or use postgresStorage`,
      );
    }
  }

  private checkTypes(types: readonly string[] | undefined): void {
    if (types === undefined) return;
    if (!Array.isArray(types)) throw new InvalidOptionError('eventTypes', 'must be an array of event types');
    for (const type of types) if (!Object.hasOwn(this.catalog, type)) throw new UnknownEventTypeError(type);
  }

  private report(error: unknown, during: string): void {
    this.logger.error({ err: error, during }, `event bus: ${during} failed`);
    if (this.onError) {
      try {
        this.onError(error);
      } catch {
        // The hook's own failure must not break the dispatcher.
      }
    }
  }
}

function checkScope(scope: TimelineOptions<Catalog>['scope']): void {
  const { organizationIds, actor } = (scope ?? {}) as { organizationIds?: unknown; actor?: unknown };
  if (!Array.isArray(organizationIds) || !organizationIds.every((id) => typeof id === 'string')) {
    throw new InvalidOptionError('scope.organizationIds', 'must be an array of organization ids');
  }
  if (actor !== undefined && typeof actor !== 'string') throw new InvalidOptionError('scope.actor', 'must be a string');
}

function listOption<T>(value: readonly T[] | undefined, name: string): readonly T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidOptionError(name, 'must be an array');
  return value;
}

/** Carries an error out of the publish middleware chain past the storage-error coding of `publish`. */
class MiddlewareFailure {
  constructor(readonly error: unknown) {}
}

function markCoded(err: unknown): never {
  throw new MiddlewareFailure(err);
}

/**
 * A storage error as the caller gets it: coded errors pass through (the
 * storage said `STORAGE_UNAVAILABLE`, `INVALID_OPTION`, ...); anything else
 * becomes `STORAGE_REJECTED` with the driver's error as `cause`. The message
 * names only the storage, the operation, the error's class and a short
 * driver code (e.g. PostgreSQL's SQLSTATE), never the driver's message, which
 * can quote SQL parameters and payload values.
 */
function storageFailure(storage: string, during: string, err: unknown): EventBusError {
  if (EventBusError.is(err)) return err;
  const name = err instanceof Error ? err.name : typeof err;
  const code = (err as { code?: unknown } | null)?.code;
  const shortCode = typeof code === 'string' && /^[A-Za-z0-9_]{1,32}$/.test(code) ? `, code ${code}` : '';
  return new EventBusError('STORAGE_REJECTED', `Storage "${storage}" failed to ${during} (${name}${shortCode})`, { cause: err });
}

function checkRange(from: Date | undefined, to: Date | undefined): void {
  for (const [name, value] of [['from', from], ['to', to]] as const) {
    if (value !== undefined) checkDate(name, value);
  }
}
