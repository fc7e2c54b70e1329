/**
 * Deliveries from a cross-process transport, offered to the dispatcher with
 * the same calls as a storage's (claim, extend, complete, fail, release), so
 * the dispatcher runs handlers, limits, timeouts and retries the same way
 * whichever side the work comes from.
 *
 * One consumer per subscriber name; a background fetch per consumer keeps as
 * many deliveries ready as the subscriber asked for in its last claim, and
 * wakes the dispatcher when they arrive. Retries are the bus's:
 * a failed attempt goes back to the broker with the bus's own delay
 * (`retry(delay)`), and a last one is recorded as a dead letter in the
 * storage before it is acknowledged.
 */
import { EventBusError } from '../errors';
import type { Logger } from '../logger';
import type {
  Backlog,
  ClaimedDelivery,
  ClaimOptions,
  FailOutcome,
  Lease,
  Storage,
  SubscriberRegistration,
} from '../ports/storage';
import type { Transport, TransportConsumer, TransportDelivery } from '../ports/transport';
import { uuidv7 } from '../uuidv7';

/** The calls the dispatcher makes for its deliveries: the storage's, or {@link TransportDeliveries}'. */
export type DeliverySource = Pick<Storage, 'register' | 'claim' | 'extend' | 'complete' | 'fail' | 'release' | 'nextDueAt' | 'backlog' | 'watch'>;

/** How long one background fetch waits on the broker before it asks again. */
const FETCH_WAIT_MS = 2_000;
/** Pause after a failed fetch (the broker is down), so the loop does not spin. */
const FETCH_ERROR_PAUSE_MS = 500;

interface Held {
  readonly delivery: TransportDelivery;
  readonly subscriber: string;
}

class Consumer {
  readonly buffer: ClaimedDelivery[] = [];
  /** How many deliveries to keep fetched: what the subscriber asked for in its last claim. */
  wanted = 1;
  private demand: (() => void) | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly consumer: TransportConsumer,
  ) {}

  start(fetched: (deliveries: TransportDelivery[]) => void, logger: Logger): void {
    this.loop ??= (async () => {
      while (!this.abort.signal.aborted) {
        const room = this.wanted - this.buffer.length;
        if (room <= 0) {
          await new Promise<void>((resolve) => (this.demand = resolve));
          continue;
        }
        try {
          const got = await this.consumer.fetch(room, FETCH_WAIT_MS, this.abort.signal);
          if (got.length > 0) fetched(got);
        } catch (err) {
          if (this.abort.signal.aborted) break;
          logger.warn({ err, subscriber: this.name }, 'event bus: fetching from the transport failed; trying again');
          await new Promise((resolve) => setTimeout(resolve, FETCH_ERROR_PAUSE_MS));
        }
      }
    })();
  }

  ask(limit: number): void {
    this.wanted = Math.max(this.buffer.length, limit);
    this.demand?.();
    this.demand = undefined;
  }

  async stopFetching(): Promise<void> {
    this.abort.abort();
    this.demand?.();
    await this.loop;
  }
}

/** Options of {@link TransportDeliveries}. */
export interface TransportDeliveriesOptions {
  transport: Transport;
  storage: Storage;
  logger: Logger;
  /** Also tell the storage about the subscribers (it keeps their heads: a storage that feeds the relay). */
  registerWithStorage: boolean;
  leaseMs: number;
  /** The dispatcher's owner id: the member name in every group. */
  member: string;
}

