/**
 * The storage contract: every behaviour the `Storage` port promises, written
 * once and run against every adapter (memory, Postgres on postgres.js, Postgres
 * on PGlite). Capability flags choose the tests that apply.
 *
 * Usage, in an adapter's test file:
 * ```ts
 * describeStorageContract('memory', async () => ({ storage: memoryStorage() }));
 * ```
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BaseEvent } from '../../src/envelope';
import { EventBusError } from '../../src/errors';
import type { InvalidOptionError } from '../../src/errors';
import type { AppendInput, ClaimOptions, Storage, TimelineQuery } from '../../src/ports/storage';
import { uuidv7 } from '../../src/uuidv7';

/** A fresh, empty storage for one test, and how to dispose of it. */
export interface StorageUnderTest {
  storage: Storage;
  /** Called after the test (after `storage.close()`): drop databases, schemas... */
  cleanup?: () => Promise<void>;
}

export type StorageFactory = () => Promise<StorageUnderTest>;

let counter = 0;

/** A valid envelope for tests. */
export function makeEvent(type = 'auth.user_signed_up', overrides: Partial<BaseEvent> = {}): BaseEvent {
  counter += 1;
  const now = Date.now();
  return {
    eventId: uuidv7(now),
    eventType: type,
    eventVersion: '1.0.0',
    timestamp: new Date(now),
    actor: 'user_1',
    actorType: 'user',
    organizationId: 'org_1',
    payload: { n: counter, email: 'a@example.com' },
    metadata: { source: 'test', environment: 'test', requestId: `req_${counter}` },
    processed: false,
    retryCount: 0,
    ...overrides,
  };
}

/**
 * Cursors in the base64url shape every storage issues that `issued`'s storage
 * cannot have written: made-up text, every digit of `issued` turned into a 9
 * (month 99, or a position past the newest event), and, when `issued` holds a
 * date and time, the same cursor with an impossible date (February 30) or time
 * (25:61:61).
 */
export function forgedCursors(issued: string): string[] {
  const text = Buffer.from(issued, 'base64url').toString();
  const variants = [
    'not-a-cursor-at-all',
    text.replace(/\d/g, '9'),
    text.replace(/\d{4}-\d\d-\d\d/, '2025-02-30'),
    text.replace(/\d\d:\d\d:\d\d/, '25:61:61'),
  ];
  return [...new Set(variants.filter((variant) => variant !== text))].map((v) => Buffer.from(v).toString('base64url'));
}

