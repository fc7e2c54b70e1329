/**
 * Signup as a service of the unit-of-work style: it queries with
 * `uow.query` and publishes with the request's publisher, and never sees a
 * transaction. The route runs it inside the request's unit of work, so the
 * user, the session and both events commit together or not at all.
 */
import { eq } from 'drizzle-orm';
import type { RequestEvents } from '@blawby/event-bus/hono';
import { hashPassword, hashToken, newId, newToken } from '../../blawby/auth/credentials';
import { SESSION_TTL_MS } from '../../blawby/auth/sessions';
import type { BlawbyCatalog } from '../../blawby/catalog';
import { sessions, users } from '../../blawby/db/schema';
import { HttpError } from '../../blawby/routes/errors';
import type { UnitOfWork } from '../unit-of-work';

/** What every service gets: the unit of work and the request's publisher. */
export interface ServiceDeps {
  uow: UnitOfWork;
  events: RequestEvents<BlawbyCatalog>;
}

/** A parsed signup body (the email lower-cased). */
export interface SignUpInput {
  email: string;
  name: string;
  password: string;
}

/**
 * Creates the user and a first session; publishes `auth.user_signed_up` and
 * `session.created`.
 *
 * @throws HttpError 409 `EMAIL_TAKEN` when an account has this email.
 */
export async function signUp({ uow, events }: ServiceDeps, input: SignUpInput): Promise<{ userId: string; token: string }> {
  const db = uow.query;
  const [existing] = await db.select({ id: users.id }).from(users).where(eq(users.email, input.email));
  if (existing) throw new HttpError(409, 'EMAIL_TAKEN', 'An account with this email exists');
  const userId = newId('user');
  await db.insert(users).values({ id: userId, email: input.email, name: input.name, passwordHash: await hashPassword(input.password) });
  const token = newToken();
  const sessionId = newId('sess');
  const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
  await db.insert(sessions).values({ id: sessionId, userId, tokenHash: hashToken(token), expiresAt });
  // No `tx`: the storage finds the unit of work's transaction itself.
  const as = { actor: userId, actorType: 'user' } as const;
  await events.publish('auth.user_signed_up', { email: input.email, name: input.name, signupMethod: 'email' }, as);
  await events.publish('session.created', { sessionId, activeOrganizationId: null, expiresAt: expiresAt.toISOString() }, as);
  return { userId, token };
}
