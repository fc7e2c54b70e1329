/**
 * In-process throughput: publish -> handler done, one event at a time.
 *
 * Contenders, run side by side in one process with alternating repetitions
 * (each round runs every contender once, in a rotated order), so that load
 * from other processes hits them alike and the ratios stay meaningful:
 *
 * - raw:      eventemitter3 emitting a freshly built envelope (crypto.randomUUID(),
 *             new Date) to one async listener; each emit awaited until the listener is done.
 * - emittery: `await emitter.emit('evt', envelope)` to one async listener.
 * - bus x1:   `await bus.publish(...)` then await the handler, zod validation on,
 *             default memory storage and in-process transport, one subscriber.
 * - bus x3:   the same with three subscribers (done = all three handlers done).
 *
 * Prints a markdown section on stdout; progress goes to stderr.
 * Usage: node --import tsx --expose-gc bench/core/inprocess.ts [--quick] [--rounds 7] [--n 200000] [--only raw,emittery,bus1,bus3] [--max-events N]
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import Emittery from 'emittery';
import { EventEmitter } from 'eventemitter3';
import { z } from 'zod';
import {
  collectGarbage,
  flag,
  formatPct,
  formatRate,
  hardTimeout,
  loadAverage,
  median,
  option,
  progress,
  table,
  withDeadline,
} from './util';

const quick = flag('quick');
const rounds = Number(option('rounds') ?? (quick ? 3 : 7));
const n = Number(option('n') ?? (quick ? 20_000 : 200_000));
const warmupN = Math.min(n, quick ? 5_000 : 50_000);
/** Diagnostic: the bus on `memoryStorage({ maxEvents })` instead of the default storage. */
const maxEvents = option('max-events') === undefined ? undefined : Number(option('max-events'));
/** No single repetition may take longer than this (a lost event must fail the run, not hang it). */
const ROUND_DEADLINE_MS = 180_000;

hardTimeout(quick ? 5 * 60_000 : 45 * 60_000, 'inprocess benchmark');

interface SignupPayload {
  email: string;
  name: string;
  signupMethod: 'email' | 'google' | 'github';
}

const METHODS = ['email', 'google', 'github'] as const;

/** A fresh payload per event, the same for every contender. */
function payloadFor(i: number): SignupPayload {
  return { email: `user${i}@example.com`, name: 'Ada Lovelace', signupMethod: METHODS[i % 3]! };
}

/** An envelope of the seed's shape, built the way a hand-written emitter would. */
function envelopeFor(i: number) {
  return {
    eventId: randomUUID(),
    eventType: 'auth.user_signed_up',
    eventVersion: '1.0.0',
    timestamp: new Date(),
    actor: undefined as string | undefined,
    payload: payloadFor(i),
    metadata: { source: 'api', environment: 'bench' },
    processed: false,
    retryCount: 0,
  };
}

/** One prepared contender: `run(count)` is what gets timed. */
interface Runner {
  run(count: number): Promise<void>;
  /** Events the handlers saw (checked against what was sent). */
  handled(): number;
  teardown(): Promise<void>;
}

interface Contender {
  key: string;
  label: string;
  /** Handler completions expected per event. */
  fanout: number;
  setup(): Promise<Runner>;
}

/** (a) The raw limit: eventemitter3, one async listener, each emit awaited until it is done. */
const rawContender: Contender = {
  key: 'raw',
  label: '(a) eventemitter3 raw, 1 listener',
  fanout: 1,
  async setup() {
    const emitter = new EventEmitter();
    let handled = 0;
    let done: () => void = () => {};
    emitter.on('evt', async (event: ReturnType<typeof envelopeFor>) => {
      if (event.payload.email.length > 0) handled++;
      done();
    });
    return {
      async run(count) {
        for (let i = 0; i < count; i++) {
          const finished = new Promise<void>((resolve) => (done = resolve));
          emitter.emit('evt', envelopeFor(i));
          await finished;
        }
      },
      handled: () => handled,
      async teardown() {
        emitter.removeAllListeners();
      },
    };
  },
};

