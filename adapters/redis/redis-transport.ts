/**
 * The Redis Streams transport: publishing, joining groups, progress for the
 * outbox relay, trimming, and the checks made before first use.
 */
import { randomUUID } from 'node:crypto';
import {
  EventBusError,
  InvalidOptionError,
  silentLogger,
  type ConsumeOptions,
  type Logger,
  type Transport,
  type TransportCapabilities,
  type TransportConsumer,
  type TransportEvent,
  type TransportProgress,
} from '@blawby/event-bus';
import { Redis } from 'ioredis';
import { RedisConsumer } from './consumer';
import { CLOSE_TIMEOUT_MS, unavailable, watchConnection, within, type TransportContext } from './context';
import { compareIds, encodeEvent } from './entries';
import { keysOf, partitionOf, type Keys } from './keys';
import { ENSURE_GROUP, PROGRESS, PUBLISH, run, TRIM } from './scripts';

/** Options of {@link redisTransport}: a Redis URL, or a client you pass (and close yourself). */
export type RedisTransportOptions = RedisTransportCommonOptions & ({ url: string; client?: never } | { client: Redis; url?: never });

/** Options of {@link redisTransport} besides the connection. */
export interface RedisTransportCommonOptions {
  /** Prefix of every key the transport writes (default `'event-bus'`); buses with different prefixes never see each other. */
  prefix?: string;
  /** Number of key partitions, the unit of per-key ordering and of sharing keyed work between members (default 8). */
  partitions?: number;
  /** Where warnings go (a pino logger); silent by default. */
  logger?: Logger;
}

/** Default number of key partitions. */
export const DEFAULT_PARTITIONS = 8;

/** How often a transport with consumers trims the entries every group has acknowledged. */
const TRIM_INTERVAL_MS = 30_000;

/** Entries `progress` scans per stream and direction at most (see PROGRESS in scripts.ts). */
const PROGRESS_SCAN_LIMIT = 10_000;

const CAPABILITIES: TransportCapabilities = Object.freeze({
  crossProcess: true,
  durable: true,
  orderedPerKey: true,
  delayedDelivery: true,
  deduplicates: false,
});

/**
 * Creates the Redis Streams {@link Transport}. Nothing connects until the
 * first `publish`, `consume` or `progress`.
 *
 * @example
 * ```ts
 * const transport = redisTransport({ url: process.env.REDIS_URL! });
 * const bus = createEventBus({ catalog, storage, transport });
 * ```
 */
export function redisTransport(options: RedisTransportOptions): RedisTransport {
  return new RedisStreamsTransport(options);
}

/** The Redis Streams transport: a {@link Transport} that can also trim on demand. */
export interface RedisTransport extends Transport {
  /**
   * Deletes the entries every group has acknowledged (what a transport with
   * consumers also does every 30 s). Resolves with the number deleted.
   */
  trim(): Promise<number>;
}