function input(type?: string, overrides: Partial<BaseEvent> = {}, extra: Omit<AppendInput, 'event'> = {}): AppendInput {
  return { event: makeEvent(type, overrides), ...extra };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function claimFor(owner: string, names: string[], limit = 100, leaseMs = 30_000): ClaimOptions {
  return { owner, subscribers: names.map((name) => ({ name, limit })), limit, leaseMs };
}

export function describeStorageContract(name: string, factory: StorageFactory): void {
  describe(`Storage contract: ${name}`, () => {
    let storage: Storage;
    let current: StorageUnderTest;

    beforeEach(async () => {
      current = await factory();
      storage = current.storage;
    });

    afterEach(async () => {
      await storage.close();
      await current.cleanup?.();
    });

    async function processedOf(eventId: string): Promise<boolean | undefined> {
      const page = await storage.timeline({ limit: 1000 });
      return page.events.find((e) => e.eventId === eventId)?.processed;
    }

    describe('append and register', () => {
      it('stores the envelope as given and hands it to matching subscribers only', async () => {
        await storage.register([
          { name: 'auth-only', patterns: ['auth.*'] },
          { name: 'billing-only', patterns: ['billing.payment_failed'] },
        ]);
        const signup = input('auth.user_signed_up', { payload: { email: 'x@y.z', nested: { a: [1, 2] } } });
        const { events } = await storage.append([signup, input('billing.payment_failed')]);
        expect(events.map((e) => e.eventId)).toEqual([signup.event.eventId, expect.any(String)]);

        const claimed = await storage.claim(claimFor('w1', ['auth-only']));
        expect(claimed).toHaveLength(1);
        const got = claimed[0]!;
        expect(got.subscriber).toBe('auth-only');
        expect(got.attempt).toBe(1);
        expect(got.event.eventId).toBe(signup.event.eventId);
        expect(got.event.eventType).toBe('auth.user_signed_up');
        expect(got.event.eventVersion).toBe('1.0.0');
        expect(got.event.timestamp.getTime()).toBe(signup.event.timestamp.getTime());
        expect(got.event.actor).toBe('user_1');
        expect(got.event.actorType).toBe('user');
        expect(got.event.organizationId).toBe('org_1');
        expect(got.event.payload).toEqual({ email: 'x@y.z', nested: { a: [1, 2] } });
        expect(got.event.metadata).toEqual(signup.event.metadata);
        expect(got.leaseExpiresAt.getTime()).toBeGreaterThan(Date.now());

        const billing = await storage.claim(claimFor('w1', ['billing-only']));
        expect(billing.map((d) => d.event.eventType)).toEqual(['billing.payment_failed']);
      });

      it('marks an event no registered subscriber matches as processed at once', async () => {
        await storage.register([{ name: 'auth-only', patterns: ['auth.*'] }]);
        const { events } = await storage.append([input('billing.payment_failed')]);
        expect(await processedOf(events[0]!.eventId)).toBe(true);
        expect((await storage.health()).unprocessed).toBe(0);
      });

      it('keeps events published before any subscriber exists for the first subscribers', async () => {
        const { events } = await storage.append([input('auth.user_signed_up')]);
        expect(await processedOf(events[0]!.eventId)).toBe(false);
        await storage.register([{ name: 'late', patterns: ['*'] }]);
        const claimed = await storage.claim(claimFor('w1', ['late']));
        expect(claimed.map((d) => d.event.eventId)).toEqual([events[0]!.eventId]);
      });

      it('gives a new subscriber the unprocessed events, never processed history', async () => {
        await storage.register([{ name: 'first', patterns: ['*'] }]);
        const { events } = await storage.append([input(), input()]);
        const [done] = await storage.claim(claimFor('w1', ['first'], 1));
        expect(await storage.complete(done!)).toBe(true);

        await storage.register([{ name: 'second', patterns: ['*'] }]);
        const claimed = await storage.claim(claimFor('w1', ['second']));
        expect(claimed.map((d) => d.event.eventId)).toEqual([events[1]!.eventId]);
      });

      it('registers idempotently', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([input()]);
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        expect(await storage.claim(claimFor('w1', ['a']))).toHaveLength(1);
      });

      it('stores an idempotency key once and returns the first event', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const first = input('auth.user_signed_up', {}, { idempotencyKey: 'key-1' });
        const again = input('auth.user_signed_up', {}, { idempotencyKey: 'key-1' });
        const r1 = await storage.append([first]);
        const r2 = await storage.append([again]);
        expect(r2.events[0]!.eventId).toBe(r1.events[0]!.eventId);
        const inOneBatch = await storage.append([
          input('auth.user_signed_up', {}, { idempotencyKey: 'key-2' }),
          input('auth.user_signed_up', {}, { idempotencyKey: 'key-2' }),
        ]);
        expect(inOneBatch.events[1]!.eventId).toBe(inOneBatch.events[0]!.eventId);
        const claimed = await storage.claim(claimFor('w1', ['a']));
        expect(claimed).toHaveLength(2);
        expect((await storage.timeline({ limit: 100 })).events).toHaveLength(2);
      });

      it('refuses a repeated idempotency key with another event type or organization, storing nothing of the append', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const first = input('auth.user_signed_up', { organizationId: 'org_1' }, { idempotencyKey: 'shared-key' });
        await storage.append([first]);
        const key = (overrides: Partial<BaseEvent>, type = 'auth.user_signed_up', idempotencyKey = 'shared-key') =>
          input(type, overrides, { idempotencyKey });
        const conflicts: [string, AppendInput[]][] = [
          ['another organization', [key({ organizationId: 'org_2' })]],
          ['another event type', [key({ organizationId: 'org_1' }, 'billing.payment_failed')]],
          ['no organization', [key({ organizationId: undefined })]],
          ['after a valid input of the same append', [input(), key({ organizationId: 'org_2' })]],
          [
            'twice in one append',
            [key({ organizationId: 'org_1' }, 'auth.user_signed_up', 'batch-key'), key({ organizationId: 'org_2' }, 'auth.user_signed_up', 'batch-key')],
          ],
        ];
        for (const [why, inputs] of conflicts) {
          const err = await storage.append(inputs).then(() => undefined, (e: unknown) => e);
          expect(EventBusError.is(err, 'IDEMPOTENCY_CONFLICT'), why).toBe(true);
        }
        expect((await storage.timeline({ limit: 100 })).events.map((e) => e.eventId)).toEqual([first.event.eventId]);
        expect(await storage.claim(claimFor('w1', ['a']))).toHaveLength(1);
        // The same organization and type (another actor, say) still gets the first event back.
        const again = await storage.append([key({ organizationId: 'org_1', actor: 'user_2' })]);
        expect(again.events[0]!.eventId).toBe(first.event.eventId);
      });
    });

    describe('payload fidelity', () => {
      it('gives back exactly the strings and JSON values it was given, in payload, metadata, actor, organization and keys', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        // Strings at the edges of what PostgreSQL stores: astral characters (surrogate pairs), escapes, JSON-looking text.
        const text = 'Ada 🦄 "quoted" \\ back\\slash \n tab\t é 中文 {"not":"json"} \u007f';
        const payload = { text, n: [0, -1.5, 2 ** 53 - 1, 1e-7], nested: { empty: {}, list: [], nil: null, yes: true } };
        const appended = input('auth.user_signed_up', {
          payload,
          actor: `user ${text}`,
          organizationId: `org ${text}`,
          metadata: { source: 'test', environment: 'test', requestId: text, extra: { deep: [text] } },
        }, { idempotencyKey: `key 🦄 ${counter}`, orderingKey: `order 🦄 ${counter}` });
        await storage.append([appended]);
        const [claimed] = await storage.claim(claimFor('w1', ['a']));
        for (const event of [claimed!.event, (await storage.timeline({ limit: 10 })).events[0]!]) {
          expect(event.payload).toEqual(payload);
          expect(event.metadata).toEqual(appended.event.metadata);
          expect(event.actor).toBe(`user ${text}`);
          expect(event.organizationId).toBe(`org ${text}`);
        }
        const again = await storage.append([{ ...input('auth.user_signed_up', { organizationId: `org ${text}` }), idempotencyKey: appended.idempotencyKey }]);
        expect(again.events[0]!.eventId).toBe(appended.event.eventId);
      });

      it('keeps payload and metadata as JSON carries them (a Date becomes its ISO string, undefined properties go)', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const at = new Date('2026-01-02T03:04:05.678Z');
        await storage.append([input('auth.user_signed_up', {
          payload: { at, gone: undefined, kept: 1 } as never,
          metadata: { source: 'test', environment: 'test', at } as never,
        })]);
        const [claimed] = await storage.claim(claimFor('w1', ['a']));
        expect(claimed!.event.payload).toEqual({ at: '2026-01-02T03:04:05.678Z', kept: 1 });
        expect(Object.keys(claimed!.event.payload)).not.toContain('gone');
        expect(claimed!.event.metadata.at).toBe('2026-01-02T03:04:05.678Z');
      });

      it('hands every reader its own envelope: changing one changes no other read', async () => {
        await storage.register([
          { name: 'a', patterns: ['*'] },
          { name: 'b', patterns: ['*'] },
        ]);
        const { events } = await storage.append([input('auth.user_signed_up', { actor: 'user_1' })]);
        events[0]!.actor = 'changed by the publisher';
        const claimed = await storage.claim(claimFor('w1', ['a', 'b']));
        expect(claimed).toHaveLength(2);
        claimed[0]!.event.actor = 'changed by a handler';
        expect(claimed[1]!.event.actor).toBe('user_1');
        const page = await storage.timeline({ limit: 10 });
        expect(page.events[0]!.actor).toBe('user_1');
        page.events[0]!.actor = 'changed by a reader';
        expect((await storage.timeline({ limit: 10 })).events[0]!.actor).toBe('user_1');
      });

      it('holds a deliverAt at both ends of the range the bus accepts (years 0001 and 9999)', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const past = input('auth.user_signed_up', {}, { deliverAt: new Date('0001-01-01T00:00:00.000Z') });
        const future = input('auth.user_signed_up', {}, { deliverAt: new Date('9999-12-31T23:59:59.999Z') });
        await storage.append([past, future]);
        const claimed = await storage.claim(claimFor('w1', ['a']));
        expect(claimed.map((d) => d.event.eventId)).toEqual([past.event.eventId]);
        expect(await storage.backlog(['a'])).toEqual({ due: 0, leased: 1, retrying: 0, scheduled: 1 });
      });
    });

    describe('claim and leases', () => {
      it('hands each delivery to one owner at a time, even when claims race', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append(Array.from({ length: 40 }, () => input()));
        const claims = await Promise.all(
          ['w1', 'w2', 'w3', 'w4'].map((owner) => storage.claim(claimFor(owner, ['a'], 15))),
        );
        const ids = claims.flat().map((d) => d.deliveryId);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids).toHaveLength(40);
      });

      it('respects the total limit and each subscriber limit', async () => {
        await storage.register([
          { name: 'a', patterns: ['*'] },
          { name: 'b', patterns: ['*'] },
        ]);
        await storage.append(Array.from({ length: 5 }, () => input()));
        const claimed = await storage.claim({
          owner: 'w1',
          subscribers: [
            { name: 'a', limit: 2 },
            { name: 'b', limit: 10 },
          ],
          limit: 6,
          leaseMs: 30_000,
        });
        expect(claimed).toHaveLength(6);
        expect(claimed.filter((d) => d.subscriber === 'a')).toHaveLength(2);
        expect(claimed.filter((d) => d.subscriber === 'b')).toHaveLength(4);
      });

      it('gives each delivery a stable id per (event, subscriber) and a new token per claim', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([input()]);
        const [first] = await storage.claim(claimFor('w1', ['a']));
        expect(await storage.release(first!)).toBe(true);
        const [second] = await storage.claim(claimFor('w2', ['a']));
        expect(second!.deliveryId).toBe(first!.deliveryId);
        expect(second!.token).not.toBe(first!.token);
      });

      it('lets another owner take an expired lease, and refuses the stale owner (fencing)', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([input()]);
        const [stale] = await storage.claim(claimFor('w1', ['a'], 10, 400));
        expect(await storage.claim(claimFor('w2', ['a']))).toHaveLength(0);
        await sleep(600);
        const [fresh] = await storage.claim(claimFor('w2', ['a']));
        expect(fresh!.deliveryId).toBe(stale!.deliveryId);
        expect(fresh!.attempt).toBe(2);
        expect(await storage.complete(stale!)).toBe(false);
        expect(await storage.fail(stale!, { error: { name: 'E', message: 'x' }, retryAt: null })).toBe(false);
        expect(await storage.extend([stale!], 10_000)).toEqual([]);
        expect(await storage.complete(fresh!)).toBe(true);
        expect(await storage.listDeadLetters()).toHaveLength(0);
      });

      it('keeps an extended lease from being taken', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([input()]);
        const [held] = await storage.claim(claimFor('w1', ['a'], 10, 500));
        expect(await storage.extend([held!], 5_000)).toEqual([held!.deliveryId]);
        await sleep(700);
        expect(await storage.claim(claimFor('w2', ['a']))).toHaveLength(0);
        expect(await storage.complete(held!)).toBe(true);
      });

      it('gives a released delivery back without spending its attempt', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([input()]);
        const [d] = await storage.claim(claimFor('w1', ['a']));
        expect(await storage.release(d!)).toBe(true);
        expect(await storage.release(d!)).toBe(false);
        const [again] = await storage.claim(claimFor('w2', ['a']));
        expect(again!.attempt).toBe(1);
      });
    });

    describe('outcomes', () => {
      it('never hands out a completed delivery again, and marks the event processed when all are done', async () => {
        await storage.register([
          { name: 'a', patterns: ['*'] },
          { name: 'b', patterns: ['*'] },
        ]);
        const { events } = await storage.append([input()]);
        const eventId = events[0]!.eventId;
        const claimed = await storage.claim(claimFor('w1', ['a', 'b']));
        expect(claimed).toHaveLength(2);
        expect(await storage.complete(claimed[0]!)).toBe(true);
        expect(await processedOf(eventId)).toBe(false);
        expect((await storage.health()).unprocessed).toBe(1);
        expect(await storage.complete(claimed[1]!)).toBe(true);
        expect(await storage.complete(claimed[1]!)).toBe(false);
        expect(await processedOf(eventId)).toBe(true);
        expect((await storage.health()).unprocessed).toBe(0);
        await sleep(20);
        expect(await storage.claim(claimFor('w2', ['a', 'b'], 100, 1))).toHaveLength(0);
      });

      it('schedules a retry: not due before retryAt, then claimable with the next attempt number', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const { events } = await storage.append([input()]);
        const [d] = await storage.claim(claimFor('w1', ['a']));
        // Windows of most of a second: long enough to hold on a loaded CI machine.
        const retryAt = new Date(Date.now() + 800);
        expect(await storage.fail(d!, { error: { name: 'Error', message: 'boom', stack: 'at x' }, retryAt })).toBe(true);

        expect(await storage.claim(claimFor('w1', ['a']))).toHaveLength(0);
        const next = await storage.nextDueAt(['a']);
        expect(next).not.toBeNull();
        expect(Math.abs(next!.getTime() - retryAt.getTime())).toBeLessThan(50);
        expect(await storage.backlog(['a'])).toEqual({ due: 0, leased: 0, retrying: 1, scheduled: 0 });

        await sleep(900);
        const [again] = await storage.claim(claimFor('w1', ['a']));
        expect(again!.attempt).toBe(2);
        expect(again!.event.eventId).toBe(events[0]!.eventId);
        const page = await storage.timeline({ limit: 10 });
        expect(page.events[0]!.retryCount).toBe(1);
      });

      it('settles the synchronous append and complete as the async ones do (storage.sync)', async (ctx) => {
        const sync = storage.sync;
        if (!sync) return ctx.skip(`storage "${storage.name}" has no synchronous operations`);
        await storage.register([{ name: 'a', patterns: ['auth.*'] }]);
        const signup = input('auth.user_signed_up', {}, { idempotencyKey: 'sync-1' });
        const appended = sync.append([signup, input('billing.payment_failed')], { claim: claimFor('w1', ['a']) });
        expect(appended.events.map((e) => e.eventId)).toEqual([signup.event.eventId, expect.any(String)]);
        expect(appended.events[1]!.processed).toBe(true); // no subscriber matches it
        expect(appended.claimed.map((d) => d.event.eventId)).toEqual([signup.event.eventId]);
        const again = sync.append([input('auth.user_signed_up', {}, { idempotencyKey: 'sync-1' })]);
        expect(again.events[0]!.eventId).toBe(signup.event.eventId);
        expect(() => sync.append([input('billing.payment_failed', {}, { idempotencyKey: 'sync-1' })])).toThrow(
          expect.objectContaining({ code: 'IDEMPOTENCY_CONFLICT' }),
        );
        expect(await processedOf(signup.event.eventId)).toBe(false);
        expect(sync.complete(appended.claimed[0]!)).toBe(true);
        expect(sync.complete(appended.claimed[0]!)).toBe(false); // settled already
        expect(await processedOf(signup.event.eventId)).toBe(true);
        expect((await storage.health()).unprocessed).toBe(0);
      });

      it('records the dead letter of a delivery a transport carried, as one of its own (recordDeadLetter)', async (ctx) => {
        if (!storage.recordDeadLetter) return ctx.skip(`storage "${storage.name}" has no recordDeadLetter`);
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const { events } = await storage.append([input('billing.payment_failed')]);
        const event = events[0]!;
        const error = { name: 'Error', message: 'smtp down', stack: 'Error: smtp down\n    at handler' };
        await storage.recordDeadLetter({ subscriber: 'a', event, attempts: 3, error });
        await storage.recordDeadLetter({ subscriber: 'a', event, attempts: 4, error }); // the same delivery again: one dead letter
        const [dl, ...rest] = await storage.listDeadLetters();
        expect(rest).toEqual([]);
        expect(dl).toMatchObject({ eventId: event.eventId, eventType: 'billing.payment_failed', subscriber: 'a', attempts: 4 });
        expect(dl!.error).toMatchObject({ message: 'smtp down' });
        expect(dl!.event.eventId).toBe(event.eventId);
        expect((await storage.health()).deadLetters).toBe(1);
        expect(await storage.discard(dl!.id)).toBe(true);
        expect(await storage.listDeadLetters()).toEqual([]);
      });

      it('dead-letters with the error, then redrives with fresh attempts, or discards', async () => {
        await storage.register([
          { name: 'a', patterns: ['*'] },
          { name: 'b', patterns: ['*'] },
        ]);
        const { events } = await storage.append([input('billing.payment_failed')]);
        const eventId = events[0]!.eventId;
        const claimed = await storage.claim(claimFor('w1', ['a', 'b']));
        const a = claimed.find((d) => d.subscriber === 'a')!;
        const b = claimed.find((d) => d.subscriber === 'b')!;
        const error = { name: 'TypeError', message: 'bad thing', stack: 'TypeError: bad thing\n    at handler', code: 'X' };
        expect(await storage.fail(a, { error, retryAt: null })).toBe(true);
        expect(await storage.complete(b)).toBe(true);
        expect(await processedOf(eventId)).toBe(true);

        const [dl] = await storage.listDeadLetters();
        expect(dl).toMatchObject({ eventId, eventType: 'billing.payment_failed', subscriber: 'a', attempts: 1 });
        expect(dl!.error).toMatchObject({ name: 'TypeError', message: 'bad thing', stack: error.stack });
        expect(dl!.failedAt).toBeInstanceOf(Date);
        expect(dl!.event.eventId).toBe(eventId);
        expect((await storage.health()).deadLetters).toBe(1);
        expect(await storage.listDeadLetters({ subscriber: 'b' })).toHaveLength(0);
        expect(await storage.listDeadLetters({ eventType: 'billing.payment_failed' })).toHaveLength(1);

        expect(await storage.redrive(dl!.id)).toBe(1);
        expect(await storage.listDeadLetters()).toHaveLength(0);
        expect(await processedOf(eventId)).toBe(false);
        const [redriven] = await storage.claim(claimFor('w1', ['a', 'b']));
        expect(redriven).toMatchObject({ subscriber: 'a', attempt: 1, deliveryId: a.deliveryId });
        expect(await storage.fail(redriven!, { error, retryAt: null })).toBe(true);

        const [again] = await storage.listDeadLetters();
        expect(await storage.discard(again!.id)).toBe(true);
        expect(await storage.discard(again!.id)).toBe(false);
        expect((await storage.health()).deadLetters).toBe(0);
        expect(await storage.redrive({ subscriber: 'a' })).toBe(0);
      });

      it('redrives by filter', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([input('auth.user_signed_up'), input('billing.payment_failed'), input('billing.payment_failed')]);
        for (const d of await storage.claim(claimFor('w1', ['a']))) {
          await storage.fail(d, { error: { name: 'E', message: 'x' }, retryAt: null });
        }
        expect(await storage.redrive({ eventType: 'billing.payment_failed' })).toBe(2);
        expect(await storage.listDeadLetters()).toHaveLength(1);
        expect(await storage.claim(claimFor('w1', ['a']))).toHaveLength(2);
      });

      it('drops a retired subscriber\'s unfinished deliveries so events can complete', async () => {
        await storage.register([
          { name: 'a', patterns: ['*'] },
          { name: 'gone', patterns: ['*'] },
        ]);
        const { events } = await storage.append([input()]);
        const [d] = await storage.claim(claimFor('w1', ['a']));
        await storage.complete(d!);
        expect(await processedOf(events[0]!.eventId)).toBe(false);
        await storage.retire('gone');
        expect(await processedOf(events[0]!.eventId)).toBe(true);
        expect(await storage.claim(claimFor('w1', ['gone']))).toHaveLength(0);
        await storage.append([input()]);
        expect(await storage.claim(claimFor('w1', ['gone']))).toHaveLength(0);
      });
    });

    describe('scheduling and ordering', () => {
      it('holds a deliverAt delivery until its time', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const deliverAt = new Date(Date.now() + 800);
        await storage.append([input('auth.user_signed_up', {}, { deliverAt })]);
        expect(await storage.claim(claimFor('w1', ['a']))).toHaveLength(0);
        expect(await storage.backlog(['a'])).toEqual({ due: 0, leased: 0, retrying: 0, scheduled: 1 });
        const next = await storage.nextDueAt(['a']);
        expect(Math.abs(next!.getTime() - deliverAt.getTime())).toBeLessThan(50);
        await sleep(900);
        expect(await storage.claim(claimFor('w1', ['a']))).toHaveLength(1);
      });

      it('delivers one ordering key in append order per subscriber, holding later ones while an earlier one retries', async () => {
        await storage.register([
          { name: 'a', patterns: ['*'] },
          { name: 'b', patterns: ['*'] },
        ]);
        const e1 = input('auth.user_signed_up', {}, { orderingKey: 'org_1' });
        const e2 = input('auth.user_signed_up', {}, { orderingKey: 'org_1' });
        const other = input('auth.user_signed_up', {}, { orderingKey: 'org_2' });
        await storage.append([e1]);
        await storage.append([e2, other]);

        const firstA = await storage.claim(claimFor('w1', ['a']));
        expect(firstA.map((d) => d.event.eventId).sort()).toEqual([e1.event.eventId, other.event.eventId].sort());
        const d1 = firstA.find((d) => d.event.eventId === e1.event.eventId)!;
        await storage.fail(d1, { error: { name: 'E', message: 'x' }, retryAt: new Date(Date.now() + 600) });
        expect(await storage.claim(claimFor('w1', ['a']))).toHaveLength(0); // e2 waits behind e1's retry

        // Subscriber b is independent of a's retry.
        const firstB = await storage.claim(claimFor('w1', ['b']));
        expect(firstB.map((d) => d.event.eventId).sort()).toEqual([e1.event.eventId, other.event.eventId].sort());

        await sleep(700);
        const retried = await storage.claim(claimFor('w1', ['a']));
        expect(retried.map((d) => d.event.eventId)).toEqual([e1.event.eventId]);
        await storage.complete(retried[0]!);
        const next = await storage.claim(claimFor('w1', ['a']));
        expect(next.map((d) => d.event.eventId)).toEqual([e2.event.eventId]);
      });

      it('lets the next event of a key run once the earlier one is dead-lettered', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const e1 = input('auth.user_signed_up', {}, { orderingKey: 'k' });
        const e2 = input('auth.user_signed_up', {}, { orderingKey: 'k' });
        await storage.append([e1, e2]);
        const [d1] = await storage.claim(claimFor('w1', ['a']));
        expect(d1!.event.eventId).toBe(e1.event.eventId);
        await storage.fail(d1!, { error: { name: 'E', message: 'x' }, retryAt: null });
        const [d2] = await storage.claim(claimFor('w1', ['a']));
        expect(d2!.event.eventId).toBe(e2.event.eventId);
      });

      it('counts the backlog by state', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([input(), input(), input(), input('auth.user_signed_up', {}, { deliverAt: new Date(Date.now() + 60_000) })]);
        const [leased, failing] = await storage.claim(claimFor('w1', ['a'], 2));
        await storage.fail(failing!, { error: { name: 'E', message: 'x' }, retryAt: new Date(Date.now() + 60_000) });
        expect(await storage.backlog(['a'])).toEqual({ due: 1, leased: 1, retrying: 1, scheduled: 1 });
        expect(await storage.backlog(['unknown'])).toEqual({ due: 0, leased: 0, retrying: 0, scheduled: 0 });
        await storage.complete(leased!);
      });

      it('counts an event held behind a running one of its ordering key as running, not due', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const e1 = input('auth.user_signed_up', {}, { orderingKey: 'k' });
        const e2 = input('auth.user_signed_up', {}, { orderingKey: 'k' });
        await storage.append([e1]);
        const [d1] = await storage.claim(claimFor('w1', ['a']));
        expect(d1!.event.eventId).toBe(e1.event.eventId);
        await storage.append([e2]);
        // No claim can hand e2 out while e1 runs: counted as due, it would have an idle bus claim in a loop.
        expect(await storage.claim(claimFor('w2', ['a']))).toEqual([]);
        expect(await storage.backlog(['a'])).toEqual({ due: 0, leased: 2, retrying: 0, scheduled: 0 });
        expect(await storage.backlogBySubscriber(['a'])).toMatchObject([{ subscriber: 'a', due: 0, leased: 2 }]);

        expect(await storage.complete(d1!)).toBe(true);
        expect(await storage.backlog(['a'])).toEqual({ due: 1, leased: 0, retrying: 0, scheduled: 0 });
        const [d2] = await storage.claim(claimFor('w2', ['a']));
        expect(d2!.event.eventId).toBe(e2.event.eventId);
      });

      it('reports nothing due when there is no work', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        expect(await storage.nextDueAt(['a'])).toBeNull();
      });
    });

    describe('timeline, replay and health', () => {
      it('pages newest first with a cursor, without gaps or repeats, and filters', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const base = Date.now() - 100_000;
        const inputs = Array.from({ length: 25 }, (_, i) =>
          input(i % 2 ? 'billing.payment_failed' : 'auth.user_signed_up', {
            timestamp: new Date(base + i * 1000),
            actor: i % 3 === 0 ? 'user_x' : 'user_y',
            organizationId: i % 5 === 0 ? 'org_a' : 'org_b',
          }),
        );
        for (const chunk of [inputs.slice(0, 10), inputs.slice(10)]) await storage.append(chunk);

        const seen: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 10; pages++) {
          const page = await storage.timeline({ limit: 7, ...(cursor ? { cursor } : {}) });
          seen.push(...page.events.map((e) => e.eventId));
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
        }
        expect(seen).toEqual(inputs.map((i) => i.event.eventId).reverse());

        const byActor = await storage.timeline({ limit: 100, actor: 'user_x' });
        expect(byActor.events.every((e) => e.actor === 'user_x')).toBe(true);
        expect(byActor.events).toHaveLength(9);
        const byOrg = await storage.timeline({ limit: 100, organizationId: 'org_a' });
        expect(byOrg.events).toHaveLength(5);
        const byType = await storage.timeline({ limit: 100, eventTypes: ['billing.payment_failed'] });
        expect(byType.events).toHaveLength(12);
        const ranged = await storage.timeline({ limit: 100, from: new Date(base + 5000), to: new Date(base + 10_000) });
        expect(ranged.events.map((e) => e.timestamp.getTime())).toEqual([9, 8, 7, 6, 5].map((i) => base + i * 1000));
        const last = await storage.timeline({ limit: 25 });
        expect(last.nextCursor).toBeNull();
      });

      it('keeps a scoped timeline inside its organizations, plus its actor\'s events without organization', async () => {
        const base = Date.now() - 100_000;
        const rows: [actor: string, organizationId: string | undefined, type: string][] = [
          ['user_a', 'org_1', 'auth.user_signed_up'],
          ['user_b', 'org_1', 'auth.user_signed_up'],
          ['user_a', 'org_2', 'auth.user_signed_up'], // an organization user_a has left
          ['user_a', undefined, 'auth.user_signed_up'],
          ['user_b', undefined, 'auth.user_signed_up'],
          ['user_b', 'org_3', 'billing.payment_failed'],
        ];
        const inputs = rows.map(([actor, organizationId, type], i) =>
          input(type, { actor, organizationId, timestamp: new Date(base + i * 1000) }),
        );
        await storage.append(inputs);
        const newestFirst = (...indexes: number[]) => indexes.sort((x, y) => y - x).map((i) => inputs[i]!.event.eventId);
        const ids = async (query: Omit<TimelineQuery, 'limit'>) =>
          (await storage.timeline({ limit: 100, ...query })).events.map((e) => e.eventId);
        const scope = { organizationIds: ['org_1', 'org_3'], actor: 'user_a' };

        expect(await ids({ scope })).toEqual(newestFirst(0, 1, 3, 5));
        expect(await ids({ scope, actor: 'user_a' })).toEqual(newestFirst(0, 3));
        expect(await ids({ scope, actor: 'user_b' })).toEqual(newestFirst(1, 5));
        expect(await ids({ scope, organizationId: 'org_2' })).toEqual([]);
        expect(await ids({ scope, eventTypes: ['billing.payment_failed'] })).toEqual(newestFirst(5));
        expect(await ids({ scope: { organizationIds: [] } })).toEqual([]);
        expect(await ids({ scope: { organizationIds: [], actor: 'user_b' } })).toEqual(newestFirst(4));
        expect(await ids({ scope: { organizationIds: ['org_2'] } })).toEqual(newestFirst(2));

        const paged: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 10; pages++) {
          const page = await storage.timeline({ limit: 1, scope, ...(cursor ? { cursor } : {}) });
          paged.push(...page.events.map((e) => e.eventId));
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
        }
        expect(paged).toEqual(newestFirst(0, 1, 3, 5));
      });

      it('issues URL-safe cursors, and refuses with INVALID_OPTION a cursor it did not issue', async () => {
        await storage.append([input(), input(), input()]);
        const { nextCursor } = await storage.timeline({ limit: 1 });
        expect(nextCursor).toMatch(/^[A-Za-z0-9_-]{1,1024}$/);
        for (const cursor of ['', 'not a cursor', `${nextCursor}!`, ...forgedCursors(nextCursor!)]) {
          const err = await storage.timeline({ limit: 1, cursor }).then(() => undefined, (e: unknown) => e);
          expect(EventBusError.is(err, 'INVALID_OPTION'), cursor).toBe(true);
          expect((err as InvalidOptionError).option, cursor).toBe('cursor');
        }
      });

      it('replays matching processed events to the chosen subscribers only', async () => {
        await storage.register([
          { name: 'a', patterns: ['*'] },
          { name: 'b', patterns: ['billing.*'] },
        ]);
        await storage.append([input('auth.user_signed_up', { actor: 'u1' }), input('billing.payment_failed', { actor: 'u1' })]);
        for (const d of await storage.claim(claimFor('w1', ['a', 'b']))) await storage.complete(d);
        expect((await storage.health()).unprocessed).toBe(0);

        expect(await storage.replay({ subscribers: ['b'], actor: 'u1' })).toBe(1);
        const replayed = await storage.claim(claimFor('w1', ['a', 'b']));
        expect(replayed.map((d) => [d.subscriber, d.event.eventType])).toEqual([['b', 'billing.payment_failed']]);
        expect(replayed[0]!.attempt).toBe(1);
        await storage.complete(replayed[0]!);

        expect(await storage.replay({ eventTypes: ['auth.user_signed_up'] })).toBe(1);
        expect(await storage.replay({ actor: 'nobody' })).toBe(0);
      });

      it('counts the backlog per subscriber, with its oldest pending age and last heartbeat', async () => {
        const before = Date.now();
        await storage.register([
          { name: 'a', patterns: ['*'] },
          { name: 'b', patterns: ['*'] },
          { name: 'c', patterns: ['billing.*'] },
        ]);
        await storage.append([input('auth.user_signed_up', { timestamp: new Date(Date.now() - 5000) })]);
        await storage.append([input('billing.payment_failed')]);
        expect(await storage.claim(claimFor('w1', ['a']))).toHaveLength(2);
        const [first] = await storage.claim(claimFor('w1', ['b'], 1));
        const error = { name: 'Error', message: 'boom', stack: 'at x' };
        expect(await storage.fail(first!, { error, retryAt: new Date(Date.now() + 60_000) })).toBe(true);
        await storage.append([input('billing.payment_failed', {}, { deliverAt: new Date(Date.now() + 60_000) })]);

        const all = await storage.backlogBySubscriber();
        expect(all.map(({ subscriber, due, leased, retrying, scheduled }) => ({ subscriber, due, leased, retrying, scheduled }))).toEqual([
          { subscriber: 'a', due: 0, leased: 2, retrying: 0, scheduled: 1 },
          { subscriber: 'b', due: 1, leased: 0, retrying: 1, scheduled: 1 },
          { subscriber: 'c', due: 1, leased: 0, retrying: 0, scheduled: 1 },
        ]);
        const [a, b, c] = all;
        // a runs the 5 s old event; b's is waiting for its retry, so b is behind by the newer one only.
        expect(a!.oldestPendingAgeMs).toBeGreaterThanOrEqual(4900);
        expect(b!.oldestPendingAgeMs).toBeGreaterThanOrEqual(0);
        expect(b!.oldestPendingAgeMs).toBeLessThan(4000);
        expect(c!.oldestPendingAgeMs).toBeLessThan(4000);
        for (const entry of all) {
          expect(entry.lastSeenAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
          expect(entry.lastSeenAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
        }
        const total = await storage.backlog(['a', 'b', 'c']);
        for (const key of ['due', 'leased', 'retrying', 'scheduled'] as const) {
          expect(all.reduce((sum, entry) => sum + entry[key], 0), key).toBe(total[key]);
        }

        const some = await storage.backlogBySubscriber(['c', 'never-registered']);
        expect(some.map((entry) => entry.subscriber)).toEqual(['c']);
        expect(await storage.backlogBySubscriber([])).toEqual([]);
        await storage.retire('a');
        expect((await storage.backlogBySubscriber()).map((entry) => entry.subscriber)).toEqual(['b', 'c']);
      });

      it('reports no oldest pending age for a subscriber with nothing due', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        expect(await storage.backlogBySubscriber()).toEqual([
          { subscriber: 'a', due: 0, leased: 0, retrying: 0, scheduled: 0, oldestPendingAgeMs: null, lastSeenAt: expect.any(Date) },
        ]);
      });

      it('reports unprocessed events, dead letters and the oldest due age', async () => {
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        expect(await storage.health()).toEqual({ unprocessed: 0, deadLetters: 0, oldestPendingAgeMs: null });
        await storage.append([input('auth.user_signed_up', { timestamp: new Date(Date.now() - 5000) })]);
        const health = await storage.health();
        expect(health.unprocessed).toBe(1);
        expect(health.oldestPendingAgeMs).toBeGreaterThanOrEqual(4900);
        // Claimed and failed: the cursor has passed it, but it waits for its retry, so it still counts.
        const [d] = await storage.claim(claimFor('w1', ['a']));
        const error = { name: 'Error', message: 'boom' };
        expect(await storage.fail(d!, { error, retryAt: new Date(Date.now() + 60_000) })).toBe(true);
        expect((await storage.health()).unprocessed).toBe(1);
        await storage.append([input()]);
        expect((await storage.health()).unprocessed).toBe(2);
      });

      it('counts as unprocessed exactly the events its timeline shows unprocessed, whatever state each is in', async () => {
        await storage.register([
          { name: 'a', patterns: ['auth.*'] },
          { name: 'b', patterns: ['*'] },
          { name: 'c', patterns: ['billing.payment_failed'] },
        ]);
        const types = ['auth.user_signed_up', 'billing.payment_failed', 'practice.created'];
        const later = new Date(Date.now() + 60_000);
        const error = { name: 'Error', message: 'boom' };
        const agree = async () => {
          const page = await storage.timeline({ limit: 1000 });
          const unprocessed = page.events.filter((e) => !e.processed).length;
          expect((await storage.health()).unprocessed).toBe(unprocessed);
          return unprocessed;
        };
        let last = 0;
        for (let round = 0; round < 3; round++) {
          // Some due, some for later; each type matched by other subscribers ('practice.created' by `b` alone).
          await storage.append(
            Array.from({ length: 30 }, (_, i) => input(types[(i + round) % 3], {}, i % 7 === 0 ? { deliverAt: later } : {})),
          );
          expect(await agree()).toBeGreaterThan(last);
          // Claimed: some completed, some failed to wait for their retry, the rest left running.
          const claimed = await storage.claim(claimFor(`w${round}`, ['a', 'b', 'c'], 12, 60_000));
          expect(claimed.length).toBeGreaterThan(0);
          for (const [k, d] of claimed.entries()) {
            if (k % 3 === 0) expect(await storage.complete(d)).toBe(true);
            else if (k % 3 === 1) expect(await storage.fail(d, { error, retryAt: later })).toBe(true);
          }
          last = await agree();
        }
        expect(last).toBeGreaterThan(0);
      });
    });

    describe('transactions', () => {
      it('commits appended events with the transaction, or drops them on rollback', async (ctx) => {
        if (!storage.capabilities.transactions || !storage.transaction) {
          ctx.skip(`storage "${storage.name}" has no transactions (capabilities.transactions is false)`);
          return;
        }
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        const rolledBack = input();
        await expect(
          storage.transaction(async (tx) => {
            await storage.append([rolledBack], { tx });
            throw new Error('rollback');
          }),
        ).rejects.toThrow('rollback');
        const committed = input();
        await storage.transaction(async (tx) => {
          await storage.append([committed], { tx });
        });
        const claimed = await storage.claim(claimFor('w1', ['a']));
        expect(claimed.map((d) => d.event.eventId)).toEqual([committed.event.eventId]);
        expect((await storage.timeline({ limit: 10 })).events.map((e) => e.eventId)).toEqual([committed.event.eventId]);
      });

      it('completes a delivery inside a transaction only if it commits', async (ctx) => {
        if (!storage.capabilities.transactions || !storage.transaction) {
          ctx.skip(`storage "${storage.name}" has no transactions (capabilities.transactions is false)`);
          return;
        }
        await storage.register([{ name: 'a', patterns: ['*'] }]);
        await storage.append([input()]);
        const [d] = await storage.claim(claimFor('w1', ['a']));
        await expect(
          storage.transaction(async (tx) => {
            expect(await storage.complete(d!, { tx })).toBe(true);
            throw new Error('rollback');
          }),
        ).rejects.toThrow('rollback');
        expect(await storage.backlog(['a'])).toMatchObject({ leased: 1 });
        await storage.transaction(async (tx) => {
          expect(await storage.complete(d!, { tx })).toBe(true);
        });
        expect(await storage.backlog(['a'])).toEqual({ due: 0, leased: 0, retrying: 0, scheduled: 0 });
      });
    });
  });
}
