/**
 * The typed catalog of the framework adapters. Fastify decorators and
 * Express's `Request` are global types, so they cannot carry a type parameter;
 * an application tells them its catalog once, by declaration merging:
 *
 * ```ts
 * import type { catalog } from './events/catalog';
 * declare module '@blawby/event-bus/fastify' {   // or '@blawby/event-bus/express'
 *   interface EventBusRegistry {
 *     catalog: typeof catalog;
 *   }
 * }
 * ```
 */
import type { Catalog, EventBus } from '@blawby/event-bus';

/**
 * Augment this interface with `catalog: typeof yourCatalog` to type
 * `fastify.events`, `request.events` and `req.events` with your catalog.
 * Left empty, they accept any event type name (`Catalog`).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface EventBusRegistry {}

/** The catalog registered in {@link EventBusRegistry}, or `Catalog` when none is. */
export type RegisteredCatalog = EventBusRegistry extends { catalog: infer C extends Catalog } ? C : Catalog;

/**
 * The bus an adapter accepts: of the registered catalog when one is registered
 * (so a bus of another catalog is a type error), else a bus of any catalog
 * (`EventBus` is invariant in its catalog, so `EventBus<Catalog>` would refuse a typed bus).
 */
export type RegisteredBus = EventBusRegistry extends { catalog: infer C extends Catalog }
  ? EventBus<C>
  : // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any catalog, see above
    EventBus<any>;
