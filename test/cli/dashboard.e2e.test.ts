/**
 * `event-bus dashboard` as users run it: the built binary, against a PGlite
 * directory always and a fresh database on `DATABASE_URL`'s server when it is
 * set. A bus of the test's own publishes two orders and dead-letters the
 * cancellation; the test then starts the binary, reads the address it prints,
 * fetches the page and the JSON routes the page uses (with and without the
 * token), and stops it with SIGTERM. With PGlite (one process at a time) the
 * test's bus is closed before the binary starts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventBus, NonRetryableError } from '@blawby/event-bus';
import { postgresStorage, type DrizzleDatabase } from '@blawby/event-bus/postgres';
import { createServerDatabase, DATABASE_URL } from '../postgres/databases';
import { BIN, ensureBuilt } from './built-bin';
import { catalog } from './fixtures/shop-catalog';
import { runCli, startCli, waitFor } from './run-cli';

// Every test starts CLI processes (about a second each, far more on a loaded machine).
vi.setConfig({ testTimeout: 240_000 });

const CATALOG = 'test/cli/fixtures/shop-catalog.ts';
const TARGETS: ('pglite' | 'postgres')[] = DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

interface Target {
  args: string[];
  open(): Promise<{ db: DrizzleDatabase; close(): Promise<void> }>;
  dispose(): Promise<void>;
}

async function targetFor(driver: 'pglite' | 'postgres'): Promise<Target> {
  if (driver === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), 'event-bus-dashboard-'));
    return {
      args: ['--pglite', join(dir, 'db')],
      async open() {
        const client = new PGlite(join(dir, 'db'));
        await client.waitReady;
        return { db: drizzlePglite(client) as unknown as DrizzleDatabase, close: () => client.close() };
      },
      dispose: async () => rmSync(dir, { recursive: true, force: true }),
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

/** A bus over the target's database (closed with `close`). */
async function openBus(target: Target) {
  const { db, close } = await target.open();
  const bus = createEventBus({ catalog, storage: postgresStorage({ db }), dispatch: { pollIntervalMs: 50 } });
  return {
    bus,
    async close() {
      await bus.stop();
      await close();
    },
  };
}

