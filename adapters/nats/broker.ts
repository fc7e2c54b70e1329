/**
 * The JetStream objects the transport needs, created on first use and
 * checked against what is already there: the event stream, the lease stream
 * and each group's durable pull consumers.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { EventBusError, InvalidOptionError } from '@blawby/event-bus';
import type { Names } from './names';

/** The stream settings from the transport's options. */
export interface StreamSettings {
  readonly partitions: number;
  readonly storage: 'file' | 'memory';
  readonly replicas: number;
  readonly duplicateWindowMs: number;
  readonly maxAgeMs: number;
}

const NS = 1e6;

/** What the event stream's description says, so members with another partition count are refused. */
export function streamDescription(partitions: number): string {
  return `@blawby/event-bus events (partitions=${partitions})`;
}

/** Creates the event and lease streams if missing; refuses an event stream made with another partition count. */
export async function ensureStreams(jsm: JetStreamManager, names: Names, settings: StreamSettings): Promise<void> {
  const storage = settings.storage === 'memory' ? StorageType.Memory : StorageType.File;
  const events: Partial<StreamConfig> & { name: string } = {
    name: names.eventStream,
    description: streamDescription(settings.partitions),
    subjects: [...names.eventSubjects],
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    storage,
    num_replicas: settings.replicas,
    duplicate_window: settings.duplicateWindowMs * NS,
    max_age: settings.maxAgeMs * NS,
    allow_direct: true,
  };
  const existing = await streamInfo(jsm, names.eventStream);
  if (!existing) await addStream(jsm, events, names);
  else if (existing.config.description !== events.description) {
    throw new InvalidOptionError(
      'partitions',
      `stream "${names.eventStream}" was created as "${existing.config.description ?? ''}"; every member and publisher of prefix "${names.prefix}" must use the same partition count (${settings.partitions} given)`,
    );
  }
  if (!(await streamInfo(jsm, names.leaseStream))) {
    await addStream(
      jsm,
      {
        name: names.leaseStream,
        description: '@blawby/event-bus key partition leases',
        subjects: [...names.leaseSubjects],
        max_msgs_per_subject: 1,
        storage,
        num_replicas: settings.replicas,
        allow_direct: true,
      },
      names,
    );
  }
}

async function streamInfo(jsm: JetStreamManager, name: string) {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw err;
  }
}

async function addStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }, names: Names): Promise<void> {
  try {
    await jsm.streams.add(config);
  } catch (err) {
    // Another member created it meanwhile: fine. Overlapping subjects: a stream of the user's own.
    if (err instanceof JetStreamApiError && err.code === 10058) return; // stream name already in use
    if (err instanceof JetStreamApiError && err.code === 10065) {
      throw new InvalidOptionError(
        'prefix',
        `another stream already holds subjects under "${names.prefix}." (${err.message}); pick a prefix no other stream uses`,
      );
    }
    throw err;
  }
}

/** One durable pull consumer of a group. */
export interface ConsumerSpec {
  readonly name: string;
  readonly filterSubject: string;
  /** The subject that takes every event of the channel (a consumer made with it still works: the transport filters). */
  readonly broadSubject: string;
  readonly leaseMs: number;
  readonly maxAckPending: number;
}

/**
 * Creates the consumer if missing, starting at `startSeq` (`0`: the start of
 * the stream, used when re-creating a lost consumer), or adjusts its ack wait
 * to the lease. A consumer made earlier with another filter is refused unless
 * its filter takes the whole channel.
 */
export async function ensureConsumer(jsm: JetStreamManager, stream: string, spec: ConsumerSpec, startSeq: number): Promise<void> {
  const info = await consumerInfo(jsm, stream, spec.name);
  if (info) {
    const filter = info.config.filter_subject;
    if (filter !== spec.filterSubject && filter !== spec.broadSubject) {
      throw new InvalidOptionError(
        'patterns',
        `consumer "${spec.name}" of stream "${stream}" filters "${filter ?? ''}", not "${spec.filterSubject}": the group's patterns changed; delete the group's consumers (nats consumer rm) to re-create them`,
      );
    }
    if (info.config.ack_wait !== spec.leaseMs * NS || info.config.max_ack_pending !== spec.maxAckPending) {
      await jsm.consumers.update(stream, spec.name, { ack_wait: spec.leaseMs * NS, max_ack_pending: spec.maxAckPending });
    }
    return;
  }
  try {
    await jsm.consumers.add(stream, {
      durable_name: spec.name,
      filter_subject: spec.filterSubject,
      ack_policy: AckPolicy.Explicit,
      ack_wait: spec.leaseMs * NS,
      max_deliver: -1,
      max_ack_pending: spec.maxAckPending,
      ...(startSeq > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq }
        : { deliver_policy: DeliverPolicy.All }),
    });
  } catch (err) {
    // Made by another member at the same moment (with its own start): use that one.
    if (!(await consumerInfo(jsm, stream, spec.name))) throw err;
  }
}

/** The consumer's info, or `undefined` when it does not exist. */
export async function consumerInfo(jsm: JetStreamManager, stream: string, name: string) {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return undefined;
    throw err;
  }
}

/** True when `err` says the stream (or JetStream) is not there to take a message. */
export function isStreamMissing(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === JetStreamApiCodes.StreamNotFound;
  return err instanceof Error && /jetstream is not enabled|no responders|no stream matches/i.test(err.message);
}

/** The coded error for broker trouble. */
export function unavailable(what: string, cause: unknown): EventBusError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new EventBusError('TRANSPORT_UNAVAILABLE', `NATS transport could not ${what}${detail}`, { cause });
}
