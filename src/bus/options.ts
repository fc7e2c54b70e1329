/** Defaults and checks of the bus's options: bad values fail at creation, with the option named. */
import type { EventMetadata } from '../envelope';
import { InvalidOptionError } from '../errors';
import { isStorableString, UNSTORABLE_STRING } from '../json-safe';
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
  handlerTimeoutMs: 300_000,
};

/** The longest a timer may be armed for (Node's limit), so the longest handler time limit. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

function positiveInt(option: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) throw new InvalidOptionError(option, `must be an integer >= ${min}`);
  return value;
}

/** A handler time limit: an integer from 1 to {@link MAX_TIMEOUT_MS}. */
export function resolveTimeout(option: string, value: number | undefined, fallback: number): number {
  const ms = positiveInt(option, value, fallback);
  if (ms > MAX_TIMEOUT_MS) throw new InvalidOptionError(option, `must be at most ${MAX_TIMEOUT_MS}`);
  return ms;
}

/** The time limit of one `stop()`: `timeoutMs`, an integer >= 0, or the bus's `shutdownTimeoutMs`. */
export function resolveStopTimeout(options: { timeoutMs?: number } | undefined, fallback: number): number {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidOptionError('options', 'must be an object (or left out)');
  }
  return positiveInt('timeoutMs', options?.timeoutMs, fallback, 0);
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
    handlerTimeoutMs: resolveTimeout('dispatch.handlerTimeoutMs', options?.handlerTimeoutMs, d.handlerTimeoutMs),
  };
  return resolved;
}

export function resolveHealth(options: HealthOptions | undefined): Required<HealthOptions> {
  return {
    maxUnprocessed: positiveInt('health.maxUnprocessed', options?.maxUnprocessed, 1000),
    maxPendingAgeMs: positiveInt('health.maxPendingAgeMs', options?.maxPendingAgeMs, Number.MAX_SAFE_INTEGER),
    maxDeadLetters: positiveInt('health.maxDeadLetters', options?.maxDeadLetters, Number.MAX_SAFE_INTEGER),
    staleSubscriberMs: positiveInt('health.staleSubscriberMs', options?.staleSubscriberMs, 15 * 60_000),
  };
}

const MAX_KEY_LENGTH = 200;

/**
 * The `deliverAt` range every storage can hold: years 0001 to 9999 (PostgreSQL's
 * `timestamptz` reaches further, but not every driver writes years outside four digits).
 */
export const DELIVER_AT_RANGE = Object.freeze({
  min: Date.parse('0001-01-01T00:00:00.000Z'),
  max: Date.parse('9999-12-31T23:59:59.999Z'),
});

/** Throws {@link InvalidOptionError} unless `value` is a string PostgreSQL can store (no NUL, no unpaired surrogate). */
export function checkStorableString(option: string, value: unknown): void {
  if (typeof value !== 'string') throw new InvalidOptionError(option, 'must be a string');
  if (!isStorableString(value)) throw new InvalidOptionError(option, UNSTORABLE_STRING);
}

/**
 * Checks the string filters of a query (timeline, replay, dead letters) before
 * it reaches the storage: each present one must be a string PostgreSQL can
 * store, so a NUL character is a coded `INVALID_OPTION`, not a driver error.
 * `lists` name the fields that hold arrays of such strings.
 */
export function checkQueryStrings(query: unknown, fields: readonly string[], lists: readonly string[] = [], prefix = ''): void {
  if (query === undefined) return;
  if (typeof query !== 'object' || query === null || Array.isArray(query)) {
    throw new InvalidOptionError(prefix ? prefix.slice(0, -1) : 'options', 'must be an object (or left out)');
  }
  const q = query as Record<string, unknown>;
  for (const field of fields) if (q[field] !== undefined) checkStorableString(`${prefix}${field}`, q[field]);
  for (const field of lists) {
    const list = q[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new InvalidOptionError(`${prefix}${field}`, 'must be an array of strings');
    list.forEach((item, i) => checkStorableString(`${prefix}${field}[${i}]`, item));
  }
}

function checkKey(option: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_LENGTH) {
    throw new InvalidOptionError(option, `must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
  }
  checkStorableString(option, value);
}

/** Throws {@link InvalidOptionError} unless `value` is a valid Date within {@link DELIVER_AT_RANGE}. */
export function checkDate(option: string, value: unknown): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new InvalidOptionError(option, 'must be a valid Date');
  const t = value.getTime();
  if (t < DELIVER_AT_RANGE.min || t > DELIVER_AT_RANGE.max) {
    throw new InvalidOptionError(option, 'must lie between the years 0001 and 9999 (what every storage can hold)');
  }
}

/**
 * Checks the options of one publish; throws {@link InvalidOptionError} before
 * anything is stored. Strings must be ones PostgreSQL can store, on every
 * storage alike, so a test on the memory storage fails where production would.
 */
export function checkPublishOptions(options: PublishOptions): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', 'must be an object (or left out)');
  }
  checkKey('idempotencyKey', options.idempotencyKey);
  checkKey('orderingKey', options.orderingKey);
  for (const field of ['actor', 'actorType', 'organizationId'] as const) {
    if (options[field] !== undefined) checkStorableString(field, options[field]);
  }
  if (options.deliverAt !== undefined) checkDate('deliverAt', options.deliverAt);
  const metadata: unknown = options.metadata;
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new InvalidOptionError('metadata', 'must be an object');
    }
    const { source, environment } = metadata as Partial<EventMetadata>;
    if (source !== undefined) checkStorableString('metadata.source', source);
    if (environment !== undefined) checkStorableString('metadata.environment', environment);
  }
}
