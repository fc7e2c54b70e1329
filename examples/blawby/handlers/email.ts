/**
 * Email handlers (seed phase 3.1): the welcome email on signup, the payment
 * receipt, and the Stripe onboarding reminder. The seed scheduled the
 * reminder with a 24-hour `setTimeout`, lost on every restart; here the
 * `billing.onboarding_started` handler publishes `billing.onboarding_reminder_due`
 * with `deliverAt`, a delayed event that is stored like any other, and the
 * reminder handler sends only if onboarding is still incomplete when it runs.
 */
import { NonRetryableError } from '@blawby/event-bus';
import { EventType } from '../catalog';
import type { EmailSender } from '../sinks/email';
import type { BlawbyBus } from './bus';

/** Looks up whether a Stripe connected account has finished onboarding. */
export interface OnboardingStatusLookup {
  /** `null` when the account is unknown. */
  onboardingStatus(stripeAccountId: string): Promise<{ completed: boolean; organizationName: string } | null>;
}

/** Dependencies of {@link registerEmailHandlers}. */
export interface EmailHandlerDeps {
  email: EmailSender;
  accounts: OnboardingStatusLookup;
  /** Delay of the onboarding reminder after `billing.onboarding_started` (default 24 h). */
  reminderDelayMs?: number;
  /** Base URL of the web app, for links in emails. */
  appUrl?: string;
}

/** 24 hours, as in the seed. */
export const DEFAULT_REMINDER_DELAY_MS = 24 * 60 * 60 * 1000;

/** Formats an amount in minor units (`5000`, `'usd'` -> `$50.00`). */
export function formatAmount(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() }).format(amount / 100);
  } catch {
    return `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
  }
}

/** Registers the email subscribers; returns a function that unsubscribes them all. */
export function registerEmailHandlers(bus: BlawbyBus, deps: EmailHandlerDeps): () => void {
  const appUrl = deps.appUrl ?? 'http://localhost:3000';
  const reminderDelayMs = deps.reminderDelayMs ?? DEFAULT_REMINDER_DELAY_MS;
  const offs = [
    bus.subscribe(
      EventType.AUTH_USER_SIGNED_UP,
      async (event, ctx) => {
        const { email, name } = event.payload;
        await deps.email.send({
          to: email,
          subject: 'Welcome to Blawby!',
          template: 'welcome',
          text: `Hi ${name},\n\nWelcome to Blawby. Set up your practice at ${appUrl}/onboarding.\n\nThe Blawby team\n`,
          idempotencyKey: ctx.deliveryId,
        });
      },
      { name: 'email.welcome' },
    ),

    bus.subscribe(
      EventType.BILLING_PAYMENT_RECEIVED,
      async (event, ctx) => {
        const { customerEmail, amount, currency, paymentIntentId } = event.payload;
        // No address, no receipt: Stripe sends its own receipt in that case.
        if (!customerEmail) return;
        await deps.email.send({
          to: customerEmail,
          subject: 'Payment Receipt',
          template: 'payment-receipt',
          text: `Thank you for your payment of ${formatAmount(amount, currency)}.\n\nReference: ${paymentIntentId}\n`,
          idempotencyKey: ctx.deliveryId,
        });
      },
      { name: 'email.payment_receipt' },
    ),

    bus.subscribe(
      EventType.BILLING_ONBOARDING_STARTED,
      async (event, ctx) => {
        const { accountId, email } = event.payload;
        await ctx.publish(
          EventType.BILLING_ONBOARDING_REMINDER_DUE,
          { stripeAccountId: accountId, email, startedAt: event.timestamp.toISOString() },
          {
            actor: 'system',
            actorType: 'system',
            organizationId: event.organizationId,
            deliverAt: new Date(event.timestamp.getTime() + reminderDelayMs),
            // A retry of this handler must not schedule a second reminder.
            idempotencyKey: `onboarding-reminder:${event.eventId}`,
          },
        );
      },
      { name: 'email.schedule_onboarding_reminder' },
    ),

    bus.subscribe(
      EventType.BILLING_ONBOARDING_REMINDER_DUE,
      async (event, ctx) => {
        const { stripeAccountId, email } = event.payload;
        const status = await deps.accounts.onboardingStatus(stripeAccountId);
        if (!status) throw new NonRetryableError(`Unknown Stripe account ${stripeAccountId}`);
        if (status.completed) return; // finished in time: no reminder
        await deps.email.send({
          to: email,
          subject: 'Complete your Blawby setup',
          template: 'onboarding-reminder',
          text:
            `Your Stripe account for ${status.organizationName} is not connected yet, so you cannot take payments.\n\n` +
            `Finish the setup at ${appUrl}/settings/billing.\n`,
          idempotencyKey: ctx.deliveryId,
        });
      },
      { name: 'email.onboarding_reminder' },
    ),
  ];
  return () => offs.forEach((off) => off());
}
