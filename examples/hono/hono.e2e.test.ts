/**
 * The Hono variant end to end, over real HTTP, on node-postgres against the
 * PostgreSQL server of DATABASE_URL (in a schema of its own, dropped after):
 * services publish without `tx` and the events join the request's unit of
 * work, commit with its rows and roll back with them; the shared handlers
 * write to real sinks; the Stripe webhook is verified with the `stripe`
 * package. Without DATABASE_URL the suite is skipped, and says so.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBusError, type BaseEvent } from '@blawby/event-bus';
import { organizations, users } from '../blawby/db/schema';
import { analyticsCounts } from '../blawby/sinks/analytics';
import { readOutbox } from '../blawby/sinks/email';
import { stripeEventId } from '../blawby/stripe/test-events';
import { createHonoBlawby, type HonoBlawby } from './server';

type JsonEvent = Omit<BaseEvent, 'timestamp'> & { timestamp: string };

const DATABASE_URL = process.env.DATABASE_URL;
const SECRET = 'whsec_hono_e2e';

describe.skipIf(!DATABASE_URL)(
  `Hono variant of the Blawby backend on node-postgres${DATABASE_URL ? '' : ' (SKIPPED: DATABASE_URL is not set; it needs a PostgreSQL server)'}`,
  () => {
    let blawby: HonoBlawby;
    let baseUrl: string;
    let outboxDir: string;
    let slack: Server;
    const slackPosts: { channel: string; body: unknown }[] = [];

    beforeAll(async () => {
      outboxDir = await mkdtemp(join(tmpdir(), 'hono-outbox-'));
      slack = createServer((req, res) => {
        let data = '';
        req.on('data', (chunk: Buffer) => (data += chunk.toString()));
        req.on('end', () => {
          slackPosts.push({ channel: req.url ?? '', body: JSON.parse(data) as unknown });
          res.writeHead(200).end('ok');
        });
      });
      await new Promise<void>((resolve) => slack.listen(0, '127.0.0.1', resolve));
      const slackUrl = `http://127.0.0.1:${(slack.address() as AddressInfo).port}`;
      blawby = await createHonoBlawby({
        databaseUrl: DATABASE_URL!,
        pgSchema: `hono_e2e_${process.pid}_${Date.now()}`,
        outboxDir,
        slackUrls: { '#signups': `${slackUrl}/signups`, default: `${slackUrl}/default` },
        stripeWebhookSecret: SECRET,
        dispatch: { pollIntervalMs: 50 },
      });
      await blawby.bus.start();
      baseUrl = await blawby.listen(0);
    });

    afterAll(async () => {
      await blawby?.close();
      await new Promise<void>((resolve) => (slack ? slack.close(() => resolve()) : resolve()));
      if (outboxDir) await rm(outboxDir, { recursive: true, force: true });
    });

    const call = async (method: string, path: string, options: { token?: string; body?: unknown } = {}) => {
      const res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          'user-agent': 'hono-e2e/1.0',
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
    };
    const timeline = async (token: string, query = '') => {
      const res = await call('GET', `/events/timeline${query}`, { token });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body as unknown as { events: JsonEvent[]; nextCursor: string | null };
    };
    const postStripe = (payload: string, signature: string) =>
      fetch(`${baseUrl}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signature },
        body: payload,
      });

    let alice: { id: string; token: string };

    it('answers health before anything happened', async () => {
      const res = await call('GET', '/events/health');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ healthy: true });
    });

    it('signs up: a service publishing without tx commits its events with the user row, with the request metadata', async () => {
      const res = await call('POST', '/auth/signup', {
        body: { email: 'Alice@Example.com', name: 'Alice Law', password: 'correct horse' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      const { user, token } = res.body as { user: { id: string }; token: string };
      alice = { id: user.id, token };
      const own = await timeline(token);
      expect(own.events.map((e) => e.eventType).sort()).toEqual(['auth.user_signed_up', 'session.created']);
      const signedUp = own.events.find((e) => e.eventType === 'auth.user_signed_up')!;
      expect(signedUp).toMatchObject({
        actor: alice.id,
        actorType: 'user',
        payload: { email: 'alice@example.com', name: 'Alice Law', signupMethod: 'email' },
        metadata: { source: 'api', userAgent: 'hono-e2e/1.0' },
      });
      expect(signedUp.metadata.requestId).toEqual(expect.any(String));
    });

    it('refuses a second signup with the same email: nothing of it is stored', async () => {
      const res = await call('POST', '/auth/signup', {
        body: { email: 'alice@example.com', name: 'Alice Again', password: 'another secret' },
      });
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ error: { code: 'EMAIL_TAKEN' } });
      const signups = await blawby.bus.timeline({ eventTypes: ['auth.user_signed_up'] });
      expect(signups.events).toHaveLength(1);
    });

    it('creates an organization and its invitations in one unit of work, over two services', async () => {
      const res = await call('POST', '/orgs', {
        token: alice.token,
        body: { name: 'Law & Co', slug: 'law-and-co', practiceType: 'legal', invites: [{ email: 'bob@example.com', role: 'member' }] },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      const orgId = (res.body as { id: string }).id;
      const org = await timeline(alice.token, `?organizationId=${orgId}`);
      expect(org.events.map((e) => e.eventType).sort()).toEqual(['org.created', 'org.member_invited']);
      expect(org.events.find((e) => e.eventType === 'org.member_invited')!.payload).toMatchObject({
        email: 'bob@example.com',
        role: 'member',
      });
    });

    it('rolls back org.created with the organization when the second service refuses', async () => {
      const before = (await blawby.bus.timeline({ eventTypes: ['org.created'] })).events.length;
      // Inviting the owner: createOrganization has published org.created when inviteMembers refuses.
      const res = await call('POST', '/orgs', {
        token: alice.token,
        body: { name: 'Second', slug: 'second-firm', practiceType: 'legal', invites: [{ email: 'alice@example.com', role: 'admin' }] },
      });
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ error: { code: 'ALREADY_MEMBER' } });
      expect(await blawby.db.select().from(organizations).where(eq(organizations.slug, 'second-firm'))).toEqual([]);
      expect((await blawby.bus.timeline({ eventTypes: ['org.created'] })).events).toHaveLength(before);
    });

    it('leaves no transaction open outside a request: the unit of work is request-scoped', () => {
      expect(blawby.uow.current()).toBeUndefined();
    });

    it('runs the shared handlers after the commit: welcome email, analytics rows, Slack post, no dead letters', async () => {
      await blawby.bus.idle({ timeoutMs: 15_000 });
      const emails = await readOutbox(outboxDir);
      expect(emails.filter((e) => e.to.includes('alice@example.com') && e.template === 'welcome')).toHaveLength(1);
      const counts = await analyticsCounts(blawby.db, 'track');
      expect(counts['auth.user_signed_up']).toBe(1);
      expect(counts['org.created']).toBe(1); // the rolled-back one never reached a handler
      expect(slackPosts.filter((p) => p.channel === '/signups')).toHaveLength(1);
      expect(await blawby.bus.deadLetters.list()).toEqual([]);
    });

    it('verifies Stripe webhooks with stripe.webhooks.constructEvent and stores each event once', async () => {
      const payload = JSON.stringify({ id: stripeEventId(), object: 'event', type: 'customer.created', livemode: false, data: { object: { id: 'cus_1' } } });
      const forged = await postStripe(payload, Stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_other' }));
      expect(forged.status).toBe(400);
      expect(await forged.json()).toMatchObject({ error: { code: 'INVALID_SIGNATURE' } });
      const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
      const first = await postStripe(payload, signature);
      expect(first.status).toBe(200);
      expect(await first.json()).toMatchObject({ received: true, duplicate: false, handled: false });
      const again = await postStripe(payload, signature);
      expect(await again.json()).toEqual({ received: true, duplicate: true });
      expect((await blawby.bus.timeline({ eventTypes: ['billing.webhook_received'] })).events).toHaveLength(1);
    });

    it('keeps the user row with its events (node-postgres pool, committed)', async () => {
      const rows = await blawby.db.select({ id: users.id }).from(users).where(eq(users.email, 'alice@example.com'));
      expect(rows).toEqual([{ id: alice.id }]);
    });

    it('stops the bus when closed', async () => {
      await blawby.close();
      const err = await blawby.bus.publish('org.updated', { changedFields: ['name'] }).catch((e: unknown) => e);
      expect(EventBusError.is(err, 'BUS_STOPPED')).toBe(true);
    });
  },
);
