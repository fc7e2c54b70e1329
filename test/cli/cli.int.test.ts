/**
 * The `event-bus` binary against a real database: a PGlite directory always,
 * and a fresh database on `DATABASE_URL`'s server when it is set. The test
 * migrates with the CLI, publishes and handles events through a bus of its
 * own (a worker that dead-letters cancellations), then checks what health,
 * stats, tail, replay, dlq and purge report and do. Each CLI run is a child
 * process; with PGlite (one process at a time) the test's own bus is closed
 * before the CLI runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventBus, NonRetryableError, type EventBus } from '@blawby/event-bus';
import { postgresStorage, type DrizzleDatabase } from '@blawby/event-bus/postgres';
import { createServerDatabase, DATABASE_URL } from '../postgres/databases';
import { catalog } from './fixtures/shop-catalog';
import { runCli, startCli, waitFor } from './run-cli';

// Every test starts CLI processes (about a second each, far more on a loaded machine).
vi.setConfig({ testTimeout: 240_000 });

const CATALOG = 'test/cli/fixtures/shop-catalog.ts';
/** The CLI connects through postgres.js (a URL) or PGlite (a directory): always PGlite, a server when DATABASE_URL is set. */
const TARGETS: ('pglite' | 'postgres')[] = DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

/** Where one driver's database is, and how the test itself opens it. */
interface Target {
  args: string[];
  open(): Promise<{ db: DrizzleDatabase; close(): Promise<void> }>;
  dispose(): Promise<void>;
}

async function targetFor(driver: 'pglite' | 'postgres'): Promise<Target> {
  if (driver === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), 'event-bus-cli-'));
    return {
      args: ['--pglite', join(dir, 'db')],
      async open() {
        const client = new PGlite(join(dir, 'db'));
        await client.waitReady;
        return { db: drizzlePglite(client) as unknown as DrizzleDatabase, close: () => client.close() };
      },
      async dispose() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const server = await createServerDatabase();
  return {
    args: ['--database-url', server.url],
    async open() {
      const client = postgres(server.url, { max: 4, onnotice: () => {} });
      return { db: drizzlePostgres(client) as unknown as DrizzleDatabase, close: () => client.end({ timeout: 5 }) };
    },
    dispose: () => server.drop(),
  };
}

