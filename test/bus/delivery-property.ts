/**
 * The delivery property, shared by the memory (delivery.property.test.ts) and
 * PostgreSQL (delivery.property.int.test.ts) runs.
 *
 * Property: for any sequence of publishes, handler failures and redrives,
 * every (event, subscriber) pair ends either succeeded exactly once or
 * dead-lettered; nothing is lost; and a subscriber runs exactly as often as its
 * own failures require, never again because another subscriber failed.
 *
 * Each handler's behaviour is a script fixed by the generated plan, per
 * (event, subscriber) and per attempt, so a model can say exactly how many
 * times, and with which `ctx.attempt`, each pair must run.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { z } from 'zod';
import {
  defineCatalog,
  defineEvent,
  NonRetryableError,
  RetryAfterError,
  type EventBus,
  type Storage,
} from '@blawby/event-bus';
import { createTestBus } from '@blawby/event-bus/testing';

const catalog = defineCatalog({
  'alpha.thing_happened': defineEvent({ version: '1.0.0', payload: z.object({ seq: z.number().int() }) }),
  'alpha.other_happened': defineEvent({ version: '1.0.0', payload: z.object({ seq: z.number().int() }) }),
  'beta.item_created': defineEvent({ version: '1.0.0', payload: z.object({ seq: z.number().int() }) }),
});
type EventType = keyof typeof catalog;
const TYPES = Object.keys(catalog) as EventType[];
const ATTEMPTS = 3;

/** Patterns a subscriber may have, and the types each matches. */
const PATTERNS = [
  { pattern: '*', matches: TYPES },
  { pattern: 'alpha.*', matches: ['alpha.thing_happened', 'alpha.other_happened'] },
  { pattern: 'beta.*', matches: ['beta.item_created'] },
  { pattern: 'alpha.thing_happened', matches: ['alpha.thing_happened'] },
  { pattern: ['alpha.other_happened', 'beta.*'], matches: ['alpha.other_happened', 'beta.item_created'] },
] as const;

/** What one handler call does. Anything past the end of a script succeeds. */
export type Outcome = 'ok' | 'fail' | 'retry-after' | 'non-retryable';

export type Step =
  | { kind: 'publish'; type: number; orderingKey?: string; idempotencyKey?: string; scripts: Outcome[][] }
  | { kind: 'publishMany'; items: { type: number; scripts: Outcome[][] }[] }
  | { kind: 'idle' }
  /** Stop the bus (with retries pending) and go on with a new one on the same storage, as after a deploy. */
  | { kind: 'restart' }
  | { kind: 'redrive'; target: 'all' | 'subscriber' | 'one'; pick: number };

export interface Plan {
  subscribers: number[]; // index into PATTERNS, one per subscriber
  /** Per-subscriber concurrency (`undefined`: the bus's). */
  subscriberConcurrency: (number | undefined)[];
  concurrency: number;
  /** Buses sharing the one storage, competing for deliveries like processes of one service. */
  workers: number;
  slowHandlers: boolean;
  steps: Step[];
}

const MAX_SUBSCRIBERS = 3;
const outcome = fc.constantFrom<Outcome>('ok', 'fail', 'fail', 'retry-after', 'non-retryable');
// One script per possible subscriber; only the first `subscribers.length` are used.
const scripts = fc.array(fc.array(outcome, { maxLength: 7 }), {
  minLength: MAX_SUBSCRIBERS,
  maxLength: MAX_SUBSCRIBERS,
});
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        kind: fc.constant('publish' as const),
        type: fc.nat(TYPES.length - 1),
        orderingKey: fc.constantFrom('k1', 'k2'),
        idempotencyKey: fc.constantFrom('i1', 'i2', 'i3'),
        scripts,
      },
      { requiredKeys: ['kind', 'type', 'scripts'] },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('publishMany' as const),
      items: fc.array(fc.record({ type: fc.nat(TYPES.length - 1), scripts }), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'idle' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('redrive' as const),
      target: fc.constantFrom('all' as const, 'subscriber' as const, 'one' as const),
      pick: fc.nat(50),
    }),
  },
);
export const plan: fc.Arbitrary<Plan> = fc.record({
  subscribers: fc.array(fc.nat(PATTERNS.length - 1), { minLength: 1, maxLength: MAX_SUBSCRIBERS }),
  subscriberConcurrency: fc.array(fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }), {
    minLength: MAX_SUBSCRIBERS,
    maxLength: MAX_SUBSCRIBERS,
  }),
  concurrency: fc.integer({ min: 1, max: 4 }),
  workers: fc.integer({ min: 1, max: 2 }),
  slowHandlers: fc.boolean(),
  steps: fc.array(step, { minLength: 1, maxLength: 10 }),
});

