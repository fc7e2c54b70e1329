/**
 * Soak: a long stream of events through publish → claim → no-op handler →
 * complete (1,000,000 events; 20,000 with --quick), reporting the worker's
 * heap along the way and, at the end, the tables' live and dead tuples and
 * sizes, and the claim latency late in the run: finished deliveries are
 * deleted, so the hot table must stay as small as the backlog.
 *
 *   npx tsx --expose-gc bench/postgres/soak.ts [--quick | --events N]
 */
import { sql } from 'drizzle-orm';
import { createEventBus } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { flag, loadAverage, table } from '../core/util';
import { catalog, createBenchDatabase, payload, rate } from './_db';

const quick = flag('quick');
const eventsArg = process.argv.indexOf('--events');
const TOTAL = eventsArg > 0 ? Number(process.argv[eventsArg + 1]) : quick ? 20_000 : 1_000_000;
const CHUNK = 500;
const SAMPLES = 10;

const bench = await createBenchDatabase(10);
try {
  await migrate(bench.db, { schema: 'soak' });
  const bus = createEventBus({
    catalog,
    storage: postgresStorage({ db: bench.db, schema: 'soak' }),
    dispatch: { concurrency: 10, batchSize: 100 },
  });
  let handled = 0;
  bus.subscribe('bench.item_created', () => void handled++, { name: 'noop' });
  // This machine's server runs with autovacuum off; a production server has it
  // on. Without it every finished delivery stays a dead tuple, so the soak
  // then vacuums the hot tables itself, about as often as autovacuum would.
  const [setting] = (await bench.db.execute(sql.raw('SHOW autovacuum'))) as unknown as { autovacuum: string }[];
  const autovacuum = setting?.autovacuum === 'on';
  const VACUUM_EVERY = 50_000;
  let vacuums = 0;
  await bus.start();
  const heap: [number, number, number][] = [];
  const t0 = performance.now();
  for (let at = 0; at < TOTAL; at += CHUNK) {
    await bus.publishMany(
      Array.from({ length: CHUNK }, (_, i) => ({ type: 'bench.item_created' as const, payload: payload(at + i) })),
    );
    // Keep the backlog bounded (a steady stream, not one huge batch).
    while (at + CHUNK - handled > 5000) await new Promise((r) => setTimeout(r, 5));
    if (!autovacuum && at > 0 && at % VACUUM_EVERY === 0) {
      await bench.db.execute(sql.raw('VACUUM soak.event_deliveries, soak.events'));
      vacuums += 1;
    }
    if ((at / CHUNK) % Math.max(1, Math.floor(TOTAL / CHUNK / SAMPLES)) === 0) {
      (globalThis as { gc?: () => void }).gc?.();
      heap.push([at, process.memoryUsage().heapUsed / 2 ** 20, (performance.now() - t0) / 1000]);
    }
  }
  await bus.idle({ timeoutMs: 60 * 60_000 });
  const seconds = (performance.now() - t0) / 1000;
  await bus.stop();
  const stats = (await bench.db.execute(
    sql.raw(`SELECT relname, n_live_tup::float8 AS live, n_dead_tup::float8 AS dead,
      pg_total_relation_size(relid)::float8 AS bytes FROM pg_stat_user_tables WHERE schemaname = 'soak' ORDER BY relname`),
  )) as unknown as { relname: string; live: number; dead: number; bytes: number }[];
  process.stdout.write(
    [
      '## PostgreSQL: soak',
      '',
      `${TOTAL.toLocaleString('en')} events published in batches of ${CHUNK} (backlog kept under 5,000), one no-op subscriber, concurrency 10: ${rate(TOTAL / seconds)} over ${seconds.toFixed(0)} s. Load average at the end: ${loadAverage()}.`,
      '',
      'Worker heap (after GC) during the run:',
      '',
      table(['events published', 'heap used', 'elapsed'], heap.map(([n, mb, s]) => [n.toLocaleString('en'), `${mb.toFixed(1)} MB`, `${s.toFixed(0)} s`])),
      '',
      autovacuum
        ? 'Tables at the end (pg_stat_user_tables; the server\'s autovacuum was on):'
        : `Tables at the end (pg_stat_user_tables). The server runs with autovacuum off, so the soak ran VACUUM on the deliveries and events tables every ${VACUUM_EVERY.toLocaleString('en')} events (${vacuums} times), as autovacuum would:`,
      '',
      table(['table', 'live tuples', 'dead tuples', 'size'], stats.map((r) => [r.relname, String(r.live), String(r.dead), `${(r.bytes / 2 ** 20).toFixed(1)} MB`])),
      '',
    ].join('\n'),
  );
} finally {
  await bench.drop();
}
