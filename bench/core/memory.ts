/**
 * Memory over a long run: millions of events through the bus on the in-memory
 * storage with a bounded window (`memoryStorage({ maxEvents })`). The heap used
 * after a full GC is sampled at regular intervals; it must stay flat, because
 * the storage keeps only the recent window for timeline/replay and releases
 * finished delivery state.
 *
 * Prints a markdown section on stdout; progress goes to stderr.
 * Usage: node --import tsx --expose-gc bench/core/memory.ts [--quick] [--events 2000000] [--every 200000]
 */
import { z } from 'zod';
import {
  collectGarbage,
  flag,
  formatMb,
  formatRate,
  hardTimeout,
  loadAverage,
  option,
  progress,
  table,
  withDeadline,
} from './util';

const quick = flag('quick');
const total = Number(option('events') ?? (quick ? 200_000 : 2_000_000));
const every = Number(option('every') ?? (quick ? 20_000 : 200_000));
const maxEvents = Number(option('max-events') ?? 10_000);
/** Publishes between two waits for the handlers to catch up. */
const WINDOW = 1_000;
/** Bounded: the last sample is at most this many times the reference sample. */
const GROWTH_LIMIT = 1.5;
const SUBSCRIBERS = 3;
/** One event in this many fails its first attempt at the flaky subscriber (exercises retry state). */
const FAIL_EVERY = 100;

hardTimeout(quick ? 5 * 60_000 : 30 * 60_000, 'memory benchmark');

interface HeapSample {
  events: number;
  heapUsed: number;
  rss: number;
}

