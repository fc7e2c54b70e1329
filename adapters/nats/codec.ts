/** The message body: the envelope as JSON, with the ordering key, position and addressed group beside it. */
import type { BaseEvent, TransportEvent } from '@blawby/event-bus';

interface Body {
  event: BaseEvent;
  orderingKey?: string;
  position?: string;
  subscriber?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The body of one published event. */
export function encodeEvent(message: TransportEvent): Uint8Array {
  const body: Body = { event: message.event };
  if (message.orderingKey !== undefined) body.orderingKey = message.orderingKey;
  if (message.position !== undefined) body.position = message.position;
  if (message.subscriber !== undefined) body.subscriber = message.subscriber;
  return encoder.encode(JSON.stringify(body));
}

/** The event a body carries, or `undefined` when it is not one of ours. */
export function decodeEvent(data: Uint8Array): TransportEvent | undefined {
  try {
    const body = JSON.parse(decoder.decode(data)) as Partial<Body> | null;
    if (!body || typeof body !== 'object' || !body.event || typeof body.event.eventType !== 'string') return undefined;
    const out: TransportEvent = { event: body.event };
    if (typeof body.orderingKey === 'string') out.orderingKey = body.orderingKey;
    if (typeof body.position === 'string') out.position = body.position;
    if (typeof body.subscriber === 'string') out.subscriber = body.subscriber;
    return out;
  } catch {
    return undefined;
  }
}

/** Whether group `group` takes `message`: it is addressed to no group, or to this one. */
export function addressedTo(message: TransportEvent, group: string): boolean {
  return message.subscriber === undefined || message.subscriber === group;
}

/**
 * The broker's deduplication id: the event id, so a second publish of the
 * same event is dropped; an event addressed to one group (a redrive, a
 * replay, a catch-up) is meant to arrive again, so it gets an id of its own.
 */
export function messageId(message: TransportEvent): string | undefined {
  return message.subscriber === undefined ? message.event.eventId : undefined;
}
