/**
 * The Blawby backend over real HTTP on PGlite (or DATABASE_URL, in a schema
 * of its own): the Stripe webhook (signature, dedupe, failure, atomicity)
 * and the routes' statuses and events.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BaseEvent } from '@blawby/event-bus';
import { payments, sessions, stripeEvents } from './db/schema';
import { PGLITE_CACHE_DIR } from './db/connect';
import { createBlawby, type Blawby } from './server';
import { readOutbox } from './sinks/email';
import { accountUpdatedEvent, paymentIntentEvent, postStripeWebhook, stripeEventId } from './stripe/test-events';
import Stripe from 'stripe';

const SECRET = 'whsec_int_test';
let blawby: Blawby;
let baseUrl: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'blawby-app-'));
  blawby = await createBlawby({
    ...(process.env.DATABASE_URL
      ? {
          databaseUrl: process.env.DATABASE_URL,
          pgSchema: `blawby_app_${randomBytes(4).toString('hex')}`,
          dropSchemaOnClose: true,
        }
      : { pgliteCacheDir: PGLITE_CACHE_DIR }),
    outboxDir: join(dir, 'outbox'),
    stripeWebhookSecret: SECRET,
    retry: { attempts: 2, minDelayMs: 20, maxDelayMs: 50 },
    dispatch: { pollIntervalMs: 50 },
  });
  // Handlers are not the subject here: the bus is not started, events stay stored.
  baseUrl = await blawby.app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await blawby?.close();
  await rm(dir, { recursive: true, force: true });
});

async function api(method: string, path: string, body?: unknown, token?: string) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function eventsOf(type: string, organizationId?: string): Promise<BaseEvent[]> {
  const page = await blawby.bus.timeline({
    eventTypes: [type as never],
    limit: 1000,
    ...(organizationId ? { organizationId } : {}),
  });
  return page.events;
}

let counter = 0;
/** A verified owner with an organization and a Stripe account. */
async function practice() {
  const n = ++counter;
  const signup = await api('POST', '/auth/signup', {
    email: `owner${n}@example.com`,
    name: `Owner ${n}`,
    password: 'long-enough-pw',
  });
  expect(signup.status).toBe(201);
  const token = signup.body.token as string;
  const org = await api(
    'POST',
    '/orgs',
    { name: `Practice ${n}`, slug: `practice-${n}-${randomBytes(2).toString('hex')}`, practiceType: 'legal' },
    token,
  );
  expect(org.status).toBe(201);
  const onboarding = await api('POST', `/orgs/${org.body.id}/billing/onboarding`, {}, token);
  expect(onboarding.status).toBe(201);
  return {
    token,
    orgId: org.body.id as string,
    accountId: onboarding.body.accountId as string,
    userId: signup.body.user.id as string,
  };
}

async function storedStripeEvents(id: string) {
  const [row] = await blawby.db.select({ n: count() }).from(stripeEvents).where(eq(stripeEvents.id, id));
  return row?.n ?? 0;
}

