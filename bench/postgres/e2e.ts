/**
 * End to end on one PostgreSQL server, side by side: events published with
 * `publishMany` until a no-op handler finished each (concurrency 10), against
 * graphile-worker 0.17 (local queue, its best configuration) and pg-boss 10
 * doing the same work; the cost of fan-out to 3 subscribers; and the latency
 * from commit to handler start when idle (ours woken by LISTEN/NOTIFY across
 * two buses, as across processes; graphile-worker the same way).
 *
 *   npx tsx bench/postgres/e2e.ts [--quick]
 * Exit code 1 when a target is missed.
 */
import { createEventBus } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { makeWorkerUtils, run as runGraphile } from 'graphile-worker';
import PgBoss from 'pg-boss';
import { uuidv7 } from '../../src/uuidv7';
import { flag, loadAverage, table } from '../core/util';
import { catalog, createBenchDatabase, payload, percentile, rate, ratio, sleep } from './_db';

const quick = flag('quick');
const N = quick ? 2000 : 20_000;
const LATENCY_SAMPLES = quick ? 50 : 300;
const CHUNK = 500;

const bench = await createBenchDatabase(10);
const silent = () => () => {};
const graphileLogger = { scope: () => graphileLogger, debug() {}, info() {}, warn() {}, error() {} };

async function ours(subscribers: number, schema: string): Promise<number> {
  await migrate(bench.db, { schema });
  const bus = createEventBus({
    catalog,
    storage: postgresStorage({ db: bench.db, schema }),
    dispatch: { concurrency: 10, batchSize: 100 },
  });
  let handled = 0;
  for (let i = 0; i < subscribers; i++)
    bus.subscribe('bench.item_created', () => void handled++, { name: `noop_${i}` });
  await bus.start();
  const t0 = performance.now();
  for (let at = 0; at < N; at += CHUNK) {
    await bus.publishMany(
      Array.from({ length: CHUNK }, (_, i) => ({ type: 'bench.item_created' as const, payload: payload(at + i) })),
    );
  }
  await bus.idle({ timeoutMs: 30 * 60_000 });
  const seconds = (performance.now() - t0) / 1000;
  if (handled !== N * subscribers) throw new Error(`ours: handled ${handled} of ${N * subscribers}`);
  await bus.stop();
  return N / seconds;
}

async function graphile(schema: string): Promise<number> {
  let handled = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const runner = await runGraphile({
    connectionString: bench.url,
    schema,
    concurrency: 10,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: graphileLogger as never,
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } as never,
    taskList: {
      noop: async () => {
        if (++handled === N) resolveDone();
      },
    },
  });
  const utils = await makeWorkerUtils({ connectionString: bench.url, schema });
  const t0 = performance.now();
  for (let at = 0; at < N; at += CHUNK) {
    await utils.addJobs(Array.from({ length: CHUNK }, (_, i) => ({ identifier: 'noop', payload: payload(at + i) })));
  }
  await done;
  const seconds = (performance.now() - t0) / 1000;
  await utils.release();
  await runner.stop();
  return N / seconds;
}

async function pgBoss(): Promise<number> {
  const boss = new PgBoss({ connectionString: bench.url, schema: 'pgboss', max: 10 });
  boss.on('error', silent());
  await boss.start();
  await boss.createQueue('noop');
  let handled = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  // pg-boss 10 has no per-worker concurrency: 10 workers, each fetching batches of 50.
  for (let i = 0; i < 10; i++) {
    await boss.work('noop', { batchSize: 50, pollingIntervalSeconds: 0.5 }, async (jobs) => {
      handled += jobs.length;
      if (handled >= N) resolveDone();
    });
  }
  const t0 = performance.now();
  for (let at = 0; at < N; at += CHUNK) {
    await boss.insert(Array.from({ length: CHUNK }, (_, i) => ({ name: 'noop', data: payload(at + i) })));
  }
  await done;
  const seconds = (performance.now() - t0) / 1000;
  await boss.stop({ graceful: false, wait: true, timeout: 2000 });
  return N / seconds;
}

async function rawMultiRow(): Promise<number> {
  await migrate(bench.db, { schema: 'raw' });
  const sql = bench.sql;
  const row = (n: number) => {
    const id = uuidv7();
    return {
      id,
      event_id: id,
      event_type: 'bench.item_created',
      event_version: '1.0.0',
      payload: JSON.stringify(payload(n)),
      metadata: JSON.stringify({ source: 'api', environment: 'production' }),
      created_at: new Date().toISOString(),
    };
  };
  const t0 = performance.now();
  for (let at = 0; at < N; at += CHUNK) {
    await sql`INSERT INTO raw.events ${sql(
      Array.from({ length: CHUNK }, (_, i) => row(at + i)),
      'id',
      'event_id',
      'event_type',
      'event_version',
      'payload',
      'metadata',
      'created_at',
    )}`;
  }
  return N / ((performance.now() - t0) / 1000);
}

