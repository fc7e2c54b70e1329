/**
 * Typed errors with stable codes and zod body parsing. Free of any web
 * framework, so the Fastify routes, the Express variant and the services
 * throw the one `HttpError` class each app's error handler recognizes.
 */
import type { z } from 'zod';

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