describe('Stripe webhook', () => {
  const url = () => `${baseUrl}/webhooks/stripe`;

  it('accepts a signed account.updated, stores it, and publishes what it implies in one go', async () => {
    const { orgId, accountId, token } = await practice();
    const event = accountUpdatedEvent(accountId, { chargesEnabled: true, payoutsEnabled: true });
    const response = await postStripeWebhook(url(), SECRET, event);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ received: true, duplicate: false, handled: true });
    const [row] = await blawby.db
      .select()
      .from(stripeEvents)
      .where(eq(stripeEvents.id, String(event.id)));
    expect(row?.status).toBe('processed');
    const completed = await eventsOf('billing.onboarding_completed', orgId);
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      actor: 'webhook-stripe',
      actorType: 'webhook',
      payload: { stripeAccountId: accountId },
    });
    expect(completed[0]!.metadata.source).toBe('webhook');
    expect(await eventsOf('billing.webhook_received', orgId)).toHaveLength(1);
    const processed = await eventsOf('billing.webhook_processed', orgId);
    expect(processed[0]!.payload).toMatchObject({
      stripeEventId: event.id,
      handled: true,
      eventsPublished: expect.arrayContaining(['billing.account_updated', 'billing.onboarding_completed']),
    });
    const account = await api('GET', `/orgs/${orgId}/billing/account`, undefined, token);
    expect(account.body).toMatchObject({ chargesEnabled: true, payoutsEnabled: true });
  });

  it('stores a redelivered event once and publishes nothing more', async () => {
    const { orgId, accountId } = await practice();
    const event = accountUpdatedEvent(accountId, { chargesEnabled: true, payoutsEnabled: true });
    const first = await postStripeWebhook(url(), SECRET, event);
    const second = await postStripeWebhook(url(), SECRET, event);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(await second.json()).toEqual({ received: true, duplicate: true });
    expect(await storedStripeEvents(String(event.id))).toBe(1);
    expect(await eventsOf('billing.webhook_received', orgId)).toHaveLength(1);
    expect(await eventsOf('billing.onboarding_completed', orgId)).toHaveLength(1);
  });

  it('refuses a bad signature with 400 and stores nothing', async () => {
    const { accountId } = await practice();
    const event = accountUpdatedEvent(accountId, { chargesEnabled: true, payoutsEnabled: true });
    const before = (await eventsOf('billing.webhook_received')).length;
    const forged = await postStripeWebhook(url(), 'whsec_wrong', event);
    expect(forged.status).toBe(400);
    expect(await forged.json()).toMatchObject({
      error: { code: 'INVALID_SIGNATURE', message: expect.stringMatching(/^No signatures found matching/) },
    });
    const missing = await fetch(url(), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
    });
    expect(missing.status).toBe(400);
    expect(await storedStripeEvents(String(event.id))).toBe(0);
    expect(await eventsOf('billing.webhook_received')).toHaveLength(before);
  });

  it('refuses a signature older than the 300 s tolerance', async () => {
    const { accountId } = await practice();
    const event = accountUpdatedEvent(accountId, { chargesEnabled: true, payoutsEnabled: true });
    const stale = await postStripeWebhook(url(), SECRET, event, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(stale.status).toBe(400);
    expect(await stale.json()).toMatchObject({
      error: { code: 'INVALID_SIGNATURE', message: 'Timestamp outside the tolerance zone' },
    });
    expect(await storedStripeEvents(String(event.id))).toBe(0);
  });

  it('verifies the exact bytes received (re-serialised JSON fails)', async () => {
    const { accountId } = await practice();
    const event = accountUpdatedEvent(accountId, { chargesEnabled: false, payoutsEnabled: false });
    const compact = JSON.stringify(event);
    const response = await fetch(url(), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload: compact, secret: SECRET }),
      },
      body: JSON.stringify(event, null, 2),
    });
    expect(response.status).toBe(400);
  });

  it('rolls the payment row back with a failed publish, answers 500, and records webhook_failed', async () => {
    const { orgId, accountId } = await practice();
    // A currency code the catalog refuses: the payments row is written, then publish throws.
    const event = paymentIntentEvent(accountId, 'succeeded', { amount: 1000, currency: 'us' });
    const paymentId = String((event.data as { object: { id: string } }).object.id);
    const response = await postStripeWebhook(url(), SECRET, event);
    expect(response.status).toBe(500);
    expect(await blawby.db.select().from(payments).where(eq(payments.id, paymentId))).toHaveLength(0);
    expect(await eventsOf('billing.payment_received', orgId)).toHaveLength(0);
    const [row] = await blawby.db
      .select()
      .from(stripeEvents)
      .where(eq(stripeEvents.id, String(event.id)));
    expect(row).toMatchObject({ status: 'failed' });
    const failed = (await eventsOf('billing.webhook_failed', orgId)).filter(
      (e) => e.payload.stripeEventId === event.id,
    );
    expect(failed).toHaveLength(1);
    // Stripe's redelivery is processed again (not skipped as a duplicate), and fails again.
    const again = await postStripeWebhook(url(), SECRET, event);
    expect(again.status).toBe(500);
    expect(await storedStripeEvents(String(event.id))).toBe(1);
  });

  it('turns payment intents into billing.payment_received and billing.payment_failed', async () => {
    const { orgId, accountId } = await practice();
    const ok = await postStripeWebhook(
      url(),
      SECRET,
      paymentIntentEvent(accountId, 'succeeded', {
        amount: 5000,
        currency: 'usd',
        receiptEmail: 'patient@example.com',
      }),
    );
    const ko = await postStripeWebhook(
      url(),
      SECRET,
      paymentIntentEvent(accountId, 'payment_failed', {
        amount: 700,
        currency: 'eur',
        failureMessage: 'Declined',
        declineCode: 'do_not_honor',
      }),
    );
    expect([ok.status, ko.status]).toEqual([200, 200]);
    const [received] = await eventsOf('billing.payment_received', orgId);
    expect(received!.payload).toMatchObject({
      amount: 5000,
      currency: 'usd',
      customerEmail: 'patient@example.com',
      applicationFeeAmount: 500,
    });
    const [failed] = await eventsOf('billing.payment_failed', orgId);
    expect(failed!.payload).toMatchObject({
      amount: 700,
      currency: 'eur',
      error: 'Declined',
      declineCode: 'do_not_honor',
    });
  });

  it('acknowledges event types it does not act on', async () => {
    const { accountId } = await practice();
    const response = await postStripeWebhook(url(), SECRET, {
      id: stripeEventId(),
      type: 'customer.created',
      livemode: false,
      account: accountId,
      data: { object: { id: 'cus_1' } },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ handled: false, published: [] });
  });
});

