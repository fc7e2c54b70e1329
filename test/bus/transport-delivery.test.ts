/**
 * The core with a cross-process transport: deliveries come from the broker's
 * consumer groups, one per subscriber name, while retries, dead letters,
 * redrive and replay stay the bus's. The broker here is the in-process
 * transport presented as cross-process (two buses on it act as two
 * processes); the Redis and NATS suites run the same paths on real brokers.
 */
import { describe, expect, it } from 'vitest';
import { NonRetryableError } from '../../src/index';
import { brokerStandIn } from '../transport/broker-stand-in';
import { signup, sleep, testBus } from './fixtures';

async function eventually(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Polls `read` until `done` holds for its result. */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

const user = (i: number) => ({ ...signup, email: `u${i}@example.com` });

describe('delivery from a cross-process transport', () => {
  it('shares a subscriber name\'s work across processes, and gives every name every event', async () => {
    const transport = brokerStandIn();
    const a = testBus({ transport });
    const b = testBus({ transport });
    const welcome: string[] = [];
    const audit: string[] = [];
    for (const bus of [a, b]) bus.subscribe('auth.user_signed_up', async (e) => void welcome.push(e.eventId), { name: 'email.welcome' });
    a.subscribe('auth.*', async (e) => void audit.push(e.eventId), { name: 'audit' });
    await Promise.all([a.start(), b.start()]);
    const published = [];
    for (let i = 0; i < 30; i++) published.push((await (i % 2 ? a : b).publish('auth.user_signed_up', user(i))).eventId);
    await eventually(() => welcome.length >= 30 && audit.length >= 30);
    await a.idle({ timeoutMs: 5000 });
    await b.idle({ timeoutMs: 5000 });
    expect([...welcome].sort()).toEqual([...published].sort());
    expect([...audit].sort()).toEqual([...published].sort());
    await Promise.all([a.stop(), b.stop()]);
  });

  it('retries with the bus\'s own schedule and attempt count, then records the dead letter; redrive runs it again', async () => {
    const transport = brokerStandIn();
    const bus = testBus({ transport, retry: { attempts: 3, minDelayMs: 20, maxDelayMs: 20 } });
    const attempts: number[] = [];
    let heal = false;
    bus.subscribe(
      'auth.user_signed_up',
      async (_e, ctx) => {
        attempts.push(ctx.attempt);
        if (!heal) throw new Error('smtp down');
      },
      { name: 'email.welcome' },
    );
    await bus.start();
    const event = await bus.publish('auth.user_signed_up', signup);
    await eventually(() => attempts.length === 3);
    const dead = await until(() => bus.deadLetters.list(), (d) => d.length === 1);
    expect(attempts).toEqual([1, 2, 3]);
    expect(dead[0]).toMatchObject({ eventId: event.eventId, subscriber: 'email.welcome', attempts: 3 });
    expect(dead[0]!.error.message).toContain('smtp down');
    heal = true;
    expect(await bus.deadLetters.redrive(dead[0]!.id)).toBe(1);
    await eventually(() => attempts.length === 4);
    expect(await bus.deadLetters.list()).toEqual([]);
    await bus.stop();
  });

  it('dead-letters at once on NonRetryableError, and keeps a key\'s later events behind a retrying one', async () => {
    const transport = brokerStandIn();
    const bus = testBus({ transport, retry: { attempts: 5, minDelayMs: 30, maxDelayMs: 30 } });
    const order: string[] = [];
    let failedOnce = false;
    bus.subscribe(
      'org.created',
      async (e) => {
        if (e.payload.organizationName === 'poison') throw new NonRetryableError('bad data');
        if (e.payload.organizationName === 'first' && !failedOnce) {
          failedOnce = true;
          throw new Error('flaky');
        }
        order.push(e.payload.organizationName);
      },
      { name: 'crm.sync' },
    );
    await bus.start();
    await bus.publish('org.created', { organizationName: 'first' }, { orderingKey: 'org_1' });
    await bus.publish('org.created', { organizationName: 'second' }, { orderingKey: 'org_1' });
    await bus.publish('org.created', { organizationName: 'poison' });
    await eventually(() => order.length === 2);
    expect(order).toEqual(['first', 'second']);
    const dead = await until(() => bus.deadLetters.list(), (d) => d.length === 1);
    expect(dead.map((d) => d.attempts)).toEqual([1]);
    await bus.stop();
  });

  it('replays stored events to the chosen subscriber only', async () => {
    const transport = brokerStandIn();
    const bus = testBus({ transport });
    const seen = { welcome: 0, audit: 0 };
    bus.subscribe('auth.user_signed_up', async () => void (seen.welcome += 1), { name: 'email.welcome' });
    bus.subscribe('auth.*', async () => void (seen.audit += 1), { name: 'audit' });
    await bus.start();
    for (let i = 0; i < 3; i++) await bus.publish('auth.user_signed_up', user(i));
    await eventually(() => seen.welcome === 3 && seen.audit === 3);
    expect(await bus.replay({ subscribers: ['audit'] })).toBe(3);
    await eventually(() => seen.audit === 6);
    await sleep(100);
    expect(seen.welcome).toBe(3);
    await bus.stop();
  });

  it('keeps the leases of deliveries fetched ahead while slow handlers run: no other process runs them too', async () => {
    const transport = brokerStandIn();
    const dispatch = { concurrency: 1, leaseMs: 300 };
    const slow = testBus({ transport, dispatch });
    const other = testBus({ transport, dispatch });
    const runs = new Map<string, number>();
    for (const bus of [slow, other]) {
      bus.subscribe('auth.user_signed_up', async (e) => {
        runs.set(e.eventId, (runs.get(e.eventId) ?? 0) + 1);
        await sleep(bus === slow ? 200 : 0);
      }, { name: 'email.welcome' });
    }
    await slow.start();
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push((await slow.publish('auth.user_signed_up', user(i))).eventId);
    await eventually(() => runs.size >= 1);
    await other.start(); // a second process that would take any delivery whose lease ran out
    await eventually(() => runs.size === 6, 10_000);
    await sleep(400);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    await Promise.all([slow.stop(), other.stop()]);
  });

  it('hands back what a stopping process fetched but did not run, for another to run', async () => {
    const transport = brokerStandIn();
    const slow = testBus({ transport, dispatch: { concurrency: 1 } });
    const ran: string[] = [];
    slow.subscribe('auth.user_signed_up', async (e) => {
      await sleep(50);
      ran.push(e.eventId);
    }, { name: 'email.welcome' });
    await slow.start();
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push((await slow.publish('auth.user_signed_up', user(i))).eventId);
    await eventually(() => ran.length >= 1);
    await slow.stop();
    const other = testBus({ transport });
    other.subscribe('auth.user_signed_up', async (e) => void ran.push(e.eventId), { name: 'email.welcome' });
    await other.start();
    await eventually(() => new Set(ran).size === 10);
    expect(new Set(ran)).toEqual(new Set(ids));
    await other.stop();
  });
});
