/**
 * One member of a consumer group on Redis Streams.
 *
 * Unordered events: every member reads the shared stream with XREADGROUP;
 * a delivery is the member's while it is pending with it and not idle past
 * the lease, after which any member takes it with XAUTOCLAIM. Retries park
 * the entry, still pending, with a parking consumer and a not-before time in
 * the group's due set.
 *
 * Keyed events: each key partition of the group is owned by one member
 * through a lease key (see partition-leases.ts). The owner reads the
 * partition's entries into an in-memory window and hands out only the
 * oldest unsettled entry of each key, so a key's events go one at a time, in
 * order. The window's entries stay pending with the owner, so a member that
 * takes the partition over finds them in the pending list, in order.
 */
import { matchesPattern, type ConsumeOptions, type TransportConsumer, type TransportDelivery, type TransportEvent } from '@blawby/event-bus';
import type { Redis } from 'ioredis';
import { CLOSE_TIMEOUT_MS, isMissingGroup, unavailable, within, type TransportContext } from './context';
import { decodeEvent, type StoredEvent } from './entries';
import { PartitionLeases, type OwnedPartition } from './partition-leases';
import { CLAIM_UNORDERED, HAND_OUT, READ_NEW, run, SETTLE_UNORDERED, TAKE_OVER_PARTITION } from './scripts';

/** Entries a partition owner holds in memory at most; past it, that partition is not read further until some settle. */
export const READ_AHEAD = 1000;

/** The consumer a retried unordered entry is parked with until it is due. */
const PARKING = '~retry-wait';

/** Entries per page when a new owner reads a partition's pending list. */
const TAKE_OVER_PAGE = 200;

/** An entry in a partition owner's window. */
export interface WindowEntry {
  readonly id: string;
  readonly message: TransportEvent;
  /** Times handed out so far (the pending list's delivery counter mirrors it). */
  handouts: number;
  /** Handed out and held until then (ms epoch); 0 when not held. */
  heldUntil: number;
  /** Not handed out before this time (ms epoch); 0 when due. */
  notBefore: number;
  /** The current hand-out: a settle call from an earlier one does nothing. */
  token: number;
}