describe('routes', () => {
  it('signs up, logs in, and logs out with events in the same transaction', async () => {
    const email = `ada-${randomBytes(3).toString('hex')}@example.com`;
    const bad = await api('POST', '/auth/signup', { email: 'not-an-email', name: '', password: 'short' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_BODY');
    expect(bad.body.error.issues.map((i: { path: string[] }) => i.path[0]).sort()).toEqual([
      'email',
      'name',
      'password',
    ]);

    const signup = await api('POST', '/auth/signup', { email, name: 'Ada', password: 'long-enough-pw' });
    expect(signup.status).toBe(201);
    const userId = signup.body.user.id as string;
    const again = await api('POST', '/auth/signup', { email, name: 'Ada', password: 'long-enough-pw' });
    expect(again.status).toBe(409);
    const signedUp = (await blawby.bus.timeline({ actor: userId, eventTypes: ['auth.user_signed_up'] })).events;
    expect(signedUp).toHaveLength(1);
    expect(signedUp[0]!.metadata).toMatchObject({ source: 'api', ipAddress: '127.0.0.1' });
    expect(signedUp[0]!.metadata.requestId).toBeTruthy();

    expect((await api('POST', '/auth/login', { email, password: 'wrong-password' })).status).toBe(401);
    const login = await api('POST', '/auth/login', { email, password: 'long-enough-pw' });
    expect(login.status).toBe(200);
    expect((await api('GET', '/me', undefined, login.body.token)).body).toMatchObject({
      id: userId,
      emailVerified: false,
    });

    // The verification link goes by email, never into an event.
    const [mail] = (await readOutbox(join(dir, 'outbox'))).filter(
      (m) => m.to === email && m.template === 'email-verification',
    );
    const token = mail!.text.match(/token=([A-Za-z0-9_-]+)/)![1]!;
    expect(JSON.stringify(signedUp)).not.toContain(token);
    expect((await api('POST', '/auth/verify-email', { token })).status).toBe(200);
    expect((await api('POST', '/auth/verify-email', { token })).status).toBe(400);

    expect((await api('POST', '/auth/logout', {}, login.body.token)).status).toBe(204);
    expect((await api('GET', '/me', undefined, login.body.token)).status).toBe(401);
    const types = (await blawby.bus.timeline({ actor: userId })).events.map((e) => e.eventType);
    expect(types).toEqual(
      expect.arrayContaining([
        'auth.user_signed_up',
        'auth.user_logged_in',
        'auth.email_verified',
        'auth.user_logged_out',
        'session.invalidated',
      ]),
    );
  });

  it('answers 401 without a session and 403 (publishing org.access_denied) outside one’s organizations', async () => {
    const owner = await practice();
    expect(
      (await api('POST', `/orgs/${owner.orgId}/invitations`, { email: 'x@example.com', role: 'member' })).status,
    ).toBe(401);
    const outsider = await api('POST', '/auth/signup', {
      email: `out-${randomBytes(3).toString('hex')}@example.com`,
      name: 'Out',
      password: 'long-enough-pw',
    });
    const denied = await api(
      'POST',
      `/orgs/${owner.orgId}/invitations`,
      { email: 'x@example.com', role: 'member' },
      outsider.body.token,
    );
    expect(denied.status).toBe(403);
    const [event] = await eventsOf('org.access_denied', owner.orgId);
    expect(event).toMatchObject({
      actor: outsider.body.user.id,
      payload: { action: 'invite', reason: 'not_a_member' },
    });
    const timeline = await api('GET', `/events/timeline?organizationId=${owner.orgId}`, undefined, outsider.body.token);
    expect(timeline.status).toBe(403);
    const own = await api('GET', `/events/timeline?organizationId=${owner.orgId}&limit=5`, undefined, owner.token);
    expect(own.status).toBe(200);
    expect(own.body.events.length).toBeGreaterThan(0);
  });

  it('invites a member who joins, changes their role, and publishes each step for the organization', async () => {
    const owner = await practice();
    const email = `member-${randomBytes(3).toString('hex')}@example.com`;
    expect((await api('POST', `/orgs/${owner.orgId}/invitations`, { email, role: 'member' }, owner.token)).status).toBe(
      201,
    );
    const member = await api('POST', '/auth/signup', { email, name: 'Member', password: 'long-enough-pw' });
    const [invitation] = (await readOutbox(join(dir, 'outbox'))).filter(
      (m) => m.to === email && m.template === 'invitation',
    );
    const token = invitation!.text.match(/token=([A-Za-z0-9_-]+)/)![1]!;
    const joined = await api('POST', '/invitations/accept', { token }, member.body.token);
    expect(joined.body).toEqual({ organizationId: owner.orgId, role: 'member' });
    // A member may not change roles.
    expect(
      (await api('PATCH', `/orgs/${owner.orgId}/members/${owner.userId}`, { role: 'member' }, member.body.token))
        .status,
    ).toBe(403);
    expect(
      (await api('PATCH', `/orgs/${owner.orgId}/members/${member.body.user.id}`, { role: 'admin' }, owner.token))
        .status,
    ).toBe(200);
    const types = (await blawby.bus.timeline({ organizationId: owner.orgId })).events.map((e) => e.eventType);
    expect(types).toEqual(
      expect.arrayContaining(['org.created', 'org.member_invited', 'org.member_joined', 'org.member_role_changed']),
    );
  });

  it('refuses an expired session once, publishing session.expired', async () => {
    const signup = await api('POST', '/auth/signup', {
      email: `exp-${randomBytes(3).toString('hex')}@example.com`,
      name: 'Exp',
      password: 'long-enough-pw',
    });
    const sessionId = signup.body.sessionId as string;
    await blawby.db
      .update(sessions)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(sessions.id, sessionId));
    expect((await api('GET', '/me', undefined, signup.body.token)).status).toBe(401);
    expect((await api('GET', '/me', undefined, signup.body.token)).status).toBe(401);
    const expired = (await eventsOf('session.expired')).filter((e) => e.payload.sessionId === sessionId);
    expect(expired).toHaveLength(1);
    expect(expired[0]!.actor).toBe(signup.body.user.id);
  });

  it('publishes practice.details_created, then only what changed', async () => {
    const owner = await practice();
    const details = { businessName: 'Harbor Law', specialties: ['family law'], businessEmail: 'office@harbor.example' };
    expect((await api('PUT', `/orgs/${owner.orgId}/practice`, details, owner.token)).body).toMatchObject({
      created: true,
    });
    expect((await api('PUT', `/orgs/${owner.orgId}/practice`, details, owner.token)).body).toEqual({
      created: false,
      changedFields: [],
    });
    const changed = await api(
      'PUT',
      `/orgs/${owner.orgId}/practice`,
      { ...details, specialties: ['family law', 'tax'] },
      owner.token,
    );
    expect(changed.body.changedFields).toEqual(['specialties']);
    const types = (
      await blawby.bus.timeline({
        organizationId: owner.orgId,
        eventTypes: [
          'practice.details_created',
          'practice.details_updated',
          'practice.specialties_updated',
          'practice.contact_info_updated',
        ],
      })
    ).events.map((e) => e.eventType);
    expect(types.sort()).toEqual([
      'practice.details_created',
      'practice.details_updated',
      'practice.specialties_updated',
    ]);
  });
});

describe('GET /events/metrics', () => {
  it('serves the Prometheus text of what the app published', async () => {
    const before = await fetch(`${baseUrl}/events/metrics`);
    expect(before.status).toBe(200);
    expect(before.headers.get('content-type')).toMatch(/^text\/plain/);
    const published = (text: string) =>
      Number(/^event_bus_events_published_total\{event_type="auth.user_signed_up"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    const n = published(await before.text());
    const signup = await api('POST', '/auth/signup', { email: 'metrics@example.com', name: 'Metrics', password: 'long-enough-pw' });
    expect(signup.status).toBe(201);
    const after = await (await fetch(`${baseUrl}/events/metrics`)).text();
    expect(published(after)).toBe(n + 1);
    expect(after).toMatch(/^event_bus_unprocessed_events \d+$/m);
  });
});
