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
  | 'STORAGE_REJECTED'
  | 'TRANSPORT_UNAVAILABLE'
  | 'TRANSPORT_MISCONFIGURED'
  | 'LEASE_LOST'
  | 'NON_RETRYABLE'
  | 'RETRY_AFTER'
  | 'HANDLER_TIMEOUT'
  | 'INVALID_CLOUD_EVENT'
  | 'UNSUPPORTED_SCHEMA';

/**
 * The class behind each code that has its own: `EventBusError.is(err, code)`
 * narrows to it (so `err.issues` type-checks after
 * `EventBusError.is(err, 'EVENT_VALIDATION_FAILED')`). Other codes are plain
 * {@link EventBusError}s.
 */
export interface ErrorClassOf {
  EVENT_VALIDATION_FAILED: EventValidationError;
  UNKNOWN_EVENT_TYPE: UnknownEventTypeError;
  INVALID_EVENT_NAME: InvalidEventNameError;
  INVALID_OPTION: InvalidOptionError;
  NON_RETRYABLE: NonRetryableError;
  RETRY_AFTER: RetryAfterError;
  HANDLER_TIMEOUT: HandlerTimeoutError;
  UNSUPPORTED_SCHEMA: UnsupportedSchemaError;
}

/** The error type of code `K`: its class from {@link ErrorClassOf}, else an {@link EventBusError} with that code. */
export type EventBusErrorOf<K extends ErrorCode> = K extends keyof ErrorClassOf
  ? ErrorClassOf[K]
  : EventBusError & { readonly code: K };

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

  /**
   * True when `err` is an {@link EventBusError} (from any copy of the package)
   * with `code`; narrows to that code's class (see {@link ErrorClassOf}).
   */
  static is<K extends ErrorCode>(err: unknown, code: K): err is EventBusErrorOf<K>;
  /** True when `err` is an {@link EventBusError} (from any copy of the package). */
  static is(err: unknown): err is EventBusError;
  static is(err: unknown, code?: ErrorCode): boolean {
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

/** The longest wait a {@link RetryAfterError} can ask for: about 24.8 days (Node's timer limit). */
export const MAX_RETRY_AFTER_MS = 2_147_483_647;

/**
 * Throw from a handler to set the delay before the next attempt, e.g. on an
 * HTTP 429 with `Retry-After`. Still counts as an attempt. The next attempt
 * waits exactly `delayMs`, even past the retry policy's `maxDelayMs` (the
 * downstream said when it takes requests again; retrying sooner only spends
 * attempts). Negative or `NaN` means no wait; more than
 * {@link MAX_RETRY_AFTER_MS} is clamped to it.
 */
export class RetryAfterError extends EventBusError {
  /** Milliseconds to wait before the next attempt, an integer from 0 to {@link MAX_RETRY_AFTER_MS}. */
  readonly delayMs: number;

  constructor(delayMs: number, message = `Retry after ${delayMs} ms`, options?: { cause?: unknown }) {
    super('RETRY_AFTER', message, options);
    this.delayMs = delayMs > 0 ? Math.min(MAX_RETRY_AFTER_MS, Math.ceil(delayMs)) : 0;
  }

  override get name(): string {
    return 'RetryAfterError';
  }
}

/**
 * The attempt of a handler ran past its time limit (`subscribe(..., { timeoutMs })`
 * or `dispatch.handlerTimeoutMs`). It is the reason of the handler's
 * `ctx.signal` and the recorded error of the failed attempt; the delivery is
 * retried like any failure.
 */
export class HandlerTimeoutError extends EventBusError {
  /** The time limit that was exceeded. */
  readonly timeoutMs: number;
  /** The subscriber whose handler timed out. */
  readonly subscriber: string;

  constructor(subscriber: string, timeoutMs: number) {
    super('HANDLER_TIMEOUT', `Handler of subscriber "${subscriber}" did not settle within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
    this.subscriber = subscriber;
  }

  override get name(): string {
    return 'HandlerTimeoutError';
  }
}

/**
 * A catalog schema can produce a value that does not survive JSON, the form
 * every storage keeps payloads in (`z.date()`, `z.bigint()`, `z.map()`, ...).
 * Thrown by `defineEvent`; the message names the field and the JSON-safe
 * alternative (e.g. `z.iso.datetime()` for a date).
 */
export class UnsupportedSchemaError extends EventBusError {
  /** Where in the payload, e.g. `payload.items[].createdAt`. */
  readonly path: string;
  /** The refused zod type, e.g. `date`. */
  readonly schemaType: string;

  constructor(path: string, schemaType: string, alternative: string) {
    super('UNSUPPORTED_SCHEMA', `${path}: z.${schemaType}() is not JSON-safe; use ${alternative}`);
    this.path = path;
    this.schemaType = schemaType;
  }

  override get name(): string {
    return 'UnsupportedSchemaError';
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
