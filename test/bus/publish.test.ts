import { describe, expect, it } from 'vitest';
import { EventBusError, EventValidationError, UnknownEventTypeError, createEventBus, memoryStorage } from '../../src/index';
import { catalog, signup, testBus } from './fixtures';

describe('publish', () => {
  it('builds the seed envelope with a UUIDv7 id and the bus defaults', async () => {
    const bus = testBus({ source: 'api', environment: 'test' });
    const before = Date.now();
    const event = await bus.publish('auth.user_signed_up', signup, {
      actor: 'user_abc123',
      actorType: 'user',
      organizationId: 'org_1',
      metadata: { requestId: 'req_1', ipAddress: '127.0.0.1' },
    });
    expect(event.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(event).toMatchObject({
      eventType: 'auth.user_signed_up',
      eventVersion: '1.0.0',
      actor: 'user_abc123',
      actorType: 'user',
      organizationId: 'org_1',
      payload: signup,
      metadata: { source: 'api', environment: 'test', requestId: 'req_1', ipAddress: '127.0.0.1' },
      processed: false,
      retryCount: 0,
    });
    expect(event.timestamp.getTime()).toBeGreaterThanOrEqual(before);
    await bus.stop();
  });

  it('refuses an unknown type or an invalid payload with a coded error and stores nothing', async () => {
    const bus = testBus();
    await expect(bus.publish('auth.nope' as never, {} as never)).rejects.toBeInstanceOf(UnknownEventTypeError);
    const err = await bus
      .publish('auth.user_signed_up', { ...signup, email: 'not-an-email' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventValidationError);
    expect(EventBusError.is(err, 'EVENT_VALIDATION_FAILED')).toBe(true);
    expect((err as EventValidationError).issues[0]!.path).toEqual(['email']);
    expect((err as Error).message).not.toContain('not-an-email'); // no payload values in messages
    await expect(bus.publish('auth.user_signed_up', signup, { deliverAt: new Date('nope') })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      option: 'deliverAt',
    });
    await expect(bus.publish('auth.user_signed_up', signup, { idempotencyKey: '' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    expect((await bus.timeline()).events).toHaveLength(0);
    await bus.stop();
  });

  it('publishMany stores all or none', async () => {
    const bus = testBus();
    await expect(
      bus.publishMany([
        { type: 'auth.user_signed_up', payload: signup },
        { type: 'auth.user_logged_in', payload: { sessionId: 42 } as never },
      ]),
    ).rejects.toMatchObject({ code: 'EVENT_VALIDATION_FAILED' });
    expect((await bus.timeline()).events).toHaveLength(0);
    const events = await bus.publishMany([
      { type: 'auth.user_signed_up', payload: signup, options: { actor: 'u1' } },
      { type: 'auth.user_logged_in', payload: { sessionId: 's1' } },
    ]);
    expect(events.map((e) => e.eventType)).toEqual(['auth.user_signed_up', 'auth.user_logged_in']);
    expect((await bus.timeline()).events).toHaveLength(2);
    await bus.stop();
  });

  it('returns the first event for a repeated idempotency key', async () => {
    const bus = testBus();
    const first = await bus.publish('auth.user_signed_up', signup, { idempotencyKey: 'signup:ada' });
    const again = await bus.publish('auth.user_signed_up', { ...signup, name: 'Other' }, { idempotencyKey: 'signup:ada' });
    expect(again.eventId).toBe(first.eventId);
    expect(again.payload.name).toBe('Ada');
    expect(bus.stats().published).toBe(1);
    await bus.stop();
  });

  it('refuses `tx` on a storage without transactions', async () => {
    const bus = testBus();
    await expect(bus.publish('auth.user_signed_up', signup, { tx: {} })).rejects.toMatchObject({
      code: 'UNSUPPORTED_BY_STORAGE',
    });
    await bus.stop();
  });

  it('refuses to publish after stop', async () => {
    const bus = testBus();
    await bus.stop();
    await expect(bus.publish('auth.user_signed_up', signup)).rejects.toMatchObject({ code: 'BUS_STOPPED' });
  });

  it('checks its options when created', () => {
    expect(() => createEventBus({ catalog, dispatch: { concurrency: 0 } })).toThrow(/dispatch.concurrency/);
    expect(() => createEventBus({ catalog, retry: { minDelayMs: 100, maxDelayMs: 10 } })).toThrow(/maxDelayMs/);
    expect(() => createEventBus({} as never)).toThrow(/catalog/);
  });
});

describe('publish refuses malformed input with a coded error, never a TypeError', () => {
  const bad = ['nul\u0000byte', 'lone \ud800 surrogate', 'reversed \udc00\ud800 pair'];

  it('refuses strings PostgreSQL cannot store, in the payload and in every stored option', async () => {
    const bus = testBus();
    for (const s of bad) {
      const err = await bus.publish('auth.user_signed_up', { ...signup, name: s }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'EVENT_VALIDATION_FAILED', issues: [{ path: ['name'] }] });
      expect((err as Error).message).not.toContain(s);
      for (const option of ['actor', 'actorType', 'organizationId', 'idempotencyKey', 'orderingKey'] as const) {
        await expect(bus.publish('auth.user_signed_up', signup, { [option]: s })).rejects.toMatchObject({
          code: 'INVALID_OPTION',
          option,
        });
      }
      await expect(bus.publish('auth.user_signed_up', signup, { metadata: { requestId: s } })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        option: 'metadata.requestId',
      });
      await expect(bus.publish('auth.user_signed_up', signup, { metadata: { [`k${s}`]: 'v' } })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
      });
    }
    expect(() => createEventBus({ catalog, source: 'a\u0000' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', option: 'source' }));
    // Astral characters (a valid surrogate pair) are fine.
    const ok = await bus.publish('auth.user_signed_up', { ...signup, name: 'Ada 🦄' }, { actor: 'u🦄', metadata: { note: '🦄' } });
    expect(ok.payload.name).toBe('Ada 🦄');
    expect((await bus.timeline()).events).toHaveLength(1);
    await bus.stop();
  });

  it('refuses a deliverAt outside the years 0001 to 9999, and invalid dates', async () => {
    const bus = testBus();
    for (const deliverAt of [new Date(Date.parse('0001-01-01T00:00:00Z') - 1), new Date(8.64e15), new Date(Date.parse('9999-12-31T23:59:59.999Z') + 1), new Date(NaN), '2026-01-01' as never]) {
      await expect(bus.publish('auth.user_signed_up', signup, { deliverAt })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        option: 'deliverAt',
      });
    }
    await expect(bus.timeline({ from: new Date(-8.64e15) })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'from' });
    await expect(bus.replay({ to: new Date(8.64e15) })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'to' });
    expect((await bus.timeline()).events).toHaveLength(0);
    await bus.publish('auth.user_signed_up', signup, { deliverAt: new Date('9999-12-31T23:59:59.999Z') });
    await bus.stop();
  });

  it('refuses null options, null metadata, a null item and a type that is not a string', async () => {
    const bus = testBus();
    await expect(bus.publish('auth.user_signed_up', signup, null as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'options' });
    await expect(bus.publish('auth.user_signed_up', signup, 'x' as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'options' });
    await expect(bus.publish('auth.user_signed_up', signup, { metadata: null as never })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'metadata' });
    await expect(bus.publish('auth.user_signed_up', signup, { metadata: { source: 42 as never } })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'metadata.source' });
    await expect(bus.publishMany([null as never])).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'items[0]' });
    await expect(bus.publishMany([{ type: 'auth.user_logged_in', payload: { sessionId: 's' } }, 7 as never])).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'items[1]' });
    await expect(bus.publishMany([{ type: 'auth.user_logged_in', payload: { sessionId: 's' }, options: null as never }])).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'options' });
    for (const type of [42, Symbol('x'), null, undefined, { toString: () => 'auth.user_logged_in' }]) {
      await expect(bus.publish(type as never, { sessionId: 's' } as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'type' });
    }
    expect((await bus.timeline()).events).toHaveLength(0);
    await bus.stop();
  });
});

