/**
 * The request-scoped publisher behind Fastify's `request.events` and
 * Express's `req.events`: `bus.publish` with the request's metadata filled in.
 */
import type { Catalog, EventBus, EventMetadata, PublishOptions } from '@blawby/event-bus';
import type { RegisteredCatalog } from './registry';

/** What a request contributes to `metadata` of the events it publishes. */
export interface RequestMetadata {
  /** The client's address as the framework sees it (mind its trust-proxy setting). */
  ipAddress?: string;
  /** The `User-Agent` header. */
  userAgent?: string;
  /** The request's correlation id. */
  requestId?: string;
  /** Always `'api'`. */
  source: 'api';
}

/**
 * `request.events` / `req.events`: publishes on the bus with `metadata.ipAddress`,
 * `userAgent`, `requestId` and `source: 'api'` taken from the request. Metadata the
 * caller passes explicitly wins over the request's.
 */
export interface RequestEvents<C extends Catalog = RegisteredCatalog> {
  /** `bus.publish` with this request's metadata. */
  publish: EventBus<C>['publish'];
  /** `bus.publishMany` with this request's metadata on every item. */
  publishMany: EventBus<C>['publishMany'];
  /** The metadata this request adds to its events. */
  readonly metadata: Readonly<RequestMetadata>;
  /** The bus itself (subscribe, timeline, health, ...). */
  readonly bus: EventBus<C>;
}

/** Longest request id taken from a client header; longer or odd ones are replaced. */
const MAX_REQUEST_ID = 200;
const REQUEST_ID = /^[\w.:/+=@-]+$/;

/** A client-sent request id if it is short and plain, else `undefined` (so the caller can make one). */
export function sanitizeRequestId(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_REQUEST_ID) return undefined;
  return REQUEST_ID.test(value) ? value : undefined;
}

/** Builds {@link RequestMetadata}, leaving out what the request does not have. */
export function requestMetadata(parts: {
  ipAddress?: string | undefined;
  userAgent?: string | string[] | undefined;
  requestId?: string | undefined;
}): RequestMetadata {
  const metadata: RequestMetadata = { source: 'api' };
  if (parts.ipAddress) metadata.ipAddress = parts.ipAddress;
  const userAgent = Array.isArray(parts.userAgent) ? parts.userAgent[0] : parts.userAgent;
  if (userAgent) metadata.userAgent = userAgent;
  if (parts.requestId) metadata.requestId = parts.requestId;
  return metadata;
}

/** Publish options with the request's metadata under the caller's own. */
export function withRequestMetadata<O extends Omit<PublishOptions, 'tx'> & { tx?: unknown }>(
  metadata: Readonly<RequestMetadata>,
  options: O | undefined,
): O {
  const merged: Partial<EventMetadata> = { ...metadata, ...options?.metadata };
  return { ...(options as O), metadata: merged };
}

/** Creates the `request.events` object of one request. */
export function createRequestEvents<C extends Catalog>(
  bus: EventBus<C>,
  metadata: RequestMetadata,
): RequestEvents<C> {
  const frozen = Object.freeze({ ...metadata });
  const publish = ((type: string, payload: unknown, options?: PublishOptions) =>
    bus.publish(type as never, payload as never, withRequestMetadata(frozen, options))) as EventBus<C>['publish'];
  const publishMany = ((items: Parameters<EventBus<C>['publishMany']>[0], options?: { tx?: unknown }) =>
    bus.publishMany(
      items.map((item) => ({ ...item, options: withRequestMetadata(frozen, item.options) })),
      options,
    )) as EventBus<C>['publishMany'];
  return { publish, publishMany, metadata: frozen, bus };
}
