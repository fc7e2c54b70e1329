/** What the pieces of one member's consumer share. */
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '@blawby/event-bus';
import type { GroupFilter, Names } from './names';

/** One member's place in one group, as its channels see it. */
export interface GroupContext {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly names: Names;
  readonly group: string;
  readonly member: string;
  readonly leaseMs: number;
  readonly partitions: number;
  readonly filter: GroupFilter;
  readonly logger: Logger;
  /** How long an acknowledgement waits for the server's confirmation. */
  readonly ackTimeoutMs: number;
  /** Wakes fetches waiting for something to hand out. */
  wake(): void;
  /** Re-creates a consumer that a pull found missing (the stream was lost or someone deleted it). */
  recover(consumer: string): Promise<void>;
  /** Re-creates the streams after a request found one missing. */
  restoreStreams(): Promise<void>;
  /** Checks (at most once a second per transport) whether the event stream was replaced; if so every member starts afresh. */
  watchStream(): Promise<void>;
}
