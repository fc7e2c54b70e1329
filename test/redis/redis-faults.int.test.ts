/**
 * Faults on a private Redis (redis-server on a free port, no persistence):
 * a member killed with SIGKILL while it holds deliveries, and a restart that
 * loses every key.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { EventBusError, type BaseEvent, type TransportConsumer, type TransportDelivery, type TransportEvent } from '@blawby/event-bus';
import { redisTransport, type RedisTransport } from '@blawby/event-bus/redis';
import { startThrowawayRedis, throwawayRedisUnavailable, type ThrowawayRedis } from './fixtures/throwaway-redis';

const reason = throwawayRedisUnavailable();
const root = fileURLToPath(new URL('../../', import.meta.url));
const workerScript = fileURLToPath(new URL('./fixtures/redis-worker.ts', import.meta.url));
const LEASE_MS = 1000;

let sequence = 0;
function event(orderingKey?: string, position?: string): TransportEvent {
  sequence += 1;
  const envelope = { eventId: `evt_${String(sequence).padStart(4, '0')}`, eventType: 'auth.user_signed_up', payload: { n: sequence } } as unknown as BaseEvent;
  return { event: envelope, ...(orderingKey !== undefined ? { orderingKey } : {}), ...(position !== undefined ? { position } : {}) };
}

/** Fetches (acknowledging each at once) until `count` arrived or `timeoutMs` passed; fetch errors (Redis down) are waited out. */
async function drain(consumer: TransportConsumer, count: number, timeoutMs: number, seen: (batch: TransportDelivery[]) => void = () => {}): Promise<TransportDelivery[]> {
  const got: TransportDelivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < count && Date.now() < deadline) {
    let batch: TransportDelivery[];
    try {
      batch = await consumer.fetch(count - got.length, 300);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    seen(batch);
    for (const d of batch) {
      got.push(d);
      await d.ack();
    }
  }
  return got;
}

