/**
 * How the routes turn a failure into an answer. Whatever the storage or the
 * driver throws, the client gets a stable code and a fixed message: never the
 * error's own message, SQL text, parameters or a stack (those go to the
 * logger). The routes return these answers themselves, so an application's
 * error handler (or a framework's default one, which would send the message)
 * never sees a library error.
 */
import { EventBusError } from '@blawby/event-bus';
import type { Logger } from '@blawby/event-bus';
import type { QueryIssue } from './timeline-query';

/** A route's answer, before the framework sends it. */
export interface HttpResult<B = unknown> {
  status: number;
  body: B;
}

/** Stable codes of the routes' error bodies. */
export type RouteErrorCode =
  | 'INVALID_QUERY'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'STORAGE_UNAVAILABLE'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_ERROR';

/** The body of every 4xx/5xx answer of the routes. */
export interface RouteErrorBody {
  error: { code: RouteErrorCode; message: string; issues?: QueryIssue[] };
}

/** An error answer. */
export function fail(
  status: number,
  code: RouteErrorCode,
  message: string,
  issues?: QueryIssue[],
): HttpResult<RouteErrorBody> {
  return { status, body: { error: issues ? { code, message, issues } : { code, message } } };
}

/** Codes that mean the request asked for something no storage can give: the client's fault. */
const CLIENT_ERRORS = new Set(['INVALID_OPTION', 'UNKNOWN_EVENT_TYPE', 'EVENT_VALIDATION_FAILED']);

/**
 * The answer for an error thrown while serving a route, by its code:
 *
 * - `INVALID_OPTION`, `UNKNOWN_EVENT_TYPE`, `EVENT_VALIDATION_FAILED`: 400
 *   `INVALID_QUERY`, with one issue naming the option (`cursor`, ...) when the
 *   error names one;
 * - `STORAGE_UNAVAILABLE`: 503 `STORAGE_UNAVAILABLE`; `BUS_STOPPED` (the
 *   process is shutting down): 503 `SERVICE_UNAVAILABLE`;
 * - anything else: 500 `INTERNAL_ERROR`.
 *
 * 5xx causes are logged at error level with the error itself, as `err`.
 */
export function errorResult(err: unknown, logger: Logger | undefined, what: string): HttpResult<RouteErrorBody> {
  if (EventBusError.is(err) && CLIENT_ERRORS.has(err.code)) {
    const option = (err as { option?: unknown }).option;
    if (typeof option !== 'string') return fail(400, 'INVALID_QUERY', `Invalid ${what}`);
    const issue: QueryIssue =
      option === 'cursor'
        ? { path: ['cursor'], code: 'invalid_cursor', message: 'not a cursor returned by this timeline' }
        : { path: [option], code: 'invalid_option', message: 'the storage cannot use this value' };
    return fail(400, 'INVALID_QUERY', `Invalid ${what}`, [issue]);
  }
  const code = EventBusError.is(err) ? err.code : undefined;
  logger?.error({ err, code }, `event bus ${what} failed`);
  if (code === 'STORAGE_UNAVAILABLE') return fail(503, 'STORAGE_UNAVAILABLE', 'The event storage did not answer');
  if (code === 'BUS_STOPPED') return fail(503, 'SERVICE_UNAVAILABLE', 'The event bus is shutting down');
  return fail(500, 'INTERNAL_ERROR', 'Internal error');
}
