/** The NATS JetStream {@link Transport}: publishing, joining groups, progress for the relay. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import {
  EventBusError,
  InvalidEventNameError,
  InvalidOptionError,
  isValidEventName,
  type ConsumeOptions,
  type Transport,
  type TransportCapabilities,
  type TransportConsumer,
  type TransportEvent,
  type TransportProgress,
} from '@blawby/event-bus';
import { consumerInfo, ensureConsumer, ensureStreams, isStreamMissing, unavailable, type ConsumerSpec } from './broker';
import { decodeEvent, encodeEvent, messageId } from './codec';
import type { GroupContext } from './group-context';
import {
  eventSubject,
  groupFilter,
  namesFor,
  partitionConsumer,
  partitionFilter,
  partitionOf,
  unorderedConsumer,
  unorderedFilter,
  type Names,
} from './names';
import { NatsConsumer } from './nats-consumer';
import { resolveOptions, type NatsTransportServersOptions, type NatsTransportOptions, type ResolvedNatsOptions } from './options';

interface Broker {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/** The transport behind `natsTransport()`. */
export class NatsTransport implements Transport {
  readonly name = 'nats';
  readonly capabilities: TransportCapabilities;

  private readonly options: ResolvedNatsOptions;
  private readonly names: Names;
  private broker: Promise<Broker> | undefined;
  private streams: Promise<void> | undefined;
  private readonly consumers = new Set<NatsConsumer>();
  /** What this instance knows of the event stream, to tell when it was lost. */
  private stream: { created?: string; lastSeq: number } = { lastSeq: 0 };
  private closing: Promise<void> | undefined;
  /** The event stream's creation time as the members last saw it (apart from `stream`, which is progress's own). */
  private membersSawCreated: string | undefined;
  private lastWatch = 0;

  constructor(private readonly input: NatsTransportOptions) {
    this.options = resolveOptions(input);
    this.names = namesFor(this.options.prefix);
    this.capabilities = Object.freeze({
      crossProcess: true,
      durable: this.options.storage === 'file',
      orderedPerKey: true,
      delayedDelivery: true,
      deduplicates: true,
    });
  }

  async publish(events: readonly TransportEvent[]): Promise<void> {
    if (events.length === 0) return;
    for (const { event } of events) if (!isValidEventName(event.eventType)) throw new InvalidEventNameError(event.eventType);
    const broker = await this.ready();
    try {
      await this.send(broker, events);
    } catch (err) {
      if (!isStreamMissing(err)) throw unavailable('publish', err);
      // The stream is gone (deleted, or the server lost its data): make it again and resend; duplicates are dropped.
      this.streams = undefined;
      await this.ready();
      try {
        await this.send(broker, events);
      } catch (again) {
        throw unavailable('publish', again);
      }
    }
  }

