/**
 * The Blawby event catalog: every event of the seed plan's section 1, each
 * with a zod schema for its payload (section 2's examples where it gives
 * them), plus one event of this application's own (`billing.onboarding_reminder_due`,
 * the delayed event that replaces the seed's 24-hour `setTimeout`).
 *
 * Payloads hold what happened, never secrets: no passwords, tokens or
 * verification links (those go straight from the route to the email sender).
 * Times inside payloads are ISO 8601 strings, since payloads are stored as JSON.
 *
 * @module
 */
import { z } from 'zod';
import { defineCatalog, defineEvent, eventTypes } from '@blawby/event-bus';

const id = z.string().min(1).max(200);
const email = z.email();
const isoTime = z.iso.datetime({ offset: true });
const currency = z.string().regex(/^[a-z]{3}$/, 'a lower-case ISO 4217 code such as "usd"');
const cents = z.number().int().nonnegative();
const changedFields = z.array(z.string().min(1)).min(1);

/** Roles a member can hold in an organization. */
export const memberRole = z.enum(['owner', 'admin', 'member']);
/** A member role. */
export type MemberRole = z.infer<typeof memberRole>;

/** The steps of the onboarding flow, in order. */
export const ONBOARDING_STEPS = ['profile', 'organization', 'practice_details', 'billing'] as const;
/** One onboarding step. */
export const onboardingStep = z.enum(ONBOARDING_STEPS);

const stripeAccount = { stripeAccountId: z.string().regex(/^acct_[A-Za-z0-9]+$/) };

