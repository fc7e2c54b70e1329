/**
 * The Express variant of the Blawby backend, smaller than the Fastify one
 * (`../blawby/app.ts`): signup, login, organization creation and the events
 * router, over the same database, catalog and handlers. The routes parse,
 * call the domain operations both apps share (`../blawby/services`) and
 * answer; each event is published in the transaction that writes the rows it
 * describes.
 */
import express from 'express';
import type { ErrorRequestHandler, Request } from 'express';
import { z } from 'zod';
import { EventBusError } from '@blawby/event-bus';
import type { Logger } from '@blawby/event-bus';
import { eventBusMiddleware, eventBusRouter } from '@blawby/event-bus/express';
import type { EventBusRouter, RequestEvents } from '@blawby/event-bus/express';
import type { BlawbyCatalog } from '../blawby/catalog';
import type { AppDb } from '../blawby/db/connect';
import type { BlawbyBus } from '../blawby/handlers';
import { HttpError, parse } from '../blawby/routes/errors';
import { logIn, signUp } from '../blawby/services/accounts';
import { createOrganization } from '../blawby/services/organizations';
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

/** Builds the Express app (not listening). */
export function buildExpressApp({ bus, db, logger }: ExpressAppDeps): ExpressApp {
  const app = express();
  app.use(express.json({ limit: '100kb' }));
  app.use(eventBusMiddleware(bus));

  app.post('/auth/signup', async (req, res) => {
    const body = parse(signupBody, req.body);
    const created = await signUp(db, eventsOf(req), body);
    res
      .status(201)
      .json({ user: { id: created.userId, email: body.email, name: body.name }, token: created.session.token });
  });

  app.post('/auth/login', async (req, res) => {
    const body = parse(loginBody, req.body);
    const session = await logIn(db, eventsOf(req), body);
    res.json({ token: session.token, sessionId: session.id });
  });

  app.post('/orgs', async (req, res) => {
    const caller = await callerOf(db, req);
    if (!caller) throw new HttpError(401, 'UNAUTHORIZED', 'A valid bearer session is required');
    const body = parse(orgBody, req.body);
    res.status(201).json(await createOrganization(db, eventsOf(req), caller, body));
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
