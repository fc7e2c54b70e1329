/**
 * Durable publish against raw inserts of the same row into the same table
 * layout, measured side by side (alternating rounds) on one server:
 * single publish vs single-row INSERT, 10 concurrent publishers vs 10
 * connections inserting, publishMany(500) vs a 500-row INSERT; and, to show
 * what a NOTIFY costs, publishes in ten callers' own transactions with and
 * without a worker listening.
 *
 *   npx tsx bench/postgres/publish.ts [--quick]
 * Exit code 1 when a target of issue 3 is missed.
 */
import { createEventBus } from '@blawby/event-bus';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { uuidv7 } from '../../src/uuidv7';
import { flag, loadAverage, table } from '../core/util';
import { catalog, createBenchDatabase, payload, rate, ratio } from './_db';

const quick = flag('quick');
const ROUNDS = quick ? 2 : 5;
const ROUND_MS = quick ? 1000 : 3000;

const bench = await createBenchDatabase(10);
const IN_TX = 'publish in a transaction, 10 concurrent callers';
const IN_TX_LISTENED = 'publish in a transaction, 10 concurrent callers, a worker listening';
try {
  await migrate(bench.db, { schema: 'raw' });
  await migrate(bench.db, { schema: 'bus' });
  const storage = postgresStorage({ db: bench.db, schema: 'bus' });
  // One subscriber registered elsewhere (a worker process would be): publishing stays one row per event.
  await storage.register([{ name: 'worker', patterns: ['*'] }]);
  const bus = createEventBus({ catalog, storage });
  // A worker's storage, listening only during the case that says so: a publish sends NOTIFY only
  // while some storage listens, and notifying transactions have their commits serialized.
  const worker = postgresStorage({ db: bench.db, schema: 'bus' });
  async function withListener<T>(fn: () => Promise<T>): Promise<T> {
    const stop = await worker.watch(() => {});
    try {
      return await fn();
    } finally {
      await stop();
    }
  }
  const sql = bench.sql;
  let n = 0;

  const rawRow = () => {
    const id = uuidv7();
    n += 1;
    return {
      id,
      event_id: id,
      event_type: 'bench.item_created',
      event_version: '1.0.0',
      actor: 'user_1',
      actor_type: 'user',
      organization_id: 'org_1',
      payload: JSON.stringify(payload(n)),
      metadata: JSON.stringify({ source: 'api', environment: 'production' }),
      created_at: new Date().toISOString(),
    };
  };
  const rawInsert = (rows: ReturnType<typeof rawRow>[]) =>
    sql`INSERT INTO raw.events ${sql(
      rows,
      'id',
      'event_id',
      'event_type',
      'event_version',
      'actor',
      'actor_type',
      'organization_id',
      'payload',
      'metadata',
      'created_at',
    )}`;
  const options = { actor: 'user_1', actorType: 'user' as const, organizationId: 'org_1' };
  // Each in its own transaction, as a request handler's unit of work would: nothing to coalesce.
  const publishInTransaction = () =>
    bench.db.transaction((tx) => bus.publish('bench.item_created', payload(++n), { ...options, tx }));

  /** Runs `op` from `workers` loops for ROUND_MS; returns rows per second. */
  async function measure(workers: number, rowsPerOp: number, op: () => Promise<unknown>): Promise<number> {
    let done = 0;
    const end = performance.now() + ROUND_MS;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (performance.now() < end) {
          await op();
          done += rowsPerOp;
        }
      }),
    );
    return done / ((performance.now() - t0) / 1000);
  }

  const cases = {
    'raw INSERT, 1 row, sequential': () => measure(1, 1, () => rawInsert([rawRow()])),
    'publish, sequential': () => measure(1, 1, () => bus.publish('bench.item_created', payload(++n), options)),
    'raw INSERT, 1 row, 10 connections': () => measure(10, 1, () => rawInsert([rawRow()])),
    'publish, 10 concurrent callers': () =>
      measure(10, 1, () => bus.publish('bench.item_created', payload(++n), options)),
    [IN_TX]: () => measure(10, 1, publishInTransaction),
    [IN_TX_LISTENED]: () => withListener(() => measure(10, 1, publishInTransaction)),
    'raw INSERT, 500 rows': () => measure(1, 500, () => rawInsert(Array.from({ length: 500 }, rawRow))),
    'publishMany(500)': () =>
      measure(1, 500, () =>
        bus.publishMany(
          Array.from({ length: 500 }, () => ({ type: 'bench.item_created' as const, payload: payload(++n), options })),
        ),
      ),
  };
  const results = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(cases)) {
      const r = await run();
      results.set(name, [...(results.get(name) ?? []), r]);
    }
    await sql`VACUUM raw.events`.catch(() => {});
  }
  const med = (name: string) => {
    const v = [...results.get(name)!].sort((a, b) => a - b);
    return v[v.length >> 1]!;
  };

  const checks = [
    ['publish, sequential', 'raw INSERT, 1 row, sequential', 0.9],
    ['publish, 10 concurrent callers', 'raw INSERT, 1 row, 10 connections', 2],
    ['publishMany(500)', 'raw INSERT, 500 rows', 0.7],
  ] as const;
  let missed = false;
  const rows = checks.map(([ours, raw, target]) => {
    const r = med(ours) / med(raw);
    if (r < target) missed = true;
    return [
      ours,
      rate(med(ours)),
      raw,
      rate(med(raw)),
      ratio(med(ours), med(raw)),
      `≥ ${target}×`,
      r >= target ? 'met' : 'missed',
    ];
  });
  process.stdout.write(
    [
      '## PostgreSQL: durable publish vs raw INSERT',
      '',
      `Same table layout (the \`events\` table with its seed indexes), one subscriber registered (publishing writes one row per event, whatever the subscribers), ${ROUNDS} alternating rounds of ${ROUND_MS} ms, medians. Load average at the end: ${loadAverage()}.`,
      '',
      table(['publish path', 'rate', 'raw baseline', 'rate', 'ratio', 'target', ''], rows),
      '',
      `Above, no storage listens, so publishes send no NOTIFY. With a worker listening, every publish statement that makes work due sends one, and PostgreSQL serializes the commits of notifying transactions: it shows where commits cannot be coalesced, publishes in ten callers' own transactions (BEGIN, the publish, COMMIT; no target): ${rate(med(IN_TX))} with nobody listening, ${rate(med(IN_TX_LISTENED))} with a worker listening (${ratio(med(IN_TX_LISTENED), med(IN_TX))}).`,
      '',
    ].join('\n'),
  );
  await bus.stop();
  process.exitCode = missed ? 1 : 0;
} finally {
  await bench.drop();
}