/** The model of one (event, subscriber) pair. */
interface PairModel {
  script: Outcome[];
  used: number;
  status: 'pending' | 'succeeded' | 'dead';
  /** `ctx.attempt` of every call expected so far. */
  attempts: number[];
}

/** Runs one delivery round (first delivery, or after a redrive) of a pair in the model. */
function runRound(pair: PairModel): void {
  for (let attempt = 1; ; attempt++) {
    const result = pair.script[pair.used++] ?? 'ok';
    pair.attempts.push(attempt);
    if (result === 'ok') {
      pair.status = 'succeeded';
      return;
    }
    if (result === 'non-retryable' || attempt === ATTEMPTS) {
      pair.status = 'dead';
      return;
    }
  }
}

interface Call {
  attempt: number;
  deliveryId: string;
  result: Outcome;
}

/** What one run exercised, so that the tests can show the property was not checked vacuously. */
export interface Coverage {
  pairs: number;
  redrivenRounds: number;
  deadAtEnd: number;
  retriedPairs: number;
  restartsWithWorkPending: number;
}

/**
 * Gives the storage of one bus. Buses of one run must share their data (the
 * same memory storage, or storages over the same database): a run makes one
 * bus per worker, and new ones on a restart, and `stop()` closes each bus's storage.
 */
export type StorageFactory = () => Storage;

