/** What a transport instance shares with its consumers. */
import { EventBusError, type Logger } from '@blawby/event-bus';
import type { Redis } from 'ioredis';
import type { Keys } from './keys';

/** The transport's shared state, as its consumers see it. */
export interface TransportContext {
  /** The command connection (the user's client, or the one the transport opened). */
  readonly client: Redis;
  readonly keys: Keys;
  readonly partitions: number;
  readonly logger: Logger;
  /** Creates group `group` on every stream (idempotent); records `patterns` when given. */
  ensureGroup(group: string, patterns?: readonly string[]): Promise<void>;
}

/** `err` as an {@link EventBusError}: coded errors pass through, others become `TRANSPORT_UNAVAILABLE`. */
export function unavailable(operation: string, err: unknown): EventBusError {
  if (EventBusError.is(err)) return err;
  const kind = err instanceof Error ? err.name : typeof err;
  // Redis error replies start with an upper-case code (NOGROUP, BUSY, ...): safe to show, unlike the rest.
  const code = err instanceof Error ? /^([A-Z]{3,})\b/.exec(err.message)?.[1] : undefined;
  return new EventBusError('TRANSPORT_UNAVAILABLE', `Redis transport failed to ${operation} (${kind}${code ? `, ${code}` : ''})`, { cause: err });
}

/** True when Redis answered that a consumer group (or its stream) does not exist: it lost its data. */
export function isMissingGroup(err: unknown): boolean {
  const cause = EventBusError.is(err) ? err.cause : err;
  return cause instanceof Error && cause.message.includes('NOGROUP');
}

/** How long `close()` waits for Redis to answer the goodbyes (lease releases, QUIT). */
export const CLOSE_TIMEOUT_MS = 2000;

/** Runs `work`; resolves `true` when it finished within `ms`, `false` when it was left running. */
export async function within(ms: number, work: () => Promise<unknown>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work().then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Logs the errors of a connection the transport opened (ioredis prints them
 * to the console when nobody listens): a warning when it goes down, one
 * line when it is back.
 */
export function watchConnection(connection: Redis, logger: Logger, role: string): void {
  let down = false;
  connection.on('error', (err: unknown) => {
    if (down) return;
    down = true;
    logger.warn({ err, role }, 'redis transport: connection lost; reconnecting');
  });
  connection.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ role }, 'redis transport: connection back');
  });
}