/** Runs a worker bus (mailer handles every shop event; ledger gives up on every cancellation) around `fn`, until idle. */
async function withWorker(target: Target, fn: (bus: EventBus<typeof catalog>) => Promise<void>): Promise<void> {
  const { db, close } = await target.open();
  const bus = createEventBus({ catalog, storage: postgresStorage({ db }), dispatch: { pollIntervalMs: 50 } });
  bus.subscribe('shop.*', async () => {}, { name: 'shop.mailer' });
  bus.subscribe(
    'shop.order_cancelled',
    async () => {
      throw new NonRetryableError('ledger is closed');
    },
    { name: 'shop.ledger' },
  );
  try {
    await bus.start();
    await fn(bus);
    await bus.idle({ timeoutMs: 20_000 });
    // idle() speaks for this process's view; the database must agree that everything is finished.
    const deadline = Date.now() + 20_000;
    while ((await bus.health()).unprocessed > 0) {
      if (Date.now() > deadline) throw new Error('the worker did not finish the events in 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await bus.stop();
    await close();
  }
}

const json = <T>(text: string) => JSON.parse(text) as T;

describe.each(TARGETS)('event-bus CLI on %s', (driver) => {
  let target: Target;
  const cli = (...args: string[]) => runCli([...args, ...target.args]);

  beforeAll(async () => {
    target = await targetFor(driver);
  });
  afterAll(async () => {
    await target?.dispose();
  });

  it('refuses to work on a database without the tables, then migrates it (idempotently)', async () => {
    const before = await cli('health');
    expect(before.code).toBe(3);
    expect(before.stderr).toMatch(/event bus tables are not in/);
    expect(before.stderr).toMatch(/event-bus migrate/);

    const first = await cli('migrate');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/applied migration\(s\) 1/);
    const again = await cli('migrate', '--json');
    expect(again.code).toBe(0);
    expect(json(again.stdout)).toEqual({ applied: [] });
  });

  it('reports health, stats and dead letters of what a worker did', async () => {
    await withWorker(target, async (bus) => {
      for (const n of [1, 2, 3]) {
        await bus.publish('shop.order_placed', { orderId: `o${n}`, totalCents: n * 100, items: [] }, { organizationId: 'org_a', actor: 'user_1' });
      }
      await bus.publish('shop.order_cancelled', { orderId: 'o1', reason: 'customer' }, { organizationId: 'org_b' });
      await bus.publish('shop.order_cancelled', { orderId: 'o2' }, { organizationId: 'org_b' });
    });

    const health = await cli('health', '--json');
    expect(health.code).toBe(0);
    expect(json(health.stdout)).toMatchObject({ status: 'healthy', unprocessed: 0, deadLetters: 2 });
    const strict = await cli('health', '--max-dead-letters', '2');
    expect(strict.code).toBe(6);
    expect(strict.stdout).toMatch(/unhealthy \(dead letters 2 >= 2\)/);

    const stats = await cli('stats', '--json');
    expect(stats.code).toBe(0);
    const s = json<{ published: { total: number; byType: Record<string, number> }; subscribers: { name: string; deadLetters: number }[] }>(stats.stdout);
    expect(s.published).toEqual({ total: 5, byType: { 'shop.order_placed': 3, 'shop.order_cancelled': 2 } });
    expect(s.subscribers.map((x) => [x.name, x.deadLetters])).toEqual([
      ['shop.ledger', 2],
      ['shop.mailer', 0],
    ]);
    const text = await cli('stats');
    expect(text.stdout).toMatch(/shop\.order_placed\s+3/);

    const list = await cli('dlq', 'list', '--json');
    expect(list.code).toBe(0);
    const dead = json<{ id: string; subscriber: string; eventType: string; error: { message: string } }[]>(list.stdout);
    expect(dead.map((d) => [d.subscriber, d.eventType, d.error.message])).toEqual([
      ['shop.ledger', 'shop.order_cancelled', 'ledger is closed'],
      ['shop.ledger', 'shop.order_cancelled', 'ledger is closed'],
    ]);
    expect((await cli('dlq', 'list', '--type', 'shop.order_placed')).stdout).toBe('no dead letters\n');

    const show = await cli('dlq', 'show', dead[0]!.id);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`dead letter   ${dead[0]!.id}`);
    expect(show.stdout).toContain('NonRetryableError NON_RETRYABLE: ledger is closed');
    const unknown = await cli('dlq', 'show', '00000000-0000-4000-8000-000000000000');
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toMatch(/no dead letter with id 00000000-0000-4000-8000-000000000000/);
    expect((await cli('dlq', 'show', 'not-an-id')).code).toBe(5);
  });

  it('counts with --dry-run and changes nothing', async () => {
    const redrive = await cli('dlq', 'redrive', '--subscriber', 'shop.ledger', '--dry-run');
    expect(redrive.code).toBe(0);
    expect(redrive.stdout).toBe('would redrive 2 dead letter(s)\n');
    const discard = await cli('dlq', 'discard', '--all', '--dry-run', '--json');
    expect(json(discard.stdout)).toEqual({ dryRun: true, discarded: 2 });
    const replay = await cli('replay', '--type', 'shop.order_placed', '--dry-run', '--json');
    expect(replay.code).toBe(0);
    expect(json(replay.stdout)).toEqual({ dryRun: true, events: 3, maxDeliveries: 3, subscribers: ['shop.ledger', 'shop.mailer'] });
    const withCatalog = await cli('replay', '--catalog', CATALOG, '--type', 'shop.*', '--dry-run', '--json');
    expect(json(withCatalog.stdout)).toMatchObject({ events: 5, maxDeliveries: 7 });
    expect(json((await cli('dlq', 'list', '--json')).stdout)).toHaveLength(2);
    expect(json((await cli('health', '--json')).stdout)).toMatchObject({ unprocessed: 0 });
  });

  it('refuses a dlq command without a target, an unknown type or subscriber', async () => {
    const bare = await cli('dlq', 'redrive');
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/no dead letters chosen/);
    const both = await cli('dlq', 'discard', '00000000-0000-4000-8000-000000000000', '--all');
    expect(both.code).toBe(2);
    const unknownType = await cli('replay', '--catalog', CATALOG, '--type', 'shop.order_shipped', '--dry-run');
    expect(unknownType.code).toBe(2);
    expect(unknownType.stderr).toMatch(/unknown event type "shop.order_shipped"/);
    const unknownSubscriber = await cli('replay', '--subscriber', 'shop.nobody', '--dry-run');
    expect(unknownSubscriber.code).toBe(5);
    expect(unknownSubscriber.stderr).toMatch(/no subscriber named "shop.nobody"/);
  });

  it('replays in windows with a progress bar on stderr, and the events wait for their subscriber again', async () => {
    const run = await cli('replay', '--type', 'shop.order_placed', '--subscriber', 'shop.mailer', '--batch-size', '1', '--progress', '--json');
    expect(run.stderr).toContain('replay [');
    expect(run.code).toBe(0);
    expect(json(run.stdout)).toEqual({ dryRun: false, events: 3, deliveries: 3, subscribers: ['shop.mailer'] });
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.at(-1)).toMatch(/100% 3\/3 events, 3 deliveries scheduled/);
    expect(json((await cli('health', '--json')).stdout)).toMatchObject({ unprocessed: 3 });
    await withWorker(target, async () => {});
    expect(json((await cli('health', '--json')).stdout)).toMatchObject({ unprocessed: 0 });
  });

  it('prints the events of a time window with tail --since, filtered', async () => {
    const all = await cli('tail', '--since', '1h', '--count', '5', '--json');
    expect(all.code).toBe(0);
    const events = all.stdout.trim().split('\n').map((l) => json<{ eventType: string; payload: { orderId: string } }>(l));
    expect(events.map((e) => `${e.eventType}:${e.payload.orderId}`)).toEqual([
      'shop.order_placed:o1',
      'shop.order_placed:o2',
      'shop.order_placed:o3',
      'shop.order_cancelled:o1',
      'shop.order_cancelled:o2',
    ]);
    const org = await cli('tail', '--since', '1h', '--org', 'org_b', '--type', 'shop.order_cancelled', '--count', '2');
    expect(org.code).toBe(0);
    expect(org.stdout.trim().split('\n').map((l) => l.split(/\s+/)[1])).toEqual(['shop.order_cancelled', 'shop.order_cancelled']);
    expect(org.stdout).toContain('org=org_b');
  });

  it('stops tail cleanly on SIGINT', async () => {
    const tail = startCli(['tail', '--interval', '100ms', ...target.args]);
    await waitFor(tail.stderr, 'tailing events');
    tail.child.kill('SIGINT');
    const result = await tail.result;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
  });

  it('redrives and discards by id; a second try finds nothing', async () => {
    const dead = json<{ id: string }[]>((await cli('dlq', 'list', '--json')).stdout);
    expect(dead).toHaveLength(2);
    const redrive = await cli('dlq', 'redrive', dead[0]!.id);
    expect(redrive.stdout).toBe('redrove 1 dead letter(s)\n');
    expect((await cli('dlq', 'redrive', dead[0]!.id)).code).toBe(5);
    const discard = await cli('dlq', 'discard', dead[1]!.id);
    expect(discard.stdout).toBe('discarded 1 dead letter(s)\n');
    const again = await cli('dlq', 'discard', dead[1]!.id);
    expect(again.code).toBe(5);
    expect(json((await cli('dlq', 'list', '--json')).stdout)).toEqual([]);
  });

  it('purges processed events older than a duration, never a pending one', async () => {
    const none = await cli('purge', '--older-than', '1h', '--json');
    expect(none.code).toBe(0);
    expect(json(none.stdout)).toMatchObject({ purged: 0 });
    await new Promise((r) => setTimeout(r, 20));
    const purged = await cli('purge', '--older-than', '10ms');
    expect(purged.code).toBe(0);
    // The redriven cancellation waits for the ledger again; the other four events are finished.
    expect(purged.stdout).toMatch(/^purged 4 processed event\(s\) created before /);
    const stats = json<{ published: { total: number } }>((await cli('stats', '--json')).stdout);
    expect(stats.published.total).toBe(1);
    expect((await cli('purge')).code).toBe(2);
  });

  it.runIf(driver === 'postgres')('tail streams new events live, filtered by type, and exits after --count', async () => {
    const tail = startCli(['tail', '--type', 'shop.order_placed', '--count', '2', '--json', '--interval', '200ms', ...target.args]);
    await waitFor(tail.stderr, 'tailing events');
    await withWorker(target, async (bus) => {
      await bus.publish('shop.order_placed', { orderId: 'live1', totalCents: 1, items: [] });
      await bus.publish('shop.order_cancelled', { orderId: 'live1' });
      await bus.publish('shop.order_placed', { orderId: 'live2', totalCents: 2, items: [{ sku: 'a', quantity: 1 }] });
    });
    const result = await tail.result;
    expect(result.code).toBe(0);
    const ids = result.stdout.trim().split('\n').map((l) => json<{ payload: { orderId: string } }>(l).payload.orderId);
    expect(ids).toEqual(['live1', 'live2']);
  });
});
