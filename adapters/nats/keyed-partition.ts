/**
 * One key partition of one group, while this member owns it: pulls the
 * partition consumer (only the owner does), keeps everything it received in
 * stream order, and hands out an event only when no earlier event of its key
 * is still out, waiting for its retry delay, or being acknowledged. Held-back
 * events stay unacknowledged and are kept alive with `+WPI`, so the broker
 * does not redeliver them meanwhile.
 *
 * On taking a partition over, nothing is handed out until every delivery the
 * consumer has pending is back in this member's hands (the previous owner's
 * unacknowledged events come back after their ack wait or retry delay): only
 * then is the order of each key known.
 */
import type { TransportDelivery, TransportEvent } from '@blawby/event-bus';
import { consumerInfo, unavailable } from './broker';
import { addressedTo, decodeEvent } from './codec';
import type { GroupContext } from './group-context';
import { ackAndConfirm, nak, pull, working, type PullRequest, type PulledMessage } from './pull';

type State = 'ready' | 'out' | 'away' | 'acking';

interface Entry {
  readonly seq: number;
  readonly event: TransportEvent;
  message: PulledMessage;
  state: State;
  /** Changes whenever the entry is handed out again, so an earlier holder's calls do nothing. */
  token: number;
  touchedAt: number;
}

/** Messages asked for per pull. */
const PULL_BATCH = 64;
/** How long a pull waits while the partition is taken over (the hand-over check runs between pulls). */
const GATED_PULL_MS = 200;

/** A key partition this member owns. */
export class KeyedPartition {
  /** No new deliveries: the partition is being handed to another member. */
  draining = false;

  private entries: Entry[] = [];
  private gated = true;
  private running = false;
  private loop: Promise<void> | undefined;
  private current: PullRequest | undefined;
  private abandoned = false;
  private tokens = 0;

  constructor(
    private readonly ctx: GroupContext,
    readonly index: number,
    private readonly consumer: string,
  ) {}

  /** Starts pulling. */
  start(): void {
    if (this.running || this.abandoned) return;
    this.running = true;
    const previous = this.loop; // a loop told to stop may still be ending its last pull
    this.loop = (async () => {
      await previous;
      await this.run();
    })();
  }

