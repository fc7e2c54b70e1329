import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createEventBus, memoryStorage, RetryAfterError } from '../../src/index';
import { captureEvents, waitForDelivery, waitForEvent } from '../../src/testing/index';
import { catalog, signup, sleep, testBus } from './fixtures';

describe('lifecycle', () => {
  it('stop() lets in-flight handlers finish and is idempotent', async () => {
    const bus = testBus({ dispatch: { shutdownTimeoutMs: 2000 } });
    let finished = false;
    bus.subscribe(
      'auth.user_logged_in',
      async () => {
        await sleep(150);
        finished = true;
      },
      { name: 'slow' },
    );
    await bus.start();
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await sleep(20);
    await Promise.all([bus.stop(), bus.stop()]);
    expect(finished).toBe(true);
    expect(bus.stats().processed).toBe(1);
  });

  it('lets handlers that are draining during stop() still publish what they caused', async () => {
    const bus = testBus({ dispatch: { shutdownTimeoutMs: 2000 } });
    const captured = captureEvents(bus);
    bus.subscribe(
      'auth.user_signed_up',
      async (event, ctx) => {
        await sleep(100);
        await ctx.publish('org.created', { organizationName: `${event.payload.name} Law` });
      },
      { name: 'onboarding' },
    );
    await bus.start();
    await bus.publish('auth.user_signed_up', signup);
    await sleep(20);
    await bus.stop();
    expect(captured.ofType('org.created')).toHaveLength(1);
    expect(bus.stats()).toMatchObject({ processed: 1, retried: 0 });
    await expect(bus.publish('org.created', { organizationName: 'x' })).rejects.toMatchObject({ code: 'BUS_STOPPED' });
  });

  it('stop() aborts handlers past the timeout and gives their claims back without spending an attempt', async () => {
    const storage = memoryStorage();
    const first = createEventBus({ catalog, storage, dispatch: { shutdownTimeoutMs: 100 } });
    let sawAbort = false;
    first.subscribe(
      'auth.user_logged_in',
      (_e, ctx) =>
        new Promise<void>((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            reject(ctx.signal.reason);
          });
        }),
      { name: 'stuck' },
    );
    await first.start();
    await first.publish('auth.user_logged_in', { sessionId: 's' });
    await sleep(20);
    // Keep the shared storage open for the second bus: stop() closes storage, which is a no-op for memory.
    await first.stop();
    expect(sawAbort).toBe(true);
    expect(await storage.backlog(['stuck'])).toEqual({ due: 1, leased: 0, retrying: 0, scheduled: 0 });

    const second = createEventBus({ catalog, storage });
    const attempts: number[] = [];
    second.subscribe('auth.user_logged_in', (_e, ctx) => void attempts.push(ctx.attempt), { name: 'stuck' });
    await second.start();
    await second.idle({ timeoutMs: 2000 });
    expect(attempts).toEqual([1]);
    await second.stop();
  });

  it('idle() refuses to wait for work when the bus was never started', async () => {
    const bus = testBus();
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'a' });
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await expect(bus.idle()).rejects.toMatchObject({ code: 'BUS_NOT_STARTED' });
    await bus.stop();
  });

  it('idle() times out with a coded error while a retry is still waiting', async () => {
    const bus = testBus({ retry: { attempts: 2 } });
    // A fixed delay (backoff's full jitter could pick a tiny one and let the retry run at once).
    bus.subscribe('auth.user_logged_in', () => {
      throw new RetryAfterError(5000);
    }, { name: 'a' });
    await bus.start();
    const retrying = waitForDelivery(bus, { subscriber: 'a', outcome: 'retrying' });
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await retrying;
    expect(await bus.storage.backlog(['a'])).toEqual({ due: 0, leased: 0, retrying: 1, scheduled: 0 });
    await expect(bus.idle({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'IDLE_TIMEOUT' });
    await bus.stop();
  });

  it('renews the lease of a handler that outlives it, so no other worker runs it meanwhile', async () => {
    const storage = memoryStorage();
    const options = { catalog, storage, dispatch: { leaseMs: 150, pollIntervalMs: 20 } };
    const a = createEventBus(options);
    const b = createEventBus(options);
    const runs: string[] = [];
    a.subscribe('auth.user_logged_in', async () => {
      runs.push('a');
      await sleep(500);
    }, { name: 'long' });
    b.subscribe('auth.user_logged_in', async () => void runs.push('b'), { name: 'long' });
    await a.start();
    await a.publish('auth.user_logged_in', { sessionId: 's' });
    await sleep(20);
    await b.start();
    await a.idle({ timeoutMs: 3000 });
    expect(runs).toEqual(['a']);
    await a.stop();
    await b.stop();
  });

  it('reports health with the seed threshold and its options', async () => {
    const bus = testBus({ health: { maxUnprocessed: 2 } });
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'a' });
    expect(await bus.health()).toEqual({ status: 'healthy', unprocessed: 0, deadLetters: 0, oldestPendingAgeMs: null, healthy: true, warnings: [] });
    await bus.publish('auth.user_logged_in', { sessionId: '1' });
    await bus.publish('auth.user_logged_in', { sessionId: '2' });
    await sleep(10);
    const health = await bus.health();
    expect(health).toMatchObject({ status: 'unhealthy', unprocessed: 2, healthy: false });
    expect(health.oldestPendingAgeMs).toBeGreaterThanOrEqual(0);
    await bus.start();
    await bus.idle({ timeoutMs: 2000 });
    expect((await bus.health()).healthy).toBe(true);
    await bus.stop();
  });

  it('replays history to a chosen subscriber', async () => {
    const bus = testBus();
    const got: string[] = [];
    bus.subscribe('auth.user_logged_in', (e) => void got.push(e.payload.sessionId), { name: 'projection' });
    bus.subscribe('*', () => undefined, { name: 'other' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 'a' }, { actor: 'u1' });
    await bus.publish('auth.user_logged_in', { sessionId: 'b' }, { actor: 'u2' });
    await bus.idle({ timeoutMs: 2000 });
    expect(await bus.replay({ subscribers: ['projection'], actor: 'u1' })).toBe(1);
    await bus.idle({ timeoutMs: 2000 });
    expect(got).toEqual(['a', 'b', 'a']);
    await expect(bus.replay({ eventTypes: ['nope.x_done' as never] })).rejects.toMatchObject({ code: 'UNKNOWN_EVENT_TYPE' });
    await bus.stop();
  });

  it('pages the timeline newest first and checks its query', async () => {
    const bus = testBus();
    for (let i = 0; i < 5; i++) await bus.publish('auth.user_logged_in', { sessionId: `s${i}` }, { organizationId: 'org_1' });
    await bus.publish('org.created', { organizationName: 'x' }, { organizationId: 'org_2' });
    const page1 = await bus.timeline({ organizationId: 'org_1', limit: 3 });
    const page2 = await bus.timeline({ organizationId: 'org_1', limit: 3, cursor: page1.nextCursor! });
    expect([...page1.events, ...page2.events].map((e) => (e.payload as { sessionId: string }).sessionId)).toEqual([
      's4',
      's3',
      's2',
      's1',
      's0',
    ]);
    expect(page2.nextCursor).toBeNull();
    await expect(bus.timeline({ limit: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'limit' });
    await expect(bus.timeline({ cursor: 'garbage' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await bus.stop();
  });

  it('retireSubscriber lets events held by a deleted handler complete', async () => {
    const bus = testBus();
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'kept' });
    await bus.storage.register([{ name: 'deleted.handler', patterns: ['*'] }]);
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    expect((await bus.health()).unprocessed).toBe(1);
    await bus.retireSubscriber('deleted.handler');
    expect((await bus.health()).unprocessed).toBe(0);
    await bus.stop();
  });

  it('runs a transactional subscriber only on a storage with transactions, else dead-letters it with the reason', async () => {
    const bus = testBus();
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'tx', transactional: true });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    const [dl] = await bus.deadLetters.list();
    expect(dl!.error.message).toMatch(/transactional.*no transactions/);
    await bus.stop();
  });

  it('logs through the pino logger it is given, with the delivery bound', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const bus = testBus({ logger: pino({ level: 'debug' }, sink), retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 1 } });
    bus.subscribe('auth.user_signed_up', () => {
      throw new Error('smtp down');
    }, { name: 'email.welcome' });
    await bus.start();
    await bus.publish('auth.user_signed_up', signup);
    await bus.idle({ timeoutMs: 2000 });
    await bus.stop();
    const deadLettered = lines.find((l) => l.msg === 'handler failed; delivery dead-lettered');
    expect(deadLettered).toMatchObject({ subscriber: 'email.welcome', eventType: 'auth.user_signed_up', attempt: 2 });
  });

  it('start() rides out a storage that is briefly unavailable', async () => {
    const storage = memoryStorage();
    let failures = 2;
    const register = storage.register.bind(storage);
    // Fault injection on the real memory storage: the first two registrations fail like a database still booting.
    storage.register = async (subs) => {
      if (failures-- > 0) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      return register(subs);
    };
    const bus = createEventBus({ catalog, storage });
    const got: string[] = [];
    bus.subscribe('auth.user_logged_in', (e) => void got.push(e.payload.sessionId), { name: 'a' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    expect(got).toEqual(['s']);
    expect(failures).toBe(-1);
    await bus.stop();
  });

  it('waitForEvent rejects with a coded error on timeout', async () => {
    const bus = testBus();
    await expect(waitForEvent(bus, 'org.created', { timeoutMs: 30 })).rejects.toMatchObject({ code: 'IDLE_TIMEOUT' });
    const waiting = waitForEvent(bus, 'org.created');
    await bus.publish('org.created', { organizationName: 'o' });
    expect((await waiting).payload.organizationName).toBe('o');
    await bus.stop();
  });
});
