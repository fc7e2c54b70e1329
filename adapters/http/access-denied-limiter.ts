/**
 * How often a refused timeline read may publish `org.access_denied`. The
 * event lands in the log of the organization the caller asked for, which the
 * caller chooses freely: without a limit, anyone with an identity could grow
 * any organization's log (or fill the log with made-up organization ids) at
 * the rate they can send requests.
 */

/** Limits of {@link AccessDeniedLimiter}. */
export interface AccessDeniedLimits {
  /** Length of the window, in ms (default one minute). */
  windowMs: number;
  /** Events per actor within a window, over all organizations (default 10). */
  perActor: number;
  /** Most (actor, organization) pairs remembered at once: bounds the memory (default 10 000). */
  maxEntries: number;
}

/** Defaults of {@link AccessDeniedLimits}. */
export const ACCESS_DENIED_LIMITS: Readonly<AccessDeniedLimits> = Object.freeze({
  windowMs: 60_000,
  perActor: 10,
  maxEntries: 10_000,
});

interface Entry {
  actor: string;
  at: number;
}

/**
 * In-process and bounded: at most one event per (actor, organization) per
 * window, at most `perActor` per actor per window, and at most `maxEntries`
 * pairs remembered. When the memory is full, further denials publish nothing
 * until entries expire: the limiter fails towards fewer writes. Each process
 * limits on its own, so N processes allow up to N times the rate.
 */
export class AccessDeniedLimiter {
  /** Pairs seen within the window, oldest first (an entry is never refreshed while alive). */
  private readonly entries = new Map<string, Entry>();
  /** Live entries per actor. */
  private readonly perActor = new Map<string, number>();
  private readonly limits: AccessDeniedLimits;

  constructor(limits: Partial<AccessDeniedLimits> = {}) {
    this.limits = { ...ACCESS_DENIED_LIMITS, ...limits };
  }

  /** Whether a denial of `actor` on `organizationId` may publish now; if so, it is counted. */
  allow(actor: string, organizationId: string, now = Date.now()): boolean {
    this.expire(now);
    const key = JSON.stringify([actor, organizationId]);
    if (this.entries.has(key)) return false;
    const count = this.perActor.get(actor) ?? 0;
    if (count >= this.limits.perActor || this.entries.size >= this.limits.maxEntries) return false;
    this.entries.set(key, { actor, at: now });
    this.perActor.set(actor, count + 1);
    return true;
  }

  /** Pairs remembered now (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** Drops the entries whose window has passed: they are at the front, in insertion order. */
  private expire(now: number): void {
    for (const [key, entry] of this.entries) {
      if (now - entry.at < this.limits.windowMs) break;
      this.entries.delete(key);
      const left = (this.perActor.get(entry.actor) ?? 1) - 1;
      if (left > 0) this.perActor.set(entry.actor, left);
      else this.perActor.delete(entry.actor);
    }
  }
}