/** (b) The nearest peer: emittery, whose `emit` resolves when the listeners are done. */
const emitteryContender: Contender = {
  key: 'emittery',
  label: '(b) emittery, 1 listener',
  fanout: 1,
  async setup() {
    const emitter = new Emittery<{ evt: ReturnType<typeof envelopeFor> }>();
    let handled = 0;
    emitter.on('evt', async (event) => {
      if (event.payload.email.length > 0) handled++;
    });
    return {
      async run(count) {
        for (let i = 0; i < count; i++) await emitter.emit('evt', envelopeFor(i));
      },
      handled: () => handled,
      async teardown() {
        emitter.clearListeners();
      },
    };
  },
};

type Core = typeof import('../../src/index');

/** The bus module, or `undefined` (with a note) when it cannot be loaded. */
async function loadCore(): Promise<Core | undefined> {
  try {
    return await import('../../src/index');
  } catch (error) {
    progress(`bus not available (${(error as Error).message.split('\n')[0]}); skipping bus contenders`);
    return undefined;
  }
}

/** The bus with `subscribers` handlers; an event is done when all of them are. */
function busContender(core: Core, subscribers: number): Contender {
  const { createEventBus, defineCatalog, defineEvent, memoryStorage } = core;
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
  return {
    key: `bus${subscribers}`,
    label: `bus, ${subscribers} subscriber${subscribers > 1 ? 's' : ''}`,
    fanout: subscribers,
    async setup() {
      const bus = createEventBus({
        catalog,
        environment: 'bench',
        ...(maxEvents === undefined ? {} : { storage: memoryStorage({ maxEvents }) }),
      });
      let handled = 0;
      let pending = 0;
      let done: () => void = () => {};
      for (let s = 0; s < subscribers; s++) {
        bus.subscribe(
          'auth.user_signed_up',
          async (event) => {
            if (event.payload.email.length > 0) handled++;
            if (--pending === 0) done();
          },
          { name: `bench.subscriber_${s}` },
        );
      }
      await bus.start();
      return {
        async run(count) {
          for (let i = 0; i < count; i++) {
            pending = subscribers;
            const finished = new Promise<void>((resolve) => (done = resolve));
            await bus.publish('auth.user_signed_up', payloadFor(i));
            await finished;
          }
        },
        handled: () => handled,
        async teardown() {
          await bus.stop();
        },
      };
    },
  };
}

interface Sample {
  /** Events per second, wall clock. */
  rate: number;
  /** Events per second of this process's CPU time (less sensitive to other processes on the machine). */
  cpuRate: number;
}

/** Sets a contender up, times `count` events, checks every handler ran, tears down. */
async function measure(contender: Contender, count: number): Promise<Sample> {
  const runner = await contender.setup();
  collectGarbage();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await withDeadline(runner.run(count), ROUND_DEADLINE_MS, `${contender.label} (${count} events)`);
  const elapsedNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  const handled = runner.handled();
  await runner.teardown();
  if (handled !== count * contender.fanout) {
    throw new Error(`${contender.label}: handlers ran ${handled} times, expected ${count * contender.fanout}`);
  }
  return { rate: count / (elapsedNs / 1e9), cpuRate: count / ((cpu.user + cpu.system) / 1e6) };
}

/** Result of the whole in-process benchmark, for `bench/run.ts` and the markdown. */
export interface InprocessResult {
  markdown: string;
  allPassed: boolean;
}

