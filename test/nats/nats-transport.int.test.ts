/**
 * The transport contract on the shared NATS server (`NATS_URL`, JetStream
 * enabled): every test on its own prefix, its streams deleted afterwards.
 * Without `NATS_URL` the suite is skipped, saying why.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { EventBusError, uuidv7, type BaseEvent, type Transport, type TransportConsumer, type TransportDelivery, type TransportEvent } from '../../src/index';
import { natsTransport } from '../../adapters/nats/index';
import { describeTransportContract } from '../contract/transport.contract';

const NATS_URL = process.env.NATS_URL || undefined;
const reason = NATS_URL ? null : 'NATS_URL is not set';
const prefixes = new Set<string>();
let prefixCounter = 0;

function event(eventType = 'auth.user_signed_up', extra: Partial<TransportEvent> = {}): TransportEvent {
  const envelope = {
    eventId: uuidv7(),
    eventType,
    eventVersion: 1,
    occurredAt: new Date().toISOString(),
    actor: 'user_1',
    actorType: 'user',
    organizationId: 'org_1',
    payload: {},
    metadata: {},
  } as unknown as BaseEvent;
  return { event: envelope, ...extra };
}

/** Fetches (and acknowledges) until nothing came for `quietMs`. */
async function drainAll(consumer: TransportConsumer, quietMs = 800): Promise<string[]> {
  const got: string[] = [];
  for (;;) {
    const batch = await consumer.fetch(50, quietMs);
    if (batch.length === 0) return got;
    for (const d of batch) {
      got.push(d.event.eventType);
      await d.ack();
    }
  }
}

const codeOf = async (p: Promise<unknown>) => {
  const err = await p.then(() => undefined, (e: unknown) => e);
  return EventBusError.is(err) ? err.code : String(err);
};

/** Deletes the streams of every prefix the suite used. */
async function dropStreams(url: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    for (const prefix of prefixes) {
      for (const stream of [`${prefix}_events`, `${prefix}_leases`]) await jsm.streams.delete(stream).catch(() => {});
    }
  } finally {
    await nc.close();
  }
}

