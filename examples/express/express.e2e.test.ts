/**
 * The Express variant end to end, over real HTTP, on PGlite (or PostgreSQL
 * with DATABASE_URL, in a schema of its own): signup publishes in the same
 * transaction as the user row, the handlers write to real sinks (the file
 * outbox, the analytics table, a Slack-style receiver started here), and the
 * events router answers the timeline and health routes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBusError } from '@blawby/event-bus';
import type { BaseEvent } from '@blawby/event-bus';
import { analyticsCounts } from '../blawby/sinks/analytics';
import { readOutbox } from '../blawby/sinks/email';
import { createExpressBlawby, type ExpressBlawby } from './server';

type JsonEvent = Omit<BaseEvent, 'timestamp'> & { timestamp: string };

describe('Express variant of the Blawby backend', () => {
  let blawby: ExpressBlawby;
  let baseUrl: string;
  let outboxDir: string;
  let slack: Server;
  const slackPosts: { channel: string; body: unknown }[] = [];

  beforeAll(async () => {
    outboxDir = await mkdtemp(join(tmpdir(), 'express-outbox-'));
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
    blawby = await createExpressBlawby({
      ...(process.env.DATABASE_URL
        ? { databaseUrl: process.env.DATABASE_URL, pgSchema: `express_e2e_${process.pid}_${Date.now()}` }
        : {}),
      outboxDir,
      slackUrls: { '#signups': `${slackUrl}/signups`, default: `${slackUrl}/default` },
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
        'user-agent': 'express-e2e/1.0',
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

  let alice: { id: string; token: string };
  let orgId: string;

  it('answers health before anything happened', async () => {
    const res = await call('GET', '/events/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ healthy: true, status: 'healthy' });
  });

  it('signs up: the user row and auth.user_signed_up commit together, with the request metadata', async () => {
    const res = await call('POST', '/auth/signup', {
      body: { email: 'Alice@Example.com', name: 'Alice Law', password: 'correct horse' },
    });
    expect(res.status).toBe(201);
    const { user, token } = res.body as { user: { id: string }; token: string };
    alice = { id: user.id, token };
    const own = await timeline(token);
    expect(own.events.map((e) => e.eventType).sort()).toEqual(['auth.user_signed_up', 'session.created']);
    const signedUp = own.events.find((e) => e.eventType === 'auth.user_signed_up')!;
    expect(signedUp).toMatchObject({
      actor: alice.id,
      actorType: 'user',
      payload: { email: 'alice@example.com', name: 'Alice Law', signupMethod: 'email' },
      metadata: { source: 'api', userAgent: 'express-e2e/1.0' },
    });
    expect(signedUp.metadata.requestId).toEqual(expect.any(String));
    expect(signedUp.metadata.ipAddress).toMatch(/127\.0\.0\.1/);
  });

  it('refuses a second signup with the same email and publishes nothing for it', async () => {
    const res = await call('POST', '/auth/signup', {
      body: { email: 'alice@example.com', name: 'Alice Again', password: 'another secret' },
    });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error: { code: 'EMAIL_TAKEN' } });
    const signups = await blawby.bus.timeline({ eventTypes: ['auth.user_signed_up'] });
    expect(signups.events).toHaveLength(1);
    const bad = await call('POST', '/auth/signup', { body: { email: 'nope', name: '', password: 'x' } });
    expect(bad.status).toBe(400);
  });

  it('runs the handlers against real sinks: welcome email, analytics row, Slack post', async () => {
    await blawby.bus.idle({ timeoutMs: 15_000 });
    const emails = await readOutbox(outboxDir);
    expect(emails.filter((e) => e.to.includes('alice@example.com') && e.template === 'welcome')).toHaveLength(1);
    const counts = await analyticsCounts(blawby.db, 'track');
    expect(counts['auth.user_signed_up']).toBe(1);
    expect(slackPosts.filter((p) => p.channel === '/signups')).toHaveLength(1);
    expect(JSON.stringify(slackPosts[0]!.body)).toContain('alice@example.com');
    expect(await blawby.bus.deadLetters.list()).toEqual([]);
  });

  it("creates an organization and serves its timeline to members only; a stranger's try is recorded", async () => {
    const created = await call('POST', '/orgs', {
      token: alice.token,
      body: { name: 'Law & Co', slug: 'law-and-co', practiceType: 'legal' },
    });
    expect(created.status).toBe(201);
    orgId = (created.body as { id: string }).id;
    const org = await timeline(alice.token, `?organizationId=${orgId}`);
    expect(org.events.map((e) => e.eventType)).toEqual(['org.created']);

    const bob = await call('POST', '/auth/signup', {
      body: { email: 'bob@example.com', name: 'Bob', password: 'hunter2hunter2' },
    });
    const bobToken = (bob.body as { token: string }).token;
    const denied = await call('GET', `/events/timeline?organizationId=${orgId}`, { token: bobToken });
    expect(denied.status).toBe(403);
    const after = await timeline(alice.token, `?organizationId=${orgId}&eventTypes=org.access_denied`);
    expect(after.events).toHaveLength(1);
    expect(after.events[0]).toMatchObject({
      actor: (bob.body as { user: { id: string } }).user.id,
      payload: { resource: 'events.timeline', reason: 'not_a_member' },
    });
  });

  it('answers 401 and 400 on the timeline as the adapter promises', async () => {
    expect((await call('GET', '/events/timeline')).status).toBe(401);
    const bad = await call('GET', '/events/timeline?limit=0', { token: alice.token });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'INVALID_QUERY' } });
  });

  it('logs in with the password and publishes auth.user_logged_in', async () => {
    const wrong = await call('POST', '/auth/login', { body: { email: 'alice@example.com', password: 'wrong' } });
    expect(wrong.status).toBe(401);
    const res = await call('POST', '/auth/login', { body: { email: 'alice@example.com', password: 'correct horse' } });
    expect(res.status).toBe(200);
    const own = await timeline(alice.token, '?eventTypes=auth.user_logged_in');
    expect(own.events).toHaveLength(1);
  });

  it('stops the bus when closed', async () => {
    await blawby.close();
    const err = await blawby.bus.publish('org.updated', { changedFields: ['name'] }).catch((e: unknown) => e);
    expect(EventBusError.is(err, 'BUS_STOPPED')).toBe(true);
  });
});
