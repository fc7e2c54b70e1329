/**
 * The NATS JetStream transport: events cross processes through one stream
 * per prefix, each subscriber name is a consumer group of durable pull
 * consumers, and events with an `orderingKey` keep their order per key
 * through key partitions owned by one member at a time. Needs nats-server
 * 2.9 or later with JetStream enabled (see docs/nats.md).
 *
 * @example
 * ```ts
 * import { createEventBus } from '@blawby/event-bus';
 * import { natsTransport } from '@blawby/event-bus/nats';
 *
 * const transport = natsTransport({ servers: 'nats://127.0.0.1:4222', prefix: 'billing' });
 * const bus = createEventBus({ catalog, storage, transport });
 * ```
 *
 * @module @blawby/event-bus/nats
 */
import type { Transport } from '@blawby/event-bus';
import { NatsTransport } from './nats-transport';
import type { NatsTransportOptions } from './options';

export type { NatsTransportConnectionOptions, NatsTransportServersOptions, NatsTransportCommonOptions, NatsTransportOptions } from './options';

/**
 * Creates the NATS JetStream {@link Transport}. It connects (with
 * `{ servers }`) and creates its streams on first use; bad options throw an
 * `INVALID_OPTION` error at once, an unreachable server `TRANSPORT_UNAVAILABLE`
 * from the first call that needs it.
 *
 * @example
 * ```ts
 * const transport = natsTransport({ servers: ['nats://a:4222', 'nats://b:4222'], partitions: 16 });
 * // or, on a connection of your own (left open by transport.close()):
 * const shared = natsTransport({ connection: nc, prefix: 'orders' });
 * ```
 */
export function natsTransport(options: NatsTransportOptions): Transport {
  return new NatsTransport(options);
}
