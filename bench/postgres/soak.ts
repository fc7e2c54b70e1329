/**
 * Soak: a long stream of events through publish → claim → three no-op
 * subscribers → complete (1,000,000 events; 20,000 with --quick), reporting
 * the worker's heap along the way, the rate in each tenth of the run, and at
 * the end the tables' live and dead tuples and sizes: with the log model the
 * bus's own tables stay as small as what is in flight, beside the events.
 *
 * Targets: the last tenth's rate at least 80% of the first's; the heap flat
 * (last sample within 25% of the first after warm-up); the bus's tables in
 * all at most 1.5× the events table's own size.
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
  const SUBSCRIBERS = 3;
  let handled = 0;
  for (let i = 0; i < SUBSCRIBERS; i++) bus.subscribe('bench.item_created', () => void handled++, { name: `noop_${i}` });
  /** Elapsed seconds when each tenth of all deliveries had been handled. */
  const tenths: number[] = [];
  const totalDeliveries = TOTAL * SUBSCRIBERS;
  const tick = setInterval(() => {
    while (tenths.length < 10 && handled >= ((tenths.length + 1) * totalDeliveries) / 10) {
      tenths.push((performance.now() - t0) / 1000);
    }
  }, 20);
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
    while ((at + CHUNK) * SUBSCRIBERS - handled > 5000 * SUBSCRIBERS) await new Promise((r) => setTimeout(r, 5));
    if (!autovacuum && at > 0 && at % VACUUM_EVERY === 0) {
      await bench.db.execute(
        sql.raw('VACUUM soak.event_deliveries, soak.event_ranges, soak.event_subscribers, soak.events'),
      );
      vacuums += 1;
    }
    if ((at / CHUNK) % Math.max(1, Math.floor(TOTAL / CHUNK / SAMPLES)) === 0) {
      (globalThis as { gc?: () => void }).gc?.();
      heap.push([at, process.memoryUsage().heapUsed / 2 ** 20, (performance.now() - t0) / 1000]);
    }
  }
  await bus.idle({ timeoutMs: 60 * 60_000 });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(tick);
  while (tenths.length < 10) tenths.push(seconds);
  await bus.stop();
  if (!autovacuum) await bench.db.execute(sql.raw('VACUUM soak.event_deliveries, soak.event_ranges, soak.event_subscribers'));
  const stats = (await bench.db.execute(
    sql.raw(`SELECT relname, n_live_tup::float8 AS live, n_dead_tup::float8 AS dead,
      pg_total_relation_size(relid)::float8 AS bytes FROM pg_stat_user_tables WHERE schemaname = 'soak' ORDER BY relname`),
  )) as unknown as { relname: string; live: number; dead: number; bytes: number }[];
  const perTenth = tenths.map((at, i) => totalDeliveries / 10 / (at - (i === 0 ? 0 : tenths[i - 1]!)));
  const eventsBytes = stats.find((r) => r.relname === 'events')?.bytes ?? 0;
  const busBytes = stats.filter((r) => r.relname.startsWith('event_') && r.relname !== 'event_subscriptions')
    .reduce((sum, r) => sum + r.bytes, 0);
  const warm = heap.length > 2 ? heap[1]![1] : heap[0]?.[1] ?? 0;
  const last = heap[heap.length - 1]?.[1] ?? 0;
  const targets: [string, boolean][] = [
    ['rate in the last tenth ≥ 80% of the first tenth', perTenth[9]! >= 0.8 * perTenth[0]!],
    ['worker heap flat (last sample ≤ 1.25× the first after warm-up)', last <= warm * 1.25],
    ["bus's tables ≤ 1.5× the events table", busBytes <= 1.5 * eventsBytes],
  ];
  process.stdout.write(
    [
      '## PostgreSQL: soak',
      '',
      `${TOTAL.toLocaleString('en')} events published in batches of ${CHUNK} (backlog kept under 5,000 per subscriber), ${SUBSCRIBERS} no-op subscribers, concurrency 10: ${rate(TOTAL / seconds)} events (${rate(totalDeliveries / seconds)} deliveries) over ${seconds.toFixed(0)} s. Load average at the end: ${loadAverage()}.`,
      '',
      'Deliveries per second in each tenth of the run:',
      '',
      table(['tenth', 'deliveries/s'], perTenth.map((r, i) => [String(i + 1), rate(r)])),
      '',
      'Worker heap (after GC) during the run:',
      '',
      table(['events published', 'heap used', 'elapsed'], heap.map(([n, mb, s]) => [n.toLocaleString('en'), `${mb.toFixed(1)} MB`, `${s.toFixed(0)} s`])),
      '',
      autovacuum
        ? 'Tables at the end (pg_stat_user_tables; the server\'s autovacuum was on):'
        : `Tables at the end (pg_stat_user_tables). The server runs with autovacuum off, so the soak ran VACUUM on the bus's tables every ${VACUUM_EVERY.toLocaleString('en')} events (${vacuums} times) and once at the end, as autovacuum would:`,
      '',
      table(['table', 'live tuples', 'dead tuples', 'size'], stats.map((r) => [r.relname, String(r.live), String(r.dead), `${(r.bytes / 2 ** 20).toFixed(1)} MB`])),
      '',
      `The bus's own tables (subscribers, ranges, deliveries, dead letters, state) take ${(busBytes / 2 ** 20).toFixed(1)} MB beside the events table's ${(eventsBytes / 2 ** 20).toFixed(1)} MB (${(busBytes / eventsBytes).toFixed(2)}×).`,
      '',
      table(['target', ''], targets.map(([t, ok]) => [t, ok ? 'met' : 'missed'])),
      '',
    ].join('\n'),
  );
  process.exitCode = targets.every(([, ok]) => ok) ? 0 : 1;
} finally {
  await bench.drop();
}
