/**
 * The in-process transport presented as a cross-process broker, for tests of
 * the core's broker path and the outbox relay without Redis or NATS: several
 * buses on one stand-in act as processes sharing a broker. `lose()` drops
 * everything it holds, as a Redis restart without persistence does, and the
 * next `progress()` reports it.
 */
import { inProcessTransport, type Transport, type TransportConsumer } from '../../src/index';

export interface BrokerStandIn extends Transport {
  /** Forgets every event and group, as a broker restarted without its data. */
  lose(): void;
  /** Events published so far (duplicates included). */
  readonly published: number;
}

export function brokerStandIn(): BrokerStandIn {
  let inner = inProcessTransport();
  let generation = 0;
  let lost = false;
  let published = 0;
  return {
    name: 'in-process broker',
    capabilities: { ...inner.capabilities, crossProcess: true },
    get published() {
      return published;
    },
    async publish(events) {
      published += events.length;
      await inner.publish(events);
    },
    async consume(group, options) {
      let joined = generation;
      let consumer = await inner.consume(group, options);
      // A member rejoins its group on the new broker after a loss, as a client reconnecting does.
      const current = async (): Promise<TransportConsumer> => {
        if (joined !== generation) {
          joined = generation;
          consumer = await inner.consume(group, options);
        }
        return consumer;
      };
      return {
        fetch: async (max, waitMs, signal) => (await current()).fetch(max, Math.min(waitMs, 200), signal),
        close: async () => (await current()).close(),
      };
    },
    async progress(groups) {
      const answer = await inner.progress!(groups);
      if (!lost) return answer;
      lost = false;
      return { ...answer, intact: false };
    },
    lose() {
      void inner.close();
      inner = inProcessTransport();
      generation += 1;
      lost = true;
    },
    close: async () => undefined, // shared by the buses of a test
  };
}
