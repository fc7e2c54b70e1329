/**
 * Through a broker, side by side in one run: events published with
 * `publishMany` into PostgreSQL, forwarded by the outbox relay to Redis
 * Streams or NATS JetStream, until a no-op handler (concurrency 10) finished
 * each; against BullMQ on the same Redis doing the same work (`addBulk` and a
 * worker at concurrency 10). Throughput, and latency from publish to handler
 * start (p50, p99). Then scaling: the same work by one worker process and by
 * three, each handler waiting 5 ms of I/O. Private redis-server and
 * nats-server on free ports, started and removed by this script.
 *
 *   npx tsx bench/postgres/brokers.ts [--quick]
 * Targets: ours ≥ BullMQ's throughput with p99 no worse; 3 processes ≥ 2.5× one.
 * Exit code 1 when a target is missed.
 */
import { Queue, Worker } from 'bullmq';
import { createEventBus, type Transport } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { natsTransport } from '@blawby/event-bus/nats';
import { redisTransport } from '@blawby/event-bus/redis';
import { startNatsServer } from '../../test/nats/fixtures/nats-server';
import { workerCatalog } from '../../test/postgres/fixtures/catalog';
import { handledCounter, startWorker, stopWorker, type WorkerProcess } from '../../test/postgres/fixtures/processes';
import { startThrowawayRedis } from '../../test/redis/fixtures/throwaway-redis';
import { flag, loadAverage, table } from '../core/util';
import { catalog, createBenchDatabase, payload, percentile, rate, ratio, sleep } from './_db';

const quick = flag('quick');
const N = quick ? 2000 : 20_000;
const CHUNK = 500;
const SCALE_EVENTS = quick ? 1000 : 10_000;

const bench = await createBenchDatabase(10);
const redis = await startThrowawayRedis();
const nats = await startNatsServer();
let runs = 0;

interface Result {
  perSecond: number;
  p50: number;
  p99: number;
}

