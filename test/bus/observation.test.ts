/**
 * The public observation seam: observers (`bus.observe`, the `observers`
 * option), handler middleware (`bus.use`, `middleware`) and publish
 * middleware (`bus.usePublish`, `publishMiddleware`), on the memory storage.
 */
import { describe, expect, it } from 'vitest';
import {
  createEventBus,
  EventBusError,
  memoryStorage,
  NonRetryableError,
  type BusObserver,
  type DeliverySettledObservation,
  type DeliveryStartedObservation,
  type Storage,
} from '../../src/index';
import { catalog, signup, sleep, testBus } from './fixtures';

/** Records every observation as `[method, observation]`, in order. */
function recorder() {
  const seen: [keyof BusObserver, Record<string, unknown>][] = [];
  const observer: Required<BusObserver> = {
    published: (o) => void seen.push(['published', o as never]),
    deliveryStarted: (o) => void seen.push(['deliveryStarted', o as never]),
    deliverySettled: (o) => void seen.push(['deliverySettled', o as never]),
    retryScheduled: (o) => void seen.push(['retryScheduled', o as never]),
    deadLettered: (o) => void seen.push(['deadLettered', o as never]),
    leaseLost: (o) => void seen.push(['leaseLost', o as never]),
  };
  const of = <T = Record<string, unknown>>(method: keyof BusObserver) =>
    seen.filter(([m]) => m === method).map(([, o]) => o as T);
  return { seen, observer, of };
}

