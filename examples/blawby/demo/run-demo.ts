/**
 * The demo's scripted journey, as a function that `npm run demo` prints and
 * `demo.e2e.test.ts` checks: it starts the Blawby backend on PGlite (or
 * `databaseUrl`), drives it over HTTP like a client and Stripe would, and
 * returns what happened (events, deliveries, dead letters, emails, ...) with
 * the checks that must hold.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, eq } from 'drizzle-orm';
import type { BaseEvent, HealthReport } from '@blawby/event-bus';
import { PGLITE_CACHE_DIR } from '../db/connect';
import { stripeEvents } from '../db/schema';
import type { AttemptRecord } from '../handlers';
import { createBlawby, type Blawby } from '../server';
import { analyticsCounts } from '../sinks/analytics';
import { readOutbox, type OutboxEmail } from '../sinks/email';
import { accountUpdatedEvent, paymentIntentEvent, postStripeWebhook } from '../stripe/test-events';
import { startWebhookReceiver, type WebhookReceiver } from './receiver';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** A PostgreSQL URL; PGlite when absent. The demo then works in a schema of its own, dropped at the end. */
  databaseUrl?: string;
  /** Where the outbox (and PGlite's data, if `persist`) go (default: a new temp dir). */
  dataDir?: string;
  /** Told about each step as it starts. */
  onStepStart?: (name: string) => void;
  /** Told about each step as it ends. */
  onStep?: (step: DemoStep) => void;
  /** Keep the server running and return it in `report.server` (for `--serve`). */
  keepServer?: boolean;
  /** Delay of the onboarding reminder (default 1500 ms; 24 h in production). */
  reminderDelayMs?: number;
  /** Port to listen on (default: a free one). */
  port?: number;
}

/** One step of the journey. */
export interface DemoStep {
  name: string;
  ok: boolean;
  /** What it showed, or why it failed. */
  detail: string;
  durationMs: number;
}

/** Deliveries of one subscriber. */
export interface SubscriberDeliveries {
  subscriber: string;
  /** Events it handled (or tried to). */
  deliveries: number;
  /** Attempts over all of them. */
  attempts: number;
  succeeded: number;
  /** Deliveries that needed more than one attempt. */
  retried: number;
  deadLettered: number;
}

/** What {@link runDemo} found. */
export interface DemoReport {
  /** True when every step ran and every check held. */
  ok: boolean;
  /** Why not, one line each. */
  failures: string[];
  driver: 'pglite' | 'postgres';
  baseUrl: string;
  outboxDir: string;
  durationMs: number;
  steps: DemoStep[];
  /** Named checks of the outcome. */
  checks: { name: string; ok: boolean }[];
  eventsByType: Record<string, number>;
  totalEvents: number;
  deliveries: SubscriberDeliveries[];
  deadLetters: { subscriber: string; eventType: string; eventId: string; attempts: number; error: string }[];
  timeline: { organizationId: string; events: { eventType: string; actor?: string; timestamp: string }[] };
  emails: { to: string; subject: string; template: string | undefined; file: string }[];
  slack: { path: string; status: number; text: string }[];
  health: { status: number; body: HealthReport | null };
  analytics: { tracked: number; conversions: Record<string, number> };
  webhooks: { duplicateResponse: unknown; storedOnce: boolean; badSignatureStatus: number };
  /** With `keepServer`: the running server. */
  server?: { url: string; ownerToken: string; organizationId: string; close(): Promise<void> };
}

/** The Stripe webhook signing secret of the demo (any string works; Stripe's start with `whsec_`). */
export const DEMO_WEBHOOK_SECRET = 'whsec_demo_secret';