async function main(): Promise<{ markdown: string; passed: boolean }> {
  if (!collectGarbage()) throw new Error('run with node --expose-gc: heap samples need a full GC');
  const { createEventBus, defineCatalog, defineEvent, memoryStorage } = await import('../../src/index');
  const catalog = defineCatalog({
    'auth.user_signed_up': defineEvent({
      version: '1.0.0',
      description: 'New user account created',
      payload: z.object({
        email: z.string().email(),
        name: z.string(),
        signupMethod: z.enum(['email', 'google', 'github']),
      }),
    }),
  });
  const bus = createEventBus({ catalog, storage: memoryStorage({ maxEvents }), environment: 'bench' });

  let handled = 0;
  let waitingFor = Infinity;
  let caughtUp: () => void = () => {};
  const onHandled = () => {
    if (++handled >= waitingFor) {
      waitingFor = Infinity;
      caughtUp();
    }
  };
  // An exact-type subscriber, a wildcard one, and one whose first attempt fails for
  // 1 event in FAIL_EVERY: finished and retried delivery state must all be released.
  bus.subscribe('auth.user_signed_up', async () => onHandled(), { name: 'bench.exact' });
  bus.subscribe('*', async () => onHandled(), { name: 'bench.all' });
  bus.subscribe(
    'auth.user_signed_up',
    async (event, ctx) => {
      const n = Number(event.payload.email.slice(4, -'@example.com'.length));
      if (ctx.attempt === 1 && n % FAIL_EVERY === 0) throw new Error('transient failure (benchmark)');
      onHandled();
    },
    { name: 'bench.flaky', retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5 } },
  );
  await bus.start();

  /** Resolves once the handlers have run `target` times. */
  const handledReaches = (target: number): Promise<void> => {
    if (handled >= target) return Promise.resolve();
    return new Promise<void>((resolve) => {
      waitingFor = target;
      caughtUp = resolve;
    });
  };

  const sample = (events: number): HeapSample => {
    collectGarbage();
    const usage = process.memoryUsage();
    return { events, heapUsed: usage.heapUsed, rss: usage.rss };
  };

  const samples: HeapSample[] = [sample(0)];
  const loadBefore = loadAverage();
  progress(`memory: ${total} events, sample every ${every}, maxEvents ${maxEvents}, ${SUBSCRIBERS} subscribers`);
  const t0 = process.hrtime.bigint();
  let published = 0;
  while (published < total) {
    const end = Math.min(total, published + WINDOW);
    for (; published < end; published++) {
      await bus.publish('auth.user_signed_up', {
        email: `user${published}@example.com`,
        name: 'Ada Lovelace',
        signupMethod: 'email',
      });
    }
    await withDeadline(handledReaches(published * SUBSCRIBERS), 120_000, `handlers after ${published} events`);
    if (published % every === 0) {
      await withDeadline(bus.idle(), 120_000, 'bus.idle()');
      const s = sample(published);
      samples.push(s);
      progress(`${published} events: heap ${formatMb(s.heapUsed)}, rss ${formatMb(s.rss)}  (load ${loadAverage()})`);
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const stats = bus.stats();
  const page = await bus.timeline({ limit: 1000 });
  await bus.stop();

  if (handled !== total * SUBSCRIBERS) throw new Error(`handlers ran ${handled} times, expected ${total * SUBSCRIBERS}`);
  const expectedRetries = Math.ceil(total / FAIL_EVERY);
  if (stats.retried !== expectedRetries || stats.failed !== 0) {
    throw new Error(`expected ${expectedRetries} retries and no failure, got ${stats.retried} and ${stats.failed}`);
  }

  const last = samples[samples.length - 1]!;
  const reference = samples.find((s) => s.events >= 2 * every) ?? samples[1] ?? last;
  const max = samples.reduce((a, b) => (b.heapUsed > a.heapUsed ? b : a));
  const bounded = last.heapUsed <= GROWTH_LIMIT * reference.heapUsed;

  const out: string[] = [];
  out.push('## Memory: long run on the in-memory storage');
  out.push('');
  out.push(
    `${total.toLocaleString('en-US')} events published through the bus (validation on, ${SUBSCRIBERS} subscribers: one exact, ` +
      `one \`*\`, and one that fails the first attempt of 1 event in ${FAIL_EVERY} and succeeds on retry), ` +
      `\`memoryStorage({ maxEvents: ${maxEvents.toLocaleString('en-US')} })\`, handlers awaited every ${WINDOW.toLocaleString('en-US')} events; ` +
      `heap used sampled after a full GC every ${every.toLocaleString('en-US')} events. ` +
      `Throughput over the run: ${formatRate(total / seconds)} events (${formatRate((total * SUBSCRIBERS) / seconds)} deliveries). ` +
      `Load average before: ${loadBefore}, after: ${loadAverage()}.`,
  );
  out.push('');
  out.push(
    table(
      ['events', 'heap used after GC', 'rss'],
      samples.map((s) => [s.events.toLocaleString('en-US'), formatMb(s.heapUsed), formatMb(s.rss)]),
    ),
  );
  out.push('');
  out.push(
    table(
      ['first sample (0)', `reference (${reference.events.toLocaleString('en-US')})`, 'last', 'max', 'bounded (last ≤ 1.5 × reference)'],
      [
        [
          formatMb(samples[0]!.heapUsed),
          formatMb(reference.heapUsed),
          formatMb(last.heapUsed),
          `${formatMb(max.heapUsed)} at ${max.events.toLocaleString('en-US')}`,
          bounded ? 'PASS' : 'FAIL',
        ],
      ],
    ),
  );
  out.push('');
  out.push(
    `Bus stats at the end: published ${stats.published.toLocaleString('en-US')}, processed ${stats.processed.toLocaleString('en-US')}, ` +
      `retried ${stats.retried.toLocaleString('en-US')}, failed ${stats.failed}; ` +
      `timeline still serves the newest events (${page.events.length} on a page of 1000).`,
  );
  out.push('');
  return { markdown: out.join('\n'), passed: bounded };
}

main().then(
  (result) => {
    process.stdout.write(`${result.markdown}\n`);
    process.exit(result.passed ? 0 : 1);
  },
  (error: unknown) => {
    progress(`memory benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(3);
  },
);
