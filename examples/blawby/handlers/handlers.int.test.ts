/**
 * The Blawby handlers against real sinks: the file outbox in a temp dir, a
 * Slack-style HTTP receiver started here, the analytics table on PGlite.
 * The bus runs on memory storage (the handlers do not depend on it).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { createEventBus, memoryStorage } from '@blawby/event-bus';
import { catalog } from '../catalog';
import { openDatabase, PGLITE_CACHE_DIR, type Database } from '../db/connect';
import { migrateApp } from '../db/migrate';
import { analyticsEvents, organizations, stripeAccounts, users } from '../db/schema';
import { startWebhookReceiver, type WebhookReceiver } from '../demo/receiver';
import { accountStatusLookup } from '../server';
import { tableTracker } from '../sinks/analytics';
import { fileOutbox, readOutbox } from '../sinks/email';
import { slackWebhookNotifier } from '../sinks/slack';
import { registerHandlers, type AttemptRecord, type BlawbyBus } from '.';

let database: Database;
let receiver: WebhookReceiver;
let dir: string;
let bus: BlawbyBus;
let attempts: AttemptRecord[];

const REMINDER_DELAY_MS = 1000;

beforeAll(async () => {
  database = await openDatabase({ pgliteCacheDir: PGLITE_CACHE_DIR });
  await migrateApp(database.db);
  await database.db
    .insert(users)
    .values({ id: 'user_1', email: 'owner@example.com', name: 'Owner', passwordHash: 'x' });
  await database.db.insert(organizations).values([
    { id: 'org_open', name: 'Open Practice', slug: 'open', practiceType: 'legal' },
    { id: 'org_done', name: 'Done Practice', slug: 'done', practiceType: 'legal' },
  ]);
  await database.db.insert(stripeAccounts).values([
    { id: 'acct_open', organizationId: 'org_open', email: 'owner@example.com', country: 'US' },
    { id: 'acct_done', organizationId: 'org_done', email: 'owner@example.com', country: 'US' },
  ]);
});

afterAll(async () => {
  await database?.close();
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'blawby-handlers-'));
  receiver = await startWebhookReceiver();
  attempts = [];
  bus = createEventBus({
    catalog,
    storage: memoryStorage(),
    retry: { attempts: 3, minDelayMs: 20, maxDelayMs: 60 },
    dispatch: { pollIntervalMs: 50 },
  });
  registerHandlers(bus, {
    email: fileOutbox({ dir }),
    accounts: accountStatusLookup(database.db),
    tracker: tableTracker(database.db),
    notifier: slackWebhookNotifier({
      urls: {
        '#signups': `${receiver.url}/signups`,
        '#alerts': `${receiver.url}/alerts`,
        '#sales': `${receiver.url}/sales`,
      },
    }),
    reminderDelayMs: REMINDER_DELAY_MS,
    observe: (a) => attempts.push(a),
  });
  await bus.start();
});

afterEach(async () => {
  await bus.stop();
  await receiver.close();
  await rm(dir, { recursive: true, force: true });
  await database.db.delete(analyticsEvents);
});

async function waitUntil(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const signup = {
  email: 'ada@example.com',
  name: 'Ada Lovelace',
  signupMethod: 'email' as const,
  referralSource: 'paid' as const,
};

describe('email handlers', () => {
  it('writes a welcome email to the outbox on signup, once', async () => {
    await bus.publish('auth.user_signed_up', signup, { actor: 'user_ada', actorType: 'user' });
    await bus.idle({ timeoutMs: 5000 });
    const mails = await readOutbox(dir);
    const welcome = mails.filter((m) => m.template === 'welcome');
    expect(welcome).toHaveLength(1);
    expect(welcome[0]!.to).toBe('ada@example.com');
    expect(welcome[0]!.subject).toBe('Welcome to Blawby!');
    expect(welcome[0]!.text).toContain('Hi Ada Lovelace');
    expect(welcome[0]!.raw).toMatch(/^Message-ID:\s+<[^>]+@blawby\.local>$/m);
  });

  it('emails a receipt for a payment with a customer email, and none without one', async () => {
    const payment = { stripeAccountId: 'acct_open', amount: 5000, currency: 'usd' };
    await bus.publish('billing.payment_received', {
      ...payment,
      paymentIntentId: 'pi_1',
      customerEmail: 'patient@example.com',
    });
    await bus.publish('billing.payment_received', { ...payment, paymentIntentId: 'pi_2' });
    await bus.idle({ timeoutMs: 5000 });
    const receipts = (await readOutbox(dir)).filter((m) => m.template === 'payment-receipt');
    expect(receipts.map((r) => r.to)).toEqual(['patient@example.com']);
    expect(receipts[0]!.text).toContain('$50.00');
    expect(receipts[0]!.text).toContain('pi_1');
  });

  it('sends the onboarding reminder only after its delay, and only while onboarding is incomplete', async () => {
    const open = await bus.publish(
      'billing.onboarding_started',
      { accountId: 'acct_open', email: 'owner@example.com', country: 'US' },
      { organizationId: 'org_open' },
    );
    await bus.publish(
      'billing.onboarding_started',
      { accountId: 'acct_done', email: 'owner@example.com', country: 'US' },
      { organizationId: 'org_done' },
    );
    // acct_done finishes onboarding before its reminder is due.
    await database.db
      .update(stripeAccounts)
      .set({ onboardingCompletedAt: new Date() })
      .where(eq(stripeAccounts.id, 'acct_done'));

    await waitUntil(
      'both reminder deliveries',
      () =>
        attempts.filter((a) => a.subscriber === 'email.onboarding_reminder' && a.outcome === 'succeeded').length === 2,
    );
    const page = await bus.timeline({ eventTypes: ['billing.onboarding_reminder_due'] });
    expect(page.events).toHaveLength(2);
    // No handler ran before the event's due time.
    for (const a of attempts.filter((x) => x.subscriber === 'email.onboarding_reminder')) {
      expect(a.startedAt.getTime()).toBeGreaterThanOrEqual(open.timestamp.getTime() + REMINDER_DELAY_MS - 5);
    }
    const reminders = (await readOutbox(dir)).filter((m) => m.template === 'onboarding-reminder');
    expect(reminders).toHaveLength(1);
    expect(reminders[0]!.text).toContain('Open Practice');
    // The reminder is linked to the event that scheduled it.
    const due = page.events.find((e) => e.organizationId === 'org_open')!;
    expect(due.metadata.causationId).toBe(open.eventId);
    expect(due.actor).toBe('system');
  });

  it('schedules one reminder even when the scheduling handler runs twice (idempotency key)', async () => {
    const started = await bus.publish(
      'billing.onboarding_started',
      { accountId: 'acct_open', email: 'owner@example.com', country: 'US' },
      { organizationId: 'org_open' },
    );
    await bus.idle({ timeoutMs: 5000 });
    await bus.replay({
      eventTypes: ['billing.onboarding_started'],
      subscribers: ['email.schedule_onboarding_reminder'],
    });
    await bus.idle({ timeoutMs: 5000 });
    expect(
      attempts.filter((a) => a.subscriber === 'email.schedule_onboarding_reminder' && a.eventId === started.eventId),
    ).toHaveLength(2);
    const page = await bus.timeline({ eventTypes: ['billing.onboarding_reminder_due'] });
    expect(page.events.filter((e) => e.metadata.causationId === started.eventId)).toHaveLength(1);
  });
});

describe('analytics handlers', () => {
  it('tracks every event in the analytics table and records the Stripe conversion', async () => {
    await bus.publish('auth.user_signed_up', signup, { actor: 'user_ada', actorType: 'user' });
    await bus.publish(
      'billing.onboarding_completed',
      { stripeAccountId: 'acct_done', chargesEnabled: true, payoutsEnabled: true },
      { actor: 'webhook-stripe', actorType: 'webhook', organizationId: 'org_done' },
    );
    await bus.idle({ timeoutMs: 5000 });
    const rows = await database.db.select().from(analyticsEvents);
    const tracked = rows
      .filter((r) => r.kind === 'track')
      .map((r) => r.name)
      .sort();
    expect(tracked).toEqual(['auth.user_signed_up', 'billing.onboarding_completed']);
    const signupRow = rows.find((r) => r.name === 'auth.user_signed_up')!;
    expect(signupRow.userId).toBe('user_ada');
    expect(signupRow.properties).toMatchObject({ email: 'ada@example.com', referralSource: 'paid' });
    const conversions = rows.filter((r) => r.kind === 'conversion');
    expect(conversions).toHaveLength(1);
    expect(conversions[0]).toMatchObject({ name: 'stripe_connected', organizationId: 'org_done', value: 0 });
  });

  it('records a retried delivery once (dedupe by delivery id)', async () => {
    const tracker = tableTracker(database.db);
    const input = { event: 'x.y', properties: {}, timestamp: new Date(), dedupeKey: 'delivery-1' };
    await tracker.track(input);
    await tracker.track(input);
    const rows = await database.db.select().from(analyticsEvents).where(eq(analyticsEvents.dedupeKey, 'delivery-1'));
    expect(rows).toHaveLength(1);
  });
});

describe('internal notification handlers', () => {
  it('posts new signups to #signups as a Slack webhook', async () => {
    await bus.publish('auth.user_signed_up', signup, { actor: 'user_ada', actorType: 'user' });
    await bus.idle({ timeoutMs: 5000 });
    const posts = receiver.received.filter((r) => r.path === '/signups');
    expect(posts).toHaveLength(1);
    const body = posts[0]!.body as { channel: string; text: string; blocks: unknown[] };
    expect(body.channel).toBe('#signups');
    expect(body.text).toContain('ada@example.com');
    expect(JSON.stringify(body.blocks)).toContain('paid');
    expect(posts[0]!.headers['x-idempotency-key']).toBeTruthy();
  });

  it('retries a failed-payment alert after two 500s, without re-running the other subscribers', async () => {
    receiver.script('/alerts', [500, 500, 200]);
    await bus.publish(
      'billing.payment_failed',
      {
        stripeAccountId: 'acct_open',
        paymentIntentId: 'pi_9',
        amount: 12000,
        currency: 'usd',
        error: 'Your card was declined.',
        customerEmail: 'patient@example.com',
      },
      { organizationId: 'org_open' },
    );
    await bus.idle({ timeoutMs: 5000 });
    const posts = receiver.received.filter((r) => r.path === '/alerts');
    expect(posts.map((p) => p.status)).toEqual([500, 500, 200]);
    expect((posts[2]!.body as { text: string }).text).toContain('org_open');
    expect(JSON.stringify(posts[2]!.body)).toContain('$120.00');
    const alertAttempts = attempts.filter((a) => a.subscriber === 'internal.payment_failed_alert');
    expect(alertAttempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'succeeded'],
    ]);
    expect(attempts.filter((a) => a.subscriber === 'analytics.track_all')).toHaveLength(1);
    expect(await bus.deadLetters.list()).toHaveLength(0);
  });

  it('dead-letters at once when the webhook is revoked (404), leaving other channels alone', async () => {
    receiver.script('/sales', [404]);
    await bus.publish(
      'billing.onboarding_completed',
      { stripeAccountId: 'acct_done', chargesEnabled: true, payoutsEnabled: true },
      { organizationId: 'org_done' },
    );
    await bus.idle({ timeoutMs: 5000 });
    expect(receiver.received.filter((r) => r.path === '/sales')).toHaveLength(1);
    const letters = await bus.deadLetters.list();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ subscriber: 'internal.stripe_connected_alert', attempts: 1 });
    expect(letters[0]!.error.message).toContain('404');
    expect(attempts.find((a) => a.subscriber === 'analytics.conversion')?.outcome).toBe('succeeded');
  });

  it('dead-letters after the last attempt when the webhook keeps failing', async () => {
    receiver.script('/signups', [503]);
    await bus.publish('auth.user_signed_up', signup, { actor: 'user_ada', actorType: 'user' });
    await bus.idle({ timeoutMs: 5000 });
    expect(receiver.received.filter((r) => r.path === '/signups')).toHaveLength(3);
    const [letter] = await bus.deadLetters.list({ subscriber: 'internal.signup_alert' });
    expect(letter?.attempts).toBe(3);
    // The welcome email went out once regardless.
    expect((await readdir(dir)).length).toBe(1);
  });
});