describe('storage errors reach the caller coded', () => {
  const secret = 'ada@example.com';
  /** A real memory storage whose calls fail like a driver that quotes its query and parameters. */
  function failingStorage(error: unknown) {
    const storage = memoryStorage();
    for (const method of ['append', 'timeline', 'replay', 'health', 'listDeadLetters', 'redrive', 'discard', 'retire'] as const) {
      (storage as unknown as Record<string, () => Promise<never>>)[method] = async () => {
        throw error;
      };
    }
    // The bus appends through the synchronous twin when there is one: it fails the same way.
    const sync = storage.sync!;
    (storage as { sync?: unknown }).sync = {
      ...sync,
      append: () => {
        throw error;
      },
    };
    return storage;
  }

  it('turns a driver error into STORAGE_REJECTED with the error as cause and no values in the message', async () => {
    const driverError = Object.assign(new TypeError(`insert into events values ($1) params: ${secret}`), { code: '22P02' });
    const bus = createEventBus({ catalog, storage: failingStorage(driverError) });
    const calls: [string, () => Promise<unknown>][] = [
      ['append', () => bus.publish('auth.user_signed_up', signup)],
      ['append', () => bus.publishMany([{ type: 'auth.user_signed_up', payload: signup }])],
      ['timeline', () => bus.timeline()],
      ['replay', () => bus.replay()],
      ['health', () => bus.health()],
      ['list dead letters', () => bus.deadLetters.list()],
      ['redrive', () => bus.deadLetters.redrive('x')],
      ['discard', () => bus.deadLetters.discard('x')],
      ['retire a subscriber', () => bus.retireSubscriber('gone')],
    ];
    for (const [during, call] of calls) {
      const err = await call().catch((e: unknown) => e);
      expect(EventBusError.is(err, 'STORAGE_REJECTED'), during).toBe(true);
      expect((err as Error).message).toBe(`Storage "memory" failed to ${during} (TypeError, code 22P02)`);
      expect((err as Error).cause).toBe(driverError);
    }
    await bus.stop();
  });

  it('codes the storage error behind publish middleware, and leaves the middleware\'s own errors as they are', async () => {
    const driverError = new TypeError(`insert params: ${secret}`);
    const through = createEventBus({ catalog, storage: failingStorage(driverError), publishMiddleware: [(_p, next) => next()] });
    await expect(through.publish('auth.user_signed_up', signup)).rejects.toMatchObject({ code: 'STORAGE_REJECTED', cause: driverError });
    await through.stop();
    const own = new Error('quota exceeded');
    const refusing = createEventBus({ catalog, publishMiddleware: [async () => Promise.reject(own)] });
    await expect(refusing.publish('auth.user_signed_up', signup)).rejects.toBe(own);
    await expect(refusing.publishMany([{ type: 'auth.user_signed_up', payload: signup }])).rejects.toBe(own);
    await refusing.stop();
  });

  it('passes coded storage errors through unchanged', async () => {
    const unavailable = new EventBusError('STORAGE_UNAVAILABLE', 'The database cannot be reached');
    const bus = createEventBus({ catalog, storage: failingStorage(unavailable) });
    await expect(bus.publish('auth.user_signed_up', signup)).rejects.toBe(unavailable);
    await expect(bus.timeline()).rejects.toBe(unavailable);
    await expect(bus.health()).rejects.toBe(unavailable);
    await bus.stop();
  });
});

