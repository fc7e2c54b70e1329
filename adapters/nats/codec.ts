/** The message body: the envelope as JSON, with the ordering key and position beside it. */
import type { BaseEvent, TransportEvent } from '@blawby/event-bus';

interface Body {
  event: BaseEvent;
  orderingKey?: string;
  position?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The body of one published event. */
export function encodeEvent(message: TransportEvent): Uint8Array {
  const body: Body = { event: message.event };
  if (message.orderingKey !== undefined) body.orderingKey = message.orderingKey;
  if (message.position !== undefined) body.position = message.position;
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
    return out;
  } catch {
    return undefined;
  }
}
