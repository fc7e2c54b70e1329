/**
 * Scaling out on PostgreSQL alone: the same work done by one worker process
 * and by three, each running the same 3 subscribers with concurrency 10, each
 * handler waiting 5 ms (I/O) and counting what it handled (the workers print
 * their counts, so no bookkeeping loads the database being measured).
 * Throughput counts deliveries from the first publish to the last handled.
 *
 *   npx tsx bench/postgres/multiprocess.ts [--quick]
 * Target: 3 processes at least 2× one. Exit code 1 when missed.
 */
import { createEventBus } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { workerCatalog } from '../../test/postgres/fixtures/catalog';
import { handledCounter, startWorker, stopWorker, type WorkerProcess } from '../../test/postgres/fixtures/processes';
import { flag, loadAverage, table } from '../core/util';
import { createBenchDatabase, rate, ratio, sleep } from './_db';

const quick = flag('quick');
const EVENTS = quick ? 1000 : 10_000;
const SUBSCRIBERS = 3;
const bench = await createBenchDatabase(10);

async function run(processes: number): Promise<number> {
  const schema = `mp${processes}`;
  await migrate(bench.db, { schema });
  const env = {
    DB_URL: bench.url,
    SCHEMA: schema,
    SUBSCRIBERS: String(SUBSCRIBERS),
    CONCURRENCY: '10',
    HANDLER_MS: '5',
    POLL_MS: '200',
    COUNT_ONLY: '1',
  };
  const workers: WorkerProcess[] = [];
  try {
    for (let i = 1; i <= processes; i++) workers.push(await startWorker(`w${i}`, env));
    const handled = handledCounter(workers);
    const publisher = createEventBus({ catalog: workerCatalog, storage: postgresStorage({ db: bench.db, schema }) });
    const t0 = performance.now();
    for (let at = 0; at < EVENTS; at += 500) {
      await publisher.publishMany(
        Array.from({ length: Math.min(500, EVENTS - at) }, (_, i) => ({ type: 'test.item_created' as const, payload: { n: at + i } })),
      );
    }
    const want = EVENTS * SUBSCRIBERS;
    while (handled() < want) await sleep(5);
    const seconds = (performance.now() - t0) / 1000;
    await publisher.stop();
    return want / seconds;
  } finally {
    await Promise.all(workers.map(stopWorker));
  }
}

try {
  const one = await run(1);
  const three = await run(3);
  const targets: [string, boolean][] = [['3 processes ≥ 2× one process', three >= 2 * one]];
  process.stdout.write(
    [
      '## PostgreSQL: worker processes sharing the work',
      '',
      `${EVENTS.toLocaleString('en')} events × ${SUBSCRIBERS} subscribers, each handler waiting 5 ms, concurrency 10 per process. Load average at the end: ${loadAverage()}.`,
      '',
      table(
        ['worker processes', 'deliveries/s', 'vs one process'],
        [
          ['1', rate(one), '1.00×'],
          ['3', rate(three), ratio(three, one)],
        ],
      ),
      '',
      table(['target', ''], targets.map(([t, ok]) => [t, ok ? 'met' : 'missed'])),
      '',
    ].join('\n'),
  );
  process.exitCode = targets.every(([, ok]) => ok) ? 0 : 1;
} finally {
  await bench.drop();
}
