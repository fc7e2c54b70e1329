/**
 * Stripe Connect onboarding, payment sessions, and the Stripe webhook
 * endpoint. The webhook verifies `Stripe-Signature` over the raw body, stores
 * each Stripe event once by its id (a redelivery of a processed event changes
 * nothing), and publishes `billing.webhook_received`, then the billing events
 * the Stripe event implies with `billing.webhook_processed` in one
 * transaction, or `billing.webhook_failed` (answering 500 so that Stripe
 * delivers it again).
 */
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireCaller, requireMember } from '../auth/sessions';
import { organizations, payments, stripeAccounts } from '../db/schema';
import { stripeId } from '../stripe/connect';
import { handleStripeWebhook } from '../stripe/webhook-handler';
import type { RouteDeps } from './deps';
import { HttpError, parse, requestEvents } from './http';

const orgParams = z.object({ orgId: z.string().min(1).max(100) });
const onboardingBody = z.object({ country: z.string().length(2).toUpperCase().default('US') });
const sessionBody = z.object({
  amount: z.number().int().positive().max(100_000_000),
  currency: z
    .string()
    .regex(/^[a-zA-Z]{3}$/)
    .transform((c) => c.toLowerCase()),
  customerEmail: z.email().optional(),
});

const PAYMENT_SESSION_TTL_MS = 24 * 60 * 60 * 1000;

/** Registers the billing routes and the Stripe webhook endpoint. */
export async function billingRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const { db } = deps;

  app.post('/orgs/:orgId/billing/onboarding', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(orgParams, request.params, 'INVALID_PARAMS');
    const { country } = parse(onboardingBody, request.body);
    await requireMember(request, caller, orgId, 'billing_onboarding', ['owner', 'admin']);
    const [existing] = await db.select().from(stripeAccounts).where(eq(stripeAccounts.organizationId, orgId));
    const account =
      existing ??
      (await db.transaction(async (tx) => {
        const [org] = await tx.select().from(organizations).where(eq(organizations.id, orgId));
        if (!org) throw new HttpError(404, 'NOT_FOUND', 'No such organization');
        const created = await deps.stripe.createAccount({ email: caller.email, country, organizationId: orgId });
        const [row] = await tx
          .insert(stripeAccounts)
          .values({ id: created.id, organizationId: orgId, email: caller.email, country })
          .returning();
        await requestEvents(request).publish(
          'billing.onboarding_started',
          { accountId: created.id, email: caller.email, country },
          { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
        );
        return row!;
      }));
    const link = await deps.stripe.createAccountLink(account.id);
    return reply.code(existing ? 200 : 201).send({
      accountId: account.id,
      onboardingUrl: link.url,
      expiresAt: link.expiresAt.toISOString(),
      status: {
        chargesEnabled: account.chargesEnabled,
        payoutsEnabled: account.payoutsEnabled,
        detailsSubmitted: account.detailsSubmitted,
      },
    });
  });

  app.get('/orgs/:orgId/billing/account', async (request) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(orgParams, request.params, 'INVALID_PARAMS');
    await requireMember(request, caller, orgId, 'read_billing');
    const [account] = await db.select().from(stripeAccounts).where(eq(stripeAccounts.organizationId, orgId));
    if (!account) throw new HttpError(404, 'NOT_FOUND', 'Stripe onboarding has not started');
    return {
      accountId: account.id,
      chargesEnabled: account.chargesEnabled,
      payoutsEnabled: account.payoutsEnabled,
      detailsSubmitted: account.detailsSubmitted,
      currentlyDue: account.currentlyDue,
      onboardingCompletedAt: account.onboardingCompletedAt?.toISOString() ?? null,
    };
  });

  app.post('/orgs/:orgId/billing/payment-sessions', async (request, reply) => {
    const caller = await requireCaller(db, request);
    const { orgId } = parse(orgParams, request.params, 'INVALID_PARAMS');
    const body = parse(sessionBody, request.body);
    await requireMember(request, caller, orgId, 'create_payment_session');
    const sessionId = stripeId('cs');
    const expiresAt = new Date(Date.now() + PAYMENT_SESSION_TTL_MS);
    await db.transaction(async (tx) => {
      const [account] = await tx.select().from(stripeAccounts).where(eq(stripeAccounts.organizationId, orgId));
      if (!account?.chargesEnabled) throw new HttpError(409, 'BILLING_NOT_READY', 'Finish Stripe onboarding first');
      await tx.insert(payments).values({
        id: sessionId,
        organizationId: orgId,
        kind: 'session',
        amount: body.amount,
        currency: body.currency,
        customerEmail: body.customerEmail ?? null,
        status: 'open',
      });
      await requestEvents(request).publish(
        'billing.payment_session_created',
        {
          stripeAccountId: account.id,
          sessionId,
          amount: body.amount,
          currency: body.currency,
          expiresAt: expiresAt.toISOString(),
          ...(body.customerEmail ? { customerEmail: body.customerEmail } : {}),
        },
        { tx, actor: caller.userId, actorType: 'user', organizationId: orgId },
      );
    });
    return reply.code(201).send({ sessionId, expiresAt: expiresAt.toISOString() });
  });

  // The webhook needs the exact bytes Stripe signed: its own scope, with a
  // JSON parser that keeps the raw body instead of parsing it.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_request, body, done) =>
      done(null, body),
    );

    scope.post('/webhooks/stripe', async (request, reply) => {
      const signature = request.headers['stripe-signature'];
      const result = await handleStripeWebhook({
        db,
        events: requestEvents(request),
        secret: deps.stripeWebhookSecret,
        ...(deps.stripeToleranceSeconds !== undefined ? { toleranceSeconds: deps.stripeToleranceSeconds } : {}),
        rawBody: Buffer.isBuffer(request.body) ? request.body : undefined,
        signature: Array.isArray(signature) ? signature[0] : signature,
        onFailure: (err, stripeEventId) => request.log.warn({ err, stripeEventId }, 'Stripe webhook processing failed'),
      });
      return reply.code(result.status).send(result.body);
    });
  });
}
