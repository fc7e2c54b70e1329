/**
 * Liveness through a database outage, on a throwaway PostgreSQL this test
 * starts itself (plus a TCP proxy in front of it that can freeze): while the
 * database cannot be reached, `publish`, `health()`, `timeline()`, `replay()`
 * and the dead-letter list reject with STORAGE_UNAVAILABLE within the
 * storage's `operationTimeoutMs` (plus slack), and the Hono health and
 * timeline routes answer 503 within it, whether the server refuses
 * connections (stopped, port closed), dies under open connections
 * (`pg_ctl -m immediate`), or hangs (the proxy stops forwarding but keeps
 * the sockets open). Once it is back, the running dispatcher delivers again
 * and nothing acknowledged is lost; a publish refused during the outage is
 * retried with its idempotency key and stored once. On postgres.js and
 * node-postgres, with neither driver given a connect timeout: the bound is
 * the storage's.
 */
import { sql } from 'drizzle-orm';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, EventBusError } from '@blawby/event-bus';
import { eventBusRouter } from '@blawby/event-bus/hono';
import { migrate, postgresStorage, type DrizzleDatabase } from '@blawby/event-bus/postgres';
import { workerCatalog } from './fixtures/catalog';
import { connect, type ServerDriver } from './fixtures/connect';
import { startFreezableProxy, type FreezableProxy } from './fixtures/freezable-proxy';
import { startThrowawayServer, throwawayServerUnavailable, type ThrowawayServer } from './fixtures/throwaway-server';
import { sleep, until, untilAvailable } from './fixtures/waiting';

const reason = throwawayServerUnavailable();
if (reason) process.stderr.write(`[outage-liveness.int.test] SKIPPED: ${reason}\n`);

/** The storage's `operationTimeoutMs` here (the default is 5000: kept short so the file runs fast). */
const BOUND_MS = 1500;
/** What a loaded machine may add to the bound: timers firing late, the route's own work. */
const SLACK_MS = 1500;

/** How a call settled, and after how long. */
interface Outcome {
  ms: number;
  error?: unknown;
}

async function timed(call: () => Promise<unknown>): Promise<Outcome> {
  const started = Date.now();
  try {
    await call();
    return { ms: Date.now() - started };
  } catch (error) {
    return { ms: Date.now() - started, error };
  }
}

type Kind = 'refused' | 'stopped' | 'frozen';
const cases: [ServerDriver, Kind][] = (['postgres-js', 'node-postgres'] as const).flatMap((driver) =>
  (['refused', 'stopped', 'frozen'] as const).map((kind): [ServerDriver, Kind] => [driver, kind]),
);

describe('the operationTimeoutMs option', () => {
  it('takes a number of milliseconds, 0 for no bound, and refuses anything else with INVALID_OPTION', async () => {
    // Never queried: the option is checked when the storage is created.
    const { db, end } = connect('node-postgres', 'postgres://postgres@127.0.0.1:1/none');
    try {
      for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5000']) {
        expect(() => postgresStorage({ db, operationTimeoutMs: bad as number })).toThrow(
          expect.objectContaining({ code: 'INVALID_OPTION' }),
        );
      }
      expect(() => postgresStorage({ db, operationTimeoutMs: 0 })).not.toThrow();
      expect(() => postgresStorage({ db, operationTimeoutMs: 250 })).not.toThrow();
    } finally {
      await end();
    }
  });
});

