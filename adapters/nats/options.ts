/** The options of `natsTransport`, checked and with their defaults. */
import type { NodeConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import { InvalidOptionError, silentLogger, type Logger } from '@blawby/event-bus';

/** Options every form of {@link NatsTransportOptions} has. */
export interface NatsTransportCommonOptions {
  /**
   * Namespace of every stream, subject and consumer this transport uses
   * (letters, digits, `_`, `-`; default `'eventbus'`). Buses on one server
   * with different prefixes never see each other's events.
   */
  prefix?: string;
  /**
   * Key partitions per group (default 8). Events with an `orderingKey` go to
   * partition `fnv1a(key) % partitions`; each partition is owned by one member
   * at a time. Fixed for the life of the stream: every publisher and member of
   * a prefix must use the same count.
   */
  partitions?: number;
  /** JetStream storage of the streams (default `'file'`; `'memory'` is lost on a server restart, so not `durable`). */
  storage?: 'file' | 'memory';
  /** Stream replicas in a cluster (default 1). */
  replicas?: number;
  /** The broker drops a second publish of the same `eventId` within this window (default 120 000 ms, 2 minutes). */
  duplicateWindowMs?: number;
  /** Events older than this leave the stream, consumed or not (default 7 days; 0: kept until the stream is purged). */
  maxAgeMs?: number;
  /** Unacknowledged deliveries per consumer the broker allows (default 1000); on a key partition, how many events its owner holds at once. */
  maxAckPending?: number;
  /** How long an acknowledgement waits for the server's confirmation (default 5000 ms). */
  ackTimeoutMs?: number;
  /** pino (or compatible) logger; silent by default. */
  logger?: Logger;
}

/** Connect to these servers; the transport owns the connection and closes it in `close()`. */
export interface NatsTransportServersOptions extends NatsTransportCommonOptions {
  /** Server URL(s), e.g. `'nats://127.0.0.1:4222'`. */
  servers: string | string[];
  /** Further connection options (credentials, TLS, name). By default the client reconnects forever. */
  connectOptions?: Omit<NodeConnectionOptions, 'servers'>;
}

/** Use a connection of your own; `close()` leaves it open. */
export interface NatsTransportConnectionOptions extends NatsTransportCommonOptions {
  /** A connection from `@nats-io/transport-node`'s `connect()`. */
  connection: NatsConnection;
}

/** Options of `natsTransport`: `{ servers }` or `{ connection }`, plus the common options. */
export type NatsTransportOptions = NatsTransportServersOptions | NatsTransportConnectionOptions;

/** The options with defaults filled in. */
export interface ResolvedNatsOptions {
  readonly prefix: string;
  readonly partitions: number;
  readonly storage: 'file' | 'memory';
  readonly replicas: number;
  readonly duplicateWindowMs: number;
  readonly maxAgeMs: number;
  readonly maxAckPending: number;
  readonly ackTimeoutMs: number;
  readonly logger: Logger;
}

const DAY_MS = 86_400_000;

/** Checks `options` and fills in the defaults. */
export function resolveOptions(options: NatsTransportOptions): ResolvedNatsOptions {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'must be { servers } or { connection }');
  const hasServers = 'servers' in options && options.servers !== undefined;
  const hasConnection = 'connection' in options && options.connection !== undefined;
  if (hasServers === hasConnection) throw new InvalidOptionError('servers', 'give exactly one of "servers" and "connection"');
  if (hasServers) {
    const servers = (options as NatsTransportServersOptions).servers;
    const list = Array.isArray(servers) ? servers : [servers];
    if (list.length === 0 || list.some((s) => typeof s !== 'string' || s.length === 0)) {
      throw new InvalidOptionError('servers', 'must be a server URL or a non-empty list of them');
    }
  }
  const prefix = options.prefix ?? 'eventbus';
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(prefix)) {
    throw new InvalidOptionError('prefix', 'must be 1 to 64 letters, digits, "_" or "-"');
  }
  const storage = options.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory') throw new InvalidOptionError('storage', 'must be "file" or "memory"');
  const maxAgeMs = integer('maxAgeMs', options.maxAgeMs, 7 * DAY_MS, 0, Math.floor(Number.MAX_SAFE_INTEGER / 1e6));
  const duplicateWindowMs = integer('duplicateWindowMs', options.duplicateWindowMs, Math.min(120_000, maxAgeMs || 120_000), 1, 7 * DAY_MS);
  if (maxAgeMs > 0 && duplicateWindowMs > maxAgeMs) throw new InvalidOptionError('duplicateWindowMs', 'must not exceed maxAgeMs');
  return {
    prefix,
    partitions: integer('partitions', options.partitions, 8, 1, 1024),
    storage,
    replicas: integer('replicas', options.replicas, 1, 1, 5),
    duplicateWindowMs,
    maxAgeMs,
    maxAckPending: integer('maxAckPending', options.maxAckPending, 1000, 1, 1_000_000),
    ackTimeoutMs: integer('ackTimeoutMs', options.ackTimeoutMs, 5000, 1, 600_000),
    logger: options.logger ?? silentLogger,
  };
}

function integer(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `must be an integer from ${min} to ${max}`);
  }
  return value;
}
