/**
 * What every route shares: typed errors with stable codes, zod body parsing,
 * and `request.events` typed with the Blawby catalog.
 */
import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { RequestEvents } from '@blawby/event-bus/fastify';
import type { BlawbyCatalog } from '../catalog';

/** An error the API answers with `status` and `{ error: { code, message, issues? } }`. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues: unknown[] | undefined;

  constructor(status: number, code: string, message: string, issues?: unknown[]) {
    super(message);
    this.status = status;
    this.code = code;
    this.issues = issues;
  }

  override get name(): string {
    return 'HttpError';
  }
}

/** Parses `value` with a zod schema; a 400 `INVALID_BODY` with the issues when it does not fit. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, code = 'INVALID_BODY'): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path, code: i.code, message: i.message }));
    throw new HttpError(400, code, 'The request is invalid', issues);
  }
  return result.data;
}

/**
 * `request.events`, typed with the Blawby catalog. (A standalone application
 * augments `EventBusRegistry` once instead; this repository compiles the
 * library's own tests in the same program, so the example does not.)
 */
export function requestEvents(request: FastifyRequest): RequestEvents<BlawbyCatalog> {
  return request.events as unknown as RequestEvents<BlawbyCatalog>;
}
