/**
 * Event catalogs: the typed list of every event a service may publish, each
 * with a zod schema for its payload. The types here are kept flat (one
 * indexed access per event, no recursive conditional types) so that a
 * catalog of several hundred events type-checks quickly.
 */
import type { z } from 'zod';
import { InvalidEventNameError, InvalidOptionError } from './errors';
import { assertJsonSafeSchema } from './json-safe';

/** Names follow `{domain}.{object}_{past_tense_verb}`; the object part is optional (`org.created`). */
const EVENT_NAME = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/;

/** A payload schema: any zod schema whose output is an object. */
export type PayloadSchema = z.ZodType<Record<string, unknown>>;

/** Turns the payload of an older version into the current version's payload. */
export type Upcaster = (payload: Record<string, unknown>) => Record<string, unknown>;

/** One event type of a catalog. Create with {@link defineEvent}. */
export interface EventDefinition<S extends PayloadSchema = PayloadSchema> {
  /** The current schema version, e.g. `'1.0.0'`; stored as `eventVersion`. */
  readonly version: string;
  /** What happened, for humans (docs, dashboards). */
  readonly description?: string;
  /** The payload's zod schema: checked on publish, and on consume for events of older versions. */
  readonly payload: S;
  /**
   * Upcasters keyed by an older version: each turns a payload stored at that
   * version into one of the current `version`. Handlers always see the current shape.
   */
  readonly upcast?: Readonly<Record<string, Upcaster>>;
}

/**
 * A catalog: event type name to its definition. Create with {@link defineCatalog}.
 *
 * The constraint says `EventDefinition<any>` on purpose: checking every entry's
 * zod schema against a wide schema type doubles the type-check time of a large
 * catalog, and payloads stay typed through the catalog's own type.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type Catalog = Readonly<Record<string, EventDefinition<any>>>;

/** The event type names of a catalog (what `publish` and `subscribe` autocomplete). */
export type EventTypeOf<C extends Catalog> = keyof C & string;

/** The payload a publisher passes for event type `T` (the schema's input). */
export type PayloadInput<C extends Catalog, T extends EventTypeOf<C>> = z.input<C[T]['payload']>;

/** The payload a handler receives for event type `T` (the schema's output). */
export type PayloadOf<C extends Catalog, T extends EventTypeOf<C>> = z.output<C[T]['payload']>;

/** The domain part of the event types (`auth` of `auth.user_signed_up`). */
export type DomainOf<C extends Catalog> = EventTypeOf<C> extends infer T
  ? T extends `${infer D}.${string}`
    ? D
    : never
  : never;

/** What `subscribe` accepts: an event type, `'domain.*'`, or `'*'`. */
export type EventPattern<C extends Catalog> = EventTypeOf<C> | `${DomainOf<C>}.*` | '*';

/** The event types a pattern (or a list of patterns) matches. */
export type MatchedTypes<C extends Catalog, P extends string> = P extends '*'
  ? EventTypeOf<C>
  : P extends `${infer D}.*`
    ? Extract<EventTypeOf<C>, `${D}.${string}`>
    : Extract<EventTypeOf<C>, P>;

/**
 * Declares one event type: its version, a description and its payload schema.
 *
 * The schema's output must be JSON, the form every storage keeps payloads in:
 * `z.date()`, `z.bigint()`, `z.map()`, `z.set()`, `z.symbol()`, `z.nan()`,
 * `z.undefined()`, functions and promises are refused with an
 * `UnsupportedSchemaError` that names the field and the alternative (e.g.
 * `z.iso.datetime()` for a date), so a handler gets the same value on every
 * attempt, in every process.
 *
 * @example
 * ```ts
 * const userSignedUp = defineEvent({
 *   version: '1.0.0',
 *   description: 'New user account created',
 *   payload: z.object({ email: z.string().email(), name: z.string() }),
 * });
 * ```
 */
export function defineEvent<S extends PayloadSchema>(definition: EventDefinition<S>): EventDefinition<S> {
  if (typeof definition.version !== 'string' || definition.version.length === 0) {
    throw new InvalidOptionError('version', 'an event definition needs a non-empty version string');
  }
  if (!definition.payload || typeof (definition.payload as { safeParse?: unknown }).safeParse !== 'function') {
    throw new InvalidOptionError('payload', 'an event definition needs a zod schema as its payload');
  }
  assertJsonSafeSchema(definition.payload);
  return Object.freeze({ ...definition });
}

/**
 * Declares a catalog. Refuses, with an {@link InvalidEventNameError}, any name
 * outside `{domain}.{object}_{past_tense_verb}` (`^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`).
 *
 * @example
 * ```ts
 * export const catalog = defineCatalog({ 'auth.user_signed_up': userSignedUp });
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- as in `Catalog`
export function defineCatalog<const C extends Record<string, EventDefinition<any>>>(events: C): Readonly<C> {
  for (const name of Object.keys(events)) {
    if (!EVENT_NAME.test(name)) throw new InvalidEventNameError(name);
  }
  return Object.freeze({ ...events });
}

/** True when `name` is a valid event type name. */
export function isValidEventName(name: string): boolean {
  return EVENT_NAME.test(name);
}

/** `'auth.user_signed_up'` becomes `'AUTH_USER_SIGNED_UP'`. */
export type ConstantName<T extends string> = Uppercase<T extends `${infer D}.${infer R}` ? `${D}_${R}` : T>;

/** The enum-like object {@link eventTypes} returns. */
export type EventTypeConstants<C extends Catalog> = { readonly [T in EventTypeOf<C> as ConstantName<T>]: T };

/**
 * An enum-like object of a catalog's event types, as the seed's `EventType`:
 * `EventType.AUTH_USER_SIGNED_UP === 'auth.user_signed_up'`.
 */
export function eventTypes<C extends Catalog>(catalog: C): EventTypeConstants<C> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(catalog)) out[name.replace('.', '_').toUpperCase()] = name;
  return Object.freeze(out) as EventTypeConstants<C>;
}

/** True when event type `type` matches a subscribe pattern (`'*'`, `'domain.*'` or an exact type). */
export function matchesPattern(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}
