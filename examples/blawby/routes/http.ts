/**
 * What every route shares: typed errors with stable codes, zod body parsing
 * (both framework-neutral, in `./errors`), and `request.events` typed with
 * the Blawby catalog.
 */
import type { FastifyRequest } from 'fastify';
import type { RequestEvents } from '@blawby/event-bus/fastify';
import type { BlawbyCatalog } from '../catalog';

export { HttpError, parse } from './errors';

/**
 * `request.events`, typed with the Blawby catalog. (A standalone application
 * augments `EventBusRegistry` once instead; this repository compiles the
 * library's own tests in the same program, so the example does not.)
 */
export function requestEvents(request: FastifyRequest): RequestEvents<BlawbyCatalog> {
  return request.events as unknown as RequestEvents<BlawbyCatalog>;
}
