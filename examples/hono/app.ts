/**
 * The Hono variant of the Blawby backend, shaped like the real one: Hono 4,
 * drizzle on node-postgres, and an AsyncLocalStorage unit of work around
 * each writing request. Routes parse, call services that never see a
 * transaction, and answer; the services publish through `c.var.events`, and
 * the storage puts each event into the request's transaction.
 */
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { EventBusError, type Logger } from '@blawby/event-bus';
import { eventBusMiddleware, eventBusRouter, type EventBusEnv, type EventBusRouter, type RequestEvents } from '@blawby/event-bus/hono';
import { callerOfToken } from '../blawby/auth/sessions';
import type { BlawbyCatalog } from '../blawby/catalog';
import type { AppDb } from '../blawby/db/connect';
import type { BlawbyBus } from '../blawby/handlers';
import { HttpError, parse } from '../blawby/routes/errors';
import { handleStripeWebhook } from '../blawby/stripe/webhook-handler';
import { signUp } from './services/accounts';
import { createOrganization, inviteMembers } from './services/organizations';
import type { UnitOfWork } from './unit-of-work';

/** Dependencies of {@link buildHonoApp}. */
export interface HonoAppDeps {
  bus: BlawbyBus;
  db: AppDb;
  uow: UnitOfWork;
  /** The Stripe endpoint's signing secret (`whsec_...`). */
  stripeWebhookSecret: string;
  /** Where unexpected errors are logged (silent when absent). */
  logger?: Logger;
}

/** The app and its events router (whose `close()` stops the bus). */
export interface HonoApp {
  app: Hono<EventBusEnv<BlawbyCatalog>>;
  events: EventBusRouter;
}

const email = z.email().transform((e) => e.toLowerCase());
const signupBody = z.object({ email, name: z.string().trim().min(1).max(200), password: z.string().min(8).max(200) });
const orgBody = z.object({
  name: z.string().trim().min(1).max(200),
  slug: z
    .string()
    .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/)
    .max(60),
  practiceType: z.string().min(1).max(100),
  invites: z
    .array(z.object({ email, role: z.enum(['admin', 'member']) }))
    .max(20)
    .default([]),
});

const json = async (req: { json(): Promise<unknown> }) => req.json().catch(() => undefined);

/** Builds the Hono app (not listening). */
export function buildHonoApp({ bus, db, uow, stripeWebhookSecret, logger }: HonoAppDeps): HonoApp {
  const app = new Hono<EventBusEnv<BlawbyCatalog>>();
  app.use(requestId()); // its id becomes metadata.requestId
  app.use(eventBusMiddleware<BlawbyCatalog>(bus));

  app.post('/auth/signup', uow.middleware(), async (c) => {
    const body = parse(signupBody, await json(c.req));
    const created = await signUp({ uow, events: c.var.events }, body);
    return c.json({ user: { id: created.userId, email: body.email, name: body.name }, token: created.token }, 201);
  });

  app.post('/orgs', uow.middleware(), async (c) => {
    const caller = await callerOfToken(db, c.req.header('authorization'), c.var.events);
    if (!caller) throw new HttpError(401, 'UNAUTHORIZED', 'A valid bearer session is required');
    const body = parse(orgBody, await json(c.req));
    const deps = { uow, events: c.var.events };
    // Two services, one unit of work: a refused invitation rolls back the organization and org.created.
    const { id } = await createOrganization(deps, caller, body);
    const invited = await inviteMembers(deps, caller, id, body.invites);
    return c.json({ id, name: body.name, slug: body.slug, invited: invited.map((i) => i.email) }, 201);
  });

  // Stripe signs the exact bytes: read them raw. The flow keeps its own explicit transactions (an explicit tx wins).
  app.post('/webhooks/stripe', async (c) => {
    const raw = Buffer.from(await c.req.arrayBuffer());
    const result = await handleStripeWebhook({
      db,
      events: c.var.events,
      secret: stripeWebhookSecret,
      rawBody: raw.length ? raw : undefined,
      signature: c.req.header('stripe-signature'),
      onFailure: (err, stripeEventId) => logger?.warn({ err, stripeEventId }, 'Stripe webhook processing failed'),
    });
    return c.json(result.body, result.status as ContentfulStatusCode);
  });

  // GET /events/timeline (members only) and GET /events/health (public).
  const events = eventBusRouter<BlawbyCatalog>(bus, {
    authorize: async (c) => {
      const publisher = c.get('events') as unknown as RequestEvents<BlawbyCatalog>;
      const caller = await callerOfToken(db, c.req.header('authorization'), publisher);
      return caller ? { actor: caller.userId, organizationIds: [...caller.memberships.keys()] } : null;
    },
    ...(logger ? { logger } : {}),
  });
  app.route('/events', events);

  app.onError((err, c) => {
    if (err instanceof HttpError) {
      const body = { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) };
      return c.json({ error: body }, err.status as ContentfulStatusCode);
    }
    logger?.error({ err }, 'request failed');
    // An event refused by the catalog here is a bug of this server, not of the client.
    return c.json({ error: { code: EventBusError.is(err) ? err.code : 'INTERNAL', message: 'Internal server error' } }, 500);
  });
  return { app, events };
}
