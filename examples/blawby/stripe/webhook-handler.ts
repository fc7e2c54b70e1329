/**
 * The Stripe webhook endpoint, framework-neutral (the Fastify and Express
 * apps only pass the raw body and header in and send the result back):
 *
 * 1. verify `Stripe-Signature` over the raw bytes with the official SDK's
 *    `Stripe.webhooks.constructEvent` (400 when it fails: a wrong secret, a
 *    changed body, or a timestamp outside the tolerance);
 * 2. store the Stripe event once by its id and publish `billing.webhook_received`;
 * 3. in one transaction, apply it (rows and implied billing events) and
 *    publish `billing.webhook_processed`, unless an earlier delivery already
 *    did (then answer `duplicate: true`);
 * 4. on failure, mark it failed, publish `billing.webhook_failed` and answer
 *    500, so that Stripe delivers it again.
 */
import { eq, sql } from 'drizzle-orm';
import type { RequestEvents } from '@blawby/event-bus/fastify';
import type { BlawbyCatalog } from '../catalog';
import type { AppDb } from '../db/connect';
import { stripeAccounts, stripeEvents } from '../db/schema';
import Stripe from 'stripe';
import { applyStripeEvent, stripeEventSchema } from './webhook-events';

/** Input of {@link handleStripeWebhook}. */
export interface StripeWebhookInput {
  db: AppDb;
  /** The request's publisher (`request.events` / `req.events`). */
  events: RequestEvents<BlawbyCatalog>;
  /** The endpoint's signing secret. */
  secret: string;
  toleranceSeconds?: number;
  /** The exact bytes received; `undefined` when the body was not kept raw. */
  rawBody: Buffer | undefined;
  /** The `Stripe-Signature` header. */
  signature: string | undefined;
  /** Told about a processing failure (for logs). */
  onFailure?: (error: unknown, stripeEventId: string) => void;
}

/** What to answer. */
export interface StripeWebhookResult {
  status: number;
  body: Record<string, unknown>;
}

const fail = (
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): StripeWebhookResult => ({
  status,
  body: { error: { code, message, ...extra } },
});

/** Stripe's messages go on with advice for the integrator; the client gets the reason only. */
function firstSentence(message: string): string {
  const end = message.indexOf('. ');
  return end === -1 ? message : message.slice(0, end + 1);
}

/** Handles one delivery of Stripe's webhook. */
export async function handleStripeWebhook(input: StripeWebhookInput): Promise<StripeWebhookResult> {
  const { db, events, rawBody } = input;
  if (!rawBody) return fail(400, 'INVALID_BODY', 'Expected a JSON body');
  if (!input.signature) return fail(400, 'INVALID_SIGNATURE', 'No Stripe-Signature header');
  let json: unknown;
  try {
    // Verifies the HMAC of `${t}.${rawBody}` and the timestamp, then parses the body.
    json = Stripe.webhooks.constructEvent(rawBody, input.signature, input.secret, input.toleranceSeconds);
  } catch (err) {
    if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
      return fail(400, 'INVALID_SIGNATURE', firstSentence(err.message));
    }
    if (err instanceof SyntaxError) return fail(400, 'INVALID_BODY', 'The body is not JSON');
    throw err;
  }
  const parsed = stripeEventSchema.safeParse(json);
  if (!parsed.success) return fail(400, 'INVALID_BODY', 'Not a Stripe event');
  const event = parsed.data;
  const webhook = { actor: 'webhook-stripe', actorType: 'webhook', metadata: { source: 'webhook' } } as const;
  const about = { stripeEventId: event.id, stripeEventType: event.type };

  const accountId = event.type.startsWith('account.') ? String(event.data.object.id) : event.account;

  // 1. Store it once by id, and say it arrived.
  await db.transaction(async (tx) => {
    const inserted = await tx
      .insert(stripeEvents)
      .values({ id: event.id, type: event.type, accountId: event.account ?? null, payload: json, status: 'received' })
      .onConflictDoNothing()
      .returning({ id: stripeEvents.id });
    if (!inserted.length) return;
    const [account] = accountId ? await tx.select().from(stripeAccounts).where(eq(stripeAccounts.id, accountId)) : [];
    await events.publish(
      'billing.webhook_received',
      { ...about, livemode: event.livemode, ...(accountId ? { stripeAccountId: accountId } : {}) },
      { ...webhook, tx, ...(account ? { organizationId: account.organizationId } : {}) },
    );
  });

  // 2. Apply it, unless a previous delivery already did.
  try {
    const outcome = await db.transaction(async (tx) => {
      const [stored] = await tx.select().from(stripeEvents).where(eq(stripeEvents.id, event.id)).for('update');
      if (stored?.status === 'processed') return null;
      const applied = await applyStripeEvent(tx, events, event);
      await tx
        .update(stripeEvents)
        .set({ status: 'processed', processedAt: new Date(), lastError: null })
        .where(eq(stripeEvents.id, event.id));
      await events.publish(
        'billing.webhook_processed',
        { ...about, handled: applied.handled, eventsPublished: applied.published },
        { ...webhook, tx, ...(applied.organizationId ? { organizationId: applied.organizationId } : {}) },
      );
      return applied;
    });
    if (!outcome) return { status: 200, body: { received: true, duplicate: true } };
    return {
      status: 200,
      body: { received: true, duplicate: false, handled: outcome.handled, published: outcome.published },
    };
  } catch (err) {
    input.onFailure?.(err, event.id);
    const message = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
    await db.transaction(async (tx) => {
      await tx
        .update(stripeEvents)
        .set({ status: 'failed', lastError: message, attempts: sql`${stripeEvents.attempts} + 1` })
        .where(eq(stripeEvents.id, event.id));
      const [account] = accountId ? await tx.select().from(stripeAccounts).where(eq(stripeAccounts.id, accountId)) : [];
      await events.publish(
        'billing.webhook_failed',
        { ...about, error: message },
        { ...webhook, tx, ...(account ? { organizationId: account.organizationId } : {}) },
      );
    });
    return fail(500, 'WEBHOOK_FAILED', 'Processing failed; Stripe will retry');
  }
}