/** Our bus on PostgreSQL with `transport`: publish N, wait until each was handled. */
async function ours(transport: Transport): Promise<Result> {
  const schema = `br${++runs}`;
  await migrate(bench.db, { schema });
  const bus = createEventBus({
    catalog,
    storage: postgresStorage({ db: bench.db, schema, relay: { pollMs: 50 } }),
    transport,
    dispatch: { concurrency: 10 },
  });
  const published = new Float64Array(N);
  const latencies: number[] = [];
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  bus.subscribe(
    'bench.item_created',
    (e) => {
      latencies.push(performance.now() - published[e.payload.n]!);
      if (++handled === N) done();
    },
    { name: 'noop' },
  );
  await bus.start();
  const t0 = performance.now();
  for (let at = 0; at < N; at += CHUNK) {
    const now = performance.now();
    for (let i = 0; i < CHUNK; i++) published[at + i] = now;
    await bus.publishMany(Array.from({ length: CHUNK }, (_, i) => ({ type: 'bench.item_created' as const, payload: payload(at + i) })));
  }
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  await bus.stop();
  return { perSecond: N / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** BullMQ on the same Redis: addBulk in the same chunks, a worker at the same concurrency. */
async function bullmq(): Promise<Result> {
  const connection = { url: redis.url, maxRetriesPerRequest: null };
  const name = `bench${++runs}`;
  const queue = new Queue(name, { connection });
  const latencies: number[] = [];
  const published = new Float64Array(N);
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const worker = new Worker(
    name,
    async (job) => {
      latencies.push(performance.now() - published[(job.data as { n: number }).n]!);
      if (++handled === N) done();
    },
    { connection, concurrency: 10, removeOnComplete: { count: 0 } },
  );
  await worker.waitUntilReady();
  const t0 = performance.now();
  for (let at = 0; at < N; at += CHUNK) {
    const now = performance.now();
    for (let i = 0; i < CHUNK; i++) published[at + i] = now;
    await queue.addBulk(Array.from({ length: CHUNK }, (_, i) => ({ name: 'item', data: payload(at + i), opts: { removeOnComplete: true } })));
  }
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { perSecond: N / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/**
 * Worker processes sharing one subscriber through `kind`, each handler only
 * waiting 5 ms (the workers count what they handled and print it, so no
 * bookkeeping loads the database); deliveries per second.
 */
async function scale(kind: 'redis' | 'nats', processes: number): Promise<number> {
  const schema = `bs${++runs}`;
  await migrate(bench.db, { schema });
  const env = {
    DB_URL: bench.url,
    SCHEMA: schema,
    SUBSCRIBERS: '1',
    CONCURRENCY: '10',
    HANDLER_MS: '5',
    TRANSPORT: kind,
    BROKER_URL: kind === 'redis' ? redis.url : nats.url,
    PREFIX: `scale${runs}`,
    COUNT_ONLY: '1',
  };
  const workers: WorkerProcess[] = [];
  try {
    for (let i = 1; i <= processes; i++) workers.push(await startWorker(`w${i}`, env));
    const handled = handledCounter(workers);
    const publisher = createEventBus({ catalog: workerCatalog, storage: postgresStorage({ db: bench.db, schema }) });
    const t0 = performance.now();
    for (let at = 0; at < SCALE_EVENTS; at += CHUNK) {
      await publisher.publishMany(
        Array.from({ length: Math.min(CHUNK, SCALE_EVENTS - at) }, (_, i) => ({ type: 'test.item_created' as const, payload: { n: at + i } })),
      );
    }
    while (handled() < SCALE_EVENTS) await sleep(5);
    const seconds = (performance.now() - t0) / 1000;
    await publisher.stop();
    return SCALE_EVENTS / seconds;
  } finally {
    await Promise.all(workers.map(stopWorker));
  }
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

try {
  // Alternate the contenders so that drift in the machine's load falls on both.
  const bull = await bullmq();
  const viaRedis = await ours(redisTransport({ url: redis.url, prefix: `bench${runs}` }));
  const viaNats = await ours(natsTransport({ servers: nats.url, prefix: `bench${runs}` }));
  const bull2 = await bullmq();
  const bullBest = bull.perSecond >= bull2.perSecond ? bull : bull2;
  const scaled: [string, number, number][] = [];
  for (const kind of ['redis', 'nats'] as const) scaled.push([kind, await scale(kind, 1), await scale(kind, 3)]);
  const targets: [string, boolean][] = [
    ['Redis relay path ≥ BullMQ throughput', viaRedis.perSecond >= bullBest.perSecond],
    ['Redis relay path p99 ≤ BullMQ p99', viaRedis.p99 <= bullBest.p99],
    ...scaled.map(([kind, one, three]): [string, boolean] => [`${kind}: 3 processes ≥ 2.5× one`, three >= 2.5 * one]),
  ];
  const row = (label: string, r: Result) => [label, rate(r.perSecond), ratio(r.perSecond, bullBest.perSecond), ms(r.p50), ms(r.p99)];
  process.stdout.write(
    [
      '## Through a broker: PostgreSQL → relay → Redis or NATS, against BullMQ',
      '',
      `${N.toLocaleString('en')} events published with \`publishMany\` (${CHUNK} each) until a no-op handler finished each, concurrency 10; latency from publish to handler start. BullMQ: \`addBulk\` of ${CHUNK} and a worker at concurrency 10 on the same private Redis (best of two runs, one before and one after ours). Load average at the end: ${loadAverage()}.`,
      '',
      table(
        ['path', 'throughput', 'vs BullMQ', 'p50', 'p99'],
        [row('PostgreSQL → relay → Redis Streams', viaRedis), row('PostgreSQL → relay → NATS JetStream', viaNats), row('BullMQ (Redis only)', bullBest)],
      ),
      '',
      `Scaling: ${SCALE_EVENTS.toLocaleString('en')} events, one subscriber shared by the worker processes, each handler waiting 5 ms (and counting), concurrency 10 per process.`,
      '',
      table(
        ['broker', '1 process', '3 processes', 'ratio'],
        scaled.map(([kind, one, three]) => [kind, rate(one), rate(three), ratio(three, one)]),
      ),
      '',
      table(['target', ''], targets.map(([t, ok]) => [t, ok ? 'met' : 'missed'])),
      '',
    ].join('\n'),
  );
  process.exitCode = targets.every(([, ok]) => ok) ? 0 : 1;
} finally {
  await bench.drop();
  await redis.destroy();
  await nats.destroy();
}
