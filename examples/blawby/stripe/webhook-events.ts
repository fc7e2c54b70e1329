/**
 * What a verified Stripe event means for Blawby: the rows it changes and the
 * billing events it implies. Runs inside the caller's transaction, so the
 * rows, the implied events and `billing.webhook_processed` commit together.
 */
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import type { PublishOptions } from '@blawby/event-bus';
import type { RequestEvents } from '@blawby/event-bus/fastify';
import type { BlawbyCatalog } from '../catalog';
import type { AppTx } from '../db/connect';
import { payments, stripeAccounts } from '../db/schema';

/** The envelope of every Stripe webhook event (only the fields used here). */
export const stripeEventSchema = z.object({
  id: z.string().regex(/^evt_[A-Za-z0-9]+$/),
  type: z.string().min(1),
  livemode: z.boolean().default(false),
  /** The connected account the event is about (Connect webhooks). */
  account: z.string().optional(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});

/** A parsed Stripe webhook event. */
export type StripeEvent = z.infer<typeof stripeEventSchema>;

const accountObject = z.object({
  id: z.string(),
  charges_enabled: z.boolean(),
  payouts_enabled: z.boolean(),
  details_submitted: z.boolean(),
  requirements: z
    .object({
      currently_due: z.array(z.string()).default([]),
      past_due: z.array(z.string()).default([]),
      disabled_reason: z.string().nullable().default(null),
    })
    .default({ currently_due: [], past_due: [], disabled_reason: null }),
  capabilities: z.record(z.string(), z.enum(['active', 'inactive', 'pending'])).default({}),
});

const paymentIntentObject = z.object({
  id: z.string().regex(/^pi_[A-Za-z0-9]+$/),
  amount: z.number().int().nonnegative(),
  currency: z.string(),
  receipt_email: z.email().nullable().optional(),
  application_fee_amount: z.number().int().nullable().optional(),
  last_payment_error: z
    .object({ message: z.string().optional(), decline_code: z.string().optional() })
    .nullable()
    .optional(),
});

const chargeObject = z.object({
  id: z.string().regex(/^ch_[A-Za-z0-9]+$/),
  payment_intent: z.string().nullable().optional(),
  amount_refunded: z.number().int().nonnegative(),
  currency: z.string(),
});

/** Result of {@link applyStripeEvent}. */
export interface AppliedStripeEvent {
  /** False for event types Blawby does not act on. */
  handled: boolean;
  organizationId?: string;
  /** Event types published. */
  published: string[];
}

/** A Stripe event about an account Blawby does not know; Stripe will retry, and it will fail again. */
export class UnknownStripeAccountError extends Error {
  override get name(): string {
    return 'UnknownStripeAccountError';
  }
}

/**
 * Applies one Stripe event in `tx`: updates the account or payment rows and
 * publishes the billing events it implies.
 */
export async function applyStripeEvent(
  tx: AppTx,
  events: RequestEvents<BlawbyCatalog>,
  event: StripeEvent,
): Promise<AppliedStripeEvent> {
  const published: string[] = [];
  const accountId = event.type.startsWith('account.') ? String(event.data.object.id) : event.account;
  if (!accountId) return { handled: false, published };
  const [account] = await tx.select().from(stripeAccounts).where(eq(stripeAccounts.id, accountId)).for('update');
  if (!account) throw new UnknownStripeAccountError(`No organization has Stripe account ${accountId}`);
  const organizationId = account.organizationId;
  const options: PublishOptions = {
    tx,
    actor: 'webhook-stripe',
    actorType: 'webhook',
    organizationId,
    metadata: { source: 'webhook', stripeEventId: event.id },
  };
  const publish: RequestEvents<BlawbyCatalog>['publish'] = async (type, payload) => {
    const stored = await events.publish(type, payload, options);
    published.push(type);
    return stored;
  };
  const stripeAccountId = account.id;

  switch (event.type) {
    case 'account.updated': {
      const obj = accountObject.parse(event.data.object);
      const requirementsChanged =
        JSON.stringify([...obj.requirements.currently_due].sort()) !== JSON.stringify([...account.currentlyDue].sort());
      const capabilitiesChanged = JSON.stringify(obj.capabilities) !== JSON.stringify(account.capabilities);
      const completesNow = obj.charges_enabled && obj.payouts_enabled && !account.onboardingCompletedAt;
      await tx
        .update(stripeAccounts)
        .set({
          chargesEnabled: obj.charges_enabled,
          payoutsEnabled: obj.payouts_enabled,
          detailsSubmitted: obj.details_submitted,
          currentlyDue: obj.requirements.currently_due,
          capabilities: obj.capabilities,
          ...(completesNow ? { onboardingCompletedAt: new Date() } : {}),
        })
        .where(eq(stripeAccounts.id, stripeAccountId));
      await publish('billing.account_updated', {
        stripeAccountId,
        chargesEnabled: obj.charges_enabled,
        payoutsEnabled: obj.payouts_enabled,
        detailsSubmitted: obj.details_submitted,
      });
      if (requirementsChanged) {
        await publish('billing.account_requirements_changed', {
          stripeAccountId,
          currentlyDue: obj.requirements.currently_due,
          pastDue: obj.requirements.past_due,
          disabledReason: obj.requirements.disabled_reason,
        });
      }
      if (capabilitiesChanged) {
        await publish('billing.account_capabilities_updated', { stripeAccountId, capabilities: obj.capabilities });
      }
      if (completesNow) {
        await publish('billing.onboarding_completed', { stripeAccountId, chargesEnabled: true, payoutsEnabled: true });
      } else if (obj.requirements.disabled_reason?.startsWith('rejected')) {
        await publish('billing.onboarding_failed', {
          stripeAccountId,
          reason: obj.requirements.disabled_reason,
          requirements: obj.requirements.currently_due,
        });
      }
      return { handled: true, organizationId, published };
    }
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed': {
      const obj = paymentIntentObject.parse(event.data.object);
      const succeeded = event.type === 'payment_intent.succeeded';
      const currency = obj.currency.toLowerCase();
      await tx
        .insert(payments)
        .values({
          id: obj.id,
          organizationId,
          kind: 'payment_intent',
          amount: obj.amount,
          currency,
          customerEmail: obj.receipt_email ?? null,
          status: succeeded ? 'succeeded' : 'failed',
        })
        .onConflictDoUpdate({ target: payments.id, set: { status: succeeded ? 'succeeded' : 'failed' } });
      const common = {
        stripeAccountId,
        paymentIntentId: obj.id,
        amount: obj.amount,
        currency,
        ...(obj.receipt_email ? { customerEmail: obj.receipt_email } : {}),
      };
      if (succeeded) {
        await publish('billing.payment_received', {
          ...common,
          ...(obj.application_fee_amount != null ? { applicationFeeAmount: obj.application_fee_amount } : {}),
        });
      } else {
        await publish('billing.payment_failed', {
          ...common,
          error: obj.last_payment_error?.message ?? 'Unknown error',
          ...(obj.last_payment_error?.decline_code ? { declineCode: obj.last_payment_error.decline_code } : {}),
        });
      }
      return { handled: true, organizationId, published };
    }
    case 'charge.refunded': {
      const obj = chargeObject.parse(event.data.object);
      const currency = obj.currency.toLowerCase();
      await tx
        .insert(payments)
        .values({
          id: obj.id,
          organizationId,
          kind: 'refund',
          amount: obj.amount_refunded,
          currency,
          status: 'refunded',
        })
        .onConflictDoUpdate({ target: payments.id, set: { amount: obj.amount_refunded } });
      await publish('billing.payment_refunded', {
        stripeAccountId,
        chargeId: obj.id,
        amountRefunded: obj.amount_refunded,
        currency,
        ...(obj.payment_intent ? { paymentIntentId: obj.payment_intent } : {}),
      });
      return { handled: true, organizationId, published };
    }
    default:
      return { handled: false, organizationId, published };
  }
}
