/**
 * The Redis Streams transport: carries events between the processes of a
 * bus through consumer groups (one per subscriber), with per-delivery leases,
 * broker-held retry delays, and per-key ordering through key partitions.
 * See docs/redis.md for the stream layout and what Redis must be set up as.
 *
 * @example
 * ```ts
 * import { createEventBus } from '@blawby/event-bus';
 * import { postgresStorage } from '@blawby/event-bus/postgres';
 * import { redisTransport } from '@blawby/event-bus/redis';
 *
 * const bus = createEventBus({
 *   catalog,
 *   storage: postgresStorage({ db }),
 *   transport: redisTransport({ url: process.env.REDIS_URL! }), // or { client: myIoredis }
 * });
 * ```
 *
 * @module @blawby/event-bus/redis
 */
export { redisTransport, DEFAULT_PARTITIONS, type RedisTransport, type RedisTransportOptions, type RedisTransportCommonOptions } from './redis-transport';
export { READ_AHEAD } from './consumer';