/** A member of group `group`. Created by the transport's `consume`. */
export class RedisConsumer implements TransportConsumer {
  private readonly patterns: readonly string[];
  private readonly leaseMs: number;
  private readonly member: string;
  private readonly leases: PartitionLeases;
  /** How often a waiting fetch looks again for deliveries whose holder's lease ran out. */
  private readonly pollMs: number;
  /** Set when a keyed ack freed a key since the current fetch round began (see {@link keyFreed}). */
  private freedKey = false;
  private cursor = '0-0';
  private nextDueAt = 0;
  private tokens = 0;
  private blockingId: number | undefined;
  private blockedRead = false;
  private closed = false;
  private markClosed!: () => void;
  private readonly closing = new Promise<void>((resolve) => (this.markClosed = resolve));
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: TransportContext,
    private readonly group: string,
    options: ConsumeOptions,
    private readonly blocking: Redis,
    private readonly onClose: () => void,
  ) {
    this.patterns = [...options.patterns];
    this.leaseMs = options.leaseMs;
    this.member = options.member;
    this.pollMs = Math.max(20, Math.min(1000, Math.floor(options.leaseMs / 4)));
    this.leases = new PartitionLeases(ctx, group, options.member, options.leaseMs);
    this.blocking.on('ready', () => void this.learnBlockingId());
  }

  /** Connects the blocking connection and takes a first share of the key partitions. */
  async start(): Promise<void> {
    if (this.blocking.status === 'wait') await this.blocking.connect();
    await this.learnBlockingId();
    await this.leases.start();
  }

  fetch(max: number, waitMs: number, signal?: AbortSignal): Promise<TransportDelivery[]> {
    // One fetch at a time: the blocking connection serves one read at a time.
    const next = this.queue.then(() => this.fetchNow(max, waitMs, signal));
    this.queue = next.catch(() => undefined);
    // close() answers a waiting fetch at once, even when Redis does not answer (what it read stays pending: leases).
    return Promise.race([next, this.closing.then(() => [])]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    this.markClosed();
    void this.unblock();
    // Leaving is a courtesy (the leases run out anyway): a Redis that does not answer does not hold close() up.
    const left = await within(CLOSE_TIMEOUT_MS, async () => {
      await this.queue;
      await this.leases.stop();
      await this.releaseUnordered();
    }).catch((err: unknown) => {
      this.ctx.logger.warn({ err, group: this.group, member: this.member }, 'redis transport: leaving the group failed; leases run out instead');
      return true;
    });
    if (!left) this.ctx.logger.warn({ group: this.group, member: this.member }, 'redis transport: Redis did not answer while leaving the group; leases run out instead');
    this.blocking.disconnect();
  }

  private async fetchNow(max: number, waitMs: number, signal: AbortSignal | undefined): Promise<TransportDelivery[]> {
    const out: TransportDelivery[] = [];
    if (max <= 0) return out;
    const deadline = Date.now() + Math.max(0, waitMs);
    const onAbort = () => void this.unblock();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (this.closed || signal?.aborted) return out;
        this.freedKey = false;
        let wake: Map<string, string> | null = null;
        try {
          await this.handOutKeyed(out, max);
          if (out.length < max) await this.claimUnordered(out, max);
          await this.readPendingOfNewPartitions();
          await this.handOutKeyed(out, max);
          wake = await this.readNew(out, max - out.length);
          await this.handOutKeyed(out, max);
        } catch (err) {
          if (!isMissingGroup(err) || out.length > 0) throw err;
          // Redis lost the group (a restart without persistence): make it again and go on.
          this.ctx.logger.warn({ group: this.group }, 'redis transport: consumer group missing, creating it again');
          await this.ctx.ensureGroup(this.group, this.patterns);
          this.cursor = '0-0';
          continue;
        }
        if (out.length > 0 || Date.now() >= deadline) return out;
        const blockMs = this.blockFor(deadline);
        // Wait only when nothing more can be read right away (a new owner's pending list may have pages left).
        if (this.freedKey) continue; // an ack came in meanwhile: hand out what it freed instead of waiting
        if (wake && blockMs > 0 && this.leases.takingOver(READ_AHEAD).length === 0) await this.waitForNew(wake, blockMs);
      }
    } catch (err) {
      throw unavailable('fetch', err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** How long the next read may block: until the deadline, a local retry/lease time, a due retry, or the next lease poll. */
  private blockFor(deadline: number): number {
    const now = Date.now();
    let until = Math.min(deadline, now + this.pollMs, this.leases.nextChange(now));
    if (this.nextDueAt > 0) until = Math.min(until, this.nextDueAt);
    return Math.max(0, until - now);
  }

  private matches(stored: StoredEvent): boolean {
    const addressed = stored.message.subscriber;
    if (addressed !== undefined && addressed !== this.group) return false;
    return this.patterns.some((p) => matchesPattern(p, stored.eventType));
  }

  // ---------------------------------------------------------------- unordered

  /** Delayed entries now due, and entries whose holder's lease ran out. */
  private async claimUnordered(out: TransportDelivery[], max: number): Promise<void> {
    const { keys, client } = this.ctx;
    const reply = (await run(client, CLAIM_UNORDERED, [keys.unordered, keys.unorderedDue(this.group)], [
      this.group,
      this.member,
      this.leaseMs,
      this.cursor,
      max - out.length,
      PARKING,
    ])) as [string, string, string, [string, number, string[]][]];
    const [cursor, nextDue, serverNow, taken] = reply;
    this.cursor = cursor;
    // The due time is in server time: keep only the distance to it.
    this.nextDueAt = nextDue === '' ? 0 : Date.now() + Math.max(0, Number(nextDue) - Number(serverNow));
    const foreign: string[] = [];
    for (const [id, count, fields] of taken) {
      const stored = decodeEvent(id, fields);
      if (!stored || !this.matches(stored)) foreign.push(id);
      else out.push(this.unorderedDelivery(stored, Number(count)));
    }
    if (foreign.length > 0) await client.xack(keys.unordered, this.group, ...foreign);
  }

  private unorderedDelivery(stored: StoredEvent, deliveryCount: number): TransportDelivery {
    const settle = async (mode: 'ack' | 'retry' | 'extend', delayMs = 0): Promise<boolean> => {
      const { keys, client } = this.ctx;
      try {
        const done = await run(client, SETTLE_UNORDERED, [keys.unordered, keys.unorderedDue(this.group)], [
          mode,
          this.group,
          this.member,
          stored.id,
          deliveryCount,
          this.leaseMs,
          Math.max(0, Math.ceil(Number.isFinite(delayMs) ? delayMs : 0)),
          PARKING,
        ]);
        return done === 1;
      } catch (err) {
        throw unavailable(mode, err);
      }
    };
    return {
      ...messageFields(stored.message),
      deliveryCount,
      ack: async () => void (await settle('ack')),
      retry: async (delayMs) => void (await settle('retry', delayMs)),
      extend: () => settle('extend'),
    };
  }

  /** Lets other members take this member's unordered deliveries at once: marks them idle past the lease. */
  private async releaseUnordered(): Promise<void> {
    const { keys, client } = this.ctx;
    const pending = (await client.call('XPENDING', keys.unordered, this.group, '-', '+', 1000, this.member)) as [string][] | null;
    const ids = (pending ?? []).map((p) => String(p[0]));
    if (ids.length > 0) await client.call('XCLAIM', keys.unordered, this.group, this.member, 0, ...ids, 'IDLE', this.leaseMs, 'JUSTID');
  }

  // ---------------------------------------------------------------- reading

  /**
   * New entries: up to `count` of the unordered stream (handed out), and read
   * ahead into the windows of the owned partitions (fenced by their leases).
   * Answers where to wait from (stream → newest id), or `null` when a stream
   * may hold more right away.
   */
  private async readNew(out: TransportDelivery[], count: number): Promise<Map<string, string> | null> {
    const { keys, client } = this.ctx;
    const partitions = this.leases.readable(READ_AHEAD);
    const perPartition = Math.min(TAKE_OVER_PAGE, ...partitions.map((p) => READ_AHEAD - p.entries.length));
    const reply = (await run(
      client,
      READ_NEW,
      [keys.unordered, ...partitions.flatMap((p) => [keys.lease(this.group, p.index), p.stream])],
      [this.group, this.member, Math.max(0, count), perPartition, ...partitions.map((p) => p.token)],
    )) as [string, [string, string[] | null][]][];
    const wake = new Map<string, string>();
    let more = false;
    const acks: Promise<unknown>[] = [];

    const [unorderedNewest, unordered] = reply[0]!;
    wake.set(keys.unordered, unorderedNewest);
    if (count > 0 && unordered.length >= count) more = true;
    const foreign: string[] = [];
    for (const [id, fields] of unordered) {
      const stored = decodeEvent(id, fields);
      if (!stored || !this.matches(stored)) foreign.push(id);
      else out.push(this.unorderedDelivery(stored, 1));
    }
    if (foreign.length > 0) acks.push(client.xack(keys.unordered, this.group, ...foreign));

    partitions.forEach((part, i) => {
      const [newest, entries] = reply[i + 1]!;
      if (newest === 'lost') {
        this.leases.drop(part);
        return;
      }
      wake.set(part.stream, newest);
      if (entries.length >= perPartition) more = true;
      const other: string[] = [];
      for (const [id, fields] of entries) {
        const stored = decodeEvent(id, fields);
        if (!stored || !this.matches(stored)) other.push(id);
        else part.entries.push({ id, message: stored.message, handouts: 0, heldUntil: 0, notBefore: 0, token: 0 });
      }
      if (other.length > 0) acks.push(client.xack(part.stream, this.group, ...other));
    });
    await Promise.all(acks);
    return more ? null : wake;
  }

  /** Waits (XREAD BLOCK on the blocking connection) until a stream has an entry past `from`, or `blockMs` passed. */
  private async waitForNew(from: Map<string, string>, blockMs: number): Promise<void> {
    this.blockedRead = true;
    try {
      await this.blocking.call('XREAD', 'COUNT', 1, 'BLOCK', blockMs, 'STREAMS', ...from.keys(), ...from.values());
    } finally {
      this.blockedRead = false;
    }
  }

  /** A newly owned partition's pending entries (the previous owner's, in order) come before any new entry. */
  private async readPendingOfNewPartitions(): Promise<void> {
    const { keys, client } = this.ctx;
    for (const part of this.leases.takingOver(READ_AHEAD)) {
      const [size, rows] = (await run(client, TAKE_OVER_PARTITION, [keys.lease(this.group, part.index), part.stream, keys.keyedDue(this.group)], [
        part.token,
        this.group,
        this.member,
        part.pendingCursor!,
        TAKE_OVER_PAGE,
      ])) as [number, [string, number, string, string[]][]];
      if (Number(size) < 0) this.leases.drop(part);
      if (!this.leases.owns(part)) continue;
      const other: string[] = [];
      for (const [id, count, due, fields] of rows) {
        const stored = decodeEvent(id, fields);
        if (!stored || !this.matches(stored)) other.push(id);
        else part.entries.push({ id, message: stored.message, handouts: Number(count), heldUntil: 0, notBefore: due === '' ? 0 : Number(due), token: 0 });
      }
      const last = rows.at(-1)?.[0];
      part.pendingCursor = Number(size) < TAKE_OVER_PAGE ? null : last !== undefined ? `(${last}` : part.pendingCursor;
      if (other.length > 0) await client.xack(part.stream, this.group, ...other);
    }
  }

  // ---------------------------------------------------------------- keyed

  /** Hands out the oldest entry of each key in the owned partitions, when it is neither held nor waiting for its retry. */
  private async handOutKeyed(out: TransportDelivery[], max: number): Promise<void> {
    const { keys, client } = this.ctx;
    const now = Date.now();
    for (const part of this.leases.serving()) {
      if (out.length >= max) return;
      const blocked = new Set<string>();
      const chosen: WindowEntry[] = [];
      for (const entry of part.entries) {
        if (out.length + chosen.length >= max) break;
        const key = entry.message.orderingKey ?? '';
        if (blocked.has(key)) continue;
        blocked.add(key); // later entries of the key wait for this one
        if (entry.heldUntil <= now && entry.notBefore <= now) chosen.push(entry);
      }
      if (chosen.length === 0) continue;
      // Held from now on, so the lease keeper does not let the partition go while this is recorded.
      const before = chosen.map((e) => e.heldUntil);
      for (const entry of chosen) entry.heldUntil = now + this.leaseMs;
      const recorded = await run(client, HAND_OUT, [keys.lease(this.group, part.index), part.stream, keys.keyedDue(this.group)], [
        part.token,
        this.group,
        this.member,
        ...chosen.flatMap((e) => [e.id, e.handouts + 1]),
      ]).catch((err: unknown) => {
        chosen.forEach((e, i) => (e.heldUntil = before[i]!));
        throw err;
      });
      if (recorded !== 1) this.leases.drop(part);
      if (!this.leases.owns(part)) continue;
      for (const entry of chosen) {
        entry.handouts += 1;
        entry.notBefore = 0;
        entry.token = ++this.tokens;
        out.push(this.keyedDelivery(part, entry));
      }
    }
  }

  private keyedDelivery(part: OwnedPartition, entry: WindowEntry): TransportDelivery {
    const token = entry.token;
    const holds = () => entry.token === token && this.leases.owns(part) && part.entries.includes(entry);
    const { keys, client } = this.ctx;
    return {
      ...messageFields(entry.message),
      deliveryCount: entry.handouts,
      ack: async () => {
        if (!holds()) return;
        try {
          await Promise.all([client.xack(part.stream, this.group, entry.id), client.zrem(keys.keyedDue(this.group), entry.id)]);
        } catch (err) {
          throw unavailable('ack', err);
        }
        const at = part.entries.indexOf(entry);
        if (at >= 0) part.entries.splice(at, 1);
        this.keyFreed(); // the key's next entry may go out now
      },
      retry: async (delayMs) => {
        if (!holds()) return;
        const notBefore = Date.now() + Math.max(0, Number.isFinite(delayMs) ? delayMs : 0);
        entry.heldUntil = 0;
        entry.notBefore = notBefore;
        entry.token = ++this.tokens;
        // Kept in Redis too, so a member taking the partition over honours the delay.
        try {
          await client.zadd(keys.keyedDue(this.group), notBefore, entry.id);
        } catch (err) {
          throw unavailable('retry', err);
        }
      },
      extend: async () => {
        if (!holds() || entry.heldUntil <= Date.now()) return false;
        entry.heldUntil = Date.now() + this.leaseMs;
        return true;
      },
    };
  }

  // ---------------------------------------------------------------- blocking connection

  private async learnBlockingId(): Promise<void> {
    try {
      this.blockingId = Number(await this.blocking.client('ID'));
    } catch {
      this.blockingId = undefined;
    }
  }

  /** A keyed entry was acknowledged: a waiting fetch can hand out that key's next one at once. */
  private keyFreed(): void {
    this.freedKey = true;
    void this.unblock();
  }

  /** Ends a blocked read at once (CLIENT UNBLOCK from the command connection): it returns what it has. */
  private async unblock(): Promise<void> {
    if (!this.blockedRead || this.blockingId === undefined) return;
    try {
      await this.ctx.client.call('CLIENT', 'UNBLOCK', this.blockingId);
    } catch (err) {
      this.ctx.logger.debug({ err }, 'redis transport: could not unblock a read; it ends at its timeout');
    }
  }
}

function messageFields(message: TransportEvent): Pick<TransportDelivery, 'event' | 'orderingKey' | 'position'> {
  return {
    event: message.event,
    ...(message.orderingKey !== undefined ? { orderingKey: message.orderingKey } : {}),
    ...(message.position !== undefined ? { position: message.position } : {}),
  };
}