/** Runs one plan against buses on `makeStorage`'s storage and checks the outcome against the model. */
export async function check(p: Plan, makeStorage: StorageFactory): Promise<Coverage> {
  const coverage: Coverage = { pairs: 0, redrivenRounds: 0, deadAtEnd: 0, retriedPairs: 0, restartsWithWorkPending: 0 };
  const names = p.subscribers.map((_, i) => `sub${i}`);
  const model = new Map<string, PairModel>(); // key: `${seq}|${name}`
  const calls = new Map<string, Call[]>();
  const scriptOf = new Map<number, Outcome[][]>(); // seq -> scripts per subscriber
  const seqOfEventId = new Map<string, number>();
  const seqOfIdempotencyKey = new Map<string, number>();
  let nextSeq = 0;

  const makeBus = (): EventBus<typeof catalog> => {
    const bus = createTestBus({
      catalog,
      storage: makeStorage(),
      retry: { attempts: ATTEMPTS, minDelayMs: 1, maxDelayMs: 5 },
      dispatch: { concurrency: p.concurrency, pollIntervalMs: 20 },
    });
    names.forEach((name, i) => {
      const { pattern } = PATTERNS[p.subscribers[i]!]!;
      const concurrency = p.subscriberConcurrency[i];
      bus.subscribe(
        pattern,
        async (event, ctx) => {
          const seq = event.payload.seq;
          const key = `${seq}|${name}`;
          const list = calls.get(key) ?? [];
          calls.set(key, list);
          const script = scriptOf.get(seq)?.[i] ?? [];
          const result = script[list.length] ?? 'ok';
          list.push({ attempt: ctx.attempt, deliveryId: ctx.deliveryId, result });
          if (p.slowHandlers) await new Promise((resolve) => setTimeout(resolve, (seq + i) % 3));
          if (result === 'fail') throw new Error(`planned failure of ${key}`);
          if (result === 'retry-after') throw new RetryAfterError(1 + (seq % 3));
          if (result === 'non-retryable') throw new NonRetryableError(`planned dead letter of ${key}`);
        },
        { name, ...(concurrency === undefined ? {} : { concurrency }) },
      );
    });
    return bus;
  };
  let buses = Array.from({ length: p.workers }, makeBus);
  /** Waits until no worker has work left (one worker's failure may hand a retry to another). */
  const settle = async () => {
    for (let round = 0; round < 100; round++) {
      await Promise.all(buses.map((b) => b.idle({ timeoutMs: 10_000 })));
      if ((await buses[0]!.health()).unprocessed === 0) return;
    }
    throw new Error('the workers never settled');
  };

  /** Adds the pairs of a newly published event to the model; its rounds are simulated at once. */
  const expectEvent = (seq: number, type: EventType, eventScripts: Outcome[][]) => {
    names.forEach((name, i) => {
      if (!(PATTERNS[p.subscribers[i]!]!.matches as readonly string[]).includes(type)) return;
      const pair: PairModel = { script: eventScripts[i] ?? [], used: 0, status: 'pending', attempts: [] };
      runRound(pair);
      model.set(`${seq}|${name}`, pair);
    });
  };
  const deadInModel = () =>
    [...model.entries()]
      .filter(([, pair]) => pair.status === 'dead')
      .map(([key]) => key)
      .sort();

  await Promise.all(buses.map((b) => b.start()));
  const bus = () => buses[nextSeq % buses.length]!;
  try {
    for (const s of p.steps) {
      if (s.kind === 'publish') {
        const type = TYPES[s.type]!;
        // Keys are per event type: one reused across types is refused (IDEMPOTENCY_CONFLICT), not a repeat.
        const key = s.idempotencyKey === undefined ? undefined : `${type}/${s.idempotencyKey}`;
        const known = key === undefined ? undefined : seqOfIdempotencyKey.get(key);
        const seq = nextSeq++;
        scriptOf.set(seq, s.scripts);
        const event = await bus().publish(
          type,
          { seq },
          {
            ...(s.orderingKey ? { orderingKey: s.orderingKey } : {}),
            ...(key ? { idempotencyKey: key } : {}),
          },
        );
        if (known !== undefined) {
          // The same idempotency key: the first event comes back and nothing new is delivered.
          expect(event.payload.seq).toBe(known);
          continue;
        }
        expect(event.payload.seq).toBe(seq);
        if (key) seqOfIdempotencyKey.set(key, seq);
        seqOfEventId.set(event.eventId, seq);
        expectEvent(seq, type, s.scripts);
      } else if (s.kind === 'publishMany') {
        const items = s.items.map((item) => ({ seq: nextSeq++, type: TYPES[item.type]!, scripts: item.scripts }));
        for (const item of items) scriptOf.set(item.seq, item.scripts);
        const events = await bus().publishMany(items.map((item) => ({ type: item.type, payload: { seq: item.seq } })));
        expect(events.map((e) => e.payload.seq)).toEqual(items.map((item) => item.seq));
        events.forEach((event, k) => seqOfEventId.set(event.eventId, items[k]!.seq));
        for (const item of items) expectEvent(item.seq, item.type, item.scripts);
      } else if (s.kind === 'idle') {
        await settle();
      } else if (s.kind === 'restart') {
        if ((await bus().health()).unprocessed > 0) coverage.restartsWithWorkPending++;
        await Promise.all(buses.map((b) => b.stop()));
        buses = Array.from({ length: p.workers }, makeBus);
        await Promise.all(buses.map((b) => b.start()));
      } else {
        // Redrive what is dead now: wait until the model's dead letters are the bus's.
        await settle();
        const dead = deadInModel();
        const letters = await bus().deadLetters.list({ limit: 1000 });
        const keyOf = (dl: (typeof letters)[number]) => `${seqOfEventId.get(dl.eventId)}|${dl.subscriber}`;
        expect(letters.map(keyOf).sort(), 'dead letters before a redrive').toEqual(dead);
        let redriven: string[];
        if (s.target === 'all') {
          redriven = dead;
          expect(await bus().deadLetters.redrive({ limit: 1000 })).toBe(dead.length);
        } else if (s.target === 'subscriber') {
          const name = names[s.pick % names.length]!;
          redriven = dead.filter((key) => key.endsWith(`|${name}`));
          expect(await bus().deadLetters.redrive({ subscriber: name, limit: 1000 })).toBe(redriven.length);
        } else {
          if (dead.length === 0) continue;
          const key = dead[s.pick % dead.length]!;
          redriven = [key];
          const letter = letters.find((dl) => keyOf(dl) === key)!;
          expect(await bus().deadLetters.redrive(letter.id)).toBe(1);
        }
        for (const key of redriven) runRound(model.get(key)!);
        coverage.redrivenRounds += redriven.length;
      }
    }
    await settle();

    // Every pair ran exactly as its own script says: no loss, no extra run.
    const seen = new Set([...calls.keys()]);
    for (const [key, pair] of model) {
      const got = calls.get(key) ?? [];
      seen.delete(key);
      expect(
        got.map((c) => c.attempt),
        `ctx.attempt of every call of ${key}`,
      ).toEqual(pair.attempts);
      expect(new Set(got.map((c) => c.deliveryId)).size, `one deliveryId for ${key}`).toBe(1);
      expect(got.filter((c) => c.result === 'ok').length, `successes of ${key}`).toBe(
        pair.status === 'succeeded' ? 1 : 0,
      );
    }
    expect([...seen], 'calls of pairs that should not exist').toEqual([]);

    // What did not succeed is dead-lettered, once, with the attempts of its last round.
    const letters = await bus().deadLetters.list({ limit: 1000 });
    const dead = deadInModel();
    expect(
      letters.map((dl) => `${seqOfEventId.get(dl.eventId)}|${dl.subscriber}`).sort(),
      'dead letters at the end',
    ).toEqual(dead);
    for (const dl of letters) {
      const key = `${seqOfEventId.get(dl.eventId)}|${dl.subscriber}`;
      expect(dl.attempts, `attempts of the dead letter of ${key}`).toBe(model.get(key)!.attempts.at(-1));
      expect(dl.id, `the dead letter of ${key} is known by its delivery id`).toBe(calls.get(key)![0]!.deliveryId);
    }

    // And the storage agrees that every event is finished.
    const health = await bus().health();
    expect(health.unprocessed).toBe(0);
    expect(health.deadLetters).toBe(dead.length);
    const { events } = await bus().timeline({ limit: 1000 });
    expect(events).toHaveLength(seqOfEventId.size);
    for (const event of events) expect(event.processed, `processed flag of event ${event.payload.seq}`).toBe(true);
    coverage.pairs = model.size;
    coverage.deadAtEnd = dead.length;
    coverage.retriedPairs = [...model.values()].filter((pair) => pair.attempts.length > 1).length;
    return coverage;
  } finally {
    await Promise.all(buses.map((b) => b.stop()));
  }
}