class RedisStreamsTransport implements RedisTransport {
  readonly name = 'redis';
  readonly capabilities = CAPABILITIES;

  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly keys: Keys;
  private readonly partitions: number;
  private readonly logger: Logger;
  private readonly context: TransportContext;
  private readonly consumers = new Set<RedisConsumer>();
  private ready: Promise<void> | undefined;
  private epoch: string | undefined;
  private trimTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(options: RedisTransportOptions) {
    const opts = (options ?? {}) as Partial<RedisTransportOptions>;
    if ((opts.url === undefined) === (opts.client === undefined)) throw new InvalidOptionError('url', 'give exactly one of "url" and "client"');
    if (opts.url !== undefined && (typeof opts.url !== 'string' || opts.url === '')) throw new InvalidOptionError('url', 'must be a redis:// URL');
    if (opts.client !== undefined && typeof (opts.client as Partial<Redis>).duplicate !== 'function') {
      throw new InvalidOptionError('client', 'must be an ioredis client (Redis Cluster is not supported)');
    }
    const prefix = opts.prefix ?? 'event-bus';
    if (typeof prefix !== 'string' || prefix === '' || /\s/.test(prefix)) throw new InvalidOptionError('prefix', 'must be a non-empty string without spaces');
    const partitions = opts.partitions ?? DEFAULT_PARTITIONS;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1024) throw new InvalidOptionError('partitions', 'must be an integer from 1 to 1024');
    this.partitions = partitions;
    this.keys = keysOf(prefix, partitions);
    this.logger = opts.logger ?? silentLogger;
    this.ownsClient = opts.client === undefined;
    this.client = opts.client ?? new Redis(opts.url!, { lazyConnect: true });
    if (this.ownsClient) watchConnection(this.client, this.logger, 'commands');
    this.context = {
      client: this.client,
      keys: this.keys,
      partitions,
      logger: this.logger,
      ensureGroup: (group, patterns) => this.ensureGroup(group, patterns),
    };
  }

  async publish(events: readonly TransportEvent[]): Promise<void> {
    this.assertOpen();
    if (events.length === 0) return;
    await this.init();
    const args: (string | number)[] = [];
    for (const message of events) {
      const fields = encodeEvent(message);
      const stream = message.orderingKey === undefined ? 0 : 1 + partitionOf(message.orderingKey, this.partitions);
      args.push(stream, fields.length / 2, ...fields);
    }
    try {
      await run(this.client, PUBLISH, [this.keys.sequence, ...this.keys.streams], args);
    } catch (err) {
      throw unavailable('publish', err);
    }
  }

  async consume(group: string, options: ConsumeOptions): Promise<TransportConsumer> {
    this.assertOpen();
    validateConsume(group, options);
    await this.init();
    await this.ensureGroup(group, options.patterns);
    const blocking = this.client.duplicate({ lazyConnect: true });
    watchConnection(blocking, this.logger, 'blocking');
    const consumer: RedisConsumer = new RedisConsumer(this.context, group, options, blocking, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    try {
      await consumer.start();
    } catch (err) {
      await consumer.close().catch(() => undefined);
      throw unavailable('join the group', err);
    }
    this.startTrimming();
    return consumer;
  }

  async progress(groups: readonly string[]): Promise<TransportProgress> {
    this.assertOpen();
    await this.init();
    try {
      const seen = await this.client.get(this.keys.epoch);
      const intact = seen !== null && seen === this.epoch;
      if (!intact) {
        this.logger.warn({ key: this.keys.epoch }, 'redis transport: Redis lost its data (no persistence?); the relay sends again');
        await this.client.set(this.keys.partitionCount, String(this.partitions), 'NX');
        await this.adoptEpoch();
        // Groups come back when their members next read (from the start of what the streams hold).
      }
      const oldestPending: Record<string, string | null> = {};
      for (const group of groups) {
        const oldest = await this.oldestPosition(group);
        if (oldest !== undefined) oldestPending[group] = oldest; // a group with no member yet is left out
      }
      return { intact, oldestPending };
    } catch (err) {
      throw unavailable('read progress', err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.trimTimer) clearInterval(this.trimTimer);
    await Promise.all([...this.consumers].map((c) => c.close()));
    if (this.ownsClient) {
      const quit = await within(CLOSE_TIMEOUT_MS, () => this.client.quit()).catch(() => false);
      if (!quit) this.client.disconnect();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new EventBusError('TRANSPORT_UNAVAILABLE', 'Redis transport is closed');
  }

  /** Connects and checks the server once; a failed attempt is tried again on the next call. */
  private init(): Promise<void> {
    if (!this.ready) {
      this.ready = this.checkServer().catch((err: unknown) => {
        this.ready = undefined;
        throw unavailable('connect', err);
      });
    }
    return this.ready;
  }

  private async checkServer(): Promise<void> {
    if (this.client.status === 'wait') await this.client.connect();
    await this.checkVersion();
    await this.checkEvictionPolicy();
    await this.client.set(this.keys.partitionCount, String(this.partitions), 'NX');
    const stored = Number(await this.client.get(this.keys.partitionCount));
    if (stored !== this.partitions) {
      throw new InvalidOptionError(
        'partitions',
        `is ${this.partitions}, but prefix "${this.keys.partitionCount}" was set up with ${stored}; every instance on one prefix needs the same value`,
      );
    }
    await this.adoptEpoch();
  }

  /** The scripts use XAUTOCLAIM, XTRIM MINID and exclusive ranges: Redis 6.2. */
  private async checkVersion(): Promise<void> {
    const info = String(await this.client.info('server'));
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (!version) return; // a compatible server that does not say (some proxies): let the commands tell
    const [major, minor] = [Number(version[1]), Number(version[2])];
    if (major < 6 || (major === 6 && minor < 2)) {
      throw new EventBusError('TRANSPORT_MISCONFIGURED', `Redis ${major}.${minor} is too old for the Redis transport: it needs Redis 6.2 or newer`);
    }
  }

  /** An evicting Redis could drop streams (lost events) or leases: refuse allkeys-*, warn about volatile-*. */
  private async checkEvictionPolicy(): Promise<void> {
    let policy: string | undefined;
    try {
      const reply = (await this.client.call('CONFIG', 'GET', 'maxmemory-policy')) as unknown;
      policy = Array.isArray(reply)
        ? String(reply[1])
        : reply instanceof Map
          ? String(reply.get('maxmemory-policy'))
          : String((reply as Record<string, unknown>)['maxmemory-policy']);
    } catch (err) {
      this.logger.warn({ err }, 'redis transport: cannot read maxmemory-policy (CONFIG is disabled?); make sure it is noeviction');
      return;
    }
    if (policy.startsWith('allkeys-')) {
      throw new EventBusError(
        'TRANSPORT_MISCONFIGURED',
        `Redis maxmemory-policy is "${policy}": Redis may evict the event streams and lose events. Set maxmemory-policy to noeviction`,
      );
    }
    if (policy.startsWith('volatile-')) {
      this.logger.warn({ policy }, 'redis transport: maxmemory-policy evicts keys with a TTL, such as partition leases; noeviction is safer');
    }
  }

  /** Writes the data marker if there is none, and remembers the one Redis holds. */
  private async adoptEpoch(): Promise<void> {
    await this.client.set(this.keys.epoch, randomUUID(), 'NX');
    this.epoch = (await this.client.get(this.keys.epoch)) ?? undefined;
  }

  private async ensureGroup(group: string, patterns?: readonly string[]): Promise<void> {
    try {
      await run(this.client, ENSURE_GROUP, [...this.keys.streams, this.keys.groups], [group, patterns ? JSON.stringify(patterns) : '']);
    } catch (err) {
      throw unavailable('create the group', err);
    }
  }

  /**
   * The position of `group`'s oldest entry it has not acknowledged, over
   * every stream (ids compare across them); `undefined` when the group exists
   * on no stream.
   */
  private async oldestPosition(group: string): Promise<string | null | undefined> {
    const saved = await this.client.hget(this.keys.groups, group);
    const patterns = saved ? (JSON.parse(saved) as string[]) : [];
    let best: { id: string; position: string } | undefined;
    const replies = (await Promise.all(
      this.keys.streams.map((stream) => run(this.client, PROGRESS, [stream], [group, PROGRESS_SCAN_LIMIT, ...patterns])),
    )) as string[][];
    if (replies.every((reply) => reply.length === 0)) return undefined;
    for (const reply of replies) {
      for (let i = 0; i + 1 < reply.length; i += 2) {
        const id = reply[i]!;
        if (id !== '' && (!best || compareIds(id, best.id) < 0)) best = { id, position: reply[i + 1]! };
      }
    }
    return best?.position ?? null;
  }

  private startTrimming(): void {
    if (this.trimTimer) return;
    this.trimTimer = setInterval(() => {
      this.trim().catch((err: unknown) => this.logger.warn({ err }, 'redis transport: trimming acknowledged entries failed; tried again later'));
    }, TRIM_INTERVAL_MS);
    this.trimTimer.unref?.();
  }

  async trim(): Promise<number> {
    this.assertOpen();
    await this.init();
    let deleted = 0;
    try {
      for (const stream of this.keys.streams) deleted += Number(await run(this.client, TRIM, [stream], []));
    } catch (err) {
      throw unavailable('trim', err);
    }
    return deleted;
  }
}

function validateConsume(group: string, options: ConsumeOptions): void {
  if (typeof group !== 'string' || group === '') throw new InvalidOptionError('group', 'must be a non-empty string');
  if (!Array.isArray(options?.patterns) || options.patterns.length === 0 || options.patterns.some((p) => typeof p !== 'string' || p === '')) {
    throw new InvalidOptionError('patterns', 'must be a non-empty list of event types or patterns');
  }
  if (!Number.isInteger(options.leaseMs) || options.leaseMs < 1) throw new InvalidOptionError('leaseMs', 'must be a positive integer (ms)');
  if (typeof options.member !== 'string' || options.member === '') throw new InvalidOptionError('member', 'must be a non-empty string');
}
