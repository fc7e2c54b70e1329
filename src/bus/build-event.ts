/**
 * The publish side's checks: the type must be in the catalog and the payload
 * must pass its schema; only then is an envelope built. Nothing here touches
 * storage, so bad input can never leave anything behind.
 */
import type { Catalog, EventDefinition } from '../catalog';
import type { BaseEvent, EventMetadata } from '../envelope';
import { EventValidationError, UnknownEventTypeError } from '../errors';
import type { AppendInput } from '../ports/storage';
import { uuidv7 } from '../uuidv7';
import { checkPublishOptions } from './options';
import type { PublishOptions } from './types';

/** Bus-wide defaults of the metadata. */
export interface MetadataDefaults {
  source: string;
  environment: string;
}

/** Validates `payload` against the catalog and builds the append input for it. */
export function buildEvent(
  catalog: Catalog,
  defaults: MetadataDefaults,
  type: string,
  payload: unknown,
  options: PublishOptions | undefined,
): AppendInput {
  const definition: EventDefinition | undefined = Object.hasOwn(catalog, type) ? catalog[type] : undefined;
  if (!definition) throw new UnknownEventTypeError(type);
  const parsed = definition.payload.safeParse(payload);
  if (!parsed.success) throw new EventValidationError(type, parsed.error.issues);

  const now = Date.now();
  const metadata: EventMetadata =
    options?.metadata === undefined
      ? { source: defaults.source, environment: defaults.environment }
      : { source: defaults.source, environment: defaults.environment, ...stripUndefined(options.metadata) };
  const event: BaseEvent = {
    eventId: uuidv7(now),
    eventType: type,
    eventVersion: definition.version,
    timestamp: new Date(now),
    payload: parsed.data,
    metadata,
    processed: false,
    retryCount: 0,
  };
  if (options === undefined) return { event };

  checkPublishOptions(options);
  if (options.actor !== undefined) event.actor = options.actor;
  if (options.actorType !== undefined) event.actorType = options.actorType;
  if (options.organizationId !== undefined) event.organizationId = options.organizationId;
  const input: AppendInput = { event };
  if (options.idempotencyKey !== undefined) input.idempotencyKey = options.idempotencyKey;
  if (options.orderingKey !== undefined) input.orderingKey = options.orderingKey;
  if (options.deliverAt !== undefined) input.deliverAt = options.deliverAt;
  return input;
}

function stripUndefined(metadata: Partial<EventMetadata>): Partial<EventMetadata> {
  const out: Partial<EventMetadata> = {};
  for (const key of Object.keys(metadata)) {
    if (metadata[key] !== undefined) out[key] = metadata[key];
  }
  return out;
}
