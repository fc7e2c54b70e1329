/**
 * The warnings of `bus.health()` that the core finds for every storage:
 * dead letters waiting, and a subscriber name nobody runs that still has work.
 */
import { describe, expect, it } from 'vitest';
import { memoryStorage, NonRetryableError } from '../../src/index';
import type { Storage } from '../../src/index';
import { coreWarnings } from '../../src/bus/health-warnings';
import { sleep, testBus } from './fixtures';

describe('health warnings', () => {
  it('has none on a bus with nothing wrong', async () => {
    const bus = testBus();
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'fine' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: '1' });
    await bus.idle();
    expect((await bus.health()).warnings).toEqual([]);
    await bus.stop();
  });

  it('reports dead letters waiting, with their count, without making the bus unhealthy', async () => {
    const bus = testBus();
    bus.subscribe('auth.user_logged_in', () => {
      throw new NonRetryableError('no');
    }, { name: 'broken' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: '1' });
    await bus.publish('auth.user_logged_in', { sessionId: '2' });
    await bus.idle();
    const health = await bus.health();
    expect(health.healthy).toBe(true);
    expect(health.warnings).toEqual([
      { code: 'DEAD_LETTERS_WAITING', count: 2, message: expect.stringContaining('2 dead letters waiting') },
    ]);
    await bus.stop();
  });

  it('reports a subscriber name no process has registered lately that still has deliveries waiting', async () => {
    const storage: Storage = memoryStorage();
    // A name registered by an earlier deployment, whose handler is gone.
    await storage.register([{ name: 'email.legacy', patterns: ['auth.*'] }]);
    const bus = testBus({ storage, health: { staleSubscriberMs: 50 } });
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'live' });
    await bus.start();
    await bus.publish('auth.user_logged_in', { sessionId: '1' });
    await bus.idle();
    await sleep(80);
    const stale = (await bus.health()).warnings.filter((w) => w.code === 'SUBSCRIBER_STALE');
    expect(stale).toEqual([
      {
        code: 'SUBSCRIBER_STALE',
        subscriber: 'email.legacy',
        count: 1,
        ageMs: expect.any(Number),
        message: expect.stringContaining('retire the name'),
      },
    ]);
    expect(stale[0]!.ageMs).toBeGreaterThanOrEqual(50);
    await bus.retireSubscriber('email.legacy');
    expect((await bus.health()).warnings).toEqual([]);
    await bus.stop();
  });

  it('leaves out a stale name with nothing pending, and a fresh one with work', () => {
    const now = Date.now();
    const entry = { due: 0, leased: 0, retrying: 0, scheduled: 0, oldestPendingAgeMs: null };
    const warnings = coreWarnings(
      { unprocessed: 1, deadLetters: 0, oldestPendingAgeMs: 10 },
      [
        { ...entry, subscriber: 'idle', lastSeenAt: new Date(now - 3_600_000) },
        { ...entry, subscriber: 'busy', due: 5, lastSeenAt: new Date(now - 1000) },
        { ...entry, subscriber: 'gone', retrying: 2, lastSeenAt: new Date(now - 3_600_000) },
      ],
      60_000,
      now,
    );
    expect(warnings.map((w) => [w.code, w.subscriber, w.count])).toEqual([['SUBSCRIBER_STALE', 'gone', 2]]);
  });

  it('still answers when a warnings query fails, leaving those warnings out', async () => {
    const inner = memoryStorage();
    const storage: Storage = Object.assign(Object.create(inner) as Storage, {
      backlogBySubscriber: () => Promise.reject(new Error('view missing')),
      warnings: () => Promise.reject(new Error('permission denied')),
    });
    const bus = testBus({ storage });
    const health = await bus.health();
    expect(health).toMatchObject({ healthy: true, warnings: [] });
    await bus.stop();
  });
});