describe('queries refuse what no storage can use with a coded error', () => {
  it('refuses NUL characters and unpaired surrogates in timeline, replay and dead-letter filters, and null queries', async () => {
    const bus = testBus();
    const bad = 'a\u0000b';
    const refused: [string, () => Promise<unknown>][] = [
      ['actor', () => bus.timeline({ actor: bad })],
      ['organizationId', () => bus.timeline({ organizationId: '\ud800' })],
      ['cursor', () => bus.timeline({ cursor: bad })],
      ['scope.organizationIds[1]', () => bus.timeline({ scope: { organizationIds: ['org_1', bad] } })],
      ['scope.actor', () => bus.timeline({ scope: { organizationIds: [], actor: bad } })],
      ['options', () => bus.timeline(null as never)],
      ['actor', () => bus.replay({ actor: bad })],
      ['subscribers[0]', () => bus.replay({ subscribers: [bad] })],
      ['options', () => bus.replay(null as never)],
      ['filter.subscriber', () => bus.deadLetters.list({ subscriber: bad })],
      ['filter.eventId', () => bus.deadLetters.redrive({ eventId: bad })],
      ['id', () => bus.deadLetters.redrive(bad)],
      ['id', () => bus.deadLetters.discard(bad)],
      ['name', () => bus.retireSubscriber(bad)],
    ];
    for (const [option, call] of refused) {
      await expect(call(), option).rejects.toMatchObject({ code: 'INVALID_OPTION', option });
    }
    await bus.stop();
  });
});