async function main(): Promise<InprocessResult> {
  const core = await loadCore();
  const bus1 = core && busContender(core, 1);
  const bus3 = core && busContender(core, 3);
  const all = [rawContender, emitteryContender, bus1, bus3].filter((c): c is Contender => c !== undefined);
  // `--only bus1,raw` runs a subset (for profiling); the targets need all four.
  const only = option('only')?.split(',');
  const contenders = only ? all.filter((c) => only.includes(c.key)) : all;

  const gcAvailable = collectGarbage();
  const loadBefore = loadAverage();
  progress(`inprocess: ${rounds} rounds x ${n} events, contenders: ${contenders.map((c) => c.key).join(', ')}`);
  progress(`warm-up (${warmupN} events each)`);
  for (const contender of contenders) await measure(contender, warmupN);

  const samples = new Map<string, Sample[]>(contenders.map((c) => [c.key, []]));
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round so no contender always runs first or last.
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]!);
    const line: string[] = [];
    for (const contender of order) {
      const sample = await measure(contender, n);
      samples.get(contender.key)!.push(sample);
      line.push(`${contender.key} ${formatRate(sample.rate)}`);
    }
    progress(`round ${r + 1}/${rounds}: ${line.join(', ')}  (load ${loadAverage()})`);
  }
  const loadAfter = loadAverage();

  const med = (key: string) => median(samples.get(key)!.map((s) => s.rate));
  const medCpu = (key: string) => median(samples.get(key)!.map((s) => s.cpuRate));
  /** Median over rounds of the per-round ratio a/b (both measured in the same round). */
  const roundRatio = (a: string, b: string) => {
    const xs = samples.get(a)!;
    const ys = samples.get(b)!;
    return median(xs.map((x, i) => x.rate / ys[i]!.rate));
  };

  const rateRows = contenders.map((c) => {
    const rates = samples.get(c.key)!.map((s) => s.rate);
    return [
      c.label,
      formatRate(med(c.key)),
      `${formatRate(Math.min(...rates))} – ${formatRate(Math.max(...rates))}`,
      formatRate(medCpu(c.key)),
      c.key === 'raw' ? '100%' : samples.has('raw') ? formatPct(med(c.key) / med('raw')) : '',
    ];
  });

  const out: string[] = [];
  out.push('## In-process: publish → handler done');
  out.push('');
  out.push(
    `${rounds} rounds × ${n.toLocaleString('en-US')} sequential events per contender, alternating ` +
      `(order rotated each round), after a warm-up of ${warmupN.toLocaleString('en-US')}. ` +
      `Each event is awaited until its handler(s) finished before the next is sent. ` +
      `Bus: zod validation on, ${maxEvents === undefined ? 'default memory storage' : `\`memoryStorage({ maxEvents: ${maxEvents} })\``} and in-process transport. ` +
      `GC before each repetition: ${gcAvailable ? 'yes' : 'no (run with --expose-gc)'}. ` +
      `Load average (1/5/15 min) before: ${loadBefore}, after: ${loadAfter} (on ${os.cpus().length} cores).`,
  );
  out.push('');
  out.push(table(['contender', 'median rate', 'range over rounds', 'median rate per CPU second (all threads)', 'vs (a)'], rateRows));
  out.push('');

  let allPassed = true;
  if (bus1 && bus3 && contenders.length === all.length) {
    /** [target, contender, baseline, minimum ratio, strictly greater] */
    const targets: [string, string, string, number, boolean][] = [
      ['bus ≥ 35% of (a) raw eventemitter3', 'bus1', 'raw', 0.35, false],
      ['bus ≥ 1.25× (b) emittery', 'bus1', 'emittery', 1.25, false],
      ['bus 3 subscribers ≥ 40% of 1 subscriber', 'bus3', 'bus1', 0.4, false],
    ];
    const rows = targets.map(([name, a, b, min, strict]) => {
      const ratio = med(a) / med(b);
      const pass = strict ? ratio > min : ratio >= min;
      if (!pass) allPassed = false;
      return [
        name,
        formatPct(ratio),
        formatPct(roundRatio(a, b)),
        formatPct(medCpu(a) / medCpu(b)),
        `${strict ? '>' : '≥'} ${formatPct(min)}`,
        pass ? 'PASS' : 'FAIL',
      ];
    });
    out.push(
      table(
        ['target', 'ratio of median rates', 'median of per-round ratios', 'ratio of CPU-time rates', 'target', 'result'],
        rows,
      ),
    );
    out.push('');
    out.push(
      'The result is judged on the ratio of median (wall-clock) rates. The CPU-time column divides events by the ' +
        "process's CPU time (all threads, GC helpers included) and is less sensitive to other processes on the machine.",
    );
  } else {
    allPassed = false;
    out.push(
      bus1
        ? '_Only some contenders ran (`--only`): targets not evaluated._'
        : '_The bus was not available (src/index.ts could not be imported): targets not evaluated._',
    );
  }
  out.push('');
  return { markdown: out.join('\n'), allPassed };
}

main().then(
  (result) => {
    process.stdout.write(`${result.markdown}\n`);
    process.exit(result.allPassed ? 0 : 1);
  },
  (error: unknown) => {
    progress(`inprocess benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(3);
  },
);
