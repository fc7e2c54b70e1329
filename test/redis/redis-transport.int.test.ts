/**
 * The transport contract on the shared Redis (REDIS_URL), each test on its
 * own key prefix, plus what is particular to Redis: option checks, the
 * eviction-policy refusal, a client the user passes, trimming.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBusError } from '@blawby/event-bus';
import { redisTransport } from '@blawby/event-bus/redis';
import { describeTransportContract } from '../contract/transport.contract';
import { deletePrefix } from './fixtures/keys';

const REDIS_URL = process.env.REDIS_URL;
const reason = 'REDIS_URL is not set';

describe.skipIf(!REDIS_URL)(`redis transport${REDIS_URL ? '' : ` (skipped: ${reason})`}`, () => {
  const admin = REDIS_URL ? new Redis(REDIS_URL) : undefined;
  const prefixes = new Set<string>();

  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(admin!, prefix);
    admin?.disconnect();
  });

  describeTransportContract('redis', async (namespace) => {
    const prefix = `eb-test:${namespace}`;
    prefixes.add(prefix);
    return redisTransport({ url: REDIS_URL!, prefix });
  });

  it('refuses options it cannot use, with coded errors', () => {
    const invalid = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return EventBusError.is(err, 'INVALID_OPTION') ? err.option : 'other error';
      }
      return 'no error';
    };
    expect(invalid(() => redisTransport({} as never))).toBe('url');
    expect(invalid(() => redisTransport({ url: REDIS_URL!, client: admin! } as never))).toBe('url');
    expect(invalid(() => redisTransport({ url: REDIS_URL!, partitions: 0 }))).toBe('partitions');
    expect(invalid(() => redisTransport({ url: REDIS_URL!, prefix: '' }))).toBe('prefix');
  });

  it('refuses a consumer with bad options, and a prefix set up with another partition count', async () => {
    const prefix = `eb-test:opts-${process.pid}-${Date.now()}`;
    prefixes.add(prefix);
    const t = redisTransport({ url: REDIS_URL!, prefix, partitions: 4 });
    const other = redisTransport({ url: REDIS_URL!, prefix, partitions: 8 });
    try {
      await expect(t.consume('a', { patterns: [], leaseMs: 1000, member: 'm' })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'patterns' });
      await expect(t.consume('a', { patterns: ['*'], leaseMs: 0, member: 'm' })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'leaseMs' });
      await t.publish([]);
      await t.progress!(['a']);
      await expect(other.publish([])).resolves.toBeUndefined(); // nothing to send: does not connect
      await expect(other.progress!(['a'])).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'partitions' });
    } finally {
      await t.close();
      await other.close();
    }
  });

  it('uses a client the user passes and leaves it open on close', async () => {
    const prefix = `eb-test:client-${process.pid}-${Date.now()}`;
    prefixes.add(prefix);
    const client = new Redis(REDIS_URL!, { protocol: 2 }); // the other protocol than the default, to cover both reply shapes
    const t = redisTransport({ client, prefix });
    try {
      const consumer = await t.consume('a', { patterns: ['*'], leaseMs: 1000, member: 'm1' });
      await t.publish([{ event: { eventId: 'evt_1', eventType: 'auth.user_signed_up' } as never, orderingKey: 'k' }, { event: { eventId: 'evt_2', eventType: 'auth.user_signed_up' } as never }]);
      const got = [];
      for (let i = 0; i < 10 && got.length < 2; i++) got.push(...(await consumer.fetch(5, 300)));
      expect(got.map((d) => d.event.eventId).sort()).toEqual(['evt_1', 'evt_2']);
      await Promise.all(got.map((d) => d.ack()));
      await consumer.close();
      await t.close();
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });

  it('trims what every group has acknowledged, and keeps what one still needs', async () => {
    const prefix = `eb-test:trim-${process.pid}-${Date.now()}`;
    prefixes.add(prefix);
    const t = redisTransport({ url: REDIS_URL!, prefix, partitions: 1 });
    try {
      const a = await t.consume('a', { patterns: ['*'], leaseMs: 1000, member: 'a1' });
      const b = await t.consume('b', { patterns: ['*'], leaseMs: 1000, member: 'b1' });
      await t.publish(Array.from({ length: 4 }, (_, i) => ({ event: { eventId: `evt_${i}`, eventType: 'auth.user_signed_up' } as never })));
      const gotA = await a.fetch(4, 1000);
      await Promise.all(gotA.map((d) => d.ack()));
      const gotB = await b.fetch(4, 1000);
      expect(gotB).toHaveLength(4);
      await gotB[0]!.ack();
      await gotB[1]!.ack();
      expect(await t.trim()).toBe(2); // b still needs the last two
      expect(await admin!.xlen(`${prefix}:stream:unordered`)).toBe(2);
      await gotB[2]!.ack();
      await gotB[3]!.ack();
      expect(await t.trim()).toBe(2);
      expect(await admin!.xlen(`${prefix}:stream:unordered`)).toBe(0);
    } finally {
      await t.close();
    }
  });
});
