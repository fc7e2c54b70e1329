/** Defaults and checks of the bus's options: bad values fail at creation, with the option named. */
import { InvalidOptionError } from '../errors';
import type { ResolvedRetryPolicy } from './backoff';
import type { DispatchOptions, HealthOptions, PublishOptions, RetryPolicy } from './types';

/** Dispatch options with every field set. */
export type ResolvedDispatch = Required<DispatchOptions>;

const DEFAULT_RETRY: ResolvedRetryPolicy = { attempts: 5, minDelayMs: 1000, maxDelayMs: 60_000 };
const DEFAULT_DISPATCH: ResolvedDispatch = {
  concurrency: 10,
  batchSize: 100,
  leaseMs: 30_000,
  pollIntervalMs: 1000,
  shutdownTimeoutMs: 10_000,
};

function positiveInt(option: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) throw new InvalidOptionError(option, `must be an integer >= ${min}`);
  return value;
}

/** Merges `policy` over `base`, checking every field. */
export function resolveRetry(
  policy: RetryPolicy | undefined,
  base: ResolvedRetryPolicy = DEFAULT_RETRY,
  path = 'retry',
): ResolvedRetryPolicy {
  const resolved = {
    attempts: positiveInt(`${path}.attempts`, policy?.attempts, base.attempts),
    minDelayMs: positiveInt(`${path}.minDelayMs`, policy?.minDelayMs, base.minDelayMs, 0),
    maxDelayMs: positiveInt(`${path}.maxDelayMs`, policy?.maxDelayMs, base.maxDelayMs, 0),
  };
  if (resolved.maxDelayMs < resolved.minDelayMs) {
    throw new InvalidOptionError(`${path}.maxDelayMs`, 'must be >= minDelayMs');
  }
  return resolved;
}

export function resolveDispatch(options: DispatchOptions | undefined): ResolvedDispatch {
  const d = DEFAULT_DISPATCH;
  const resolved: ResolvedDispatch = {
    concurrency: positiveInt('dispatch.concurrency', options?.concurrency, d.concurrency),
    batchSize: positiveInt('dispatch.batchSize', options?.batchSize, d.batchSize),
    leaseMs: positiveInt('dispatch.leaseMs', options?.leaseMs, d.leaseMs, 100),
    pollIntervalMs: positiveInt('dispatch.pollIntervalMs', options?.pollIntervalMs, d.pollIntervalMs, 1),
    shutdownTimeoutMs: positiveInt('dispatch.shutdownTimeoutMs', options?.shutdownTimeoutMs, d.shutdownTimeoutMs, 0),
  };
  return resolved;
}

export function resolveHealth(options: HealthOptions | undefined): Required<HealthOptions> {
  return {
    maxUnprocessed: positiveInt('health.maxUnprocessed', options?.maxUnprocessed, 1000),
    maxPendingAgeMs: positiveInt('health.maxPendingAgeMs', options?.maxPendingAgeMs, Number.MAX_SAFE_INTEGER),
    maxDeadLetters: positiveInt('health.maxDeadLetters', options?.maxDeadLetters, Number.MAX_SAFE_INTEGER),
  };
}

const MAX_KEY_LENGTH = 200;

function checkKey(option: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_LENGTH) {
    throw new InvalidOptionError(option, `must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
  }
}

/** Checks the options of one publish; throws {@link InvalidOptionError} before anything is stored. */
export function checkPublishOptions(options: PublishOptions): void {
  checkKey('idempotencyKey', options.idempotencyKey);
  checkKey('orderingKey', options.orderingKey);
  for (const field of ['actor', 'actorType', 'organizationId'] as const) {
    const value = options[field];
    if (value !== undefined && typeof value !== 'string') throw new InvalidOptionError(field, 'must be a string');
  }
  if (options.deliverAt !== undefined && !(options.deliverAt instanceof Date && !Number.isNaN(options.deliverAt.getTime()))) {
    throw new InvalidOptionError('deliverAt', 'must be a valid Date');
  }
  if (options.metadata !== undefined && (typeof options.metadata !== 'object' || options.metadata === null)) {
    throw new InvalidOptionError('metadata', 'must be an object');
  }
}
