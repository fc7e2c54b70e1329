/**
 * What the dashboard counts in this process, through the public observation
 * seam (`bus.observe`): publishes and settled deliveries per minute for the
 * last hour, publishes per event type, the recent attempts of each event (for
 * its detail view), and a change signal for the live stream.
 */
import type { BusObserver, DeliverySettledObservation } from '@blawby/event-bus';

/** Minutes kept for the charts. */
export const DASHBOARD_MINUTES = 60;
/** Attempts kept for event details (the newest ones). */
const MAX_ATTEMPTS = 2000;
/** Event types kept in the distribution (the rest count as `(other)`). */
const MAX_TYPES = 200;

/** One minute of the charts. */
export interface DashboardMinute {
  /** Start of the minute (ms since the epoch). */
  at: number;
  published: number;
  succeeded: number;
  /** Attempts that failed (retried or dead-lettered). */
  failed: number;
  deadLettered: number;
}

/** One attempt of a delivery, as this process saw it. */
export interface DashboardAttempt {
  eventId: string;
  subscriber: string;
  attempt: number;
  outcome: DeliverySettledObservation['outcome'];
  durationMs: number;
  /** When it settled (ISO). */
  at: string;
  error?: { name: string; message: string };
}

/** Counters of one bus, shared by every dashboard route mounted on it. */
export class DashboardMonitor {
  private readonly minutes = new Map<number, DashboardMinute>();
  private readonly types = new Map<string, number>();
  private readonly attempts: DashboardAttempt[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly since = new Date();

  constructor(bus: { observe(observer: BusObserver): () => void }) {
    bus.observe({
      published: ({ event }) => {
        this.minute().published += 1;
        const key = this.types.has(event.eventType) || this.types.size < MAX_TYPES ? event.eventType : '(other)';
        this.types.set(key, (this.types.get(key) ?? 0) + 1);
        this.changed();
      },
      deliverySettled: (o) => {
        const m = this.minute();
        if (o.outcome === 'succeeded') m.succeeded += 1;
        else if (o.outcome === 'retrying') m.failed += 1;
        else if (o.outcome === 'dead-lettered') {
          m.failed += 1;
          m.deadLettered += 1;
        }
        this.attempts.push({
          eventId: o.event.eventId,
          subscriber: o.subscriber,
          attempt: o.attempt,
          outcome: o.outcome,
          durationMs: Math.round(o.durationMs * 10) / 10,
          at: new Date().toISOString(),
          ...(o.error ? { error: { name: o.error.name, message: o.error.message } } : {}),
        });
        if (this.attempts.length > MAX_ATTEMPTS) this.attempts.splice(0, this.attempts.length - MAX_ATTEMPTS);
        this.changed();
      },
    });
  }

  /** The last {@link DASHBOARD_MINUTES} minutes, oldest first, empty minutes included. */
  series(now = Date.now()): DashboardMinute[] {
    const current = Math.floor(now / 60_000) * 60_000;
    const out: DashboardMinute[] = [];
    for (let i = DASHBOARD_MINUTES - 1; i >= 0; i--) {
      const at = current - i * 60_000;
      out.push(this.minutes.get(at) ?? { at, published: 0, succeeded: 0, failed: 0, deadLettered: 0 });
    }
    return out;
  }

  /** Publishes per event type since the monitor started, most first. */
  eventTypes(): { eventType: string; count: number }[] {
    return [...this.types].map(([eventType, count]) => ({ eventType, count })).sort((a, b) => b.count - a.count);
  }

  /** This process's recent attempts of one event, oldest first. */
  attemptsOf(eventId: string): DashboardAttempt[] {
    return this.attempts.filter((a) => a.eventId === eventId);
  }

  /** When counting started. */
  get countingSince(): Date {
    return this.since;
  }

  /** Calls `listener` (at most every `throttleMs`) after something was observed; returns its removal. */
  onChange(listener: () => void, throttleMs = 500): () => void {
    const { call, cancel } = throttle(listener, throttleMs);
    this.listeners.add(call);
    return () => {
      this.listeners.delete(call);
      cancel();
    };
  }

  private minute(now = Date.now()): DashboardMinute {
    const at = Math.floor(now / 60_000) * 60_000;
    let m = this.minutes.get(at);
    if (!m) {
      m = { at, published: 0, succeeded: 0, failed: 0, deadLettered: 0 };
      this.minutes.set(at, m);
      for (const key of this.minutes.keys()) if (key <= at - DASHBOARD_MINUTES * 60_000) this.minutes.delete(key);
    }
    return m;
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

/**
 * `call` runs `fn` once, `ms` after the first call since the last run (calls
 * in between add nothing); `cancel` drops a pending run.
 */
export function throttle(fn: () => void, ms: number): { call: () => void; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    call: () => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        fn();
      }, ms);
      timer.unref?.();
    },
    cancel: () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

const monitors = new WeakMap<object, DashboardMonitor>();

/** The bus's monitor, created (and observing) on first use. */
export function dashboardMonitor(bus: { observe(observer: BusObserver): () => void }): DashboardMonitor {
  let monitor = monitors.get(bus);
  if (!monitor) {
    monitor = new DashboardMonitor(bus);
    monitors.set(bus, monitor);
  }
  return monitor;
}