/** A plan with every kind of step, worked out by hand (see {@link FIXED_PLAN_COVERAGE}). */
export const FIXED_PLAN: Plan = {
  subscribers: [0, 1, 4],
  subscriberConcurrency: [undefined, 1, 2],
  concurrency: 2,
  workers: 2,
  slowHandlers: true,
  steps: [
    { kind: 'publish', type: 0, scripts: [['fail', 'fail', 'fail', 'ok'], ['non-retryable'], []] },
    { kind: 'publish', type: 2, orderingKey: 'k1', scripts: [['retry-after'], [], ['fail', 'fail', 'fail']] },
    { kind: 'publishMany', items: [{ type: 1, scripts: [[], ['fail'], ['fail', 'fail', 'fail', 'fail']] }] },
    { kind: 'restart' },
    { kind: 'redrive', target: 'one', pick: 1 },
    { kind: 'publish', type: 1, idempotencyKey: 'i1', scripts: [[], [], []] },
    { kind: 'publish', type: 1, idempotencyKey: 'i1', scripts: [[], [], []] },
    { kind: 'redrive', target: 'all', pick: 0 },
    { kind: 'redrive', target: 'subscriber', pick: 2 },
    { kind: 'publish', type: 2, scripts: [['non-retryable'], [], []] },
  ],
};

/**
 * What {@link FIXED_PLAN} must exercise: 12 pairs; '0|sub1' redriven alone, then the three other dead
 * letters, which then succeed; only '5|sub0' of the last event stays dead; the restart finds work pending.
 */
export const FIXED_PLAN_COVERAGE = { pairs: 12, redrivenRounds: 4, deadAtEnd: 1, restartsWithWorkPending: 1 };

/**
 * Declares the property's tests (inside a `describe`). `setup` runs before each plan and returns the
 * storage factory for it, and a cleanup to run after it.
 */
export function deliveryPropertyTests(
  setup: () => Promise<{ makeStorage: StorageFactory; cleanup?: () => Promise<void> }>,
  options: { numRuns: number; timeoutMs: number },
): void {
  const run = async (p: Plan): Promise<Coverage> => {
    const { makeStorage, cleanup } = await setup();
    try {
      return await check(p, makeStorage);
    } finally {
      await cleanup?.();
    }
  };

  it(
    'ends every (event, subscriber) pair succeeded once or dead-lettered, running each only for its own failures',
    async () => {
      const total: Coverage = { pairs: 0, redrivenRounds: 0, deadAtEnd: 0, retriedPairs: 0, restartsWithWorkPending: 0 };
      await fc.assert(
        fc.asyncProperty(plan, async (p) => {
          const c = await run(p);
          for (const key of Object.keys(total) as (keyof Coverage)[]) total[key] += c[key];
        }),
        { numRuns: Number(process.env.PROPERTY_RUNS ?? options.numRuns) },
      );
      // The generated plans did exercise retries, dead letters, redrives and restarts mid-work.
      for (const [key, value] of Object.entries(total)) expect(value, key).toBeGreaterThan(0);
    },
    options.timeoutMs,
  );

  it('holds for a plan with every kind of step (a fixed example)', async () => {
    expect(await run(FIXED_PLAN)).toMatchObject(FIXED_PLAN_COVERAGE);
  }, 60_000);
}
