/**
 * Timeline queries on a large `events` table (1,000,000 rows; 100,000 with
 * --quick): p50/p99 of a page of 50, first page and deep pages (by keyset
 * cursor), by organization and by actor. Target of issue 3: p99 under 20 ms.
 *
 *   npx tsx bench/postgres/timeline.ts [--quick]
 */
import { sql } from 'drizzle-orm';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { flag, loadAverage, table } from '../core/util';
import { createBenchDatabase, percentile } from './_db';

const quick = flag('quick');
const ROWS = quick ? 100_000 : 1_000_000;
const ORGS = 200;
const ACTORS = 5000;
const SAMPLES = quick ? 200 : 1000;

const bench = await createBenchDatabase(4);
try {
  await migrate(bench.db, { schema: 'tl' });
  const t0 = performance.now();
  // Rows as the bus writes them (ids are time-ordered like UUIDv7), in chunks to keep transactions short.
  for (let from = 0; from < ROWS; from += 100_000) {
    await bench.db.execute(
      sql.raw(`INSERT INTO tl.events (id, event_id, event_type, event_version, actor, actor_type, organization_id, payload,
        metadata, processed, processed_at, created_at)
      SELECT g.id, g.id::text, (ARRAY['auth.user_signed_up','billing.payment_failed','org.created','practice.details_created'])[1 + i % 4],
        '1.0.0', 'user_' || (i % ${ACTORS}), 'user', 'org_' || (i % ${ORGS}), jsonb_build_object('n', i), '{"source":"api","environment":"production"}',
        true, now() AT TIME ZONE 'UTC', timestamp '2025-01-01' + i * interval '10 ms'
      FROM generate_series(${from}, ${Math.min(ROWS, from + 100_000) - 1}) AS i,
        LATERAL (SELECT (lpad(to_hex(i), 12, '0') || '7000' || '8000' || lpad(to_hex(i), 12, '0'))::uuid AS id) g`),
    );
  }
  await bench.db.execute(sql.raw('VACUUM ANALYZE tl.events'));
  const loadSeconds = (performance.now() - t0) / 1000;
  const storage = postgresStorage({ db: bench.db, schema: 'tl' });

  async function sample(
    filter: (i: number) => { organizationId?: string; actor?: string },
    deep: boolean,
  ): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      let cursor: string | undefined;
      if (deep) {
        // Start a few pages in, as a user scrolling does.
        for (let p = 0; p < 3; p++)
          cursor =
            (await storage.timeline({ limit: 50, ...filter(i), ...(cursor ? { cursor } : {}) })).nextCursor ??
            undefined;
      }
      const s = performance.now();
      const page = await storage.timeline({ limit: 50, ...filter(i), ...(cursor ? { cursor } : {}) });
      times.push(performance.now() - s);
      if (page.events.length === 0) throw new Error('empty page');
    }
    return times;
  }
  const byOrg = (i: number) => ({ organizationId: `org_${i % ORGS}` });
  const byActor = (i: number) => ({ actor: `user_${i % ACTORS}` });
  const rows: [string, number[]][] = [
    ['by organization, first page', await sample(byOrg, false)],
    ['by organization, 4th page (cursor)', await sample(byOrg, true)],
    ['by actor, first page', await sample(byActor, false)],
    ['by actor, 4th page (cursor)', await sample(byActor, true)],
    ['all events, first page', await sample(() => ({}), false)],
  ];
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  const missed = rows.some(([name, v]) => !name.startsWith('all') && percentile(v, 99) >= 20);
  process.stdout.write(
    [
      '## PostgreSQL: timeline on a large table',
      '',
      `${ROWS.toLocaleString('en')} events (${ORGS} organizations, ${ACTORS} actors; loaded in ${loadSeconds.toFixed(
        0,
      )} s), page of 50, ${SAMPLES} samples each, through \`storage.timeline()\` over postgres.js. Load average at the end: ${loadAverage()}.`,
      '',
      table(
        ['query', 'p50', 'p99', 'target p99 < 20 ms'],
        rows.map(([name, v]) => [
          name,
          ms(percentile(v, 50)),
          ms(percentile(v, 99)),
          name.startsWith('all') ? '—' : percentile(v, 99) < 20 ? 'met' : 'missed',
        ]),
      ),
      '',
    ].join('\n'),
  );
  process.exitCode = missed ? 1 : 0;
} finally {
  await bench.drop();
}
