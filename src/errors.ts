/**
 * Every error the library throws is an {@link EventBusError} with a stable
 * string `code` (listed in `docs/errors.md`). Messages never contain payload
 * values: they end up in error trackers.
 */
import type { $ZodIssue } from 'zod/v4/core';

const BRAND = Symbol.for('@blawby/event-bus/error');

/** The stable codes of {@link EventBusError}. */
export type ErrorCode =
  | 'EVENT_VALIDATION_FAILED'
  | 'UNKNOWN_EVENT_TYPE'
  | 'INVALID_EVENT_NAME'
  | 'INVALID_OPTION'
  | 'IDEMPOTENCY_CONFLICT'
  | 'DUPLICATE_SUBSCRIBER'
  | 'UNSUPPORTED_BY_STORAGE'
  | 'BUS_STOPPED'
  | 'BUS_NOT_STARTED'
  | 'IDLE_TIMEOUT'
  | 'STORAGE_UNAVAILABLE'
  | 'TRANSPORT_UNAVAILABLE'
  | 'LEASE_LOST'
  | 'NON_RETRYABLE'
  | 'RETRY_AFTER'
  | 'HANDLER_TIMEOUT'
  | 'INVALID_CLOUD_EVENT';

/**
 * Base class of every error the library throws. Check with
 * `EventBusError.is(err, 'UNKNOWN_EVENT_TYPE')`, which also recognises errors
 * thrown by another installed copy of the package.
 */
export class EventBusError extends Error {
  /** A stable, machine-readable code. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  override get name(): string {
    return 'EventBusError';
  }

  /** True when `err` is an {@link EventBusError} (from any copy of the package), with `code` if given. */
  static is(err: unknown, code?: ErrorCode): err is EventBusError {
    if (typeof err !== 'object' || err === null || !(err as Record<symbol, unknown>)[BRAND]) return false;
    return code === undefined || (err as EventBusError).code === code;
  }
}

/** A payload failed its catalog schema. `issues` are zod's. Nothing was stored. */
export class EventValidationError extends EventBusError {
  /** The zod issues that made the payload invalid. */
  readonly issues: readonly $ZodIssue[];
  /** The event type whose schema refused the payload. */
  readonly eventType: string;

  constructor(eventType: string, issues: readonly $ZodIssue[], options?: { cause?: unknown }) {
    const where = issues
      .slice(0, 3)
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.code}`)
      .join('; ');
    super('EVENT_VALIDATION_FAILED', `Invalid payload for "${eventType}" (${where})`, options);
    this.issues = issues;
    this.eventType = eventType;
  }

  override get name(): string {
    return 'EventValidationError';
  }
}

/** The event type is not in the bus's catalog. Nothing was stored. */
export class UnknownEventTypeError extends EventBusError {
  /** The type that was asked for. */
  readonly eventType: string;

  constructor(eventType: string) {
    super('UNKNOWN_EVENT_TYPE', `Unknown event type "${eventType}": it is not in the catalog`);
    this.eventType = eventType;
  }

  override get name(): string {
    return 'UnknownEventTypeError';
  }
}

/** A catalog entry's name does not follow `{domain}.{object}_{past_tense_verb}`. */
export class InvalidEventNameError extends EventBusError {
  /** The refused name. */
  readonly eventType: string;

  constructor(eventType: string) {
    super(
      'INVALID_EVENT_NAME',
      `Invalid event name "${eventType}": expected "{domain}.{object}_{past_tense_verb}" in snake_case, e.g. "auth.user_signed_up"`,
    );
    this.eventType = eventType;
  }

  override get name(): string {
    return 'InvalidEventNameError';
  }
}

/** An option passed to the bus, `publish` or `subscribe` is invalid. Nothing was stored. */
export class InvalidOptionError extends EventBusError {
  /** The option at fault, as a dotted path. */
  readonly option: string;

  constructor(option: string, message: string) {
    super('INVALID_OPTION', `Invalid option "${option}": ${message}`);
    this.option = option;
  }

  override get name(): string {
    return 'InvalidOptionError';
  }
}

/**
 * Throw from a handler to dead-letter the delivery at once, without further
 * attempts (for failures that no retry can fix).
 */
export class NonRetryableError extends EventBusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NON_RETRYABLE', message, options);
  }

  override get name(): string {
    return 'NonRetryableError';
  }
}

/**
 * Throw from a handler to set the delay before the next attempt, e.g. on an
 * HTTP 429 with `Retry-After`. Still counts as an attempt.
 */
export class RetryAfterError extends EventBusError {
  /** Milliseconds to wait before the next attempt. */
  readonly delayMs: number;

  constructor(delayMs: number, message = `Retry after ${delayMs} ms`, options?: { cause?: unknown }) {
    super('RETRY_AFTER', message, options);
    this.delayMs = Math.max(0, delayMs);
  }

  override get name(): string {
    return 'RetryAfterError';
  }
}

/** A plain, serialisable description of an error, as stored with retries and dead letters. */
export interface ErrorInfo {
  /** The error's `name`. */
  name: string;
  /** The error's message. */
  message: string;
  /** The stack, when there was one. */
  stack?: string;
  /** The error's `code`, when it had one. */
  code?: string;
}

/** Turns anything thrown into an {@link ErrorInfo}. */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      message: err.message,
      ...(err.stack ? { stack: err.stack } : {}),
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { name: 'NonError', message: typeof err === 'string' ? err : safeStringify(err) };
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