  async consume(group: string, options: ConsumeOptions): Promise<TransportConsumer> {
    checkConsume(group, options);
    const broker = await this.ready();
    const filter = groupFilter(options.patterns);
    const specs = new Map<string, ConsumerSpec>();
    const u: ConsumerSpec = {
      name: unorderedConsumer(group),
      filterSubject: unorderedFilter(this.names, filter),
      broadSubject: `${this.names.prefix}.u.>`,
      leaseMs: options.leaseMs,
      maxAckPending: this.options.maxAckPending,
    };
    specs.set(u.name, u);
    for (let p = 0; p < this.options.partitions; p++) {
      const spec: ConsumerSpec = {
        name: partitionConsumer(group, p),
        filterSubject: partitionFilter(this.names, p, filter),
        broadSubject: `${this.names.prefix}.k.${p}.>`,
        leaseMs: options.leaseMs,
        maxAckPending: this.options.maxAckPending,
      };
      specs.set(spec.name, spec);
    }
    try {
      // A new group starts after the stream's last event, the same place for all its consumers.
      const info = await broker.jsm.streams.info(this.names.eventStream);
      this.membersSawCreated ??= info.created;
      const startSeq = info.state.last_seq + 1;
      await Promise.all([...specs.values()].map((spec) => ensureConsumer(broker.jsm, this.names.eventStream, spec, startSeq)));
    } catch (err) {
      if (err instanceof EventBusError) throw err;
      throw unavailable(`create the consumers of group "${group}"`, err);
    }
    const log = this.options.logger;
    const self: { consumer?: NatsConsumer } = {};
    const ctx: GroupContext = {
      ...broker,
      names: this.names,
      group,
      member: options.member,
      leaseMs: options.leaseMs,
      partitions: this.options.partitions,
      filter,
      logger: log.child ? log.child({ transport: 'nats', group, member: options.member }) : log,
      ackTimeoutMs: this.options.ackTimeoutMs,
      wake: () => self.consumer?.wake(),
      watchStream: () => this.watchStream(broker),
      restoreStreams: async () => {
        this.streams = undefined;
        await this.ready();
      },
      recover: async (name) => {
        const spec = specs.get(name);
        if (!spec || (await consumerInfo(broker.jsm, this.names.eventStream, name).catch(() => true))) return;
        ctx.logger.warn({ consumer: name }, 'nats transport: consumer missing, re-creating it from the start of the stream');
        this.streams = undefined;
        await this.ready();
        await ensureConsumer(broker.jsm, this.names.eventStream, spec, 0);
      },
    };
    const consumer = new NatsConsumer(ctx, u.name, () => this.consumers.delete(consumer));
    self.consumer = consumer;
    this.consumers.add(consumer);
    await consumer.open();
    return consumer;
  }

  async progress(groups: readonly string[]): Promise<TransportProgress> {
    const { jsm } = await this.ready();
    let intact = true;
    let info;
    try {
      info = await jsm.streams.info(this.names.eventStream);
    } catch (err) {
      if (!isStreamMissing(err)) throw unavailable('read the stream', err);
      // Gone since this instance made sure of it: whatever it held is lost.
      intact = false;
      this.streams = undefined;
      await this.ready();
      info = await jsm.streams.info(this.names.eventStream).catch((again: unknown) => {
        throw unavailable('read the stream', again);
      });
    }
    const known = this.stream;
    if ((known.created !== undefined && known.created !== info.created) || info.state.last_seq < known.lastSeq) intact = false;
    this.stream = { created: info.created, lastSeq: info.state.last_seq };
    const oldestPending: Record<string, string | null> = {};
    try {
      await Promise.all(
        groups.map(async (g) => {
          const oldest = await this.oldestPending(jsm, g);
          if (oldest !== undefined) oldestPending[g] = oldest;
        }),
      );
    } catch (err) {
      throw unavailable('read the consumers', err);
    }
    return { intact, oldestPending };
  }

  async close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  /**
   * Deliveries taken from a stream that was since replaced (deleted, or lost
   * with the server's data, and made again) point at sequences that now mean
   * other events: every member drops them, so none is acknowledged by mistake.
   */
  private async watchStream({ jsm }: Broker): Promise<void> {
    if (Date.now() - this.lastWatch < 1000) return;
    this.lastWatch = Date.now();
    const info = await jsm.streams.info(this.names.eventStream).catch(() => undefined);
    if (!info) return;
    if (this.membersSawCreated !== undefined && this.membersSawCreated !== info.created) {
      this.options.logger.warn({ stream: this.names.eventStream }, 'nats transport: the event stream was replaced; deliveries taken before are dropped');
      for (const consumer of this.consumers) consumer.reset();
    }
    this.membersSawCreated = info.created;
  }

