/**
 * Internal notifications (seed phase 3.3), posted to Slack: new signups to
 * `#signups`, failed payments to `#alerts`, and practices that finished
 * connecting Stripe to `#sales`. Each is its own subscriber, so a failing
 * channel retries (or dead-letters) on its own without re-running the others.
 */
import { EventType } from '../catalog';
import type { Notifier } from '../sinks/slack';
import { formatAmount } from './email';
import type { BlawbyBus } from './bus';

/** Dependencies of {@link registerInternalHandlers}. */
export interface InternalHandlerDeps {
  notifier: Notifier;
}

/** Registers the internal notification subscribers; returns a function that unsubscribes them all. */
export function registerInternalHandlers(bus: BlawbyBus, deps: InternalHandlerDeps): () => void {
  const offs = [
    bus.subscribe(
      EventType.AUTH_USER_SIGNED_UP,
      async (event, ctx) => {
        await deps.notifier.notify(
          {
            channel: '#signups',
            text: `New user signed up: ${event.payload.email}`,
            fields: {
              'Signup Method': event.payload.signupMethod,
              'Referral Source': event.payload.referralSource ?? 'organic',
              'User ID': event.actor ?? 'unknown',
            },
          },
          { signal: ctx.signal, idempotencyKey: ctx.deliveryId },
        );
      },
      { name: 'internal.signup_alert' },
    ),
    bus.subscribe(
      EventType.BILLING_PAYMENT_FAILED,
      async (event, ctx) => {
        const { amount, currency, error, customerEmail } = event.payload;
        await deps.notifier.notify(
          {
            channel: '#alerts',
            text: `Payment failed for organization ${event.organizationId ?? 'unknown'}`,
            fields: { Amount: formatAmount(amount, currency), Error: error, Customer: customerEmail ?? 'Unknown' },
          },
          { signal: ctx.signal, idempotencyKey: ctx.deliveryId },
        );
      },
      { name: 'internal.payment_failed_alert' },
    ),
    bus.subscribe(
      EventType.BILLING_ONBOARDING_COMPLETED,
      async (event, ctx) => {
        await deps.notifier.notify(
          {
            channel: '#sales',
            text: `Practice ${event.organizationId ?? 'unknown'} connected Stripe and can take payments`,
            fields: { 'Stripe account': event.payload.stripeAccountId },
          },
          { signal: ctx.signal, idempotencyKey: ctx.deliveryId },
        );
      },
      { name: 'internal.stripe_connected_alert' },
    ),
  ];
  return () => offs.forEach((off) => off());
}
