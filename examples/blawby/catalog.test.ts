import { describe, expect, it } from 'vitest';
import { isValidEventName } from '@blawby/event-bus';
import { catalog, EventType } from './catalog';

/** Every event name of the seed plan's section 1, verbatim. */
const SEED_EVENTS = [
  'auth.user_signed_up',
  'auth.email_verified',
  'auth.user_logged_in',
  'auth.user_logged_out',
  'auth.password_reset_requested',
  'auth.password_changed',
  'auth.account_deleted',
  'onboarding.started',
  'onboarding.step_completed',
  'onboarding.completed',
  'onboarding.skipped',
  'profile.created',
  'profile.updated',
  'profile.picture_uploaded',
  'org.created',
  'org.updated',
  'org.deleted',
  'org.member_invited',
  'org.member_joined',
  'org.member_role_changed',
  'org.member_removed',
  'org.member_left',
  'org.switched',
  'org.access_denied',
  'billing.onboarding_started',
  'billing.onboarding_completed',
  'billing.onboarding_failed',
  'billing.payment_session_created',
  'billing.payment_received',
  'billing.payment_failed',
  'billing.payment_refunded',
  'billing.account_updated',
  'billing.account_requirements_changed',
  'billing.account_capabilities_updated',
  'billing.webhook_received',
  'billing.webhook_processed',
  'billing.webhook_failed',
  'practice.details_created',
  'practice.details_updated',
  'practice.specialties_updated',
  'practice.contact_info_updated',
  'system.health_check_performed',
  'system.error_occurred',
  'system.performance_degraded',
  'session.created',
  'session.expired',
  'session.invalidated',
];

describe('Blawby catalog', () => {
  it('has every event of the seed, plus only the delayed reminder of its own', () => {
    expect(Object.keys(catalog).sort()).toEqual([...SEED_EVENTS, 'billing.onboarding_reminder_due'].sort());
    for (const name of Object.keys(catalog)) expect(isValidEventName(name), name).toBe(true);
    expect(EventType.AUTH_USER_SIGNED_UP).toBe('auth.user_signed_up');
    expect(EventType.BILLING_ONBOARDING_REMINDER_DUE).toBe('billing.onboarding_reminder_due');
  });

  it("accepts the seed's section 2 example payloads", () => {
    const ok = (type: keyof typeof catalog, payload: unknown) =>
      expect(catalog[type].payload.safeParse(payload).success, type).toBe(true);
    ok('auth.user_signed_up', {
      email: 'user@example.com',
      name: 'John Doe',
      signupMethod: 'email',
      referralSource: 'organic',
      referralCode: 'REF123',
    });
    ok('org.created', {
      organizationName: 'ABC Practice',
      organizationSlug: 'abc-practice',
      practiceType: 'dental',
      role: 'owner',
    });
    ok('billing.onboarding_completed', {
      stripeAccountId: 'acct_123',
      connectedAccountId: 'ca_456',
      chargesEnabled: true,
      payoutsEnabled: true,
    });
    ok('billing.payment_received', {
      paymentIntentId: 'pi_123',
      amount: 5000,
      currency: 'usd',
      customerEmail: 'patient@example.com',
      stripeAccountId: 'acct_123',
      applicationFeeAmount: 500,
    });
    ok('billing.onboarding_started', { accountId: 'acct_123', email: 'owner@example.com', country: 'US' });
  });

  it('refuses payloads that break the schemas', () => {
    const bad = (type: keyof typeof catalog, payload: unknown) =>
      expect(catalog[type].payload.safeParse(payload).success, type).toBe(false);
    bad('auth.user_signed_up', { email: 'not-an-email', name: 'x', signupMethod: 'email' });
    bad('auth.user_signed_up', { email: 'a@b.co', name: 'x', signupMethod: 'carrier-pigeon' });
    bad('billing.payment_received', {
      paymentIntentId: 'pi_1',
      amount: 10.5,
      currency: 'usd',
      stripeAccountId: 'acct_1',
    });
    bad('billing.payment_received', {
      paymentIntentId: 'pi_1',
      amount: 10,
      currency: 'USD',
      stripeAccountId: 'acct_1',
    });
    bad('billing.onboarding_completed', { stripeAccountId: 'acct_1', chargesEnabled: false, payoutsEnabled: true });
    bad('org.created', { organizationName: 'A', organizationSlug: 'Not A Slug', practiceType: 'legal', role: 'owner' });
    bad('onboarding.step_completed', { step: 'unknown', completedSteps: 1, totalSteps: 4 });
  });
});
