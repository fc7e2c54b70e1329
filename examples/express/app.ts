/**
 * The Express variant of the Blawby backend, smaller than the Fastify one
 * (`../blawby/app.ts`): signup, login, organization creation and the events
 * router, over the same database, catalog and handlers. Each event is
 * published in the transaction that writes the rows it describes.
 */
import express from 'express';
import type { ErrorRequestHandler, Request } from 'express';
import { z } from 'zod';
import { EventBusError } from '@blawby/event-bus';
import type { Logger } from '@blawby/event-bus';
import { eventBusMiddleware, eventBusRouter } from '@blawby/event-bus/express';
import type { EventBusRouter, RequestEvents } from '@blawby/event-bus/express';
import { eq } from 'drizzle-orm';
import { hashPassword, hashToken, newId, newToken, verifyPassword } from '../blawby/auth/credentials';
import { SESSION_TTL_MS } from '../blawby/auth/sessions';
import type { BlawbyCatalog } from '../blawby/catalog';
import type { AppDb, AppTx } from '../blawby/db/connect';
import { members, organizations, sessions, users } from '../blawby/db/schema';
import type { BlawbyBus } from '../blawby/handlers';
import { callerOf, identityOf } from './auth';

/** Dependencies of {@link buildExpressApp}. */
export interface ExpressAppDeps {
  bus: BlawbyBus;
  db: AppDb;
  /** Where unexpected errors are logged (silent when absent). */
  logger?: Logger;
}

/** The app and its events router (whose `close()` stops the bus). */
export interface ExpressApp {
  app: express.Express;
  events: EventBusRouter;
}

/** An error answered with `status` and `{ error: { code, message, issues? } }`. */
class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly issues?: unknown[]) {
    super(message);
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path, code: i.code, message: i.message }));
    throw new HttpError(400, 'INVALID_BODY', 'The request is invalid', issues);
  }
  return result.data;
}

/**
 * `req.events` typed with the Blawby catalog. A standalone application
 * augments `EventBusRegistry` once instead (see docs/express.md); this
 * repository compiles the library's own tests in the same program, so the
 * example does not.
 */
function eventsOf(req: Request): RequestEvents<BlawbyCatalog> {
  return req.events as unknown as RequestEvents<BlawbyCatalog>;
}

const email = z.email().transform((e) => e.toLowerCase());
const signupBody = z.object({ email, name: z.string().trim().min(1).max(200), password: z.string().min(8).max(200) });
const loginBody = z.object({ email, password: z.string() });
const orgBody = z.object({
  name: z.string().trim().min(1).max(200),
  slug: z
    .string()
    .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/)
    .max(60),
  practiceType: z.string().min(1).max(100),
});

async function createSession(tx: AppTx, userId: string) {
  const token = newToken();
  const id = newId('sess');
  const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
  await tx.insert(sessions).values({ id, userId, tokenHash: hashToken(token), expiresAt });
  return { id, token, expiresAt };
}

/** Builds the Express app (not listening). */
export function buildExpressApp({ bus, db, logger }: ExpressAppDeps): ExpressApp {
  const app = express();
  app.use(express.json({ limit: '100kb' }));
  app.use(eventBusMiddleware(bus));

  app.post('/auth/signup', async (req, res) => {
    const body = parse(signupBody, req.body);
    const events = eventsOf(req);
    const passwordHash = await hashPassword(body.password);
    const created = await db.transaction(async (tx) => {
      const [existing] = await tx.select({ id: users.id }).from(users).where(eq(users.email, body.email));
      if (existing) throw new HttpError(409, 'EMAIL_TAKEN', 'An account with this email exists');
      const userId = newId('user');
      await tx.insert(users).values({ id: userId, email: body.email, name: body.name, passwordHash });
      const session = await createSession(tx, userId);
      const actor = { tx, actor: userId, actorType: 'user' } as const;
      await events.publish('auth.user_signed_up', { email: body.email, name: body.name, signupMethod: 'email' }, actor);
      await events.publish(
        'session.created',
        { sessionId: session.id, activeOrganizationId: null, expiresAt: session.expiresAt.toISOString() },
        actor,
      );
      return { userId, session };
    });
    res
      .status(201)
      .json({ user: { id: created.userId, email: body.email, name: body.name }, token: created.session.token });
  });

  app.post('/auth/login', async (req, res) => {
    const body = parse(loginBody, req.body);
    const [user] = await db.select().from(users).where(eq(users.email, body.email));
    if (!user || !(await verifyPassword(body.password, user.passwordHash))) {
      throw new HttpError(401, 'INVALID_CREDENTIALS', 'Email or password is incorrect');
    }
    const session = await db.transaction(async (tx) => {
      const created = await createSession(tx, user.id);
      const actor = { tx, actor: user.id, actorType: 'user' } as const;
      const events = eventsOf(req);
      await events.publish(
        'auth.user_logged_in',
        { email: user.email, sessionId: created.id, method: 'password' },
        actor,
      );
      await events.publish(
        'session.created',
        { sessionId: created.id, activeOrganizationId: null, expiresAt: created.expiresAt.toISOString() },
        actor,
      );
      return created;
    });
    res.json({ token: session.token, sessionId: session.id });
  });

  app.post('/orgs', async (req, res) => {
    const caller = await callerOf(db, req);
    if (!caller) throw new HttpError(401, 'UNAUTHORIZED', 'A valid bearer session is required');
    const body = parse(orgBody, req.body);
    const id = newId('org');
    await db.transaction(async (tx) => {
      const taken = await tx
        .select({ id: organizations.id })
        .from(organizations)
        .where(eq(organizations.slug, body.slug));
      if (taken.length) throw new HttpError(409, 'SLUG_TAKEN', 'This slug is taken');
      await tx.insert(organizations).values({ id, name: body.name, slug: body.slug, practiceType: body.practiceType });
      await tx.insert(members).values({ organizationId: id, userId: caller.userId, role: 'owner' });
      await eventsOf(req).publish(
        'org.created',
        { organizationName: body.name, organizationSlug: body.slug, practiceType: body.practiceType, role: 'owner' },
        { tx, actor: caller.userId, actorType: 'user', organizationId: id },
      );
    });
    res.status(201).json({ id, name: body.name, slug: body.slug });
  });

  // GET /events/timeline (members only, see docs/express.md) and GET /events/health (public).
  const events = eventBusRouter(bus, { authorize: (req) => identityOf(db, req), ...(logger ? { logger } : {}) });
  app.use('/events', events);

  const errors: ErrorRequestHandler = (err, _req, res, next) => {
    if (res.headersSent) return next(err);
    if (err instanceof HttpError) {
      res
        .status(err.status)
        .json({ error: { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) } });
      return;
    }
    const status = (err as { status?: number }).status;
    if (status && status < 500) {
      // express.json()'s own 4xx (malformed JSON, body too large).
      res.status(status).json({ error: { code: 'BAD_REQUEST', message: (err as Error).message } });
      return;
    }
    logger?.error({ err }, 'request failed');
    // An event refused by the catalog here is a bug of this server, not of the client.
    const code = EventBusError.is(err) ? err.code : 'INTERNAL';
    res.status(500).json({ error: { code, message: 'Internal server error' } });
  };
  app.use(errors);
  return { app, events };
}