/** Every event the Blawby backend publishes. */
export const catalog = defineCatalog({
  // --- Authentication -------------------------------------------------------
  'auth.user_signed_up': defineEvent({
    version: '1.0.0',
    description: 'New user account created',
    payload: z.object({
      email,
      name: z.string().min(1).max(200),
      signupMethod: z.enum(['email', 'google', 'github']),
      referralSource: z.enum(['organic', 'referral', 'paid']).optional(),
      referralCode: z.string().max(64).optional(),
    }),
  }),
  'auth.email_verified': defineEvent({
    version: '1.0.0',
    description: 'Email verification completed',
    payload: z.object({ email }),
  }),
  'auth.user_logged_in': defineEvent({
    version: '1.0.0',
    description: 'User session started',
    payload: z.object({ email, sessionId: id, method: z.enum(['password', 'signup', 'google', 'github']) }),
  }),
  'auth.user_logged_out': defineEvent({
    version: '1.0.0',
    description: 'User session ended',
    payload: z.object({ sessionId: id }),
  }),
  'auth.password_reset_requested': defineEvent({
    version: '1.0.0',
    description: 'Password reset initiated (the token itself is never in the event)',
    payload: z.object({ email, expiresAt: isoTime }),
  }),
  'auth.password_changed': defineEvent({
    version: '1.0.0',
    description: 'Password successfully changed',
    payload: z.object({ method: z.enum(['change', 'reset']), sessionsInvalidated: z.number().int().nonnegative() }),
  }),
  'auth.account_deleted': defineEvent({
    version: '1.0.0',
    description: 'User account removed',
    payload: z.object({ email, reason: z.string().max(500).optional() }),
  }),

  // --- Onboarding and profile ---------------------------------------------
  'onboarding.started': defineEvent({
    version: '1.0.0',
    description: 'User begins onboarding',
    payload: z.object({ steps: z.array(onboardingStep).min(1) }),
  }),
  'onboarding.step_completed': defineEvent({
    version: '1.0.0',
    description: 'Individual onboarding step finished',
    payload: z.object({
      step: onboardingStep,
      completedSteps: z.number().int().positive(),
      totalSteps: z.number().int().positive(),
    }),
  }),
  'onboarding.completed': defineEvent({
    version: '1.0.0',
    description: 'Full onboarding finished',
    payload: z.object({ steps: z.array(onboardingStep), durationMs: z.number().int().nonnegative() }),
  }),
  'onboarding.skipped': defineEvent({
    version: '1.0.0',
    description: 'User skips onboarding',
    payload: z.object({ remainingSteps: z.array(onboardingStep), reason: z.string().max(500).optional() }),
  }),
  'profile.created': defineEvent({
    version: '1.0.0',
    description: 'Initial profile setup',
    payload: z.object({
      displayName: z.string().min(1).max(200),
      phone: z.string().max(40).optional(),
      timezone: z.string().max(64).optional(),
    }),
  }),
  'profile.updated': defineEvent({
    version: '1.0.0',
    description: 'Profile information changed',
    payload: z.object({ changedFields }),
  }),
  'profile.picture_uploaded': defineEvent({
    version: '1.0.0',
    description: 'Profile image added',
    payload: z.object({
      url: z.url(),
      contentType: z.enum(['image/png', 'image/jpeg', 'image/webp']),
      sizeBytes: z.number().int().positive(),
    }),
  }),

  // --- Organizations and members --------------------------------------------
  'org.created': defineEvent({
    version: '1.0.0',
    description: 'New practice/organization created',
    payload: z.object({
      organizationName: z.string().min(1).max(200),
      organizationSlug: z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/),
      practiceType: z.string().min(1).max(100),
      role: z.literal('owner'),
    }),
  }),
  'org.updated': defineEvent({
    version: '1.0.0',
    description: 'Organization details modified',
    payload: z.object({ changedFields }),
  }),
  'org.deleted': defineEvent({
    version: '1.0.0',
    description: 'Organization removed',
    payload: z.object({ organizationName: z.string(), organizationSlug: z.string() }),
  }),
  'org.member_invited': defineEvent({
    version: '1.0.0',
    description: 'Team member invitation sent',
    payload: z.object({ invitationId: id, email, role: memberRole.exclude(['owner']), expiresAt: isoTime }),
  }),
  'org.member_joined': defineEvent({
    version: '1.0.0',
    description: 'User accepted an invitation',
    payload: z.object({ userId: id, email, role: memberRole, invitationId: id }),
  }),
  'org.member_role_changed': defineEvent({
    version: '1.0.0',
    description: 'Member role updated',
    payload: z.object({ userId: id, previousRole: memberRole, newRole: memberRole }),
  }),
  'org.member_removed': defineEvent({
    version: '1.0.0',
    description: 'Member removed from organization',
    payload: z.object({ userId: id, role: memberRole }),
  }),
  'org.member_left': defineEvent({
    version: '1.0.0',
    description: 'Member left organization',
    payload: z.object({ userId: id, role: memberRole }),
  }),
  'org.switched': defineEvent({
    version: '1.0.0',
    description: 'User changed active organization',
    payload: z.object({ sessionId: id, fromOrganizationId: id.nullable(), toOrganizationId: id }),
  }),
  'org.access_denied': defineEvent({
    version: '1.0.0',
    description: 'Unauthorized access attempt',
    // Loose on purpose: published both by this app's routes and by the
    // framework adapter's timeline route, each with what it knows.
    payload: z
      .object({
        resource: z.string().max(500).optional(),
        action: z.string().max(100).optional(),
        reason: z.string().max(500).optional(),
        organizationId: z.string().max(200).optional(),
        method: z.string().max(10).optional(),
        path: z.string().max(500).optional(),
      })
      .loose(),
  }),

  // --- Billing and Stripe ----------------------------------------------------
  'billing.onboarding_started': defineEvent({
    version: '1.0.0',
    description: 'Stripe Connect onboarding initiated',
    payload: z.object({ accountId: stripeAccount.stripeAccountId, email, country: z.string().length(2) }),
  }),
  'billing.onboarding_completed': defineEvent({
    version: '1.0.0',
    description: 'Stripe account fully connected (charges and payouts enabled)',
    payload: z.object({
      ...stripeAccount,
      connectedAccountId: z.string().optional(),
      chargesEnabled: z.literal(true),
      payoutsEnabled: z.literal(true),
    }),
  }),
  'billing.onboarding_failed': defineEvent({
    version: '1.0.0',
    description: 'Stripe onboarding failed (the account was rejected or disabled)',
    payload: z.object({ ...stripeAccount, reason: z.string(), requirements: z.array(z.string()) }),
  }),
  'billing.onboarding_reminder_due': defineEvent({
    version: '1.0.0',
    description:
      'Delayed check published at onboarding start: remind the owner if Stripe onboarding is still incomplete',
    payload: z.object({ ...stripeAccount, email, startedAt: isoTime }),
  }),
  'billing.payment_session_created': defineEvent({
    version: '1.0.0',
    description: 'Payment session initiated',
    payload: z.object({
      ...stripeAccount,
      sessionId: z.string().regex(/^cs_[A-Za-z0-9]+$/),
      amount: cents.positive(),
      currency,
      customerEmail: email.optional(),
      expiresAt: isoTime,
    }),
  }),
  'billing.payment_received': defineEvent({
    version: '1.0.0',
    description: 'Payment successfully processed',
    payload: z.object({
      ...stripeAccount,
      paymentIntentId: z.string().regex(/^pi_[A-Za-z0-9]+$/),
      amount: cents,
      currency,
      customerEmail: email.optional(),
      applicationFeeAmount: cents.optional(),
    }),
  }),
  'billing.payment_failed': defineEvent({
    version: '1.0.0',
    description: 'Payment processing failed',
    payload: z.object({
      ...stripeAccount,
      paymentIntentId: z.string().regex(/^pi_[A-Za-z0-9]+$/),
      amount: cents,
      currency,
      customerEmail: email.optional(),
      error: z.string(),
      declineCode: z.string().optional(),
    }),
  }),
  'billing.payment_refunded': defineEvent({
    version: '1.0.0',
    description: 'Payment refunded',
    payload: z.object({
      ...stripeAccount,
      chargeId: z.string().regex(/^ch_[A-Za-z0-9]+$/),
      paymentIntentId: z.string().optional(),
      amountRefunded: cents,
      currency,
    }),
  }),
  'billing.account_updated': defineEvent({
    version: '1.0.0',
    description: 'Connected account details changed',
    payload: z.object({
      ...stripeAccount,
      chargesEnabled: z.boolean(),
      payoutsEnabled: z.boolean(),
      detailsSubmitted: z.boolean(),
    }),
  }),
  'billing.account_requirements_changed': defineEvent({
    version: '1.0.0',
    description: 'Account requirements updated',
    payload: z.object({
      ...stripeAccount,
      currentlyDue: z.array(z.string()),
      pastDue: z.array(z.string()),
      disabledReason: z.string().nullable(),
    }),
  }),
  'billing.account_capabilities_updated': defineEvent({
    version: '1.0.0',
    description: 'Account capabilities changed',
    payload: z.object({
      ...stripeAccount,
      capabilities: z.record(z.string(), z.enum(['active', 'inactive', 'pending'])),
    }),
  }),
  'billing.webhook_received': defineEvent({
    version: '1.0.0',
    description: 'Stripe webhook received (signature verified, stored once by its id)',
    payload: z.object({
      stripeEventId: z.string().regex(/^evt_[A-Za-z0-9]+$/),
      stripeEventType: z.string(),
      livemode: z.boolean(),
      stripeAccountId: z.string().optional(),
    }),
  }),
  'billing.webhook_processed': defineEvent({
    version: '1.0.0',
    description: 'Webhook successfully processed',
    payload: z.object({
      stripeEventId: z.string(),
      stripeEventType: z.string(),
      handled: z.boolean(),
      eventsPublished: z.array(z.string()),
    }),
  }),
  'billing.webhook_failed': defineEvent({
    version: '1.0.0',
    description: 'Webhook processing failed (Stripe will deliver it again)',
    payload: z.object({ stripeEventId: z.string(), stripeEventType: z.string(), error: z.string() }),
  }),

  // --- Practice details -------------------------------------------------------
  'practice.details_created': defineEvent({
    version: '1.0.0',
    description: 'Practice details added',
    payload: z.object({
      businessName: z.string().min(1).max(200),
      specialties: z.array(z.string().min(1)),
      businessEmail: email.optional(),
      businessPhone: z.string().max(40).optional(),
      website: z.url().optional(),
    }),
  }),
  'practice.details_updated': defineEvent({
    version: '1.0.0',
    description: 'Practice information modified',
    payload: z.object({ changedFields }),
  }),
  'practice.specialties_updated': defineEvent({
    version: '1.0.0',
    description: 'Practice specialties changed',
    payload: z.object({ previous: z.array(z.string()), current: z.array(z.string()) }),
  }),
  'practice.contact_info_updated': defineEvent({
    version: '1.0.0',
    description: 'Contact information changed',
    payload: z.object({ changedFields }),
  }),

  // --- System ----------------------------------------------------------------
  'system.health_check_performed': defineEvent({
    version: '1.0.0',
    description: 'Health check performed',
    payload: z.object({
      status: z.enum(['healthy', 'unhealthy']),
      unprocessed: z.number().int().nonnegative(),
      deadLetters: z.number().int().nonnegative(),
    }),
  }),
  'system.error_occurred': defineEvent({
    version: '1.0.0',
    description: 'System error occurred while serving a request',
    payload: z.object({
      errorName: z.string(),
      message: z.string().max(2000),
      statusCode: z.number().int(),
      method: z.string(),
      route: z.string(),
    }),
  }),
  'system.performance_degraded': defineEvent({
    version: '1.0.0',
    description: 'A request took longer than its budget',
    payload: z.object({
      metric: z.literal('response_time_ms'),
      value: z.number().nonnegative(),
      threshold: z.number().nonnegative(),
      method: z.string(),
      route: z.string(),
    }),
  }),

  // --- Sessions ----------------------------------------------------------------
  'session.created': defineEvent({
    version: '1.0.0',
    description: 'New session established',
    payload: z.object({ sessionId: id, activeOrganizationId: id.nullable(), expiresAt: isoTime }),
  }),
  'session.expired': defineEvent({
    version: '1.0.0',
    description: 'A session was presented after it expired',
    payload: z.object({ sessionId: id, expiredAt: isoTime }),
  }),
  'session.invalidated': defineEvent({
    version: '1.0.0',
    description: 'Session manually invalidated',
    payload: z.object({ sessionId: id, reason: z.enum(['logout', 'password_changed', 'account_deleted']) }),
  }),
});

/** The Blawby catalog's type. */
export type BlawbyCatalog = typeof catalog;

/** Enum-like constants: `EventType.AUTH_USER_SIGNED_UP === 'auth.user_signed_up'`. */
export const EventType = eventTypes(catalog);
