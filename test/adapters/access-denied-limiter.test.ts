/** The `org.access_denied` rate limit, with a clock the test controls (no I/O). */
import { describe, expect, it } from 'vitest';
import { AccessDeniedLimiter } from '../../adapters/http/access-denied-limiter';

describe('AccessDeniedLimiter', () => {
  it('allows one event per (actor, organization) per window, again once the window has passed', () => {
    const limiter = new AccessDeniedLimiter({ windowMs: 1000 });
    expect(limiter.allow('user_a', 'org_1', 0)).toBe(true);
    expect(limiter.allow('user_a', 'org_1', 999)).toBe(false);
    expect(limiter.allow('user_b', 'org_1', 999)).toBe(true);
    expect(limiter.allow('user_a', 'org_2', 999)).toBe(true);
    expect(limiter.allow('user_a', 'org_1', 1000)).toBe(true);
  });

  it('caps each actor over all organizations, and frees the budget as entries expire', () => {
    const limiter = new AccessDeniedLimiter({ windowMs: 1000, perActor: 3 });
    const allowed = Array.from({ length: 5 }, (_, i) => limiter.allow('user_a', `org_${i}`, i));
    expect(allowed).toEqual([true, true, true, false, false]);
    expect(limiter.allow('user_b', 'org_0', 10)).toBe(true);
    // At 1000 the first entry (time 0) expires: one more for user_a.
    expect(limiter.allow('user_a', 'org_9', 1000)).toBe(true);
    expect(limiter.allow('user_a', 'org_10', 1000)).toBe(false);
  });

  it('keeps at most maxEntries pairs, refusing rather than forgetting when full', () => {
    const limiter = new AccessDeniedLimiter({ windowMs: 1000, perActor: 1, maxEntries: 100 });
    for (let i = 0; i < 250; i++) limiter.allow(`user_${i}`, 'org_1', i);
    expect(limiter.size).toBe(100);
    expect(limiter.allow('user_0', 'org_1', 500)).toBe(false); // still remembered, not evicted by the flood
    expect(limiter.allow('user_new', 'org_1', 500)).toBe(false);
    expect(limiter.allow('user_new', 'org_1', 1000)).toBe(true); // user_0's entry expired, room again
    expect(limiter.size).toBe(100);
  });

  it('does not confuse actors and organizations that share separators', () => {
    const limiter = new AccessDeniedLimiter();
    expect(limiter.allow('a:b', 'c', 0)).toBe(true);
    expect(limiter.allow('a', 'b:c', 0)).toBe(true);
  });
});
