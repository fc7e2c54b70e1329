/**
 * One member of one group: the unordered channel every member pulls from,
 * the key partitions this member owns (see partition-leases.ts), and the
 * tick that renews the partition leases and keeps held events alive.
 */
import type { TransportConsumer, TransportDelivery } from '@blawby/event-bus';
import type { GroupContext } from './group-context';
import { KeyedPartition } from './keyed-partition';
import { partitionConsumer } from './names';
import { PartitionLeases, type PartitionHost } from './partition-leases';
import { UnorderedChannel } from './unordered-channel';

/** A member's consumer; `open()` joins before it is handed to the caller. */
export class NatsConsumer implements TransportConsumer, PartitionHost {
  private readonly unordered: UnorderedChannel;
  private readonly leases: PartitionLeases;
  private readonly partitions = new Map<number, KeyedPartition>();
  private readonly waiters = new Set<() => void>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private ticking: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private turn = 0;

  constructor(
    private readonly ctx: GroupContext,
    unorderedName: string,
    private readonly onClose: () => void,
  ) {
    this.unordered = new UnorderedChannel(ctx, unorderedName);
    this.leases = new PartitionLeases(ctx, this);
  }

  /** Takes its first share of the partitions and starts the tick. */
  async open(): Promise<void> {
    await this.tick();
    const every = Math.max(50, Math.floor(this.ctx.leaseMs / 3));
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref?.();
  }

  async fetch(max: number, waitMs: number, signal?: AbortSignal): Promise<TransportDelivery[]> {
    const out: TransportDelivery[] = [];
    if (max <= 0) return out;
    const deadline = Date.now() + Math.max(0, waitMs);
    for (;;) {
      if (this.closing || signal?.aborted) return out;
      out.push(...this.takeKeyed(max - out.length));
      out.push(...this.unordered.take(max - out.length));
      if (out.length >= max) return out;
      if (out.length > 0) {
        // Top up with what the unordered channel has right now, without waiting.
        if (!this.unordered.pulling) await this.unordered.pull(max - out.length, 0);
        out.push(...this.unordered.take(max - out.length));
        return out;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return out;
      const changed = this.waitForChange(remaining, signal);
      if (!this.unordered.pulling) void this.unordered.pull(max, remaining);
      await changed;
    }
  }

  async close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  acquired(partition: number): void {
    const keyed = new KeyedPartition(this.ctx, partition, partitionConsumer(this.ctx.group, partition));
    this.partitions.set(partition, keyed);
    keyed.start();
  }

  setDraining(partition: number, draining: boolean): void {
    const keyed = this.partitions.get(partition);
    if (!keyed || keyed.draining === draining) return;
    keyed.draining = draining;
    if (draining) void keyed.stopPulling();
    else keyed.start();
    this.wake();
  }

  idle(partition: number): boolean {
    return this.partitions.get(partition)?.idle() ?? true;
  }

  async lost(partition: number, graceful: boolean): Promise<void> {
    const keyed = this.partitions.get(partition);
    if (!keyed) return;
    this.partitions.delete(partition);
    await keyed.abandon(graceful);
    if (!graceful) this.ctx.logger.warn({ group: this.ctx.group, partition }, 'nats transport: key partition taken over by another member');
  }

  /** Drops every delivery taken so far (the stream they came from was replaced). */
  reset(): void {
    this.unordered.reset();
    for (const keyed of this.partitions.values()) keyed.reset();
  }

  /** Wakes waiting fetches. */
  wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Keyed deliveries, starting at another partition each time so none starves. */
  private takeKeyed(max: number): TransportDelivery[] {
    const out: TransportDelivery[] = [];
    if (!this.leases.confident()) return out;
    const owned = [...this.partitions.values()];
    this.turn = (this.turn + 1) % Math.max(1, owned.length);
    for (let i = 0; i < owned.length && out.length < max; i++) {
      out.push(...owned[(this.turn + i) % owned.length]!.take(max - out.length));
    }
    return out;
  }

  private tick(): Promise<void> {
    if (this.ticking || this.closing) return this.ticking ?? Promise.resolve();
    this.ticking = (async () => {
      try {
        await this.ctx.watchStream();
        await this.leases.tick();
        for (const keyed of this.partitions.values()) keyed.keepAlive();
        this.unordered.keepAlive();
        this.wake(); // partitions may have changed hands, or become safe to hand out again
      } catch (err) {
        this.ctx.logger.warn({ err, group: this.ctx.group }, 'nats transport: lease round failed');
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.ticking;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    this.wake();
    await this.ticking;
    this.unordered.close();
    await this.leases.release();
    this.onClose();
  }

  private waitForChange(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
