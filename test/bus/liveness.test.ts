/**
 * Liveness: a handler that never settles cannot hold a delivery (time limits),
 * `stop()` returns within its timeout whatever handlers do, and failing
 * handlers are visible without a logger.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createEventBus, EventBusError, HandlerTimeoutError, memoryStorage } from '../../src/index';
import { waitForDelivery } from '../../src/testing/index';
import { catalog, sleep, testBus } from './fixtures';

const never = () => new Promise<void>(() => undefined);

describe('handler time limits', () => {
  it('aborts a handler past subscribe({ timeoutMs }) through ctx.signal and fails the attempt with HANDLER_TIMEOUT', async () => {
    const bus = testBus({ retry: { attempts: 2 } });
    const reasons: unknown[] = [];
    bus.subscribe('auth.user_logged_in', (_event, ctx) => {
      ctx.signal.addEventListener('abort', () => reasons.push(ctx.signal.reason));
      // The first attempt ignores its signal and never settles; the retry succeeds.
      return ctx.attempt === 1 ? never() : undefined;
    }, { name: 'stuck', timeoutMs: 100 });
    await bus.start();
    const retrying = waitForDelivery(bus, { subscriber: 'stuck', outcome: 'retrying' });
    const started = Date.now();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    const outcome = await retrying;
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(outcome).toMatchObject({ kind: 'retrying', attempt: 1, error: { code: 'HANDLER_TIMEOUT', name: 'HandlerTimeoutError' } });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(HandlerTimeoutError);
    expect(reasons[0]).toMatchObject({ subscriber: 'stuck', timeoutMs: 100 });
    await bus.idle({ timeoutMs: 2000 });
    expect(bus.stats()).toMatchObject({ processed: 1, retried: 1, failed: 0, inFlight: 0 });
    await bus.stop();
  });

  it('applies dispatch.handlerTimeoutMs to every subscriber, dead-letters after the last attempt, and ignores a late result', async () => {
    const bus = testBus({ retry: { attempts: 1 }, dispatch: { handlerTimeoutMs: 50 } });
    let lateFinished = false;
    bus.subscribe('auth.user_logged_in', async () => {
      await sleep(200); // ignores its signal, then "succeeds" too late
      lateFinished = true;
    }, { name: 'slow' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    const [dl] = await bus.deadLetters.list({ subscriber: 'slow' });
    expect(dl!.error).toMatchObject({ code: 'HANDLER_TIMEOUT' });
    await sleep(250);
    expect(lateFinished).toBe(true);
    expect(await bus.deadLetters.list({ subscriber: 'slow' })).toHaveLength(1);
    expect(bus.stats()).toMatchObject({ processed: 0, failed: 1 });
    await bus.stop();
  });

  it('frees the slot of a timed-out handler, so others run meanwhile', async () => {
    const bus = testBus({ dispatch: { concurrency: 1 } });
    const done: string[] = [];
    bus.subscribe('auth.user_logged_in', (event) => (event.payload.sessionId === 'hang' ? never() : void done.push(event.payload.sessionId)), {
      name: 'one-at-a-time',
      timeoutMs: 80,
      retry: { attempts: 1 },
    });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 'hang' });
    await bus.publish('auth.user_logged_in', { sessionId: 'next' });
    await bus.idle({ timeoutMs: 2000 });
    expect(done).toEqual(['next']);
    await bus.stop();
  });

  it('refuses time limits that are not integers from 1 to 2^31 - 1', async () => {
    for (const handlerTimeoutMs of [0, 1.5, 2 ** 31, -1]) {
      expect(() => createEventBus({ catalog, dispatch: { handlerTimeoutMs } })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', option: 'dispatch.handlerTimeoutMs' }),
      );
    }
    const bus = testBus();
    for (const timeoutMs of [0, NaN, 2 ** 31, '10' as never]) {
      expect(() => bus.subscribe('org.created', () => undefined, { name: 'x', timeoutMs })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', option: 'timeoutMs' }),
      );
    }
    await bus.stop();
  });
});

describe('stop() within its timeout', () => {
  it('returns within stop({ timeoutMs }) even when a handler ignores its signal, and gives the claim back unspent', async () => {
    const storage = memoryStorage();
    const bus = createEventBus({ catalog, storage, dispatch: { shutdownTimeoutMs: 10_000 } });
    let aborted = false;
    bus.subscribe('auth.user_logged_in', (_e, ctx) => {
      ctx.signal.addEventListener('abort', () => (aborted = true));
      return never();
    }, { name: 'stubborn' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await sleep(20);
    const started = Date.now();
    await bus.stop({ timeoutMs: 300 });
    const took = Date.now() - started;
    expect(took).toBeLessThanOrEqual(360); // 300 ms and timer slack on a loaded machine (it took over 1.3 s before)
    expect(took).toBeGreaterThanOrEqual(200); // it waited for the handler most of the time
    expect(aborted).toBe(true);
    expect(await storage.backlog(['stubborn'])).toEqual({ due: 1, leased: 0, retrying: 0, scheduled: 0 });

    const next = createEventBus({ catalog, storage });
    const attempts: number[] = [];
    next.subscribe('auth.user_logged_in', (_e, ctx) => void attempts.push(ctx.attempt), { name: 'stubborn' });
    await next.start();
    await next.idle({ timeoutMs: 2000 });
    expect(attempts).toEqual([1]);
    await next.stop();
  });

  it('bounds stop() by dispatch.shutdownTimeoutMs when given no timeout, and a second call joins the first', async () => {
    const bus = createEventBus({ catalog, dispatch: { shutdownTimeoutMs: 250 } });
    bus.subscribe('auth.user_logged_in', () => never(), { name: 'stubborn' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await sleep(20);
    const started = Date.now();
    await Promise.all([bus.stop(), bus.stop({ timeoutMs: 5 })]);
    expect(Date.now() - started).toBeLessThanOrEqual(310);
  });

  it('refuses a bad timeoutMs with a coded error', async () => {
    const bus = testBus();
    for (const timeoutMs of [-1, 1.5, NaN]) {
      await expect(bus.stop({ timeoutMs })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'timeoutMs' });
    }
    await expect(bus.stop(null as never)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await bus.stop({ timeoutMs: 0 });
  });
});

describe('failing handlers without a logger', () => {
  function warningsWhile(): { warnings: (Error & { code?: string; detail?: string })[]; stop: () => void } {
    const warnings: (Error & { code?: string; detail?: string })[] = [];
    const listener = (w: Error) => void warnings.push(w);
    process.on('warning', listener);
    return { warnings, stop: () => void process.off('warning', listener) };
  }

  it('reports the first failure of each subscriber as a process warning, with the error and its stack', async () => {
    const seen = warningsWhile();
    const bus = testBus({ retry: { attempts: 3 } });
    bus.subscribe('auth.user_logged_in', () => {
      // The quick start's typo: a ReferenceError, retried.
      throw new ReferenceError('sendWelcomeEmail is not defined');
    }, { name: 'email.welcome' });
    bus.subscribe('auth.user_logged_in', () => {
      throw new Error('other');
    }, { name: 'audit.log' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    await sleep(10); // warnings are emitted on the next tick
    seen.stop();
    const ours = seen.warnings.filter((w) => w.code === 'EVENT_BUS_HANDLER_FAILED');
    expect(ours.map((w) => w.name)).toEqual(['EventBusWarning', 'EventBusWarning']);
    const welcome = ours.find((w) => w.message.includes('"email.welcome"'))!;
    expect(welcome.message).toMatch(/ReferenceError: sendWelcomeEmail is not defined/);
    expect(welcome.message).toMatch(/retried/);
    expect(welcome.detail).toMatch(/liveness\.test\.ts/);
    expect(ours.some((w) => w.message.includes('"audit.log"'))).toBe(true);
    expect(bus.stats().failed).toBe(2); // 3 attempts each, 2 dead letters, still only 2 warnings
    await bus.stop();
  });

  it('stays quiet when the bus has a logger, which gets every failure instead', async () => {
    const seen = warningsWhile();
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => void (lines.push(String(chunk)), done()) });
    const bus = testBus({ logger: pino(sink), retry: { attempts: 2 } });
    bus.subscribe('auth.user_logged_in', () => {
      throw new Error('x');
    }, { name: 'logged' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: 's' });
    await bus.idle({ timeoutMs: 2000 });
    await sleep(10);
    seen.stop();
    expect(seen.warnings.filter((w) => w.code === 'EVENT_BUS_HANDLER_FAILED')).toEqual([]);
    expect(lines.filter((l) => l.includes('handler failed'))).toHaveLength(2);
    expect(EventBusError.is(new HandlerTimeoutError('a', 1), 'HANDLER_TIMEOUT')).toBe(true);
    await bus.stop();
  });
});
