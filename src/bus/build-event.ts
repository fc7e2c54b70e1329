/**
 * The publish side's checks: the type must be in the catalog, the options
 * well formed and the payload must pass its schema; only then is an envelope
 * built. Payload and metadata become deep-frozen JSON snapshots (see
 * `json-safe.ts`): what is stored is what was validated when `publish` was
 * called. Nothing here touches storage, so bad input can never leave
 * anything behind.
 */
import type { Catalog, EventDefinition } from '../catalog';
import type { BaseEvent, EventMetadata } from '../envelope';
import { EventValidationError, InvalidOptionError, UnknownEventTypeError } from '../errors';
import { jsonSnapshot, NotJsonSafe, payloadSnapshotter } from '../json-safe';
import type { AppendInput } from '../ports/storage';
import { uuidv7 } from '../uuidv7';
import { checkPublishOptions, checkStorableString } from './options';
import type { PublishOptions } from './types';

/** Bus-wide defaults of the metadata, and what publishing needs of each event type. */
export interface MetadataDefaults {
  source: string;
  environment: string;
  /** `{ source, environment }`, frozen: shared by every event published without metadata of its own. */
  metadata: Readonly<EventMetadata>;
  /** The catalog's types as published so far (filled on first use): one map lookup per publish. */
  types: Map<string, PublishType>;
}

/** One catalog type, ready to publish: its definition and its payload's snapshot. */
interface PublishType {
  definition: EventDefinition;
  snapshot: (data: unknown) => unknown;
}

/** Checks the bus's `source` and `environment` (at creation, not at the first publish). */
export function metadataDefaults(source: unknown, environment: unknown): MetadataDefaults {
  checkStorableString('source', source);
  checkStorableString('environment', environment);
  const metadata = Object.freeze({ source, environment }) as Readonly<EventMetadata>;
  return { source: source as string, environment: environment as string, metadata, types: new Map() };
}

/** The catalog's type `type`, or `undefined` when it has none of that name. */
function publishType(catalog: Catalog, defaults: MetadataDefaults, type: string): PublishType | undefined {
  let known = defaults.types.get(type);
  if (known === undefined) {
    const definition: EventDefinition | undefined = Object.hasOwn(catalog, type) ? catalog[type] : undefined;
    if (!definition) return undefined;
    known = { definition, snapshot: payloadSnapshotter(definition.payload) };
    defaults.types.set(type, known);
  }
  return known;
}

/** Validates `payload` against the catalog and builds the append input for it. */
export function buildEvent(
  catalog: Catalog,
  defaults: MetadataDefaults,
  type: unknown,
  payload: unknown,
  options: PublishOptions | undefined,
): AppendInput {
  if (typeof type !== 'string') throw new InvalidOptionError('type', 'must be an event type name (a string)');
  const known = publishType(catalog, defaults, type);
  if (!known) throw new UnknownEventTypeError(type);
  const definition = known.definition;
  if (options !== undefined) checkPublishOptions(options);
  const parsed = definition.payload.safeParse(payload);
  if (!parsed.success) throw new EventValidationError(type, parsed.error.issues);

  const now = Date.now();
  const event: BaseEvent = {
    eventId: uuidv7(now),
    eventType: type,
    eventVersion: definition.version,
    timestamp: new Date(now),
    payload: snapshotPayload(known, type, parsed.data),
    // Frozen, so shared safely (publish middleware replaces it to add a traceparent, never changes it).
    metadata: options?.metadata === undefined ? defaults.metadata : snapshotMetadata(defaults, options.metadata),
    processed: false,
    retryCount: 0,
  };
  if (options === undefined) return { event };

  if (options.actor !== undefined) event.actor = options.actor;
  if (options.actorType !== undefined) event.actorType = options.actorType;
  if (options.organizationId !== undefined) event.organizationId = options.organizationId;
  const input: AppendInput = { event };
  if (options.idempotencyKey !== undefined) input.idempotencyKey = options.idempotencyKey;
  if (options.orderingKey !== undefined) input.orderingKey = options.orderingKey;
  if (options.deliverAt !== undefined) input.deliverAt = options.deliverAt;
  return input;
}

/** One item of `publishMany`: refused with a coded error unless it is an object. */
export function buildItem(
  catalog: Catalog,
  defaults: MetadataDefaults,
  item: unknown,
  index: number,
): AppendInput {
  if (typeof item !== 'object' || item === null) {
    throw new InvalidOptionError(`items[${index}]`, 'must be an object { type, payload, options? }');
  }
  const { type, payload, options } = item as { type?: unknown; payload?: unknown; options?: PublishOptions };
  return buildEvent(catalog, defaults, type, payload, options);
}

function snapshotPayload(known: PublishType, type: string, data: unknown): Record<string, unknown> {
  try {
    return known.snapshot(data) as Record<string, unknown>;
  } catch (err) {
    if (!(err instanceof NotJsonSafe)) throw err;
    // A zod-shaped issue, so callers handle it like any other validation failure. No value in it.
    throw new EventValidationError(type, [{ code: 'custom', path: err.path, message: `not JSON-safe: ${err.reason}` }]);
  }
}

function snapshotMetadata(defaults: MetadataDefaults, metadata: Partial<EventMetadata>): EventMetadata {
  try {
    const merged = jsonSnapshot({ source: defaults.source, environment: defaults.environment, ...metadata });
    return merged as EventMetadata;
  } catch (err) {
    if (!(err instanceof NotJsonSafe)) throw err;
    throw new InvalidOptionError(['metadata', ...err.path].join('.'), `not JSON-safe: ${err.reason}`);
  }
}