async function ourLatency(): Promise<number[]> {
  await migrate(bench.db, { schema: 'lat' });
  const other = bench.client(10);
  const publisher = createEventBus({ catalog, storage: postgresStorage({ db: bench.db, schema: 'lat' }) });
  const worker = createEventBus({
    catalog,
    storage: postgresStorage({ db: other.db, schema: 'lat' }),
    dispatch: { pollIntervalMs: 60_000 },
  });
  let started: (t: number) => void = () => {};
  worker.subscribe('bench.item_created', () => started(performance.now()), { name: 'latency' });
  await worker.start();
  await sleep(200);
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const handlerStart = new Promise<number>((r) => (started = r));
    await publisher.publish('bench.item_created', payload(i));
    const committed = performance.now();
    samples.push(Math.max(0, (await handlerStart) - committed));
    await sleep(20);
  }
  await worker.stop();
  await publisher.stop();
  return samples;
}

async function graphileLatency(): Promise<number[]> {
  let started: (t: number) => void = () => {};
  const runner = await runGraphile({
    connectionString: bench.url,
    schema: 'gw_lat',
    concurrency: 10,
    noHandleSignals: true,
    pollInterval: 60_000,
    logger: graphileLogger as never,
    taskList: { noop: async () => started(performance.now()) },
  });
  const utils = await makeWorkerUtils({ connectionString: bench.url, schema: 'gw_lat' });
  await sleep(200);
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const handlerStart = new Promise<number>((r) => (started = r));
    await utils.addJob('noop', payload(i));
    const committed = performance.now();
    samples.push(Math.max(0, (await handlerStart) - committed));
    await sleep(20);
  }
  await utils.release();
  await runner.stop();
  return samples;
}

try {
  const raw = await rawMultiRow();
  const one = await ours(1, 'one_sub');
  const three = await ours(3, 'three_subs');
  const gw = await graphile('gw');
  const boss = await pgBoss();
  const lat = await ourLatency();
  const gwLat = await graphileLatency();

  const p = (v: number[], q: number) => `${percentile(v, q).toFixed(1)} ms`;
  const perEventCost = one / three; // time per event with 3 subscribers / with 1
  const targets: [string, boolean][] = [
    ['≥ 1.5× graphile-worker (local queue)', one >= gw * 1.5],
    ['≥ pg-boss', one >= boss],
    ['≥ 50% of raw multi-row INSERT', one >= raw * 0.5],
    ['3 subscribers cost ≤ 1.25× one', perEventCost <= 1.25],
    ['idle latency p50 ≤ 3 ms', percentile(lat, 50) <= 3],
    ['idle latency p99 ≤ 10 ms', percentile(lat, 99) <= 10],
    ['latency no worse than graphile-worker (p50)', percentile(lat, 50) <= percentile(gwLat, 50)],
  ];
  process.stdout.write(
    [
      '## PostgreSQL: end to end (publish → no-op handler done)',
      '',
      `${N} events, published in batches of ${CHUNK} while the workers run, concurrency 10, one process, one run. Load average at the end: ${loadAverage()}.`,
      '',
      table(
        ['system', 'events/s', 'vs ours (1 subscriber)'],
        [
          ['@blawby/event-bus, 1 subscriber', rate(one), '1.00×'],
          [
            '@blawby/event-bus, 3 subscribers (events/s)',
            rate(three),
            `cost per event ${perEventCost.toFixed(2)}× one subscriber's`,
          ],
          ['graphile-worker 0.17, local queue 500', rate(gw), ratio(one, gw)],
          ['pg-boss 10.4, 10 workers × batches of 50', rate(boss), ratio(one, boss)],
          ['raw multi-row INSERT (500), no processing', rate(raw), ratio(one, raw)],
        ],
      ),
      '',
      `Latency from commit to handler start when idle (${LATENCY_SAMPLES} samples, 20 ms apart):`,
      '',
      table(
        ['system', 'p50', 'p90', 'p99'],
        [
          ['@blawby/event-bus (another bus woken by LISTEN/NOTIFY)', p(lat, 50), p(lat, 90), p(lat, 99)],
          ['graphile-worker 0.17', p(gwLat, 50), p(gwLat, 90), p(gwLat, 99)],
        ],
      ),
      '',
      table(
        ['target', ''],
        targets.map(([t, ok]) => [t, ok ? 'met' : 'missed']),
      ),
      '',
    ].join('\n'),
  );
  process.exitCode = targets.every(([, ok]) => ok) ? 0 : 1;
} finally {
  await bench.drop();
}
