/**
 * How an event sits in a stream entry. Entries are read through the
 * transport's scripts, whose replies have one shape whatever protocol the
 * client speaks.
 */
import type { TransportEvent } from '@blawby/event-bus';

/** Field names of an entry: short, as every entry carries them. */
const TYPE = 't';
const ENVELOPE = 'e';
const KEY = 'k';
const POSITION = 'p';
const SUBSCRIBER = 's';

/** A decoded entry. */
export interface StoredEvent {
  readonly id: string;
  readonly eventType: string;
  readonly message: TransportEvent;
}

/** The fields of one event: its type on its own (so the server can filter by type), the envelope as JSON, key, position, and the one group it is addressed to. */
export function encodeEvent(message: TransportEvent): string[] {
  const fields = [TYPE, message.event.eventType, ENVELOPE, JSON.stringify(message.event)];
  if (message.orderingKey !== undefined) fields.push(KEY, message.orderingKey);
  if (message.position !== undefined) fields.push(POSITION, message.position);
  if (message.subscriber !== undefined) fields.push(SUBSCRIBER, message.subscriber);
  return fields;
}

/** The event of entry `id`, or `null` for an entry without a readable envelope (deleted, or not written by this transport). */
export function decodeEvent(id: string, fields: readonly string[] | null): StoredEvent | null {
  if (!fields) return null;
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(String(fields[i]), String(fields[i + 1]));
  const envelope = f.get(ENVELOPE);
  if (envelope === undefined) return null;
  const key = f.get(KEY);
  const position = f.get(POSITION);
  const subscriber = f.get(SUBSCRIBER);
  let event: TransportEvent['event'];
  try {
    event = JSON.parse(envelope) as TransportEvent['event'];
  } catch {
    return null; // not written by this transport: skipped (acknowledged), so it cannot stall the group
  }
  return {
    id,
    eventType: f.get(TYPE) ?? event.eventType,
    message: {
      event,
      ...(key !== undefined ? { orderingKey: key } : {}),
      ...(position !== undefined ? { position } : {}),
      ...(subscriber !== undefined ? { subscriber } : {}),
    },
  };
}

/** Stream ids `a` and `b` compared: negative when `a` comes first. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}