/** The dashboard binary, started; resolves once it printed its address. */
async function startDashboard(target: Target, extra: string[] = [], env: Record<string, string> = {}) {
  const run = startCli(['dashboard', '--port', '0', '--catalog', CATALOG, ...extra, ...target.args], { entry: BIN, env });
  // The address line, or the reason it never came.
  await Promise.race([
    waitFor(run.stdout, '\n'),
    run.result.then(({ code, stderr }) => {
      throw new Error(`the dashboard exited with code ${code} before printing its address:\n${stderr}`);
    }),
  ]);
  const address = /^Dashboard: (http:\/\/127\.0\.0\.1:\d+)\/dashboard#token=(\S+)$/m.exec(run.stdout());
  if (!address) throw new Error(`no address printed; stdout:\n${run.stdout()}\nstderr:\n${run.stderr()}`);
  const [, origin, token] = address;
  const api = (path: string, init: RequestInit & { token?: string | null } = {}) =>
    fetch(`${origin}/dashboard/api/${path}`, {
      ...init,
      headers: {
        ...(init.token === null ? {} : { authorization: `Bearer ${init.token ?? decodeURIComponent(token!)}` }),
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
  return { ...run, origin: origin!, token: decodeURIComponent(token!), api };
}

beforeAll(ensureBuilt, 300_000);

describe.each(TARGETS)('event-bus dashboard (the built bin) on %s', (driver) => {
  let target: Target;

  beforeAll(async () => {
    target = await targetFor(driver);
    expect((await runCli(['migrate', ...target.args], { entry: BIN })).code).toBe(0);
    const { bus, close } = await openBus(target);
    bus.subscribe(
      'shop.order_cancelled',
      async () => {
        throw new NonRetryableError('ledger is closed');
      },
      { name: 'shop.ledger' },
    );
    try {
      await bus.start();
      await bus.publish('shop.order_placed', { orderId: 'o1', totalCents: 900, items: [] }, { organizationId: 'org_a' });
      await bus.publish('shop.order_cancelled', { orderId: 'o1' }, { organizationId: 'org_a' });
      const deadline = Date.now() + 20_000;
      while ((await bus.health()).deadLetters < 1) {
        if (Date.now() > deadline) throw new Error('the cancellation was not dead-lettered in 20 s');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await close();
    }
  }, 120_000);
  afterAll(async () => {
    await target?.dispose();
  });

  it('serves the page and, with the token, the JSON routes it reads; SIGTERM stops it with exit code 0', async () => {
    const dashboard = await startDashboard(target);
    try {
      const page = await fetch(`${dashboard.origin}/dashboard`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await page.text()).toContain('<h1>Event bus</h1>');
      const root = await fetch(`${dashboard.origin}/`, { redirect: 'manual' });
      expect([root.status, root.headers.get('location')]).toEqual([302, '/dashboard']);

      expect((await dashboard.api('overview', { token: null })).status).toBe(401);
      expect((await dashboard.api('overview', { token: 'wrong' })).status).toBe(401);
      const overview = await dashboard.api('overview');
      expect(overview.status).toBe(200);
      expect(await overview.json()).toMatchObject({
        readOnly: false,
        storage: 'postgres',
        health: { deadLetters: 1, unprocessed: 0 },
        catalogTypes: ['shop.order_cancelled', 'shop.order_placed'],
      });

      const timeline = (await (await dashboard.api('timeline?eventTypes=shop.order_placed')).json()) as { events: { eventType: string }[] };
      expect(timeline.events.map((e) => e.eventType)).toEqual(['shop.order_placed']);
      const letters = (await (await dashboard.api('dead-letters')).json()) as { deadLetters: { subscriber: string }[] };
      expect(letters.deadLetters.map((d) => d.subscriber)).toEqual(['shop.ledger']);
      const dryRun = await dashboard.api('dead-letters/redrive', { method: 'POST', body: JSON.stringify({ dryRun: true }) });
      expect(await dryRun.json()).toEqual({ dryRun: true, count: 1 });
      expect((await dashboard.api('dead-letters/redrive', { method: 'POST', body: '{not json' })).status).toBe(400);
    } finally {
      dashboard.child.kill('SIGTERM');
    }
    const { code, stderr } = await dashboard.result;
    expect(code).toBe(0);
    expect(stderr).toMatch(/serving the dashboard of .*\(Ctrl-C to stop\)\nstopped\n$/);
  });

  it('read-only, with the token of EVENT_BUS_DASHBOARD_TOKEN, refuses redrive and discard', async () => {
    const dashboard = await startDashboard(target, ['--read-only'], { EVENT_BUS_DASHBOARD_TOKEN: 'operators-only' });
    try {
      expect(dashboard.token).toBe('operators-only');
      expect(await (await dashboard.api('overview')).json()).toMatchObject({ readOnly: true });
      const redrive = await dashboard.api('dead-letters/redrive', { method: 'POST', body: JSON.stringify({}) });
      expect(redrive.status).toBe(403);
      expect((await dashboard.api('dead-letters/discard', { method: 'POST', body: JSON.stringify({ id: 'x' }) })).status).toBe(403);
    } finally {
      dashboard.child.kill('SIGINT');
    }
    expect((await dashboard.result).code).toBe(0);
  });

  if (driver === 'postgres') {
    it('tells the open page when another process publishes work (the storage notifications)', async () => {
      const dashboard = await startDashboard(target);
      const other = await openBus(target);
      const reader = new AbortController();
      try {
        const stream = await dashboard.api('stream', { signal: reader.signal });
        expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
        const chunks = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
        let seen = '';
        while (!seen.includes('event: ready')) seen += (await chunks.read()).value ?? '';
        // A cancellation is work for shop.ledger (the publish sends a notification); it is not running, which does not matter.
        await other.bus.publish('shop.order_cancelled', { orderId: 'o2' });
        while (!seen.includes('event: change')) seen += (await chunks.read()).value ?? '';
        expect(seen).toMatch(/event: change\ndata: \{"at":\d+\}/);
      } finally {
        reader.abort();
        await other.close();
        dashboard.child.kill('SIGTERM');
      }
      expect((await dashboard.result).code).toBe(0);
    });
  }

  if (driver === 'pglite') {
    it('exits 1 naming the address when the port is taken, and 2 for a port that is not one', async () => {
      const taken: Server = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      try {
        const port = String((taken.address() as { port: number }).port);
        const busy = await runCli(['dashboard', '--port', port, ...target.args], { entry: BIN });
        expect(busy.code).toBe(1);
        expect(busy.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use`);
        expect(busy.stdout).toBe('');
      } finally {
        taken.close();
      }
      const bad = await runCli(['dashboard', '--port', '70000', ...target.args], { entry: BIN });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--port must be a whole number from 0 to 65535');
    });
  }
});