describe.skipIf(reason !== null)(`NATS transport${reason ? ` (skipped: ${reason})` : ''}`, () => {
  afterAll(async () => {
    if (NATS_URL) await dropStreams(NATS_URL);
  });

  describeTransportContract('nats', async (namespace) => {
    prefixes.add(namespace);
    return natsTransport({ servers: NATS_URL!, prefix: namespace });
  });

  describe('on the broker', () => {
    const open: Transport[] = [];
    let prefix = '';
    const transport = (options: { partitions?: number } = {}) => {
      const t = natsTransport({ servers: NATS_URL!, prefix, ...options });
      open.push(t);
      return t;
    };
    const member = () => `m${++prefixCounter}`;
    beforeEach(() => {
      prefix = `x${process.pid}_${Date.now()}_${++prefixCounter}`;
      prefixes.add(prefix);
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
    });

    it('filters a group with several patterns in the transport, and one pattern on the broker', async () => {
      const t = transport();
      const several = await t.consume('several', { patterns: ['billing.*', 'auth.user_signed_up'], leaseMs: 1500, member: member() });
      const one = await t.consume('one', { patterns: ['billing.invoice_paid'], leaseMs: 1500, member: member() });
      const types = ['auth.user_signed_up', 'auth.user_deleted', 'billing.invoice_paid', 'billing.invoice_sent', 'crm.lead_won'];
      await t.publish([...types.map((type) => event(type)), ...types.map((type) => event(type, { orderingKey: type }))]);
      expect((await drainAll(several)).sort()).toEqual(
        ['auth.user_signed_up', 'auth.user_signed_up', 'billing.invoice_paid', 'billing.invoice_paid', 'billing.invoice_sent', 'billing.invoice_sent'],
      );
      expect(await drainAll(one)).toEqual(['billing.invoice_paid', 'billing.invoice_paid']);
      // What did not match was acknowledged on the way: nothing is pending.
      expect(await t.progress!(['several', 'one'])).toEqual({ intact: true, oldestPending: { several: null, one: null } });
    });

    it('shares the key partitions with a member that joins, each key staying in order across the hand-over', async () => {
      const first = transport();
      const m1 = await first.consume('g', { patterns: ['*'], leaseMs: 1500, member: member() });
      const keys = Array.from({ length: 32 }, (_, i) => `key${i}`);
      const sent = [0, 1, 2].flatMap(() => keys.map((k) => event('auth.user_signed_up', { orderingKey: k })));
      await first.publish(sent);
      const handled: { id: string; key: string; by: string }[] = [];
      const take = async (c: TransportConsumer, by: string) => {
        const batch = await c.fetch(8, 200);
        for (const d of batch) {
          handled.push({ id: d.event.eventId, key: d.orderingKey!, by });
          await d.ack();
        }
      };
      while (handled.length < 20) await take(m1, 'm1');
      const m2 = await transport().consume('g', { patterns: ['*'], leaseMs: 1500, member: member() });
      const deadline = Date.now() + 20_000;
      while (handled.length < sent.length && Date.now() < deadline) await Promise.all([take(m1, 'm1'), take(m2, 'm2')]);
      expect(handled.map((h) => h.id).sort()).toEqual(sent.map((e) => e.event.eventId).sort());
      for (const k of keys) {
        expect(handled.filter((h) => h.key === k).map((h) => h.id)).toEqual(sent.filter((e) => e.orderingKey === k).map((e) => e.event.eventId));
      }
      // The newcomer got its share of the partitions (so of the keys).
      expect(new Set(handled.filter((h) => h.by === 'm2').map((h) => h.key)).size).toBeGreaterThan(4);
    });

    it('drops the deliveries taken from a stream that was replaced, so their acks touch nothing new', async () => {
      const t = transport();
      const a = await t.consume('a', { patterns: ['*'], leaseMs: 1500, member: member() });
      const sent = [event('auth.user_signed_up', { position: '1:1' }), event('auth.user_signed_up', { orderingKey: 'k', position: '1:2' })];
      await t.publish(sent);
      const stale: TransportDelivery[] = [];
      while (stale.length < 2) stale.push(...(await a.fetch(2, 500)));
      const nc = await connect({ servers: NATS_URL! });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(`${prefix}_events`);
      await jsm.streams.delete(`${prefix}_leases`);
      await nc.close();
      expect((await t.progress!(['a'])).intact).toBe(false);
      await new Promise((r) => setTimeout(r, 2000)); // the members notice (checked once a second)
      await t.publish(sent); // the relay sends again
      for (const d of stale) await d.ack();
      const got: TransportDelivery[] = [];
      const deadline = Date.now() + 15_000;
      while (got.length < 2 && Date.now() < deadline) {
        for (const d of await a.fetch(10, 500)) {
          got.push(d);
          await d.ack();
        }
      }
      expect(got.map((d) => d.position).sort()).toEqual(['1:1', '1:2']);
    });

    it('drops a second publish of the same eventId (deduplicates)', async () => {
      const t = transport();
      const a = await t.consume('a', { patterns: ['*'], leaseMs: 1500, member: member() });
      const e = event();
      const k = event('auth.user_signed_up', { orderingKey: 'k' });
      await t.publish([e, k]);
      await t.publish([e, k]);
      expect(await drainAll(a)).toHaveLength(2);
    });

    it('refuses another partition count on the same prefix, and changed patterns it cannot filter', async () => {
      const t = transport();
      await (await t.consume('g', { patterns: ['auth.*'], leaseMs: 1500, member: member() })).close();
      expect(await codeOf(transport({ partitions: 4 }).publish([event()]))).toBe('INVALID_OPTION');
      expect(await codeOf(t.consume('g', { patterns: ['billing.*'], leaseMs: 1500, member: member() }))).toBe('INVALID_OPTION');
    });

    it('refuses a prefix whose subjects another stream holds', async () => {
      const nc = await connect({ servers: NATS_URL! });
      const jsm = await jetstreamManager(nc);
      const mine = `${prefix}_mine`;
      await jsm.streams.add({ name: mine, subjects: [`${prefix}.u.auth.>`] });
      try {
        expect(await codeOf(transport().publish([event()]))).toBe('INVALID_OPTION');
      } finally {
        await jsm.streams.delete(mine);
        await nc.close();
      }
    });

    it('reports intact: false once the stream was lost, then carries events again', async () => {
      const t = transport();
      const a = await t.consume('a', { patterns: ['*'], leaseMs: 1500, member: member() });
      await t.publish([event('auth.user_signed_up', { position: '1:1' })]);
      expect(await t.progress!(['a'])).toEqual({ intact: true, oldestPending: { a: '1:1' } });
      const nc = await connect({ servers: NATS_URL! });
      await (await jetstreamManager(nc)).streams.delete(`${prefix}_events`);
      await nc.close();
      // The group's consumers went with the stream: nothing is said of it until they are back.
      expect(await t.progress!(['a'])).toEqual({ intact: false, oldestPending: {} });
      expect(await t.progress!(['a'])).toEqual({ intact: true, oldestPending: {} });
      // The relay sends again; the member's consumer is re-created from the start of the new stream.
      await t.publish([event('auth.user_signed_up', { position: '1:1' }), event('auth.user_signed_up', { orderingKey: 'k', position: '1:2' })]);
      const deadline = Date.now() + 15_000;
      const got: string[] = [];
      while (got.length < 2 && Date.now() < deadline) {
        for (const d of await a.fetch(10, 500)) {
          got.push(d.position!);
          await d.ack();
        }
      }
      expect(got.sort()).toEqual(['1:1', '1:2']);
      expect(await t.progress!(['a', 'never'])).toEqual({ intact: true, oldestPending: { a: null } });
    });
  });

  it('refuses bad options with INVALID_OPTION', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return EventBusError.is(err) ? err.code : String(err);
      }
      return 'no error';
    };
    expect(code(() => natsTransport({} as never))).toBe('INVALID_OPTION');
    expect(code(() => natsTransport({ servers: NATS_URL!, prefix: 'a.b' }))).toBe('INVALID_OPTION');
    expect(code(() => natsTransport({ servers: NATS_URL!, partitions: 0 }))).toBe('INVALID_OPTION');
    expect(code(() => natsTransport({ servers: NATS_URL!, maxAgeMs: 1000, duplicateWindowMs: 5000 }))).toBe('INVALID_OPTION');
  });

  it('reports TRANSPORT_UNAVAILABLE when no server answers', async () => {
    const t = natsTransport({ servers: 'nats://127.0.0.1:1', connectOptions: { timeout: 500 } });
    await expect(t.publish([])).resolves.toBeUndefined();
    const err = await t.consume('a', { patterns: ['*'], leaseMs: 1000, member: 'm' }).catch((e: unknown) => e);
    expect(EventBusError.is(err, 'TRANSPORT_UNAVAILABLE')).toBe(true);
    await t.close();
  });
});