describe.skipIf(reason !== null)(`liveness through a database outage${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let server: ThrowawayServer;
  let proxy: FreezableProxy;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    server = await startThrowawayServer();
    proxy = await startFreezableProxy(server.port);
  }, 120_000);
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await proxy?.close();
    server?.destroy();
  });

  it.each(cases)('on %s, server %s: every call settles within the bound; the bus delivers again after', async (driver, kind) => {
    // The frozen case goes through the proxy; the others talk to the server itself, so a stopped one refuses.
    const { db, end } = connect(driver, kind === 'frozen' ? proxy.urlFor(server.url) : server.url, { max: 5 });
    const schema = `outage_${driver.replace('-', '_')}_${kind}`;
    await migrate(db, { schema });
    const bus = createEventBus({
      catalog: workerCatalog,
      storage: postgresStorage({ db, schema, operationTimeoutMs: BOUND_MS }),
      dispatch: { pollIntervalMs: 100, leaseMs: 2000 },
      retry: { attempts: 20, minDelayMs: 50, maxDelayMs: 200 },
      onError: () => {}, // claims fail during the outage; the dispatcher tries again by itself
    });
    cleanups.push(end, () => bus.stop({ timeoutMs: 3000 }));
    const seen = new Set<number>();
    bus.subscribe('test.item_created', (e) => void seen.add(e.payload.n), { name: 'recorder' });
    const app = new Hono();
    app.route('/events', eventBusRouter(bus, { authorize: () => ({ actor: 'user_1', organizationIds: ['org_1'] }) }));
    await bus.start();

    // Keyed, so that a call refused with STORAGE_UNAVAILABLE can be sent again safely.
    const items = (from: number) =>
      Array.from({ length: 20 }, (_, i) => ({
        type: 'test.item_created' as const,
        payload: { n: from + i },
        options: { organizationId: 'org_1', idempotencyKey: `${schema}-${from + i}` },
      }));
    await bus.publishMany(items(0));
    await until(() => seen.size === 20, 'delivery before the outage');
    expect((await app.request('/events/health')).status).toBe(200);

    if (kind === 'refused') server.stop('fast');
    else if (kind === 'stopped') server.stop('immediate'); // the pool's and LISTEN's connections die under them
    else proxy.freeze();

    const key = `retry-${schema}`;
    const calls: Record<string, () => Promise<unknown>> = {
      'publish with a key': () => bus.publish('test.item_created', { n: 1000 }, { idempotencyKey: key }),
      publish: () => bus.publish('test.item_created', { n: 1001 }),
      publishMany: () => bus.publishMany(items(2000).map(({ options, ...item }) => ({ ...item, options: { organizationId: options.organizationId } }))),
      health: () => bus.health(),
      timeline: () => bus.timeline({ limit: 10 }),
      replay: () => bus.replay({ from: new Date(Date.now() + 86_400_000) }), // matches nothing if it ever runs
      'deadLetters.list': () => bus.deadLetters.list(),
    };
    const routes = ['/events/health', '/events/timeline?organizationId=org_1'];
    const [outcomes, answers] = await Promise.all([
      Promise.all(Object.values(calls).map(timed)),
      Promise.all(
        routes.map(async (path) => {
          const started = Date.now();
          const res = await app.request(path);
          return { path, status: res.status, body: (await res.json()) as { error?: { code?: string } }, ms: Date.now() - started };
        }),
      ),
    ]);
    /** The call got no answer in time (rather than an error from the driver): its outcome is unknown. */
    const timedOut = new Map<string, boolean>();
    Object.keys(calls).forEach((name, i) => {
      const { ms, error } = outcomes[i]!;
      expect({ name, code: EventBusError.is(error) ? error.code : String(error) }).toEqual({ name, code: 'STORAGE_UNAVAILABLE' });
      expect({ name, within: ms < BOUND_MS + SLACK_MS }).toEqual({ name, within: true });
      const cause = (error as Error).cause as Error | undefined;
      expect(cause).toBeInstanceOf(Error);
      expect((error as Error).message).not.toMatch(/select|insert|\$1|100[01]/i);
      timedOut.set(name, cause?.name === 'TimeoutError');
    });
    // A hung server never answers: only the storage's bound ends these calls.
    if (kind === 'frozen') expect([...timedOut.values()].every(Boolean)).toBe(true);
    for (const answer of answers) {
      expect({ path: answer.path, status: answer.status, code: answer.body.error?.code }).toEqual({
        path: answer.path,
        status: 503,
        code: 'STORAGE_UNAVAILABLE',
      });
      expect(answer.ms).toBeLessThan(BOUND_MS + SLACK_MS);
    }

    await sleep(500); // the dispatcher keeps failing to reach the database meanwhile
    if (kind === 'frozen') proxy.thaw();
    else server.start();

    // Right after the restart a driver may still be waiting out its reconnect backoff (postgres.js
    // waits up to 20 s once connections kept failing): calls then fail fast, and the caller retries.
    // What was refused is sent again with the same key: stored once, whatever became of the first try.
    await untilAvailable(() => bus.publish('test.item_created', { n: 1000 }, { idempotencyKey: key }), 'the retried publish');
    await untilAvailable(() => bus.publishMany(items(20)), 'a publish after the outage');
    const expected = [...Array.from({ length: 40 }, (_, i) => i), 1000];
    await until(() => expected.every((n) => seen.has(n)), 'delivery after the outage');
    await until(async () => (await untilAvailable(() => bus.health(), 'health')).unprocessed === 0, 'nothing left unprocessed');
    await until(async () => (await app.request('/events/health')).status === 200, 'the health route answering 200');

    const rows = await countRows(db, schema, key);
    expect(rows.keyed).toBe(1);
    // A call the driver refused stored nothing. One that got no answer in time has an unknown
    // outcome: its statement may have committed since, once at most, and a publishMany as a whole.
    if (timedOut.get('publish')) expect(rows.unkeyed).toBeLessThanOrEqual(1);
    else expect(rows.unkeyed).toBe(0);
    if (timedOut.get('publishMany')) expect([0, 20]).toContain(rows.many);
    else expect(rows.many).toBe(0);
    expect(rows.total).toBe(41 + rows.unkeyed + rows.many);
  }, 60_000);

  it('on node-postgres, a statement still waiting for a pooled connection when its time ran out is never sent', async () => {
    const { db, end } = connect('node-postgres', proxy.urlFor(server.url), { max: 1 });
    cleanups.push(end);
    const schema = 'outage_withdrawn';
    await migrate(db, { schema });
    const bus = createEventBus({ catalog: workerCatalog, storage: postgresStorage({ db, schema, operationTimeoutMs: BOUND_MS }) });
    await bus.publish('test.item_created', { n: 1 });

    proxy.freeze();
    // The pool's one connection takes the health statement and hangs with it; the publish waits for that connection.
    const [health, publish] = await Promise.all([timed(() => bus.health()), timed(() => bus.publish('test.item_created', { n: 2 }))]);
    expect(EventBusError.is(health.error, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(EventBusError.is(publish.error, 'STORAGE_UNAVAILABLE')).toBe(true);
    proxy.thaw();

    // Queued behind the withdrawn publish: once it is stored, the withdrawn one had its turn.
    await bus.publish('test.item_created', { n: 3 });
    const rows = await countRows(db, schema, 'none');
    expect(rows.total).toBe(2); // n = 1 and n = 3
    await bus.stop();
  }, 30_000);
});

async function countRows(
  db: DrizzleDatabase,
  schema: string,
  key: string,
): Promise<{ keyed: number; unkeyed: number; many: number; total: number }> {
  const result = (await db.execute(
    sql.raw(
      `SELECT count(*) FILTER (WHERE idempotency_key = '${key}')::int AS keyed,
              count(*) FILTER (WHERE (payload->>'n')::int = 1001)::int AS unkeyed,
              count(*) FILTER (WHERE (payload->>'n')::int >= 2000)::int AS many,
              count(*)::int AS total
       FROM "${schema}".events`,
    ),
  )) as unknown as Record<string, number>[] | { rows: Record<string, number>[] };
  const row = (Array.isArray(result) ? result : result.rows)[0]!;
  return { keyed: row.keyed!, unkeyed: row.unkeyed!, many: row.many!, total: row.total! };
}
