/**
 * Stripe-shaped webhook events and a signed POST of them, for the demo and
 * the tests (what the Stripe CLI's `stripe trigger` sends, reduced to the
 * fields Blawby reads).
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

/** A new Stripe-shaped event id. */
export function stripeEventId(): string {
  return `evt_${randomBytes(12).toString('hex')}`;
}

/** `account.updated` for a connected account. */
export function accountUpdatedEvent(
  accountId: string,
  state: { chargesEnabled: boolean; payoutsEnabled: boolean; currentlyDue?: string[]; disabledReason?: string | null },
  id = stripeEventId(),
): Record<string, unknown> {
  const active = state.chargesEnabled ? 'active' : 'inactive';
  return {
    id,
    object: 'event',
    type: 'account.updated',
    livemode: false,
    created: Math.floor(Date.now() / 1000),
    account: accountId,
    data: {
      object: {
        id: accountId,
        object: 'account',
        charges_enabled: state.chargesEnabled,
        payouts_enabled: state.payoutsEnabled,
        details_submitted: state.chargesEnabled,
        requirements: {
          currently_due: state.currentlyDue ?? [],
          past_due: [],
          disabled_reason: state.disabledReason ?? null,
        },
        capabilities: { card_payments: active, transfers: active },
      },
    },
  };
}

/** `payment_intent.succeeded` or `payment_intent.payment_failed` on a connected account. */
export function paymentIntentEvent(
  accountId: string,
  outcome: 'succeeded' | 'payment_failed',
  payment: { amount: number; currency: string; receiptEmail?: string; failureMessage?: string; declineCode?: string },
  id = stripeEventId(),
): Record<string, unknown> {
  return {
    id,
    object: 'event',
    type: `payment_intent.${outcome}`,
    livemode: false,
    created: Math.floor(Date.now() / 1000),
    account: accountId,
    data: {
      object: {
        id: `pi_${randomBytes(12).toString('hex')}`,
        object: 'payment_intent',
        amount: payment.amount,
        currency: payment.currency,
        receipt_email: payment.receiptEmail ?? null,
        application_fee_amount: Math.round(payment.amount / 10),
        last_payment_error:
          outcome === 'payment_failed'
            ? {
                message: payment.failureMessage ?? 'Your card was declined.',
                decline_code: payment.declineCode ?? 'generic_decline',
              }
            : null,
      },
    },
  };
}

/** Posts an event to a webhook endpoint the way Stripe does: raw JSON and a `Stripe-Signature`. */
export async function postStripeWebhook(
  url: string,
  secret: string,
  event: Record<string, unknown>,
  options: { timestamp?: number; signature?: string } = {},
): Promise<Response> {
  const body = JSON.stringify(event);
  const signature =
    options.signature ??
    Stripe.webhooks.generateTestHeaderString({
      payload: body,
      secret,
      ...(options.timestamp !== undefined ? { timestamp: options.timestamp } : {}),
    });
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature },
    body,
  });
}