class StepFailure extends Error {}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new StepFailure(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function tokenIn(email: OutboxEmail | undefined, what: string): string {
  const match = email?.text.match(/token=([A-Za-z0-9_-]+)/);
  if (!match?.[1]) throw new StepFailure(`no token in the ${what} email`);
  return match[1];
}

/** Runs the journey and returns its report. Never throws for a failed step: the report says why. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const started = Date.now();
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'blawby-demo-')));
  const outboxDir = join(dataDir, 'outbox');
  const steps: DemoStep[] = [];
  const failures: string[] = [];
  const attempts: AttemptRecord[] = [];
  const report: DemoReport = {
    ok: false,
    failures,
    driver: options.databaseUrl ? 'postgres' : 'pglite',
    baseUrl: '',
    outboxDir,
    durationMs: 0,
    steps,
    checks: [],
    eventsByType: {},
    totalEvents: 0,
    deliveries: [],
    deadLetters: [],
    timeline: { organizationId: '', events: [] },
    emails: [],
    slack: [],
    health: { status: 0, body: null },
    analytics: { tracked: 0, conversions: {} },
    webhooks: { duplicateResponse: null, storedOnce: false, badSignatureStatus: 0 },
  };

  let receiver: WebhookReceiver | undefined;
  let blawby: Blawby | undefined;
  let keep = false;
  try {
    const step = async (name: string, run: () => Promise<string>): Promise<void> => {
      const t0 = Date.now();
      options.onStepStart?.(name);
      try {
        const detail = await run();
        const s = { name, ok: true, detail, durationMs: Date.now() - t0 };
        steps.push(s);
        options.onStep?.(s);
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        const s = { name, ok: false, detail, durationMs: Date.now() - t0 };
        steps.push(s);
        options.onStep?.(s);
        throw new StepFailure(`${name}: ${detail}`);
      }
    };

    let bus!: Blawby['bus'];
    let baseUrl = '';
    await step('Starts the backend (database, migrations, handlers, Fastify)', async () => {
      receiver = await startWebhookReceiver();
      // #alerts fails twice, then works; #sales was revoked (Slack answers 404 no_service).
      receiver.script('/slack/alerts', [500, 500, 200]);
      receiver.script('/slack/sales', [404]);
      blawby = await createBlawby({
        ...(options.databaseUrl
          ? {
              databaseUrl: options.databaseUrl,
              pgSchema: `blawby_demo_${randomBytes(4).toString('hex')}`,
              dropSchemaOnClose: true,
            }
          : {}),
        outboxDir,
        pgliteCacheDir: PGLITE_CACHE_DIR,
        slackUrls: {
          '#signups': `${receiver.url}/slack/signups`,
          '#alerts': `${receiver.url}/slack/alerts`,
          '#sales': `${receiver.url}/slack/sales`,
        },
        stripeWebhookSecret: DEMO_WEBHOOK_SECRET,
        reminderDelayMs: options.reminderDelayMs ?? 1500,
        retry: { attempts: 4, minDelayMs: 50, maxDelayMs: 250 },
        dispatch: { pollIntervalMs: 100 },
        environment: 'demo',
        // A loaded machine must not add events to the scripted journey.
        slowRequestMs: 60_000,
        observe: (record) => attempts.push(record),
      });
      bus = blawby.bus;
      await bus.start();
      baseUrl = await blawby.app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
      report.baseUrl = baseUrl;
      return `${blawby.driver === 'pglite' ? 'PGlite (in process)' : 'PostgreSQL'}; listening at ${baseUrl}`;
    });
    const backend = blawby!;

    const api = async <T = Record<string, unknown>>(
      method: string,
      path: string,
      body?: unknown,
      token?: string,
      expect: number[] = [200, 201, 202, 204],
    ): Promise<T> => {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      if (!expect.includes(response.status)) {
        throw new StepFailure(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
      }
      return (text ? JSON.parse(text) : {}) as T;
    };
    const emailsTo = async (to: string, template: string) =>
      (await readOutbox(outboxDir)).filter((e) => e.to.includes(to) && e.template === template);
    const webhook = (event: Record<string, unknown>, opts?: { timestamp?: number; signature?: string }) =>
      postStripeWebhook(`${baseUrl}/webhooks/stripe`, DEMO_WEBHOOK_SECRET, event, opts);

    const owner = { email: 'maya@harbor-law.example', name: 'Maya Chen', password: 'correct-horse-battery' };
    const invitee = { email: 'sam@harbor-law.example', name: 'Sam Ortiz', password: 'staple-lantern-quartz' };
    let ownerToken = '';
    let inviteeToken = '';
    let inviteeId = '';
    let orgId = '';
    let accountId = '';

    await step('Owner signs up', async () => {
      const res = await api<{ token: string; user: { id: string } }>('POST', '/auth/signup', {
        ...owner,
        referralSource: 'referral',
        referralCode: 'BAR2026',
      });
      ownerToken = res.token;
      return `user ${res.user.id}`;
    });
    await step('Verifies the email address (link from the outbox)', async () => {
      const [mail] = await waitFor('the verification email', 5000, async () => {
        const found = await emailsTo(owner.email, 'email-verification');
        return found.length ? found : undefined;
      });
      await api('POST', '/auth/verify-email', { token: tokenIn(mail, 'verification') });
      return 'auth.email_verified';
    });
    await step('Onboarding: profile', async () => {
      await api('POST', '/onboarding/start', {}, ownerToken);
      await api('PUT', '/profile', { displayName: 'Maya Chen', timezone: 'America/New_York' }, ownerToken);
      await api('POST', '/onboarding/steps/profile', {}, ownerToken);
      return 'onboarding.started, profile.created, onboarding.step_completed';
    });
    await step('Creates the organization and switches to it', async () => {
      const org = await api<{ id: string }>(
        'POST',
        '/orgs',
        { name: 'Harbor Law', slug: `harbor-law-${randomBytes(3).toString('hex')}`, practiceType: 'legal' },
        ownerToken,
      );
      orgId = org.id;
      await api('POST', `/orgs/${orgId}/switch`, {}, ownerToken);
      await api('POST', '/onboarding/steps/organization', {}, ownerToken);
      return `org ${orgId}`;
    });
    await step('Adds practice details', async () => {
      await api(
        'PUT',
        `/orgs/${orgId}/practice`,
        {
          businessName: 'Harbor Law LLP',
          specialties: ['family law', 'estate planning'],
          businessEmail: 'office@harbor-law.example',
          website: 'https://harbor-law.example',
        },
        ownerToken,
      );
      await api(
        'PUT',
        `/orgs/${orgId}/practice`,
        {
          businessName: 'Harbor Law LLP',
          specialties: ['family law', 'estate planning', 'immigration'],
          businessEmail: 'office@harbor-law.example',
          businessPhone: '+1 555 0100',
          website: 'https://harbor-law.example',
        },
        ownerToken,
      );
      await api('POST', '/onboarding/steps/practice_details', {}, ownerToken);
      return 'practice.details_created, then updated (specialties, contact info)';
    });
    await step('Invites a member, who signs up and joins', async () => {
      await api('POST', `/orgs/${orgId}/invitations`, { email: invitee.email, role: 'member' }, ownerToken);
      const signup = await api<{ token: string; user: { id: string } }>('POST', '/auth/signup', invitee);
      inviteeToken = signup.token;
      inviteeId = signup.user.id;
      const [invitation] = await waitFor('the invitation email', 5000, async () => {
        const found = await emailsTo(invitee.email, 'invitation');
        return found.length ? found : undefined;
      });
      await api('POST', '/invitations/accept', { token: tokenIn(invitation, 'invitation') }, inviteeToken);
      await api('PATCH', `/orgs/${orgId}/members/${inviteeId}`, { role: 'admin' }, ownerToken);
      return `${inviteeId} joined as member, promoted to admin`;
    });
    await step('An outsider is refused the organization timeline', async () => {
      const stranger = await api<{ token: string }>('POST', '/auth/signup', {
        email: 'mallory@elsewhere.example',
        name: 'Mallory',
        password: 'not-a-member-here',
      });
      await api('GET', `/events/timeline?organizationId=${orgId}`, undefined, stranger.token, [403]);
      return '403, org.access_denied published';
    });
    await step('Starts Stripe Connect onboarding', async () => {
      const res = await api<{ accountId: string }>(
        'POST',
        `/orgs/${orgId}/billing/onboarding`,
        { country: 'US' },
        ownerToken,
      );
      accountId = res.accountId;
      return `account ${accountId}; reminder due in ${options.reminderDelayMs ?? 1500} ms`;
    });
    await step('The delayed reminder fires while onboarding is incomplete', async () => {
      await waitFor('the onboarding reminder email', 15_000, async () => {
        const found = await emailsTo(owner.email, 'onboarding-reminder');
        return found.length ? found : undefined;
      });
      return 'billing.onboarding_reminder_due delivered; reminder email written';
    });
    await step('Stripe webhook (signed) completes onboarding; its redelivery is ignored', async () => {
      const completed = accountUpdatedEvent(accountId, { chargesEnabled: true, payoutsEnabled: true });
      const first = await webhook(completed);
      if (first.status !== 200) throw new StepFailure(`webhook answered ${first.status}: ${await first.text()}`);
      const again = await webhook(completed);
      report.webhooks.duplicateResponse = await again.json();
      const forged = await webhook(accountUpdatedEvent(accountId, { chargesEnabled: false, payoutsEnabled: false }), {
        signature: `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}`,
      });
      report.webhooks.badSignatureStatus = forged.status;
      const [row] = await backend.db
        .select({ n: count() })
        .from(stripeEvents)
        .where(eq(stripeEvents.id, String(completed.id)));
      report.webhooks.storedOnce = row?.n === 1;
      await api('POST', '/onboarding/steps/billing', {}, ownerToken);
      return `billing.onboarding_completed; duplicate ignored; forged signature -> ${forged.status}`;
    });
    await step('A payment is received', async () => {
      await api(
        'POST',
        `/orgs/${orgId}/billing/payment-sessions`,
        { amount: 25000, currency: 'usd', customerEmail: 'client@example.com' },
        ownerToken,
      );
      const res = await webhook(
        paymentIntentEvent(accountId, 'succeeded', {
          amount: 25000,
          currency: 'usd',
          receiptEmail: 'client@example.com',
        }),
      );
      if (res.status !== 200) throw new StepFailure(`webhook answered ${res.status}`);
      return 'billing.payment_received; receipt emailed';
    });
    await step('A payment fails; the #alerts webhook fails twice, then succeeds', async () => {
      const res = await webhook(
        paymentIntentEvent(accountId, 'payment_failed', {
          amount: 12000,
          currency: 'usd',
          receiptEmail: 'client@example.com',
          failureMessage: 'Your card has insufficient funds.',
          declineCode: 'insufficient_funds',
        }),
      );
      if (res.status !== 200) throw new StepFailure(`webhook answered ${res.status}`);
      await waitFor('the #alerts notification', 10_000, async () =>
        receiver!.received.some((r) => r.path === '/slack/alerts' && r.status === 200) ? true : undefined,
      );
      return `${receiver!.received.filter((r) => r.path === '/slack/alerts').length} attempts to #alerts`;
    });
    await step('Every handler settles', async () => {
      await bus.idle({ timeoutMs: 10_000 });
      const letters = await bus.deadLetters.list();
      return `${letters.length} dead letter(s)`;
    });

    // --- What happened ---------------------------------------------------------
    const all: BaseEvent[] = [];
    let cursor: string | undefined;
    do {
      const page = await bus.timeline({ limit: 1000, ...(cursor ? { cursor } : {}) });
      all.push(...page.events);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    for (const e of all) report.eventsByType[e.eventType] = (report.eventsByType[e.eventType] ?? 0) + 1;
    report.totalEvents = all.length;

    const letters = await bus.deadLetters.list();
    report.deadLetters = letters.map((d) => ({
      subscriber: d.subscriber,
      eventType: d.eventType,
      eventId: d.eventId,
      attempts: d.attempts,
      error: d.error.message,
    }));
    const bySubscriber = new Map<string, Map<string, AttemptRecord>>();
    for (const a of attempts) {
      const events = bySubscriber.get(a.subscriber) ?? new Map<string, AttemptRecord>();
      const last = events.get(a.eventId);
      if (!last || a.attempt >= last.attempt) events.set(a.eventId, a);
      bySubscriber.set(a.subscriber, events);
    }
    report.deliveries = [...bySubscriber]
      .map(([subscriber, events]) => {
        const finals = [...events.values()];
        return {
          subscriber,
          deliveries: finals.length,
          attempts: attempts.filter((a) => a.subscriber === subscriber).length,
          succeeded: finals.filter((f) => f.outcome === 'succeeded').length,
          retried: finals.filter((f) => f.attempt > 1).length,
          deadLettered: letters.filter((d) => d.subscriber === subscriber).length,
        };
      })
      .sort((a, b) => a.subscriber.localeCompare(b.subscriber));

    const timeline = await api<{ events: { eventType: string; actor?: string; timestamp: string }[] }>(
      'GET',
      `/events/timeline?organizationId=${orgId}&limit=100`,
      undefined,
      ownerToken,
    );
    report.timeline = {
      organizationId: orgId,
      events: timeline.events.map((e) => ({
        eventType: e.eventType,
        timestamp: e.timestamp,
        ...(e.actor ? { actor: e.actor } : {}),
      })),
    };
    report.emails = (await readOutbox(outboxDir)).map(({ to, subject, template, file }) => ({
      to,
      subject,
      template,
      file,
    }));
    report.slack = receiver!.received.map((r) => ({
      path: r.path,
      status: r.status,
      text: String((r.body as { text?: unknown } | null)?.text ?? ''),
    }));
    const health = await fetch(`${baseUrl}/events/health`);
    report.health = { status: health.status, body: (await health.json()) as HealthReport };
    const tracked = await analyticsCounts(backend.db, 'track');
    report.analytics = {
      tracked: Object.values(tracked).reduce((a, b) => a + b, 0),
      conversions: await analyticsCounts(backend.db, 'conversion'),
    };

    // --- Checks (outcome, not wording) -----------------------------------------
    const delivery = (name: string) => report.deliveries.find((d) => d.subscriber === name);
    const alerts = delivery('internal.payment_failed_alert');
    const check = (name: string, ok: boolean) => report.checks.push({ name, ok });
    check('welcome email to each new user', report.emails.filter((e) => e.template === 'welcome').length === 3);
    check(
      'onboarding reminder sent by the delayed event',
      report.emails.some((e) => e.template === 'onboarding-reminder'),
    );
    check(
      'payment receipt emailed',
      report.emails.some((e) => e.template === 'payment-receipt' && e.to.includes('client@example.com')),
    );
    check('#alerts delivered on the third attempt', alerts?.succeeded === 1 && alerts.attempts === 3);
    check(
      'the revoked #sales webhook dead-lettered at once',
      report.deadLetters.length === 1 &&
        report.deadLetters[0]?.subscriber === 'internal.stripe_connected_alert' &&
        report.deadLetters[0]?.attempts === 1,
    );
    check(
      'duplicate Stripe webhook stored once',
      report.webhooks.storedOnce && (report.webhooks.duplicateResponse as { duplicate?: boolean })?.duplicate === true,
    );
    check('forged Stripe signature refused', report.webhooks.badSignatureStatus === 400);
    check('onboarding completed once', report.eventsByType['billing.onboarding_completed'] === 1);
    check('stripe_connected conversion recorded', report.analytics.conversions['stripe_connected'] === 1);
    check('every event tracked in analytics', report.analytics.tracked === report.totalEvents);
    check('access denial recorded', (report.eventsByType['org.access_denied'] ?? 0) >= 1);
    check(
      'health endpoint healthy, nothing unprocessed',
      report.health.status === 200 && report.health.body?.unprocessed === 0,
    );
    check(
      'organization timeline served',
      report.timeline.events.some((e) => e.eventType === 'org.created'),
    );
    for (const c of report.checks) if (!c.ok) failures.push(`check failed: ${c.name}`);

    if (options.keepServer && failures.length === 0) {
      keep = true;
      const running = backend;
      const rx = receiver!;
      report.server = {
        url: baseUrl,
        ownerToken,
        organizationId: orgId,
        async close() {
          await running.close();
          await rx.close();
        },
      };
    }
  } catch (err) {
    failures.push(err instanceof Error ? err.message : String(err));
  } finally {
    if (!keep) {
      await blawby?.close().catch((err: unknown) => failures.push(`closing the backend: ${String(err)}`));
      await receiver?.close().catch(() => {});
    }
  }
  report.ok = failures.length === 0;
  report.durationMs = Date.now() - started;
  return report;
}
