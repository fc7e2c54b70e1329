/**
 * The consume side's checks: a stored event of an older version is upcast to
 * the catalog's current version and validated again before a handler sees it
 * (types without runtime checks are how old rows crash new handlers).
 */
import type { EventDefinition } from '../catalog';
import type { BaseEvent } from '../envelope';
import { EventValidationError, NonRetryableError, UnknownEventTypeError } from '../errors';

/**
 * The event as handlers of the current catalog expect it, given its type's
 * definition in that catalog (`undefined`: the catalog has no such type).
 * Throws a {@link NonRetryableError} (with the reason as `cause`) when it
 * cannot be made current: no retry would change that.
 */
export function currentVersionOf(definition: EventDefinition | undefined, event: BaseEvent): BaseEvent {
  if (!definition) {
    throw new NonRetryableError(`Event type "${event.eventType}" is not in this process's catalog`, {
      cause: new UnknownEventTypeError(event.eventType),
    });
  }
  if (event.eventVersion === definition.version) return event;
  const upcaster = definition.upcast?.[event.eventVersion];
  let payload: unknown = event.payload;
  try {
    if (upcaster) payload = upcaster(event.payload);
  } catch (err) {
    throw new NonRetryableError(`Upcasting "${event.eventType}" from ${event.eventVersion} failed`, { cause: err });
  }
  const parsed = definition.payload.safeParse(payload);
  if (!parsed.success) {
    throw new NonRetryableError(
      `Stored "${event.eventType}" v${event.eventVersion} does not fit v${definition.version}`,
      { cause: new EventValidationError(event.eventType, parsed.error.issues) },
    );
  }
  return { ...event, eventVersion: definition.version, payload: parsed.data };
}
