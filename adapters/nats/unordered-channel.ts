/**
 * A member's share of a group's unordered events: pulled on demand from the
 * group's one durable consumer that every member pulls from, so the broker
 * spreads them and redelivers one whose ack wait (the lease) runs out. A pull
 * may outlive the fetch that started it; what it brings after waits here for
 * the next fetch, kept alive with `+WPI`.
 */
import type { TransportDelivery, TransportEvent } from '@blawby/event-bus';
import { unavailable } from './broker';
import { addressedTo, decodeEvent } from './codec';
import type { GroupContext } from './group-context';
import { ackAndConfirm, nak, pull, working, type PullRequest, type PulledMessage } from './pull';

interface Waiting {
  readonly event: TransportEvent;
  readonly message: PulledMessage;
  /** When its ack wait last started. */
  touchedAt: number;
}

interface Held {
  readonly reply: string;
  settled: boolean;
  touchedAt: number;
}

/** The unordered events of one group, for one member. */
export class UnorderedChannel {
  private waiting: Waiting[] = [];
  private readonly held = new Set<Held>();
  private current: PullRequest | undefined;
  private closed = false;

  constructor(
    private readonly ctx: GroupContext,
    private readonly consumer: string,
  ) {}

  /** A pull is under way. */
  get pulling(): boolean {
    return this.current !== undefined;
  }

  /** Up to `max` deliveries from what arrived. */
  take(max: number): TransportDelivery[] {
    return this.waiting.splice(0, max).map((w) => this.handOut(w));
  }

  /**
   * Starts a pull for up to `batch` events waiting up to `expiresMs` (0: only
   * what is there), unless one is under way; resolves when it ends.
   */
  async pull(batch: number, expiresMs: number): Promise<void> {
    if (this.closed) return;
    if (this.current) return void (await this.current.done);
    const request = pull(this.ctx.nc, this.ctx.names.eventStream, this.consumer, batch, expiresMs, (m) => this.receive(m));
    this.current = request;
    const result = await request.done;
    if (this.current === request) this.current = undefined;
    if (result.silent && !this.closed) await this.ctx.recover(this.consumer).catch(() => {});
    this.ctx.wake();
  }

  /** Keeps events that arrived after their fetch from being redelivered. */
  keepAlive(): void {
    for (const w of this.waiting) if (working(this.ctx.nc, w.message.reply)) w.touchedAt = Date.now();
  }

  /** Forgets everything taken so far: later calls on those deliveries do nothing (the stream was replaced). */
  reset(): void {
    this.waiting = [];
    for (const h of this.held) h.settled = true;
    this.held.clear();
  }

  /** Stops pulling and gives back what this member holds, to be redelivered at once. */
  close(): void {
    this.closed = true;
    this.current?.stop();
    this.current = undefined;
    for (const w of this.waiting.splice(0)) nak(this.ctx.nc, w.message.reply, 0);
    for (const h of this.held) {
      h.settled = true;
      nak(this.ctx.nc, h.reply, 0);
    }
    this.held.clear();
  }

  private receive(message: PulledMessage): void {
    const event = decodeEvent(message.data);
    if (!event || !this.ctx.filter.matches(event.event.eventType) || !addressedTo(event, this.ctx.group)) {
      void ackAndConfirm(this.ctx.nc, message.reply, this.ctx.ackTimeoutMs).catch(() => {});
      return;
    }
    if (this.closed) {
      nak(this.ctx.nc, message.reply, 0);
      return;
    }
    this.waiting.push({ event, message, touchedAt: Date.now() });
    this.ctx.wake();
  }

  private handOut({ event, message, touchedAt }: Waiting): TransportDelivery {
    // The lease starts now: restart the ack wait of an event that waited here.
    if (Date.now() - touchedAt > 100) working(this.ctx.nc, message.reply);
    const held: Held = { reply: message.reply, settled: false, touchedAt: Date.now() };
    this.held.add(held);
    const { nc, leaseMs, ackTimeoutMs } = this.ctx;
    const settle = () => {
      held.settled = true;
      this.held.delete(held);
    };
    return {
      event: event.event,
      orderingKey: event.orderingKey,
      position: event.position,
      deliveryCount: message.deliveryCount,
      ack: async () => {
        if (held.settled) return;
        try {
          await ackAndConfirm(nc, held.reply, ackTimeoutMs);
        } catch (err) {
          throw unavailable('acknowledge a delivery', err);
        }
        settle();
      },
      retry: async (delayMs) => {
        if (held.settled) return;
        settle();
        nak(nc, held.reply, Math.max(0, delayMs));
      },
      extend: async () => {
        if (held.settled || Date.now() - held.touchedAt > leaseMs) return false;
        if (!working(nc, held.reply)) return false;
        held.touchedAt = Date.now();
        return true;
      },
    };
  }
}
