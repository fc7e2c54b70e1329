/**
 * Runs the same journey as `npm run demo` and checks its outcome (not its
 * wording): every step passes, and the report shows the retries, the dead
 * letter, the delayed reminder, the deduplicated webhook and a healthy bus.
 */
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { runDemo, type DemoReport } from './demo/run-demo';

let report: DemoReport | undefined;

afterAll(async () => {
  if (report) await rm(report.outboxDir.replace(/\/outbox$/, ''), { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('runs the whole journey and every check holds', { timeout: 120_000 }, async () => {
    report = await runDemo(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {});
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.steps.every((s) => s.ok)).toBe(true);
    expect(report.checks.length).toBeGreaterThan(10);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);

    // Retries: the #alerts notifier took three attempts, one delivery.
    const alerts = report.deliveries.find((d) => d.subscriber === 'internal.payment_failed_alert');
    expect(alerts).toMatchObject({ deliveries: 1, attempts: 3, succeeded: 1, retried: 1, deadLettered: 0 });
    expect(report.slack.filter((s) => s.path === '/slack/alerts').map((s) => s.status)).toEqual([500, 500, 200]);

    // One dead letter, from the revoked #sales webhook, after one attempt.
    expect(report.deadLetters).toHaveLength(1);
    expect(report.deadLetters[0]).toMatchObject({
      subscriber: 'internal.stripe_connected_alert',
      eventType: 'billing.onboarding_completed',
      attempts: 1,
    });

    // Every subscriber that should have run did, and analytics saw every event.
    const subscribers = report.deliveries.map((d) => d.subscriber);
    expect(subscribers).toEqual(
      expect.arrayContaining([
        'analytics.track_all',
        'analytics.conversion',
        'email.welcome',
        'email.payment_receipt',
        'email.schedule_onboarding_reminder',
        'email.onboarding_reminder',
        'internal.signup_alert',
      ]),
    );
    expect(report.deliveries.find((d) => d.subscriber === 'analytics.track_all')?.deliveries).toBe(report.totalEvents);
    expect(report.analytics.tracked).toBe(report.totalEvents);

    // The journey's events, each once where it should be once.
    for (const type of [
      'auth.email_verified',
      'org.created',
      'org.member_invited',
      'org.member_joined',
      'billing.onboarding_started',
      'billing.onboarding_reminder_due',
      'billing.onboarding_completed',
      'billing.payment_received',
      'billing.payment_failed',
      'onboarding.completed',
    ]) {
      expect(report.eventsByType[type], type).toBe(1);
    }
    expect(report.eventsByType['billing.webhook_received']).toBe(report.eventsByType['billing.webhook_processed']);

    // Webhook dedupe and signature check; health; timeline; emails.
    expect(report.webhooks).toMatchObject({ storedOnce: true, badSignatureStatus: 400 });
    expect(report.health.status).toBe(200);
    expect(report.health.body).toMatchObject({ healthy: true, unprocessed: 0, deadLetters: 1 });
    expect(report.timeline.events.length).toBeGreaterThan(10);
    expect(report.timeline.events.every((e, i, all) => i === 0 || all[i - 1]!.timestamp >= e.timestamp)).toBe(true);
    const templates = report.emails.map((e) => e.template);
    expect(templates).toEqual(
      expect.arrayContaining(['email-verification', 'welcome', 'invitation', 'onboarding-reminder', 'payment-receipt']),
    );
  });
});
