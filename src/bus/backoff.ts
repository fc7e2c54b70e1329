/**
 * Retry scheduling: exponential backoff with full jitter (a random delay
 * between 0 and the exponential cap), so that many failing deliveries do not
 * retry in lockstep.
 */
import { EventBusError, MAX_RETRY_AFTER_MS, NonRetryableError } from '../errors';

/** A retry policy with every field set. */
export interface ResolvedRetryPolicy {
  attempts: number;
  minDelayMs: number;
  maxDelayMs: number;
}

/** The delay before the attempt after `failedAttempt` (1-based). */
export function backoffDelay(policy: ResolvedRetryPolicy, failedAttempt: number, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** Math.min(failedAttempt - 1, 30));
  return Math.floor(random() * cap);
}

/**
 * When to try again after `error` ended attempt `failedAttempt`, or `null` to
 * dead-letter: attempts used up, or a {@link NonRetryableError}. A
 * `RetryAfterError` sets the wait exactly, not capped by `maxDelayMs`: the
 * handler learned when the downstream takes requests again, and retrying
 * sooner would only spend attempts.
 */
export function nextAttemptAt(
  policy: ResolvedRetryPolicy,
  failedAttempt: number,
  error: unknown,
  now: number = Date.now(),
): Date | null {
  if (EventBusError.is(error, 'NON_RETRYABLE') || error instanceof NonRetryableError) return null;
  if (failedAttempt >= policy.attempts) return null;
  if (EventBusError.is(error, 'RETRY_AFTER')) {
    // Checked again here: the error may come from another installed copy of the package.
    const ms = Number(error.delayMs);
    return new Date(now + (ms > 0 ? Math.min(MAX_RETRY_AFTER_MS, ms) : 0));
  }
  return new Date(now + backoffDelay(policy, failedAttempt));
}
