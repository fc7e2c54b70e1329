/**
 * The warnings of `bus.health()`: what the core finds for every storage
 * (dead letters waiting, subscriber names nobody runs that still have work),
 * plus what the storage reports about itself (`Storage.warnings`). A warning
 * never makes the bus unhealthy: it tells a person what to look at.
 */
import type { HealthWarning, StorageHealth, SubscriberBacklog } from '../ports/storage';

/** Dead letters and stale subscribers, from the storage's counts. */
export function coreWarnings(
  health: StorageHealth,
  backlogs: readonly SubscriberBacklog[],
  staleSubscriberMs: number,
  now = Date.now(),
): HealthWarning[] {
  const warnings: HealthWarning[] = [];
  if (health.deadLetters > 0) {
    warnings.push({
      code: 'DEAD_LETTERS_WAITING',
      count: health.deadLetters,
      message: `${health.deadLetters} dead letter${health.deadLetters === 1 ? '' : 's'} waiting: fix the cause, then redrive or discard them`,
    });
  }
  for (const b of backlogs) {
    const pending = b.due + b.leased + b.retrying + b.scheduled;
    const silentMs = now - b.lastSeenAt.getTime();
    if (pending === 0 || silentMs < staleSubscriberMs) continue;
    warnings.push({
      code: 'SUBSCRIBER_STALE',
      subscriber: b.subscriber,
      count: pending,
      ageMs: silentMs,
      message: `no process has run subscriber "${b.subscriber}" for ${Math.round(silentMs / 60_000)} min, and ${pending} deliveries wait for it: deploy its handler again, or retire the name (bus.retireSubscriber)`,
    });
  }
  return warnings;
}