/** See the module comment. */
export class TransportDeliveries implements DeliverySource {
  private readonly consumers = new Map<string, Consumer>();
  private readonly held = new Map<string, Held>();
  private onWork: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly options: TransportDeliveriesOptions) {}

  async register(subscribers: readonly SubscriberRegistration[]): Promise<void> {
    const { transport, storage, leaseMs, member } = this.options;
    // The group first, so that a head the relay moves for a registered name never passes events its group was not there for.
    for (const sub of subscribers) {
      if (this.consumers.has(sub.name) || this.stopped) continue;
      const consumer = new Consumer(sub.name, await transport.consume(sub.name, { patterns: sub.patterns, leaseMs, member }));
      this.consumers.set(sub.name, consumer);
      if (this.onWork) this.startConsumer(consumer);
    }
    if (this.options.registerWithStorage) await storage.register(subscribers);
  }

  async watch(onWork: () => void): Promise<() => Promise<void>> {
    this.onWork = onWork;
    for (const consumer of this.consumers.values()) this.startConsumer(consumer);
    return () => this.stopFetching();
  }

  /** Stops fetching and hands back what was fetched but not claimed; running deliveries still settle. */
  private async stopFetching(): Promise<void> {
    this.stopped = true;
    this.onWork = undefined;
    const consumers = [...this.consumers.values()];
    await Promise.all(consumers.map((c) => c.stopFetching()));
    const unclaimed = consumers.flatMap((c) => c.buffer.splice(0));
    await Promise.all(unclaimed.map((d) => this.release(d)));
  }

  /** Leaves every group (after the dispatcher has settled what it ran). */
  async close(): Promise<void> {
    await this.stopFetching();
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    await Promise.all(consumers.map((c) => c.consumer.close()));
  }

  async claim(options: ClaimOptions): Promise<ClaimedDelivery[]> {
    const out: ClaimedDelivery[] = [];
    for (const { name, limit } of options.subscribers) {
      const consumer = this.consumers.get(name);
      if (!consumer) continue;
      const take = Math.min(limit, options.limit - out.length, consumer.buffer.length);
      out.push(...consumer.buffer.splice(0, Math.max(0, take)));
      // Fetch the next claim's worth meanwhile, so free slots never wait for a broker round trip
      // (fetched deliveries keep their leases through the dispatcher's heartbeat: see extend).
      consumer.ask(limit);
    }
    return out;
  }

  /** Renews the dispatcher's leases, and with them those of the deliveries fetched ahead and not claimed yet. */
  async extend(leases: readonly Lease[]): Promise<string[]> {
    const [results] = await Promise.all([
      Promise.all(
        leases.map(async (lease) => {
          const held = this.held.get(lease.token);
          return held && (await held.delivery.extend()) ? lease.deliveryId : undefined;
        }),
      ),
      this.extendFetched(),
    ]);
    return results.filter((id): id is string => id !== undefined);
  }

  /** A fetched delivery whose lease was lost meanwhile is dropped: another member has it. */
  private async extendFetched(): Promise<void> {
    for (const consumer of this.consumers.values()) {
      const kept = await Promise.all(consumer.buffer.map((d) => this.held.get(d.token)?.delivery.extend() ?? false));
      const lost = new Set(consumer.buffer.filter((_, i) => !kept[i]).map((d) => d.token));
      if (lost.size === 0) continue;
      for (const token of lost) this.held.delete(token);
      consumer.buffer.splice(0, consumer.buffer.length, ...consumer.buffer.filter((d) => !lost.has(d.token)));
    }
  }

  async complete(lease: Lease): Promise<boolean> {
    const held = this.take(lease);
    if (!held) return false;
    await held.delivery.ack();
    return true;
  }

  async fail(lease: Lease, outcome: FailOutcome): Promise<boolean> {
    const held = this.take(lease);
    if (!held) return false;
    const { delivery, subscriber } = held;
    if (outcome.retryAt) {
      await delivery.retry(Math.max(0, outcome.retryAt.getTime() - Date.now()));
      return true;
    }
    const { storage } = this.options;
    if (!storage.recordDeadLetter) {
      throw new EventBusError('UNSUPPORTED_BY_STORAGE', `Storage "${storage.name}" cannot record dead letters of transport deliveries`);
    }
    await storage.recordDeadLetter({
      subscriber,
      event: delivery.event,
      orderingKey: delivery.orderingKey,
      position: delivery.position,
      attempts: delivery.deliveryCount,
      error: outcome.error,
    });
    await delivery.ack();
    return true;
  }

  async release(lease: Lease): Promise<boolean> {
    const held = this.take(lease);
    if (!held) return false;
    await held.delivery.retry(0);
    return true;
  }

  /** The broker holds the delays: nothing is due later that the dispatcher must wake for. */
  async nextDueAt(): Promise<Date | null> {
    return null;
  }

  /**
   * What this process still has to do: deliveries fetched and not settled
   * count as leased, and a subscriber whose group still has unacknowledged
   * events in the broker (when the transport reports progress) counts one due.
   */
  async backlog(subscribers: readonly string[]): Promise<Backlog> {
    const names = new Set(subscribers);
    let leased = 0;
    for (const held of this.held.values()) if (names.has(held.subscriber)) leased += 1;
    let due = 0;
    for (const name of names) due += this.consumers.get(name)?.buffer.length ?? 0;
    const { transport, storage } = this.options;
    if (transport.progress && subscribers.length > 0) {
      const progress = await transport.progress(subscribers);
      for (const name of subscribers) if (progress.oldestPending[name] != null) due += 1;
    }
    if (storage.relayBacklog) due += await storage.relayBacklog();
    return { due, leased, retrying: 0, scheduled: 0 };
  }

  private startConsumer(consumer: Consumer): void {
    consumer.start((deliveries) => {
      const leaseExpiresAt = new Date(Date.now() + this.options.leaseMs);
      for (const delivery of deliveries) {
        const token = uuidv7();
        this.held.set(token, { delivery, subscriber: consumer.name });
        consumer.buffer.push({
          deliveryId: `${delivery.event.eventId}:${consumer.name}`,
          token,
          subscriber: consumer.name,
          event: delivery.event,
          attempt: delivery.deliveryCount,
          leaseExpiresAt,
        });
      }
      this.onWork?.();
    }, this.options.logger);
  }

  private take(lease: Lease): Held | undefined {
    const held = this.held.get(lease.token);
    this.held.delete(lease.token);
    return held;
  }
}
