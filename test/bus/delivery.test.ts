import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, NonRetryableError, RetryAfterError } from '../../src/index';
import { captureEvents, waitForDelivery } from '../../src/testing/index';
import { signup, sleep, testBus } from './fixtures';

describe('delivery', () => {
  it('retries each subscriber on its own: a failing one never re-runs another', async () => {
    const bus = testBus({ retry: { attempts: 4, minDelayMs: 1, maxDelayMs: 5 } });
    const calls = { welcome: 0, slack: 0, analytics: 0 };
    bus.subscribe('auth.user_signed_up', () => void (calls.welcome += 1), { name: 'email.welcome' });
    bus.subscribe(
      'auth.user_signed_up',
      (_event, ctx) => {
        calls.slack += 1;
        if (ctx.attempt < 3) throw new Error(`slack down (${ctx.attempt})`);
      },
      { name: 'internal.slack' },
    );
    bus.subscribe('*', () => void (calls.analytics += 1), { name: 'analytics.track_all' });
    await bus.start();
    await bus.publish('auth.user_signed_up', signup);
    await bus.idle({ timeoutMs: 5000 });
    expect(calls).toEqual({ welcome: 1, slack: 3, analytics: 1 });
    const stats = bus.stats();
    expect(stats).toMatchObject({ published: 1, processed: 3, retried: 2, failed: 0, inFlight: 0 });
    expect(stats.byType['auth.user_signed_up']).toMatchObject({ processed: 3, retried: 2 });
    const [event] = (await bus.timeline()).events;
    expect(event!.processed).toBe(true);
    expect(event!.retryCount).toBe(2);
    await bus.stop();
  });

  it('dead-letters after the last attempt with the error and stack, and redrives', async () => {
    const bus = testBus({ retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 2 } });
    let fail = true;
    let calls = 0;
    bus.subscribe(
      'billing.payment_failed',
      () => {
        calls += 1;
        if (fail) throw new TypeError('webhook 500');
      },
      { name: 'internal.alerts' },
    );
    await bus.start();
    const event = await bus.publish('billing.payment_failed', { amount: 10, error: 'card_declined' });
    const outcome = await waitForDelivery(bus, { subscriber: 'internal.alerts' });
    expect(outcome.kind).toBe('dead-lettered');
    expect(calls).toBe(3);
    const [dl] = await bus.deadLetters.list();
    expect(dl).toMatchObject({ eventId: event.eventId, subscriber: 'internal.alerts', attempts: 3 });
    expect(dl!.error).toMatchObject({ name: 'TypeError', message: 'webhook 500' });
    expect(dl!.error.stack).toContain('TypeError: webhook 500');
    expect((await bus.health()).deadLetters).toBe(1);
    expect(bus.stats().failed).toBe(1);

    fail = false;
    expect(await bus.deadLetters.redrive(dl!.id)).toBe(1);
    await bus.idle({ timeoutMs: 5000 });
    expect(calls).toBe(4);
    expect(await bus.deadLetters.list()).toHaveLength(0);
    await bus.stop();
  });

  it('dead-letters at once on NonRetryableError', async () => {
    const bus = testBus({ retry: { attempts: 5, minDelayMs: 1, maxDelayMs: 2 } });
    let calls = 0;
    bus.subscribe(
      'auth.user_logged_in',
      () => {
        calls += 1;
        throw new NonRetryableError('user deleted');
      },
      { name: 'audit' },
    );
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 5000 });
    expect(calls).toBe(1);
    const [dl] = await bus.deadLetters.list();
    expect(dl).toMatchObject({ attempts: 1, error: { name: 'NonRetryableError', code: 'NON_RETRYABLE' } });
    expect(await bus.deadLetters.discard(dl!.id)).toBe(true);
    expect(await bus.deadLetters.list()).toHaveLength(0);
    await bus.stop();
  });

  it('waits as long as RetryAfterError asks', async () => {
    const bus = testBus({ retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5000 } });
    const times: number[] = [];
    bus.subscribe(
      'auth.user_logged_in',
      () => {
        times.push(Date.now());
        if (times.length === 1) throw new RetryAfterError(300);
      },
      { name: 'rate-limited' },
    );
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 5000 });
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(280);
    await bus.stop();
  });

  it('waits what RetryAfterError says even past maxDelayMs, and treats a negative or NaN delay as none', async () => {
    const bus = testBus({ retry: { attempts: 4, minDelayMs: 1, maxDelayMs: 10 } });
    const times: number[] = [];
    const asks = [new RetryAfterError(NaN), new RetryAfterError(-50), new RetryAfterError(300)];
    bus.subscribe('auth.user_logged_in', () => {
      times.push(Date.now());
      const ask = asks.shift();
      if (ask) throw ask;
    }, { name: 'rate-limited' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 5000 });
    expect(times).toHaveLength(4);
    expect(times[3]! - times[2]!).toBeGreaterThanOrEqual(280);
    expect(new RetryAfterError(1.2).delayMs).toBe(2);
    expect(new RetryAfterError(Infinity).delayMs).toBe(MAX_RETRY_AFTER_MS);
    await bus.stop();
  });

  it('gives handlers a context: attempt, stable deliveryId, logger, signal, and a publish that links causes', async () => {
    const bus = testBus({ retry: { attempts: 2, minDelayMs: 1, maxDelayMs: 2 } });
    const seen: { attempt: number; deliveryId: string; aborted: boolean; subscriber: string }[] = [];
    bus.subscribe(
      'auth.user_signed_up',
      async (event, ctx) => {
        seen.push({ attempt: ctx.attempt, deliveryId: ctx.deliveryId, aborted: ctx.signal.aborted, subscriber: ctx.subscriber });
        ctx.logger.info({ email: event.payload.email }, 'handling');
        if (ctx.attempt === 1) throw new Error('first try fails');
        await ctx.publish('org.created', { organizationName: 'Ada Law' }, { actor: event.actor });
      },
      { name: 'onboarding.create_org' },
    );
    const captured = captureEvents(bus);
    await bus.start();
    const root = await bus.publish('auth.user_signed_up', signup, { actor: 'user_1' });
    await bus.idle({ timeoutMs: 5000 });
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(seen[0]!.deliveryId).toBe(seen[1]!.deliveryId);
    expect(seen.every((s) => !s.aborted && s.subscriber === 'onboarding.create_org')).toBe(true);
    const [child] = captured.ofType('org.created');
    expect(child!.metadata).toMatchObject({ causationId: root.eventId, correlationId: root.eventId });
    expect(child!.actor).toBe('user_1');
    captured.stop();
    await bus.stop();
  });

  it('delivers by pattern: exact type, domain.*, *, and lists', async () => {
    const bus = testBus();
    const got: Record<string, string[]> = { exact: [], domain: [], all: [], list: [] };
    bus.subscribe('auth.user_logged_in', (e) => void got.exact!.push(e.eventType), { name: 'exact' });
    bus.subscribe('billing.*', (e) => void got.domain!.push(e.eventType), { name: 'domain' });
    bus.subscribe('*', (e) => void got.all!.push(e.eventType), { name: 'all' });
    bus.subscribe(['org.created', 'auth.*'], (e) => void got.list!.push(e.eventType), { name: 'list' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.publish('billing.payment_failed', { amount: 1, error: 'x' });
    await bus.publish('org.created', { organizationName: 'o' });
    await bus.idle({ timeoutMs: 5000 });
    expect(got.exact).toEqual(['auth.user_logged_in']);
    expect(got.domain).toEqual(['billing.payment_failed']);
    expect(got.all!.sort()).toEqual(['auth.user_logged_in', 'billing.payment_failed', 'org.created']);
    expect(got.list!.sort()).toEqual(['auth.user_logged_in', 'org.created']);
    await bus.stop();
  });

  it('never runs more handlers at once than the subscriber and the bus allow', async () => {
    const bus = testBus({ dispatch: { concurrency: 3 } });
    const running = { a: 0, b: 0, all: 0 };
    const peak = { a: 0, b: 0, all: 0 };
    const track = (name: 'a' | 'b') => async () => {
      running[name] += 1;
      running.all += 1;
      peak[name] = Math.max(peak[name], running[name]);
      peak.all = Math.max(peak.all, running.all);
      await sleep(5);
      running[name] -= 1;
      running.all -= 1;
    };
    bus.subscribe('auth.user_logged_in', track('a'), { name: 'a', concurrency: 2 });
    bus.subscribe('auth.user_logged_in', track('b'), { name: 'b' });
    await bus.start();
    await bus.publishMany(Array.from({ length: 30 }, (_, i) => ({ type: 'auth.user_logged_in' as const, payload: { sessionId: `s${i}` } })));
    await bus.idle({ timeoutMs: 10_000 });
    expect(bus.stats().processed).toBe(60);
    expect(peak.a).toBe(2);
    expect(peak.all).toBe(3);
    await bus.stop();
  });

  it('refuses a missing or repeated subscriber name and unknown patterns', () => {
    const bus = testBus();
    expect(() => bus.subscribe('auth.user_logged_in', () => undefined, {} as never)).toThrow(/name/);
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'a' });
    expect(() => bus.subscribe('auth.user_logged_in', () => undefined, { name: 'a' })).toThrow(
      expect.objectContaining({ code: 'DUPLICATE_SUBSCRIBER' }),
    );
    expect(() => bus.subscribe('nope.thing_done' as never, () => undefined, { name: 'b' })).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_EVENT_TYPE' }),
    );
    expect(() => bus.subscribe('nope.*' as never, () => undefined, { name: 'c' })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    return bus.stop();
  });

  it('delivers events published before start, and to subscribers added after start', async () => {
    const bus = testBus();
    const got: string[] = [];
    bus.subscribe('auth.user_logged_in', (e) => void got.push(`early:${e.payload.sessionId}`), { name: 'early' });
    await bus.publish('auth.user_logged_in', { sessionId: 'before' });
    await bus.start();
    await bus.idle({ timeoutMs: 5000 });
    // 'before' is processed now: a new name gets only what is not yet processed, never history.
    bus.subscribe('auth.user_logged_in', (e) => void got.push(`late:${e.payload.sessionId}`), { name: 'late' });
    await sleep(20);
    await bus.publish('auth.user_logged_in', { sessionId: 'after' });
    await bus.idle({ timeoutMs: 5000 });
    expect(got.sort()).toEqual(['early:after', 'early:before', 'late:after']);
    await bus.stop();
  });

  it('holds a deliverAt event until its time, and idle() does not wait for it', async () => {
    const bus = testBus();
    const ran: number[] = [];
    bus.subscribe('auth.user_logged_in', () => void ran.push(Date.now()), { name: 'reminder' });
    await bus.start();
    const due = Date.now() + 250;
    await bus.publish('auth.user_logged_in', { sessionId: 's' }, { deliverAt: new Date(due) });
    await bus.idle({ timeoutMs: 100 });
    expect(ran).toHaveLength(0);
    await waitForDelivery(bus, { subscriber: 'reminder' }, { timeoutMs: 2000 });
    expect(ran[0]!).toBeGreaterThanOrEqual(due - 5);
    await bus.stop();
  });

  it('keeps one ordering key in publish order while an earlier event retries', async () => {
    const bus = testBus({ retry: { attempts: 3, minDelayMs: 20, maxDelayMs: 40 }, dispatch: { concurrency: 10 } });
    const order: string[] = [];
    let failedOnce = false;
    bus.subscribe(
      'auth.user_logged_in',
      (e) => {
        if (e.payload.sessionId === 's1' && !failedOnce) {
          failedOnce = true;
          throw new Error('retry me');
        }
        order.push(e.payload.sessionId);
      },
      { name: 'ordered' },
    );
    await bus.start();
    for (const id of ['s1', 's2', 's3']) await bus.publish('auth.user_logged_in', { sessionId: id }, { orderingKey: 'org_1' });
    await bus.idle({ timeoutMs: 5000 });
    expect(order).toEqual(['s1', 's2', 's3']);
    await bus.stop();
  });

  it('upcasts stored events of an older version before handlers see them', async () => {
    const bus = testBus();
    const got: unknown[] = [];
    bus.subscribe('billing.payment_received', (e) => void got.push([e.eventVersion, e.payload]), { name: 'receipts' });
    await bus.start();
    // An event stored by an older release of the service, at version 1.0.0.
    await bus.storage.append([
      {
        event: {
          eventId: '018f0000-0000-7000-8000-000000000001',
          eventType: 'billing.payment_received',
          eventVersion: '1.0.0',
          timestamp: new Date(),
          payload: { amount: 12.5, currency: 'usd' },
          metadata: { source: 'api', environment: 'test' },
          processed: false,
          retryCount: 0,
        },
      },
    ]);
    await bus.idle({ timeoutMs: 5000 });
    expect(got).toEqual([['2.0.0', { amountCents: 1250, currency: 'usd' }]]);
    await bus.stop();
  });

  it('dead-letters a stored event that no longer fits its schema instead of crashing the handler', async () => {
    const bus = testBus();
    let calls = 0;
    bus.subscribe('billing.payment_received', () => void (calls += 1), { name: 'receipts' });
    await bus.start();
    await bus.storage.append([
      {
        event: {
          eventId: '018f0000-0000-7000-8000-000000000002',
          eventType: 'billing.payment_received',
          eventVersion: '0.9.0',
          timestamp: new Date(),
          payload: { total: 'lots' },
          metadata: { source: 'api', environment: 'test' },
          processed: false,
          retryCount: 0,
        },
      },
    ]);
    await bus.idle({ timeoutMs: 5000 });
    const [dl] = await bus.deadLetters.list();
    expect(calls).toBe(0);
    expect(dl).toMatchObject({ subscriber: 'receipts', error: { code: 'NON_RETRYABLE' } });
    await bus.stop();
  });
});
