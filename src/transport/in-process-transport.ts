/**
 * The in-process transport (the default): an in-memory broker with the same
 * group, lease, retry and per-key semantics as the brokers, inside this
 * process only. Not durable. The core delivers from the storage when it is
 * given this transport (it is not `crossProcess`); the transport exists so
 * code written against the port runs, and is tested, without a broker.
 */
import type {
  ConsumeOptions,
  Transport,
  TransportCapabilities,
  TransportConsumer,
  TransportDelivery,
  TransportEvent,
  TransportProgress,
} from '../ports/transport';
import { matchesPattern } from '../catalog';

const CAPABILITIES: TransportCapabilities = Object.freeze({
  crossProcess: false,
  durable: false,
  orderedPerKey: true,
  delayedDelivery: true,
  deduplicates: false,
});

interface Entry {
  readonly message: TransportEvent;
  deliveryCount: number;
  /** Not handed out before this time (ms epoch). */
  notBefore: number;
  holder?: { member: string; expiresAt: number; token: number };
}

interface Group {
  readonly patterns: readonly string[];
  readonly leaseMs: number;
  /** Unacknowledged entries in publish order. */
  entries: Entry[];
  readonly waiters: Set<() => void>;
}

/**
 * Creates the in-process {@link Transport}.
 *
 * @example
 * ```ts
 * const bus = createEventBus({ catalog, transport: inProcessTransport() });
 * ```
 */
export function inProcessTransport(): Transport {
  return new InProcessTransport();
}

class InProcessTransport implements Transport {
  readonly name = 'in-process';
  readonly capabilities = CAPABILITIES;

  private readonly groups = new Map<string, Group>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private tokens = 0;
  private closed = false;

  async publish(events: readonly TransportEvent[]): Promise<void> {
    if (this.closed) return;
    for (const [name, group] of this.groups) {
      let added = false;
      for (const message of events) {
        if (message.subscriber !== undefined && message.subscriber !== name) continue;
        if (!group.patterns.some((p) => matchesPattern(p, message.event.eventType))) continue;
        group.entries.push({ message, deliveryCount: 0, notBefore: 0 });
        added = true;
      }
      if (added) wakeAll(group);
    }
  }

  async consume(name: string, options: ConsumeOptions): Promise<TransportConsumer> {
    let group = this.groups.get(name);
    if (!group) {
      group = { patterns: [...options.patterns], leaseMs: options.leaseMs, entries: [], waiters: new Set() };
      this.groups.set(name, group);
    }
    const member = options.member;
    const g = group;
    let left = false;
    return {
      fetch: (max, waitMs, signal) => this.fetch(g, member, max, waitMs, signal, () => left),
      close: async () => {
        left = true;
        for (const entry of g.entries) if (entry.holder?.member === member) entry.holder = undefined;
        wakeAll(g);
      },
    };
  }

  async progress(groups: readonly string[]): Promise<TransportProgress> {
    const oldestPending: Record<string, string | null> = {};
    for (const name of groups) {
      const group = this.groups.get(name);
      if (!group) continue; // never joined: nothing to say of it
      const first = group.entries[0]?.message;
      oldestPending[name] = first ? (first.position ?? first.event.eventId) : null;
    }
    return { intact: true, oldestPending };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const group of this.groups.values()) wakeAll(group);
    this.groups.clear();
  }

  private async fetch(
    group: Group,
    member: string,
    max: number,
    waitMs: number,
    signal: AbortSignal | undefined,
    left: () => boolean,
  ): Promise<TransportDelivery[]> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (this.closed || left() || signal?.aborted) return [];
      const taken = this.take(group, member, max);
      if (taken.length > 0 || Date.now() >= deadline) return taken;
      await this.waitForChange(group, Math.min(deadline, this.nextChange(group)) - Date.now(), signal);
    }
  }

  /** Hands out what is free: not held (or held past its lease), due, and not behind an earlier entry of its key. */
  private take(group: Group, member: string, max: number): TransportDelivery[] {
    const now = Date.now();
    const blockedKeys = new Set<string>();
    const out: TransportDelivery[] = [];
    for (const entry of group.entries) {
      if (out.length >= max) break;
      const key = entry.message.orderingKey;
      const held = entry.holder !== undefined && entry.holder.expiresAt > now;
      const free = !held && entry.notBefore <= now && (key === undefined || !blockedKeys.has(key));
      if (key !== undefined) blockedKeys.add(key); // later entries of the key wait for this one
      if (!free) continue;
      entry.deliveryCount += 1;
      entry.holder = { member, expiresAt: now + group.leaseMs, token: ++this.tokens };
      out.push(this.delivery(group, entry, entry.holder.token));
    }
    return out;
  }

  private delivery(group: Group, entry: Entry, token: number): TransportDelivery {
    const holds = () => entry.holder?.token === token && group.entries.includes(entry);
    return {
      event: entry.message.event,
      orderingKey: entry.message.orderingKey,
      position: entry.message.position,
      deliveryCount: entry.deliveryCount,
      ack: async () => {
        if (!holds()) return;
        group.entries.splice(group.entries.indexOf(entry), 1);
        wakeAll(group);
      },
      retry: async (delayMs) => {
        if (!holds()) return;
        entry.holder = undefined;
        entry.notBefore = Date.now() + Math.max(0, delayMs);
        this.wakeAt(group, entry.notBefore);
      },
      extend: async () => {
        if (!holds() || entry.holder!.expiresAt <= Date.now()) return false;
        entry.holder!.expiresAt = Date.now() + group.leaseMs;
        return true;
      },
    };
  }

  /** The earliest time something held or delayed becomes free again. */
  private nextChange(group: Group): number {
    let next = Infinity;
    for (const entry of group.entries) {
      if (entry.holder) next = Math.min(next, entry.holder.expiresAt);
      else if (entry.notBefore > 0) next = Math.min(next, entry.notBefore);
    }
    return next;
  }

  private waitForChange(group: Group, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        group.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.timers.add(timer);
      group.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private wakeAt(group: Group, at: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      wakeAll(group);
    }, Math.max(1, at - Date.now()));
    this.timers.add(timer);
  }
}

function wakeAll(group: Group): void {
  for (const wake of [...group.waiters]) wake();
}