describe('observers', () => {
  it('see a publish, then the delivery start and its settlement with the handler time', async () => {
    const rec = recorder();
    const bus = testBus({ observers: [rec.observer] });
    bus.subscribe('auth.user_signed_up', async () => void (await sleep(20)), { name: 'email.welcome' });
    await bus.start();
    const event = await bus.publish('auth.user_signed_up', signup);
    await bus.idle({ timeoutMs: 2000 });
    await bus.stop();

    expect(rec.seen.map(([m]) => m)).toEqual(['published', 'deliveryStarted', 'deliverySettled']);
    expect(rec.of('published')[0]).toEqual({ event, inTransaction: false });
    const [started] = rec.of<DeliveryStartedObservation>('deliveryStarted');
    expect(started).toMatchObject({ subscriber: 'email.welcome', attempt: 1, event: { eventId: event.eventId } });
    expect(started!.startedAt.getTime()).toBeGreaterThanOrEqual(event.timestamp.getTime());
    const [settled] = rec.of<DeliverySettledObservation>('deliverySettled');
    expect(settled).toMatchObject({ outcome: 'succeeded', subscriber: 'email.welcome', attempt: 1, deliveryId: started!.deliveryId });
    expect(settled!.durationMs).toBeGreaterThanOrEqual(15);
    expect(settled).not.toHaveProperty('error');
  });

  it('see each failed attempt scheduled again, then the dead letter, with the error', async () => {
    const rec = recorder();
    const bus = testBus({ retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } });
    const stop = bus.observe(rec.observer);
    bus.subscribe('billing.payment_failed', () => {
      throw new TypeError('webhook 500');
    }, { name: 'internal.alerts' });
    await bus.start();
    await bus.publish('billing.payment_failed', { amount: 1, error: 'declined' });
    await bus.idle({ timeoutMs: 2000 });
    await bus.stop();
    stop();

    expect(rec.seen.map(([m]) => m)).toEqual([
      'published',
      'deliveryStarted',
      'retryScheduled',
      'deliverySettled',
      'deliveryStarted',
      'deadLettered',
      'deliverySettled',
    ]);
    const settled = rec.of<DeliverySettledObservation>('deliverySettled');
    expect(settled.map((s) => [s.attempt, s.outcome])).toEqual([
      [1, 'retrying'],
      [2, 'dead-lettered'],
    ]);
    expect(settled[0]!.retryAt).toBeInstanceOf(Date);
    expect(settled[0]!.retryAt).toEqual(rec.of('retryScheduled')[0]!.retryAt);
    expect(settled[1]!.error).toMatchObject({ name: 'TypeError', message: 'webhook 500' });
    expect(rec.of('deadLettered')[0]).toMatchObject({ subscriber: 'internal.alerts', attempt: 2, error: { message: 'webhook 500' } });
  });

  it('settle every started attempt exactly once', async () => {
    const rec = recorder();
    const bus = testBus({ observers: [rec.observer], retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 3 } });
    let n = 0;
    bus.subscribe('auth.user_logged_in', () => {
      n += 1;
      if (n % 3 !== 0) throw new Error(`failure ${n}`);
    }, { name: 'flaky' });
    bus.subscribe('auth.user_logged_in', (e) => {
      if (e.payload.sessionId.endsWith('7')) throw new NonRetryableError('no');
    }, { name: 'picky' });
    await bus.start();
    for (let i = 0; i < 20; i++) await bus.publish('auth.user_logged_in', { sessionId: `s${i}` });
    await bus.idle({ timeoutMs: 5000 });
    await bus.stop();

    const key = (o: { deliveryId: string; attempt: number }) => `${o.deliveryId}#${o.attempt}`;
    const started = rec.of<DeliveryStartedObservation>('deliveryStarted').map(key);
    const settled = rec.of<DeliverySettledObservation>('deliverySettled').map(key);
    expect(new Set(started).size).toBe(started.length);
    expect([...settled].sort()).toEqual([...started].sort());
    const stats = bus.stats();
    const outcomes = rec.of<DeliverySettledObservation>('deliverySettled').map((s) => s.outcome);
    expect(outcomes.filter((o) => o === 'succeeded')).toHaveLength(stats.processed);
    expect(outcomes.filter((o) => o === 'retrying')).toHaveLength(stats.retried);
    expect(outcomes.filter((o) => o === 'dead-lettered')).toHaveLength(stats.failed);
    expect(stats.failed).toBeGreaterThan(0);
  });

  it('see a delivery given back as released when the bus stops during its handler', async () => {
    const rec = recorder();
    const bus = testBus({ observers: [rec.observer], dispatch: { shutdownTimeoutMs: 30 } });
    bus.subscribe('auth.user_logged_in', (_e, ctx) =>
      new Promise<void>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    { name: 'slow' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await sleep(20);
    await bus.stop();
    const settled = rec.of<DeliverySettledObservation>('deliverySettled');
    expect(settled.map((s) => s.outcome)).toEqual(['released']);
    expect(settled[0]!.error).toMatchObject({ code: 'BUS_STOPPED' });
    expect((await bus.storage.backlog(['slow'])).due).toBe(1);
  });

  it('see a lease taken over by another worker, and the run settle as lease-lost', async () => {
    const inner = memoryStorage();
    // Lease renewals wait at this gate, so the lease expires and another owner can take it.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const storage = new Proxy(inner, {
      get(target, key) {
        if (key === 'extend') return async (...args: Parameters<Storage['extend']>) => (await gate, target.extend(...args));
        const value = Reflect.get(target, key) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const rec = recorder();
    const bus = createEventBus({ catalog, storage, observers: [rec.observer], dispatch: { leaseMs: 120, pollIntervalMs: 10_000 } });
    bus.subscribe('auth.user_logged_in', (_e, ctx) =>
      new Promise<void>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    { name: 'long' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await sleep(200);
    const taken = await inner.claim({ owner: 'other-worker', subscribers: [{ name: 'long', limit: 1 }], limit: 1, leaseMs: 60_000 });
    expect(taken).toHaveLength(1);
    openGate();
    await sleep(100);
    await bus.stop();

    const lost = rec.of('leaseLost');
    expect(lost).toEqual([expect.objectContaining({ subscriber: 'long', attempt: 1, running: true })]);
    const settled = rec.of<DeliverySettledObservation>('deliverySettled');
    expect(settled.map((s) => s.outcome)).toEqual(['lease-lost']);
    expect(settled[0]!.error).toMatchObject({ code: 'LEASE_LOST' });
  });

  it('stop being called once removed, and cannot change an outcome by throwing', async () => {
    const errors: unknown[] = [];
    const bus = testBus({ onError: (err) => errors.push(err) });
    const kept: string[] = [];
    bus.observe({
      deliverySettled: () => {
        throw new Error('observer bug');
      },
    });
    const remove = bus.observe({ published: (o) => void kept.push(o.event.eventId) });
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'a' });
    await bus.start();
    const first = await bus.publish('auth.user_logged_in', { sessionId: '1' });
    remove();
    remove();
    await bus.publish('auth.user_logged_in', { sessionId: '2' });
    await bus.idle({ timeoutMs: 2000 });
    await bus.stop();
    expect(kept).toEqual([first.eventId]);
    expect(bus.stats().processed).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['observer bug', 'observer bug']);
  });

  it('are refused with INVALID_OPTION when not an object of functions', async () => {
    const bus = testBus();
    expect(() => bus.observe(null as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => bus.observe({ published: 'yes' } as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => testBus({ observers: {} as never })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => bus.use(42 as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => testBus({ publishMiddleware: [null as never] })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    await bus.stop();
  });
});

describe('handler middleware', () => {
  it('wraps every handler, the first outermost, with the event and the handler context', async () => {
    const trail: string[] = [];
    const bus = testBus({
      middleware: [
        async (event, ctx, next) => {
          trail.push(`outer>${ctx.subscriber}:${event.eventType}:${ctx.attempt}`);
          await next();
          trail.push('outer<');
        },
      ],
    });
    bus.use(async (_event, _ctx, next) => {
      trail.push('inner>');
      await next();
      trail.push('inner<');
    });
    bus.subscribe('auth.user_logged_in', () => void trail.push('handler'), { name: 'a' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    await bus.stop();
    expect(trail).toEqual(['outer>a:auth.user_logged_in:1', 'inner>', 'handler', 'inner<', 'outer<']);
  });

  it("sees the handler's failure from next(), and its own throw fails the attempt", async () => {
    const seen: string[] = [];
    const bus = testBus({ retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } });
    bus.use(async (_event, ctx, next) => {
      try {
        await next();
      } catch (err) {
        seen.push(`${ctx.subscriber}: ${(err as Error).message}`);
        throw err;
      }
    });
    const refuse = bus.use(async (event, _ctx, next) => {
      if (event.eventType === 'org.created') throw new NonRetryableError('refused by middleware');
      await next();
    });
    bus.subscribe('auth.user_logged_in', () => {
      throw new Error('handler broke');
    }, { name: 'a' });
    bus.subscribe('org.created', () => undefined, { name: 'b' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.publish('org.created', { organizationName: 'O' });
    await bus.idle({ timeoutMs: 2000 });
    const letters = await bus.deadLetters.list();
    expect(letters.map((l) => [l.subscriber, l.attempts, l.error.message]).sort()).toEqual([
      ['a', 2, 'handler broke'],
      ['b', 1, 'refused by middleware'],
    ]);
    expect(seen.sort()).toEqual(['a: handler broke', 'a: handler broke', 'b: refused by middleware']);
    // Removed: later runs skip it.
    refuse();
    await bus.publish('org.created', { organizationName: 'P' });
    await bus.idle({ timeoutMs: 2000 });
    expect(await bus.deadLetters.list({ subscriber: 'b' })).toHaveLength(1);
    await bus.stop();
  });

  it('may skip the handler (the delivery succeeds) but may not call next() twice', async () => {
    let runs = 0;
    const bus = testBus({ retry: { attempts: 1 } });
    bus.use(async (event, _ctx, next) => {
      if (event.eventType === 'org.created') return; // filtered out
      await next();
      if (event.eventType === 'auth.user_logged_in') await next();
    });
    bus.subscribe(['org.created', 'auth.user_logged_in'], () => void (runs += 1), { name: 'a' });
    await bus.start();
    await bus.publish('org.created', { organizationName: 'O' });
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    await bus.stop();
    expect(runs).toBe(1);
    const [letter] = await bus.deadLetters.list();
    expect(letter).toMatchObject({ eventType: 'auth.user_logged_in', error: { code: 'INVALID_OPTION' } });
    expect(bus.stats()).toMatchObject({ processed: 1, failed: 1 });
  });
});

describe('publish middleware', () => {
  it('sees the validated events before they are stored, and may add metadata that is stored', async () => {
    const seen: string[][] = [];
    const bus = testBus({
      publishMiddleware: [
        async (publish, next) => {
          seen.push(publish.events.map((e) => e.eventType));
          for (const event of publish.events) publish.setMetadata(event, { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` });
          expect(() => publish.setMetadata({ ...publish.events[0]! }, { x: 'y' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
          expect(() => publish.setMetadata(publish.events[0]!, { x: 1 as never })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
          expect(publish.inTransaction).toBe(false);
          await next();
        },
      ],
    });
    const handled: unknown[] = [];
    bus.subscribe('*', (e) => void handled.push(e.metadata.traceparent), { name: 'a' });
    await bus.start();
    await bus.publish('org.created', { organizationName: 'O' });
    await bus.publishMany([
      { type: 'auth.user_logged_in', payload: { sessionId: 's' } },
      { type: 'auth.user_signed_up', payload: signup },
    ]);
    await expect(bus.publish('org.created', { organizationName: 42 } as never)).rejects.toMatchObject({ code: 'EVENT_VALIDATION_FAILED' });
    await bus.idle({ timeoutMs: 2000 });
    await bus.stop();
    expect(seen).toEqual([['org.created'], ['auth.user_logged_in', 'auth.user_signed_up']]);
    const stored = (await bus.timeline()).events;
    expect(stored).toHaveLength(3);
    expect(new Set(stored.map((e) => e.metadata.traceparent))).toEqual(new Set([`00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`]));
    expect(handled).toHaveLength(3);
  });

  it('stores nothing and rejects with INVALID_OPTION when a middleware does not call next()', async () => {
    const bus = testBus();
    const remove = bus.usePublish(async () => undefined);
    const err = await bus.publish('org.created', { organizationName: 'O' }).catch((e: unknown) => e);
    expect(EventBusError.is(err, 'INVALID_OPTION')).toBe(true);
    expect((await bus.timeline()).events).toHaveLength(0);
    remove();
    await bus.publish('org.created', { organizationName: 'O' });
    expect((await bus.timeline()).events).toHaveLength(1);
    await bus.stop();
  });

  it("rejects the publish with the middleware's error", async () => {
    const bus = testBus({ publishMiddleware: [async () => Promise.reject(new Error('quota exceeded'))] });
    await expect(bus.publish('org.created', { organizationName: 'O' })).rejects.toThrow('quota exceeded');
    expect((await bus.timeline()).events).toHaveLength(0);
    await bus.stop();
  });
});