  /**
   * The group's oldest unacknowledged event across its consumers, in stream
   * order, as its position; `undefined` when the broker has no consumer of
   * the group (it never joined, or the stream was lost): nothing can be said.
   */
  private async oldestPending(jsm: JetStreamManager, group: string): Promise<string | null | undefined> {
    const names = [unorderedConsumer(group), ...Array.from({ length: this.options.partitions }, (_, p) => partitionConsumer(group, p))];
    let known = false;
    const candidates = await Promise.all(
      names.map(async (name): Promise<StoredMsg | null> => {
        const info = await consumerInfo(jsm, this.names.eventStream, name);
        if (info) known = true;
        if (!info || info.num_ack_pending + info.num_pending === 0) return null;
        // Everything up to the ack floor is acknowledged: the first event of the consumer after it is not.
        const from = Math.max(info.ack_floor.stream_seq + 1, info.config.opt_start_seq ?? 1);
        return jsm.direct.getMessage(this.names.eventStream, { next_by_subj: info.config.filter_subject ?? '>', seq: from });
      }),
    );
    if (!known) return undefined;
    let oldest: StoredMsg | null = null;
    for (const c of candidates) if (c && (!oldest || c.seq < oldest.seq)) oldest = c;
    return oldest ? (decodeEvent(oldest.data)?.position ?? null) : null;
  }

  private async send({ js }: Broker, events: readonly TransportEvent[]): Promise<void> {
    // All at once on the one connection (the server stores them in this order); resolved when every one is stored.
    const acks = await Promise.all(
      events.map((message) => {
        const key = message.orderingKey;
        const subject = eventSubject(this.names, message.event.eventType, key === undefined ? undefined : partitionOf(key, this.options.partitions));
        const msgID = messageId(message);
        return js.publish(subject, encodeEvent(message), { ...(msgID ? { msgID } : {}), timeout: this.options.ackTimeoutMs });
      }),
    );
    for (const ack of acks) if (ack.seq > this.stream.lastSeq) this.stream.lastSeq = ack.seq;
  }

  /** The connection and the streams, made on first use. */
  private async ready(): Promise<Broker> {
    if (this.closing) throw new EventBusError('TRANSPORT_UNAVAILABLE', 'NATS transport is closed');
    this.broker ??= this.connect().catch((err) => {
      this.broker = undefined;
      throw err;
    });
    const broker = await this.broker;
    this.streams ??= ensureStreams(broker.jsm, this.names, this.options).catch((err) => {
      this.streams = undefined;
      throw err instanceof EventBusError ? err : unavailable('create its streams', err);
    });
    await this.streams;
    return broker;
  }

  private async connect(): Promise<Broker> {
    let nc: NatsConnection;
    if ('connection' in this.input && this.input.connection) nc = this.input.connection;
    else {
      const { servers, connectOptions } = this.input as NatsTransportServersOptions;
      try {
        nc = await connect({ name: '@blawby/event-bus', maxReconnectAttempts: -1, ...connectOptions, servers });
      } catch (err) {
        throw unavailable(`connect to ${String(servers)}`, err);
      }
    }
    try {
      return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
    } catch (err) {
      if (!('connection' in this.input)) await nc.close().catch(() => {});
      throw unavailable('reach JetStream (is the server started with -js?)', err);
    }
  }

  private async shutdown(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.close()));
    const broker = await this.broker?.catch(() => undefined);
    if (broker && !('connection' in this.input && this.input.connection)) await broker.nc.close().catch(() => {});
  }
}

function checkConsume(group: string, options: ConsumeOptions): void {
  if (typeof group !== 'string' || group.length === 0) throw new InvalidOptionError('group', 'must be a non-empty string');
  if (!options || !Array.isArray(options.patterns) || options.patterns.length === 0 || options.patterns.some((p) => typeof p !== 'string')) {
    throw new InvalidOptionError('patterns', 'must be a non-empty list of event types or patterns');
  }
  if (typeof options.leaseMs !== 'number' || !Number.isInteger(options.leaseMs) || options.leaseMs < 100) {
    throw new InvalidOptionError('leaseMs', 'must be an integer of at least 100');
  }
  if (typeof options.member !== 'string' || options.member.length === 0) throw new InvalidOptionError('member', 'must be a non-empty string');
}
