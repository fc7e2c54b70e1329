/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core
 * against a Fastify app on PostgreSQL (PGlite). A handler dead-letters an
 * event; the page shows it with its warning, the redrive asks first ("This
 * will redrive 1 dead letter"), and after the confirmation the count drops to
 * zero. Screenshots go to test/artifacts/ (kept by CI).
 */
import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, NonRetryableError } from '@blawby/event-bus';
import { eventBusPlugin } from '@blawby/event-bus/fastify';
import { migrate, postgresStorage } from '@blawby/event-bus/postgres';
import { catalog } from '../bus/fixtures';
import { createTestDatabase, type TestDatabase } from '../postgres/databases';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const TOKEN = 'operator-token';

describe.runIf(existsSync(CHROMIUM))('dashboard in Chromium', () => {
  let database: TestDatabase;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let url: string;
  let bus: ReturnType<typeof createEventBus<typeof catalog>>;
  let failing = true;

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    database = await createTestDatabase('pglite');
    await migrate(database.db);
    bus = createEventBus({
      catalog,
      storage: postgresStorage({ db: database.db }),
      dispatch: { pollIntervalMs: 50 },
    });
    bus.subscribe('auth.user_logged_in', () => undefined, { name: 'audit.login' });
    bus.subscribe(
      'auth.user_signed_up',
      () => {
        if (failing) throw new NonRetryableError('welcome template missing');
      },
      { name: 'email.welcome' },
    );
    app = Fastify();
    await app.register(eventBusPlugin, {
      bus,
      routes: { prefix: '/events', dashboard: true, health: true },
      authorize: (request) =>
        request.headers.authorization === `Bearer ${TOKEN}` ? { actor: 'operator', organizationIds: [] } : null,
    });
    await bus.start();
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    for (let i = 0; i < 6; i++) await bus.publish('auth.user_logged_in', { sessionId: `s${i}` }, { actor: `user_${i % 3}` });
    await bus.publish('auth.user_signed_up', { email: 'ada@example.com', name: 'Ada', signupMethod: 'email' }, { actor: 'user_0', organizationId: 'org_1' });
    await bus.idle();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // Offline: anything not from the app would fail the page.
    await page.route(/^(?!http:\/\/127\.0\.0\.1)/, (route) => route.abort());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await database?.dispose();
  });

  it('shows the dead letter, redrives it after a dry run, and the count drops', { timeout: 60_000 }, async () => {
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(`${url}/events/dashboard#token=${TOKEN}`);
    // The token left the address bar at once (it stays in the tab's session storage).
    expect(page.url()).toBe(`${url}/events/dashboard`);

    await expect.poll(() => page.textContent('#dl-count')).toBe('1');
    await expect.poll(() => page.locator('#live.on').count()).toBe(1);
    expect(await page.textContent('#dead-letters')).toContain('welcome template missing');
    expect(await page.locator('#warnings [data-code="DEAD_LETTERS_WAITING"]').count()).toBe(1);
    expect(await page.textContent('#subscribers')).toContain('email.welcome');
    expect(await page.locator('#chart svg rect').count()).toBeGreaterThan(0);
    expect(await page.textContent('#types')).toContain('auth.user_logged_in');
    expect(await page.locator('#timeline tr[data-event]').count()).toBe(7);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-overview.png`, fullPage: true });

    failing = false;
    await page.click('#dead-letters button[data-action="redrive"]');
    await expect.poll(() => page.textContent('#modal-text')).toBe('This will redrive 1 dead letter.');
    expect(await bus.deadLetters.list()).toHaveLength(1); // the dry run changed nothing
    await page.screenshot({ path: `${ARTIFACTS}dashboard-redrive-dry-run.png` });
    await page.click('#modal-ok');

    await expect.poll(() => page.textContent('#dl-count')).toBe('0');
    await bus.idle();
    expect(await bus.deadLetters.list()).toEqual([]);
    await expect.poll(() => page.locator('#warnings [data-code="DEAD_LETTERS_WAITING"]').count()).toBe(0);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-after-redrive.png`, fullPage: true });

    // Every request went to the app: nothing from a CDN.
    expect(requests.every((r) => r.startsWith(url))).toBe(true);
  });

  it('filters the timeline and opens one event with its deliveries', { timeout: 60_000 }, async () => {
    await page.selectOption('#f-type', 'auth.user_signed_up');
    await page.click('#apply');
    await expect.poll(() => page.locator('#timeline tr[data-event]').count()).toBe(1);
    await page.click('#timeline tr[data-event]');
    await expect.poll(() => page.textContent('#detail')).toContain('ada@example.com');
    // This process saw the failed attempt and the redriven one.
    await expect.poll(() => page.textContent('#detail')).toContain('dead-lettered');
    expect(await page.textContent('#detail')).toContain('succeeded');
    await page.screenshot({ path: `${ARTIFACTS}dashboard-event-detail.png`, fullPage: true });
  });

  it('live: a new event reaches the open page without a reload', { timeout: 60_000 }, async () => {
    const before = Number(await page.locator('#cards .card').first().locator('.v').textContent());
    await bus.publish('auth.user_logged_in', { sessionId: 'live' });
    await expect.poll(() => page.locator('#cards .card').first().locator('.v').textContent(), { timeout: 10_000 }).toBe(String(before + 1));
  });

  it('without credentials, the page says so and shows no data', { timeout: 60_000 }, async () => {
    const anonymous = await browser.newPage();
    await anonymous.goto(`${url}/events/dashboard`);
    await expect.poll(() => anonymous.textContent('#status')).toBe('sign in required');
    expect(await anonymous.textContent('#dl-count')).toBe('0');
    expect(await anonymous.locator('#timeline tr[data-event]').count()).toBe(0);
    await anonymous.close();
  });
});