  /** Stops pulling once the pull under way ends (nothing it brings is lost). */
  async stopPulling(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Pulling stopped and nothing is out, delayed or being acknowledged: safe to hand over. */
  idle(): boolean {
    return !this.running && this.entries.every((e) => e.state === 'ready');
  }

  /** Up to `max` deliveries that keep each key's order. */
  take(max: number): TransportDelivery[] {
    if (this.gated || this.draining || this.abandoned) return [];
    const out: TransportDelivery[] = [];
    const blocked = new Set<string>();
    for (const entry of this.entries) {
      if (out.length >= max) break;
      const key = entry.event.orderingKey ?? '';
      const free = entry.state === 'ready' && !blocked.has(key);
      blocked.add(key);
      if (free) out.push(this.handOut(entry));
    }
    return out;
  }

  /** Forgets everything taken so far and waits for the hand-over check again (the stream was replaced). */
  reset(): void {
    this.entries = [];
    this.gated = true;
  }

  /** Keeps held-back events from being redelivered, and retries acknowledgements that failed. */
  keepAlive(): void {
    if (this.abandoned) return;
    for (const entry of this.entries) {
      if (entry.state === 'ready') working(this.ctx.nc, entry.message.reply);
      else if (entry.state === 'acking') void this.confirmAck(entry).catch(() => {});
    }
  }

  /**
   * Lets go of everything. With `giveBack`, what it holds is handed back to
   * the broker at once (a clean hand-over); without, the broker brings it
   * back after its ack wait (the partition was taken away).
   */
  async abandon(giveBack: boolean): Promise<void> {
    this.draining = true;
    this.running = false;
    if (!giveBack) {
      // Taken away: drop everything now; the loop ends on its own.
      this.abandoned = true;
      this.current?.stop();
      this.entries = [];
      return;
    }
    await this.loop; // what the last pull brings is given back too
    this.abandoned = true;
    for (const entry of this.entries) if (entry.state === 'ready' || entry.state === 'out') nak(this.ctx.nc, entry.message.reply, 0);
    this.entries = [];
  }

  private async run(): Promise<void> {
    const { ctx } = this;
    while (this.running) {
      if (this.gated) await this.checkHandOver();
      const expiresMs = this.gated ? GATED_PULL_MS : Math.max(100, Math.min(2000, Math.floor(ctx.leaseMs / 3)));
      this.current = pull(ctx.nc, ctx.names.eventStream, this.consumer, PULL_BATCH, expiresMs, (m) => this.receive(m));
      const result = await this.current.done;
      this.current = undefined;
      // A pull the server may not have finished could have left an event pending that this member never got:
      // hand nothing out until it is back (after its ack wait), or a later event of its key could overtake it.
      if (!result.complete) this.gated = true;
      if (result.silent && this.running) await ctx.recover(this.consumer).catch(() => {});
    }
  }

  /** Opens the partition once every pending delivery of the consumer is in this member's hands. */
  private async checkHandOver(): Promise<void> {
    try {
      const info = await consumerInfo(this.ctx.jsm, this.ctx.names.eventStream, this.consumer);
      if (info && info.num_ack_pending <= this.entries.length) {
        this.gated = false;
        this.ctx.wake();
      }
    } catch {
      // stays closed; checked again before the next pull
    }
  }

  private receive(message: PulledMessage): void {
    if (this.abandoned) return;
    const existing = this.entries.find((e) => e.seq === message.streamSeq);
    if (existing) {
      // Redelivered: its lease ran out while out, or its retry delay passed.
      existing.message = message;
      if (existing.state === 'out' || existing.state === 'away') {
        existing.state = 'ready';
        existing.token = ++this.tokens;
      }
      this.ctx.wake();
      return;
    }
    const event = decodeEvent(message.data);
    if (!event || !this.ctx.filter.matches(event.event.eventType) || !addressedTo(event, this.ctx.group)) {
      void ackAndConfirm(this.ctx.nc, message.reply, this.ctx.ackTimeoutMs).catch(() => {});
      return;
    }
    const entry: Entry = { seq: message.streamSeq, event, message, state: 'ready', token: ++this.tokens, touchedAt: 0 };
    let at = this.entries.length;
    while (at > 0 && this.entries[at - 1]!.seq > entry.seq) at -= 1;
    this.entries.splice(at, 0, entry);
    this.ctx.wake();
  }

  private handOut(entry: Entry): TransportDelivery {
    const token = ++this.tokens;
    entry.token = token;
    entry.state = 'out';
    entry.touchedAt = Date.now();
    const holds = () => !this.abandoned && entry.token === token && this.entries.includes(entry);
    const { nc, leaseMs } = this.ctx;
    return {
      event: entry.event.event,
      orderingKey: entry.event.orderingKey,
      position: entry.event.position,
      deliveryCount: entry.message.deliveryCount,
      ack: async () => {
        if (!holds() || entry.state !== 'out') return;
        await this.confirmAck(entry);
      },
      retry: async (delayMs) => {
        if (!holds() || entry.state !== 'out') return;
        entry.state = 'away';
        nak(nc, entry.message.reply, Math.max(0, delayMs));
      },
      extend: async () => {
        if (!holds() || entry.state !== 'out' || Date.now() - entry.touchedAt > leaseMs) return false;
        if (!working(nc, entry.message.reply)) return false;
        entry.touchedAt = Date.now();
        return true;
      },
    };
  }

  /** Acknowledges and, once the server confirms, lets the key's next event go. Failed: retried by {@link keepAlive}. */
  private async confirmAck(entry: Entry): Promise<void> {
    entry.state = 'acking';
    try {
      await ackAndConfirm(this.ctx.nc, entry.message.reply, this.ctx.ackTimeoutMs);
    } catch (err) {
      throw unavailable('acknowledge a delivery', err);
    }
    const at = this.entries.indexOf(entry);
    if (at >= 0) this.entries.splice(at, 1);
    this.ctx.wake();
  }
}
