/**
 * Which key partitions of a group this member owns. Each (group, partition)
 * has a lease key set with SET NX PX; its owner renews it every third of the
 * lease with a compare-and-set script, and deletes it when it lets the
 * partition go. Members heartbeat in the group's member set, and each aims
 * for its fair share, ceil(partitions / live members): above it, a member
 * lets its surplus go (once nothing it handed out from them is unsettled);
 * below it, it takes free partitions, including those of a dead member once
 * their lease ran out.
 */
import { randomUUID } from 'node:crypto';
import type { TransportContext } from './context';
import type { WindowEntry } from './consumer';
import { HEARTBEAT, RELEASE_LEASE, RENEW_LEASE, run } from './scripts';

/** A key partition this member owns. */
export interface OwnedPartition {
  readonly index: number;
  readonly stream: string;
  /** The lease key's value while this member owns it. */
  readonly token: string;
  /** The owner's window: entries read and not yet acknowledged, in stream order. */
  readonly entries: WindowEntry[];
  /**
   * Where reading the pending list (entries of the previous owner) goes on:
   * `'-'` from the start, `'(id'` after `id`, `null` when done and new
   * entries may be read.
   */
  pendingCursor: string | null;
  /** Over the fair share: hands out nothing new, and goes once nothing handed out is unsettled. */
  releasing: boolean;
}

/** The partition leases of one member of one group. */
export class PartitionLeases {
  private readonly owned = new Map<number, OwnedPartition>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly ctx: TransportContext,
    private readonly group: string,
    private readonly member: string,
    private readonly leaseMs: number,
  ) {}

  /** Takes a first share, then keeps the leases in the background. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => {
      this.ticking = this.ticking.then(() => this.tick()).catch((err: unknown) => {
        this.ctx.logger.warn({ err, group: this.group, member: this.member }, 'redis transport: renewing partition leases failed');
      });
    }, Math.max(10, Math.floor(this.leaseMs / 3)));
    this.timer.unref?.();
  }

  /** Stops renewing and lets every owned partition go (a new owner takes their unsettled entries at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking.catch(() => undefined);
    const { client, keys } = this.ctx;
    const owned = [...this.owned.values()];
    this.owned.clear();
    await Promise.all(owned.map((p) => run(client, RELEASE_LEASE, [keys.lease(this.group, p.index)], [p.token])));
    await run(client, HEARTBEAT, [keys.members(this.group)], [this.member, this.leaseMs, '1']);
  }

  /** True while `part` is still owned by this member. */
  owns(part: OwnedPartition): boolean {
    return this.owned.get(part.index) === part;
  }

  /** Forgets `part`: its lease turned out to be another member's (or gone). */
  drop(part: OwnedPartition): void {
    if (!this.owns(part)) return;
    this.owned.delete(part.index);
    this.ctx.logger.warn({ group: this.group, member: this.member, partition: part.index }, 'redis transport: lost a partition lease; another member takes it over');
  }

  /** Owned partitions that hand out entries. */
  serving(): OwnedPartition[] {
    return [...this.owned.values()].filter((p) => !p.releasing);
  }

  /** Owned partitions whose new entries may be read: their pending list is read and their window has room. */
  readable(readAhead: number): OwnedPartition[] {
    return this.serving().filter((p) => p.pendingCursor === null && p.entries.length < readAhead);
  }

  /** Owned partitions whose pending list is still being read, with room in their window. */
  takingOver(readAhead: number): OwnedPartition[] {
    return this.serving().filter((p) => p.pendingCursor !== null && p.entries.length < readAhead);
  }

  /** The earliest time after `now` an owned entry's hold or retry delay ends (Infinity if none). */
  nextChange(now: number): number {
    let next = Infinity;
    for (const part of this.owned.values()) {
      for (const e of part.entries) {
        if (e.heldUntil > now) next = Math.min(next, e.heldUntil);
        else if (e.notBefore > now) next = Math.min(next, e.notBefore);
      }
    }
    return next;
  }

  /** Heartbeat, renew, give up the surplus, take up to the fair share. */
  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { client, keys, partitions, logger } = this.ctx;
    const live = Number(await run(client, HEARTBEAT, [keys.members(this.group)], [this.member, this.leaseMs, '0']));
    const share = Math.ceil(partitions / Math.max(1, live));

    for (const part of [...this.owned.values()]) {
      const renewed = await run(client, RENEW_LEASE, [keys.lease(this.group, part.index)], [part.token, this.leaseMs]);
      if (renewed !== 1) this.drop(part);
    }

    const now = Date.now();
    const held = (p: OwnedPartition) => p.entries.filter((e) => e.heldUntil > now).length;
    const byKeep = [...this.owned.values()].sort((a, b) => held(b) - held(a) || a.index - b.index);
    byKeep.forEach((p, i) => (p.releasing = i >= share));
    for (const part of byKeep) {
      if (!part.releasing || held(part) > 0) continue;
      this.owned.delete(part.index);
      await run(client, RELEASE_LEASE, [keys.lease(this.group, part.index)], [part.token]);
      logger.debug({ group: this.group, member: this.member, partition: part.index }, 'redis transport: released a partition over the fair share');
    }

    if (this.stopped || this.owned.size >= share) return;
    const free = Array.from({ length: partitions }, (_, i) => i).filter((i) => !this.owned.has(i));
    // Start at a random place, so members joining together do not all race for the same partitions.
    const offset = Math.floor(Math.random() * free.length);
    for (let n = 0; n < free.length && this.owned.size < share; n++) {
      const index = free[(offset + n) % free.length]!;
      const token = `${this.member}:${randomUUID()}`;
      const taken = await client.set(keys.lease(this.group, index), token, 'PX', this.leaseMs, 'NX');
      if (taken !== 'OK') continue;
      if (this.stopped) {
        await run(client, RELEASE_LEASE, [keys.lease(this.group, index)], [token]);
        return;
      }
      this.owned.set(index, { index, stream: keys.partition(index), token, entries: [], pendingCursor: '-', releasing: false });
      logger.debug({ group: this.group, member: this.member, partition: index }, 'redis transport: took a partition');
    }
  }
}