describe.skipIf(reason !== null)(`redis transport faults${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let server: ThrowawayRedis;
  const open: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await startThrowawayRedis();
  });

  afterAll(async () => {
    for (const o of open.splice(0).reverse()) await o.close().catch(() => undefined);
    await server?.destroy();
  });

  it('gives a SIGKILLed member\'s deliveries to the survivor: unkeyed after the lease, keyed after the partition lease, in order', async () => {
    const prefix = 'kill';
    const publisher = redisTransport({ url: server.url, prefix });
    open.push(publisher);
    const unkeyed = Array.from({ length: 5 }, () => event());
    const keyed = ['org_a', 'org_b', 'org_c'].flatMap((key) => Array.from({ length: 4 }, () => event(key)));
    // The victim joins first, alone, so it owns every partition.
    const child = spawn(process.execPath, ['--import', 'tsx', workerScript], {
      cwd: root,
      env: { ...process.env, REDIS_URL: server.url, PREFIX: prefix, WORKER: 'victim', LEASE_MS: String(LEASE_MS), EXPECT: '8', WAIT_MS: '15000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const line = async (prefixText: string) => {
      const deadline = Date.now() + 30_000;
      while (!out.includes(prefixText)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`worker said ${JSON.stringify(out)}; stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return out.slice(out.indexOf(prefixText) + prefixText.length).split('\n')[0]!;
    };
    try {
      await line('ready');
      await publisher.publish([...keyed.slice(0, 6), ...unkeyed, ...keyed.slice(6)]);
      const held = JSON.parse(await line('held ')) as { id: string; key: string | null; count: number }[];
      // Every unkeyed event, and the first event of each key (the next ones wait for it).
      expect(held.filter((h) => h.key === null).map((h) => h.id).sort()).toEqual(unkeyed.map((e) => e.event.eventId).sort());
      expect(held.filter((h) => h.key !== null).map((h) => h.id).sort()).toEqual([keyed[0], keyed[4], keyed[8]].map((e) => e!.event.eventId).sort());

      const survivorTransport = redisTransport({ url: server.url, prefix });
      open.push(survivorTransport);
      const survivor = await survivorTransport.consume('g', { patterns: ['*'], leaseMs: LEASE_MS, member: 'survivor' });
      open.push(survivor);
      child.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();

      const perBatch: string[][] = [];
      const got = await drain(survivor, unkeyed.length + keyed.length, 20_000, (batch) => perBatch.push(batch.filter((d) => d.orderingKey).map((d) => d.orderingKey!)));
      expect(Date.now() - killedAt).toBeLessThan(15_000);
      expect(got.filter((d) => !d.orderingKey).map((d) => d.event.eventId).sort()).toEqual(unkeyed.map((e) => e.event.eventId).sort());
      for (const key of ['org_a', 'org_b', 'org_c']) {
        expect(got.filter((d) => d.orderingKey === key).map((d) => d.event.eventId)).toEqual(keyed.filter((e) => e.orderingKey === key).map((e) => e.event.eventId));
      }
      for (const keys of perBatch) expect(new Set(keys).size).toBe(keys.length); // one event of a key at a time
      // Counts: what the victim was handed comes back as the second delivery; what it only read ahead, as the first.
      const heldIds = new Set(held.map((h) => h.id));
      for (const d of got) expect(d.deliveryCount).toBe(heldIds.has(d.event.eventId) ? 2 : 1);
      expect(await survivor.fetch(10, LEASE_MS + 500)).toEqual([]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('after a restart without persistence: publish and consume work again, and progress says intact: false', async () => {
    const prefix = 'restart';
    const transport: RedisTransport = redisTransport({ url: server.url, prefix });
    const publisher = redisTransport({ url: server.url, prefix });
    open.push(transport, publisher);
    const consumer = await transport.consume('g', { patterns: ['*'], leaseMs: LEASE_MS, member: 'm1' });
    open.push(consumer);
    const before = [event(undefined, '1:1'), event('org_a', '1:2'), event(undefined, '1:3')];
    await publisher.publish(before);
    expect(await drain(consumer, 1, 5000)).toHaveLength(1);
    expect(await transport.progress!(['g'])).toMatchObject({ intact: true });

    await server.stop();
    await server.start();

    // Consuming and publishing go on: the consumer makes its group again (Redis lost it) and takes the partitions again.
    const after = [event('org_a', '1:4'), event(undefined, '1:5'), event('org_a', '1:6')];
    let published = false;
    for (let i = 0; i < 50 && !published; i++) {
      published = await publisher.publish(after).then(() => true, () => false);
      if (!published) await new Promise((r) => setTimeout(r, 200));
    }
    expect(published).toBe(true);
    const got = await drain(consumer, after.length, 15_000);
    expect(got.map((d) => d.event.eventId).sort()).toEqual(after.map((e) => e.event.eventId).sort());
    expect(got.filter((d) => d.orderingKey === 'org_a').map((d) => d.event.eventId)).toEqual([after[0]!.event.eventId, after[2]!.event.eventId]);

    // The relay learns that Redis lost what it held (the first three events) and sends again from the storage's heads.
    expect(await transport.progress!(['g'])).toEqual({ intact: false, oldestPending: { g: null } });
    await transport.publish(before.slice(1));
    expect(await transport.progress!(['g'])).toEqual({ intact: true, oldestPending: { g: '1:2' } });
    const again = await drain(consumer, 2, 15_000);
    expect(again.map((d) => d.event.eventId).sort()).toEqual(before.slice(1).map((e) => e.event.eventId).sort());
    expect(await transport.progress!(['g'])).toEqual({ intact: true, oldestPending: { g: null } });
  }, 60_000);

  it('refuses a Redis that may evict the streams (allkeys-*), and warns about volatile-*', async () => {
    const admin = new Redis(server.url);
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (_fields: object, message?: string) => void warnings.push(message ?? '') };
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const refused = redisTransport({ url: server.url, prefix: 'policy' });
      const err = await refused.publish([event()]).catch((e: unknown) => e);
      expect(EventBusError.is(err, 'TRANSPORT_MISCONFIGURED')).toBe(true);
      expect((err as Error).message).toMatch(/maxmemory-policy is "allkeys-lru".*noeviction/);
      await refused.close();

      await admin.config('SET', 'maxmemory-policy', 'volatile-lru');
      const warned = redisTransport({ url: server.url, prefix: 'policy', logger });
      await warned.publish([event()]);
      await warned.close();
      expect(warnings.some((w) => w.includes('maxmemory-policy'))).toBe(true);
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      admin.disconnect();
    }
  });

  it('closes promptly while Redis is down', async () => {
    const transport = redisTransport({ url: server.url, prefix: 'down' });
    const consumer = await transport.consume('g', { patterns: ['*'], leaseMs: LEASE_MS, member: 'm1' });
    const fetching = consumer.fetch(5, 30_000).catch(() => []);
    await server.stop();
    try {
      const started = Date.now();
      await consumer.close();
      await transport.close();
      expect(await fetching).toEqual([]);
      expect(Date.now() - started).toBeLessThan(6000);
    } finally {
      await server.start();
    }
  }, 30_000);
});
