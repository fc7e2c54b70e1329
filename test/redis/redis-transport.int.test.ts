/**
 * The transport contract on the shared Redis (REDIS_URL), each test on its
 * own key prefix, plus what is particular to Redis: option checks, the
 * eviction-policy refusal, a client the user passes, trimming.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBusError, type BaseEvent, type TransportEvent } from '@blawby/event-bus';
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

  const factory = async (namespace: string) => {
    const prefix = `eb-test:${namespace}`;
    prefixes.add(prefix);
    return redisTransport({ url: REDIS_URL!, prefix });
  };
  describeTransportContract('redis', factory);

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

  /** A fresh prefix of this file, deleted at the end. */
  const freshPrefix = (name: string) => {
    const prefix = `eb-test:${name}-${process.pid}-${Date.now()}`;
    prefixes.add(prefix);
    return prefix;
  };
  const signup = (n: number, orderingKey?: string, position?: string): TransportEvent => ({
    event: { eventId: `evt_${n}`, eventType: 'auth.user_signed_up' } as unknown as BaseEvent,
    ...(orderingKey !== undefined ? { orderingKey } : {}),
    ...(position !== undefined ? { position } : {}),
  });
  async function until<T>(what: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const got = await what();
      if (got !== undefined) return got;
    }
    return undefined;
  }

  it('gives a leaving owner\'s keyed deliveries to the other member at once, in order, and honours a retry delay across the handover', async () => {
    const prefix = freshPrefix('handover');
    const t1 = redisTransport({ url: REDIS_URL!, prefix, partitions: 1 });
    const t2 = redisTransport({ url: REDIS_URL!, prefix, partitions: 1 });
    try {
      const owner = await t1.consume('a', { patterns: ['*'], leaseMs: 5000, member: 'owner' });
      const other = await t2.consume('a', { patterns: ['*'], leaseMs: 5000, member: 'other' });
      await t1.publish([signup(1, 'k'), signup(2, 'k'), signup(3, 'j')]);
      const first = await owner.fetch(5, 1000);
      expect(first.map((d) => d.event.eventId).sort()).toEqual(['evt_1', 'evt_3']);
      expect(await other.fetch(5, 300)).toEqual([]); // the only partition is the owner's
      await first.find((d) => d.event.eventId === 'evt_3')!.ack();
      const asked = Date.now();
      await first.find((d) => d.event.eventId === 'evt_1')!.retry(1500);
      await owner.close(); // well inside the 5 s lease: the other member takes over at once, not when it runs out
      const again = await until(async () => {
        const got = await other.fetch(5, 200);
        return got.length ? got : undefined;
      }, 4000);
      expect(Date.now() - asked).toBeGreaterThanOrEqual(1450);
      expect(again?.map((d) => [d.event.eventId, d.deliveryCount])).toEqual([['evt_1', 2]]);
      await again![0]!.ack();
      const next = await other.fetch(5, 1000);
      expect(next.map((d) => [d.event.eventId, d.deliveryCount])).toEqual([['evt_2', 1]]);
      await next[0]!.ack();
    } finally {
      await t1.close();
      await t2.close();
    }
  });

  it('has a new owner read a long pending list page by page, keeping each key in order', async () => {
    const prefix = freshPrefix('pages');
    const t1 = redisTransport({ url: REDIS_URL!, prefix, partitions: 1 });
    const t2 = redisTransport({ url: REDIS_URL!, prefix, partitions: 1 });
    try {
      const owner = await t1.consume('a', { patterns: ['*'], leaseMs: 900, member: 'owner' });
      const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
      const sent = Array.from({ length: 450 }, (_, i) => signup(i, keys[i % keys.length]));
      await t1.publish(sent);
      // The owner reads all of them ahead (holding the first of each key), then leaves.
      const firsts = await owner.fetch(10, 1000);
      expect(firsts.map((d) => d.event.eventId)).toEqual(['evt_0', 'evt_1', 'evt_2', 'evt_3', 'evt_4']);
      for (let i = 0; i < 3; i++) expect(await owner.fetch(10, 50)).toEqual([]); // each reads another 200 ahead
      expect((await admin!.xpending(`${prefix}:stream:key:0`, 'a'))[0]).toBe(450);
      await owner.close();
      const next = await t2.consume('a', { patterns: ['*'], leaseMs: 900, member: 'next' });
      const seen = new Map<string, string[]>();
      const deadline = Date.now() + 20_000;
      let total = 0;
      while (total < sent.length && Date.now() < deadline) {
        const batch = await next.fetch(10, 300);
        expect(new Set(batch.map((d) => d.orderingKey)).size).toBe(batch.length);
        for (const d of batch) {
          seen.set(d.orderingKey!, [...(seen.get(d.orderingKey!) ?? []), d.event.eventId]);
          expect(d.deliveryCount).toBe(Number(d.event.eventId.slice(4)) < 5 ? 2 : 1);
          total += 1;
        }
        await Promise.all(batch.map((d) => d.ack()));
      }
      for (const key of keys) {
        expect(seen.get(key)).toEqual(sent.filter((e) => e.orderingKey === key).map((e) => e.event.eventId));
      }
    } finally {
      await t1.close();
      await t2.close();
    }
  });

  it('shares the key partitions fairly: a member joining later gets its share within about a lease', async () => {
    const prefix = freshPrefix('share');
    const t1 = redisTransport({ url: REDIS_URL!, prefix, partitions: 4 });
    const t2 = redisTransport({ url: REDIS_URL!, prefix, partitions: 4 });
    try {
      await t1.consume('a', { patterns: ['*'], leaseMs: 600, member: 'first' });
      const owners = async () => Promise.all([0, 1, 2, 3].map((i) => admin!.get(`${prefix}:group:a:lease:${i}`)));
      expect((await owners()).every((o) => o?.startsWith('first:'))).toBe(true);
      await t2.consume('a', { patterns: ['*'], leaseMs: 600, member: 'second' });
      const shared = await until(async () => {
        const o = await owners();
        await new Promise((r) => setTimeout(r, 50));
        return o.filter((x) => x?.startsWith('second:')).length === 2 && o.filter((x) => x?.startsWith('first:')).length === 2 ? o : undefined;
      }, 3000);
      expect(shared).toBeDefined();
    } finally {
      await t1.close();
      await t2.close();
    }
  });

  it('reports progress over the keyed and unordered streams in publish order, counting only the group\'s own types', async () => {
    const prefix = freshPrefix('progress');
    const t = redisTransport({ url: REDIS_URL!, prefix });
    try {
      const billing = await t.consume('billing', { patterns: ['billing.*'], leaseMs: 1000, member: 'b1' });
      const all = await t.consume('all', { patterns: ['*'], leaseMs: 1000, member: 'a1' });
      const invoice = { event: { eventId: 'evt_inv', eventType: 'billing.invoice_paid' } as never, orderingKey: 'org_9', position: '5:4' };
      await t.publish([signup(1, 'org_1', '5:1'), signup(2, undefined, '5:2'), signup(3, 'org_2', '5:3'), invoice]);
      expect(await t.progress!(['billing', 'all', 'nobody'])).toEqual({ intact: true, oldestPending: { billing: '5:4', all: '5:1' } }); // 'nobody' never joined: left out
      const got = await until(async () => {
        const d = await all.fetch(10, 200);
        return d.length ? d : undefined;
      }, 3000);
      // Acknowledge the keyed org_1 event only: the oldest left is the unordered one, then org_2's.
      await got!.find((d) => d.event.eventId === 'evt_1')!.ack();
      expect((await t.progress!(['all'])).oldestPending).toEqual({ all: '5:2' });
      const [inv] = await billing.fetch(5, 1000);
      expect(inv!.event.eventId).toBe('evt_inv');
      await inv!.ack();
      expect((await t.progress!(['billing'])).oldestPending).toEqual({ billing: null });
    } finally {
      await t.close();
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
