/**
 * The payload contract: catalogs are JSON-safe, what is stored is a frozen
 * snapshot of what was validated, and every handler and caller gets a
 * read-only event that no one else can change.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineCatalog, defineEvent, EventBusError, UnsupportedSchemaError, type EventValidationError } from '../../src/index';
import { createTestBus } from '../../src/testing/index';
import { signup, testBus } from './fixtures';

describe('defineEvent refuses schemas whose output is not JSON', () => {
  const refused: [string, z.ZodType, string, RegExp][] = [
    ['a date', z.object({ at: z.date() }), 'payload.at', /z\.iso\.datetime\(\)/],
    ['a coerced date in an array', z.object({ items: z.array(z.object({ at: z.coerce.date() })) }), 'payload.items[].at', /z\.iso\.datetime/],
    ['an optional bigint', z.object({ n: z.bigint().optional() }), 'payload.n', /z\.string\(\)\.regex/],
    ['a map', z.object({ m: z.map(z.string(), z.number()) }), 'payload.m', /z\.record/],
    ['a set with a default', z.object({ s: z.set(z.string()).default(new Set()) }), 'payload.s', /z\.array/],
    ['a symbol in a record', z.object({ r: z.record(z.string(), z.symbol()) }), 'payload.r[string]', /z\.enum/],
    ['NaN in a union', z.object({ x: z.union([z.number(), z.nan()]) }), 'payload.x', /z\.null\(\)/],
    ['undefined alone', z.object({ u: z.undefined() }), 'payload.u', /optional/],
    ['a function', z.object({ f: z.function() }), 'payload.f', /function/],
    ['a promise', z.object({ p: z.promise(z.string()) }), 'payload.p', /await/],
    ['a date behind a transform pipe', z.object({ at: z.string().pipe(z.coerce.date()) }), 'payload.at', /iso/],
    [
      'a codec to a Date',
      z.object({ at: z.codec(z.iso.datetime(), z.date(), { decode: (s) => new Date(s), encode: (d) => d.toISOString() }) }),
      'payload.at',
      /iso/,
    ],
    ['a date in a tuple', z.object({ t: z.tuple([z.string(), z.date()]) }), 'payload.t[1]', /iso/],
    ['a bigint literal', z.object({ l: z.literal(1n) }), 'payload.l', /literal/],
  ];
  it.each(refused)('refuses %s, naming the field and the alternative', (_what, payload, path, alternative) => {
    const err = (() => {
      try {
        defineEvent({ version: '1.0.0', payload: payload as never });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UnsupportedSchemaError);
    expect(EventBusError.is(err, 'UNSUPPORTED_SCHEMA')).toBe(true);
    expect((err as UnsupportedSchemaError).path).toBe(path);
    expect((err as Error).message).toMatch(alternative);
  });

  it('accepts JSON-safe schemas: ISO dates, unions with undefined, transforms, recursive JSON', () => {
    type Tree = { name: string; children: Tree[] };
    const tree: z.ZodType<Tree> = z.lazy(() => z.object({ name: z.string(), children: z.array(tree) }));
    const ok = [
      z.object({ at: z.iso.datetime(), day: z.iso.date(), ms: z.number().int() }),
      z.object({ maybe: z.union([z.string(), z.undefined()]), opt: z.string().optional(), n: z.string().nullable() }),
      z.object({ len: z.string().transform((s) => s.length), flag: z.stringbool() }),
      z.object({ doc: z.json(), tree, any: z.unknown(), kind: z.enum(['a', 'b']), lit: z.literal('x') }),
      z.looseObject({ id: z.string() }).readonly(),
    ];
    for (const payload of ok) expect(() => defineEvent({ version: '1.0.0', payload: payload as never })).not.toThrow();
  });
});

const open = defineCatalog({
  'doc.item_saved': defineEvent({
    version: '1.0.0',
    payload: z.object({ title: z.string(), data: z.unknown(), tags: z.array(z.string()).default([]) }),
  }),
  'doc.item_converted': defineEvent({
    version: '1.0.0',
    // A transform is not visible statically: its output is checked at publish.
    payload: z.object({ at: z.string().transform((s) => new Date(s) as unknown as string) }),
  }),
});

describe('publish stores a JSON snapshot of what it validated', () => {
  it('refuses values JSON cannot carry inside z.unknown(), with the path, as EVENT_VALIDATION_FAILED', async () => {
    const bus = createTestBus({ catalog: open });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const cases: [unknown, (string | number)[]][] = [
      [{ n: NaN }, ['data', 'n']],
      [{ n: [1, Infinity] }, ['data', 'n', 1]],
      [{ n: -Infinity }, ['data', 'n']],
      [{ big: 10n }, ['data', 'big']],
      [{ when: new Date() }, ['data', 'when']],
      [new Map([['a', 1]]), ['data']],
      [[new Set([1])], ['data', 0]],
      [{ f: () => 1 }, ['data', 'f']],
      [[1, undefined], ['data', 1]],
      [{ s: Symbol('x') }, ['data', 's']],
      [{ deep: { text: 'a\u0000b' } }, ['data', 'deep', 'text']],
      [cyclic, ['data', ...Array<string>(255).fill('self')]],
    ];
    for (const [data, path] of cases) {
      const err = await bus.publish('doc.item_saved', { title: 't', data }).catch((e: unknown) => e);
      expect(EventBusError.is(err, 'EVENT_VALIDATION_FAILED'), String(path)).toBe(true);
      const { issues } = err as EventValidationError;
      expect(issues[0]!.path.slice(0, path.length)).toEqual(path);
      expect(issues[0]!.message).toMatch(/not JSON-safe/);
    }
    await expect(bus.publish('doc.item_converted', { at: '2026-01-01T00:00:00Z' })).rejects.toMatchObject({
      code: 'EVENT_VALIDATION_FAILED',
      issues: [{ path: ['at'], message: expect.stringMatching(/Date/) }],
    });
    expect((await bus.timeline()).events).toHaveLength(0);
    await bus.stop();
  });

  it('drops undefined properties (as JSON does) and keeps a "__proto__" key as data', async () => {
    const bus = createTestBus({ catalog: open });
    const data = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    data.gone = undefined;
    const event = await bus.publish('doc.item_saved', { title: 't', data });
    const stored = event.payload.data as Record<string, unknown>;
    expect(Object.keys(stored)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(stored)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await bus.stop();
  });

  it('is not changed by the caller mutating its object after publish, nor by anyone mutating what they got', async () => {
    const bus = createTestBus({ catalog: open });
    const seen: unknown[] = [];
    const mutationErrors: unknown[] = [];
    bus.subscribe('*', (event) => {
      // The first subscriber tries to change its event in every way it can.
      try {
        (event.payload as { data: { list: number[] } }).data.list.push(99);
      } catch (err) {
        mutationErrors.push(err);
      }
      try {
        (event.metadata as Record<string, unknown>).requestId = 'changed';
      } catch (err) {
        mutationErrors.push(err);
      }
      (event as { actor?: string }).actor = 'someone else';
    }, { name: 'a.mutator' });
    bus.subscribe('*', (event) => void seen.push(structuredClone({ payload: event.payload, metadata: event.metadata, actor: event.actor })), {
      name: 'b.reader',
    });
    await bus.start();

    const data = { list: [1, 2] };
    const payload = { title: 't', data };
    const returned = await bus.publish('doc.item_saved', payload, { actor: 'u1', metadata: { requestId: 'r1' } });
    data.list.push(3); // the caller changes its own object afterwards
    payload.title = 'changed';
    expect(returned.payload.data).not.toBe(data);
    expect((returned.payload.data as typeof data).list).toEqual([1, 2]);
    expect(Object.isFrozen((returned.payload.data as typeof data).list)).toBe(true);
    returned.actor = 'caller changed its copy';
    await bus.idle({ timeoutMs: 2000 });

    expect(mutationErrors).toHaveLength(2);
    for (const err of mutationErrors) expect(err).toBeInstanceOf(TypeError);
    expect(seen).toEqual([{ payload: { title: 't', data: { list: [1, 2] }, tags: [] }, metadata: expect.objectContaining({ requestId: 'r1' }), actor: 'u1' }]);
    const [stored] = (await bus.timeline()).events;
    expect(stored).toMatchObject({ actor: 'u1', payload: { title: 't', data: { list: [1, 2] } } });
    (stored as { actor?: string }).actor = 'timeline reader changed its copy';
    expect((await bus.timeline()).events[0]!.actor).toBe('u1');
    await bus.stop();
  });

  it('freezes what zod made in place when nothing in it can be the caller\'s, and copies when something can', async () => {
    const catalog = defineCatalog({
      'doc.item_tagged': defineEvent({
        version: '1.0.0',
        payload: z.object({ tags: z.array(z.object({ name: z.string(), note: z.string().optional() })) }),
      }),
      'doc.item_noted': defineEvent({ version: '1.0.0', payload: z.object({ note: z.unknown() }) }),
      'doc.item_locked': defineEvent({ version: '1.0.0', payload: z.object({ by: z.string().optional() }).readonly() }),
    });
    const bus = createTestBus({ catalog });
    const tagged = await bus.publish('doc.item_tagged', { tags: [{ name: 'a', note: undefined }] });
    expect(Object.isFrozen(tagged.payload.tags[0])).toBe(true);
    expect(Object.keys(tagged.payload.tags[0]!)).toEqual(['name']); // as JSON would store it
    await expect(bus.publish('doc.item_tagged', { tags: [{ name: 'a\u0000' }] })).rejects.toMatchObject({
      code: 'EVENT_VALIDATION_FAILED',
      issues: [{ path: ['tags', 0, 'name'] }],
    });
    const note = { text: 'mine' };
    const noted = await bus.publish('doc.item_noted', { note });
    expect(noted.payload.note).toEqual(note);
    expect(noted.payload.note).not.toBe(note);
    expect(Object.isFrozen(note)).toBe(false); // the caller's object is never frozen
    const locked = await bus.publish('doc.item_locked', { by: undefined });
    expect(Object.keys(locked.payload)).toEqual([]);
    await bus.stop();
  });

  it('hands back the stored event, not the second caller\'s payload, for a repeated idempotency key', async () => {
    const bus = testBus();
    const first = await bus.publish('auth.user_signed_up', signup, { idempotencyKey: 'k' });
    const again = await bus.publish('auth.user_signed_up', { ...signup, name: 'Other' }, { idempotencyKey: 'k' });
    expect(again).not.toBe(first);
    expect(again.payload).toEqual(first.payload);
    await bus.stop();
  });
});
